package order

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natsotel/reference/services/contracts"
	"github.com/natsotel/reference/services/internal/testenv"
)

// reconcileConfig reconciles quickly: every 50ms, orders left alone for 1s.
var reconcileConfig = Config{
	RequestTimeout:    300 * time.Millisecond,
	RetryInterval:     50 * time.Millisecond,
	ReconcileInterval: 50 * time.Millisecond,
	AbandonAfter:      time.Second,
	FaultSeed:         3,
}

// restart starts a fresh order service (its own connection, nothing in memory) on the
// same server, as a restarted process would.
func (e *env) restart(t *testing.T, cfg Config) *Service {
	t.Helper()
	n := testenv.NewNode(t, e.srv, contracts.OrderService)
	svc, err := Start(context.Background(), n.Conn, n.Log, cfg)
	if err != nil {
		t.Fatal(err)
	}
	stopper(t, svc.Stop)
	return svc
}

// crashState puts into the buckets what an order process leaves when it dies at a
// given point: a reservation held and a payment captured for order id, and the order
// record rec (written straight into the bucket, as the dead process had).
func (e *env) crashState(t *testing.T, rec record) {
	t.Helper()
	ctx := context.Background()
	if _, err := e.client.Request(ctx, contracts.SubjectInventoryReserve, contracts.ReserveRequest{OrderID: rec.ID, Lines: rec.Lines}, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.Request(ctx, contracts.SubjectBillingCharge, contracts.ChargeRequest{OrderID: rec.ID, AmountCents: rec.AmountCents, Card: contracts.CardOK}, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(e.client.NC)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, contracts.BucketOrders)
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, rec.ID, data); err != nil {
		t.Fatal(err)
	}
}

func crashedOrder(id string, status contracts.OrderStatus) record {
	at := time.Now().Add(-2 * time.Minute).UTC()
	return record{Order: contracts.Order{
		ID: id, CustomerID: "cust-1", Lines: []contracts.Line{{SKU: "sku-5", Qty: 4}},
		AmountCents: 4 * 9900, Status: status, CreatedAt: at, UpdatedAt: at,
	}}
}

// The process died right after storing a failure, before compensating: a fresh order
// service refunds the payment and returns the stock on its own.
func TestRestartFinishesRecordedCompensation(t *testing.T) {
	e := startWith(t, true, true, Config{ReconcileInterval: -1})
	rec := crashedOrder("ord-crashed-failed", contracts.OrderFailed)
	rec.Reason = "503 billing did not answer within 300ms"
	rec.Compensate = &compensation{Refund: true, Release: true}
	e.crashState(t, rec)
	if got := e.available(t, "sku-5"); got != 46 {
		t.Fatalf("sku-5 = %d before the restart, want 46 held", got)
	}

	e.restart(t, reconcileConfig)
	testenv.Eventually(t, 10*time.Second, "payment refunded", func() bool {
		p, ok := e.payment(t, rec.ID)
		return ok && p.Status == contracts.PaymentRefunded
	})
	testenv.Eventually(t, 10*time.Second, "stock returned", func() bool { return e.available(t, "sku-5") == 50 })
	testenv.Eventually(t, 10*time.Second, "compensation recorded done", func() bool { return e.storedRecord(t, rec.ID).Compensate == nil })
	if r := e.storedRecord(t, rec.ID); r.Status != contracts.OrderFailed || r.Reason != rec.Reason {
		t.Errorf("stored = %+v", r.Order)
	}
	if !e.failedEvent(t, rec.ID) {
		t.Error("no failed event")
	}
}

