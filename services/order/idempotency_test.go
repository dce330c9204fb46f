package order

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/natsotel/reference/natsotel"
	"github.com/natsotel/reference/services/contracts"
	"github.com/natsotel/reference/services/internal/testenv"
)

// createUntilFinal sends req until the order it names is final (confirmed, or failed
// with a 4xx), as a client retrying timed-out or pending creates with the same key does.
func createUntilFinal(ctx context.Context, client *testenv.Node, req contracts.CreateOrderRequest, timeout time.Duration) (contracts.Order, int, error) {
	for attempt := 1; ; attempt++ {
		msg, err := client.Request(ctx, contracts.SubjectOrderCreate, req, timeout)
		var o contracts.Order
		var se *natsotel.ServiceError
		switch {
		case err == nil:
			if jerr := json.Unmarshal(msg.Data, &o); jerr != nil {
				return o, attempt, jerr
			}
			return o, attempt, nil
		case errors.As(err, &se) && se.CodeText != contracts.CodeUnavailable:
			_ = json.Unmarshal(se.Data, &o)
			return o, attempt, err
		case ctx.Err() != nil:
			return o, attempt, fmt.Errorf("gave up: %w", err)
		}
		// Timed out, or 503 (pending): retry with the same key.
	}
}

// TestIdempotencyKeyOneChargePerKey: clients retry creates with their idempotency keys,
// concurrently, against two order replicas, with reservations slowed down so that
// retries overlap the first attempt and time out. Every key ends up with one order, one
// payment: the same order for every answer, and for a replica started after both
// stopped. The same key with other lines is refused.
func TestIdempotencyKeyOneChargePerKey(t *testing.T) {
	e := start(t, true, true)
	ctx := context.Background()
	n2 := testenv.NewNode(t, e.srv, contracts.OrderService)
	svc2, err := Start(ctx, n2.Conn, n2.Log, testConfig)
	if err != nil {
		t.Fatal(err)
	}
	stopper(t, svc2.Stop)
	// Each create takes over 120 ms (the reservation), the clients wait 80 ms per attempt.
	if _, err := e.client.Request(ctx, contracts.ControlSubject(contracts.InventoryService), `{"delay_share":1,"delay":"120ms"}`, 5*time.Second); err != nil {
		t.Fatal(err)
	}

	keys := []string{"key-a", "key-b", "key-c"}
	const clients = 6
	type answer struct {
		key      string
		order    contracts.Order
		attempts int
		err      error
	}
	answers := make(chan answer, len(keys)*clients)
	var wg sync.WaitGroup
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for i, key := range keys {
		req := valid(contracts.Line{SKU: "sku-1", Qty: 1 + i})
		req.IdempotencyKey = key
		for range clients {
			wg.Go(func() {
				o, n, err := createUntilFinal(rctx, e.client, req, 80*time.Millisecond)
				answers <- answer{key, o, n, err}
			})
		}
	}
	wg.Wait()
	close(answers)

	orderOf := map[string]string{}
	retried := 0
	for a := range answers {
		if a.err != nil {
			t.Fatalf("%s: %v", a.key, a.err)
		}
		if a.order.Status != contracts.OrderConfirmed {
			t.Fatalf("%s: order %+v", a.key, a.order)
		}
		if prev, ok := orderOf[a.key]; ok && prev != a.order.ID {
			t.Fatalf("%s: orders %s and %s", a.key, prev, a.order.ID)
		}
		orderOf[a.key] = a.order.ID
		if a.attempts > 1 {
			retried++
		}
	}
	if retried == 0 {
		t.Fatal("no client retried: the test did not exercise retries")
	}
	for _, n := range []*testenv.Node{e.node, n2} {
		if len(n.SpansNamed("process "+contracts.SubjectOrderCreate)) == 0 {
			t.Fatalf("replica %p served no create: the test did not exercise two replicas", n)
		}
	}
	t.Logf("%d of %d clients retried", retried, len(keys)*clients)

	checkOneChargePerKey := func() {
		t.Helper()
		var orders []string
		for _, k := range testenv.Keys(t, e.client.NC, contracts.BucketOrders) {
			if !strings.Contains(k, ".") {
				orders = append(orders, k)
			}
		}
		payments := testenv.Keys(t, e.client.NC, contracts.BucketPayments)
		slices.Sort(orders)
		slices.Sort(payments)
		var want []string
		for _, id := range orderOf {
			want = append(want, id)
		}
		slices.Sort(want)
		if !slices.Equal(orders, want) || !slices.Equal(payments, want) {
			t.Fatalf("orders %v, payments %v; want one of each per key: %v", orders, payments, want)
		}
		for _, id := range want {
			if p, _ := e.payment(t, id); p.Status != contracts.PaymentCaptured {
				t.Fatalf("payment of %s: %+v", id, p)
			}
		}
	}
	checkOneChargePerKey()

	// Both replicas stop; a new one answers the same keys with the same orders.
	for _, stop := range []func(context.Context) error{e.svc.Stop, svc2.Stop} {
		sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
		if err := stop(sctx); err != nil {
			t.Fatal(err)
		}
		scancel()
	}
	n3 := testenv.NewNode(t, e.srv, contracts.OrderService)
	svc3, err := Start(ctx, n3.Conn, n3.Log, testConfig)
	if err != nil {
		t.Fatal(err)
	}
	stopper(t, svc3.Stop)
	for i, key := range keys {
		req := valid(contracts.Line{SKU: "sku-1", Qty: 1 + i})
		req.IdempotencyKey = key
		o, err := e.create(t, req)
		if err != nil || o.ID != orderOf[key] || o.Status != contracts.OrderConfirmed {
			t.Fatalf("%s after a restart: %+v, %v; want order %s", key, o, err, orderOf[key])
		}
	}
	checkOneChargePerKey()

	// The same key for another order is refused, and creates nothing.
	other := valid(contracts.Line{SKU: "sku-2", Qty: 1})
	other.IdempotencyKey = keys[0]
	if _, err := e.create(t, other); testenv.Code(err) != contracts.CodeConflict || !strings.Contains(testenv.Description(err), "idempotency_key") {
		t.Fatalf("key reused for other lines: %v, want 409", err)
	}
	checkOneChargePerKey()
}

// A failed order is replayed with its error: the same code, the order as body.
func TestIdempotencyKeyReplaysFailure(t *testing.T) {
	e := start(t, true, true)
	req := contracts.CreateOrderRequest{CustomerID: "c", Lines: []contracts.Line{{SKU: "sku-5", Qty: 1}}, Card: contracts.CardDeclined, IdempotencyKey: "k1"}
	first, err1 := e.create(t, req)
	again, err2 := e.create(t, req)
	if testenv.Code(err1) != contracts.CodePaymentDeclined || testenv.Code(err2) != contracts.CodePaymentDeclined {
		t.Fatalf("codes %v, %v; want 402 twice", err1, err2)
	}
	if first.ID == "" || again.ID != first.ID || again.Status != contracts.OrderFailed {
		t.Fatalf("orders %+v, %+v", first, again)
	}
	if testenv.Description(err2) != testenv.Description(err1) {
		t.Errorf("descriptions %q, %q", testenv.Description(err1), testenv.Description(err2))
	}
	bad := req
	bad.IdempotencyKey = "has spaces"
	if _, err := e.create(t, bad); testenv.Code(err) != contracts.CodeBadRequest {
		t.Fatalf("bad key: %v, want 400", err)
	}
}
