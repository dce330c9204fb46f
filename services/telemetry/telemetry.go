package telemetry

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/contrib/instrumentation/runtime"
	"go.opentelemetry.io/contrib/processors/baggagecopy"
	"go.opentelemetry.io/contrib/propagators/autoprop"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/log"
	lognoop "go.opentelemetry.io/otel/log/noop"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/natsotel/reference/natsotel"
)

// Config configures New. The zero value plus a ServiceName is a working setup that logs
// to os.Stderr at Info level; everything else comes from the OTEL_* environment.
type Config struct {
	// ServiceName is service.name unless OTEL_SERVICE_NAME (or service.name in
	// OTEL_RESOURCE_ATTRIBUTES) overrides it.
	ServiceName string
	// ServiceVersion is service.version.
	ServiceVersion string
	// SpanProcessors are added to the TracerProvider besides the exporting batcher (for
	// example a tracetest.SpanRecorder, or the demo's live service graph).
	SpanProcessors []sdktrace.SpanProcessor
	// MetricReaders are added to the MeterProvider besides the exporting reader (for
	// example a sdkmetric.ManualReader in tests).
	MetricReaders []sdkmetric.Reader
	// LogProcessors are added to the LoggerProvider besides the exporting batcher.
	LogProcessors []sdklog.Processor
	// Stderr receives the readable text logs; default os.Stderr. Use io.Discard to
	// silence them.
	Stderr io.Writer
	// LogLevel is the minimum level of Logger (both text and OTLP); default Info.
	LogLevel slog.Level
	// Profile pushes the process's CPU profile to Pyroscope, with span ids on the
	// samples, when PYROSCOPE_SERVER_ADDRESS is set (see the package documentation). The
	// Go CPU profiler is one per process: set it on one Telemetry per process at most.
	Profile bool
}

// Telemetry holds one service's providers. Nothing is installed globally. With
// OTEL_SDK_DISABLED=true the providers are no-ops.
type Telemetry struct {
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	LoggerProvider log.LoggerProvider
	Propagator     propagation.TextMapPropagator
	// Logger logs readable text to Config.Stderr and OTLP log records, both with the
	// trace and span ids of the context passed to its *Context methods.
	Logger *slog.Logger

	shutdown []func(context.Context) error
}

// CopiedBaggage selects the baggage members New copies onto every span and log record
// started or emitted with them in the context: "synthetic" and the "loadgen."-prefixed
// members the load generator sets (scenario, burst). So a trace shows which scenario
// made it in every service, and Traces Drilldown can split by it. Other members are not
// copied: baggage comes from the caller, and attributes must never carry customer data.
func CopiedBaggage(m baggage.Member) bool {
	return m.Key() == "synthetic" || strings.HasPrefix(m.Key(), "loadgen.")
}

// New builds the providers described in the package documentation. Configuration errors
// (an unsupported exporter or protocol, malformed OTEL_RESOURCE_ATTRIBUTES) are
// returned; an unreachable endpoint is not an error.
func New(ctx context.Context, cfg Config) (*Telemetry, error) {
	if cfg.ServiceName == "" && os.Getenv("OTEL_SERVICE_NAME") == "" {
		return nil, errors.New("telemetry: ServiceName or OTEL_SERVICE_NAME is required")
	}
	if cfg.Stderr == nil {
		cfg.Stderr = os.Stderr
	}
	t := &Telemetry{Propagator: autoprop.NewTextMapPropagator()} // OTEL_PROPAGATORS, default tracecontext,baggage
	if strings.EqualFold(strings.TrimSpace(os.Getenv("OTEL_SDK_DISABLED")), "true") {
		t.TracerProvider, t.MeterProvider, t.LoggerProvider = tracenoop.NewTracerProvider(), metricnoop.NewMeterProvider(), lognoop.NewLoggerProvider()
		t.Logger = newLogger(cfg.Stderr, cfg.LogLevel, cmp.Or(os.Getenv("OTEL_SERVICE_NAME"), cfg.ServiceName), nil)
		return t, nil
	}

	attrs := []attribute.KeyValue{semconv.ServiceName(cfg.ServiceName)}
	if cfg.ServiceVersion != "" {
		attrs = append(attrs, semconv.ServiceVersion(cfg.ServiceVersion))
	}
	// Later options win: the environment overrides Config.
	res, err := resource.New(ctx,
		resource.WithService(), // service.instance.id: a fresh UUID per Telemetry
		resource.WithAttributes(attrs...),
		resource.WithFromEnv(), // OTEL_RESOURCE_ATTRIBUTES, then OTEL_SERVICE_NAME
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithProcessPID(),
		resource.WithProcessRuntimeName(),
		resource.WithProcessRuntimeVersion(),
	)
	if err != nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	spans, err := exporter(ctx, "TRACES", autoexport.NewSpanExporter, autoexport.IsNoneSpanExporter)
	if err != nil {
		return nil, err
	}
	reader, err := exporter(ctx, "METRICS", autoexport.NewMetricReader, autoexport.IsNoneMetricReader)
	if err != nil {
		return nil, errors.Join(err, shutdownIf(ctx, spans))
	}
	logs, err := exporter(ctx, "LOGS", autoexport.NewLogExporter, autoexport.IsNoneLogExporter)
	if err != nil {
		return nil, errors.Join(err, shutdownIf(ctx, spans), shutdownIf(ctx, reader))
	}

	// The baggage processors come first, so every later processor sees their attributes.
	topts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res),
		sdktrace.WithSpanProcessor(baggagecopy.NewSpanProcessor(CopiedBaggage))}
	if spans != nil {
		// Bounded queue (OTEL_BSP_*): when the backend is slow or dead, spans are dropped.
		topts = append(topts, sdktrace.WithBatcher(spans))
	}
	for _, p := range cfg.SpanProcessors {
		topts = append(topts, sdktrace.WithSpanProcessor(p))
	}
	tp := sdktrace.NewTracerProvider(topts...) // sampler from OTEL_TRACES_SAMPLER[_ARG]

	mopts := []sdkmetric.Option{sdkmetric.WithResource(res)}
	for _, r := range append([]sdkmetric.Reader{reader}, cfg.MetricReaders...) {
		if r != nil {
			mopts = append(mopts, sdkmetric.WithReader(r))
		}
	}
	mp := sdkmetric.NewMeterProvider(mopts...)

	lopts := []sdklog.LoggerProviderOption{sdklog.WithResource(res),
		sdklog.WithProcessor(baggagecopy.NewLogProcessor(CopiedBaggage))}
	if logs != nil {
		lopts = append(lopts, sdklog.WithProcessor(sdklog.NewBatchProcessor(logs))) // OTEL_BLRP_*
	}
	for _, p := range cfg.LogProcessors {
		lopts = append(lopts, sdklog.WithProcessor(p))
	}
	lp := sdklog.NewLoggerProvider(lopts...)

	t.TracerProvider, t.MeterProvider, t.LoggerProvider = tp, mp, lp
	t.shutdown = []func(context.Context) error{tp.Shutdown, mp.Shutdown, lp.Shutdown}
	name, _ := res.Set().Value(semconv.ServiceNameKey)
	t.Logger = newLogger(cfg.Stderr, cfg.LogLevel, name.AsString(), lp)
	if profiling(cfg) {
		var stop func(context.Context) error
		if t.TracerProvider, stop, err = startProfiling(name.AsString(), tp); err != nil {
			return nil, errors.Join(err, t.Shutdown(ctx))
		}
		t.shutdown = append(t.shutdown, stop)
	}
	if err := runtime.Start(runtime.WithMeterProvider(mp)); err != nil {
		return nil, errors.Join(fmt.Errorf("telemetry: runtime metrics: %w", err), t.Shutdown(ctx))
	}
	return t, nil
}

