package systemtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/micro"

	"github.com/natsotel/reference/natsotel"
	"github.com/natsotel/reference/services/billing"
	"github.com/natsotel/reference/services/contracts"
	"github.com/natsotel/reference/services/internal/testenv"
	"github.com/natsotel/reference/services/inventory"
	"github.com/natsotel/reference/services/order"
)

// system is the whole shop on one in-process JetStream server, each instance with its
// own connection and telemetry.
type system struct {
	srv    *server.Server
	nodes  []*testenv.Node
	orders []*order.Service
	client *testenv.Node
	n      sizes
	invCfg inventory.Config
	ordCfg order.Config
}

type sizes struct{ inventory, billing, order int }

func startSystem(t *testing.T, n sizes, ordCfg order.Config) *system {
	t.Helper()
	s := &system{srv: testenv.Server(t), n: n, ordCfg: ordCfg, invCfg: inventory.Config{SweepInterval: -1, NakDelay: 50 * time.Millisecond}}
	ctx := context.Background()
	var stops []func(context.Context) error
	for i := range n.inventory {
		node := testenv.NewNode(t, s.srv, contracts.InventoryService)
		cfg := s.invCfg
		cfg.FaultSeed = uint64(100 + i)
		svc, err := inventory.Start(ctx, node.Conn, node.Log, cfg)
		if err != nil {
			t.Fatal(err)
		}
		s.nodes = append(s.nodes, node)
		stops = append(stops, svc.Stop)
	}
	for i := range n.billing {
		node := testenv.NewNode(t, s.srv, contracts.BillingService)
		svc, err := billing.Start(ctx, node.Conn, node.Log, billing.Config{FaultSeed: uint64(200 + i)})
		if err != nil {
			t.Fatal(err)
		}
		s.nodes = append(s.nodes, node)
		stops = append(stops, svc.Stop)
	}
	for i := range n.order {
		node := testenv.NewNode(t, s.srv, contracts.OrderService)
		cfg := ordCfg
		cfg.FaultSeed = uint64(300 + i)
		svc, err := order.Start(ctx, node.Conn, node.Log, cfg)
		if err != nil {
			t.Fatal(err)
		}
		s.nodes = append(s.nodes, node)
		s.orders = append(s.orders, svc)
		stops = append(stops, svc.Stop)
	}
	s.client = testenv.NewNode(t, s.srv, "loadgen")
	s.nodes = append(s.nodes, s.client)
	t.Cleanup(func() {
		// Orders first: their compensations need inventory and billing.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		for i := len(stops) - 1; i >= 0; i-- {
			if err := stops[i](ctx); err != nil {
				t.Errorf("stop: %v", err)
			}
		}
	})
	return s
}

// result is what the client saw for one create.
type result struct {
	code  string
	order contracts.Order
}

func (s *system) create(ctx context.Context, req contracts.CreateOrderRequest) (result, error) {
	msg, err := s.client.Request(ctx, contracts.SubjectOrderCreate, req, 60*time.Second)
	var r result
	var se *natsotel.ServiceError
	switch {
	case err == nil:
		return r, json.Unmarshal(msg.Data, &r.order)
	case errors.As(err, &se):
		r.code = testenv.Code(err)
		if len(se.Data) > 0 {
			return r, json.Unmarshal(se.Data, &r.order)
		}
		return r, nil
	default:
		return r, err
	}
}

// control sets service's faults to cfg and returns once every replica has them in force.
func (s *system) control(t *testing.T, service, cfg string) {
	t.Helper()
	var want contracts.FaultConfig
	if err := json.Unmarshal([]byte(cfg), &want); err != nil {
		t.Fatal(err)
	}
	for i, got := range s.faults(t, service, []byte(cfg)) {
		if got != want {
			t.Fatalf("control %s %s: replica %d has %+v in force", service, cfg, i, got)
		}
	}
}

