package order

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/natsotel/reference/natsotel"
	"github.com/natsotel/reference/services/billing"
	"github.com/natsotel/reference/services/contracts"
	"github.com/natsotel/reference/services/internal/testenv"
	"github.com/natsotel/reference/services/inventory"
)

type env struct {
	srv       *server.Server
	svc       *Service
	node      *testenv.Node
	client    *testenv.Node
	inventory *inventory.Service
	billing   *billing.Service
}

var testConfig = Config{RequestTimeout: 300 * time.Millisecond, RetryInterval: 50 * time.Millisecond, FaultSeed: 3}

func stopper(t testing.TB, stop func(context.Context) error) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = stop(ctx)
	})
}

// start runs order, and inventory and billing unless told otherwise.
func start(t *testing.T, withInventory, withBilling bool) *env {
	t.Helper()
	return startWith(t, withInventory, withBilling, testConfig)
}

// startWith is start with the order service's configuration and natsotel options for its
// connection.
func startWith(t testing.TB, withInventory, withBilling bool, cfg Config, opts ...natsotel.Option) *env {
	t.Helper()
	srv := testenv.Server(t)
	e := &env{srv: srv, node: testenv.NewNode(t, srv, contracts.OrderService, opts...), client: testenv.NewNode(t, srv, "client")}
	ctx := context.Background()
	if withInventory {
		n := testenv.NewNode(t, srv, contracts.InventoryService)
		s, err := inventory.Start(ctx, n.Conn, n.Log, inventory.Config{SweepInterval: -1, NakDelay: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		stopper(t, s.Stop)
		e.inventory = s
	}
	if withBilling {
		n := testenv.NewNode(t, srv, contracts.BillingService)
		s, err := billing.Start(ctx, n.Conn, n.Log, billing.Config{})
		if err != nil {
			t.Fatal(err)
		}
		stopper(t, s.Stop)
		e.billing = s
	}
	svc, err := Start(ctx, e.node.Conn, e.node.Log, cfg)
	if err != nil {
		t.Fatal(err)
	}
	stopper(t, svc.Stop)
	e.svc = svc
	return e
}

// create sends a create request; on a micro error it decodes the order from the body.
func (e *env) create(t *testing.T, req any) (contracts.Order, error) {
	t.Helper()
	msg, err := e.client.Request(context.Background(), contracts.SubjectOrderCreate, req, 10*time.Second)
	var o contracts.Order
	var se *natsotel.ServiceError
	switch {
	case err == nil:
		if jerr := json.Unmarshal(msg.Data, &o); jerr != nil {
			t.Fatal(jerr)
		}
	case errors.As(err, &se) && len(se.Data) > 0:
		if jerr := json.Unmarshal(se.Data, &o); jerr != nil {
			t.Fatalf("error body: %v", jerr)
		}
	}
	return o, err
}

func (e *env) available(t *testing.T, sku string) int {
	t.Helper()
	var r struct{ Available int }
	testenv.Get(t, e.client.NC, contracts.BucketStock, sku, &r)
	return r.Available
}

func (e *env) payment(t *testing.T, order string) (contracts.Payment, bool) {
	t.Helper()
	var p contracts.Payment
	ok := testenv.Get(t, e.client.NC, contracts.BucketPayments, order, &p)
	return p, ok
}

func (e *env) stored(t *testing.T, id string) contracts.Order {
	t.Helper()
	var o contracts.Order
	if !testenv.Get(t, e.client.NC, contracts.BucketOrders, id, &o) {
		t.Fatalf("order %s not stored", id)
	}
	return o
}

func valid(lines ...contracts.Line) contracts.CreateOrderRequest {
	return contracts.CreateOrderRequest{CustomerID: "cust-1", Lines: lines, Card: contracts.CardOK}
}

func TestCreateConfirmed(t *testing.T) {
	e := start(t, true, true)
	o, err := e.create(t, valid(contracts.Line{SKU: "sku-5", Qty: 2}, contracts.Line{SKU: "sku-2", Qty: 1}))
	if err != nil {
		t.Fatal(err)
	}
	if o.Status != contracts.OrderConfirmed || o.AmountCents != 2*9900+1200 || o.PaymentID == "" || !strings.HasPrefix(o.ID, "ord-") {
		t.Fatalf("order = %+v", o)
	}
	if s := e.stored(t, o.ID); s.Status != contracts.OrderConfirmed || s.PaymentID != o.PaymentID {
		t.Fatalf("stored order = %+v", s)
	}
	// The event was published before the reply, and the record says nothing is owed.
	if r := e.storedRecord(t, o.ID); r.EventOwed || r.Compensate != nil {
		t.Fatalf("stored record owes: event %v, compensation %+v", r.EventOwed, r.Compensate)
	}
	if n := e.events(t, contracts.SubjectOrderConfirmed, o.ID); n != 1 {
		t.Fatalf("%d confirmed events, want 1", n)
	}
	if p, ok := e.payment(t, o.ID); !ok || p.Status != contracts.PaymentCaptured || p.AmountCents != o.AmountCents {
		t.Fatalf("payment = %+v", p)
	}
	if got := e.available(t, "sku-5"); got != 48 {
		t.Fatalf("sku-5 = %d, want 48", got)
	}
	// The confirmed event makes inventory commit the reservation.
	testenv.Eventually(t, 10*time.Second, "reservation committed", func() bool {
		var r contracts.Reservation
		return testenv.Get(t, e.client.NC, contracts.BucketReservations, o.ID, &r) && r.State == contracts.ReservationCommitted
	})
	msg, err := e.client.Request(context.Background(), contracts.SubjectOrderGet, contracts.GetOrderRequest{ID: o.ID}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var got contracts.Order
	if err := json.Unmarshal(msg.Data, &got); err != nil || got.ID != o.ID || got.Status != contracts.OrderConfirmed {
		t.Fatalf("get = %+v, %v", got, err)
	}
	if _, err := e.client.Request(context.Background(), contracts.SubjectOrderGet, contracts.GetOrderRequest{ID: "ord-missing"}, 5*time.Second); testenv.Code(err) != "404" {
		t.Fatalf("get of a missing order: %v, want 404", err)
	}
}

func TestCreateFailures(t *testing.T) {
	e := start(t, true, true)
	for _, tc := range []struct {
		name   string
		req    contracts.CreateOrderRequest
		code   string
		reason string
	}{
		{"declined card", contracts.CreateOrderRequest{CustomerID: "c", Lines: []contracts.Line{{SKU: "sku-5", Qty: 1}}, Card: contracts.CardDeclined}, "402", "402 card declined"},
		{"over the limit", valid(contracts.Line{SKU: "sku-4", Qty: 23}), "402", "402 amount over the limit"},
		{"out of stock", valid(contracts.Line{SKU: "sku-1", Qty: 1}, contracts.Line{SKU: "sku-oos", Qty: 1}), "409", "409 out of stock: sku-oos"},
		{"more than in stock", valid(contracts.Line{SKU: "sku-5", Qty: 51}), "409", "409 out of stock: sku-5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := e.create(t, tc.req)
			if testenv.Code(err) != tc.code {
				t.Fatalf("code %q (%v), want %s", testenv.Code(err), err, tc.code)
			}
			if o.Status != contracts.OrderFailed || !strings.HasPrefix(o.Reason, tc.reason) || o.ID == "" {
				t.Fatalf("order in the error body = %+v", o)
			}
			if !strings.Contains(testenv.Description(err), o.ID) {
				t.Errorf("description %q does not name the order", testenv.Description(err))
			}
			if s := e.stored(t, o.ID); s.Status != contracts.OrderFailed {
				t.Fatalf("stored = %+v", s)
			}
			if p, ok := e.payment(t, o.ID); ok && p.Status == contracts.PaymentCaptured {
				t.Fatalf("failed order has a captured payment %+v", p)
			}
		})
	}
	// Every failed order gave its stock back.
	if got := e.available(t, "sku-5"); got != 50 {
		t.Fatalf("sku-5 = %d, want 50", got)
	}
	if got := e.available(t, "sku-1"); got != 1_000_000 {
		t.Fatalf("sku-1 = %d, want the seed", got)
	}
}

func TestInventoryUnavailable(t *testing.T) {
	e := start(t, false, true)
	o, err := e.create(t, valid(contracts.Line{SKU: "sku-1", Qty: 1}))
	if testenv.Code(err) != "503" || !strings.Contains(testenv.Description(err), "inventory unavailable: no responders") {
		t.Fatalf("create without inventory: %v, want 503 no responders", err)
	}
	if o.Status != contracts.OrderFailed {
		t.Fatalf("order = %+v", o)
	}
	if _, ok := e.payment(t, o.ID); ok {
		t.Fatal("an order that could not reserve was charged")
	}
}

// TestChargeOutcomeUnknown: billing does not answer (drop fault). The order retries the
// charge once, fails the order, and keeps trying to refund in the background until
// billing answers: the payment ends voided, never captured, and the stock is back.
func TestChargeOutcomeUnknown(t *testing.T) {
	e := start(t, true, true)
	if _, err := e.client.Request(context.Background(), contracts.ControlSubject(contracts.BillingService), `{"drop_share":1}`, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	o, err := e.create(t, valid(contracts.Line{SKU: "sku-5", Qty: 3}))
	if testenv.Code(err) != "503" || o.Status != contracts.OrderFailed {
		t.Fatalf("create with billing silent: %v, order %+v", err, o)
	}
	if ids := e.svc.Unresolved(); len(ids) != 1 || ids[0] != o.ID {
		t.Fatalf("unresolved = %v, want [%s] (refund pending)", ids, o.ID)
	}
	// Two charge attempts reached billing's server spans and were dropped.
	if _, err := e.client.Request(context.Background(), contracts.ControlSubject(contracts.BillingService), `{}`, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "background refund", func() bool { return len(e.svc.Unresolved()) == 0 })
	if p, ok := e.payment(t, o.ID); !ok || p.Status != contracts.PaymentVoided {
		t.Fatalf("payment = %+v (found %v), want voided", p, ok)
	}
	testenv.Eventually(t, 5*time.Second, "stock returned", func() bool { return e.available(t, "sku-5") == 50 })
}

func TestStopFinishesInFlight(t *testing.T) {
	e := start(t, true, true)
	// Slow reservations keep a create in flight while order stops.
	if _, err := e.client.Request(context.Background(), contracts.ControlSubject(contracts.InventoryService), `{"delay_share":1,"delay":"150ms"}`, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := e.create(t, valid(contracts.Line{SKU: "sku-1", Qty: 1}))
		done <- err
	}()
	testenv.Eventually(t, 5*time.Second, "create in flight", func() bool {
		for _, s := range e.node.Spans.Started() {
			if s.Name() == "process "+contracts.SubjectOrderCreate {
				return true
			}
		}
		return false
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.svc.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("in-flight create: %v", err)
	}
}
