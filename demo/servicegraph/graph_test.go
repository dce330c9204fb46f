package servicegraph_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/natsotel/reference/demo/servicegraph"
)

// clock is a settable clock for Config.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// world holds one TracerProvider per service, all feeding one Graph, as in the demo.
type world struct {
	t     *testing.T
	graph *servicegraph.Graph
	tps   map[string]*sdktrace.TracerProvider
}

func newWorld(t *testing.T, cfg servicegraph.Config) *world {
	t.Helper()
	return &world{t: t, graph: servicegraph.New(cfg), tps: map[string]*sdktrace.TracerProvider{}}
}

func (w *world) tracer(service string) trace.Tracer {
	tp, ok := w.tps[service]
	if !ok {
		tp = sdktrace.NewTracerProvider(
			sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(service))),
			sdktrace.WithSpanProcessor(w.graph),
		)
		w.t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		w.tps[service] = tp
	}
	return tp.Tracer("test")
}

// start starts a span of kind in service, as a child of parent (remote) if valid.
func (w *world) start(service string, kind trace.SpanKind, parent trace.SpanContext, attrs ...attribute.KeyValue) trace.Span {
	ctx := context.Background()
	if parent.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, parent)
	}
	_, span := w.tracer(service).Start(ctx, "op", trace.WithSpanKind(kind), trace.WithAttributes(attrs...))
	return span
}

func mustEdge(t *testing.T, s servicegraph.Snapshot, client, server string, typ servicegraph.ConnectionType) servicegraph.Edge {
	t.Helper()
	e, ok := s.Edge(client, server, typ)
	if !ok {
		t.Fatalf("no edge %s -> %s (%s) in\n%s", client, server, typ, s)
	}
	return e
}

func TestRequestPairEitherOrder(t *testing.T) {
	w := newWorld(t, servicegraph.Config{})

	// Server ends first (the usual order for request/reply).
	c := w.start("loadgen", trace.SpanKindClient, trace.SpanContext{})
	s := w.start("order", trace.SpanKindServer, c.SpanContext())
	s.End()
	c.End()

	// Client ends first (possible when the reply races the server span's End).
	c2 := w.start("loadgen", trace.SpanKindClient, trace.SpanContext{})
	s2 := w.start("order", trace.SpanKindServer, c2.SpanContext())
	c2.End()
	s2.End()

	snap := w.graph.Snapshot()
	if len(snap.Edges) != 1 {
		t.Fatalf("want 1 edge, got\n%s", snap)
	}
	e := mustEdge(t, snap, "loadgen", "order", servicegraph.ConnectionRequest)
	if e.Requests != 2 || e.Failed != 0 || e.WindowRequests != 2 {
		t.Fatalf("counts: %+v", e)
	}
	if e.ServerLatency.Count != 2 || e.ClientLatency.Count != 2 {
		t.Fatalf("latency counts: server %d client %d", e.ServerLatency.Count, e.ClientLatency.Count)
	}
	if snap.Pending != 0 {
		t.Fatalf("pending %d, want 0", snap.Pending)
	}
}

func TestProducerConsumerIsMessaging(t *testing.T) {
	w := newWorld(t, servicegraph.Config{})
	p := w.start("order", trace.SpanKindProducer, trace.SpanContext{})
	p.End()
	cons := w.start("inventory", trace.SpanKindConsumer, p.SpanContext())
	cons.End()

	e := mustEdge(t, w.graph.Snapshot(), "order", "inventory", servicegraph.ConnectionMessaging)
	if e.Requests != 1 {
		t.Fatalf("requests %d", e.Requests)
	}
}

func TestDatabaseClientSpanIsImmediateNode(t *testing.T) {
	w := newWorld(t, servicegraph.Config{})
	sp := w.start("order", trace.SpanKindClient, trace.SpanContext{},
		semconv.DBSystemNameKey.String("nats"), semconv.DBNamespace("orders"))
	sp.End()
	// peer.service wins over the database name, and server.address too (Tempo's order).
	sp = w.start("billing", trace.SpanKindClient, trace.SpanContext{},
		semconv.DBNamespace("payments"), semconv.ServicePeerName("payments-kv"))
	sp.End()
	sp = w.start("billing", trace.SpanKindClient, trace.SpanContext{},
		semconv.DBNamespace("payments"), semconv.ServerAddress("nats.internal"))
	sp.End()

	snap := w.graph.Snapshot()
	e := mustEdge(t, snap, "order", "orders", servicegraph.ConnectionDatabase)
	if e.Requests != 1 || e.ServerLatency.Count != 1 {
		t.Fatalf("database edge: %+v", e)
	}
	mustEdge(t, snap, "billing", "payments-kv", servicegraph.ConnectionDatabase)
	mustEdge(t, snap, "billing", "nats.internal", servicegraph.ConnectionDatabase)
	if snap.Pending != 0 {
		t.Fatalf("database spans must not wait for a pair; pending %d", snap.Pending)
	}
}

