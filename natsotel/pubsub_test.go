package natsotel_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/natsotel/reference/natsotel"
)

func TestPublishSubscribeParentChild(t *testing.T) {
	s := startServer(t)
	tel := newTelemetry(t)
	pub := tel.wrap(t, connect(t, s, "pub"))
	sub := tel.wrap(t, connect(t, s, "sub"))

	got := make(chan string, 1)
	sb, err := sub.Subscribe("orders.*", func(ctx context.Context, msg *nats.Msg) {
		got <- baggage.FromContext(ctx).Member("tenant").Value()
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Raw().Flush(); err != nil {
		t.Fatal(err)
	}
	defer sb.Unsubscribe()

	m, _ := baggage.NewMember("tenant", "acme")
	bag, _ := baggage.New(m)
	ctx := baggage.ContextWithBaggage(ctxTimeout(t), bag)
	if err := pub.Publish(ctx, "orders.created", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if v := <-got; v != "acme" {
		t.Errorf("baggage %q", v)
	}
	spans := tel.waitSpans(t, 2)
	producer := find(t, spans, "send orders.created", trace.SpanKindProducer)
	consumer := find(t, spans, "process orders.*", trace.SpanKindConsumer)
	wantChild(t, producer, consumer)
	wantAttr(t, producer, semconv.MessagingOperationTypeKey, "send")
	wantAttr(t, producer, semconv.MessagingDestinationNameKey, "orders.created")
	noAttr(t, producer, semconv.MessagingMessageBodySizeKey) // Opt-In in semconv 1.44
	wantAttr(t, consumer, semconv.MessagingDestinationNameKey, "orders.created")
	wantAttr(t, consumer, semconv.MessagingDestinationTemplateKey, "orders.*")
	wantAttr(t, consumer, semconv.MessagingOperationTypeKey, "process")
	noAttr(t, consumer, semconv.MessagingConsumerGroupNameKey)
}

func TestQueueGroupOfTwo(t *testing.T) {
	s := startServer(t)
	tel := newTelemetry(t)
	pub := tel.wrap(t, connect(t, s, "pub"))
	var mu sync.Mutex
	per := map[string]int{}
	var wg sync.WaitGroup
	const n = 40
	wg.Add(n)
	for _, name := range []string{"a", "b"} {
		c := tel.wrap(t, connect(t, s, name))
		if _, err := c.QueueSubscribe("work", "workers", func(ctx context.Context, msg *nats.Msg) {
			mu.Lock()
			per[name]++
			mu.Unlock()
			wg.Done()
		}); err != nil {
			t.Fatal(err)
		}
		if err := c.Raw().Flush(); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i++ {
		if err := pub.Publish(ctxTimeout(t), "work", nil); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if per["a"]+per["b"] != n {
		t.Fatalf("deliveries %v", per)
	}
	// The server picks a member at random per message: both get some of 40 (all to one
	// happens with probability 2^-39).
	if per["a"] == 0 || per["b"] == 0 {
		t.Errorf("queue group delivered everything to one member: %v", per)
	}
	spans := tel.waitSpans(t, 2*n)
	producers := spanIDs(spans, trace.SpanKindProducer)
	consumers := 0
	members := map[string]int{} // consumer spans per messaging.client.id
	for _, sp := range spans {
		if sp.SpanKind() != trace.SpanKindConsumer {
			continue
		}
		consumers++
		wantAttr(t, sp, semconv.MessagingConsumerGroupNameKey, "workers")
		v, _ := attr(sp, semconv.MessagingClientIDKey)
		members[v.AsString()]++
		if !producers[sp.Parent().SpanID()] {
			t.Errorf("consumer span without its producer parent")
		}
	}
	if consumers != n {
		t.Errorf("consumer spans %d", consumers)
	}
	if members["a"] != per["a"] || members["b"] != per["b"] {
		t.Errorf("consumer spans per member %v, deliveries %v", members, per)
	}
}

func TestConsumerLinksMode(t *testing.T) {
	s := startServer(t)
	tel := newTelemetry(t)
	pub := tel.wrap(t, connect(t, s, "pub"))
	sub := tel.wrap(t, connect(t, s, "sub"), natsotel.WithConsumerLinks())
	done := make(chan struct{})
	if _, err := sub.Subscribe("events", func(ctx context.Context, msg *nats.Msg) { close(done) }); err != nil {
		t.Fatal(err)
	}
	_ = sub.Raw().Flush()
	if err := pub.Publish(ctxTimeout(t), "events", nil); err != nil {
		t.Fatal(err)
	}
	<-done
	spans := tel.waitSpans(t, 2)
	producer := find(t, spans, "send events", trace.SpanKindProducer)
	consumer := find(t, spans, "process events", trace.SpanKindConsumer)
	if consumer.Parent().IsValid() {
		t.Error("consumer should be a new root")
	}
	if len(consumer.Links()) != 1 || consumer.Links()[0].SpanContext.SpanID() != producer.SpanContext().SpanID() {
		t.Errorf("links %v", consumer.Links())
	}
}

func TestPublishToInboxIsTemporary(t *testing.T) {
	s := startServer(t)
	tel := newTelemetry(t)
	c := tel.wrap(t, connect(t, s, "c"))
	inbox := c.Raw().NewInbox()
	if err := c.Publish(ctxTimeout(t), inbox, nil); err != nil {
		t.Fatal(err)
	}
	sp := find(t, tel.spans(), "send (temporary)", trace.SpanKindProducer)
	wantAttr(t, sp, semconv.MessagingDestinationTemporaryKey, true)
	wantAttr(t, sp, semconv.MessagingDestinationNameKey, "(temporary)")
	for _, kv := range sp.Attributes() {
		if kv.Value.Type() == 4 /* STRING */ && strings.HasPrefix(kv.Value.AsString(), "_INBOX") {
			t.Errorf("inbox leaked into %s", kv.Key)
		}
	}
}

func TestMaxPayloadWithHeaders(t *testing.T) {
	s := startServer(t, func(o *server.Options) { o.MaxPayload = 1024 })
	tel := newTelemetry(t)
	c := tel.wrap(t, connect(t, s, "c"))
	// Payload fits alone; baggage pushes the message over max_payload.
	m, _ := baggage.NewMember("big", strings.Repeat("x", 900))
	bag, _ := baggage.New(m)
	ctx := baggage.ContextWithBaggage(ctxTimeout(t), bag)
	data := make([]byte, 500)

	err := c.Publish(ctx, "big", data)
	if !errors.Is(err, nats.ErrMaxPayload) {
		t.Fatalf("publish: want ErrMaxPayload, got %v", err)
	}
	if !strings.Contains(err.Error(), "max_payload of 1024") || !strings.Contains(err.Error(), " header, 500 data)") {
		t.Errorf("unclear error: %v", err)
	}
	_, err = c.Request(ctx, "big", data)
	if !errors.Is(err, nats.ErrMaxPayload) {
		t.Fatalf("request: want ErrMaxPayload, got %v", err)
	}
	if !strings.Contains(err.Error(), "max_payload of 1024") || !strings.Contains(err.Error(), " header, 500 data)") {
		t.Errorf("unclear request error: %v", err)
	}
	sp := find(t, tel.spans(), "request big", trace.SpanKindClient)
	wantAttr(t, sp, semconv.ErrorTypeKey, "max_payload")
	if sp.Status().Code != codes.Error {
		t.Errorf("status %v", sp.Status())
	}
}

func TestPublishMsgDoesNotMutateCaller(t *testing.T) {
	s := startServer(t)
	tel := newTelemetry(t)
	c := tel.wrap(t, connect(t, s, "c"))
	hdr := nats.Header{"X-Id": []string{"1"}}
	msg := &nats.Msg{Subject: "s", Header: hdr}
	got := make(chan *nats.Msg, 1)
	if _, err := c.Raw().Subscribe("s", func(m *nats.Msg) { got <- m }); err != nil {
		t.Fatal(err)
	}
	_ = c.Raw().Flush()
	if err := c.PublishMsg(ctxTimeout(t), msg); err != nil {
		t.Fatal(err)
	}
	m := <-got
	if len(hdr) != 1 {
		t.Errorf("caller header mutated: %v", hdr)
	}
	if m.Header.Get("X-Id") != "1" || m.Header.Get("traceparent") == "" {
		t.Errorf("received header %v", m.Header)
	}
	if _, ok := m.Header["Traceparent"]; ok {
		t.Error("traceparent must be written lowercase")
	}
}

func TestSubscribeHandlerPanicRecovered(t *testing.T) {
	s := startServer(t)
	tel := newTelemetry(t)
	c := tel.wrap(t, connect(t, s, "c"))
	got := make(chan string, 2)
	if _, err := c.Subscribe("p", func(ctx context.Context, m *nats.Msg) {
		if string(m.Data) == "boom" {
			panic("boom")
		}
		got <- string(m.Data)
	}); err != nil {
		t.Fatal(err)
	}
	_ = c.Publish(ctxTimeout(t), "p", []byte("boom"))
	_ = c.Publish(ctxTimeout(t), "p", []byte("after"))
	if v := <-got; v != "after" {
		t.Fatalf("got %q", v)
	}
	spans := tel.waitSpans(t, 4)
	n := 0
	for _, sp := range spans {
		if sp.SpanKind() == trace.SpanKindConsumer && sp.Status().Code == codes.Error {
			n++
			wantAttr(t, sp, semconv.ErrorTypeKey, "panic")
			if len(sp.Events()) == 0 || sp.Events()[0].Name != semconv.ExceptionEventName {
				t.Errorf("events %v", sp.Events())
			}
		}
	}
	if n != 1 {
		t.Errorf("failed consumer spans %d", n)
	}
}
