// Package telemetry is the one OpenTelemetry bootstrap every binary of the shop uses:
// traces, metrics and logs, configured by the standard OTEL_* variables, which the SDK,
// its exporters and contrib read themselves. This package adds only what they do not do.
//
// # What New sets up
//
//   - A resource (resource.New): service.name and service.version from Config, a fresh
//     service.instance.id per Telemetry, telemetry.sdk.*, host.name, process.pid and
//     runtime, then OTEL_RESOURCE_ATTRIBUTES, then OTEL_SERVICE_NAME (later wins).
//   - Exporters from go.opentelemetry.io/contrib/exporters/autoexport:
//     OTEL_{TRACES,METRICS,LOGS}_EXPORTER (otlp, console, none; metrics also prometheus),
//     and for OTLP every OTEL_EXPORTER_OTLP_* variable (endpoint, protocol http/protobuf
//     or grpc, headers, timeout, compression, certificates), read by the exporter itself.
//     One deviation from the specification's defaults: a signal with neither
//     OTEL_<SIGNAL>_EXPORTER nor an OTLP endpoint variable set is not exported at all
//     (instead of to localhost:4318), so a binary run without a collector stays quiet.
//   - A TracerProvider with the sampler from OTEL_TRACES_SAMPLER / _ARG (default
//     parentbased_always_on) and a batch span processor (OTEL_BSP_*: a queue of 2048 spans;
//     when the backend is slow or dead, new spans are dropped instead of blocking callers),
//     plus Config.SpanProcessors.
//   - A MeterProvider with the periodic reader (OTEL_METRIC_EXPORT_INTERVAL, _TIMEOUT),
//     Config.MetricReaders, and the Go runtime metrics of
//     go.opentelemetry.io/contrib/instrumentation/runtime.
//   - A LoggerProvider with a batch log processor (OTEL_BLRP_*, bounded too), and
//     Telemetry.Logger: a log/slog logger that writes readable text (with trace_id and
//     span_id taken from the context) to Config.Stderr and, through the otelslog bridge,
//     OTLP log records that carry the same ids. Log with the context:
//     logger.InfoContext(ctx, ...).
//   - The propagators OTEL_PROPAGATORS names (contrib's autoprop: default
//     tracecontext,baggage; none sends and reads no context), and the contrib baggagecopy
//     processors that copy the load generator's baggage members (synthetic, loadgen.scenario,
//     loadgen.burst: see CopiedBaggage) onto every span and log record, in every service the
//     request reaches.
//
// With OTEL_SDK_DISABLED=true the three providers are no-ops, as the specification asks:
// nothing is recorded (Config's processors and readers see nothing either) and nothing
// is exported; Logger still writes text to Config.Stderr.
//
// Nothing is installed globally: several services can live in one process (the demo,
// the tests), each with its own providers and service.name. They share the process
// environment, so OTEL_SERVICE_NAME would rename them all: leave it unset there. Hand the
// providers to natsotel with Telemetry.NATSOptions.
//
// Invalid values the SDK reads on its own (an unknown sampler, a malformed endpoint URL
// or timeout) are reported through the OpenTelemetry error handler (otel.SetErrorHandler;
// app.Main sends it to stderr) and replaced by the default. OTEL_PROPAGATORS is the
// exception: unknown names are reported and skipped, and only a list of nothing but
// unknown names falls back to tracecontext,baggage (names are not trimmed: write
// "tracecontext,baggage", not "tracecontext, baggage").
//
// # Profiles linked to spans
//
// With Config.Profile set (app.StartTelemetry sets it: one service per process) and
// PYROSCOPE_SERVER_ADDRESS set, New starts github.com/grafana/pyroscope-go: the process's
// CPU profile is pushed every 15 s to that Pyroscope as application service.name (its
// service_name label). The TracerProvider is wrapped with github.com/grafana/otel-profiling-go:
// while a span runs, its goroutine's CPU samples carry the pprof labels span_id and
// span_name of the local root span (the span that entered this process, such as
// "process order.create"), and that span gets the attribute pyroscope.profile.id, which
// Grafana's traces-to-profiles link uses. PYROSCOPE_BASIC_AUTH_USER,
// PYROSCOPE_BASIC_AUTH_PASSWORD and PYROSCOPE_TENANT_ID are passed on. The names are
// those of Pyroscope's own agents (the OpenTelemetry specification has no variables for
// pushing profiles). Unset, nothing is profiled and spans are not wrapped. Uploads run in
// the background (at most 20 queued, then dropped, 30 s timeout each), so a Pyroscope
// that is down or hangs costs no request anything; Shutdown pushes what was sampled last.
//
// # A dead backend never blocks a request
//
// Spans and log records are queued in memory (bounded) and exported in the background
// with a timeout; metrics are collected periodically. A closed port or a server that never
// answers costs dropped telemetry, never request latency. Shutdown flushes what it can and
// returns when its context is done.
//
// # Why not otelconf
//
// go.opentelemetry.io/contrib/otelconf builds the same providers from a declarative
// YAML file (OTEL_CONFIG_FILE). It is not used here: every deployment of this repository
// (compose.yaml, the e2e harness, the README) configures telemetry with the OTEL_*
// variables, which otelconf does not read; its schema is still experimental and changes
// between releases; and it would not shorten this package, which mostly wires Config's
// processors, the slog handler and runtime metrics, none of which a file can name.
package telemetry
