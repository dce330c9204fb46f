package telemetry

import (
	"context"
	"errors"
	"io"
	"log/slog"

	"go.opentelemetry.io/contrib/bridges/otelslog"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/trace"
)

// scopeName is the instrumentation scope of the OTLP log records.
const scopeName = "github.com/natsotel/reference/services/telemetry"

// newLogger returns a logger that writes every record to two places: readable text on w
// (with trace_id and span_id from the context) and OTLP log records through the otelslog
// bridge (which reads the span context itself).
func newLogger(w io.Writer, level slog.Leveler, service string, lp *sdklog.LoggerProvider) *slog.Logger {
	text := slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})
	stderr := &traceIDHandler{Handler: text.WithAttrs([]slog.Attr{slog.String("service", service)})}
	otlp := &levelHandler{level: level, Handler: otelslog.NewHandler(scopeName, otelslog.WithLoggerProvider(lp))}
	return slog.New(fanout{stderr, otlp})
}

// traceIDHandler adds trace_id and span_id of the span in the context to each record.
type traceIDHandler struct{ slog.Handler }

func (h *traceIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r = r.Clone()
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h *traceIDHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &traceIDHandler{h.Handler.WithAttrs(as)}
}

func (h *traceIDHandler) WithGroup(name string) slog.Handler {
	return &traceIDHandler{h.Handler.WithGroup(name)}
}

// levelHandler drops records below level.
type levelHandler struct {
	level slog.Leveler
	slog.Handler
}

func (h *levelHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.level.Level() && h.Handler.Enabled(ctx, l)
}

func (h *levelHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &levelHandler{h.level, h.Handler.WithAttrs(as)}
}

func (h *levelHandler) WithGroup(name string) slog.Handler {
	return &levelHandler{h.level, h.Handler.WithGroup(name)}
}

// fanout sends each record to every handler that is enabled for it.
type fanout []slog.Handler

func (f fanout) Enabled(ctx context.Context, l slog.Level) bool {
	for _, h := range f {
		if h.Enabled(ctx, l) {
			return true
		}
	}
	return false
}

func (f fanout) Handle(ctx context.Context, r slog.Record) error {
	var errs []error
	for _, h := range f {
		if h.Enabled(ctx, r.Level) {
			errs = append(errs, h.Handle(ctx, r.Clone()))
		}
	}
	return errors.Join(errs...)
}

func (f fanout) WithAttrs(as []slog.Attr) slog.Handler {
	out := make(fanout, len(f))
	for i, h := range f {
		out[i] = h.WithAttrs(as)
	}
	return out
}

func (f fanout) WithGroup(name string) slog.Handler {
	out := make(fanout, len(f))
	for i, h := range f {
		out[i] = h.WithGroup(name)
	}
	return out
}
