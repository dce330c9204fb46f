package billing

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
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

func start(t *testing.T) *env {
	t.Helper()
	srv := testenv.Server(t)
	node := testenv.NewNode(t, srv, contracts.BillingService)
	svc, err := Start(context.Background(), node.Conn, node.Log, Config{FaultSeed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop(context.Background()) })
	return &env{srv: srv, svc: svc, node: node, client: testenv.NewNode(t, srv, "client")}
}

func (e *env) charge(t *testing.T, body any) (contracts.Payment, error) {
	t.Helper()
	msg, err := e.client.Request(context.Background(), contracts.SubjectBillingCharge, body, 5*time.Second)
	var p contracts.Payment
	if err == nil {
		if jerr := json.Unmarshal(msg.Data, &p); jerr != nil {
			t.Fatal(jerr)
		}
	}
	return p, err
}

func (e *env) call(t *testing.T, subject string, body any) (contracts.Payment, error) {
	t.Helper()
	msg, err := e.client.Request(context.Background(), subject, body, 5*time.Second)
	var p contracts.Payment
	if err == nil {
		if jerr := json.Unmarshal(msg.Data, &p); jerr != nil {
			t.Fatal(jerr)
		}
	}
	return p, err
}

func TestChargeRules(t *testing.T) {
	e := start(t)
	for _, tc := range []struct {
		name string
		req  contracts.ChargeRequest
		code string
		desc string
	}{
		{"ok", contracts.ChargeRequest{OrderID: "o-ok", AmountCents: 1000, Card: contracts.CardOK}, "", ""},
		{"declined card", contracts.ChargeRequest{OrderID: "o-dc", AmountCents: 1000, Card: contracts.CardDeclined}, "402", "card declined"},
		{"over limit", contracts.ChargeRequest{OrderID: "o-lim", AmountCents: contracts.ChargeLimitCents + 1, Card: contracts.CardOK}, "402", "over the limit"},
		{"at limit", contracts.ChargeRequest{OrderID: "o-at", AmountCents: contracts.ChargeLimitCents, Card: contracts.CardOK}, "", ""},
		{"luhn", contracts.ChargeRequest{OrderID: "o-luhn", AmountCents: 1000, Card: "4242424242424241"}, "400", "Luhn"},
		{"short card", contracts.ChargeRequest{OrderID: "o-short", AmountCents: 1000, Card: "4242"}, "400", "12 to 19 digits"},
		{"zero amount", contracts.ChargeRequest{OrderID: "o-zero", AmountCents: 0, Card: contracts.CardOK}, "400", "amount_cents must be positive"},
		{"negative amount", contracts.ChargeRequest{OrderID: "o-neg", AmountCents: -5, Card: contracts.CardOK}, "400", "amount_cents must be positive"},
		{"no order", contracts.ChargeRequest{AmountCents: 5, Card: contracts.CardOK}, "400", "order_id is required"},
		{"bad order id", contracts.ChargeRequest{OrderID: "a.b", AmountCents: 5, Card: contracts.CardOK}, "400", "order_id may only hold"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := testenv.KeyCount(t, e.client.NC, contracts.BucketPayments)
			p, err := e.charge(t, tc.req)
			if got := testenv.Code(err); got != tc.code {
				t.Fatalf("code %q (%v), want %q", got, err, tc.code)
			}
			if tc.code != "" {
				if d := testenv.Description(err); !strings.Contains(d, tc.desc) {
					t.Errorf("description %q lacks %q", d, tc.desc)
				}
				if after := testenv.KeyCount(t, e.client.NC, contracts.BucketPayments); after != before {
					t.Errorf("refused charge changed the payments bucket: %d -> %d keys", before, after)
				}
				return
			}
			if p.Status != contracts.PaymentCaptured || p.CardLast4 != "4242" || p.AmountCents != tc.req.AmountCents || p.ID == "" {
				t.Errorf("payment = %+v", p)
			}
		})
	}
}

