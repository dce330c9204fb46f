package inventory

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/natsotel/reference/services/contracts"
	"github.com/natsotel/reference/services/internal/fault"
	"github.com/natsotel/reference/services/internal/testenv"
)

type env struct {
	srv    *server.Server
	svc    *Service
	node   *testenv.Node
	client *testenv.Node
}

var testConfig = Config{SweepInterval: -1, NakDelay: 20 * time.Millisecond, MaxDeliver: 4, FaultSeed: 7}

func start(t *testing.T) *env {
	t.Helper()
	srv := testenv.Server(t)
	e := &env{srv: srv, client: testenv.NewNode(t, srv, "client")}
	e.svc, e.node = e.replica(t, testConfig)
	return e
}

// replica starts one more inventory instance on its own connection.
func (e *env) replica(t *testing.T, cfg Config) (*Service, *testenv.Node) {
	t.Helper()
	node := testenv.NewNode(t, e.srv, contracts.InventoryService)
	svc, err := Start(context.Background(), node.Conn, node.Log, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := svc.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return svc, node
}

func (e *env) do(t *testing.T, subject string, body any) (contracts.Reservation, error) {
	t.Helper()
	msg, err := e.client.Request(context.Background(), subject, body, 10*time.Second)
	var r contracts.Reservation
	if err == nil {
		if jerr := json.Unmarshal(msg.Data, &r); jerr != nil {
			t.Fatal(jerr)
		}
	}
	return r, err
}

func (e *env) stockRecord(t *testing.T, sku string) stockRecord {
	t.Helper()
	var r stockRecord
	if !testenv.Get(t, e.client.NC, contracts.BucketStock, sku, &r) {
		t.Fatalf("no stock record for %s", sku)
	}
	return r
}

func (e *env) available(t *testing.T, sku string) int { return e.stockRecord(t, sku).Available }

func (e *env) reservation(t *testing.T, order string) reservation {
	t.Helper()
	var r reservation
	if !testenv.Get(t, e.client.NC, contracts.BucketReservations, order, &r) {
		t.Fatalf("no reservation for %s", order)
	}
	return r
}

func seedOf(sku string) int {
	p, _ := contracts.FindProduct(sku)
	return p.Seed
}

func TestSeedOnce(t *testing.T) {
	e := start(t)
	for _, p := range contracts.Catalog {
		if got := e.available(t, p.SKU); got != p.Seed {
			t.Errorf("%s: %d, want seed %d", p.SKU, got, p.Seed)
		}
	}
	if _, err := e.do(t, contracts.SubjectInventoryReserve, contracts.ReserveRequest{OrderID: "o1", Lines: []contracts.Line{{SKU: "sku-5", Qty: 5}}}); err != nil {
		t.Fatal(err)
	}
	e.replica(t, testConfig) // a new replica must not seed again
	if got := e.available(t, "sku-5"); got != 45 {
		t.Fatalf("sku-5 after a reserve and a second replica: %d, want 45", got)
	}
}

func TestReserveAllOrNothing(t *testing.T) {
	e := start(t)
	lines := []contracts.Line{{SKU: "sku-5", Qty: 3}, {SKU: "sku-1", Qty: 2}}
	r, err := e.do(t, contracts.SubjectInventoryReserve, contracts.ReserveRequest{OrderID: "o1", Lines: lines})
	if err != nil || r.State != contracts.ReservationHeld || len(r.Lines) != 2 {
		t.Fatalf("reserve: %+v, %v", r, err)
	}
	// A retry takes nothing again.
	if r2, err := e.do(t, contracts.SubjectInventoryReserve, contracts.ReserveRequest{OrderID: "o1", Lines: lines}); err != nil || r2.State != contracts.ReservationHeld {
		t.Fatalf("retried reserve: %+v, %v", r2, err)
	}
	if got := e.available(t, "sku-5"); got != 47 {
		t.Fatalf("sku-5 = %d after a reserve and its retry, want 47", got)
	}
	if got := e.stockRecord(t, "sku-1").Held["o1"]; got != 2 {
		t.Fatalf("sku-1 held by o1 = %d, want 2", got)
	}
	// Same order, other lines: conflict.
	if _, err := e.do(t, contracts.SubjectInventoryReserve, contracts.ReserveRequest{OrderID: "o1", Lines: lines[:1]}); testenv.Code(err) != "409" {
		t.Fatalf("other lines: %v, want 409", err)
	}

	// A short line takes nothing, including the lines before it.
	_, err = e.do(t, contracts.SubjectInventoryReserve, contracts.ReserveRequest{OrderID: "o2", Lines: []contracts.Line{{SKU: "sku-1", Qty: 1}, {SKU: "sku-oos", Qty: 1}}})
	if testenv.Code(err) != "409" || !strings.Contains(testenv.Description(err), "out of stock: sku-oos") {
		t.Fatalf("short reserve: %v, want 409 out of stock: sku-oos", err)
	}
	if rec := e.stockRecord(t, "sku-1"); rec.Available != seedOf("sku-1")-2 || rec.Held["o2"] != 0 {
		t.Fatalf("sku-1 after a failed reserve: %+v", rec)
	}
	if st := e.reservation(t, "o2").State; st != contracts.ReservationReleased {
		t.Fatalf("failed reservation state %s, want released", st)
	}
	// Short by quantity.
	_, err = e.do(t, contracts.SubjectInventoryReserve, contracts.ReserveRequest{OrderID: "o3", Lines: []contracts.Line{{SKU: "sku-5", Qty: 48}}})
	if d := testenv.Description(err); testenv.Code(err) != "409" || !strings.Contains(d, "requested 48, available 47") {
		t.Fatalf("short by quantity: %v", err)
	}
}

func TestReleaseAndCommit(t *testing.T) {
	e := start(t)
	reserve := func(order string, qty int) error {
		_, err := e.do(t, contracts.SubjectInventoryReserve, contracts.ReserveRequest{OrderID: order, Lines: []contracts.Line{{SKU: "sku-5", Qty: qty}}})
		return err
	}
	if err := reserve("rel", 4); err != nil {
		t.Fatal(err)
	}
	for range 2 { // idempotent
		r, err := e.do(t, contracts.SubjectInventoryRelease, contracts.OrderRef{OrderID: "rel"})
		if err != nil || r.State != contracts.ReservationReleased {
			t.Fatalf("release: %+v, %v", r, err)
		}
		if got := e.available(t, "sku-5"); got != 50 {
			t.Fatalf("sku-5 after release: %d, want 50", got)
		}
	}
	if err := reserve("rel", 4); testenv.Code(err) != "409" {
		t.Fatalf("reserve after release: %v, want 409", err)
	}
	if _, err := e.do(t, contracts.SubjectInventoryCommit, contracts.OrderRef{OrderID: "rel"}); testenv.Code(err) != "409" {
		t.Fatalf("commit after release: %v, want 409", err)
	}

	if err := reserve("com", 5); err != nil {
		t.Fatal(err)
	}
	for range 2 { // idempotent
		r, err := e.do(t, contracts.SubjectInventoryCommit, contracts.OrderRef{OrderID: "com"})
		if err != nil || r.State != contracts.ReservationCommitted {
			t.Fatalf("commit: %+v, %v", r, err)
		}
	}
	if rec := e.stockRecord(t, "sku-5"); rec.Available != 45 || len(rec.Held) != 0 {
		t.Fatalf("sku-5 after commit: %+v, want 45 available and no holds", rec)
	}
	if _, err := e.do(t, contracts.SubjectInventoryRelease, contracts.OrderRef{OrderID: "com"}); testenv.Code(err) != "409" {
		t.Fatalf("release after commit: %v, want 409", err)
	}
	if _, err := e.do(t, contracts.SubjectInventoryCommit, contracts.OrderRef{OrderID: "nope"}); testenv.Code(err) != "404" {
		t.Fatalf("commit of unknown order: %v, want 404", err)
	}

	// A release that overtakes its reserve (the caller timed out) blocks the late reserve.
	if r, err := e.do(t, contracts.SubjectInventoryRelease, contracts.OrderRef{OrderID: "late"}); err != nil || r.State != contracts.ReservationReleased {
		t.Fatalf("release before reserve: %+v, %v", r, err)
	}
	if err := reserve("late", 1); testenv.Code(err) != "409" {
		t.Fatalf("late reserve: %v, want 409", err)
	}
	if got := e.available(t, "sku-5"); got != 45 {
		t.Fatalf("sku-5 = %d, want 45", got)
	}
}

func TestStock(t *testing.T) {
	e := start(t)
	msg, err := e.client.Request(context.Background(), contracts.SubjectInventoryStock, contracts.StockRequest{SKU: "sku-5"}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var s contracts.Stock
	if err := json.Unmarshal(msg.Data, &s); err != nil || s.Available != 50 || s.SKU != "sku-5" {
		t.Fatalf("stock = %+v, %v", s, err)
	}
	if _, err := e.client.Request(context.Background(), contracts.SubjectInventoryStock, contracts.StockRequest{SKU: "sku-404"}, 5*time.Second); testenv.Code(err) != "404" {
		t.Fatalf("unknown sku: %v, want 404", err)
	}
}

// TestNoOversell races three replicas for the last units of sku-5.
func TestNoOversell(t *testing.T) {
	e := start(t)
	e.replica(t, testConfig)
	e.replica(t, testConfig)
	const orders = 90
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		reserved = map[string]int{}
		codes    = map[string]int{}
	)
	for i := range orders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("race-%d", i)
			qty := 1 + i%3
			lines := []contracts.Line{{SKU: "sku-5", Qty: qty}}
			if i%2 == 0 {
				lines = append(lines, contracts.Line{SKU: "sku-1", Qty: 1})
			}
			_, err := e.do(t, contracts.SubjectInventoryReserve, contracts.ReserveRequest{OrderID: id, Lines: lines})
			mu.Lock()
			defer mu.Unlock()
			codes[testenv.Code(err)]++
			if err == nil {
				reserved[id] = qty
			}
		}()
	}
	wg.Wait()
	sum := 0
	for _, q := range reserved {
		sum += q
	}
	rec := e.stockRecord(t, "sku-5")
	held := 0
	for _, q := range rec.Held {
		held += q
	}
	t.Logf("%d orders for sku-5 across 3 replicas: outcomes %v, %d units reserved, %d left", orders, codes, sum, rec.Available)
	if codes["409"]+codes[""] != orders {
		t.Fatalf("unexpected outcomes %v", codes)
	}
	if rec.Available < 0 || sum != held || rec.Available+held != 50 {
		t.Fatalf("oversold: available %d, held %d, reserved by replies %d, seed 50", rec.Available, held, sum)
	}
	if rec.Available > 2 {
		t.Fatalf("%d units left although every order wanted at most 3 and some were refused", rec.Available)
	}
	// The sku-1 lines of refused orders were returned.
	sku1 := e.stockRecord(t, "sku-1")
	if sku1.Available+len(sku1.Held) != seedOf("sku-1") {
		t.Fatalf("sku-1: %d available + %d held != seed", sku1.Available, len(sku1.Held))
	}
}