// faults sends body to service's control endpoint, which every replica answers, and
// returns each replica's answer: the faults it has in force (an empty body only reads them).
func (s *system) faults(t *testing.T, service string, body []byte) []contracts.FaultConfig {
	t.Helper()
	replicas := map[string]int{contracts.InventoryService: s.n.inventory, contracts.BillingService: s.n.billing, contracts.OrderService: s.n.order}[service]
	if replicas == 0 {
		t.Fatalf("control: no replica of %q runs", service)
	}
	inbox := s.client.NC.NewRespInbox()
	sub, err := s.client.NC.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := s.client.NC.PublishRequest(contracts.ControlSubject(service), inbox, body); err != nil {
		t.Fatal(err)
	}
	in := make([]contracts.FaultConfig, replicas)
	for i := range in {
		m, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("%s control: %d of %d replicas answered: %v", service, i, replicas, err)
		}
		if code := m.Header.Get(micro.ErrorCodeHeader); code != "" {
			t.Fatalf("%s control %s: %s %s", service, body, code, m.Header.Get(micro.ErrorHeader))
		}
		if err := json.Unmarshal(m.Data, &in[i]); err != nil {
			t.Fatalf("%s control reply %q: %v", service, m.Data, err)
		}
	}
	return in
}

// mix returns the i-th request of a deterministic mix: valid multi-line orders, contention
// on sku-5 (seed 50), declined cards, charges over the limit, and out-of-stock lines.
func mix(i int, rnd *rand.Rand) contracts.CreateOrderRequest {
	cust := fmt.Sprintf("cust-%d", i%17)
	switch k := i % 20; {
	case k < 8: // valid, several lines
		n := 1 + rnd.IntN(3)
		perm := rnd.Perm(4)
		lines := make([]contracts.Line, n)
		for j := range n {
			lines[j] = contracts.Line{SKU: fmt.Sprintf("sku-%d", perm[j]+1), Qty: 1 + rnd.IntN(3)}
		}
		return contracts.CreateOrderRequest{CustomerID: cust, Lines: lines, Card: contracts.CardOK}
	case k < 13: // contention on the last units of sku-5
		lines := []contracts.Line{{SKU: "sku-5", Qty: 1 + rnd.IntN(3)}}
		if rnd.IntN(2) == 0 {
			lines = append(lines, contracts.Line{SKU: "sku-2", Qty: 1})
		}
		return contracts.CreateOrderRequest{CustomerID: cust, Lines: lines, Card: contracts.CardOK}
	case k < 16: // declined after reserving: the reservation must be released
		return contracts.CreateOrderRequest{CustomerID: cust, Lines: []contracts.Line{{SKU: "sku-5", Qty: 1}, {SKU: "sku-3", Qty: 2}}, Card: contracts.CardDeclined}
	case k < 18: // over the charge limit (23 x 45.00)
		return contracts.CreateOrderRequest{CustomerID: cust, Lines: []contracts.Line{{SKU: "sku-4", Qty: 23}}, Card: contracts.CardOK}
	default: // out of stock after taking sku-1
		return contracts.CreateOrderRequest{CustomerID: cust, Lines: []contracts.Line{{SKU: "sku-1", Qty: 1}, {SKU: "sku-oos", Qty: 1}}, Card: contracts.CardOK}
	}
}

// drive sends n orders with at most conc in flight and returns the results by order id.
func (s *system) drive(t *testing.T, n, conc int) (map[string]result, map[string]int) {
	t.Helper()
	rnd := rand.New(rand.NewPCG(1, 2))
	reqs := make([]contracts.CreateOrderRequest, n)
	for i := range reqs {
		reqs[i] = mix(i, rnd)
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		results = map[string]result{}
		codes   = map[string]int{}
		sem     = make(chan struct{}, conc)
	)
	for _, req := range reqs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r, err := s.create(context.Background(), req)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				codes[testenv.Code(err)]++
				return
			}
			codes[r.code]++
			if r.order.ID == "" {
				t.Errorf("reply %q without an order", r.code)
				return
			}
			results[r.order.ID] = r
		}()
	}
	wg.Wait()
	return results, codes
}

