package natsotel_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/natsotel/reference/natsotel"
)

func TestWrapNil(t *testing.T) {
	if _, err := natsotel.Wrap(nil); err == nil || err.Error() != "natsotel: nil *nats.Conn" {
		t.Fatalf("got %v", err)
	}
}

func TestRequestTimeoutAndCancel(t *testing.T) {
	s := startServer(t)
	tel := newTelemetry(t)
	// A default far longer than the deadlines below: a call returning early honoured ctx.
	c := tel.wrap(t, connect(t, s, "c"), natsotel.WithDefaultRequestTimeout(time.Minute))
	// A responder that never answers.
	if _, err := c.Raw().Subscribe("slow", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	_ = c.Raw().Flush()

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.Request(ctx, "slow", nil)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, nats.ErrTimeout) {
		t.Fatalf("deadline: %v", err)
	}
	if !strings.Contains(err.Error(), "slow") {
		t.Errorf("error lacks subject: %v", err)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel2)
	if _, err := c.Request(ctx2, "slow", nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancel: %v", err)
	}
	// No deadline on ctx: the default request timeout applies.
	short := tel.wrap(t, c.Raw(), natsotel.WithDefaultRequestTimeout(100*time.Millisecond))
	if _, err := short.Request(context.Background(), "slow", nil); !errors.Is(err, nats.ErrTimeout) {
		t.Fatalf("default timeout: %v", err)
	}
	var types []string
	for _, sp := range tel.spans() {
		v, _ := attr(sp, semconv.ErrorTypeKey)
		types = append(types, v.AsString())
		if sp.Status().Code != codes.Error {
			t.Errorf("%s (%s): status %v, want Error", sp.Name(), v.AsString(), sp.Status())
		}
	}
	if strings.Join(types, ",") != "timeout,canceled,timeout" {
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

// Two Conns with different providers in one process, one service.name each: each emits
// spans and metrics to its own pipeline only, and the edge still connects across them.
func TestSeveralProviders(t *testing.T) {
	s := startServer(t)
	telA := newTelemetry(t, sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName("order"))))
	telB := newTelemetry(t, sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName("inventory"))))
	a := telA.wrap(t, connect(t, s, "a"))
	b := telB.wrap(t, connect(t, s, "b"))
	svc, err := b.AddService(micro.Config{Name: "b", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.AddEndpoint("b", func(ctx context.Context, req micro.Request) { _ = req.Respond(nil) }); err != nil {
		t.Fatal(err)
	}
	flush(t, b.Raw())
	if _, err := a.Request(ctxTimeout(t), "b", nil); err != nil {
		t.Fatal(err)
	}
	client := find(t, telA.waitSpans(t, 1), "request b", trace.SpanKindClient)
	server := find(t, telB.waitSpans(t, 1), "process b", trace.SpanKindServer)
	wantChild(t, client, server)
	if len(telA.spans()) != 1 || len(telB.spans()) != 1 {
		t.Errorf("A %v B %v", names(telA.spans()), names(telB.spans()))
	}
	for sp, want := range map[sdktrace.ReadOnlySpan]string{client: "order", server: "inventory"} {
		if v, _ := sp.Resource().Set().Value(semconv.ServiceNameKey); v.AsString() != want {
			t.Errorf("%s: service.name %q, want %q", sp.Name(), v.AsString(), want)
		}
	}
	// The requester's pipeline has the client metrics only, the server's the process ones.
	rmA, rmB := telA.collect(t), telB.collect(t)
	for _, c := range []struct {
		rm   metricdata.ResourceMetrics
		name string
		want bool
	}{
		{rmA, "messaging.client.operation.duration", true},
		{rmA, "messaging.process.duration", false},
		{rmB, "messaging.process.duration", true},
		{rmB, "messaging.client.operation.duration", false},
	} {
		if _, ok := findMetric(c.rm, c.name); ok != c.want {
			t.Errorf("%s in the wrong pipeline (present %v, want %v)", c.name, ok, c.want)
		}
	}
}

// Without options, Wrap uses the global TracerProvider, MeterProvider and propagator, read
// when Wrap is called (like otelhttp).
func TestDefaultsFromGlobals(t *testing.T) {
	tel := newTelemetry(t)
	prevTP, prevMP, prevProp := otel.GetTracerProvider(), otel.GetMeterProvider(), otel.GetTextMapPropagator()
	t.Cleanup(func() {
		otel.SetTracerProvider(prevTP)
		otel.SetMeterProvider(prevMP)
		otel.SetTextMapPropagator(prevProp)
	})
	otel.SetTracerProvider(tel.tp)
	otel.SetMeterProvider(tel.mp)
	otel.SetTextMapPropagator(tel.prop)

	s := startServer(t)
	srv, err := natsotel.Wrap(connect(t, s, "server"))
	if err != nil {
		t.Fatal(err)
	}
	cli, err := natsotel.Wrap(connect(t, s, "client"))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := srv.AddService(micro.Config{Name: "inventory", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.AddEndpoint("reserve", func(ctx context.Context, req micro.Request) { _ = req.Respond(nil) },
		micro.WithEndpointSubject("inventory.reserve")); err != nil {
		t.Fatal(err)
	}
	flush(t, srv.Raw())
	if _, err := cli.Request(ctxTimeout(t), "inventory.reserve", nil); err != nil {
		t.Fatal(err)
	}
	spans := tel.waitSpans(t, 2)
	// The parent-child link needs the global propagator: the default one propagates nothing.
	wantChild(t, find(t, spans, "request inventory.reserve", trace.SpanKindClient),
		find(t, spans, "process inventory.reserve", trace.SpanKindServer))
	rm := tel.collect(t)
	for _, name := range []string{"messaging.client.operation.duration", "messaging.process.duration"} {
		if _, ok := findMetric(rm, name); !ok {
			t.Errorf("no %s through the global MeterProvider", name)
		}
	}
}
