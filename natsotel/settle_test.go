package natsotel_test

import (
	"context"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Ack, DoubleAck, Nak, Term and InProgress of a message a Consume handler got are CLIENT spans
// with messaging.operation.type=settle, children of the message's process span, measured
// by messaging.client.operation.duration (and not counted as sent messages).
func TestJetStreamSettleSpans(t *testing.T) {
	s := startServer(t)
	tel := newTelemetry(t)
	js := tel.jetStream(t, s, "c")
	cons := setupStream(t, js, 30*time.Second)
	for _, subj := range []string{"events.order.a", "events.order.b", "events.order.c"} {
		if _, err := js.Publish(ctxTimeout(t), subj, nil); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	wg.Add(3)
	cc, err := js.Consume(cons, func(ctx context.Context, m jetstream.Msg) {
		md, _ := m.Metadata()
		var err error
		switch {
		case m.Subject() == "events.order.a":
			if err = m.InProgress(); err == nil {
				// A context without a span: the ack's parent is still the process span.
				err = m.DoubleAck(ctxTimeout(t))
			}
			wg.Done()
		case m.Subject() == "events.order.b" && md.NumDelivered == 1:
			err = m.Nak() // redelivered at once
		case m.Subject() == "events.order.b":
			err = m.Ack()
			wg.Done()
		default:
			err = m.TermWithReason("invalid")
			wg.Done()
		}
		if err != nil {
			t.Error(err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Stop()
	wg.Wait()
	// 3 sends, 4 process spans, in_progress + ack, nak + ack, term.
	spans := tel.waitSpans(t, 12)

	process := map[trace.SpanID]int64{} // process span -> its delivery count
	for _, sp := range spans {
		if sp.SpanKind() == trace.SpanKindConsumer {
			process[sp.SpanContext().SpanID()] = delivery(t, sp)
		}
	}
	settled := map[string]int{}
	for _, sp := range spans {
		if sp.SpanKind() != trace.SpanKindClient {
			continue
		}
		op, _ := attr(sp, semconv.MessagingOperationNameKey)
		settled[op.AsString()]++
		if sp.Name() != op.AsString()+" ORDER_EVENTS" {
			t.Errorf("settle span named %q", sp.Name())
		}
		wantAttr(t, sp, semconv.MessagingOperationTypeKey, "settle")
		wantAttr(t, sp, semconv.MessagingSystemKey, "nats")
		wantAttr(t, sp, semconv.MessagingDestinationNameKey, "ORDER_EVENTS")
		wantAttr(t, sp, semconv.MessagingConsumerGroupNameKey, "billing")
		// The message's details are on the parent: one static set of at most 8 attributes.
		noAttr(t, sp, semconv.MessagingDestinationTemplateKey)
		noAttr(t, sp, semconv.MessagingDestinationSubscriptionNameKey)
		if n := len(sp.Attributes()); n > 8 {
			t.Errorf("%q has %d attributes, want at most 8: %v", sp.Name(), n, sp.Attributes())
		}
		delivered, ok := process[sp.Parent().SpanID()]
		if !ok {
			t.Errorf("%q is not the child of a process span", sp.Name())
		}
		if op.AsString() == "nak" && delivered != 1 {
			t.Errorf("nak under the process span of delivery %d, want 1", delivered)
		}
	}
	if want := map[string]int{"in_progress": 1, "ack": 2, "nak": 1, "term": 1}; !maps.Equal(settled, want) {
		t.Errorf("settle spans %v, want %v", settled, want)
	}

	rm := tel.collect(t)
	for op, n := range map[string]uint64{"ack": 2, "nak": 1, "term": 1, "in_progress": 1} {
		dp := histPoint(t, rm, "messaging.client.operation.duration",
			semconv.MessagingOperationTypeSettle, semconv.MessagingOperationName(op),
			semconv.MessagingDestinationName("ORDER_EVENTS"), semconv.MessagingConsumerGroupName("billing"))
		if dp.Count != n {
			t.Errorf("%s: %d durations recorded, want %d", op, dp.Count, n)
		}
	}
	if n := sumPoint(t, rm, "messaging.client.sent.messages", attribute.String("messaging.operation.type", "settle")); n != 0 {
		t.Errorf("settlements counted as %d sent messages", n)
	}
}