// settle waits until every order is final, nothing is being retried, and every hold is
// gone (confirmed orders committed by the event consumer, failed ones released).
func (s *system) settle(t *testing.T) {
	t.Helper()
	testenv.Eventually(t, 60*time.Second, "orders resolved", func() bool {
		for _, o := range s.orders {
			if len(o.Unresolved()) > 0 {
				return false
			}
		}
		for _, k := range testenv.Keys(t, s.client.NC, contracts.BucketOrders) {
			var o contracts.Order
			if testenv.Get(t, s.client.NC, contracts.BucketOrders, k, &o) && o.Status == contracts.OrderPending {
				return false
			}
		}
		return true
	})
	testenv.Eventually(t, 60*time.Second, "holds committed or released", func() bool {
		for _, p := range contracts.Catalog {
			var rec struct{ Held map[string]int }
			testenv.Get(t, s.client.NC, contracts.BucketStock, p.SKU, &rec)
			if len(rec.Held) > 0 {
				return false
			}
		}
		return true
	})
}

// checkInvariant checks, from the stores: every order is confirmed (stock taken once,
// charged once) or failed (stock returned, nothing charged). It returns the confirmed
// and failed counts.
func (s *system) checkInvariant(t *testing.T, seen map[string]result) (confirmed, failed int) {
	t.Helper()
	nc := s.client.NC
	taken := map[string]int{}
	orders := map[string]contracts.Order{}
	for _, k := range testenv.Keys(t, nc, contracts.BucketOrders) {
		var o contracts.Order
		testenv.Get(t, nc, contracts.BucketOrders, k, &o)
		orders[k] = o
		var p contracts.Payment
		hasPayment := testenv.Get(t, nc, contracts.BucketPayments, k, &p)
		var r contracts.Reservation
		hasRes := testenv.Get(t, nc, contracts.BucketReservations, k, &r)
		switch o.Status {
		case contracts.OrderConfirmed:
			confirmed++
			for _, l := range o.Lines {
				taken[l.SKU] += l.Qty
			}
			if !hasPayment || p.Status != contracts.PaymentCaptured || p.AmountCents != o.AmountCents || p.ID != o.PaymentID {
				t.Errorf("confirmed order %s: payment %+v (found %v)", k, p, hasPayment)
			}
			if !hasRes || r.State != contracts.ReservationCommitted {
				t.Errorf("confirmed order %s: reservation %+v (found %v)", k, r, hasRes)
			}
		case contracts.OrderFailed:
			failed++
			if hasPayment && p.Status == contracts.PaymentCaptured {
				t.Errorf("failed order %s has a captured payment %+v", k, p)
			}
			if hasRes && r.State != contracts.ReservationReleased {
				t.Errorf("failed order %s: reservation %s", k, r.State)
			}
		default:
			t.Errorf("order %s ended %q", k, o.Status)
		}
	}
	for _, p := range contracts.Catalog {
		var rec struct {
			Available int
			Held      map[string]int
		}
		testenv.Get(t, nc, contracts.BucketStock, p.SKU, &rec)
		if rec.Available < 0 || rec.Available+taken[p.SKU] != p.Seed || len(rec.Held) > 0 {
			t.Errorf("%s: available %d + confirmed %d != seed %d (holds %v)", p.SKU, rec.Available, taken[p.SKU], p.Seed, rec.Held)
		}
	}
	// Captured payments are exactly the confirmed orders.
	captured := 0
	for _, k := range testenv.Keys(t, nc, contracts.BucketPayments) {
		var p contracts.Payment
		testenv.Get(t, nc, contracts.BucketPayments, k, &p)
		if p.Status == contracts.PaymentCaptured {
			captured++
			if orders[k].Status != contracts.OrderConfirmed {
				t.Errorf("payment %s captured for order %s in state %q", p.ID, k, orders[k].Status)
			}
		}
	}
	if captured != confirmed {
		t.Errorf("%d captured payments, %d confirmed orders", captured, confirmed)
	}
	// What the client saw is what the stores say.
	for id, r := range seen {
		want := contracts.OrderFailed
		if r.code == "" {
			want = contracts.OrderConfirmed
		}
		if got := orders[id].Status; got != want {
			t.Errorf("order %s: client saw %q (%s), store says %s", id, r.code, r.order.Status, got)
		}
	}
	return confirmed, failed
}

