package load

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/micro"
	"go.opentelemetry.io/otel/baggage"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/trace"

	"github.com/natsotel/reference/services/contracts"
)

// runAsync starts r.Run and returns a channel with its summary.
func runAsync(t *testing.T, ctx context.Context, r *Runner) <-chan Summary {
	t.Helper()
	done := make(chan Summary, 1)
	go func() {
		s, err := r.Run(ctx)
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		done <- s
	}()
	return done
}

func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// Every scenario gets the answer it expects from a shop that follows the contract: no
// unexpected outcomes, ids of confirmed and failed orders reported, lookups find orders.
func TestOpenLoopCountAgainstShop(t *testing.T) {
	nc := connect(t, startServer(t))
	startFakeShop(t, nc, &fakeShop{})
	conn, _ := tracedConn(t, nc)

	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	const n = 300
	sum, err := Run(t.Context(), conn, nil, Config{Rate: 2000, Count: n, Seed: 1, MeterProvider: mp, Progress: -1})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Scheduled != n || sum.Sent+sum.Dropped != n || sum.Completed != sum.Sent || sum.InFlight != 0 {
		t.Fatalf("accounting: %+v", sum)
	}
	if sum.Unexpected != 0 {
		t.Fatalf("unexpected outcomes: %v", sum.UnexpectedSamples)
	}
	for _, s := range []Scenario{ScenarioValidOrder, ScenarioOutOfStock, ScenarioDeclinedCard, ScenarioMalformed} {
		if len(sum.Scenarios[s]) == 0 {
			t.Errorf("scenario %s never ran: %v", s, sum.Scenarios)
		}
	}
	if sum.Scenarios[ScenarioOutOfStock][contracts.CodeConflict] == 0 || sum.Scenarios[ScenarioDeclinedCard][contracts.CodePaymentDeclined] == 0 {
		t.Errorf("scenario outcomes: %v", sum.Scenarios)
	}
	if len(sum.Confirmed) != int(sum.Scenarios[ScenarioValidOrder][OutcomeOK]) {
		t.Errorf("%d confirmed ids for %d ok valid orders", len(sum.Confirmed), sum.Scenarios[ScenarioValidOrder][OutcomeOK])
	}
	if want := sum.Scenarios[ScenarioOutOfStock][contracts.CodeConflict] + sum.Scenarios[ScenarioDeclinedCard][contracts.CodePaymentDeclined]; int64(len(sum.Failed)) != want {
		t.Errorf("%d failed ids, want %d", len(sum.Failed), want)
	}
	if sum.Latency.Count != sum.Completed || sum.Latency.P50 <= 0 || sum.Latency.Max < sum.Latency.P99 {
		t.Errorf("latency: %+v", sum.Latency)
	}

	// The duration histogram counts every completed request, by scenario and outcome.
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	hist := findMetric(t, rm, MetricRequestDuration).Data.(metricdata.Histogram[float64])
	var total uint64
	for _, dp := range hist.DataPoints {
		total += dp.Count
		sc, _ := dp.Attributes.Value(ScenarioKey)
		oc, _ := dp.Attributes.Value(OutcomeKey)
		if got := sum.Scenarios[Scenario(sc.AsString())][oc.AsString()]; uint64(got) != dp.Count {
			t.Errorf("%s/%s: histogram %d, summary %d", sc.AsString(), oc.AsString(), dp.Count, got)
		}
		if !slices.Equal(dp.Bounds, durationBounds()) {
			t.Errorf("bounds %v", dp.Bounds)
		}
	}
	if total != uint64(sum.Completed) {
		t.Errorf("histogram total %d, completed %d", total, sum.Completed)
	}
}

