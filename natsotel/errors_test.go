package natsotel_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/natsotel/reference/natsotel"
)

func TestErrorType(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{&natsotel.ServiceError{Code: "409"}, "409"},
		{fmt.Errorf("wrapped: %w", &natsotel.ServiceError{Code: "402"}), "402"},
		{&natsotel.ServiceError{Code: "E_BAD_THING"}, "_OTHER"},
		{&natsotel.OpError{Op: "request", Err: nats.ErrNoResponders}, "no_responders"},
		{jetstream.ErrNoStreamResponse, "no_responders"},
		{&natsotel.OpError{Op: "request", Err: context.DeadlineExceeded}, "timeout"},
		{nats.ErrTimeout, "timeout"},
		{context.Canceled, "canceled"},
		{nats.ErrMaxPayload, "max_payload"},
		{jetstream.ErrKeyExists, "key_exists"},
		{jetstream.ErrKeyRevisionMismatch, "revision_mismatch"},
		{&natsotel.PanicError{Value: "boom"}, "panic"},
		{errors.New("boom"), "_OTHER"},
	} {
		if got := natsotel.ErrorType(c.err); got != c.want {
			t.Errorf("ErrorType(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

// OpError.Op is the operation its span names: a failed Publish is "send", like the span.
func TestOpErrorNamesTheSpanOperation(t *testing.T) {
	s := startServer(t, func(o *server.Options) { o.MaxPayload = 1024 })
	tel := newTelemetry(t)
	c := tel.wrap(t, connect(t, s, "c"))
	err := c.Publish(ctxTimeout(t), "big", make([]byte, 2048))
	var oe *natsotel.OpError
	if !errors.As(err, &oe) {
		t.Fatalf("want *OpError, got %v", err)
	}
	sp := find(t, tel.spans(), "send big", trace.SpanKindProducer)
	op, _ := attr(sp, semconv.MessagingOperationNameKey)
	if oe.Op != op.AsString() || oe.Op != "send" {
		t.Errorf("OpError.Op %q, span operation %q", oe.Op, op.AsString())
	}
	wantAttr(t, sp, semconv.ErrorTypeKey, natsotel.ErrorType(err))
}