func publishEvent(t *testing.T, e *env, ev contracts.OrderEvent) {
	t.Helper()
	js, err := e.client.Conn.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	subject := contracts.SubjectOrderFailed
	if ev.Status == contracts.OrderConfirmed {
		subject = contracts.SubjectOrderConfirmed
	}
	data, _ := json.Marshal(ev)
	if _, err := js.Publish(context.Background(), subject, data, jetstream.WithMsgID(ev.OrderID+":"+string(ev.Status))); err != nil {
		t.Fatal(err)
	}
}

func TestConsumer(t *testing.T) {
	e := start(t)
	for _, o := range []string{"c-ok", "c-fail"} {
		if _, err := e.do(t, contracts.SubjectInventoryReserve, contracts.ReserveRequest{OrderID: o, Lines: []contracts.Line{{SKU: "sku-5", Qty: 2}}}); err != nil {
			t.Fatal(err)
		}
	}
	publishEvent(t, e, contracts.OrderEvent{OrderID: "c-ok", Status: contracts.OrderConfirmed})
	publishEvent(t, e, contracts.OrderEvent{OrderID: "c-fail", Status: contracts.OrderFailed})
	// Poison message: terminated, never blocks the others.
	if err := e.client.NC.Publish(contracts.SubjectOrderConfirmed, []byte("not json")); err != nil {
		t.Fatal(err)
	}
	publishEvent(t, e, contracts.OrderEvent{OrderID: "c-ok", Status: contracts.OrderConfirmed}) // duplicate: deduplicated
	testenv.Eventually(t, 10*time.Second, "events applied", func() bool {
		return e.reservation(t, "c-ok").State == contracts.ReservationCommitted &&
			e.reservation(t, "c-fail").State == contracts.ReservationReleased
	})
	testenv.Eventually(t, 10*time.Second, "holds settled", func() bool {
		rec := e.stockRecord(t, "sku-5")
		return rec.Available == 48 && len(rec.Held) == 0
	})
	// Consumer spans are children of the producer spans (a messaging edge).
	testenv.Eventually(t, 5*time.Second, "three consumer spans", func() bool {
		return len(e.node.SpansNamed("process "+contracts.OrderEventsStream)) == 3
	})
}