// exporter builds the exporter (or metric reader) of signal with autoexport, which reads
// OTEL_<signal>_EXPORTER and the exporters' own OTEL_EXPORTER_OTLP_* variables. It
// returns the zero T when none is wanted: OTEL_<signal>_EXPORTER=none, or the variable
// and every OTLP endpoint variable of the signal are unset. (The specification's default
// would send to localhost:4318 and report a failed export every few seconds in every
// binary run without a collector.)
func exporter[T comparable, O any](ctx context.Context, signal string, build func(context.Context, ...O) (T, error), isNone func(T) bool) (T, error) {
	var zero T
	if os.Getenv("OTEL_"+signal+"_EXPORTER") == "" && os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" &&
		os.Getenv("OTEL_EXPORTER_OTLP_"+signal+"_ENDPOINT") == "" {
		return zero, nil
	}
	exp, err := build(ctx)
	if err != nil {
		return zero, fmt.Errorf("telemetry: %s exporter: %w", strings.ToLower(signal), err)
	}
	if isNone(exp) {
		return zero, nil
	}
	return exp, nil
}

// shutdownIf shuts down x if it was built.
func shutdownIf(ctx context.Context, x any) error {
	if s, ok := x.(interface{ Shutdown(context.Context) error }); ok {
		return s.Shutdown(ctx)
	}
	return nil
}

// NATSOptions returns the natsotel options that make a natsotel.Conn use these
// providers and this propagator.
func (t *Telemetry) NATSOptions() []natsotel.Option {
	return []natsotel.Option{
		natsotel.WithTracerProvider(t.TracerProvider),
		natsotel.WithMeterProvider(t.MeterProvider),
		natsotel.WithPropagators(t.Propagator),
		// natsotel recovers handler panics (answered 500, recorded on the span): log them.
		natsotel.WithPanicHandler(func(ctx context.Context, err *natsotel.PanicError) {
			t.Logger.ErrorContext(ctx, "handler panicked", "subject", err.Subject,
				"panic", fmt.Sprint(err.Value), "stack", string(err.Stack))
		}),
	}
}

// Shutdown flushes and stops the three providers, in parallel, and returns when they are
// done or ctx is, whichever comes first. Give it a deadline: with a backend that hangs,
// it returns ctx's error at that deadline.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	errs := make(chan error, len(t.shutdown))
	for _, fn := range t.shutdown {
		go func() { errs <- fn(ctx) }()
	}
	var err error
	for range t.shutdown {
		select {
		case e := <-errs:
			err = errors.Join(err, e)
		case <-ctx.Done():
			return errors.Join(err, fmt.Errorf("telemetry: shutdown: %w", ctx.Err()))
		}
	}
	if err != nil {
		return fmt.Errorf("telemetry: shutdown: %w", err)
	}
	return nil
}