// The target rate gauge follows SetRate and Burst, and stops when the run ends.
func TestRateGauge(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	r, err := New(nopRequester{}, nil, Config{Rate: 20, Count: 1, Progress: -1,
		MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))})
	if err != nil {
		t.Fatal(err)
	}
	gauge := func() []metricdata.DataPoint[float64] {
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(t.Context(), &rm); err != nil {
			t.Fatal(err)
		}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if m.Name == MetricRateTarget {
					return m.Data.(metricdata.Gauge[float64]).DataPoints
				}
			}
		}
		return nil
	}
	if g := gauge(); len(g) != 1 || g[0].Value != 20 {
		t.Fatalf("gauge %+v, want 20", g)
	}
	_ = r.SetRate(50)
	_ = r.Burst(3, time.Hour)
	if g := gauge(); len(g) != 1 || g[0].Value != 150 {
		t.Fatalf("gauge %+v, want 150", g)
	}
	if _, err := r.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	if g := gauge(); len(g) != 0 {
		t.Fatalf("gauge after the run: %+v", g)
	}
	// Late and dropped exist from the start for every scenario of the mix, at 0 but for
	// the one request sent (late if the scheduler ran more than DefaultLateThreshold behind).
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{MetricRequestsLate, MetricRequestsDropped} {
		points := findMetric(t, rm, name).Data.(metricdata.Sum[int64]).DataPoints
		if len(points) != len(DefaultMix()) {
			t.Errorf("%s: %d series, want one per scenario of the mix (%d)", name, len(points), len(DefaultMix()))
		}
		var total int64
		for _, p := range points {
			total += p.Value
		}
		if total > 1 {
			t.Errorf("%s: %d in all for one request", name, total)
		}
	}
}

func durationBounds() []float64 { return durationBuckets }

func findMetric(t *testing.T, rm metricdata.ResourceMetrics, name string) metricdata.Metrics {
	t.Helper()
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				if sm.Scope.Name != ScopeName {
					t.Errorf("%s in scope %q", name, sm.Scope.Name)
				}
				return m
			}
		}
	}
	t.Fatalf("metric %s not found", name)
	return metricdata.Metrics{}
}

// With the concurrency cap reached, due requests are dropped, not queued.
func TestOpenLoopDropsAtConcurrencyCap(t *testing.T) {
	nc := connect(t, startServer(t))
	shop := startFakeShop(t, nc, &fakeShop{arrived: make(chan struct{}, 100), release: make(chan struct{})})
	conn, _ := tracedConn(t, nc)

	reader := sdkmetric.NewManualReader()
	r, err := New(conn, nil, Config{Rate: 5000, Count: 10, Concurrency: 2, Mix: Mix{ScenarioValidOrder: 1},
		Progress: -1, MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))})
	if err != nil {
		t.Fatal(err)
	}
	allScheduled := make(chan struct{})
	r.scheduled = func(n int64) {
		if n == 10 {
			close(allScheduled)
		}
	}
	done := runAsync(t, t.Context(), r)
	wait(t, allScheduled, "all requests scheduled")
	close(shop.release) // nothing could complete before: exactly two were in flight
	sum := wait(t, done, "run")

	if sum.Sent != 2 || sum.Dropped != 8 || sum.Scheduled != 10 || sum.Completed != 2 || sum.Outcomes[OutcomeOK] != 2 {
		t.Fatalf("want 2 sent, 8 dropped: %+v", sum)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	dropped := findMetric(t, rm, MetricRequestsDropped).Data.(metricdata.Sum[int64])
	if len(dropped.DataPoints) != 1 || dropped.DataPoints[0].Value != 8 {
		t.Fatalf("dropped counter: %+v", dropped.DataPoints)
	}
	if v, _ := dropped.DataPoints[0].Attributes.Value(ScenarioKey); v.AsString() != string(ScenarioValidOrder) {
		t.Fatalf("dropped attrs: %v", dropped.DataPoints[0].Attributes)
	}
}

// Latency runs from the intended send time: a request held by the server, or sent late
// because the scheduler stalled, reports the whole wait.
func TestOpenLoopLatencyFromIntendedTime(t *testing.T) {
	nc := connect(t, startServer(t))
	shop := startFakeShop(t, nc, &fakeShop{})
	conn, _ := tracedConn(t, nc)

	const interval = 10 * time.Millisecond
	const stall = 80 * time.Millisecond
	r, err := New(conn, nil, Config{Rate: float64(time.Second / interval), Count: 5, Mix: Mix{ScenarioValidOrder: 1}, Progress: -1})
	if err != nil {
		t.Fatal(err)
	}
	var resumed time.Time
	r.scheduled = func(n int64) {
		if n == 1 {
			// Stall the scheduler well past the intended times of requests 2..5
			// (10..40 ms): they must be sent at once, counted late, and their latency must
			// include the stall. Sleeping is the scenario here, not synchronisation.
			time.Sleep(stall)
			resumed = time.Now()
		}
	}
	sum := wait(t, runAsync(t, t.Context(), r), "run")
	_ = shop
	if sum.Sent != 5 || sum.Completed != 5 || sum.Dropped != 0 {
		t.Fatalf("accounting: %+v", sum)
	}
	if sum.Late < 4 {
		t.Fatalf("late = %d, want requests 2..5 late", sum.Late)
	}
	// Request 2 was intended at start+10ms and sent after resumed.
	if minLag := resumed.Sub(sum.Start.Add(interval)); sum.Latency.Max < minLag-minLag/500 {
		t.Fatalf("max latency %v, want >= %v (stall included)", sum.Latency.Max, minLag)
	}
}