// The process died right after storing the confirmation, before publishing its event:
// the reservation is held, not committed. A fresh order service publishes the event
// the record says is owed, inventory commits, and nothing is refunded or returned.
func TestRestartPublishesOwedEvent(t *testing.T) {
	e := startWith(t, true, true, Config{ReconcileInterval: -1})
	rec := crashedOrder("ord-crashed-confirmed", contracts.OrderConfirmed)
	rec.PaymentID = "pay-ord-crashed-confirmed"
	rec.EventOwed = true
	e.crashState(t, rec)

	e.restart(t, reconcileConfig)
	testenv.Eventually(t, 10*time.Second, "event recorded published", func() bool { return !e.storedRecord(t, rec.ID).EventOwed })
	testenv.Eventually(t, 10*time.Second, "reservation committed", func() bool {
		var r contracts.Reservation
		return testenv.Get(t, e.client.NC, contracts.BucketReservations, rec.ID, &r) && r.State == contracts.ReservationCommitted
	})
	if n := e.events(t, contracts.SubjectOrderConfirmed, rec.ID); n != 1 {
		t.Errorf("%d confirmed events, want 1", n)
	}
	if r := e.storedRecord(t, rec.ID); r.Status != contracts.OrderConfirmed || r.Compensate != nil {
		t.Errorf("stored = %+v %+v", r.Order, r.Compensate)
	}
	if p, ok := e.payment(t, rec.ID); !ok || p.Status != contracts.PaymentCaptured {
		t.Errorf("payment = %+v, want captured", p)
	}
	if got := e.available(t, "sku-5"); got != 46 {
		t.Errorf("sku-5 = %d, want 46 (taken once)", got)
	}
}

// The process died between storing the order pending and deciding it, after reserving
// and charging: a fresh order service fails it, refunds and releases.
func TestRestartFailsAbandonedPending(t *testing.T) {
	e := startWith(t, true, true, Config{ReconcileInterval: -1})
	rec := crashedOrder("ord-crashed-pending", contracts.OrderPending)
	e.crashState(t, rec)

	e.restart(t, reconcileConfig)
	testenv.Eventually(t, 10*time.Second, "order failed", func() bool {
		r := e.storedRecord(t, rec.ID)
		return r.Status == contracts.OrderFailed && r.Compensate == nil
	})
	if r := e.storedRecord(t, rec.ID); !strings.Contains(r.Reason, "abandoned") {
		t.Errorf("reason %q", r.Reason)
	}
	if p, ok := e.payment(t, rec.ID); !ok || p.Status != contracts.PaymentRefunded {
		t.Errorf("payment = %+v, want refunded", p)
	}
	testenv.Eventually(t, 10*time.Second, "stock returned", func() bool { return e.available(t, "sku-5") == 50 })
}

