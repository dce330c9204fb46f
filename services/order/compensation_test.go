package order

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/natsotel/reference/services/contracts"
	"github.com/natsotel/reference/services/internal/testenv"
)

// fakeBilling answers billing.charge and billing.refund with plain micro handlers, to
// play a billing that misbehaves the way a real one can under failures (a capture whose
// reply is lost, a code that is not a number). It records what it was asked.
type fakeBilling struct {
	mu       sync.Mutex
	charges  int
	refunds  int
	captured bool // a charge was applied
	refunded bool // a refund reversed it (or voided the order)
}

// startFakeBilling serves charge with answer, which gets the attempt number (1, 2, ...)
// and either replies or returns without replying (the reply is lost).
func startFakeBilling(t *testing.T, e *env, answer func(f *fakeBilling, attempt int, r micro.Request)) *fakeBilling {
	t.Helper()
	f := &fakeBilling{}
	n := testenv.NewNode(t, e.srv, "billing-fake")
	svc, err := micro.AddService(n.NC, micro.Config{Name: "billingfake", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	if err := svc.AddEndpoint("charge", micro.HandlerFunc(func(r micro.Request) {
		f.mu.Lock()
		f.charges++
		attempt := f.charges
		f.mu.Unlock()
		answer(f, attempt, r)
	}), micro.WithEndpointSubject(contracts.SubjectBillingCharge)); err != nil {
		t.Fatal(err)
	}
	if err := svc.AddEndpoint("refund", micro.HandlerFunc(func(r micro.Request) {
		var ref contracts.OrderRef
		_ = json.Unmarshal(r.Data(), &ref)
		f.mu.Lock()
		f.refunds++
		f.refunded = true
		f.mu.Unlock()
		_ = r.RespondJSON(contracts.Payment{OrderID: ref.OrderID, Status: contracts.PaymentRefunded})
	}), micro.WithEndpointSubject(contracts.SubjectBillingRefund)); err != nil {
		t.Fatal(err)
	}
	if err := n.NC.Flush(); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fakeBilling) state() (charges, refunds int, captured, refunded bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.charges, f.refunds, f.captured, f.refunded
}

// storedRecord reads the order's record as the service stores it.
func (e *env) storedRecord(t *testing.T, id string) record {
	t.Helper()
	var r record
	if !testenv.Get(t, e.client.NC, contracts.BucketOrders, id, &r) {
		t.Fatalf("order %s not stored", id)
	}
	return r
}

// failedEvent reports whether the failed event of order id is in the stream.
func (e *env) failedEvent(t *testing.T, id string) bool {
	t.Helper()
	return e.events(t, contracts.SubjectOrderFailed, id) > 0
}

// events counts the events of order id on subject in the stream.
func (e *env) events(t *testing.T, subject, id string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	js, err := jetstream.New(e.client.NC)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, contracts.OrderEventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		var ev contracts.OrderEvent
		if m.Subject == subject && json.Unmarshal(m.Data, &ev) == nil && ev.OrderID == id {
			n++
		}
	}
	return n
}

// The first charge is captured but its reply is lost; the retry is declined (402). The
// order may be charged, so it must be refunded, whatever the retry said.
func TestChargeRetryDeclinedAfterLostReplyRefunds(t *testing.T) {
	e := start(t, true, false)
	f := startFakeBilling(t, e, func(f *fakeBilling, attempt int, r micro.Request) {
		if attempt == 1 {
			f.mu.Lock()
			f.captured = true // billing stored the capture, then its reply was lost
			f.mu.Unlock()
			return
		}
		_ = r.Error(contracts.CodePaymentDeclined, "card declined", nil)
	})
	o, err := e.create(t, valid(contracts.Line{SKU: "sku-5", Qty: 2}))
	if testenv.Code(err) != contracts.CodePaymentDeclined || o.Status != contracts.OrderFailed {
		t.Fatalf("create: %v, order %+v", err, o)
	}
	charges, refunds, captured, refunded := f.state()
	if charges != 2 || !captured {
		t.Fatalf("charges = %d, captured = %v: the scenario did not happen", charges, captured)
	}
	if refunds == 0 || !refunded {
		t.Fatal("the order failed after a charge with unknown outcome, and its payment was not refunded")
	}
	if got := e.available(t, "sku-5"); got != 50 {
		t.Errorf("sku-5 = %d, want 50 (released)", got)
	}
	if ids := e.svc.Unresolved(); len(ids) != 0 {
		t.Errorf("unresolved = %v", ids)
	}
	if r := e.storedRecord(t, o.ID); r.Status != contracts.OrderFailed || r.Compensate != nil {
		t.Errorf("stored record = %+v, compensate %+v: want failed, compensation done", r.Order, r.Compensate)
	}
}

// A downstream error code that is not a number is not a refusal: the outcome is unknown
// (refund), and the caller gets 503, not the odd code (nor "0").
func TestUnexpectedErrorCode(t *testing.T) {
	e := start(t, true, false)
	f := startFakeBilling(t, e, func(_ *fakeBilling, _ int, r micro.Request) {
		_ = r.Error("oops", "something odd", nil)
	})
	o, err := e.create(t, valid(contracts.Line{SKU: "sku-5", Qty: 1}))
	if testenv.Code(err) != contracts.CodeUnavailable || o.Status != contracts.OrderFailed {
		t.Fatalf("create: %v (code %q), order %+v; want 503", err, testenv.Code(err), o)
	}
	if !strings.Contains(testenv.Description(err), "billing failed with an unexpected error code") {
		t.Errorf("description %q", testenv.Description(err))
	}
	if !strings.HasPrefix(o.Reason, contracts.CodeUnavailable+" ") {
		t.Errorf("reason %q, want a 503 reason", o.Reason)
	}
	if charges, refunds, _, _ := f.state(); charges != 2 || refunds == 0 {
		t.Errorf("charges = %d (want a retry), refunds = %d (want a refund)", charges, refunds)
	}
	if got := e.available(t, "sku-5"); got != 50 {
		t.Errorf("sku-5 = %d, want 50", got)
	}
}

// Billing silent during the refund: the order still returns its stock and publishes its
// failed event right away; only the refund waits for billing.
func TestRefundFailureStillReleasesAndPublishes(t *testing.T) {
	e := start(t, true, true)
	if _, err := e.client.Request(context.Background(), contracts.ControlSubject(contracts.BillingService), `{"drop_share":1}`, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	o, err := e.create(t, valid(contracts.Line{SKU: "sku-5", Qty: 3}))
	if testenv.Code(err) != contracts.CodeUnavailable || o.Status != contracts.OrderFailed {
		t.Fatalf("create with billing silent: %v, order %+v", err, o)
	}
	// Checked as soon as the reply is in: the request released and published.
	if got := e.available(t, "sku-5"); got != 50 {
		t.Errorf("sku-5 = %d right after the reply, want 50: stock held while the refund waits", got)
	}
	if !e.failedEvent(t, o.ID) {
		t.Error("no failed event while the refund waits")
	}
	if ids := e.svc.Unresolved(); len(ids) != 1 || ids[0] != o.ID {
		t.Fatalf("unresolved = %v, want [%s] (refund pending)", ids, o.ID)
	}
	if r := e.storedRecord(t, o.ID); r.Compensate == nil || !r.Compensate.Refund {
		t.Errorf("stored compensation = %+v, want the refund outstanding", r.Compensate)
	}
	if _, err := e.client.Request(context.Background(), contracts.ControlSubject(contracts.BillingService), `{}`, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "background refund", func() bool { return len(e.svc.Unresolved()) == 0 })
	if p, ok := e.payment(t, o.ID); !ok || p.Status != contracts.PaymentVoided {
		t.Errorf("payment = %+v (found %v), want voided", p, ok)
	}
	if r := e.storedRecord(t, o.ID); r.Compensate != nil {
		t.Errorf("compensation still recorded outstanding: %+v", r.Compensate)
	}
}