// A rate change wakes the scheduler at once, even from a very long interval, and a burst
// does too; 0 pauses.
func TestRateChangeAndBurstWakeScheduler(t *testing.T) {
	nc := connect(t, startServer(t))
	shop := startFakeShop(t, nc, &fakeShop{arrived: make(chan struct{}, 100)})
	conn, _ := tracedConn(t, nc)

	// One request every 1000 s: without a wake-up the run would never end.
	r, err := New(conn, nil, Config{Rate: 0.001, Count: 4, Mix: Mix{ScenarioValidOrder: 1}, Progress: -1})
	if err != nil {
		t.Fatal(err)
	}
	done := runAsync(t, t.Context(), r)
	wait(t, shop.arrived, "request 1")

	if err := r.SetRate(0); err != nil {
		t.Fatal(err)
	}
	if st := r.State(); st.Rate != 0 || st.EffectiveRate != 0 {
		t.Fatalf("paused state: %+v", st)
	}
	if err := r.Burst(100, time.Hour); err != nil { // 0 * 100 is still paused
		t.Fatal(err)
	}
	if err := r.SetRate(10); err != nil { // 10 * 100 = 1000/s: 1 ms
		t.Fatal(err)
	}
	if st := r.State(); st.EffectiveRate != 1000 || st.BurstMultiplier != 100 || st.BurstRemainingSeconds <= 3500 {
		t.Fatalf("burst state: %+v", st)
	}
	wait(t, shop.arrived, "request 2")
	sum := wait(t, done, "run")
	if sum.Sent != 4 || sum.Completed != 4 {
		t.Fatalf("summary: %+v", sum)
	}
	if err := r.Burst(0, 0); err != nil {
		t.Fatal(err)
	}
	if st := r.State(); st.EffectiveRate != 10 || st.BurstMultiplier != 0 {
		t.Fatalf("after burst: %+v", st)
	}
	// The burst is on the requests sent during it (their baggage, hence their spans in
	// every service), and only on those.
	shop.mu.Lock()
	defer shop.mu.Unlock()
	var bursts []string
	for _, h := range shop.baggages {
		b, err := baggage.Parse(h)
		if err != nil {
			t.Fatal(err)
		}
		bursts = append(bursts, b.Member(BaggageBurst).Value())
	}
	if strings.Join(bursts, ",") != ",100,100,100" {
		t.Fatalf("loadgen.burst of the 4 requests: %q", bursts)
	}
}

