// Package harness runs the shop the way compose does, but as plain processes on loopback:
// a real nats-server with JetStream, a real OpenTelemetry Collector (servicegraph and
// spanmetrics connectors, file exporter), a real Prometheus with its OTLP receiver, the
// repository's own service and load generator binaries, and the nats CLI.
//
// Tools come from e2e/tools/build.sh (`make tools`), which builds them from the Go module
// proxy into $TOOLS_DIR (default <repo>/.cache/tools). When they are missing, RequireTools
// fails the test under CI (CI=true) and skips it elsewhere, naming the command to run.
//
// A test usually does:
//
//	tools := harness.RequireTools(t)
//	st := harness.StartStack(t, tools, harness.StackConfig{})       // nats-server, collector, Prometheus
//	bins := builder.Get(t)                                           // go build, once per test binary
//	st.Start(t, harness.ProcessConfig{Name: "order", Path: bins.Order, Env: st.ServiceEnv("order")})
//	...
//	st.Prometheus.WaitQuery(t, `traces_service_graph_request_total`, 30*time.Second, harness.NonEmpty)
//	spans := st.Collector.Spans(t)
//
// Every process writes stdout and stderr to its own log file; when the test fails, the stack
// prints the tail of each log. Processes get SIGTERM at cleanup, then SIGKILL after a grace
// period. Nothing here sleeps in place of a signal: readiness is polled with deadlines
// (HTTP ready endpoints, TCP ports, micro $SRV.PING replies) because it is external state.
package harness
