// Package servicegraph computes a live service graph from finished spans, in process, with
// the same pairing rule as Grafana Tempo's metrics-generator and the OpenTelemetry
// Collector's servicegraph connector.
//
// # How an edge is made
//
// Register a *Graph as an extra span processor on the TracerProvider of every service of
// the process (services/telemetry.Config.SpanProcessors). Only spans of kind CLIENT,
// SERVER, PRODUCER and CONSUMER count, and the node name is the service.name of the
// span's resource.
//
//   - A CLIENT or PRODUCER span is the client side of an edge, keyed by (trace id, span id).
//   - A SERVER or CONSUMER span is the server side, keyed by (trace id, parent span id).
//   - When both sides of a key have ended, the pair is one request on the edge
//     client -> server and is forgotten (a second consumer of the same producer span does
//     not make a second edge, as in Tempo).
//   - PRODUCER or CONSUMER on either side makes the edge ConnectionMessaging
//     ("messaging_system"); otherwise it is ConnectionRequest (Tempo leaves its
//     connection_type label empty for these).
//   - A CLIENT span carrying database attributes (db.namespace, db.name, db.system.name or
//     db.system) is a complete ConnectionDatabase edge at once, without waiting for a
//     server span. Its server node is named like Tempo does: service.peer.name /
//     peer.service, then server.address, then network.peer.address[:port], then the
//     database name (db.namespace or db.name). The natsotel KeyValue spans carry the bucket
//     as db.namespace, so a bucket such as "orders" becomes a node.
//   - A SERVER or CONSUMER span without a parent (a root, e.g. a request sent by `nats req`)
//     makes an edge from the virtual client node "user" (ConnectionVirtual).
//   - A side left unpaired for Config.TTL expires. If it was a client side with a peer
//     attribute (peer.service, service.peer.name, db.namespace, db.name, db.system.name,
//     db.system) it becomes an edge to that virtual node; otherwise it only counts in
//     Snapshot.Expired.
//   - Either side with status Error makes the request failed.
//
// # What a Snapshot reports
//
// Per edge: total requests and failures since the start, the request rate and error share
// over the last Config.Window, and latency percentiles over the last one to two windows.
// Latency is reported for both sides: ServerLatency (the SERVER or CONSUMER span's
// duration, which is what Grafana's service graph table shows; for database edges the
// CLIENT span's duration, as Tempo copies it) and ClientLatency (the CLIENT or PRODUCER
// span's duration, network and queueing included). Render prints the server-side p50 and
// p99.
package servicegraph
