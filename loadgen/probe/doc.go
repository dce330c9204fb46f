// Package probe watches NATS micro services from the outside, the way `nats micro ping`
// and `nats micro stats` do, and turns what it sees into OpenTelemetry metrics.
//
// Every Config.Interval a Probe:
//
//  1. discovers instances: it publishes one "$SRV.PING" request and collects every reply
//     that arrives within Config.Window on a plain inbox subscription;
//  2. pings each instance it knows (discovered now or earlier) directly on
//     "$SRV.PING.<name>.<id>" and records the round trip;
//  3. reads "$SRV.STATS.<name>.<id>": the framework's own per-endpoint request count,
//     error count and average processing time, as the service reports them.
//
// The probe's traffic uses the plain *nats.Conn it is given: it is deliberately not traced
// (discovery is not part of the workload, and thousands of ping spans would drown the
// service graph).
//
// # Metrics
//
// The meter is named ScopeName. Attributes nats.micro.service (the micro name) and
// nats.micro.instance (the service id) on every series; endpoint series add
// nats.micro.endpoint and messaging.destination.name (the endpoint subject).
//
//	nats.micro.ping.duration                      histogram, s
//	nats.micro.up                                 gauge, 1 answered the last probe, 0 missed it
//	nats.micro.endpoint.requests                  counter (cumulative, from $SRV.STATS)
//	nats.micro.endpoint.errors                    counter (cumulative, from $SRV.STATS)
//	nats.micro.endpoint.processing_time.average   gauge, s
//	nats.micro.instances                          gauge, instances up by nats.micro.service
//	                                              and nats.server.name (Config.MonitorURLs)
//
// With Config.MonitorURLs (a cluster's servers), each round also reads every server's
// /varz and /connz?subs=1 and finds each instance's connection by its
// "$SRV.PING.<name>.<id>" subscription: Instance.Server and Round.PerServer say which
// server every instance is connected to.
//
// An instance that stops answering is reported with up=0 until it has missed
// Config.MissedLimit consecutive probes (default 3); then it is forgotten and its series
// stop. A restarted service has a new id, so it appears as a new instance.
package probe
