package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/runtime"
	"go.opentelemetry.io/contrib/processors/baggagecopy"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/natsotel/reference/natsotel"
)

// Config configures New. The zero value (plus a ServiceName) is a working setup that
// reads the process environment and logs to os.Stderr at Info level.
type Config struct {
	// ServiceName is service.name unless OTEL_SERVICE_NAME overrides it.
	ServiceName string
	// ServiceVersion is service.version.
	ServiceVersion string
	// Getenv reads configuration variables; default os.Getenv.
	Getenv func(string) string
	// SpanProcessors are added to the TracerProvider besides the OTLP batcher (for
	// example a tracetest.SpanRecorder, or the demo's live service graph).
	SpanProcessors []sdktrace.SpanProcessor
	// MetricReaders are added to the MeterProvider besides the OTLP periodic reader (for
	// example a sdkmetric.ManualReader in tests).
	MetricReaders []sdkmetric.Reader
	// LogProcessors are added to the LoggerProvider besides the OTLP batcher.
	LogProcessors []sdklog.Processor
	// Stderr receives the readable text logs; default os.Stderr. Use io.Discard to
	// silence them.
	Stderr io.Writer
	// LogLevel is the minimum level of Logger (both text and OTLP); default Info.
	LogLevel slog.Level
}

// Telemetry holds one service's providers. Nothing is installed globally.
type Telemetry struct {
	TracerProvider *sdktrace.TracerProvider
	MeterProvider  *sdkmetric.MeterProvider
	LoggerProvider *sdklog.LoggerProvider
	Propagator     propagation.TextMapPropagator
	// Logger logs readable text to Config.Stderr and OTLP log records, both with the
	// trace and span ids of the context passed to its *Context methods.
	Logger *slog.Logger
}

// CopiedBaggage selects the baggage members New copies onto every span and log record
// started or emitted with them in the context: "synthetic" and the "loadgen."-prefixed
// members the load generator sets (scenario, burst). So a trace shows which scenario
// made it in every service, and Traces Drilldown can split by it. Other members are not
// copied: baggage comes from the caller, and attributes must never carry customer data.
func CopiedBaggage(m baggage.Member) bool {
	return m.Key() == "synthetic" || strings.HasPrefix(m.Key(), "loadgen.")
}

// Queue bounds: when the backend is slow or dead, telemetry beyond these is dropped
// rather than held in memory or allowed to slow requests.
const (
	spanQueueSize = 2048
	logQueueSize  = 2048
)

