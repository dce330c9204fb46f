package telemetry

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

type traceExporter struct {
	exp     sdktrace.SpanExporter
	timeout time.Duration
}

type metricExporter struct {
	exp     sdkmetric.Exporter
	timeout time.Duration
}

type logExporter struct {
	exp     sdklog.Exporter
	timeout time.Duration
}

// newExporters creates the OTLP/HTTP exporters the environment asks for. Every setting
// is passed as an explicit option, so it wins over what the exporter would read from the
// process environment itself. Retries stop within the export timeout so that a dead
// backend holds no export (and no memory) longer than that.
func newExporters(ctx context.Context, e env) (traceExporter, metricExporter, logExporter, error) {
	var (
		t traceExporter
		m metricExporter
		l logExporter
	)
	// Validate every signal's settings before creating anything.
	ts, tok, err := e.exporter(signalTraces)
	if err != nil {
		return t, m, l, err
	}
	ms, mok, err := e.exporter(signalMetrics)
	if err != nil {
		return t, m, l, err
	}
	ls, lok, err := e.exporter(signalLogs)
	if err != nil {
		return t, m, l, err
	}
	if tok {
		s := ts
		opts := []otlptracehttp.Option{
			otlptracehttp.WithEndpointURL(s.url),
			otlptracehttp.WithHeaders(s.headers),
			otlptracehttp.WithTimeout(s.timeout),
			otlptracehttp.WithRetry(otlptracehttp.RetryConfig{
				Enabled: true, InitialInterval: 500 * time.Millisecond, MaxInterval: 2 * time.Second, MaxElapsedTime: s.timeout,
			}),
			otlptracehttp.WithCompression(otlptracehttp.NoCompression),
		}
		if s.compress {
			opts = append(opts, otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
		}
		exp, err := otlptracehttp.New(ctx, opts...)
		if err != nil {
			return t, m, l, err
		}
		t = traceExporter{exp, s.timeout}
	}
	if mok {
		s := ms
		opts := []otlpmetrichttp.Option{
			otlpmetrichttp.WithEndpointURL(s.url),
			otlpmetrichttp.WithHeaders(s.headers),
			otlpmetrichttp.WithTimeout(s.timeout),
			otlpmetrichttp.WithRetry(otlpmetrichttp.RetryConfig{
				Enabled: true, InitialInterval: 500 * time.Millisecond, MaxInterval: 2 * time.Second, MaxElapsedTime: s.timeout,
			}),
			otlpmetrichttp.WithCompression(otlpmetrichttp.NoCompression),
		}
		if s.compress {
			opts = append(opts, otlpmetrichttp.WithCompression(otlpmetrichttp.GzipCompression))
		}
		exp, err := otlpmetrichttp.New(ctx, opts...)
		if err != nil {
			return t, m, l, err
		}
		m = metricExporter{exp, s.timeout}
	}
	if lok {
		s := ls
		opts := []otlploghttp.Option{
			otlploghttp.WithEndpointURL(s.url),
			otlploghttp.WithHeaders(s.headers),
			otlploghttp.WithTimeout(s.timeout),
			otlploghttp.WithRetry(otlploghttp.RetryConfig{
				Enabled: true, InitialInterval: 500 * time.Millisecond, MaxInterval: 2 * time.Second, MaxElapsedTime: s.timeout,
			}),
			otlploghttp.WithCompression(otlploghttp.NoCompression),
		}
		if s.compress {
			opts = append(opts, otlploghttp.WithCompression(otlploghttp.GzipCompression))
		}
		exp, err := otlploghttp.New(ctx, opts...)
		if err != nil {
			return t, m, l, err
		}
		l = logExporter{exp, s.timeout}
	}
	return t, m, l, nil
}
