package natsotel

import (
	"fmt"
	"runtime/debug"

	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// PanicError is the value a recovered handler panic is recorded as.
type PanicError struct {
	Value any    // what the handler panicked with
	Stack []byte // stack of the panicking goroutine
}

func (e *PanicError) Error() string { return fmt.Sprintf("natsotel: handler panic: %v", e.Value) }

// recordPanic adds an "exception" event (type, message, stack trace) to span.
func recordPanic(span trace.Span, r any) {
	if !span.IsRecording() {
		return
	}
	pe := &PanicError{Value: r, Stack: debug.Stack()}
	span.AddEvent(semconv.ExceptionEventName, trace.WithAttributes(
		semconv.ExceptionType(fmt.Sprintf("%T", r)),
		semconv.ExceptionMessage(pe.Error()),
		semconv.ExceptionStacktrace(string(pe.Stack)),
	))
}
