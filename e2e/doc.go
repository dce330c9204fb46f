// Package e2e proves the shop's telemetry with the nearest real pipeline that builds from the
// Go module proxy: the service and load generator binaries run as separate processes against
// a real nats-server, export OTLP to a real OpenTelemetry Collector whose servicegraph
// connector implements Tempo's service-graph algorithm, and the collector exports to a real
// Prometheus with its OTLP receiver configured as in grafana/otel-lgtm. The tests then ask
// Prometheus' HTTP API what Grafana would show, and read the collector's exported traces and
// logs.
//
// Run `make e2e` (it runs `make tools` first). The harness lives in package harness, the
// collector, Prometheus and nats-server configuration in package config.
//
// The tests:
//   - TestPipelineSelfTest: the collector -> Prometheus pipeline alone, fed by the OTel SDK.
//   - TestShop: nats-server, collector, Prometheus, order, two inventory replicas, billing and
//     the micro probe as processes configured only by environment; a bounded load generator
//     run; then the service-graph edges and failed counts, semconv messaging and Go runtime
//     metrics, probe metrics, exemplars, log-trace correlation, a plain nats.go client's
//     Traceparent, and every PromQL query of deploy/grafana/dashboards.
//   - TestREADMECommands: the nats CLI commands README.md shows, against the running shop.
//
// Tests named TestFault* are left to the fault suite (`make faults`), which reuses the harness.
//
// Environment:
//
//	TOOLS_DIR     where e2e/tools/build.sh put the tools (default <repo>/.cache/tools)
//	CI=true       missing tools fail the tests instead of skipping them
//	E2E_LOG_DIR   keep every process log, config and exported telemetry file under
//	              $E2E_LOG_DIR/<test name> (default: a temporary directory, removed)
//	E2E_RACE=0    build the repository's binaries without -race
package e2e
