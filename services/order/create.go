package order

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"slices"

	"github.com/natsotel/reference/services/contracts"
	"github.com/natsotel/reference/services/internal/card"
	"github.com/natsotel/reference/services/internal/jsutil"
	"github.com/natsotel/reference/services/internal/rpc"
)

// checkCreate validates a create request. Descriptions name fields, never the customer
// id or the card number.
func checkCreate(req *contracts.CreateOrderRequest) *rpc.Error {
	if err := rpc.CheckID("customer_id", req.CustomerID); err != nil {
		return err
	}
	if err := rpc.CheckLines(req.Lines); err != nil {
		return err
	}
	if req.Card == "" {
		return rpc.BadRequest("card is required")
	}
	if card.Check(req.Card) != nil {
		return rpc.BadRequest("card: %v", card.ErrInvalid)
	}
	if req.IdempotencyKey != "" {
		if err := rpc.CheckID("idempotency_key", req.IdempotencyKey); err != nil {
			return err
		}
	}
	return nil
}

// amount is the order total. Bounded by MaxLines * MaxQty * the highest price: no overflow.
func amount(lines []contracts.Line) int64 {
	var total int64
	for _, l := range lines {
		p, _ := contracts.FindProduct(l.SKU)
		total += int64(l.Qty) * p.PriceCents
	}
	return total
}

// create runs one order: store it pending, reserve, charge, then decide (confirmed or
// failed) and compensate. See the package documentation for the invariants.
func (s *Service) create(ctx context.Context, req *contracts.CreateOrderRequest) (contracts.Order, error) {
	if err := checkCreate(req); err != nil {
		return contracts.Order{}, err
	}
	id := newOrderID()
	if req.IdempotencyKey != "" {
		var err error
		if id, err = s.claim(ctx, req, id); err != nil {
			return contracts.Order{}, err
		}
	}
	now := s.cfg.Now().UTC()
	o := contracts.Order{
		ID:          id,
		CustomerID:  req.CustomerID,
		Lines:       slices.Clone(req.Lines),
		AmountCents: amount(req.Lines),
		Status:      contracts.OrderPending,
		CreatedAt:   now,
		UpdatedAt:   now,
	}
	data, err := json.Marshal(o)
	if err != nil {
		return contracts.Order{}, err
	}
	rev, err := s.orders.Create(ctx, o.ID, data)
	if err != nil && req.IdempotencyKey != "" && jsutil.IsConflict(err) {
		// An earlier create with this key stored the order: it alone reserves and
		// charges. Answer with the order as it is now.
		return s.replay(ctx, o.ID)
	}
	if err != nil {
		// Nothing was reserved or charged. If the write did land after all, the order
		// stays pending with nothing attached (ReconcileAll fails it).
		return contracts.Order{}, rpc.Unavailable(err, "order store unavailable")
	}
	w := &work{order: o, rev: rev}

	// Reserve every line or none.
	var resv contracts.Reservation
	if cerr := s.call(ctx, "inventory", contracts.SubjectInventoryReserve, contracts.ReserveRequest{OrderID: o.ID, Lines: o.Lines}, &resv); cerr != nil {
		// Refused: inventory took nothing. Unknown: release (a release of an order
		// inventory never saw blocks a late reserve of it).
		w.release = cerr.outcome == unknown
		return s.conclude(ctx, w, cerr)
	}
	w.release = true // from here on, failing returns the stock

	// Charge. A charge whose outcome is unknown is retried once: it is idempotent per
	// order, so the retry returns the payment if the first one was captured. Once any
	// attempt's outcome was unknown, the order may be charged whatever the retry says (the
	// first capture's reply was lost and the retry was declined, or found no responders):
	// failing then refunds, which voids the order's payment if none was captured, so a
	// late charge cannot capture either.
	var pay contracts.Payment
	chargeReq := contracts.ChargeRequest{OrderID: o.ID, AmountCents: o.AmountCents, Card: req.Card}
	cerr := s.call(ctx, "billing", contracts.SubjectBillingCharge, chargeReq, &pay)
	maybeCharged := false
	if cerr != nil && cerr.outcome == unknown {
		maybeCharged = true
		s.log.WarnContext(ctx, "charge outcome unknown, retrying once", "order_id", o.ID, "error", cerr.desc)
		cerr = s.call(ctx, "billing", contracts.SubjectBillingCharge, chargeReq, &pay)
	}
	if cerr != nil {
		w.refund = maybeCharged || cerr.outcome == unknown
		return s.conclude(ctx, w, cerr)
	}
	w.refund = true // from here on, failing refunds
	w.order.PaymentID = pay.ID
	return s.conclude(ctx, w, nil)
}

// conclude decides the order (confirmed when cerr is nil, else failed with cerr's
// reason), compensates, publishes the event, and builds the reply. Work that cannot be
// finished now is retried in the background.
func (s *Service) conclude(ctx context.Context, w *work, cerr *callError) (contracts.Order, error) {
	if cerr == nil {
		w.order.Status = contracts.OrderConfirmed
	} else {
		w.order.Status = contracts.OrderFailed
		w.order.Reason = cerr.code + " " + cerr.desc
	}
	ferr := s.finish(ctx, w)
	o, decided := w.order, w.decided // w belongs to the background loop after retryLater
	if ferr != nil {
		s.log.WarnContext(ctx, "order not finished, retrying in the background", "order_id", o.ID, "error", ferr)
		s.retryLater(ctx, w)
	}
	body, _ := json.Marshal(o)
	switch {
	case !decided:
		return o, &rpc.Error{Code: contracts.CodeUnavailable, Description: "order " + o.ID + " is pending: its outcome could not be stored yet", Data: body, Cause: ferr}
	case o.Status == contracts.OrderConfirmed:
		s.log.InfoContext(ctx, "order confirmed", "order_id", o.ID, "amount_cents", o.AmountCents, "lines", len(o.Lines))
		return o, nil
	case cerr != nil && cerr.code != contracts.CodeInternal:
		return o, &rpc.Error{Code: cerr.code, Description: "order " + o.ID + " failed: " + cerr.desc, Data: body, Cause: cerr.err}
	default:
		// Failed for a reason found in the store (another process decided it).
		return o, &rpc.Error{Code: contracts.CodeConflict, Description: "order " + o.ID + " failed: " + o.Reason, Data: body}
	}
}

func newOrderID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return "ord-" + hex.EncodeToString(b[:])
}

// get replies an order.
func (s *Service) get(ctx context.Context, req *contracts.GetOrderRequest) (contracts.Order, error) {
	if err := rpc.CheckID("id", req.ID); err != nil {
		return contracts.Order{}, err
	}
	e, err := s.orders.Get(ctx, req.ID)
	if jsutil.IsNotFound(err) {
		return contracts.Order{}, rpc.Errorf(contracts.CodeNotFound, "order %s not found", rpc.MaskDigits(req.ID))
	}
	if err != nil {
		return contracts.Order{}, rpc.Unavailable(err, "order store unavailable")
	}
	var o contracts.Order
	if err := json.Unmarshal(e.Value(), &o); err != nil {
		return contracts.Order{}, err
	}
	return o, nil
}
