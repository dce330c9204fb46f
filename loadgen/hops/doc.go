// Package hops puts NATS server hops into traces: it turns the message trace events
// nats-server publishes (ADR-41, server 2.11+) into spans of the trace the message belongs
// to, so a trace shows where a message spent its time inside NATS: how long after arriving
// it was handed to each subscriber, and how long JetStream took to store it.
//
// # What the server sends
//
// When an account sets
//
//	msg_trace { dest: "nats.hops", sampling: 100 }
//
// every message published in it with a sampled W3C traceparent header (natsotel puts one on
// every request and publish of a sampled trace) makes each server on its path publish one
// JSON event to "nats.hops": the message's headers, and timestamped steps: ingress (which
// connection sent it, on which subject), subject mapping, stream export, service import,
// JetStream (the stream stored it; the timestamp is taken after the store), and one egress
// per delivery (to a client subscription, or forwarded to a route, gateway or leafnode).
// The server never emits spans itself and never changes the trace id.
//
// msg_trace can only be set on a named account (the default account $G is reserved), and
// the server refuses to trace a message whose publisher may not publish to the trace
// destination: it drops the message with a permission violation. So every user that sends
// traced messages needs publish permission on it; only the bridge should subscribe
// (events carry every header of the traced message). See deploy/nats/nats.conf.
//
// # Spans
//
// For each event, Record makes a span "hop <server name>" from the ingress to the server's
// last step, whose parent is the span whose context the message carried: the publisher's
// CLIENT (request) or PRODUCER (publish) span. Under it, one span per step, each from the
// ingress to that step:
//
//	request order.create              CLIENT    loadgen
//	├─ hop shop-nats                  INTERNAL  nats-hops   ingress -> last step
//	│  └─ deliver order.create        INTERNAL  nats-hops   ingress -> handed to order's connection
//	└─ process order.create           SERVER    order
//	   └─ send events.order.confirmed PRODUCER  order
//	      └─ hop shop-nats            INTERNAL  nats-hops
//	         └─ store ORDER_EVENTS    INTERNAL  nats-hops   ingress -> stored
//
// A server that received the message over a route, gateway or leafnode sends its own event;
// its hop span is also a child of the publisher's span, with nats.trace.hop naming the
// forwarded copy ("1", "1.2", ...) that the origin's "forward route" span carries too.
// Step spans are named "deliver <subscription>" (inbox subscriptions are "(temporary)"),
// "forward <route|gateway|leafnode>", "store <stream>", "map subject", "service import" and
// "stream export". A step the server marks with an error (a denied publish, a message not
// delivered, a failed store) has status Error and the server's message as description.
//
// # Span kinds and the service graph
//
// Every hop span is INTERNAL. Tempo and the Collector's servicegraph connector pair a
// CLIENT or PRODUCER span with a SERVER or CONSUMER child; INTERNAL spans are never paired,
// so the hops add no edge and, above all, take none away: had the hop been a SERVER span,
// it would be a second child of the caller's CLIENT span, and pairing takes one child per
// parent, so `loadgen -> order` could turn into `loadgen -> nats-hops`. NATS is therefore
// not a node of the graph: it is the medium of every edge (request edges measure the round
// trip through it, messaging_system edges the time from send to process), not a service
// that answers. Making it a node would split each edge in two, which only rewriting the
// services' own parent links could do. The hop spans come under their own service.name
// (the TracerProvider's resource), so Traces Drilldown can select or hide them.
//
// # Sampling
//
// Three gates, in order: the publisher's sampler (only a sampled traceparent triggers the
// server), the account's msg_trace sampling (a percentage of those), and the bridge's
// TracerProvider sampler, which should be parent-based (the default): the hop spans then
// follow the publisher's decision. Each traced message costs the server one JSON event per
// server (about 0.5 to 1 KB) and the bridge one decode and a few spans; lower msg_trace
// sampling to thin them without touching the services.
//
// Timestamps are the server's clock, the publisher's span the client's: on one host they
// agree, across hosts they are as good as the clocks' synchronisation.
//
// # Untrusted input
//
// Because every publisher may publish to the trace destination, anyone with credentials
// in the account can forge events. The bridge bounds what a forged event can do: at most
// MaxEventBytes after decompression, MaxSteps child spans, strings cut to 256 bytes, only
// INTERNAL spans (so no service-graph edge); malformed events are returned as errors and
// never panic (a fuzz test checks). It cannot tell a forged event from a real one.
package hops
