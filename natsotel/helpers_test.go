package natsotel_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/natsotel/reference/natsotel"
)

// The stream sequence (send spans) and the delivery attributes of JetStream process spans
// (see the package documentation).
const (
	sequenceKey    = attribute.Key("messaging.nats.sequence")
	deliveredKey   = attribute.Key("messaging.nats.delivered")
	redeliveredKey = attribute.Key("messaging.nats.redelivered")
)

// delivery returns the delivery count a JetStream process span records: 1 without
// messaging.nats.delivered (a first delivery has none), else its value, which is then above 1.
func delivery(t testing.TB, sp sdktrace.ReadOnlySpan) int64 {
	t.Helper()
	v, ok := attr(sp, deliveredKey)
	if !ok {
		return 1
	}
	if v.AsInt64() < 2 {
		t.Errorf("%q: %s=%d; a first delivery has none", sp.Name(), deliveredKey, v.AsInt64())
	}
	return v.AsInt64()
}

// startServer runs an in-process nats-server with JetStream on a random loopback port.
func startServer(t testing.TB, mod ...func(*server.Options)) *server.Server {
	t.Helper()
	opts := &server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true}
	for _, m := range mod {
		m(opts)
	}
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("nats-server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

func connect(t testing.TB, s *server.Server, name string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), nats.Name(name))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// telemetry is a real SDK pipeline that records spans and metrics in memory.
type telemetry struct {
	rec    *tracetest.SpanRecorder
	tp     *sdktrace.TracerProvider
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
	prop   propagation.TextMapPropagator
}

func newTelemetry(t testing.TB, opts ...sdktrace.TracerProviderOption) *telemetry {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(append([]sdktrace.TracerProviderOption{sdktrace.WithSpanProcessor(rec)}, opts...)...)
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	return &telemetry{rec: rec, tp: tp, reader: reader, mp: mp,
		prop: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})}
}

func (tel *telemetry) options(extra ...natsotel.Option) []natsotel.Option {
	return append([]natsotel.Option{
		natsotel.WithTracerProvider(tel.tp),
		natsotel.WithMeterProvider(tel.mp),
		natsotel.WithPropagators(tel.prop),
	}, extra...)
}

func (tel *telemetry) wrap(t testing.TB, nc *nats.Conn, extra ...natsotel.Option) *natsotel.Conn {
	t.Helper()
	c, err := natsotel.Wrap(nc, tel.options(extra...)...)
	if err != nil {
		t.Fatalf("Wrap: %v", err)
	}
	return c
}

// spans returns the ended spans.
func (tel *telemetry) spans() []sdktrace.ReadOnlySpan { return tel.rec.Ended() }

// waitSpans waits until n spans have ended (server spans end after the reply is sent, so a
// requester can return before the server span ends).
func (tel *telemetry) waitSpans(t testing.TB, n int) []sdktrace.ReadOnlySpan {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := tel.rec.Ended()
		if len(s) >= n {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("want %d ended spans, have %d: %v", n, len(s), names(s))
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func names(spans []sdktrace.ReadOnlySpan) []string {
	out := make([]string, len(spans))
	for i, s := range spans {
		out[i] = s.Name() + "/" + s.SpanKind().String()
	}
	return out
}

// find returns the one ended span with name and kind.
func find(t testing.TB, spans []sdktrace.ReadOnlySpan, name string, kind trace.SpanKind) sdktrace.ReadOnlySpan {
	t.Helper()
	var found sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Name() == name && s.SpanKind() == kind {
			if found != nil {
				t.Fatalf("two spans %q/%v", name, kind)
			}
			found = s
		}
	}
	if found == nil {
		t.Fatalf("no span %q/%v in %v", name, kind, names(spans))
	}
	return found
}

func attr(s sdktrace.ReadOnlySpan, key attribute.Key) (attribute.Value, bool) {
	for _, kv := range s.Attributes() {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

func wantAttr(t testing.TB, s sdktrace.ReadOnlySpan, key attribute.Key, want any) {
	t.Helper()
	v, ok := attr(s, key)
	if !ok {
		t.Errorf("span %q: no attribute %s (have %v)", s.Name(), key, s.Attributes())
		return
	}
	if got := v.AsInterface(); got != want {
		t.Errorf("span %q: %s = %v (%T), want %v (%T)", s.Name(), key, got, got, want, want)
	}
}

func noAttr(t testing.TB, s sdktrace.ReadOnlySpan, key attribute.Key) {
	t.Helper()
	if v, ok := attr(s, key); ok {
		t.Errorf("span %q: unexpected %s = %v", s.Name(), key, v.String())
	}
}

func wantChild(t testing.TB, parent, child sdktrace.ReadOnlySpan) {
	t.Helper()
	if child.Parent().SpanID() != parent.SpanContext().SpanID() || child.SpanContext().TraceID() != parent.SpanContext().TraceID() {
		t.Errorf("%q (parent %s/%s) is not a child of %q (%s/%s)", child.Name(), child.Parent().TraceID(), child.Parent().SpanID(),
			parent.Name(), parent.SpanContext().TraceID(), parent.SpanContext().SpanID())
	}
}

// collect reads the metrics.
func (tel *telemetry) collect(t testing.TB) metricdata.ResourceMetrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := tel.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	return rm
}

func findMetric(rm metricdata.ResourceMetrics, name string) (metricdata.Metrics, bool) {
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				return m, true
			}
		}
	}
	return metricdata.Metrics{}, false
}

func ctxTimeout(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// flush makes sure the server has seen nc's subscriptions, so requests from other
// connections find them.
func flush(t testing.TB, nc *nats.Conn) {
	t.Helper()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// jetStream connects to s as name, wraps the connection with tel's providers (and extra)
// and returns its JetStream.
func (tel *telemetry) jetStream(t testing.TB, s *server.Server, name string, extra ...natsotel.Option) *natsotel.JetStream {
	t.Helper()
	js, err := tel.wrap(t, connect(t, s, name), extra...).JetStream()
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// spanIDs returns the ids of the spans of kind.
func spanIDs(spans []sdktrace.ReadOnlySpan, kind trace.SpanKind) map[trace.SpanID]bool {
	ids := map[trace.SpanID]bool{}
	for _, sp := range spans {
		if sp.SpanKind() == kind {
			ids[sp.SpanContext().SpanID()] = true
		}
	}
	return ids
}
