package natsotel

import (
	"context"
	"fmt"
	"runtime/debug"

	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// PanicError is a handler panic natsotel recovered. It is recorded as the span's "exception"
// event and passed to the function set with WithPanicHandler.
type PanicError struct {
	Value   any    // what the handler panicked with
	Stack   []byte // stack of the panicking goroutine
	Subject string // subject of the message or request whose handler panicked
}

func (e *PanicError) Error() string { return fmt.Sprintf("natsotel: handler panic: %v", e.Value) }

// Unwrap returns Value if the handler panicked with an error, so errors.Is and errors.As see it.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// recovered reports a recovered panic r: an "exception" event (type, message, stack trace) on
// span when it records, and the WithPanicHandler function if one is set. span may be nil (untraced).
func (c *Conn) recovered(ctx context.Context, span trace.Span, subject string, r any) {
	recording := span != nil && span.IsRecording()
	if !recording && c.cfg.onPanic == nil {
		return
	}
	pe := &PanicError{Value: r, Stack: debug.Stack(), Subject: subject}
	if recording {
		span.AddEvent(semconv.ExceptionEventName, trace.WithAttributes(
			semconv.ExceptionType(fmt.Sprintf("%T", r)),
			semconv.ExceptionMessage(pe.Error()),
			semconv.ExceptionStacktrace(string(pe.Stack)),
		))
	}
	if c.cfg.onPanic != nil {
		c.cfg.onPanic(ctx, pe)
	}
}
