// Package systemtest runs the three services together on one in-process JetStream server
// (several replicas each, every instance with its own connection and telemetry) and
// checks what no single service can: the order invariant under concurrent load and under
// injected faults, and that no card number or customer id reaches telemetry.
package systemtest
