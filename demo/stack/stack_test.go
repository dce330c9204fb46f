package stack_test

import (
	"context"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/natsotel/reference/demo/servicegraph"
	"github.com/natsotel/reference/demo/stack"
	"github.com/natsotel/reference/loadgen/load"
	"github.com/natsotel/reference/loadgen/probe"
	"github.com/natsotel/reference/services/contracts"
	"github.com/natsotel/reference/services/inventory"
	"github.com/natsotel/reference/services/telemetry"
)

// expectedEdges is the service graph of the shop, derived from the contracts: who calls
// whom, the order events consumed by inventory, and the KeyValue buckets each service
// keeps.
func expectedEdges() []servicegraph.EdgeKey {
	edges := []servicegraph.EdgeKey{
		{Client: stack.LoadgenService, Server: contracts.OrderService, Type: servicegraph.ConnectionRequest},
		{Client: contracts.OrderService, Server: contracts.InventoryService, Type: servicegraph.ConnectionRequest},
		{Client: contracts.OrderService, Server: contracts.BillingService, Type: servicegraph.ConnectionRequest},
		{Client: contracts.OrderService, Server: contracts.InventoryService, Type: servicegraph.ConnectionMessaging},
		{Client: contracts.OrderService, Server: contracts.BucketOrders, Type: servicegraph.ConnectionDatabase},
		{Client: contracts.InventoryService, Server: contracts.BucketStock, Type: servicegraph.ConnectionDatabase},
		{Client: contracts.InventoryService, Server: contracts.BucketReservations, Type: servicegraph.ConnectionDatabase},
		{Client: contracts.BillingService, Server: contracts.BucketPayments, Type: servicegraph.ConnectionDatabase},
	}
	sortKeys(edges)
	return edges
}

func sortKeys(keys []servicegraph.EdgeKey) {
	slices.SortFunc(keys, func(a, b servicegraph.EdgeKey) int {
		return strings.Compare(a.Client+"\x00"+a.Server+"\x00"+string(a.Type), b.Client+"\x00"+b.Server+"\x00"+string(b.Type))
	})
}

// recorder records the spans of every component, with the service.name of each.
type recorder struct {
	rec *tracetest.SpanRecorder
}

func (r recorder) spans() []sdktrace.ReadOnlySpan { return r.rec.Ended() }

func serviceOf(s sdktrace.ReadOnlySpan) string {
	v, _ := s.Resource().Set().Value(semconv.ServiceNameKey)
	return v.AsString()
}

// startStack starts the topology with a live service graph and a span recorder on every
// component's TracerProvider.
func startStack(t *testing.T, cfg stack.Config) (*stack.Stack, *servicegraph.Graph, recorder) {
	t.Helper()
	graph := servicegraph.New(servicegraph.Config{})
	rec := recorder{tracetest.NewSpanRecorder()}
	cfg.Stderr = io.Discard
	if testing.Verbose() {
		cfg.Stderr = os.Stderr
	}
	cfg.Telemetry = func(_ string, tc *telemetry.Config) {
		tc.SpanProcessors = append(tc.SpanProcessors, graph, rec.rec)
	}
	st, err := stack.Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := st.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return st, graph, rec
}

