package faultkit

import (
	"fmt"
	"sort"
	"strings"

	"github.com/natsotel/reference/services/contracts"
)

// Seeds returns the stock inventory seeds each SKU with (contracts.Catalog).
func Seeds() map[string]int {
	m := make(map[string]int, len(contracts.Catalog))
	for _, p := range contracts.Catalog {
		m[p.SKU] = p.Seed
	}
	return m
}

// Settled returns nil when nothing is in motion: every decided order's reservation has
// reached its end (committed for a confirmed order, released or never made for a failed
// one) and no decided order still holds units. Pending orders (outcome not stored) do
// not count; Check reports them.
func Settled(s State) error {
	var moving []string
	for id, o := range s.Orders {
		r, hasRes := s.Reservations[id]
		switch o.Status {
		case contracts.OrderConfirmed:
			if !hasRes || r.State != contracts.ReservationCommitted {
				moving = append(moving, fmt.Sprintf("confirmed %s: reservation %q", id, r.State))
			}
		case contracts.OrderFailed:
			if hasRes && r.State != contracts.ReservationReleased {
				moving = append(moving, fmt.Sprintf("failed %s: reservation %q", id, r.State))
			}
		}
	}
	for sku, rec := range s.Stock {
		for id := range rec.Held {
			if o, ok := s.Orders[id]; !ok || o.Status != contracts.OrderPending {
				moving = append(moving, fmt.Sprintf("%s held by %s order %s", sku, s.Orders[id].Status, id))
			}
		}
	}
	if len(moving) == 0 {
		return nil
	}
	sort.Strings(moving)
	return fmt.Errorf("%d not settled, e.g. %s", len(moving), strings.Join(moving[:min(5, len(moving))], "; "))
}

// SKUFigures is the accounting of one SKU.
type SKUFigures struct {
	Seed      int
	Available int // in the stock record
	Held      int // units held by reservations not yet committed or released
	Committed int // units of committed reservations
	Confirmed int // units of confirmed orders
	// HeldUnfinished is the part of Held that pending orders hold: reserved, but the
	// order's outcome was never stored (see Report.Pending).
	HeldUnfinished int
}

// Report is what Check found.
type Report struct {
	Orders, Confirmed, Failed, Pending int
	// PendingHolding lists pending orders that hold units.
	PendingHolding []string
	// Payments by status.
	Captured, Refunded, Voided int
	SKUs                       map[string]SKUFigures
	// Problems are broken invariants; empty when everything holds.
	Problems []string
}

func (r *Report) problem(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

// String renders the figures.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "orders in KV: %d (confirmed %d, failed %d, pending %d", r.Orders, r.Confirmed, r.Failed, r.Pending)
	if len(r.PendingHolding) > 0 {
		fmt.Fprintf(&b, ", %d pending holding stock", len(r.PendingHolding))
	}
	fmt.Fprintf(&b, "); payments captured %d, refunded %d, voided %d\n", r.Captured, r.Refunded, r.Voided)
	skus := make([]string, 0, len(r.SKUs))
	for sku := range r.SKUs {
		skus = append(skus, sku)
	}
	sort.Strings(skus)
	for _, sku := range skus {
		f := r.SKUs[sku]
		fmt.Fprintf(&b, "  %-8s seed %7d = available %7d + confirmed %5d + held by unfinished %d (held %d, committed %d)\n",
			sku, f.Seed, f.Available, f.Confirmed, f.HeldUnfinished, f.Held, f.Committed)
	}
	if len(r.Problems) > 0 {
		fmt.Fprintf(&b, "  %d problems:\n    %s\n", len(r.Problems), strings.Join(r.Problems, "\n    "))
	}
	return b.String()
}

