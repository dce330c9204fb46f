package faultkit

import (
	"strings"
	"testing"
	"time"

	"github.com/natsotel/reference/loadgen/load"
	"github.com/natsotel/reference/services/contracts"
)

// shop builds a settled state of two orders on a one-SKU catalog: ord-ok confirmed (2
// units, paid), ord-no failed (declined: reservation released, payment voided).
func shop() State {
	lines := []contracts.Line{{SKU: "sku-1", Qty: 2}}
	amount := 2 * int64(250)
	return State{
		Orders: map[string]contracts.Order{
			"ord-ok": {ID: "ord-ok", Lines: lines, AmountCents: amount, Status: contracts.OrderConfirmed, PaymentID: "pay-1"},
			"ord-no": {ID: "ord-no", Lines: lines, AmountCents: amount, Status: contracts.OrderFailed},
		},
		Reservations: map[string]Reservation{
			"ord-ok": {OrderID: "ord-ok", Lines: lines, State: contracts.ReservationCommitted},
			"ord-no": {OrderID: "ord-no", Lines: lines, State: contracts.ReservationReleased},
		},
		Stock: map[string]StockRecord{"sku-1": {Available: 8}},
		Payments: map[string]contracts.Payment{
			"ord-ok": {ID: "pay-1", OrderID: "ord-ok", AmountCents: amount, Status: contracts.PaymentCaptured},
			"ord-no": {OrderID: "ord-no", Status: contracts.PaymentVoided},
		},
	}
}

var seeds = map[string]int{"sku-1": 10}

func TestCheck(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*State)
		want   string // substring of a problem; "" for none
	}{
		{"consistent", func(*State) {}, ""},
		{"oversold", func(s *State) { s.Stock["sku-1"] = StockRecord{Available: -2} }, "oversold"},
		{"stock not returned", func(s *State) {
			s.Stock["sku-1"] = StockRecord{Available: 6, Held: map[string]int{"ord-no": 2}}
		}, "failed ord-no still holds 2 of sku-1"},
		{"charged for a failed order", func(s *State) {
			s.Payments["ord-no"] = contracts.Payment{ID: "pay-2", OrderID: "ord-no", AmountCents: 500, Status: contracts.PaymentCaptured}
		}, "captured for failed order ord-no"},
		{"confirmed without commit", func(s *State) {
			s.Reservations["ord-ok"] = Reservation{OrderID: "ord-ok", Lines: s.Orders["ord-ok"].Lines, State: contracts.ReservationHeld}
		}, "reservation held, want committed"},
		{"payment amount", func(s *State) {
			p := s.Payments["ord-ok"]
			p.AmountCents = 1
			s.Payments["ord-ok"] = p
		}, "paid 1, amount 500"},
		{"payment id reused", func(s *State) {
			s.Payments["ord-no"] = contracts.Payment{ID: "pay-1", OrderID: "ord-no", Status: contracts.PaymentRefunded}
		}, "payment id pay-1 used for orders"},
		{"units vanished", func(s *State) { s.Stock["sku-1"] = StockRecord{Available: 7} }, "seed 10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := shop()
			tt.mutate(&s)
			r := Check(s, seeds)
			got := strings.Join(r.Problems, "\n")
			switch {
			case tt.want == "" && got != "":
				t.Fatalf("problems:\n%s", got)
			case tt.want != "" && !strings.Contains(got, tt.want):
				t.Fatalf("want a problem containing %q, got:\n%s", tt.want, got)
			}
		})
	}
}

func TestCheckPendingHolding(t *testing.T) {
	s := shop()
	s.Orders["ord-p"] = contracts.Order{ID: "ord-p", Lines: []contracts.Line{{SKU: "sku-1", Qty: 3}}, Status: contracts.OrderPending}
	s.Reservations["ord-p"] = Reservation{OrderID: "ord-p", Lines: s.Orders["ord-p"].Lines, State: contracts.ReservationHeld}
	s.Stock["sku-1"] = StockRecord{Available: 5, Held: map[string]int{"ord-p": 3}}
	if err := Settled(s); err != nil {
		t.Fatalf("a pending order holding stock is not in motion: %v", err)
	}
	r := Check(s, seeds)
	if len(r.Problems) > 0 || r.SKUs["sku-1"].HeldUnfinished != 3 || len(r.PendingHolding) != 1 {
		t.Fatalf("%s", r)
	}
}

func TestSettled(t *testing.T) {
	s := shop()
	s.Reservations["ord-ok"] = Reservation{OrderID: "ord-ok", State: contracts.ReservationHeld}
	s.Stock["sku-1"] = StockRecord{Available: 8, Held: map[string]int{"ord-ok": 2}}
	if err := Settled(s); err == nil {
		t.Fatal("a confirmed order whose reservation is held has not settled")
	}
}

func TestCheckLoad(t *testing.T) {
	s := shop()
	sum := load.Summary{Sent: 3, Confirmed: []string{"ord-ok", "ord-gone"}, Failed: []string{"ord-no"}}
	calls := []Call{
		{Subject: contracts.SubjectOrderCreate, Outcome: "ok", OrderID: "ord-ok"},
		{Subject: contracts.SubjectOrderCreate, Outcome: "402", OrderID: "ord-no"},
		{Subject: contracts.SubjectOrderCreate, Outcome: "timeout"},
	}
	r := CheckLoad(s, sum, calls)
	if len(r.Lost) != 1 || !strings.Contains(r.Lost[0], "ord-gone") {
		t.Fatalf("lost: %v", r.Lost)
	}
	if r.NoAnswer["timeout->none"] != 1 {
		t.Fatalf("no answer: %v", r.NoAnswer)
	}
}

func TestQuantile(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(101-i)*time.Millisecond)
	}
	if q := Quantile(ds, 0.99); q != 99*time.Millisecond {
		t.Fatalf("p99 %v", q)
	}
	if q := Quantile(ds, 0.5); q != 50*time.Millisecond {
		t.Fatalf("p50 %v", q)
	}
	if q := Quantile(nil, 0.99); q != 0 {
		t.Fatalf("empty %v", q)
	}
}

func TestWindowOverlaps(t *testing.T) {
	t0 := time.Now()
	w := Window{From: t0, To: t0.Add(time.Second)}
	for _, tt := range []struct {
		start, end time.Duration
		want       bool
	}{
		{-2 * time.Second, -time.Second, false},
		{-time.Second, 0, true},
		{500 * time.Millisecond, 3 * time.Second, true},
		{2 * time.Second, 3 * time.Second, false},
	} {
		c := Call{Start: t0.Add(tt.start), End: t0.Add(tt.end)}
		if got := w.Overlaps(c); got != tt.want {
			t.Errorf("call %v..%v: overlaps %v, want %v", tt.start, tt.end, got, tt.want)
		}
	}
}