// eventually polls cond until it holds or the deadline passes: for the asynchronous
// JetStream consumer, whose spans end after the order's reply.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The whole topology in-process on a real NATS server: orders of every scenario produce
// exactly the expected service graph, also with the server's hops in the traces (INTERNAL
// spans: no edge, and no edge taken away).
func TestTopologyServiceGraph(t *testing.T) {
	st, graph, rec := startStack(t, stack.Config{InventoryReplicas: 2, Hops: true})

	sum, err := load.Run(t.Context(), st.Loadgen.Conn, st.Loadgen.Log, load.Config{
		Rate: 200, Count: 150, Seed: 11, Progress: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Unexpected != 0 {
		t.Fatalf("unexpected outcomes: %v\n%s", sum.UnexpectedSamples, sum)
	}
	if len(sum.Confirmed) == 0 || len(sum.Failed) == 0 {
		t.Fatalf("want confirmed and failed orders:\n%s", sum)
	}

	want := expectedEdges()
	var got []servicegraph.EdgeKey
	eventually(t, 30*time.Second, "the expected edge set (the messaging edge comes from the async consumer)", func() bool {
		got = graph.Snapshot().Keys()
		sortKeys(got)
		return len(got) >= len(want)
	})
	// A loadgen request is counted once both its spans have ended, and the order service
	// ends its SERVER span after the reply went out: wait for the last ones.
	eventually(t, 30*time.Second, "every loadgen -> order request paired", func() bool {
		e, _ := graph.Snapshot().Edge(stack.LoadgenService, contracts.OrderService, servicegraph.ConnectionRequest)
		return e.Requests >= sum.Completed
	})
	snap := graph.Snapshot()
	got = snap.Keys()
	sortKeys(got)
	if !slices.Equal(got, want) {
		t.Fatalf("edges:\n got %v\nwant %v\n%s", got, want, snap)
	}

	// Every order went through loadgen -> order; errors on that edge are the failed
	// scenarios (409, 402, 400 are error replies: the server span has status Error).
	e, _ := snap.Edge(stack.LoadgenService, contracts.OrderService, servicegraph.ConnectionRequest)
	if e.Requests != sum.Completed {
		t.Errorf("loadgen -> order: %d requests, loadgen completed %d", e.Requests, sum.Completed)
	}
	if ok := sum.Outcomes[load.OutcomeOK]; e.Failed != sum.Completed-ok {
		t.Errorf("loadgen -> order: %d failed, loadgen saw %d non-ok", e.Failed, sum.Completed-ok)
	}
	// The consumer commits or releases every decided order: one messaging request per
	// confirmed or failed order event.
	eventually(t, 30*time.Second, "one order event consumed per decided order", func() bool {
		m, _ := graph.Snapshot().Edge(contracts.OrderService, contracts.InventoryService, servicegraph.ConnectionMessaging)
		return m.Requests >= int64(len(sum.Confirmed))
	})
	hops := 0
	for _, s := range rec.spans() {
		if serviceOf(s) == stack.HopsService {
			hops++
		}
	}
	if hops == 0 {
		t.Error("no hop spans: the graph above was not tested with them")
	}
	t.Logf("service graph (%d hop spans):\n%s", hops, graph.Snapshot())
}

// All spans of one order share its trace, rooted at the load generator's CLIENT span.
func TestOneOrderIsOneTrace(t *testing.T) {
	st, _, rec := startStack(t, stack.Config{Inventory: inventory.Config{SweepInterval: -1}, Hops: true})

	// Start-up work (seeding stock) has its own traces; look only at what follows.
	mark := time.Now()
	sum, err := load.Run(t.Context(), st.Loadgen.Conn, nil, load.Config{
		Count: 1, Mix: load.Mix{load.ScenarioValidOrder: 1}, Progress: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Confirmed) != 1 {
		t.Fatalf("want one confirmed order:\n%s", sum)
	}

	var root sdktrace.ReadOnlySpan
	for _, s := range rec.spans() {
		if serviceOf(s) == stack.LoadgenService && s.SpanKind() == trace.SpanKindClient {
			root = s
		}
	}
	if root == nil || root.Parent().IsValid() {
		t.Fatalf("no root loadgen CLIENT span")
	}
	tid := root.SpanContext().TraceID()

	// The inventory consumer's span ends after the reply, and the server's hop of the
	// order event (its JetStream store) arrives separately: wait for both.
	eventually(t, 30*time.Second, "the order event consumed by inventory, and stored", func() bool {
		consumed, stored := false, false
		for _, s := range rec.spans() {
			consumed = consumed || s.SpanKind() == trace.SpanKindConsumer && serviceOf(s) == contracts.InventoryService
			stored = stored || s.Name() == "store ORDER_EVENTS" && s.SpanContext().TraceID() == tid
		}
		return consumed && stored
	})
	checkHopSpans(t, rec.spans(), tid)

	type kindOf struct {
		service string
		kind    trace.SpanKind
	}
	seen := map[kindOf]int{}
	ids := map[trace.SpanID]bool{}
	for _, s := range rec.spans() {
		if s.StartTime().Before(mark) {
			continue
		}
		if s.SpanKind() == trace.SpanKindInternal {
			// Hop spans (checked by checkHopSpans) carry no baggage: the server does not
			// pass it into its trace events. Other INTERNAL spans are not the shop's.
			if serviceOf(s) == stack.HopsService && s.SpanContext().TraceID() == tid {
				seen[kindOf{stack.HopsService, trace.SpanKindInternal}]++
				ids[s.SpanContext().SpanID()] = true
			}
			continue
		}
		if s.SpanContext().TraceID() != tid {
			t.Errorf("span %q of %s (%v) is in trace %s, not the order's %s",
				s.Name(), serviceOf(s), s.SpanKind(), s.SpanContext().TraceID(), tid)
			continue
		}
		seen[kindOf{serviceOf(s), s.SpanKind()}]++
		ids[s.SpanContext().SpanID()] = true
		// The loadgen's baggage crossed every hop and is on every span of the trace
		// (the event's consumer span included: the baggage travels in the stored message).
		attrs := map[attribute.Key]string{}
		for _, kv := range s.Attributes() {
			attrs[kv.Key] = kv.Value.String()
		}
		if attrs[load.BaggageSynthetic] != "true" || attrs[load.BaggageScenario] != string(load.ScenarioValidOrder) {
			t.Errorf("span %q of %s (%v): synthetic=%q loadgen.scenario=%q, want the loadgen's baggage",
				s.Name(), serviceOf(s), s.SpanKind(), attrs[load.BaggageSynthetic], attrs[load.BaggageScenario])
		}
	}
	for _, want := range []kindOf{
		{stack.LoadgenService, trace.SpanKindClient},
		{contracts.OrderService, trace.SpanKindServer},
		{contracts.OrderService, trace.SpanKindClient},   // reserve, charge, KV
		{contracts.OrderService, trace.SpanKindProducer}, // the order event
		{contracts.InventoryService, trace.SpanKindServer},
		{contracts.InventoryService, trace.SpanKindConsumer},
		{contracts.BillingService, trace.SpanKindServer},
		{stack.HopsService, trace.SpanKindInternal},
	} {
		if seen[want] == 0 {
			t.Errorf("no %v span of %s in the order's trace (seen %v)", want.kind, want.service, seen)
		}
	}
	// Every span but the root has its parent in the trace: nothing is orphaned.
	for _, s := range rec.spans() {
		if s.SpanContext().TraceID() == tid && s.Parent().IsValid() && !ids[s.Parent().SpanID()] {
			// The parent may be an INTERNAL span; look it up among all spans.
			found := false
			for _, p := range rec.spans() {
				if p.SpanContext().SpanID() == s.Parent().SpanID() {
					found = true
					break
				}
			}
			if !found {
				t.Errorf("span %q of %s has a parent that was never recorded", s.Name(), serviceOf(s))
			}
		}
	}
}

// The background load generator and probe run and stop cleanly with the stack.
func TestBackgroundLoadAndProbe(t *testing.T) {
	var once sync.Once
	probeSeen := make(chan struct{})
	st, graph, _ := startStack(t, stack.Config{
		Load: &load.Config{Rate: 50, Count: 40, Progress: -1},
		Probe: &probe.Config{Interval: 200 * time.Millisecond, Window: 50 * time.Millisecond, OnRound: func(r probe.Round) {
			if r.Up >= 4 { // order, inventory, billing and the loadgen control service
				once.Do(func() { close(probeSeen) })
			}
		}},
	})
	select {
	case <-probeSeen:
	case <-time.After(30 * time.Second):
		t.Fatalf("the probe never saw the services: %+v", st.Probe.Instances())
	}
	names := map[string]bool{}
	for _, in := range st.Probe.Instances() {
		names[in.Service] = true
	}
	for _, n := range []string{contracts.OrderService, contracts.InventoryService, contracts.BillingService, load.ControlService} {
		if !names[n] {
			t.Errorf("probe did not see %s: %v", n, names)
		}
	}
	eventually(t, 30*time.Second, "the load generator's 40 requests", func() bool {
		_, ok := st.LoadSummary()
		return ok
	})
	sum, _ := st.LoadSummary()
	if sum.Sent+sum.Dropped != 40 || sum.Unexpected != 0 {
		t.Fatalf("load:\n%s", sum)
	}
	if _, ok := graph.Snapshot().Edge(stack.LoadgenService, contracts.OrderService, servicegraph.ConnectionRequest); !ok {
		t.Fatalf("no loadgen -> order edge:\n%s", graph.Snapshot())
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := st.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(st.StoreDir()); !os.IsNotExist(err) {
		t.Fatalf("store dir %s not removed: %v", st.StoreDir(), err)
	}
}

// checkHopSpans checks the server's hops in trace tid: each "hop" span is a child of a
// CLIENT or PRODUCER span of the trace (the message's sender) and starts within it; the
// requests the order sends are delivered, and its event is stored.
func checkHopSpans(t *testing.T, spans []sdktrace.ReadOnlySpan, tid trace.TraceID) {
	t.Helper()
	byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		if s.SpanContext().TraceID() == tid {
			byID[s.SpanContext().SpanID()] = s
		}
	}
	names := map[string]bool{}
	for _, s := range byID {
		if serviceOf(s) != stack.HopsService {
			continue
		}
		names[s.Name()] = true
		if !strings.HasPrefix(s.Name(), "hop ") {
			continue
		}
		p, ok := byID[s.Parent().SpanID()]
		if !ok || (p.SpanKind() != trace.SpanKindClient && p.SpanKind() != trace.SpanKindProducer) {
			t.Errorf("%s: parent %v is not a CLIENT or PRODUCER span of the trace", s.Name(), p)
			continue
		}
		// A request's CLIENT span waits for the reply, a JetStream publish's PRODUCER span
		// for the store's acknowledgement: the hop is inside either.
		if s.StartTime().Before(p.StartTime()) || s.EndTime().After(p.EndTime()) {
			t.Errorf("%s %v..%v outside its sender %q %v..%v", s.Name(), s.StartTime(), s.EndTime(), p.Name(), p.StartTime(), p.EndTime())
		}
	}
	for _, want := range []string{"hop demo", "deliver order.create", "deliver inventory.reserve", "deliver billing.charge", "store ORDER_EVENTS"} {
		if !names[want] {
			t.Errorf("no %q span in the order's trace (hop spans: %v)", want, names)
		}
	}
}
