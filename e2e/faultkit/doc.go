// Package faultkit is what the fault tests (e2e/fault_*_test.go, `make faults`) share:
//
//   - StartLoad (and Dial): the repository's load generator (package loadgen/load, the
//     code behind the loadgen binary) run in the test process through a Recorder, so a
//     test knows every order id the load generator saw confirmed or failed and when each
//     request started, ended and how (ok, a micro code, timeout, no_responders). Spread
//     drives several copies of the shop from one load generator, request by request.
//   - ReadState, WaitSettled, Check and CheckLoad: the shop's durable state read straight from the four KeyValue
//     buckets with a plain nats.go JetStream client (no service code involved), and the
//     invariants a fault must not break: nothing lost, nothing oversold, nothing charged
//     twice, every failed order's stock returned.
//   - Blackhole and ClosedPort: telemetry backends that are dead in the two ways that
//     matter (connection refused; accepted and never answered).
//   - RSS, SetFaults, Poll, Quantile: a process's resident memory from /proc, the
//     services' runtime fault switch (contracts.ControlSubject), polling external state
//     with a deadline, and latency percentiles of recorded calls.
//
// Nothing here sleeps in place of a signal: state that is only observable from outside
// (KeyValue contents, micro discovery) is polled with a deadline.
package faultkit