// TestConsumerWaitsForTheHold: a confirmed event that finds its reservation still
// "reserving" (a read behind the write that held it, as a cluster's new stream leader
// can serve) is redelivered, not terminated, and commits once the hold is seen.
func TestConsumerWaitsForTheHold(t *testing.T) {
	e := start(t)
	js, err := jetstream.New(e.client.NC)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(context.Background(), contracts.BucketReservations)
	if err != nil {
		t.Fatal(err)
	}
	put := func(state contracts.ReservationState) {
		t.Helper()
		data, _ := json.Marshal(reservation{Reservation: contracts.Reservation{OrderID: "w1", State: state, Lines: []contracts.Line{{SKU: "sku-5", Qty: 1}}}})
		if _, err := kv.Put(context.Background(), "w1", data); err != nil {
			t.Fatal(err)
		}
	}
	put(stateReserving)
	publishEvent(t, e, contracts.OrderEvent{OrderID: "w1", Status: contracts.OrderConfirmed})
	testenv.Eventually(t, 10*time.Second, "the first delivery handled", func() bool {
		return len(e.node.SpansNamed("process "+contracts.OrderEventsStream)) >= 1
	})
	put(contracts.ReservationHeld)
	testenv.Eventually(t, 10*time.Second, "committed on a redelivery", func() bool {
		return e.reservation(t, "w1").State == contracts.ReservationCommitted
	})
}

