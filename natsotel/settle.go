package natsotel

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Settlement operations (messaging.operation.name, type settle) of a JetStream message.
const (
	opAck        = "ack"
	opNak        = "nak"
	opTerm       = "term"
	opInProgress = "in_progress"
)

var (
	specAck        = &opSpec{op: opAck, kind: trace.SpanKindClient, opType: semconv.MessagingOperationTypeSettle}
	specNak        = &opSpec{op: opNak, kind: trace.SpanKindClient, opType: semconv.MessagingOperationTypeSettle}
	specTerm       = &opSpec{op: opTerm, kind: trace.SpanKindClient, opType: semconv.MessagingOperationTypeSettle}
	specInProgress = &opSpec{op: opInProgress, kind: trace.SpanKindClient, opType: semconv.MessagingOperationTypeSettle}
)

// settledMsg is the jetstream.Msg a Consume or Process handler receives: its Ack, DoubleAck, Nak,
// NakWithDelay, Term, TermWithReason and InProgress are CLIENT spans "<op> <stream>"
// (messaging.operation.type=settle), children of the process span in ctx, and measured by
// messaging.client.operation.duration. Everything else is the message's own.
//
// A settle span carries its metric's attributes plus the client id and server (the message's
// details are on its parent): one attribute set per consumer, built once, and at most eight
// attributes, which the SDK deduplicates at End without growing a map.
type settledMsg struct {
	jetstream.Msg
	ctx   context.Context // carries the process span
	c     *Conn
	dest  string // the stream, as on the process span
	group string
	temp  bool
}

func (m *settledMsg) Ack() error { return m.settle(m.ctx, specAck, m.Msg.Ack) }

func (m *settledMsg) DoubleAck(ctx context.Context) error {
	parent := m.ctx
	if trace.SpanContextFromContext(ctx).IsValid() {
		parent = ctx
	}
	return m.settle(parent, specAck, func() error { return m.Msg.DoubleAck(ctx) })
}

func (m *settledMsg) Nak() error { return m.settle(m.ctx, specNak, m.Msg.Nak) }

func (m *settledMsg) NakWithDelay(delay time.Duration) error {
	return m.settle(m.ctx, specNak, func() error { return m.Msg.NakWithDelay(delay) })
}

func (m *settledMsg) Term() error { return m.settle(m.ctx, specTerm, m.Msg.Term) }

func (m *settledMsg) TermWithReason(reason string) error {
	return m.settle(m.ctx, specTerm, func() error { return m.Msg.TermWithReason(reason) })
}

func (m *settledMsg) InProgress() error { return m.settle(m.ctx, specInProgress, m.Msg.InProgress) }

// settle runs fn, which settles the message, in a span of spec, the child of the span in
// parent: the process span, or the span in the ctx given to DoubleAck.
func (m *settledMsg) settle(parent context.Context, spec *opSpec, fn func() error) error {
	c := m.c
	ctx, cl := c.begin(parent, c.op(spec, m.dest, m.group, m.temp), "")
	err := fn()
	if err != nil {
		cl.end(ctx, ErrorType(err), err.Error(), 0)
		return err
	}
	cl.end(ctx, "", "", 0)
	return nil
}
