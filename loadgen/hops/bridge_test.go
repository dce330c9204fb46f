package hops_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/natsotel/reference/loadgen/hops"
)

// A request to a micro endpoint: the server's hop is a child of the caller's CLIENT span,
// its delivery step says to whom, and the times line up with the services' own spans.
func TestRequestHops(t *testing.T) {
	s := startServer(t)
	rec := newSpans()
	errs := startBridge(t, s, rec)

	svc := traced(t, s, "inventory", rec)
	ms, err := svc.AddService(micro.Config{Name: "inventory", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := ms.AddEndpoint("reserve", func(_ context.Context, req micro.Request) { _ = req.Respond([]byte("ok")) },
		micro.WithEndpointSubject("inventory.reserve")); err != nil {
		t.Fatal(err)
	}
	// The endpoint subscribed on another connection: let the server have it before asking.
	if err := svc.Raw().Flush(); err != nil {
		t.Fatal(err)
	}
	caller := traced(t, s, "order", rec)
	if _, err := caller.Request(t.Context(), "inventory.reserve", []byte("{}")); err != nil {
		t.Fatal(err)
	}

	got := rec.waitFor(t, "the hop and its delivery", func(ss []sdktrace.ReadOnlySpan) bool {
		return find(ss, trace.SpanKindInternal, "hop hops-test") != nil &&
			find(ss, trace.SpanKindServer, "process inventory.reserve") != nil &&
			find(ss, trace.SpanKindClient, "request inventory.reserve") != nil
	})
	client := find(got, trace.SpanKindClient, "request inventory.reserve")
	srv := find(got, trace.SpanKindServer, "process inventory.reserve")
	hop := find(got, trace.SpanKindInternal, "hop hops-test")
	deliver := find(got, trace.SpanKindInternal, "deliver inventory.reserve")
	if hop == nil {
		t.Fatalf("no hop span: %s", names(got))
	}

	if hop.Parent().SpanID() != client.SpanContext().SpanID() || hop.SpanContext().TraceID() != client.SpanContext().TraceID() {
		t.Errorf("hop parent = %s, want the CLIENT span %s", hop.Parent().SpanID(), client.SpanContext().SpanID())
	}
	if deliver.Parent().SpanID() != hop.SpanContext().SpanID() {
		t.Errorf("deliver parent = %s, want the hop %s", deliver.Parent().SpanID(), hop.SpanContext().SpanID())
	}
	if n := len(children(got, hop)); n != 1 {
		t.Errorf("hop has %d children, want 1 (the delivery): %s", n, names(got))
	}
	// Timings, all on this host's clock: the server received the request after the
	// caller started, delivered it before the endpoint's handler started, and the hop
	// ended before the caller had its reply.
	if hop.StartTime().Before(client.StartTime()) {
		t.Errorf("hop starts %v before the request", client.StartTime().Sub(hop.StartTime()))
	}
	if !deliver.StartTime().Equal(hop.StartTime()) || deliver.EndTime().Before(deliver.StartTime()) {
		t.Errorf("deliver %v..%v, hop starts %v", deliver.StartTime(), deliver.EndTime(), hop.StartTime())
	}
	if deliver.EndTime().After(srv.StartTime()) {
		t.Errorf("delivered %v after the handler started", deliver.EndTime().Sub(srv.StartTime()))
	}
	if !hop.EndTime().Equal(deliver.EndTime()) {
		t.Errorf("hop ends %v, its last step %v", hop.EndTime(), deliver.EndTime())
	}
	if hop.EndTime().After(client.EndTime()) {
		t.Errorf("hop ends %v after the reply", hop.EndTime().Sub(client.EndTime()))
	}

	for key, want := range map[string]string{
		"messaging.system":           "nats",
		"messaging.destination.name": "inventory.reserve",
		"nats.server.name":           "hops-test",
		"nats.account":               "SHOP",
		"nats.connection.kind":       "client",
		"nats.connection.name":       "order",
		"nats.trace.egress.count":    "1",
	} {
		if got := attr(hop, key); got != want {
			t.Errorf("hop %s = %q, want %q", key, got, want)
		}
	}
	for key, want := range map[string]string{
		"nats.connection.name":          "inventory",
		"nats.subscription":             "inventory.reserve",
		"messaging.consumer.group.name": "q",
	} {
		if got := attr(deliver, key); got != want {
			t.Errorf("deliver %s = %q, want %q", key, got, want)
		}
	}
	for _, sp := range []sdktrace.ReadOnlySpan{hop, deliver} {
		if sp.SpanKind() != trace.SpanKindInternal {
			t.Errorf("%s is %s: hop spans must be INTERNAL, or the service graph pairs them", sp.Name(), sp.SpanKind())
		}
	}
	select {
	case err := <-errs:
		t.Errorf("bridge error: %v", err)
	default:
	}
}

// A JetStream publish: the hop is a child of the PRODUCER span and has a store step,
// which ends before the publish acknowledgement reached the producer.
func TestJetStreamStoreHop(t *testing.T) {
	s := startServer(t)
	rec := newSpans()
	startBridge(t, s, rec)

	conn := traced(t, s, "order", rec)
	js, err := conn.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Raw().CreateStream(t.Context(), jetstream.StreamConfig{Name: "ORDER_EVENTS", Subjects: []string{"events.order.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(t.Context(), "events.order.confirmed", []byte("{}")); err != nil {
		t.Fatal(err)
	}

	got := rec.waitFor(t, "the store step", func(ss []sdktrace.ReadOnlySpan) bool {
		return find(ss, trace.SpanKindInternal, "hop hops-test") != nil
	})
	var producer sdktrace.ReadOnlySpan
	for _, sp := range got {
		if sp.SpanKind() == trace.SpanKindProducer {
			producer = sp
		}
	}
	store := find(got, trace.SpanKindInternal, "store ORDER_EVENTS")
	hop := find(got, trace.SpanKindInternal, "hop hops-test")
	if producer == nil || hop == nil {
		t.Fatalf("spans: %s", names(got))
	}
	if hop.Parent().SpanID() != producer.SpanContext().SpanID() {
		t.Errorf("hop parent = %s, want the PRODUCER span %s", hop.Parent().SpanID(), producer.SpanContext().SpanID())
	}
	if store.Parent().SpanID() != hop.SpanContext().SpanID() {
		t.Errorf("store parent = %s, want the hop", store.Parent().SpanID())
	}
	if store.StartTime().Before(producer.StartTime()) || store.EndTime().After(producer.EndTime()) {
		t.Errorf("store %v..%v outside the publish %v..%v", store.StartTime(), store.EndTime(), producer.StartTime(), producer.EndTime())
	}
	if store.EndTime().Before(store.StartTime()) {
		t.Errorf("store ends before it starts")
	}
	for key, want := range map[string]string{"nats.stream": "ORDER_EVENTS", "messaging.destination.name": "events.order.confirmed", "nats.jetstream.no_interest": "false"} {
		if got := attr(store, key); got != want {
			t.Errorf("store %s = %q, want %q", key, got, want)
		}
	}
	if store.Status().Code == codes.Error {
		t.Errorf("store status %v", store.Status())
	}
}

// Events the server compresses (the traced message asked for it with Accept-Encoding)
// are decoded too.
func TestCompressedEvents(t *testing.T) {
	for _, enc := range []string{"gzip", "snappy"} {
		t.Run(enc, func(t *testing.T) {
			s := startServer(t)
			rec := newSpans()
			startBridge(t, s, rec)
			nc := connect(t, s, "publisher")
			sub, err := nc.SubscribeSync("x")
			if err != nil {
				t.Fatal(err)
			}
			m := nats.NewMsg("x")
			m.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
			m.Header.Set("Accept-Encoding", enc)
			if err := nc.PublishMsg(m); err != nil {
				t.Fatal(err)
			}
			if _, err := sub.NextMsg(5 * time.Second); err != nil {
				t.Fatal(err)
			}
			got := rec.waitFor(t, "a hop", func(ss []sdktrace.ReadOnlySpan) bool { return len(ss) == 2 })
			hop := find(got, trace.SpanKindInternal, "hop hops-test")
			if hop == nil || hop.Parent().SpanID().String() != "00f067aa0ba902b7" || hop.SpanContext().TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
				t.Fatalf("spans: %s", names(got))
			}
		})
	}
}

// Unsampled messages are not traced by the server: no event, no span.
func TestUnsampledNotTraced(t *testing.T) {
	s := startServer(t)
	rec := newSpans()
	startBridge(t, s, rec)
	nc := connect(t, s, "publisher")
	for _, flags := range []string{"00", "01"} {
		m := nats.NewMsg("x." + flags)
		m.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-"+flags)
		if err := nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	// The sampled message goes second; once its hop is in, the first had its chance.
	got := rec.waitFor(t, "the sampled hop", func(ss []sdktrace.ReadOnlySpan) bool { return len(ss) > 0 })
	if len(got) != 1 || attr(got[0], "messaging.destination.name") != "x.01" {
		t.Fatalf("spans: %s", names(got))
	}
	if attr(got[0], "nats.trace.egress.count") != "0" {
		t.Errorf("egress count = %s for a message nobody subscribed to", attr(got[0], "nats.trace.egress.count"))
	}
}

// Garbage on the trace subject goes to the error handler and the bridge keeps going.
func TestMalformedEventsOverNATS(t *testing.T) {
	s := startServer(t)
	rec := newSpans()
	errs := startBridge(t, s, rec)
	nc := connect(t, s, "forger")
	if err := nc.Publish(traceSubject, []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errs:
		if !errors.Is(err, hops.ErrMalformed) {
			t.Errorf("error %v, want ErrMalformed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no error reported for a malformed event")
	}
	m := nats.NewMsg("after")
	m.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	if err := nc.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "a hop after the garbage", func(ss []sdktrace.ReadOnlySpan) bool { return len(ss) == 1 })
}

// Record on hand-made events: what is refused, and how the steps become spans.
func TestRecord(t *testing.T) {
	const tp = `"traceparent":["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"]`
	const in = `{"type":"in","ts":"2026-01-02T03:04:05.000001Z","kind":0,"cid":7,"name":"c","acc":"A","subj":"s"}`
	for _, tc := range []struct {
		name string
		body string
		want error
	}{
		{"empty", ``, hops.ErrMalformed},
		{"not json", `nope`, hops.ErrMalformed},
		{"no steps", `{"request":{"header":{` + tp + `}}}`, hops.ErrMalformed},
		{"egress first", `{"request":{"header":{` + tp + `}},"events":[{"type":"eg","ts":"2026-01-02T03:04:05Z"}]}`, hops.ErrMalformed},
		{"ingress without time", `{"request":{"header":{` + tp + `}},"events":[{"type":"in"}]}`, hops.ErrMalformed},
		{"wrong types", `{"request":{"header":{` + tp + `}},"events":[{"type":"in","ts":"2026-01-02T03:04:05Z","cid":"seven"}]}`, hops.ErrMalformed},
		{"no traceparent", `{"events":[` + in + `]}`, hops.ErrNoTraceContext},
		{"bad traceparent", `{"request":{"header":{"traceparent":["00-zz-00f067aa0ba902b7-01"]}},"events":[` + in + `]}`, hops.ErrNoTraceContext},
		{"unsampled", `{"request":{"header":{"Traceparent":["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"]}},"events":[` + in + `]}`, hops.ErrNoTraceContext},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := newSpans()
			b := hops.New(hops.WithTracerProvider(provider(t, rec)))
			err := b.Record(&nats.Msg{Data: []byte(tc.body)})
			if !errors.Is(err, tc.want) {
				t.Errorf("error %v, want %v", err, tc.want)
			}
			if n := len(rec.Ended()); n != 0 {
				t.Errorf("%d spans recorded from a refused event", n)
			}
		})
	}

	t.Run("steps", func(t *testing.T) {
		rec := newSpans()
		b := hops.New(hops.WithTracerProvider(provider(t, rec)))
		body := `{"server":{"name":"n1","id":"NID","ver":"2.15.2","cluster":"c1"},` +
			`"request":{"header":{"TRACEPARENT":["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"],"Nats-Trace-Hop":["1"]},"msgsize":99},"hops":1,` +
			`"events":[` + in + `,` +
			`{"type":"sm","ts":"2026-01-02T03:04:05.000002Z","to":"mapped"},` +
			`{"type":"si","ts":"2026-01-02T03:04:05.000003Z","acc":"B","from":"s","to":"t"},` +
			`{"type":"se","ts":"2026-01-02T03:04:05.000004Z","acc":"C","to":"u"},` +
			`{"type":"js","ts":"2026-01-02T03:04:05.000009Z","stream":"S","subject":"s","error":"store failed"},` +
			`{"type":"eg","ts":"2026-01-02T03:04:05.000005Z","kind":1,"cid":3,"name":"n2","hop":"1.1"},` +
			`{"type":"eg","ts":"2026-01-02T03:04:05.000006Z","kind":0,"cid":4,"name":"r","sub":"_INBOX_r.abc.*","error":"Not delivered because client is closed"},` +
			`{"type":"eg","ts":"2026-01-02T03:04:04Z","kind":0,"cid":5,"name":"early","sub":"s"},` +
			`{"type":"zz","ts":"2026-01-02T03:04:05.000007Z"}]}`
		if err := b.Record(&nats.Msg{Data: []byte(body)}); err != nil {
			t.Fatal(err)
		}
		got := rec.Ended()
		want := []string{"map subject", "service import", "stream export", "store S", "forward route", "deliver (temporary)", "deliver s", "hop n1"}
		if names(got) != "internal "+strings.Join(want, ", internal ") {
			t.Fatalf("spans %s, want %v (the unknown step skipped)", names(got), want)
		}
		hop := got[len(got)-1]
		start := time.Date(2026, 1, 2, 3, 4, 5, 1000, time.UTC)
		if !hop.StartTime().Equal(start) || !hop.EndTime().Equal(start.Add(8*time.Microsecond)) {
			t.Errorf("hop %v..%v, want ingress..last step", hop.StartTime(), hop.EndTime())
		}
		for key, want := range map[string]string{"nats.trace.hop": "1", "nats.trace.hops": "1", "nats.server.cluster": "c1",
			"messaging.message.envelope.size": "99", "nats.trace.egress.count": "3"} {
			if got := attr(hop, key); got != want {
				t.Errorf("hop %s = %q, want %q", key, got, want)
			}
		}
		for _, sp := range got[:len(got)-1] {
			if sp.Parent().SpanID() != hop.SpanContext().SpanID() || !sp.StartTime().Equal(start) || sp.EndTime().Before(start) {
				t.Errorf("%s: parent %s, %v..%v", sp.Name(), sp.Parent().SpanID(), sp.StartTime(), sp.EndTime())
			}
		}
		if st := find(got, trace.SpanKindInternal, "store S").Status(); st.Code != codes.Error || st.Description != "store failed" {
			t.Errorf("store status %v", st)
		}
		tmp := find(got, trace.SpanKindInternal, "deliver (temporary)")
		if tmp.Status().Code != codes.Error || attr(tmp, "nats.subscription") != "(temporary)" || attr(tmp, "messaging.destination.temporary") != "true" {
			t.Errorf("temporary delivery: status %v, attributes %v", tmp.Status(), tmp.Attributes())
		}
		if attr(find(got, trace.SpanKindInternal, "forward route"), "nats.trace.hop") != "1.1" {
			t.Error("forward route lacks its hop id")
		}
	})

	t.Run("too many steps", func(t *testing.T) {
		rec := newSpans()
		b := hops.New(hops.WithTracerProvider(provider(t, rec)))
		var body bytes.Buffer
		body.WriteString(`{"request":{"header":{` + tp + `}},"events":[` + in)
		for range hops.MaxSteps + 5 {
			body.WriteString(`,{"type":"eg","ts":"2026-01-02T03:04:05.000002Z","kind":0,"sub":"s"}`)
		}
		body.WriteString(`]}`)
		if err := b.Record(&nats.Msg{Data: body.Bytes()}); err != nil {
			t.Fatal(err)
		}
		got := rec.Ended()
		if len(got) != hops.MaxSteps+1 || attr(got[len(got)-1], "nats.trace.steps.dropped") != "5" {
			t.Errorf("%d spans, dropped = %q", len(got), attr(got[len(got)-1], "nats.trace.steps.dropped"))
		}
	})

	t.Run("decompression bomb", func(t *testing.T) {
		var zipped bytes.Buffer
		zw := gzip.NewWriter(&zipped)
		_, _ = zw.Write(bytes.Repeat([]byte(" "), hops.MaxEventBytes+10))
		_ = zw.Close()
		m := &nats.Msg{Data: zipped.Bytes(), Header: nats.Header{"Content-Encoding": {"gzip"}}}
		if err := hops.New().Record(m); !errors.Is(err, hops.ErrMalformed) {
			t.Errorf("error %v, want ErrMalformed", err)
		}
	})
}