// TestInvariantUnderLoad runs inventory x3, billing x2 and order x2, fires a few hundred
// concurrent orders, and checks the invariant from the stores.
func TestInvariantUnderLoad(t *testing.T) {
	// Handlers run concurrently, so the queue of a burst forms at the dependencies, where
	// order's RequestTimeout runs, not in front of order. Eight services share this test
	// process and -race slows them several times over; on a loaded machine 2 s is not
	// enough for the contended SKUs, and timeouts are not what this test is about
	// (TestInvariantWithFaults is).
	s := startSystem(t, sizes{inventory: 3, billing: 2, order: 2}, order.Config{RequestTimeout: 15 * time.Second})
	const n = 300
	start := time.Now()
	results, codes := s.drive(t, n, 64)
	elapsed := time.Since(start)
	s.settle(t)
	confirmed, failed := s.checkInvariant(t, results)
	var sku5 struct{ Available int }
	testenv.Get(t, s.client.NC, contracts.BucketStock, "sku-5", &sku5)
	t.Logf("%d orders in %v (%.0f/s): replies %v; stores: %d confirmed, %d failed; sku-5 left %d of 50",
		n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), codes, confirmed, failed, sku5.Available)
	if confirmed+failed != n || len(results) != n {
		t.Fatalf("%d orders stored (%d confirmed + %d failed), %d replies with an order, want %d", confirmed+failed, confirmed, failed, len(results), n)
	}
	for code := range codes {
		if code != "" && code != "402" && code != "409" {
			t.Errorf("unexpected reply code %q (%d)", code, codes[code])
		}
	}
	// sku-5's demand exceeds its stock: whatever is left was returned by orders that held
	// it and then failed for another reason (declined), after the last sku-5 order had
	// been turned away. Handlers run concurrently, so several can hold units at once.
	returned := 0
	for _, r := range results {
		if r.code != "" && r.code != "409" {
			for _, l := range r.order.Lines {
				if l.SKU == "sku-5" {
					returned += l.Qty
				}
			}
		}
	}
	if sku5.Available > returned {
		t.Errorf("sku-5 demand exceeds its stock, yet %d units are left (%d returned by failed orders)", sku5.Available, returned)
	}
}

// TestInvariantWithFaults drops a share of inventory's and billing's requests and fails a
// share of event deliveries: callers time out, orders fail and are compensated (some in
// the background), and the invariant still holds once everything settled.
func TestInvariantWithFaults(t *testing.T) {
	s := startSystem(t, sizes{inventory: 2, billing: 2, order: 2}, order.Config{RequestTimeout: 250 * time.Millisecond, RetryInterval: 100 * time.Millisecond})
	s.control(t, contracts.InventoryService, `{"drop_share":0.1,"nak_share":0.3}`)
	s.control(t, contracts.BillingService, `{"drop_share":0.15}`)
	results, codes := s.drive(t, 120, 16)
	s.control(t, contracts.InventoryService, `{}`)
	s.control(t, contracts.BillingService, `{}`)
	s.settle(t)
	confirmed, failed := s.checkInvariant(t, results)
	t.Logf("with drops and naks: replies %v; stores: %d confirmed, %d failed", codes, confirmed, failed)
	if codes["503"] == 0 {
		t.Errorf("no 503 replies: the drop fault had no visible effect (%v)", codes)
	}

	// The traces explain it: order's CLIENT spans to a dropping service timed out, the
	// dropped SERVER spans carry demo.fault=drop, and redelivered events show their count.
	var timeouts, dropped, redelivered int
	for _, n := range s.nodes {
		for _, sp := range n.Spans.Ended() {
			switch {
			case strings.HasPrefix(sp.Name(), "request ") && testenv.Attr(sp, "error.type") == "timeout":
				timeouts++
			case strings.HasPrefix(sp.Name(), "process ") && testenv.Attr(sp, "demo.fault") == "drop":
				dropped++
			}
			if sp.Name() == "process "+contracts.OrderEventsStream && testenv.Attr(sp, "messaging.nats.redelivered") == "true" {
				redelivered++
			}
		}
	}
	t.Logf("spans: %d client timeouts, %d dropped server spans, %d redelivered event spans", timeouts, dropped, redelivered)
	if timeouts == 0 || dropped == 0 || timeouts < dropped || redelivered == 0 {
		t.Errorf("fault effects not visible in spans: timeouts %d, dropped %d, redelivered %d", timeouts, dropped, redelivered)
	}
}