// TestNakFault fails every delivery but the last one on purpose: the event is
// redelivered, the delivery count shows on the spans, and it is applied exactly once.
func TestNakFault(t *testing.T) {
	e := start(t)
	if _, err := e.client.Request(context.Background(), contracts.ControlSubject(contracts.InventoryService), `{"nak_share":1}`, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := e.do(t, contracts.SubjectInventoryReserve, contracts.ReserveRequest{OrderID: "n1", Lines: []contracts.Line{{SKU: "sku-5", Qty: 1}}}); err != nil {
		t.Fatal(err)
	}
	publishEvent(t, e, contracts.OrderEvent{OrderID: "n1", Status: contracts.OrderConfirmed})
	testenv.Eventually(t, 10*time.Second, "committed after redeliveries", func() bool {
		return e.reservation(t, "n1").State == contracts.ReservationCommitted
	})
	var naks, maxDelivered int
	testenv.Eventually(t, 5*time.Second, "the last delivery's span", func() bool {
		naks, maxDelivered = 0, 0
		for _, s := range e.node.SpansNamed("process " + contracts.OrderEventsStream) {
			if testenv.Attr(s, string(fault.AttrFault)) == string(fault.Nak) {
				naks++
			}
			var d int
			fmt.Sscan(testenv.Attr(s, "messaging.nats.delivered"), &d)
			maxDelivered = max(maxDelivered, d)
		}
		return maxDelivered >= testConfig.MaxDeliver
	})
	t.Logf("nak_share=1, MaxDeliver=%d: %d injected naks, highest delivery count on a span %d", testConfig.MaxDeliver, naks, maxDelivered)
	if naks != testConfig.MaxDeliver-1 || maxDelivered != testConfig.MaxDeliver {
		t.Fatalf("naks %d, max delivered %d; want %d and %d", naks, maxDelivered, testConfig.MaxDeliver-1, testConfig.MaxDeliver)
	}
	if got := e.available(t, "sku-5"); got != 49 {
		t.Fatalf("sku-5 = %d, want 49 (applied once)", got)
	}
	if _, err := e.client.Request(context.Background(), contracts.ControlSubject(contracts.InventoryService), `{}`, 5*time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestDelayFault(t *testing.T) {
	e := start(t)
	reserve := func(order string) time.Duration {
		t.Helper()
		start := time.Now()
		if _, err := e.do(t, contracts.SubjectInventoryReserve, contracts.ReserveRequest{OrderID: order, Lines: []contracts.Line{{SKU: "sku-1", Qty: 1}}}); err != nil {
			t.Fatal(err)
		}
		return time.Since(start)
	}
	if _, err := e.client.Request(context.Background(), contracts.ControlSubject(contracts.InventoryService), `{"delay_share":1,"delay":"150ms","delay_jitter":"50ms"}`, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if d := reserve(fmt.Sprintf("slow-%d", i)); d < 150*time.Millisecond {
			t.Fatalf("delayed reserve took %v", d)
		}
	}
	// A server span ends just after its reply was sent: wait for the third.
	var delayedSpans []sdktrace.ReadOnlySpan
	testenv.Eventually(t, 5*time.Second, "3 server spans with demo.fault=delay", func() bool {
		delayedSpans = nil
		for _, s := range e.node.SpansNamed("process " + contracts.SubjectInventoryReserve) {
			if testenv.Attr(s, string(fault.AttrFault)) == string(fault.Delay) {
				delayedSpans = append(delayedSpans, s)
			}
		}
		return len(delayedSpans) >= 3
	})
	for _, s := range delayedSpans {
		if d := s.EndTime().Sub(s.StartTime()); d < 150*time.Millisecond {
			t.Errorf("delayed server span lasted %v", d)
		}
	}
	if len(delayedSpans) != 3 {
		t.Fatalf("%d server spans with demo.fault=delay, want 3", len(delayedSpans))
	}
	if _, err := e.client.Request(context.Background(), contracts.ControlSubject(contracts.InventoryService), `{}`, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if d := reserve("fast"); d > 150*time.Millisecond {
		t.Fatalf("reserve after switching off took %v", d)
	}
}

func TestSweepRepairsLeaks(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	now := time.Now()
	e.svc.res.now = func() time.Time { return now }
	// A leaked hold of a released order, and a hold of a committed order.
	for _, o := range []string{"leak-rel", "leak-com"} {
		if _, err := e.do(t, contracts.SubjectInventoryReserve, contracts.ReserveRequest{OrderID: o, Lines: []contracts.Line{{SKU: "sku-5", Qty: 2}}}); err != nil {
			t.Fatal(err)
		}
	}
	for o, st := range map[string]contracts.ReservationState{"leak-rel": contracts.ReservationReleased, "leak-com": contracts.ReservationCommitted} {
		if _, err := e.svc.res.transition(ctx, o, st, func(reservation, bool) (bool, error) { return true, nil }); err != nil {
			t.Fatal(err)
		}
	}
	// An attempt that died while reserving.
	if _, err := e.svc.res.create(ctx, reservation{Reservation: contracts.Reservation{OrderID: "dead", Lines: []contracts.Line{{SKU: "sku-5", Qty: 3}}, State: stateReserving}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.svc.stock.take(ctx, "sku-5", "dead", 3); err != nil {
		t.Fatal(err)
	}

	rep, err := e.svc.Sweep(ctx)
	if err != nil || rep != (SweepReport{Returned: 1, Committed: 1}) {
		t.Fatalf("first sweep: %+v, %v (the reserving one is not stale yet)", rep, err)
	}
	now = now.Add(2 * time.Minute)
	rep, err = e.svc.Sweep(ctx)
	if err != nil || rep != (SweepReport{Released: 1}) {
		t.Fatalf("second sweep: %+v, %v", rep, err)
	}
	if rec := e.stockRecord(t, "sku-5"); rec.Available != 48 || len(rec.Held) != 0 {
		t.Fatalf("sku-5 after sweeping: %+v, want 48 (only the committed 2 gone) and no holds", rec)
	}
}

func TestStopWaitsAndStops(t *testing.T) {
	srv := testenv.Server(t)
	node := testenv.NewNode(t, srv, contracts.InventoryService)
	client := testenv.NewNode(t, srv, "client")
	svc, err := Start(context.Background(), node.Conn, node.Log, testConfig)
	if err != nil {
		t.Fatal(err)
	}
	// A reserve delayed by a fault is in flight while Stop is called: Stop cuts the
	// injected delay short, the reserve still completes and is answered.
	svc.Faults().Set(contracts.FaultConfig{DelayShare: 1, Delay: "30s"})
	done := make(chan error, 1)
	go func() {
		_, err := client.Request(context.Background(), contracts.SubjectInventoryReserve, contracts.ReserveRequest{OrderID: "inflight", Lines: []contracts.Line{{SKU: "sku-1", Qty: 1}}}, 10*time.Second)
		done <- err
	}()
	testenv.Eventually(t, 5*time.Second, "reserve in flight", func() bool {
		for _, s := range node.Spans.Started() {
			if s.Name() == "process "+contracts.SubjectInventoryReserve {
				return true
			}
		}
		return false
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := svc.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("in-flight reserve: %v", err)
	}
	if _, err := client.Request(context.Background(), contracts.SubjectInventoryStock, contracts.StockRequest{SKU: "sku-1"}, time.Second); testenv.Code(err) != "no responders" {
		t.Fatalf("after Stop: %v, want no responders", err)
	}
}

// The consumer loops ask the server for a heartbeat every pullHeartbeat, so a pull request
// that got lost (see pullHeartbeat) is sent again within seconds: read off the pull
// requests on the wire.
func TestConsumerPullsWithShortHeartbeat(t *testing.T) {
	srv := testenv.Server(t)
	watcher := testenv.NewNode(t, srv, "watcher")
	pulls, err := watcher.NC.SubscribeSync("$JS.API.CONSUMER.MSG.NEXT." + contracts.OrderEventsStream + "." + contracts.InventoryCommitConsumer)
	if err != nil {
		t.Fatal(err)
	}
	if err := watcher.NC.Flush(); err != nil {
		t.Fatal(err)
	}
	e := &env{srv: srv, client: testenv.NewNode(t, srv, "client")}
	e.svc, e.node = e.replica(t, testConfig)
	msg, err := pulls.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatalf("no pull request seen: %v", err)
	}
	var req struct {
		Heartbeat time.Duration `json:"idle_heartbeat"`
		Expires   time.Duration `json:"expires"`
	}
	if err := json.Unmarshal(msg.Data, &req); err != nil {
		t.Fatalf("pull request %q: %v", msg.Data, err)
	}
	if req.Heartbeat <= 0 || req.Heartbeat > 2*time.Second {
		t.Errorf("pull request %s asks for a heartbeat every %v: a lost pull is noticed after twice that", msg.Data, req.Heartbeat)
	}
}
