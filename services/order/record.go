package order

import (
	"encoding/json"
	"fmt"

	"github.com/natsotel/reference/services/contracts"
)

// record is the value stored in contracts.BucketOrders: the order (its JSON fields at the
// top level, so readers decoding a contracts.Order see just the order), plus, while a
// failed order's compensation is not known to be complete, the steps still to do.
//
// The failure is stored together with its compensation steps in one compare-and-set,
// and the steps are cleared (another compare-and-set) only once they all succeeded. A
// process that dies in between leaves the steps in the bucket, where reconciliation
// (ReconcileAll, run periodically) finds and finishes them.
type record struct {
	contracts.Order
	Compensate *compensation `json:"compensate,omitempty"`
}

// compensation lists the steps of a failed order that may still be owed. Every step is
// idempotent, so running one twice is harmless.
type compensation struct {
	Refund  bool `json:"refund,omitempty"`  // refund (or void) the order's payment
	Release bool `json:"release,omitempty"` // return the reservation's stock
}

// unfinished reports whether the record needs more work: still pending (the decision
// was never stored), or failed with compensation outstanding.
func (r *record) unfinished() bool {
	return r.Status == contracts.OrderPending || (r.Status == contracts.OrderFailed && r.Compensate != nil)
}

func decodeRecord(id string, data []byte) (record, error) {
	var r record
	if err := json.Unmarshal(data, &r); err != nil {
		return record{}, fmt.Errorf("order %s: %w", id, err)
	}
	return r, nil
}