func TestChargeIdempotent(t *testing.T) {
	e := start(t)
	// A second billing instance on its own connection: replicas race for the same order.
	other := testenv.NewNode(t, e.srv, contracts.BillingService)
	svc2, err := Start(context.Background(), other.Conn, other.Log, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer svc2.Stop(context.Background())

	req := contracts.ChargeRequest{OrderID: "o-1", AmountCents: 4200, Card: contracts.CardOK}
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		ids = map[string]int{}
	)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := e.charge(t, req)
			if err != nil {
				t.Errorf("charge: %v", err)
				return
			}
			mu.Lock()
			ids[p.ID]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(ids) != 1 {
		t.Fatalf("concurrent charges of one order returned payments %v, want one", ids)
	}
	if n := testenv.KeyCount(t, e.client.NC, contracts.BucketPayments); n != 1 {
		t.Fatalf("%d payment records, want 1", n)
	}
	// A different amount for the same order is a conflict, not a second charge.
	req.AmountCents++
	if _, err := e.charge(t, req); testenv.Code(err) != "409" {
		t.Fatalf("different amount: %v, want 409", err)
	}
}

func TestRefundAndVoid(t *testing.T) {
	e := start(t)
	if _, err := e.charge(t, contracts.ChargeRequest{OrderID: "o-r", AmountCents: 100, Card: contracts.CardOK}); err != nil {
		t.Fatal(err)
	}
	for range 2 { // idempotent
		p, err := e.call(t, contracts.SubjectBillingRefund, contracts.OrderRef{OrderID: "o-r"})
		if err != nil || p.Status != contracts.PaymentRefunded || p.AmountCents != 100 {
			t.Fatalf("refund: %+v, %v", p, err)
		}
	}
	if _, err := e.charge(t, contracts.ChargeRequest{OrderID: "o-r", AmountCents: 100, Card: contracts.CardOK}); testenv.Code(err) != "409" {
		t.Fatalf("charge after refund: %v, want 409", err)
	}

	// A refund that arrives before its charge (the caller timed out) voids the order.
	p, err := e.call(t, contracts.SubjectBillingRefund, contracts.OrderRef{OrderID: "o-late"})
	if err != nil || p.Status != contracts.PaymentVoided || p.AmountCents != 0 {
		t.Fatalf("refund of an uncharged order: %+v, %v", p, err)
	}
	if _, err := e.charge(t, contracts.ChargeRequest{OrderID: "o-late", AmountCents: 100, Card: contracts.CardOK}); testenv.Code(err) != "409" {
		t.Fatalf("late charge after void: %v, want 409", err)
	}

	if _, err := e.call(t, contracts.SubjectBillingPayment, contracts.OrderRef{OrderID: "o-none"}); testenv.Code(err) != "404" {
		t.Fatalf("payment of unknown order: %v, want 404", err)
	}
	if p, err := e.call(t, contracts.SubjectBillingPayment, contracts.OrderRef{OrderID: "o-r"}); err != nil || p.Status != contracts.PaymentRefunded {
		t.Fatalf("payment lookup: %+v, %v", p, err)
	}
}