// TestNoSecretsInTelemetry scans every recorded span (names, attributes, events,
// status) and every log line for the card numbers and customer ids sent.
func TestNoSecretsInTelemetry(t *testing.T) {
	s := startSystem(t, sizes{inventory: 1, billing: 1, order: 1}, order.Config{})
	const customer = "cust-Zq8x7secret"
	secrets := []string{contracts.CardOK, contracts.CardDeclined, customer, "4111111111111111"}
	reqs := []contracts.CreateOrderRequest{
		{CustomerID: customer, Lines: []contracts.Line{{SKU: "sku-1", Qty: 1}}, Card: contracts.CardOK},
		{CustomerID: customer, Lines: []contracts.Line{{SKU: "sku-2", Qty: 1}}, Card: contracts.CardDeclined},
		{CustomerID: customer, Lines: []contracts.Line{{SKU: "sku-oos", Qty: 1}}, Card: contracts.CardOK},
		{CustomerID: customer, Lines: []contracts.Line{{SKU: "sku-4", Qty: 30}}, Card: "4111111111111111"},
	}
	for _, r := range reqs {
		if _, err := s.create(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	// Bad input that carries the secrets in odd places.
	for _, body := range []string{
		`{"customer_id":"` + customer + `","card":4242424242424242,"lines":[{"sku":"sku-1","qty":1}]}`,
		`{"customer_id":"` + customer + `","card":"4242424242424242","lines":[{"sku":"` + customer + `","qty":1}],"x":1}`,
		`{"customer_id":"` + customer + ` ","card":"4242424242424241","lines":[{"sku":"sku-1","qty":1}]}`,
	} {
		if _, err := s.client.Request(context.Background(), contracts.SubjectOrderCreate, body, 5*time.Second); testenv.Code(err) != "400" {
			t.Fatalf("bad input: %v", err)
		}
	}
	if _, err := s.client.Request(context.Background(), contracts.SubjectBillingCharge,
		contracts.ChargeRequest{OrderID: "direct", AmountCents: 5, Card: contracts.CardOK}, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	s.settle(t)

	scanned := 0
	var leaks []string
	check := func(where, text string) {
		scanned++
		for _, secret := range secrets {
			if strings.Contains(text, secret) {
				leaks = append(leaks, fmt.Sprintf("%s contains %q: %.200s", where, secret, text))
			}
		}
	}
	for _, n := range s.nodes {
		for _, sp := range n.Spans.Ended() {
			check(n.Name+" span name", sp.Name())
			check(n.Name+" span status", sp.Status().Description)
			for _, kv := range sp.Attributes() {
				check(n.Name+" span "+sp.Name()+" attribute "+string(kv.Key), kv.Value.String())
			}
			for _, ev := range sp.Events() {
				for _, kv := range ev.Attributes {
					check(n.Name+" event "+ev.Name+" attribute "+string(kv.Key), kv.Value.String())
				}
			}
		}
		check(n.Name+" logs", n.Logs.String())
	}
	// Metric labels.
	for _, n := range s.nodes {
		var rm metricdataResourceMetrics
		if err := n.Metrics.Collect(context.Background(), &rm); err != nil {
			t.Fatal(err)
		}
		for _, label := range metricLabels(rm) {
			check(n.Name+" metric label", label)
		}
	}
	sort.Strings(leaks)
	for _, l := range leaks {
		t.Error(l)
	}
	t.Logf("scanned %d span fields, log buffers and metric labels: %d leaks", scanned, len(leaks))
}