func TestErrorOnEitherSideFailsTheEdge(t *testing.T) {
	w := newWorld(t, servicegraph.Config{})
	for i, failServer := range []bool{true, false, false} {
		c := w.start("order", trace.SpanKindClient, trace.SpanContext{})
		s := w.start("billing", trace.SpanKindServer, c.SpanContext())
		if failServer {
			s.SetStatus(codes.Error, "402")
		} else if i == 1 {
			c.SetStatus(codes.Error, "timeout")
		}
		s.End()
		c.End()
	}
	e := mustEdge(t, w.graph.Snapshot(), "order", "billing", servicegraph.ConnectionRequest)
	if e.Requests != 3 || e.Failed != 2 {
		t.Fatalf("requests %d failed %d, want 3 and 2", e.Requests, e.Failed)
	}
	if got, want := e.ErrorShare, 2.0/3.0; got < want-1e-9 || got > want+1e-9 {
		t.Fatalf("error share %v, want %v", got, want)
	}
}

func TestUnpairedSidesExpire(t *testing.T) {
	clk := newClock()
	w := newWorld(t, servicegraph.Config{TTL: 10 * time.Second, Now: clk.Now})

	// A client whose server never answered (a timeout): no edge, expires.
	c := w.start("order", trace.SpanKindClient, trace.SpanContext{})
	c.SetStatus(codes.Error, "timeout")
	c.End()
	// A client with a peer attribute: expires into a virtual node.
	p := w.start("order", trace.SpanKindClient, trace.SpanContext{}, semconv.ServicePeerName("legacy"))
	p.End()

	snap := w.graph.Snapshot()
	if snap.Pending != 2 || len(snap.Edges) != 0 {
		t.Fatalf("before TTL: pending %d edges %d", snap.Pending, len(snap.Edges))
	}
	clk.Advance(9 * time.Second)
	if snap = w.graph.Snapshot(); snap.Pending != 2 {
		t.Fatalf("expired early: pending %d", snap.Pending)
	}
	clk.Advance(time.Second)
	snap = w.graph.Snapshot()
	if snap.Pending != 0 || snap.Expired != 2 {
		t.Fatalf("after TTL: pending %d expired %d", snap.Pending, snap.Expired)
	}
	e := mustEdge(t, snap, "order", "legacy", servicegraph.ConnectionVirtual)
	if e.Requests != 1 || e.ServerLatency.Count != 0 || e.ClientLatency.Count != 1 {
		t.Fatalf("virtual edge: %+v", e)
	}
	if len(snap.Edges) != 1 {
		t.Fatalf("want only the virtual edge:\n%s", snap)
	}

	// A late server span whose client expired stays unpaired.
	late := w.start("billing", trace.SpanKindServer, c.SpanContext())
	late.End()
	if snap = w.graph.Snapshot(); snap.Pending != 1 || len(snap.Edges) != 1 {
		t.Fatalf("late server: pending %d\n%s", snap.Pending, snap)
	}
}

func TestRootServerSpanComesFromUser(t *testing.T) {
	w := newWorld(t, servicegraph.Config{})
	s := w.start("order", trace.SpanKindServer, trace.SpanContext{})
	s.End()
	mustEdge(t, w.graph.Snapshot(), servicegraph.UserNode, "order", servicegraph.ConnectionVirtual)
}

func TestFanOutMakesOneEdge(t *testing.T) {
	clk := newClock()
	w := newWorld(t, servicegraph.Config{TTL: time.Second, Now: clk.Now})
	p := w.start("order", trace.SpanKindProducer, trace.SpanContext{})
	p.End()
	// The same message consumed twice (a redelivery): one edge, the second side expires.
	for range 2 {
		c := w.start("inventory", trace.SpanKindConsumer, p.SpanContext())
		c.End()
	}
	clk.Advance(time.Second)
	snap := w.graph.Snapshot()
	e := mustEdge(t, snap, "order", "inventory", servicegraph.ConnectionMessaging)
	if e.Requests != 1 || snap.Expired != 1 {
		t.Fatalf("requests %d expired %d, want 1 and 1", e.Requests, snap.Expired)
	}
}

func TestIgnoredSpans(t *testing.T) {
	w := newWorld(t, servicegraph.Config{})
	in := w.start("order", trace.SpanKindInternal, trace.SpanContext{})
	in.End()
	// A server span of another trace with the same parent span id does not pair.
	c := w.start("loadgen", trace.SpanKindClient, trace.SpanContext{})
	other := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: c.SpanContext().SpanID(), TraceFlags: trace.FlagsSampled, Remote: true,
	})
	s := w.start("order", trace.SpanKindServer, other)
	s.End()
	c.End()
	snap := w.graph.Snapshot()
	if len(snap.Edges) != 0 || snap.Pending != 2 {
		t.Fatalf("edges %d pending %d\n%s", len(snap.Edges), snap.Pending, snap)
	}
}

