// Package telemetry is the one OpenTelemetry bootstrap every binary of the shop uses:
// traces, metrics and logs over OTLP/HTTP, configured by the standard OTEL_* variables.
//
// # What New sets up
//
//   - A TracerProvider with a bounded batch span processor (queue of 2048 spans; when the
//     backend is slow or dead, new spans are dropped instead of blocking callers), the
//     sampler from OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG (default
//     parentbased_always_on), and any extra processors from Config.SpanProcessors.
//   - A MeterProvider with a periodic OTLP reader (OTEL_METRIC_EXPORT_INTERVAL,
//     OTEL_METRIC_EXPORT_TIMEOUT), Config.MetricReaders, and the Go runtime metrics of
//     go.opentelemetry.io/contrib/instrumentation/runtime.
//   - A LoggerProvider with a bounded batch log processor, and Telemetry.Logger: a
//     log/slog logger that writes readable text (with trace_id and span_id taken from the
//     context) to Config.Stderr and, through the otelslog bridge, OTLP log records that
//     carry the same trace and span ids. Log with the context: logger.InfoContext(ctx, ...).
//   - A TraceContext + Baggage propagator, and processors that copy the load generator's
//     baggage members (synthetic, loadgen.scenario, loadgen.burst: see CopiedBaggage) onto
//     every span and log record, in every service the request reaches.
//   - A resource with service.name, service.version, a unique service.instance.id per
//     Telemetry, host.name, process.pid, telemetry.sdk.*, then OTEL_RESOURCE_ATTRIBUTES,
//     then OTEL_SERVICE_NAME (later wins, as the specification asks).
//
// Nothing is installed globally: several services can live in one process (the demo,
// the tests), each with its own providers and service.name. Hand the providers to
// natsotel with Telemetry.NATSOptions.
//
// # Configuration
//
// Every variable is read through Config.Getenv (default os.Getenv), so a process hosting
// several services can give each its own environment. Exporters are configured with
// explicit options computed from those values; the exporters also read the process
// environment on their own, but every setting read here (endpoint, headers, compression,
// timeout) is passed explicitly and so overrides it. Only TLS certificate variables
// (OTEL_EXPORTER_OTLP_CERTIFICATE, ...) are left to the exporters and therefore come from
// the process environment.
//
// An exporter exists only when an endpoint is configured for its signal:
//
//	OTEL_EXPORTER_OTLP_ENDPOINT          base URL, e.g. http://localhost:4318 (/v1/traces, /v1/metrics, /v1/logs appended)
//	OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_ENDPOINT   full per-signal URL, used as is
//	OTEL_EXPORTER_OTLP_[{SIGNAL}_]HEADERS               k=v,k2=v2 (values URL-decoded)
//	OTEL_EXPORTER_OTLP_[{SIGNAL}_]TIMEOUT               milliseconds, default 10000
//	OTEL_EXPORTER_OTLP_[{SIGNAL}_]COMPRESSION           gzip or none
//	OTEL_EXPORTER_OTLP_[{SIGNAL}_]PROTOCOL              only http/protobuf is supported
//	OTEL_{TRACES,METRICS,LOGS}_EXPORTER                 otlp (default) or none
//	OTEL_SDK_DISABLED=true                              no exporters at all
//
// # A dead backend never blocks a request
//
// Spans and log records are queued in memory (bounded) and exported in the background
// with a timeout; metrics are collected periodically. A closed port or a server that never
// answers costs dropped telemetry, never request latency. Shutdown flushes what it can and
// returns when its context is done.
package telemetry