// A real run up to the crash: billing is silent, so the order fails with its refund
// outstanding and the process keeps it in memory only... until it dies. A fresh order
// service finishes the refund from what the failure stored.
func TestCrashWithRefundOutstanding(t *testing.T) {
	e := startWith(t, true, true, Config{RequestTimeout: 200 * time.Millisecond, RetryInterval: time.Hour, ReconcileInterval: -1})
	if _, err := e.client.Request(context.Background(), contracts.ControlSubject(contracts.BillingService), `{"drop_share":1}`, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	o, err := e.create(t, valid(contracts.Line{SKU: "sku-5", Qty: 2}))
	if testenv.Code(err) != contracts.CodeUnavailable || o.Status != contracts.OrderFailed {
		t.Fatalf("create with billing silent: %v, order %+v", err, o)
	}
	// The crash: the process can no longer reach anything; what it held in memory is lost.
	e.node.NC.Close()
	if _, err := e.client.Request(context.Background(), contracts.ControlSubject(contracts.BillingService), `{}`, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if p, ok := e.payment(t, o.ID); ok {
		t.Fatalf("payment %+v before the restart", p)
	}

	cfg := reconcileConfig
	cfg.AbandonAfter = 200 * time.Millisecond
	e.restart(t, cfg)
	testenv.Eventually(t, 10*time.Second, "payment voided", func() bool {
		p, ok := e.payment(t, o.ID)
		return ok && p.Status == contracts.PaymentVoided
	})
	testenv.Eventually(t, 10*time.Second, "compensation recorded done", func() bool { return e.storedRecord(t, o.ID).Compensate == nil })
	if got := e.available(t, "sku-5"); got != 50 {
		t.Errorf("sku-5 = %d, want 50", got)
	}
}

// ReconcileAll only reads what changed since its last pass, and leaves finished and
// young orders alone.
func TestReconcileAllIncremental(t *testing.T) {
	e := startWith(t, true, true, Config{RequestTimeout: 300 * time.Millisecond, ReconcileInterval: -1})
	ctx := context.Background()
	if o, err := e.create(t, valid(contracts.Line{SKU: "sku-1", Qty: 1})); err != nil || o.Status != contracts.OrderConfirmed {
		t.Fatalf("create: %v", err)
	}
	if n, err := e.svc.ReconcileAll(ctx, time.Minute); err != nil || n != 0 {
		t.Fatalf("first pass: %d, %v", n, err)
	}
	// A crashed pending order appears after the first pass: the next one finds it from the
	// bucket's new revisions, fails it once, and then has nothing left.
	rec := crashedOrder("ord-late", contracts.OrderPending)
	e.crashState(t, rec)
	if n, err := e.svc.ReconcileAll(ctx, time.Minute); err != nil || n != 1 {
		t.Fatalf("second pass: %d, %v; want 1 repaired", n, err)
	}
	if n, err := e.svc.ReconcileAll(ctx, time.Minute); err != nil || n != 0 {
		t.Fatalf("third pass: %d, %v; want nothing", n, err)
	}
	if r := e.storedRecord(t, rec.ID); r.Status != contracts.OrderFailed || r.Compensate != nil {
		t.Errorf("stored = %+v %+v", r.Order, r.Compensate)
	}
	if len(e.svc.rec.open) != 0 {
		t.Errorf("reconciler still tracks %v", e.svc.rec.open)
	}
}

// Beyond Config.MaxUnresolved, orders are not retried in memory but left to
// reconciliation, which repairs them from the bucket once billing is back.
func TestUnresolvedCap(t *testing.T) {
	cfg := Config{RequestTimeout: 100 * time.Millisecond, RetryInterval: 50 * time.Millisecond, MaxUnresolved: 2,
		ReconcileInterval: 50 * time.Millisecond, AbandonAfter: time.Minute}
	e := startWith(t, true, true, cfg)
	if _, err := e.client.Request(context.Background(), contracts.ControlSubject(contracts.BillingService), `{"drop_share":1}`, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for range 4 {
		o, err := e.create(t, valid(contracts.Line{SKU: "sku-1", Qty: 1}))
		if testenv.Code(err) != contracts.CodeUnavailable {
			t.Fatalf("create: %v", err)
		}
		ids = append(ids, o.ID)
	}
	queued, overflowed := e.svc.UnresolvedCount()
	if queued != 2 || overflowed != 2 || len(e.svc.Unresolved()) != 2 {
		t.Fatalf("unresolved %d, overflowed %d; want 2 and 2", queued, overflowed)
	}
	if !strings.Contains(e.node.Logs.String(), "leaving this one to reconciliation") {
		t.Error("the overflow is not logged")
	}
	// Billing back: the retries settle two, reconciliation (once the orders are older
	// than AbandonAfter, here by moving the clock) the other two.
	if _, err := e.client.Request(context.Background(), contracts.ControlSubject(contracts.BillingService), `{}`, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "retries done", func() bool { return len(e.svc.Unresolved()) == 0 })
	if n, err := e.svc.ReconcileAll(context.Background(), 0); err != nil || n != 2 {
		t.Fatalf("ReconcileAll = %d, %v; want 2", n, err)
	}
	for _, id := range ids {
		if p, ok := e.payment(t, id); !ok || p.Status != contracts.PaymentVoided {
			t.Errorf("order %s: payment %+v, want voided", id, p)
		}
		if r := e.storedRecord(t, id); r.Compensate != nil {
			t.Errorf("order %s: compensation outstanding %+v", id, r.Compensate)
		}
	}
}
