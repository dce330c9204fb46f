package natsotel_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/natsotel/reference/natsotel"
)

func setupStream(t *testing.T, js *natsotel.JetStream, ackWait time.Duration) jetstream.Consumer {
	t.Helper()
	ctx := ctxTimeout(t)
	st, err := js.Raw().CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "ORDER_EVENTS", Subjects: []string{"events.order.>"}})
	if err != nil {
		t.Fatal(err)
	}
	cons, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "billing", AckPolicy: jetstream.AckExplicitPolicy, AckWait: ackWait})
	if err != nil {
		t.Fatal(err)
	}
	return cons
}

func TestJetStreamPublishConsume(t *testing.T) {
	s := startServer(t)
	tel := newTelemetry(t)
	js := tel.jetStream(t, s, "c")
	cons := setupStream(t, js, 30*time.Second)

	msg := &nats.Msg{Subject: "events.order.created", Data: []byte("{}"), Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, "order-1")
	ack, err := js.PublishMsg(ctxTimeout(t), msg)
	if err != nil {
		t.Fatal(err)
	}
	if ack.Stream != "ORDER_EVENTS" || ack.Sequence != 1 {
		t.Fatalf("ack %+v", ack)
	}
	done := make(chan struct{})
	cc, err := js.Consume(cons, func(ctx context.Context, m jetstream.Msg) {
		if !trace.SpanContextFromContext(ctx).IsValid() {
			t.Error("no span in ctx")
		}
		_ = m.Ack()
		close(done)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Stop()
	<-done
	spans := tel.waitSpans(t, 3)
	producer := find(t, spans, "send events.order.created", trace.SpanKindProducer)
	consumer := find(t, spans, "process ORDER_EVENTS", trace.SpanKindConsumer)
	wantChild(t, producer, consumer)
	for _, sp := range []sdktrace.ReadOnlySpan{producer, consumer} {
		wantAttr(t, sp, semconv.MessagingSystemKey, "nats")
		wantAttr(t, sp, semconv.MessagingDestinationNameKey, "events.order.created")
		wantAttr(t, sp, semconv.ServerAddressKey, "127.0.0.1")
		if _, ok := attr(sp, semconv.ServerPortKey); !ok {
			t.Errorf("%q: no server.port", sp.Name())
		}
		wantAttr(t, sp, semconv.MessagingMessageIDKey, "order-1")
		noAttr(t, sp, semconv.MessagingMessageBodySizeKey) // Opt-In in semconv 1.44
		noAttr(t, sp, attribute.Key("messaging.nats.stream"))
		// A plain send or process span stays within the 8 attributes the SDK deduplicates
		// at End without growing its map (messaging.message.id is there for the Nats-Msg-Id).
		if n := len(sp.Attributes()) - 1; n > 8 {
			t.Errorf("%q has %d attributes besides messaging.message.id, want at most 8: %v", sp.Name(), n, sp.Attributes())
		}
	}
	// The PubAck's sequence is on the send span; the subject decides the stream (no two
	// streams share a subject) and the consumer's span names it.
	wantAttr(t, producer, semconv.MessagingOperationNameKey, "send")
	wantAttr(t, producer, semconv.MessagingOperationTypeKey, "send")
	wantAttr(t, producer, sequenceKey, int64(1))
	wantAttr(t, consumer, semconv.MessagingOperationNameKey, "process")
	wantAttr(t, consumer, semconv.MessagingOperationTypeKey, "process")
	wantAttr(t, consumer, semconv.MessagingDestinationTemplateKey, "ORDER_EVENTS")
	// A first delivery: no delivery attributes. The sequence is the parent's. The durable
	// consumer is the process span's consumer group, in place of the client id the send
	// span has (8 attributes each).
	wantAttr(t, producer, semconv.MessagingClientIDKey, "c")
	noAttr(t, consumer, semconv.MessagingClientIDKey)
	noAttr(t, consumer, sequenceKey)
	noAttr(t, consumer, deliveredKey)
	noAttr(t, consumer, redeliveredKey)
	noAttr(t, consumer, semconv.MessagingDestinationSubscriptionNameKey)
	wantAttr(t, consumer, semconv.MessagingConsumerGroupNameKey, "billing")
	settle := find(t, spans, "ack ORDER_EVENTS", trace.SpanKindClient)
	wantChild(t, consumer, settle)
	wantAttr(t, settle, semconv.MessagingConsumerGroupNameKey, "billing")
}

func TestJetStreamRedelivery(t *testing.T) {
	s := startServer(t)
	tel := newTelemetry(t)
	js := tel.jetStream(t, s, "c")
	cons := setupStream(t, js, time.Second)
	if _, err := js.Publish(ctxTimeout(t), "events.order.paid", []byte("x")); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var deliveries []uint64
	done := make(chan struct{})
	cc, err := js.Consume(cons, func(ctx context.Context, m jetstream.Msg) {
		md, _ := m.Metadata()
		mu.Lock()
		deliveries = append(deliveries, md.NumDelivered)
		n := len(deliveries)
		mu.Unlock()
		if n == 1 {
			_ = m.Nak() // ask for redelivery
			return
		}
		_ = m.Ack()
		close(done)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Stop()
	<-done
	spans := tel.waitSpans(t, 5) // send, two process spans, nak, ack
	var delivered []int64
	producer := find(t, spans, "send events.order.paid", trace.SpanKindProducer)
	for _, sp := range spans {
		if sp.SpanKind() != trace.SpanKindConsumer {
			continue
		}
		wantChild(t, producer, sp)
		n := delivery(t, sp)
		delivered = append(delivered, n)
		redeliveredEvent := false
		for _, ev := range sp.Events() {
			redeliveredEvent = redeliveredEvent || ev.Name == "redelivered"
		}
		if n == 1 {
			noAttr(t, sp, redeliveredKey)
			if redeliveredEvent {
				t.Error("first delivery has a redelivered event")
			}
			continue
		}
		wantAttr(t, sp, redeliveredKey, true)
		if !redeliveredEvent {
			t.Error("no redelivered event")
		}
	}
	slices.Sort(delivered)
	if !slices.Equal(delivered, []int64{1, 2}) {
		t.Errorf("consumer spans' delivery counts %v, want [1 2] (deliveries seen by the handler %v)", delivered, deliveries)
	}
}

func TestJetStreamFetchLinksAndProcess(t *testing.T) {
	s := startServer(t)
	tel := newTelemetry(t)
	js := tel.jetStream(t, s, "c")
	cons := setupStream(t, js, 30*time.Second)
	for i := 0; i < 3; i++ {
		if _, err := js.Publish(ctxTimeout(t), "events.order.created", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	msgs, err := js.Fetch(ctx, cons, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 3 {
		t.Fatalf("fetched %d", len(msgs))
	}
	for _, m := range msgs {
		js.Process(context.Background(), m, func(ctx context.Context, m jetstream.Msg) { _ = m.Ack() })
	}
	spans := tel.waitSpans(t, 7)
	receive := find(t, spans, "receive ORDER_EVENTS", trace.SpanKindClient)
	wantAttr(t, receive, semconv.MessagingBatchMessageCountKey, int64(3))
	wantAttr(t, receive, semconv.MessagingOperationTypeKey, "receive")
	producers := spanIDs(spans, trace.SpanKindProducer)
	if len(receive.Links()) != 3 {
		t.Fatalf("links %d", len(receive.Links()))
	}
	linked := map[trace.SpanID]bool{}
	for _, l := range receive.Links() {
		if !producers[l.SpanContext.SpanID()] {
			t.Errorf("link to unknown span %v", l.SpanContext.SpanID())
		}
		linked[l.SpanContext.SpanID()] = true
	}
	if len(linked) != 3 {
		t.Errorf("links to %d distinct producer spans, want 3", len(linked))
	}
	n := 0
	for _, sp := range spans {
		if sp.SpanKind() == trace.SpanKindConsumer {
			n++
			if !producers[sp.Parent().SpanID()] {
				t.Error("process span not parented to its producer")
			}
		}
	}
	if n != 3 {
		t.Errorf("process spans %d", n)
	}

	// An empty fetch that times out is not an error.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	msgs, err = js.Fetch(ctx2, cons, 1)
	if err != nil || len(msgs) != 0 {
		t.Errorf("empty fetch: %d %v", len(msgs), err)
	}
	// FetchMaxWait still works (it excludes FetchContext).
	msgs, err = js.Fetch(ctxTimeout(t), cons, 1, jetstream.FetchMaxWait(200*time.Millisecond))
	if err != nil || len(msgs) != 0 {
		t.Errorf("fetch with max wait: %d %v", len(msgs), err)
	}
}

// Messages then Next then Process: each message in a CONSUMER span, child of its producer
// span, with the durable consumer as group. Read with cons.Messages directly, on a
// connection that never saw the consumer, a message carries no group.
func TestJetStreamMessagesProcess(t *testing.T) {
	s := startServer(t)
	tel := newTelemetry(t)
	js := tel.jetStream(t, s, "c")
	cons := setupStream(t, js, 30*time.Second)
	for range 2 {
		if _, err := js.Publish(ctxTimeout(t), "events.order.created", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	it, err := js.Messages(cons)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		m, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		js.Process(context.Background(), m, func(ctx context.Context, m jetstream.Msg) {
			if !trace.SpanContextFromContext(ctx).IsValid() {
				t.Error("no span in ctx")
			}
			_ = m.Ack()
		})
	}
	it.Stop()
	spans := tel.waitSpans(t, 4)
	producers := spanIDs(spans, trace.SpanKindProducer)
	consumers := 0
	for _, sp := range spans {
		if sp.SpanKind() != trace.SpanKindConsumer {
			continue
		}
		consumers++
		if sp.Name() != "process ORDER_EVENTS" || !producers[sp.Parent().SpanID()] {
			t.Errorf("consumer span %q not the child of a producer span", sp.Name())
		}
		// The durable consumer is the process span's consumer group (and a metric label).
		noAttr(t, sp, semconv.MessagingDestinationSubscriptionNameKey)
		wantAttr(t, sp, semconv.MessagingConsumerGroupNameKey, "billing")
	}
	if consumers != 2 || len(producers) != 2 {
		t.Fatalf("%d consumer and %d producer spans, want 2 and 2", consumers, len(producers))
	}

	// Another durable consumer (the stopped iterator may still have a pull request
	// pending on "billing"), read on another connection with the raw iterator: it is
	// not known to be durable.
	if _, err := js.Raw().CreateOrUpdateConsumer(ctxTimeout(t), "ORDER_EVENTS", jetstream.ConsumerConfig{Durable: "audit", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	tel2 := newTelemetry(t)
	js2 := tel2.jetStream(t, s, "c2")
	cons2, err := js2.Raw().Consumer(ctxTimeout(t), "ORDER_EVENTS", "audit")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := cons2.Messages()
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Stop()
	m, err := raw.Next()
	if err != nil {
		t.Fatal(err)
	}
	js2.Process(context.Background(), m, func(ctx context.Context, m jetstream.Msg) { _ = m.Ack() })
	sp := find(t, tel2.waitSpans(t, 1), "process ORDER_EVENTS", trace.SpanKindConsumer)
	noAttr(t, sp, semconv.MessagingConsumerGroupNameKey)
	noAttr(t, sp, semconv.MessagingDestinationSubscriptionNameKey)
	if !producers[sp.Parent().SpanID()] {
		t.Error("consumer span not the child of its producer span")
	}
}
