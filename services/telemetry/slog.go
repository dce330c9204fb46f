package telemetry

import (
	"context"
	"io"
	"log/slog"

	"go.opentelemetry.io/contrib/bridges/otelslog"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/trace"
)

// scopeName is the instrumentation scope of the OTLP log records.
const scopeName = "github.com/natsotel/reference/services/telemetry"

// newLogger returns a logger that writes every record at level or above to two places:
// readable text on w (with trace_id and span_id from the context) and, when lp is not
// nil, OTLP log records through the otelslog bridge (which reads the span context itself).
func newLogger(w io.Writer, level slog.Level, service string, lp *sdklog.LoggerProvider) *slog.Logger {
	text := slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}).WithAttrs([]slog.Attr{slog.String("service", service)})
	if lp == nil {
		return slog.New(traceIDHandler{text})
	}
	otlp := levelHandler{level, otelslog.NewHandler(scopeName, otelslog.WithLoggerProvider(lp))}
	return slog.New(slog.NewMultiHandler(traceIDHandler{text}, otlp))
}

// traceIDHandler adds trace_id and span_id of the span in the context to each record.
type traceIDHandler struct{ slog.Handler }

func (h traceIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r = r.Clone()
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceIDHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return traceIDHandler{h.Handler.WithAttrs(as)}
}

func (h traceIDHandler) WithGroup(name string) slog.Handler {
	return traceIDHandler{h.Handler.WithGroup(name)}
}

// levelHandler drops records below level (the otelslog handler has no level of its own).
type levelHandler struct {
	level slog.Level
	slog.Handler
}

func (h levelHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.level && h.Handler.Enabled(ctx, l)
}

func (h levelHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return levelHandler{h.level, h.Handler.WithAttrs(as)}
}

func (h levelHandler) WithGroup(name string) slog.Handler {
	return levelHandler{h.level, h.Handler.WithGroup(name)}
}
