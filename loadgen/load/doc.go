// Package load is the shop's load generator: it sends order traffic through a
// natsotel-instrumented NATS connection and measures what comes back.
//
// # Open and closed loop
//
// In open loop (the default) request i is due at its intended time, one interval (1/rate)
// after request i-1, whatever happened to earlier requests. Latency runs from the intended
// time to the reply, so a slow system cannot hide its queueing by slowing the generator
// down (no coordinated omission). A request sent more than Config.LateThreshold after its
// intended time counts as late; one whose time comes while Config.Concurrency requests are
// in flight is not sent and counts as dropped. The rate can change while running
// (Runner.SetRate, Runner.Burst, or the "loadgen.control" micro endpoint).
//
// In closed loop Config.Workers goroutines send back to back: the maximum throughput, with
// latency measured from each actual send.
//
// A Runner sends on one Requester; Spread makes one of several connections
// (Config.Connections says how many the caller should make).
//
// # Scenarios
//
// Each request is drawn from a weighted Mix of scenarios (valid_order, out_of_stock,
// declined_card, malformed, lookup) built from services/contracts, and each scenario knows
// which outcomes are correct answers: a valid order may be confirmed or meet a 409 or a
// 402, an out-of-stock order must get 409, a declined card 402, malformed input 400, and a
// lookup of a recent order must find it. Anything else (a timeout, no responders, a 500, a
// 400 for a valid order) counts in Summary.Unexpected.
//
// # Telemetry
//
// Every request is the root CLIENT span of its own trace (natsotel's "request" span;
// Run's context never parents it) and carries the baggage members synthetic=true and
// loadgen.scenario=<scenario>. With Config.MeterProvider set, the generator records
// loadgen.request.duration (by loadgen.scenario and loadgen.outcome),
// loadgen.requests.late, loadgen.requests.dropped and loadgen.rate.target.
//
// # Control
//
// Runner.AddControlService registers the "loadgen" micro service, whose "control"
// endpoint on ControlSubject reads or changes the rate:
//
//	nats req loadgen.control ''                                         # read
//	nats req loadgen.control '{"rate": 50}'                             # 50 req/s
//	nats req loadgen.control '{"burst_multiplier": 4, "burst_seconds": 30}'
package load