func TestCancelStopsOpenLoop(t *testing.T) {
	nc := connect(t, startServer(t))
	shop := startFakeShop(t, nc, &fakeShop{arrived: make(chan struct{}, 100)})
	conn, _ := tracedConn(t, nc)
	r, err := New(conn, nil, Config{Rate: 0.001, Mix: Mix{ScenarioValidOrder: 1}, Progress: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := runAsync(t, ctx, r)
	wait(t, shop.arrived, "request 1")
	cancel()
	if sum := wait(t, done, "run"); sum.Sent != 1 || sum.Completed != 1 {
		t.Fatalf("summary: %+v", sum)
	}
}

func TestClosedLoopCount(t *testing.T) {
	nc := connect(t, startServer(t))
	startFakeShop(t, nc, &fakeShop{})
	conn, _ := tracedConn(t, nc)
	sum, err := Run(t.Context(), conn, nil, Config{Mode: ModeClosed, Workers: 4, Count: 200, Seed: 5, Progress: -1})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Sent != 200 || sum.Completed != 200 || sum.Scheduled != 200 || sum.Dropped != 0 || sum.Late != 0 {
		t.Fatalf("accounting: %+v", sum)
	}
	if sum.Unexpected != 0 {
		t.Fatalf("unexpected: %v", sum.UnexpectedSamples)
	}
	if sum.TargetRate != 0 || sum.Mode != ModeClosed {
		t.Fatalf("closed summary: %+v", sum)
	}
	r, _ := New(conn, nil, Config{Mode: ModeClosed})
	if err := r.SetRate(5); err == nil {
		t.Fatal("SetRate in closed mode: want error")
	}
}

func TestClosedLoopDuration(t *testing.T) {
	nc := connect(t, startServer(t))
	startFakeShop(t, nc, &fakeShop{})
	conn, _ := tracedConn(t, nc)
	sum, err := Run(t.Context(), conn, nil, Config{Mode: ModeClosed, Workers: 2, Duration: 200 * time.Millisecond, Progress: -1})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Sent == 0 || sum.Completed != sum.Sent || sum.Elapsed < 200*time.Millisecond {
		t.Fatalf("summary: %+v", sum)
	}
}

// Each request is the root CLIENT span of its trace, even when Run's context carries a
// span, and carries the synthetic and scenario baggage.
func TestRootSpansAndBaggage(t *testing.T) {
	nc := connect(t, startServer(t))
	shop := startFakeShop(t, nc, &fakeShop{})
	conn, rec := tracedConn(t, nc)

	parentCtx, parent := conn.Tracer().Start(t.Context(), "caller")
	defer parent.End()
	sum, err := Run(parentCtx, conn, nil, Config{Rate: 1000, Count: 30, Seed: 3, Progress: -1})
	if err != nil {
		t.Fatal(err)
	}
	spans := rec.Ended()
	if len(spans) != int(sum.Sent) {
		t.Fatalf("%d spans for %d requests", len(spans), sum.Sent)
	}
	traces := map[trace.TraceID]bool{}
	for _, s := range spans {
		if s.SpanKind() != trace.SpanKindClient || s.Parent().IsValid() {
			t.Fatalf("span %q kind %v parent %v: want a root CLIENT span", s.Name(), s.SpanKind(), s.Parent())
		}
		traces[s.SpanContext().TraceID()] = true
	}
	if len(traces) != len(spans) {
		t.Fatalf("%d traces for %d spans", len(traces), len(spans))
	}

	shop.mu.Lock()
	defer shop.mu.Unlock()
	seen := map[string]bool{}
	for _, h := range shop.baggages {
		b, err := baggage.Parse(h)
		if err != nil {
			t.Fatalf("baggage %q: %v", h, err)
		}
		if b.Member(BaggageSynthetic).Value() != "true" {
			t.Fatalf("baggage %q lacks synthetic=true", h)
		}
		sc := b.Member(BaggageScenario).Value()
		if _, ok := ParseScenario(sc); !ok {
			t.Fatalf("baggage %q: scenario %q", h, sc)
		}
		seen[sc] = true
	}
	if len(shop.baggages) != int(sum.Sent) || len(seen) < 3 {
		t.Fatalf("%d baggages, scenarios %v", len(shop.baggages), seen)
	}
}

// No responder: every request fails fast and counts as unexpected.
func TestNoRespondersIsUnexpected(t *testing.T) {
	nc := connect(t, startServer(t))
	conn, _ := tracedConn(t, nc)
	sum, err := Run(t.Context(), conn, nil, Config{Rate: 1000, Count: 10, Progress: -1})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Outcomes[OutcomeNoResponders] != 10 || sum.Unexpected != 10 || len(sum.UnexpectedSamples) != 10 {
		t.Fatalf("summary: %+v", sum)
	}
	if !strings.Contains(sum.UnexpectedSamples[0], "no_responders") {
		t.Fatalf("sample: %s", sum.UnexpectedSamples[0])
	}
}

func TestRunTwiceFails(t *testing.T) {
	r, err := New(nopRequester{}, nil, Config{Count: 1, Progress: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Run(t.Context()); err == nil {
		t.Fatal("second Run: want error")
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{Mode: "sideways"}, {Rate: -1}, {Count: -1}, {Duration: -time.Second},
		{Mix: Mix{"bogus": 1}}, {Mix: Mix{ScenarioLookup: -1}},
	} {
		if _, err := New(nopRequester{}, nil, cfg); err == nil {
			t.Errorf("New(%+v): want error", cfg)
		}
	}
	if _, err := New(nil, nil, Config{}); err == nil {
		t.Error("New(nil conn): want error")
	}
}

// progressHandler is a slog.Handler that passes the attributes of every "loadgen
// progress" record to a channel.
type progressHandler struct{ lines chan map[string]string }

func (h progressHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h progressHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h progressHandler) WithGroup(string) slog.Handler            { return h }
func (h progressHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "loadgen progress" {
		return nil
	}
	attrs := map[string]string{}
	r.Attrs(func(a slog.Attr) bool {
		attrs[a.Key] = a.Value.String()
		return true
	})
	select {
	case h.lines <- attrs:
	default:
	}
	return nil
}

// A progress line every Config.Progress while the run lasts, with the figures an operator
// watches.
func TestProgressLines(t *testing.T) {
	nc := connect(t, startServer(t))
	startFakeShop(t, nc, &fakeShop{})
	conn, _ := tracedConn(t, nc)
	h := progressHandler{lines: make(chan map[string]string, 16)}
	r, err := New(conn, slog.New(h), Config{Rate: 200, Mix: Mix{ScenarioValidOrder: 1}, Progress: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := runAsync(t, ctx, r)
	var last map[string]string
	for i := range 3 {
		last = wait(t, h.lines, fmt.Sprintf("progress line %d", i+1))
	}
	cancel()
	wait(t, done, "run")
	for _, key := range []string{"elapsed", "target_rate", "rate", "sent", "in_flight", "late", "dropped", "unexpected", "outcomes", "p50", "p99"} {
		if _, ok := last[key]; !ok {
			t.Errorf("progress line lacks %s: %v", key, last)
		}
	}
	if last["target_rate"] != "200" || last["sent"] == "0" {
		t.Errorf("progress line %v: want target_rate 200 and requests sent", last)
	}
}

// A run with a Duration ends by the clock, whatever the rate does: paused here (rate 0),
// the scheduler waits for a rate change, and that wait used to outlive the duration (the
// end was compared with intended send times only, so a 90 s run went on for 11 minutes).
func TestOpenLoopStopsOnTheClock(t *testing.T) {
	nc := connect(t, startServer(t))
	shop := startFakeShop(t, nc, &fakeShop{arrived: make(chan struct{}, 100)})
	conn, _ := tracedConn(t, nc)
	const d = 300 * time.Millisecond
	r, err := New(conn, nil, Config{Rate: 20, Duration: d, Mix: Mix{ScenarioValidOrder: 1}, Progress: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SetRate(0); err != nil { // paused before the first interval
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := runAsync(t, ctx, r)
	wait(t, shop.arrived, "request 1")
	select {
	case sum := <-done:
		if sum.Elapsed < d || sum.Elapsed > d+5*time.Second {
			t.Errorf("elapsed %v, want about %v", sum.Elapsed, d)
		}
	case <-time.After(d + 5*time.Second):
		t.Fatalf("a %v run still running after %v", d, d+5*time.Second)
	}
}

// Every order.create carries an idempotency key; a create that timed out is sent again
// with the same body, key included, so the shop answers with the same order.
func TestCreateRetriesWithTheSameKey(t *testing.T) {
	nc := connect(t, startServer(t))
	var mu sync.Mutex
	bodies := map[string][]string{} // key -> bodies received
	svc, err := micro.AddService(nc, micro.Config{Name: "order", Version: "0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	err = svc.AddEndpoint("create", micro.HandlerFunc(func(req micro.Request) {
		var in contracts.CreateOrderRequest
		if err := json.Unmarshal(req.Data(), &in); err != nil || in.IdempotencyKey == "" {
			_ = req.Error(contracts.CodeBadRequest, "want an idempotency key", nil)
			return
		}
		mu.Lock()
		bodies[in.IdempotencyKey] = append(bodies[in.IdempotencyKey], string(req.Data()))
		first := len(bodies[in.IdempotencyKey]) == 1
		mu.Unlock()
		if first {
			return // the reply is lost: the loadgen times out
		}
		_ = req.RespondJSON(contracts.Order{ID: "ord-" + in.IdempotencyKey, Status: contracts.OrderConfirmed})
	}), micro.WithEndpointSubject(contracts.SubjectOrderCreate))
	if err != nil {
		t.Fatal(err)
	}
	conn, _ := tracedConn(t, nc)
	sum, err := Run(t.Context(), conn, nil, Config{Mode: ModeClosed, Workers: 2, Count: 4, Timeout: 100 * time.Millisecond,
		Mix: Mix{ScenarioValidOrder: 1}, Progress: -1})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Completed != 4 || sum.Outcomes[OutcomeOK] != 4 || sum.Retried != 4 || len(sum.Confirmed) != 4 {
		t.Fatalf("summary: completed %d, outcomes %v, retried %d, confirmed %v", sum.Completed, sum.Outcomes, sum.Retried, sum.Confirmed)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 4 {
		t.Fatalf("%d keys, want one per order: %v", len(bodies), bodies)
	}
	for key, bs := range bodies {
		if len(bs) != 2 || bs[0] != bs[1] {
			t.Errorf("key %s: bodies %q, want the same body twice", key, bs)
		}
	}
}