// New builds the providers described in the package documentation. Configuration errors
// (an unparsable endpoint, an unsupported sampler or protocol) are returned; an
// unreachable endpoint is not an error.
func New(ctx context.Context, cfg Config) (*Telemetry, error) {
	if cfg.Getenv == nil {
		cfg.Getenv = os.Getenv
	}
	if cfg.Stderr == nil {
		cfg.Stderr = os.Stderr
	}
	e := env(cfg.Getenv)
	if cfg.ServiceName == "" && e.get("OTEL_SERVICE_NAME") == "" {
		return nil, errors.New("telemetry: ServiceName or OTEL_SERVICE_NAME is required")
	}

	res, err := newResource(cfg, e)
	if err != nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	sampler, err := e.sampler()
	if err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	traceExp, metricExp, logExp, err := newExporters(ctx, e)
	if err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}

	// Traces. The baggage processor runs first, so every processor sees its attributes.
	topts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res), sdktrace.WithSampler(sampler),
		sdktrace.WithSpanProcessor(baggagecopy.NewSpanProcessor(CopiedBaggage))}
	if traceExp.exp != nil {
		topts = append(topts, sdktrace.WithBatcher(traceExp.exp,
			sdktrace.WithMaxQueueSize(spanQueueSize),
			sdktrace.WithMaxExportBatchSize(512),
			sdktrace.WithBatchTimeout(time.Second),
			sdktrace.WithExportTimeout(traceExp.timeout),
		))
	}
	for _, sp := range cfg.SpanProcessors {
		topts = append(topts, sdktrace.WithSpanProcessor(sp))
	}
	tp := sdktrace.NewTracerProvider(topts...)

	// Metrics.
	interval, err := parseMillis(e.get("OTEL_METRIC_EXPORT_INTERVAL"), 60*time.Second)
	if err != nil {
		return nil, fmt.Errorf("telemetry: OTEL_METRIC_EXPORT_INTERVAL: %w", err)
	}
	exportTimeout, err := parseMillis(e.get("OTEL_METRIC_EXPORT_TIMEOUT"), 30*time.Second)
	if err != nil {
		return nil, fmt.Errorf("telemetry: OTEL_METRIC_EXPORT_TIMEOUT: %w", err)
	}
	mopts := []sdkmetric.Option{sdkmetric.WithResource(res)}
	if metricExp.exp != nil {
		mopts = append(mopts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(metricExp.exp,
			sdkmetric.WithInterval(interval),
			sdkmetric.WithTimeout(min(exportTimeout, metricExp.timeout)),
		)))
	}
	for _, r := range cfg.MetricReaders {
		mopts = append(mopts, sdkmetric.WithReader(r))
	}
	mp := sdkmetric.NewMeterProvider(mopts...)

	// Logs. The baggage processor must come before the exporting ones: log processors
	// run in order on the same record.
	lopts := []sdklog.LoggerProviderOption{sdklog.WithResource(res),
		sdklog.WithProcessor(baggagecopy.NewLogProcessor(CopiedBaggage))}
	if logExp.exp != nil {
		lopts = append(lopts, sdklog.WithProcessor(sdklog.NewBatchProcessor(logExp.exp,
			sdklog.WithMaxQueueSize(logQueueSize),
			sdklog.WithExportInterval(time.Second),
			sdklog.WithExportTimeout(logExp.timeout),
		)))
	}
	for _, p := range cfg.LogProcessors {
		lopts = append(lopts, sdklog.WithProcessor(p))
	}
	lp := sdklog.NewLoggerProvider(lopts...)

	t := &Telemetry{
		TracerProvider: tp,
		MeterProvider:  mp,
		LoggerProvider: lp,
		Propagator:     propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
	}
	name := cfg.ServiceName
	if v := e.get("OTEL_SERVICE_NAME"); v != "" {
		name = v
	}
	t.Logger = newLogger(cfg.Stderr, cfg.LogLevel, name, lp)

	if err := runtime.Start(runtime.WithMeterProvider(mp)); err != nil {
		// Shut down what was built; the returned error is the one that matters.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = t.Shutdown(sctx)
		return nil, fmt.Errorf("telemetry: runtime metrics: %w", err)
	}
	return t, nil
}

// NATSOptions returns the natsotel options that make a natsotel.Conn use these
// providers and this propagator.
func (t *Telemetry) NATSOptions() []natsotel.Option {
	return []natsotel.Option{
		natsotel.WithTracerProvider(t.TracerProvider),
		natsotel.WithMeterProvider(t.MeterProvider),
		natsotel.WithPropagators(t.Propagator),
	}
}

// Shutdown flushes and stops the three providers, in parallel, and returns when they are
// done or ctx is, whichever comes first. Give it a deadline: with a backend that hangs,
// it returns ctx's error at that deadline.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	type result struct {
		what string
		err  error
	}
	fns := map[string]func(context.Context) error{
		"traces":  t.TracerProvider.Shutdown,
		"metrics": t.MeterProvider.Shutdown,
		"logs":    t.LoggerProvider.Shutdown,
	}
	ch := make(chan result, len(fns))
	for what, fn := range fns {
		go func() { ch <- result{what, fn(ctx)} }()
	}
	var errs []error
	for range fns {
		select {
		case r := <-ch:
			if r.err != nil {
				errs = append(errs, fmt.Errorf("telemetry: shutdown %s: %w", r.what, r.err))
			}
		case <-ctx.Done():
			return errors.Join(append(errs, fmt.Errorf("telemetry: shutdown: %w", ctx.Err()))...)
		}
	}
	return errors.Join(errs...)
}
