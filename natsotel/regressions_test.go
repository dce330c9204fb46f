package natsotel_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/natsotel/reference/natsotel"
)

// A subscribe handler that panics on a subject WithFilter excludes is recovered like a
// traced one: the process survives and the subscription keeps delivering.
func TestFilteredSubscribePanicRecovered(t *testing.T) {
	s := startServer(t)
	tel := newTelemetry(t)
	c := tel.wrap(t, connect(t, s, "c"), natsotel.WithFilter(func(subject string) bool { return subject != "p" }))
	got := make(chan string, 2)
	if _, err := c.Subscribe("p", func(ctx context.Context, m *nats.Msg) {
		if string(m.Data) == "boom" {
			panic("boom")
		}
		got <- string(m.Data)
	}); err != nil {
		t.Fatal(err)
	}
	flush(t, c.Raw())
	plain := connect(t, s, "plain")
	for _, d := range []string{"boom", "after"} {
		if err := plain.Publish("p", []byte(d)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case v := <-got:
		if v != "after" {
			t.Fatalf("got %q", v)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("subscription stopped delivering after the panic")
	}
	if n := len(tel.spans()); n != 0 {
		t.Errorf("filtered subject produced spans: %v", names(tel.spans()))
	}
}

// A JetStream handler that panics on a filtered subject is recovered and the message is left
// unacknowledged, so JetStream redelivers it.
func TestFilteredJetStreamPanicRecoveredAndRedelivered(t *testing.T) {
	s := startServer(t)
	tel := newTelemetry(t)
	js := tel.jetStream(t, s, "c", natsotel.WithFilter(func(subject string) bool { return !strings.HasPrefix(subject, "events.") }))
	cons := setupStream(t, js, time.Second)
	if _, err := js.Publish(ctxTimeout(t), "events.order.paid", []byte("x")); err != nil {
		t.Fatal(err)
	}
	redelivered := make(chan uint64, 1)
	cc, err := js.Consume(cons, func(ctx context.Context, m jetstream.Msg) {
		md, _ := m.Metadata()
		if md.NumDelivered == 1 {
			panic("boom")
		}
		_ = m.Ack()
		select {
		case redelivered <- md.NumDelivered:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Stop()
	select {
	case n := <-redelivered:
		if n != 2 {
			t.Errorf("delivered %d times", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("message not redelivered after the recovered panic")
	}
	if n := len(tel.spans()); n != 0 {
		t.Errorf("filtered subject produced spans: %v", names(tel.spans()))
	}
}

// A micro handler that returns without answering leaves the caller waiting for a timeout:
// its SERVER span says so with error.type=no_reply.
func TestMicroNoReplyIsAnError(t *testing.T) {
	s := startServer(t)
	tel := newTelemetry(t)
	c := tel.wrap(t, connect(t, s, "svc"))
	svc, err := c.AddService(micro.Config{Name: "x", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.AddEndpoint("drop", func(ctx context.Context, req micro.Request) {}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := c.Request(ctx, "drop", nil); err == nil {
		t.Fatal("request to a dropping handler succeeded")
	}
	server := find(t, tel.waitSpans(t, 2), "process drop", trace.SpanKindServer)
	if server.Status().Code != codes.Error {
		t.Errorf("status %v, want Error", server.Status())
	}
	wantAttr(t, server, semconv.ErrorTypeKey, "no_reply")
	rm := tel.collect(t)
	if p := histPoint(t, rm, "messaging.process.duration", semconv.MessagingDestinationName("drop"), semconv.ErrorTypeKey.String("no_reply")); p.Count != 1 {
		t.Errorf("no_reply process count %d", p.Count)
	}
}

// A handler that answers twice: the caller got the first answer, so the span keeps it.
func TestMicroRespondTwiceKeepsFirst(t *testing.T) {
	s := startServer(t)
	tel := newTelemetry(t)
	c := tel.wrap(t, connect(t, s, "svc"))
	svc, err := c.AddService(micro.Config{Name: "x", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.AddEndpoint("ok-then-error", func(ctx context.Context, req micro.Request) {
		_ = req.Respond([]byte("ok"))
		_ = req.Error("409", "too late", nil)
	}); err != nil {
		t.Fatal(err)
	}
	if err := svc.AddEndpoint("error-then-ok", func(ctx context.Context, req micro.Request) {
		_ = req.Error("409", "conflict", nil)
		_ = req.Respond([]byte("too late"))
	}); err != nil {
		t.Fatal(err)
	}
	reply, err := c.Request(ctxTimeout(t), "ok-then-error", nil)
	if err != nil || string(reply.Data) != "ok" {
		t.Fatalf("ok-then-error: %v %v", reply, err)
	}
	if _, err := c.Request(ctxTimeout(t), "error-then-ok", nil); err == nil {
		t.Fatal("error-then-ok: want the 409")
	}
	spans := tel.waitSpans(t, 4)
	okFirst := find(t, spans, "process ok-then-error", trace.SpanKindServer)
	if okFirst.Status().Code != codes.Unset {
		t.Errorf("ok-then-error: status %v, the caller got the success", okFirst.Status())
	}
	noAttr(t, okFirst, semconv.ErrorTypeKey)
	errFirst := find(t, spans, "process error-then-ok", trace.SpanKindServer)
	wantAttr(t, errFirst, semconv.ErrorTypeKey, "409") // the caller got the 409 (a 4xx: status Unset)
}

// Failed publishes count as sent attempts with error.type, like failed requests.
func TestFailedPublishCountsAttempt(t *testing.T) {
	s := startServer(t, func(o *server.Options) { o.MaxPayload = 1024 })
	tel := newTelemetry(t)
	c := tel.wrap(t, connect(t, s, "c"))
	if err := c.Publish(ctxTimeout(t), "big", make([]byte, 2048)); err == nil {
		t.Fatal("publish over max_payload succeeded")
	}
	js, err := c.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctxTimeout(t), "nostream.here", nil); err == nil {
		t.Fatal("JetStream publish without a stream succeeded")
	}
	rm := tel.collect(t)
	if n := sumPoint(t, rm, "messaging.client.sent.messages", semconv.MessagingDestinationName("big"), semconv.ErrorTypeKey.String("max_payload")); n != 1 {
		t.Errorf("failed publish counted %d, want 1 with error.type=max_payload", n)
	}
	var js1 int64
	for _, dp := range sumPoints(t, rm, "messaging.client.sent.messages") {
		if d, _ := dp.Attributes.Value(semconv.MessagingDestinationNameKey); d.AsString() == "nostream.here" {
			if et, ok := dp.Attributes.Value(semconv.ErrorTypeKey); !ok || et.AsString() == "" {
				t.Errorf("failed JetStream publish counted without error.type: %v", dp.Attributes)
			}
			js1 += dp.Value
		}
	}
	if js1 != 1 {
		t.Errorf("failed JetStream publish counted %d, want 1", js1)
	}
}

// sumPoints returns the data points of an int64 sum (none if it was never recorded).
func sumPoints(t *testing.T, rm metricdata.ResourceMetrics, name string) []metricdata.DataPoint[int64] {
	t.Helper()
	m, ok := findMetric(rm, name)
	if !ok {
		return nil
	}
	return m.Data.(metricdata.Sum[int64]).DataPoints
}

// A handler that calls runtime.Goexit (t.FailNow does) still ends its span (runHandler, the
// same for Subscribe and JetStream handlers).
func TestHandlerGoexitEndsSpan(t *testing.T) {
	s := startServer(t)
	tel := newTelemetry(t)
	c := tel.wrap(t, connect(t, s, "c"))

	js, err := c.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	cons := setupStream(t, js, 30*time.Second)
	if _, err := js.Publish(ctxTimeout(t), "events.order.created", nil); err != nil {
		t.Fatal(err)
	}
	msgs, err := js.Fetch(ctxTimeout(t), cons, 1)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("fetch %d %v", len(msgs), err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		js.Process(context.Background(), msgs[0], func(ctx context.Context, m jetstream.Msg) { runtime.Goexit() })
	}()
	<-done
	proc := find(t, tel.waitSpans(t, 3), "process ORDER_EVENTS", trace.SpanKindConsumer)
	if proc.Status().Code != codes.Error {
		t.Errorf("JetStream: status %v", proc.Status())
	}
}

// Ephemeral and ordered consumers have generated names (an ordered consumer gets a new one on
// every reset): never in messaging.consumer.group.name or a metric label. Durable consumers
// keep the group as a metric label (and on their settle spans), also for Process after
// Fetch. A receive span names every consumer, durable or not, as
// messaging.destination.subscription.name; a process span names none.
func TestJetStreamConsumerGroupOnlyForDurables(t *testing.T) {
	s := startServer(t)
	tel := newTelemetry(t)
	js := tel.jetStream(t, s, "c")
	durable := setupStream(t, js, 30*time.Second)
	ctx := ctxTimeout(t)
	st, err := js.Raw().Stream(ctx, "ORDER_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	ephemeral, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	ordered, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "events.order.created", nil); err != nil {
		t.Fatal(err)
	}

	// Ephemeral through Consume.
	consumed := make(chan string, 1)
	cc, err := js.Consume(ephemeral, func(ctx context.Context, m jetstream.Msg) {
		md, _ := m.Metadata()
		_ = m.Ack()
		consumed <- md.Consumer
	})
	if err != nil {
		t.Fatal(err)
	}
	ephName := <-consumed
	cc.Stop()
	// Ordered and durable through Fetch + Process.
	for _, cons := range []jetstream.Consumer{ordered, durable} {
		msgs, err := js.Fetch(ctx, cons, 1)
		if err != nil || len(msgs) != 1 {
			t.Fatalf("fetch %d %v", len(msgs), err)
		}
		js.Process(ctx, msgs[0], func(ctx context.Context, m jetstream.Msg) { _ = m.Ack() })
	}

	spans := tel.waitSpans(t, 9) // 6 and an ack for each of the 3 messages
	seen := map[string]bool{}
	for _, sp := range spans {
		if sp.SpanKind() == trace.SpanKindProducer {
			continue
		}
		if op, _ := attr(sp, semconv.MessagingOperationTypeKey); op.AsString() == "settle" {
			// No consumer name on a settle span (its parent has it); the group only if durable.
			if g, ok := attr(sp, semconv.MessagingConsumerGroupNameKey); ok && g.AsString() != "billing" {
				t.Errorf("%q: non-durable consumer as consumer.group.name=%q", sp.Name(), g.AsString())
			}
			continue
		}
		// The group on a process span only for the durable consumer; never on a receive
		// span (it names the consumer as subscription.name).
		if g, ok := attr(sp, semconv.MessagingConsumerGroupNameKey); ok && (sp.SpanKind() != trace.SpanKindConsumer || g.AsString() != "billing") {
			t.Errorf("%s %q: consumer.group.name=%q", sp.SpanKind(), sp.Name(), g.AsString())
		}
		sub, ok := attr(sp, semconv.MessagingDestinationSubscriptionNameKey)
		if sp.SpanKind() == trace.SpanKindConsumer {
			if ok {
				t.Errorf("process span %q: subscription name %q", sp.Name(), sub.AsString())
			}
			continue
		}
		if !ok {
			t.Errorf("%s %q: no subscription name", sp.SpanKind(), sp.Name())
			continue
		}
		seen[sub.AsString()] = true
	}
	if !seen["billing"] || seen[ephName] || len(seen) != 2 { // receive: ordered, durable
		t.Errorf("receive spans by consumer %v, want billing and the ordered consumer", seen)
	}

	rm := tel.collect(t)
	for _, name := range []string{"messaging.process.duration", "messaging.client.operation.duration", "messaging.client.consumed.messages"} {
		m, _ := findMetric(rm, name)
		forEachAttrs(m.Data, func(set attribute.Set) {
			if g, ok := set.Value(semconv.MessagingConsumerGroupNameKey); ok && g.AsString() != "billing" {
				t.Errorf("%s: generated consumer name as a label: %v", name, set)
			}
			if _, ok := set.Value(semconv.MessagingDestinationSubscriptionNameKey); ok {
				t.Errorf("%s: subscription name as a label: %v", name, set)
			}
		})
	}
	if p := histPoint(t, rm, "messaging.process.duration", semconv.MessagingDestinationName("ORDER_EVENTS"), semconv.MessagingConsumerGroupName("billing")); p.Count != 1 {
		t.Errorf("durable process count %d", p.Count)
	}
}

// CONSUMER and SERVER spans name the concrete subject in messaging.destination.name and the
// subscription, endpoint or stream in messaging.destination.template; span names and metric
// labels keep the low-cardinality template.
func TestReceivingSpansCarryConcreteSubject(t *testing.T) {
	s := startServer(t)
	tel := newTelemetry(t)
	c := tel.wrap(t, connect(t, s, "c"))

	got := make(chan struct{}, 1)
	if _, err := c.Subscribe("orders.*", func(ctx context.Context, m *nats.Msg) { got <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	svc, err := c.AddService(micro.Config{Name: "order", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.AddEndpoint("get", func(ctx context.Context, req micro.Request) { _ = req.Respond(nil) },
		micro.WithEndpointSubject("order.get.*")); err != nil {
		t.Fatal(err)
	}
	if err := svc.AddEndpoint("plain", func(ctx context.Context, req micro.Request) { _ = req.Respond(nil) },
		micro.WithEndpointSubject("order.plain")); err != nil {
		t.Fatal(err)
	}
	flush(t, c.Raw())
	if err := c.Publish(ctxTimeout(t), "orders.created", nil); err != nil {
		t.Fatal(err)
	}
	<-got
	if _, err := c.Request(ctxTimeout(t), "order.get.42", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Request(ctxTimeout(t), "order.plain", nil); err != nil {
		t.Fatal(err)
	}
	js, err := c.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	cons := setupStream(t, js, 30*time.Second)
	if _, err := js.Publish(ctxTimeout(t), "events.order.created", nil); err != nil {
		t.Fatal(err)
	}
	msgs, err := js.Fetch(ctxTimeout(t), cons, 1)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("fetch %d %v", len(msgs), err)
	}
	js.Process(ctxTimeout(t), msgs[0], func(ctx context.Context, m jetstream.Msg) { _ = m.Ack() })

	spans := tel.waitSpans(t, 10)
	sub := find(t, spans, "process orders.*", trace.SpanKindConsumer)
	wantAttr(t, sub, semconv.MessagingDestinationNameKey, "orders.created")
	wantAttr(t, sub, semconv.MessagingDestinationTemplateKey, "orders.*")
	ep := find(t, spans, "process order.get.*", trace.SpanKindServer)
	wantAttr(t, ep, semconv.MessagingDestinationNameKey, "order.get.42")
	wantAttr(t, ep, semconv.MessagingDestinationTemplateKey, "order.get.*")
	plain := find(t, spans, "process order.plain", trace.SpanKindServer)
	wantAttr(t, plain, semconv.MessagingDestinationNameKey, "order.plain")
	noAttr(t, plain, semconv.MessagingDestinationTemplateKey)
	jsp := find(t, spans, "process ORDER_EVENTS", trace.SpanKindConsumer)
	wantAttr(t, jsp, semconv.MessagingDestinationNameKey, "events.order.created")
	wantAttr(t, jsp, semconv.MessagingDestinationTemplateKey, "ORDER_EVENTS")
	recv := find(t, spans, "receive ORDER_EVENTS", trace.SpanKindClient)
	wantAttr(t, recv, semconv.MessagingDestinationNameKey, "ORDER_EVENTS")

	// Metrics: the template, never the concrete subject.
	rm := tel.collect(t)
	histPoint(t, rm, "messaging.process.duration", semconv.MessagingDestinationName("orders.*"))
	histPoint(t, rm, "messaging.process.duration", semconv.MessagingDestinationName("order.get.*"))
	histPoint(t, rm, "messaging.process.duration", semconv.MessagingDestinationName("ORDER_EVENTS"))
	m, _ := findMetric(rm, "messaging.process.duration")
	forEachAttrs(m.Data, func(set attribute.Set) {
		if _, ok := set.Value(semconv.MessagingDestinationTemplateKey); ok {
			t.Errorf("template as a metric label: %v", set)
		}
		if d, _ := set.Value(semconv.MessagingDestinationNameKey); d.AsString() == "order.get.42" || d.AsString() == "orders.created" || d.AsString() == "events.order.created" {
			t.Errorf("concrete subject as a metric label: %v", set)
		}
	})
}

// A forwarded message's header carries another trace's context: the new traceparent must
// not travel next to the old tracestate or baggage (the propagators write those only when
// set, so natsotel removes every trace key, in any case, before injecting).
func TestForwardedTraceContextReplaced(t *testing.T) {
	s := startServer(t)
	tel := newTelemetry(t)
	c := tel.wrap(t, connect(t, s, "c"))
	got := make(chan nats.Header, 3)
	if _, err := c.Raw().Subscribe("fwd", func(m *nats.Msg) { got <- m.Header }); err != nil {
		t.Fatal(err)
	}
	flush(t, c.Raw())
	old := func() nats.Header {
		return nats.Header{
			"Traceparent": {"00-11111111111111111111111111111111-2222222222222222-01"},
			"tracestate":  {"old=trace-A"},
			"BAGGAGE":     {"tenant=old"},
			"X-Keep":      {"1"},
		}
	}
	js, err := c.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Raw().CreateOrUpdateStream(ctxTimeout(t), jetstream.StreamConfig{Name: "FWD", Subjects: []string{"fwd"}}); err != nil {
		t.Fatal(err)
	}
	ctx, root := tel.tp.Tracer("t").Start(context.Background(), "new-trace") // no tracestate, no baggage
	if err := c.PublishMsg(ctx, &nats.Msg{Subject: "fwd", Header: old()}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: "fwd", Header: old()}); err != nil {
		t.Fatal(err)
	}
	root.End()
	for range 2 {
		h := <-got
		if len(h) != 2 || h.Get("X-Keep") != "1" {
			t.Errorf("header %v: want the new traceparent and X-Keep only", h)
		}
		if tp := h.Get("traceparent"); !strings.Contains(tp, root.SpanContext().TraceID().String()) {
			t.Errorf("traceparent %q, want the new trace %s", tp, root.SpanContext().TraceID())
		}
	}
}

// WithConsumerLinks and Process with a message that carries no producer context: the
// caller's span in ctx is the parent (as Process documents), not a link of a new root.
func TestLinksModeProcessKeepsCallerParent(t *testing.T) {
	s := startServer(t)
	tel := newTelemetry(t)
	js, err := tel.wrap(t, connect(t, s, "c"), natsotel.WithConsumerLinks()).JetStream()
	if err != nil {
		t.Fatal(err)
	}
	cons := setupStream(t, js, 30*time.Second)
	if _, err := js.Raw().Publish(ctxTimeout(t), "events.order.created", []byte("x")); err != nil { // no trace context
		t.Fatal(err)
	}
	msgs, err := js.Fetch(ctxTimeout(t), cons, 1)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("fetch: %d %v", len(msgs), err)
	}
	ctx, caller := tel.tp.Tracer("t").Start(context.Background(), "caller")
	js.Process(ctx, msgs[0], func(context.Context, jetstream.Msg) {})
	caller.End()
	p := find(t, tel.waitSpans(t, 3), "process ORDER_EVENTS", trace.SpanKindConsumer)
	if p.Parent().SpanID() != caller.SpanContext().SpanID() || len(p.Links()) != 0 {
		t.Errorf("process span: parent %s, %d links; want the child of the caller %s", p.Parent().SpanID(), len(p.Links()), caller.SpanContext().SpanID())
	}
}

// A message published to a micro endpoint without a reply subject is not handled: an
// endpoint answers requests, and a message nobody waits for is what JetStream sends when
// a user names the endpoint as the reply subject of its own API request (see the reply
// guard in respond.go). Fire-and-forget messages are for Subscribe. (It used to be
// handled, and then its span was wrongly status Error.)
func TestMicroMessageWithoutReplyIsRefused(t *testing.T) {
	s := startServer(t)
	tel := newTelemetry(t)
	c := tel.wrap(t, connect(t, s, "c"))
	svc, err := c.AddService(micro.Config{Name: "notify", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Stop()
	var handled atomic.Int64
	if err := svc.AddEndpoint("event", func(ctx context.Context, req micro.Request) { handled.Add(1) }); err != nil {
		t.Fatal(err)
	}
	flush(t, c.Raw())
	if err := connect(t, s, "p").Publish("event", nil); err != nil {
		t.Fatal(err)
	}
	sp := find(t, tel.waitSpans(t, 1), "process event", trace.SpanKindServer)
	wantAttr(t, sp, semconv.ErrorTypeKey, "reply_refused")
	if got := sp.Status().Description; got != "no reply subject" {
		t.Errorf("status description %q", got)
	}
	if n := handled.Load(); n != 0 {
		t.Errorf("handled %d times", n)
	}
}

// A JetStream publish no stream stores is no_responders, like a core request nobody
// answers (jetstream's ErrNoStreamResponse does not wrap nats.ErrNoResponders).
func TestJetStreamNoStreamIsNoResponders(t *testing.T) {
	s := startServer(t)
	tel := newTelemetry(t)
	js := tel.jetStream(t, s, "c")
	_, err := js.Publish(ctxTimeout(t), "nostream.x", nil, jetstream.WithRetryAttempts(0))
	if !errors.Is(err, jetstream.ErrNoStreamResponse) {
		t.Fatalf("publish without a stream: %v", err)
	}
	wantAttr(t, find(t, tel.spans(), "send nostream.x", trace.SpanKindProducer), semconv.ErrorTypeKey, "no_responders")
}

// A Nats-Msg-Id header with no value neither panics nor leaves the span open (plain
// jetstream accepts the message).
func TestJetStreamPublishEmptyMsgIDValue(t *testing.T) {
	s := startServer(t)
	tel := newTelemetry(t)
	js := tel.jetStream(t, s, "c")
	if _, err := js.Raw().CreateOrUpdateStream(ctxTimeout(t), jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.PublishMsg(ctxTimeout(t), &nats.Msg{Subject: "s.x", Header: nats.Header{jetstream.MsgIDHeader: {}}}); err != nil {
		t.Fatal(err)
	}
	sp := find(t, tel.waitSpans(t, 1), "send s.x", trace.SpanKindProducer)
	noAttr(t, sp, semconv.MessagingMessageIDKey)
}

// A handler whose answer cannot be sent (bigger than max_payload) gets the send's error
// type on its span, not a bare no_reply.
func TestMicroAnswerTooBig(t *testing.T) {
	s := startServer(t, func(o *server.Options) { o.MaxPayload = 1024 })
	tel := newTelemetry(t)
	c := tel.wrap(t, connect(t, s, "c"))
	svc, err := c.AddService(micro.Config{Name: "big", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Stop()
	sent := make(chan error, 1)
	if err := svc.AddEndpoint("big", func(ctx context.Context, req micro.Request) {
		sent <- req.Respond(make([]byte, 2048))
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, _ = c.Request(ctx, "big", nil) // times out: the answer never leaves the server side
	// micro keeps only the text of the nats.go error.
	if err := <-sent; !errors.Is(err, micro.ErrRespond) || !strings.Contains(err.Error(), nats.ErrMaxPayload.Error()) {
		t.Fatalf("Respond: %v, want micro.ErrRespond for a message over max_payload", err)
	}
	sp := find(t, tel.waitSpans(t, 2), "process big", trace.SpanKindServer)
	wantAttr(t, sp, semconv.ErrorTypeKey, "max_payload")
	if sp.Status().Code != codes.Error || !strings.Contains(sp.Status().Description, "no answer sent") {
		t.Errorf("status %v", sp.Status())
	}
}