// Check verifies the shop's invariants on a settled state (see Settled):
//
//   - per SKU, seed == available + units of confirmed orders + units held by pending
//     orders, and inventory's own books agree (seed == available + held + committed);
//     available and held are never negative (never oversold);
//   - a confirmed order has a committed reservation and exactly one captured payment of
//     its amount, whose id the order records; its amount is the catalog price of its
//     lines;
//   - a failed order holds no stock, its reservation (if any) is released, and it has no
//     captured payment (none, voided or refunded);
//   - a captured payment belongs to a confirmed order (nobody is charged for a failed or
//     unknown order), payment ids are unique, and a committed reservation belongs to a
//     confirmed order.
func Check(s State, seeds map[string]int) Report {
	r := Report{SKUs: map[string]SKUFigures{}}
	for sku, seed := range seeds {
		r.SKUs[sku] = SKUFigures{Seed: seed}
	}
	add := func(sku string, fn func(*SKUFigures)) {
		f := r.SKUs[sku]
		fn(&f)
		r.SKUs[sku] = f
	}
	for sku, rec := range s.Stock {
		if _, ok := seeds[sku]; !ok {
			r.problem("stock record for unknown sku %s", sku)
		}
		add(sku, func(f *SKUFigures) { f.Available, f.Held = rec.Available, rec.HeldUnits() })
		if rec.Available < 0 {
			r.problem("%s: available %d < 0 (oversold)", sku, rec.Available)
		}
		for id, q := range rec.Held {
			if q <= 0 {
				r.problem("%s: order %s holds %d units", sku, id, q)
			}
			if s.Orders[id].Status == contracts.OrderPending {
				add(sku, func(f *SKUFigures) { f.HeldUnfinished += q })
			}
		}
	}
	for sku := range seeds {
		if _, ok := s.Stock[sku]; !ok {
			r.problem("no stock record for %s", sku)
		}
	}

	paymentIDs := map[string]string{}
	for id, p := range s.Payments {
		switch p.Status {
		case contracts.PaymentCaptured:
			r.Captured++
			if o, ok := s.Orders[id]; !ok || o.Status != contracts.OrderConfirmed {
				r.problem("payment %s captured for %s order %s (charged without a confirmed order)", p.ID, o.Status, id)
			}
		case contracts.PaymentRefunded:
			r.Refunded++
		case contracts.PaymentVoided:
			r.Voided++
		default:
			r.problem("payment of order %s has status %q", id, p.Status)
		}
		if p.OrderID != id {
			r.problem("payment under key %s names order %s", id, p.OrderID)
		}
		if p.ID != "" {
			if other, dup := paymentIDs[p.ID]; dup {
				r.problem("payment id %s used for orders %s and %s", p.ID, other, id)
			}
			paymentIDs[p.ID] = id
		}
	}

	for id, res := range s.Reservations {
		o, ok := s.Orders[id]
		if !ok {
			r.problem("reservation %s (%s) has no order", id, res.State)
			continue
		}
		if res.State == contracts.ReservationCommitted {
			for _, l := range res.Lines {
				add(l.SKU, func(f *SKUFigures) { f.Committed += l.Qty })
			}
			if o.Status != contracts.OrderConfirmed {
				r.problem("reservation of %s order %s is committed (stock sold without a confirmed order)", o.Status, id)
			}
		}
	}

	for id, o := range s.Orders {
		r.Orders++
		if o.ID != id {
			r.problem("order under key %s has id %s", id, o.ID)
		}
		res, hasRes := s.Reservations[id]
		pay, hasPay := s.Payments[id]
		switch o.Status {
		case contracts.OrderConfirmed:
			r.Confirmed++
			for _, l := range o.Lines {
				add(l.SKU, func(f *SKUFigures) { f.Confirmed += l.Qty })
			}
			if want := amount(o.Lines); o.AmountCents != want {
				r.problem("confirmed %s: amount %d, lines cost %d", id, o.AmountCents, want)
			}
			switch {
			case !hasRes:
				r.problem("confirmed %s has no reservation", id)
			case res.State != contracts.ReservationCommitted:
				r.problem("confirmed %s: reservation %s, want committed", id, res.State)
			case !sameLines(res.Lines, o.Lines):
				r.problem("confirmed %s: reserved %v, ordered %v", id, res.Lines, o.Lines)
			}
			switch {
			case !hasPay:
				r.problem("confirmed %s has no payment", id)
			case pay.Status != contracts.PaymentCaptured:
				r.problem("confirmed %s: payment %s", id, pay.Status)
			case pay.AmountCents != o.AmountCents:
				r.problem("confirmed %s: paid %d, amount %d", id, pay.AmountCents, o.AmountCents)
			case pay.ID != o.PaymentID:
				r.problem("confirmed %s records payment %s, billing has %s", id, o.PaymentID, pay.ID)
			}
		case contracts.OrderFailed:
			r.Failed++
			if hasRes && res.State != contracts.ReservationReleased {
				r.problem("failed %s: reservation %s, want released", id, res.State)
			}
			if hasPay && pay.Status == contracts.PaymentCaptured {
				r.problem("failed %s: payment captured, not refunded", id)
			}
			for sku, rec := range s.Stock {
				if q, ok := rec.Held[id]; ok {
					r.problem("failed %s still holds %d of %s", id, q, sku)
				}
			}
		case contracts.OrderPending:
			r.Pending++
			for _, rec := range s.Stock {
				if _, ok := rec.Held[id]; ok {
					r.PendingHolding = append(r.PendingHolding, id)
					break
				}
			}
		default:
			r.problem("order %s has status %q", id, o.Status)
		}
	}
	if r.Captured != r.Confirmed {
		r.problem("%d captured payments for %d confirmed orders", r.Captured, r.Confirmed)
	}
	sort.Strings(r.PendingHolding)

	for sku, f := range r.SKUs {
		if f.Available+f.Confirmed+f.HeldUnfinished != f.Seed {
			r.problem("%s: available %d + confirmed %d + held by unfinished %d = %d, seed %d",
				sku, f.Available, f.Confirmed, f.HeldUnfinished, f.Available+f.Confirmed+f.HeldUnfinished, f.Seed)
		}
		if f.Available+f.Held+f.Committed != f.Seed {
			r.problem("%s: inventory books: available %d + held %d + committed %d != seed %d", sku, f.Available, f.Held, f.Committed, f.Seed)
		}
	}
	sort.Strings(r.Problems)
	return r
}

func amount(lines []contracts.Line) int64 {
	var total int64
	for _, l := range lines {
		p, _ := contracts.FindProduct(l.SKU)
		total += int64(l.Qty) * p.PriceCents
	}
	return total
}

func sameLines(a, b []contracts.Line) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, l := range a {
		m[l.SKU] += l.Qty
	}
	for _, l := range b {
		m[l.SKU] -= l.Qty
	}
	for _, v := range m {
		if v != 0 {
			return false
		}
	}
	return true
}
