package natsotel_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/natsotel/reference/natsotel"
)

func TestWrapNil(t *testing.T) {
	if _, err := natsotel.Wrap(nil); !errors.Is(err, natsotel.ErrNilConn) {
		t.Fatalf("got %v", err)
	}
}

func TestRequestTimeoutAndCancel(t *testing.T) {
	s := startServer(t)
	tel := newTelemetry(t)
	c := tel.wrap(t, connect(t, s, "c"), natsotel.WithDefaultRequestTimeout(100*time.Millisecond))
	// A responder that never answers.
	if _, err := c.NATS().Subscribe("slow", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	_ = c.NATS().Flush()

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.Request(ctx, "slow", nil)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, nats.ErrTimeout) {
		t.Fatalf("deadline: %v", err)
	}
	if !strings.Contains(err.Error(), "slow") {
		t.Errorf("error lacks subject: %v", err)
	}
	// No deadline on ctx: the default request timeout applies.
	if _, err := c.Request(context.Background(), "slow", nil); !errors.Is(err, nats.ErrTimeout) {
		t.Fatalf("default timeout: %v", err)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel2() }()
	if _, err := c.Request(ctx2, "slow", nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancel: %v", err)
	}
	var types []string
	for _, sp := range tel.spans() {
		v, _ := attr(sp, semconv.ErrorTypeKey)
		types = append(types, v.AsString())
	}
	if strings.Join(types, ",") != "timeout,timeout,canceled" {
		t.Errorf("error types %v", types)
	}
}

func TestFilterSkipsSpansButPropagates(t *testing.T) {
	s := startServer(t)
	tel := newTelemetry(t)
	c := tel.wrap(t, connect(t, s, "c"), natsotel.WithFilter(func(subject string) bool { return !strings.HasPrefix(subject, "health.") }))
	svc, err := c.AddService(micro.Config{Name: "h", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	seen := make(chan trace.SpanContext, 1)
	if err := svc.AddEndpoint("check", func(ctx context.Context, req micro.Request) {
		seen <- trace.SpanContextFromContext(ctx)
		_ = req.Respond(nil)
	}, micro.WithEndpointSubject("health.check")); err != nil {
		t.Fatal(err)
	}
	ctx, root := tel.tp.Tracer("test").Start(ctxTimeout(t), "root")
	if _, err := c.Request(ctx, "health.check", nil); err != nil {
		t.Fatal(err)
	}
	root.End()
	got := <-seen
	if got.SpanID() != root.SpanContext().SpanID() || !got.IsRemote() {
		t.Errorf("handler ctx %v, want the caller's root span", got)
	}
	if n := len(tel.spans()); n != 1 {
		t.Errorf("spans %v", names(tel.spans()))
	}
	rm := tel.collect(t)
	for _, sm := range rm.ScopeMetrics {
		if len(sm.Metrics) != 0 {
			t.Errorf("filtered traffic recorded metrics: %v", sm.Metrics)
		}
	}
}

// Two Conns with different providers in one process: each emits to its own pipeline, and
// the edge still connects across them.
func TestSeveralProviders(t *testing.T) {
	s := startServer(t)
	telA, telB := newTelemetry(t), newTelemetry(t)
	a := telA.wrap(t, connect(t, s, "a"))
	b := telB.wrap(t, connect(t, s, "b"))
	svc, err := b.AddService(micro.Config{Name: "b", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.AddEndpoint("b", func(ctx context.Context, req micro.Request) { _ = req.Respond(nil) }); err != nil {
		t.Fatal(err)
	}
	flush(t, b.NATS())
	if _, err := a.Request(ctxTimeout(t), "b", nil); err != nil {
		t.Fatal(err)
	}
	client := find(t, telA.waitSpans(t, 1), "request b", trace.SpanKindClient)
	server := find(t, telB.waitSpans(t, 1), "process b", trace.SpanKindServer)
	wantChild(t, client, server)
	if len(telA.spans()) != 1 || len(telB.spans()) != 1 {
		t.Errorf("A %v B %v", names(telA.spans()), names(telB.spans()))
	}
	if a.Tracer() == b.Tracer() {
		t.Error("tracers shared")
	}
}

func TestSpanNameFormatterAndAttributes(t *testing.T) {
	s := startServer(t)
	tel := newTelemetry(t)
	c := tel.wrap(t, connect(t, s, "c"),
		natsotel.WithSpanNameFormatter(func(op, dest string) string { return strings.ToUpper(op) + ":" + dest }),
		natsotel.WithAttributes(attribute.String("peer.service", "ext")))
	if err := c.Publish(ctxTimeout(t), "x", nil); err != nil {
		t.Fatal(err)
	}
	sp := find(t, tel.spans(), "SEND:x", trace.SpanKindProducer)
	wantAttr(t, sp, attribute.Key("peer.service"), "ext")
}