func TestMaxPendingDrops(t *testing.T) {
	w := newWorld(t, servicegraph.Config{MaxPending: 2})
	for range 3 {
		c := w.start("order", trace.SpanKindClient, trace.SpanContext{})
		c.End()
	}
	snap := w.graph.Snapshot()
	if snap.Pending != 2 || snap.Dropped != 1 {
		t.Fatalf("pending %d dropped %d", snap.Pending, snap.Dropped)
	}
}

func TestRateAndWindow(t *testing.T) {
	clk := newClock()
	w := newWorld(t, servicegraph.Config{Window: 10 * time.Second, Now: clk.Now})
	pair := func(fail bool) {
		c := w.start("a", trace.SpanKindClient, trace.SpanContext{})
		s := w.start("b", trace.SpanKindServer, c.SpanContext())
		if fail {
			s.SetStatus(codes.Error, "boom")
		}
		s.End()
		c.End()
	}
	// 4 requests a second for 20 seconds, the first 10 seconds all failing.
	for sec := range 20 {
		for range 4 {
			pair(sec < 10)
		}
		clk.Advance(time.Second)
	}
	e := mustEdge(t, w.graph.Snapshot(), "a", "b", servicegraph.ConnectionRequest)
	if e.Requests != 80 || e.Failed != 40 {
		t.Fatalf("totals %d/%d", e.Requests, e.Failed)
	}
	// The window is the 10 seconds up to now (second 20): seconds 11..19 hold 36 requests,
	// none failed.
	if e.WindowRequests != 36 {
		t.Fatalf("window requests %d", e.WindowRequests)
	}
	if e.WindowFailed != 0 || e.ErrorShare != 0 {
		t.Fatalf("window failed %d share %v", e.WindowFailed, e.ErrorShare)
	}
	if e.Rate < 3.5 || e.Rate > 4.0 {
		t.Fatalf("rate %v, want about 4/s", e.Rate)
	}
}

func TestReset(t *testing.T) {
	w := newWorld(t, servicegraph.Config{})
	c := w.start("order", trace.SpanKindClient, trace.SpanContext{})
	c.End()
	w.graph.Reset()
	if snap := w.graph.Snapshot(); snap.Pending != 0 || len(snap.Edges) != 0 {
		t.Fatalf("after reset:\n%s", snap)
	}
}

func TestRender(t *testing.T) {
	w := newWorld(t, servicegraph.Config{})
	c := w.start("loadgen", trace.SpanKindClient, trace.SpanContext{})
	s := w.start("order", trace.SpanKindServer, c.SpanContext())
	s.End()
	c.End()
	db := w.start("order", trace.SpanKindClient, trace.SpanContext{}, semconv.DBNamespace("orders"))
	db.End()

	out := w.graph.Snapshot().String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 {
		t.Fatalf("want header, 2 edges, footer:\n%s", out)
	}
	for i, want := range [][]string{
		{"CLIENT", "SERVER", "TYPE", "RATE/S", "ERRORS", "P50", "P99"},
		{"loadgen", "order", "request", "1", "0.0%"},
		{"order", "orders", "database", "1", "0.0%"},
		{"(2 edges; pending 0, expired 0, dropped 0)"},
	} {
		for _, f := range want {
			if !strings.Contains(lines[i], f) {
				t.Errorf("line %d %q lacks %q", i, lines[i], f)
			}
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	w := newWorld(t, servicegraph.Config{})
	client, server := w.tracer("a"), w.tracer("b")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				ctx, c := client.Start(context.Background(), "c", trace.WithSpanKind(trace.SpanKindClient))
				_, s := server.Start(ctx, "s", trace.WithSpanKind(trace.SpanKindServer))
				s.End()
				c.End()
				_ = w.graph.Snapshot()
			}
		})
	}
	wg.Wait()
	e := mustEdge(t, w.graph.Snapshot(), "a", "b", servicegraph.ConnectionRequest)
	if e.Requests != 1600 {
		t.Fatalf("requests %d, want 1600", e.Requests)
	}
}

// An ack, nak or term (a settle span: CLIENT, messaging.operation.type=settle) has no
// other side: it is no edge and never waits to be paired.
func TestSettleSpansAreNoEdges(t *testing.T) {
	w := newWorld(t, servicegraph.Config{TTL: 10 * time.Second})
	c := w.start("inventory", trace.SpanKindClient, trace.SpanContext{},
		semconv.MessagingSystemKey.String("nats"), semconv.MessagingOperationTypeSettle)
	c.End()
	if snap := w.graph.Snapshot(); snap.Pending != 0 || len(snap.Edges) != 0 {
		t.Fatalf("pending %d, edges %v", snap.Pending, snap.Edges)
	}
}
