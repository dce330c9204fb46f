package faultkit

import (
	"fmt"
	"sort"
	"strings"

	"github.com/natsotel/reference/loadgen/load"
	"github.com/natsotel/reference/services/contracts"
)

// LoadReport compares what the load generator was told with the durable state.
type LoadReport struct {
	// Sent, Confirmed, Failed are the load generator's figures: requests sent, orders it
	// was told are confirmed or failed.
	Sent, Confirmed, Failed int
	// Lost are orders the load generator was told are confirmed that are not confirmed
	// in KeyValue (must be 0), plus orders it was told failed that are not failed.
	Lost []string
	// NoAnswer counts order.create requests that got no definite answer (timeout,
	// no_responders, 503, ...) by the final status in KeyValue of the order they created
	// ("none" when the reply carried no order id, so the order, if any, cannot be told).
	NoAnswer map[string]int
	// Unknown is the number of orders in KeyValue the load generator never heard of (their
	// replies were lost), by status.
	Unknown map[string]int
}

// String renders the figures.
func (r LoadReport) String() string {
	return fmt.Sprintf("loadgen: sent %d, told confirmed %d, told failed %d, lost %d; creates without a definite answer, by final state: %s; orders in KV the loadgen never heard of: %s",
		r.Sent, r.Confirmed, r.Failed, len(r.Lost), FormatCounts(r.NoAnswer), FormatCounts(r.Unknown))
}

// CheckLoad checks that every order the load generator saw confirmed is confirmed in s,
// and every one it saw failed is failed, and accounts for the orders whose outcome it
// never learnt.
func CheckLoad(s State, sum load.Summary, calls []Call) LoadReport {
	r := LoadReport{Sent: int(sum.Sent), Confirmed: len(sum.Confirmed), Failed: len(sum.Failed),
		NoAnswer: map[string]int{}, Unknown: map[string]int{}}
	for _, id := range sum.Confirmed {
		if o, ok := s.Orders[id]; !ok || o.Status != contracts.OrderConfirmed {
			r.Lost = append(r.Lost, fmt.Sprintf("%s: loadgen saw confirmed, KV has %q", id, o.Status))
		}
	}
	for _, id := range sum.Failed {
		if o, ok := s.Orders[id]; !ok || o.Status != contracts.OrderFailed {
			r.Lost = append(r.Lost, fmt.Sprintf("%s: loadgen saw failed, KV has %q", id, o.Status))
		}
	}
	sort.Strings(r.Lost)
	known := map[string]bool{}
	for _, c := range calls {
		if c.Subject != contracts.SubjectOrderCreate {
			continue
		}
		if c.OrderID != "" {
			known[c.OrderID] = true
		}
		if definite(c) {
			continue
		}
		final := "none"
		if c.OrderID != "" {
			final = string(s.Orders[c.OrderID].Status)
		}
		r.NoAnswer[c.Outcome+"->"+final]++
	}
	for id, o := range s.Orders {
		if !known[id] {
			r.Unknown[string(o.Status)]++
		}
	}
	return r
}

// definite reports whether a create call told its caller the order's outcome: confirmed,
// or a business refusal (400, 402, 409, 413).
func definite(c Call) bool {
	switch c.Outcome {
	case load.OutcomeOK, contracts.CodeBadRequest, contracts.CodePaymentDeclined, contracts.CodeConflict, contracts.CodeTooLarge:
		return true
	}
	return false
}

// Business reports whether outcome is an answer the shop gives by design: ok, or a
// 4xx micro code (bad input, declined, not found, out of stock, too large).
func Business(outcome string) bool {
	return outcome == load.OutcomeOK || (len(outcome) == 3 && strings.HasPrefix(outcome, "4"))
}
