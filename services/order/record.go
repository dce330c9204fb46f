package order

import (
	"encoding/json"
	"fmt"

	"github.com/natsotel/reference/services/contracts"
)

// record is the value stored in contracts.BucketOrders: the order (its JSON fields at the
// top level, so readers decoding a contracts.Order see just the order), plus what is
// still owed once the outcome is decided: a failed order's compensation steps, and a
// confirmed order's event.
//
// The outcome is stored together with what it owes in one compare-and-set, and the
// debts are cleared (another compare-and-set) only once they are all paid. A process
// that dies in between leaves them in the bucket, where reconciliation (ReconcileAll,
// run periodically) finds and finishes them.
type record struct {
	contracts.Order
	Compensate *compensation `json:"compensate,omitempty"`
	// EventOwed marks a confirmed order whose confirmed event is not known to be in the
	// stream. Inventory commits the reservation on that event: without it the stock
	// stays held (taken, so never oversold, but never committed either).
	EventOwed bool `json:"event_owed,omitempty"`
}

// compensation lists the steps of a failed order that may still be owed. Every step is
// idempotent, so running one twice is harmless.
type compensation struct {
	Refund  bool `json:"refund,omitempty"`  // refund (or void) the order's payment
	Release bool `json:"release,omitempty"` // return the reservation's stock
}

// owes reports whether the decided record lists work still to do.
func (r *record) owes() bool { return r.Compensate != nil || r.EventOwed }

// unfinished reports whether the record needs more work: still pending (the decision
// was never stored), or decided with compensation or the event outstanding.
func (r *record) unfinished() bool {
	return r.Status == contracts.OrderPending || r.owes()
}

func decodeRecord(id string, data []byte) (record, error) {
	var r record
	if err := json.Unmarshal(data, &r); err != nil {
		return record{}, fmt.Errorf("order %s: %w", id, err)
	}
	return r, nil
}
