package order

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"

	"github.com/natsotel/reference/services/contracts"
	"github.com/natsotel/reference/services/internal/jsutil"
	"github.com/natsotel/reference/services/internal/rpc"
)

// Idempotency keys (contracts.CreateOrderRequest.IdempotencyKey) live in the orders
// bucket next to the orders, under "idem.<key>" (two subject tokens, so a reader of the
// order records, filtered by contracts.OrderKeys, leaves them out; order.get's ids
// cannot contain a '.', so it cannot read them). The value names the order the key was first used for.
//
// Two compare-and-sets make a key worth one order whatever replica, restart or
// concurrent retry is involved:
//
//  1. claim: Create("idem.<key>") with a new order id; whoever loses reads the winner's
//     order id instead. Every create with the key now uses the same order id.
//  2. Create(order id) of the pending order, as every create does: one request wins and
//     goes on to reserve and charge; the others answer with the stored order (replay).
//
// A process that died between the two leaves a key without its order: the next create
// with the key wins step 2 and places it. Billing charges once per order id, so one key
// is at most one charge.
const idemPrefix = "idem."

// idemEntry is the value of an idempotency key.
type idemEntry struct {
	OrderID string `json:"order_id"`
	// Request identifies what was asked (customer and lines), so that a key reused for
	// another order is refused. The card is left out: nothing derived from a full card
	// number is stored (a hash of one is easily reversed).
	Request string `json:"request"`
}

// requestDigest is idemEntry.Request for req.
func requestDigest(req *contracts.CreateOrderRequest) string {
	b, _ := json.Marshal(struct {
		CustomerID string           `json:"customer_id"`
		Lines      []contracts.Line `json:"lines"`
	}{req.CustomerID, req.Lines})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// claim returns the order id of req's idempotency key: id if this is the key's first use
// (it is stored), else the order id stored with it.
func (s *Service) claim(ctx context.Context, req *contracts.CreateOrderRequest, id string) (string, error) {
	key := idemPrefix + req.IdempotencyKey
	digest := requestDigest(req)
	data, err := json.Marshal(idemEntry{OrderID: id, Request: digest})
	if err != nil {
		return "", err
	}
	for attempt := 1; attempt <= 3; attempt++ {
		_, err := s.orders.Create(ctx, key, data)
		if err == nil {
			return id, nil
		}
		if !jsutil.IsConflict(err) {
			// It may have landed: a retry with the key finds it, with this request's digest.
			return "", rpc.Unavailable(err, "order store unavailable")
		}
		e, err := s.orders.Get(ctx, key)
		if jsutil.IsNotFound(err) {
			continue // removed meanwhile (by an operator): claim it again
		}
		if err != nil {
			return "", rpc.Unavailable(err, "order store unavailable")
		}
		var prev idemEntry
		if err := json.Unmarshal(e.Value(), &prev); err != nil || prev.OrderID == "" {
			return "", rpc.Errorf(contracts.CodeInternal, "idempotency_key: unreadable record")
		}
		if prev.Request != digest {
			return "", rpc.Errorf(contracts.CodeConflict, "idempotency_key was already used for a different order (another customer or other lines)")
		}
		return prev.OrderID, nil
	}
	return "", rpc.Unavailable(jsutil.ErrContention, "order store busy, try again")
}

// replay answers a create whose order an earlier create with the same idempotency key
// stored: as that create answered (the order, or the micro error of its failure with
// the order as body), or 503 with the order while it is still pending.
func (s *Service) replay(ctx context.Context, id string) (contracts.Order, error) {
	e, err := s.orders.Get(ctx, id)
	if err != nil {
		return contracts.Order{}, rpc.Unavailable(err, "order store unavailable")
	}
	rec, err := decodeRecord(id, e.Value())
	if err != nil {
		return contracts.Order{}, err
	}
	o := rec.Order
	body, _ := json.Marshal(o)
	switch o.Status {
	case contracts.OrderConfirmed:
		return o, nil
	case contracts.OrderFailed:
		code, desc, ok := strings.Cut(o.Reason, " ")
		if !ok || !isErrorCode(code) {
			code, desc = contracts.CodeConflict, o.Reason
		}
		return o, &rpc.Error{Code: code, Description: "order " + o.ID + " failed: " + desc, Data: body}
	default:
		return o, &rpc.Error{Code: contracts.CodeUnavailable, Description: "order " + o.ID + " is pending: a create with the same idempotency key is in progress; retry with the key", Data: body}
	}
}

// isErrorCode reports whether s is a micro error code the order service answers with
// (three digits, 400-599).
func isErrorCode(s string) bool {
	return len(s) == 3 && s[0] >= '4' && s[0] <= '5' && s[1] >= '0' && s[1] <= '9' && s[2] >= '0' && s[2] <= '9'
}
