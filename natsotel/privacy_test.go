package natsotel_test

import (
	"context"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// No payload content reaches a span (name, attributes, events, links, status) or a metric
// label, whatever the operation. Not even its size does: messaging.message.body.size is
// Opt-In in the semantic conventions (1.44), and natsotel has no option for it.
func TestNoPayloadInTelemetry(t *testing.T) {
	const marker = "card-4111111111111111-secret"
	payload := []byte(`{"card":"` + marker + `"}`)
	s := startServer(t)
	tel := newTelemetry(t)
	c := tel.wrap(t, connect(t, s, "c"))

	// Request/reply through a micro endpoint that echoes the payload.
	svc, err := c.AddService(micro.Config{Name: "billing", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.AddEndpoint("charge", func(ctx context.Context, req micro.Request) { _ = req.Respond(req.Data()) },
		micro.WithEndpointSubject("billing.charge")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Request(ctxTimeout(t), "billing.charge", payload); err != nil {
		t.Fatal(err)
	}
	// Publish/subscribe.
	got := make(chan struct{})
	if _, err := c.Subscribe("audit.charge", func(ctx context.Context, m *nats.Msg) { close(got) }); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctxTimeout(t), "audit.charge", payload); err != nil {
		t.Fatal(err)
	}
	<-got
	// JetStream publish and consume, KeyValue put and get.
	js, err := c.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	cons := setupStream(t, js, 0)
	if _, err := js.Publish(ctxTimeout(t), "events.order.paid", payload); err != nil {
		t.Fatal(err)
	}
	consumed := make(chan struct{})
	cc, err := js.Consume(cons, func(ctx context.Context, m jetstream.Msg) { _ = m.Ack(); close(consumed) })
	if err != nil {
		t.Fatal(err)
	}
	<-consumed
	cc.Stop()
	kv, err := js.CreateOrUpdateKeyValue(ctxTimeout(t), jetstream.KeyValueConfig{Bucket: "payments"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctxTimeout(t), "ord-1", payload); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(ctxTimeout(t), "ord-1"); err != nil {
		t.Fatal(err)
	}

	spans := tel.waitSpans(t, 9)
	leak := func(where string, kvs []attribute.KeyValue) {
		t.Helper()
		for _, kv := range kvs {
			if strings.Contains(kv.Value.String(), marker) {
				t.Errorf("%s: %s carries the payload", where, kv.Key)
			}
		}
	}
	for _, sp := range spans {
		where := sp.Name() + " (" + sp.SpanKind().String() + ")"
		if strings.Contains(sp.Name(), marker) || strings.Contains(sp.Status().Description, marker) {
			t.Errorf("%s: name or status carries the payload", where)
		}
		leak(where, sp.Attributes())
		for _, ev := range sp.Events() {
			leak(where+" event "+ev.Name, ev.Attributes)
		}
		for _, l := range sp.Links() {
			leak(where+" link", l.Attributes)
		}
	}
	// Every messaging hop was traced, on both sides, without the size.
	for _, want := range []struct {
		name string
		kind trace.SpanKind
	}{
		{"request billing.charge", trace.SpanKindClient},
		{"process billing.charge", trace.SpanKindServer},
		{"send audit.charge", trace.SpanKindProducer},
		{"process audit.charge", trace.SpanKindConsumer},
		{"send events.order.paid", trace.SpanKindProducer},
		{"process ORDER_EVENTS", trace.SpanKindConsumer},
	} {
		noAttr(t, find(t, spans, want.name, want.kind), semconv.MessagingMessageBodySizeKey)
	}
	find(t, spans, "put payments", trace.SpanKindClient)
	find(t, spans, "get payments", trace.SpanKindClient)

	rm := tel.collect(t)
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			forEachAttrs(m.Data, func(set attribute.Set) { leak("metric "+m.Name, set.ToSlice()) })
		}
	}
}
