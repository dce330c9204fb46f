package natsotel_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/natsotel/reference/natsotel"
)

// orderTemplate maps "order.get.<id>" to "order.get.{id}" and leaves other subjects alone.
func orderTemplate(subject string) string {
	if strings.HasPrefix(subject, "order.get.") {
		return "order.get.{id}"
	}
	return ""
}

// WithDestinationTemplate: span names and metric labels use the template, the span keeps the
// concrete subject; inboxes stay "(temporary)"; JetStream publishes are named the same way.
func TestDestinationTemplate(t *testing.T) {
	s := startServer(t)
	tel := newTelemetry(t)
	asked := make(chan string, 16)
	c := tel.wrap(t, connect(t, s, "c"), natsotel.WithDestinationTemplate(func(subject string) string {
		asked <- subject
		if strings.HasPrefix(subject, "events.order.") {
			return "events.order.{event}"
		}
		return orderTemplate(subject)
	}))
	if _, err := c.Raw().Subscribe("order.get.*", func(m *nats.Msg) { _ = m.Respond([]byte("ok")) }); err != nil {
		t.Fatal(err)
	}
	flush(t, c.Raw())
	for _, id := range []string{"1", "2"} {
		if _, err := c.Request(ctxTimeout(t), "order.get."+id, nil); err != nil {
			t.Fatal(err)
		}
		if err := c.Publish(ctxTimeout(t), "order.get."+id, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Publish(ctxTimeout(t), "audit", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctxTimeout(t), c.Raw().NewInbox(), nil); err != nil {
		t.Fatal(err)
	}
	js, err := c.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	setupStream(t, js, 30*time.Second)
	if _, err := js.Publish(ctxTimeout(t), "events.order.created", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctxTimeout(t), c.Raw().NewInbox(), nil); err == nil {
		t.Fatal("JetStream publish to an inbox succeeded")
	}
	close(asked)
	for subj := range asked {
		if strings.HasPrefix(subj, "_INBOX") {
			t.Errorf("template function asked about inbox %s", subj)
		}
	}

	spans := tel.spans()
	var requests, sends []sdktrace.ReadOnlySpan
	for _, sp := range spans {
		switch sp.Name() {
		case "request order.get.{id}":
			requests = append(requests, sp)
		case "send order.get.{id}":
			sends = append(sends, sp)
		}
	}
	if len(requests) != 2 || len(sends) != 2 {
		t.Fatalf("templated spans: %v", names(spans))
	}
	for i, sp := range append(requests, sends...) {
		wantAttr(t, sp, semconv.MessagingDestinationNameKey, "order.get."+[]string{"1", "2"}[i%2])
		wantAttr(t, sp, semconv.MessagingDestinationTemplateKey, "order.get.{id}")
	}
	audit := find(t, spans, "send audit", trace.SpanKindProducer)
	wantAttr(t, audit, semconv.MessagingDestinationNameKey, "audit")
	noAttr(t, audit, semconv.MessagingDestinationTemplateKey)
	jsSend := find(t, spans, "send events.order.{event}", trace.SpanKindProducer)
	wantAttr(t, jsSend, semconv.MessagingDestinationNameKey, "events.order.created")
	wantAttr(t, jsSend, semconv.MessagingDestinationTemplateKey, "events.order.{event}")
	wantAttr(t, jsSend, attribute.Key("messaging.nats.sequence"), int64(1))
	for _, sp := range spans {
		if sp.Name() != "send (temporary)" {
			continue
		}
		wantAttr(t, sp, semconv.MessagingDestinationTemporaryKey, true)
		for _, kv := range sp.Attributes() {
			if strings.Contains(kv.Value.String(), "_INBOX") {
				t.Errorf("inbox leaked into %s", kv.Key)
			}
		}
	}

	rm := tel.collect(t)
	if p := histPoint(t, rm, "messaging.client.operation.duration", semconv.MessagingOperationName("request"), semconv.MessagingDestinationName("order.get.{id}")); p.Count != 2 {
		t.Errorf("templated request count %d", p.Count)
	}
	if n := sumPoint(t, rm, "messaging.client.sent.messages", semconv.MessagingOperationName("send"), semconv.MessagingDestinationName("order.get.{id}")); n != 2 {
		t.Errorf("templated sends %d", n)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			forEachAttrs(m.Data, func(set attribute.Set) {
				if d, _ := set.Value(semconv.MessagingDestinationNameKey); strings.HasPrefix(d.AsString(), "order.get.") && d.AsString() != "order.get.{id}" {
					t.Errorf("%s: concrete subject as a label: %v", m.Name, set)
				}
				if _, ok := set.Value(semconv.MessagingDestinationTemplateKey); ok {
					t.Errorf("%s: template as a label: %v", m.Name, set)
				}
			})
		}
	}
}

// WithPanicHandler receives every recovered handler panic, traced or filtered out, from
// subscriptions, micro endpoints and JetStream.
func TestPanicHandler(t *testing.T) {
	s := startServer(t)
	tel := newTelemetry(t)
	var mu sync.Mutex
	got := map[string]*natsotel.PanicError{}
	var traced []bool
	reported := make(chan struct{}, 8)
	errBoom := errors.New("boom")
	c := tel.wrap(t, connect(t, s, "c"),
		natsotel.WithFilter(func(subject string) bool { return !strings.HasPrefix(subject, "quiet.") }),
		natsotel.WithPanicHandler(func(ctx context.Context, pe *natsotel.PanicError) {
			mu.Lock()
			got[pe.Subject] = pe
			traced = append(traced, trace.SpanFromContext(ctx).IsRecording())
			mu.Unlock()
			reported <- struct{}{}
		}))
	panicker := func(ctx context.Context, m *nats.Msg) { panic(errBoom) }
	for _, subj := range []string{"loud.sub", "quiet.sub"} {
		if _, err := c.Subscribe(subj, panicker); err != nil {
			t.Fatal(err)
		}
	}
	svc, err := c.AddService(micro.Config{Name: "x", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.AddEndpoint("ep", func(ctx context.Context, req micro.Request) { panic("micro boom") }, micro.WithEndpointSubject("quiet.ep")); err != nil {
		t.Fatal(err)
	}
	js, err := c.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	cons := setupStream(t, js, 30*time.Second)
	flush(t, c.Raw())

	for _, subj := range []string{"loud.sub", "quiet.sub"} {
		if err := c.Publish(ctxTimeout(t), subj, nil); err != nil {
			t.Fatal(err)
		}
	}
	var se *natsotel.ServiceError
	if _, err := c.Request(ctxTimeout(t), "quiet.ep", nil); !errors.As(err, &se) || se.Code != "500" {
		t.Fatalf("filtered micro panic: want a 500, got %v", err)
	}
	if _, err := js.Publish(ctxTimeout(t), "events.order.created", nil); err != nil {
		t.Fatal(err)
	}
	msgs, err := js.Fetch(ctxTimeout(t), cons, 1)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("fetch %d %v", len(msgs), err)
	}
	js.Process(ctxTimeout(t), msgs[0], func(ctx context.Context, m jetstream.Msg) { panic("js boom") })

	for i := 0; i < 4; i++ {
		select {
		case <-reported:
		case <-time.After(5 * time.Second):
			t.Fatalf("panic handler called %d times, want 4: %v", i, got)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for subj, want := range map[string]string{"loud.sub": "boom", "quiet.sub": "boom", "quiet.ep": "micro boom", "events.order.created": "js boom"} {
		pe := got[subj]
		if pe == nil {
			t.Errorf("%s: no PanicError", subj)
			continue
		}
		if !strings.Contains(pe.Error(), want) || len(pe.Stack) == 0 {
			t.Errorf("%s: %v, stack %d bytes", subj, pe, len(pe.Stack))
		}
	}
	if pe := got["loud.sub"]; pe != nil && !errors.Is(pe, errBoom) {
		t.Errorf("PanicError does not unwrap to the panic's error")
	}
	recording := 0
	for _, r := range traced {
		if r {
			recording++
		}
	}
	if recording != 2 { // loud.sub and the JetStream message; quiet.* are filtered
		t.Errorf("handler ctx recording in %d of %d calls", recording, len(traced))
	}
}