func TestDeclineFault(t *testing.T) {
	e := start(t)
	set := func(cfg string) contracts.FaultConfig {
		t.Helper()
		msg, err := e.client.Request(context.Background(), contracts.ControlSubject(contracts.BillingService), cfg, 5*time.Second)
		if err != nil {
			t.Fatalf("control %s: %v", cfg, err)
		}
		var got contracts.FaultConfig
		if err := json.Unmarshal(msg.Data, &got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := set(`{"decline_share":0.5}`); got.DeclineShare != 0.5 {
		t.Fatalf("config in force = %+v", got)
	}
	if got := set(""); got.DeclineShare != 0.5 { // empty body reads
		t.Fatalf("read config = %+v", got)
	}
	const n = 200
	declined := 0
	for i := range n {
		_, err := e.charge(t, contracts.ChargeRequest{OrderID: "f-" + strconv.Itoa(i), AmountCents: 100, Card: contracts.CardOK})
		switch testenv.Code(err) {
		case "402":
			declined++
		case "":
		default:
			t.Fatalf("charge: %v", err)
		}
	}
	// The recorded spans explain the declines. A SERVER span ends just after its answer
	// is sent: wait for the last one.
	testenv.Eventually(t, 5*time.Second, "every charge's span", func() bool {
		return len(e.node.SpansNamed("process "+contracts.SubjectBillingCharge)) >= n
	})
	var faultSpans, errSpans int
	for _, s := range e.node.SpansNamed("process " + contracts.SubjectBillingCharge) {
		if testenv.Attr(s, string(fault.AttrFault)) == string(fault.Decline) {
			faultSpans++
			// 402 is the caller's error: status Unset on the SERVER span, error.type says it.
			if s.Status().Code.String() != "Unset" || testenv.Attr(s, "error.type") != "402" {
				t.Errorf("declined span status %v, error.type %q", s.Status(), testenv.Attr(s, "error.type"))
			}
		}
		if testenv.Attr(s, string(fault.AttrFaultActive)) != "decline=0.5" {
			t.Errorf("span lacks demo.fault.active: %v", s.Attributes())
		}
		if testenv.Attr(s, "error.type") != "" {
			errSpans++
		}
	}
	t.Logf("decline_share=0.5: %d/%d declined; %d spans with demo.fault=decline", declined, n, faultSpans)
	if declined < n*35/100 || declined > n*65/100 || faultSpans != declined || errSpans != declined {
		t.Fatalf("declined %d of %d (fault spans %d, error spans %d), want about half and all explained", declined, n, faultSpans, errSpans)
	}

	if got := set(`{}`); got != (contracts.FaultConfig{}) {
		t.Fatalf("switching off: %+v", got)
	}
	for i := range 20 {
		if _, err := e.charge(t, contracts.ChargeRequest{OrderID: "g-" + strconv.Itoa(i), AmountCents: 100, Card: contracts.CardOK}); err != nil {
			t.Fatalf("after switching off: %v", err)
		}
	}
	// Billing does not support delays.
	if _, err := e.client.Request(context.Background(), contracts.ControlSubject(contracts.BillingService), `{"delay_share":1,"delay":"1s"}`, 5*time.Second); testenv.Code(err) != "400" {
		t.Fatalf("unsupported scenario: %v, want 400", err)
	}
}

func TestDropFault(t *testing.T) {
	e := start(t)
	if _, err := e.client.Request(context.Background(), contracts.ControlSubject(contracts.BillingService), `{"drop_share":1}`, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	_, err := e.client.Request(context.Background(), contracts.SubjectBillingCharge, contracts.ChargeRequest{OrderID: "d-1", AmountCents: 1, Card: contracts.CardOK}, 300*time.Millisecond)
	if testenv.Code(err) != "timeout" {
		t.Fatalf("dropped request: %v, want a timeout", err)
	}
	var spans []sdktrace.ReadOnlySpan
	testenv.Eventually(t, 5*time.Second, "the dropped charge's span", func() bool {
		spans = e.node.SpansNamed("process " + contracts.SubjectBillingCharge)
		return len(spans) >= 1
	})
	if len(spans) != 1 || testenv.Attr(spans[0], string(fault.AttrFault)) != string(fault.Drop) {
		t.Fatalf("server spans %d, want 1 with demo.fault=drop", len(spans))
	}
	if len(spans[0].Events()) == 0 || spans[0].Events()[0].Name != fault.EventInjected {
		t.Errorf("no %s event: %v", fault.EventInjected, spans[0].Events())
	}
	// Control requests are never dropped.
	if _, err := e.client.Request(context.Background(), contracts.ControlSubject(contracts.BillingService), `{}`, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := e.charge(t, contracts.ChargeRequest{OrderID: "d-2", AmountCents: 1, Card: contracts.CardOK}); err != nil {
		t.Fatalf("after switching off: %v", err)
	}
}
