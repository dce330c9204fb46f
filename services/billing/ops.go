package billing

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/natsotel/reference/services/contracts"
	"github.com/natsotel/reference/services/internal/card"
	"github.com/natsotel/reference/services/internal/jsutil"
	"github.com/natsotel/reference/services/internal/rpc"
)

// checkCharge validates a charge request. The card number is never part of a description.
func checkCharge(req *contracts.ChargeRequest) *rpc.Error {
	if err := rpc.CheckID("order_id", req.OrderID); err != nil {
		return err
	}
	if req.AmountCents <= 0 {
		return rpc.BadRequest("amount_cents must be positive")
	}
	if req.Card == "" {
		return rpc.BadRequest("card is required")
	}
	if card.Check(req.Card) != nil {
		return rpc.BadRequest("card: %v", card.ErrInvalid)
	}
	return nil
}

// charge captures a payment for an order, once. The decline rules, in order:
//
//	card contracts.CardDeclined            402 "card declined"
//	amount over contracts.ChargeLimitCents 402 "amount over the limit of N cents"
//	decline fault (DeclineShare)           402 "card declined (injected fault)"
//
// Idempotency: the payment is stored under the order id with a create-if-absent, so a
// retried or concurrent charge for the same order returns the existing payment and
// never charges twice. A different amount for an order already charged is 409; an order
// that was refunded or voided (refund arrived first) is 409 and is never charged.
func (s *Service) charge(ctx context.Context, req *contracts.ChargeRequest) (contracts.Payment, error) {
	if err := checkCharge(req); err != nil {
		return contracts.Payment{}, err
	}
	if p, found, err := s.lookup(ctx, req.OrderID); err != nil {
		return contracts.Payment{}, err
	} else if found {
		return existing(p, req)
	}
	switch {
	case req.Card == contracts.CardDeclined:
		return contracts.Payment{}, rpc.Errorf(contracts.CodePaymentDeclined, "card declined")
	case req.AmountCents > contracts.ChargeLimitCents:
		return contracts.Payment{}, rpc.Errorf(contracts.CodePaymentDeclined, "amount over the limit of %d cents", contracts.ChargeLimitCents)
	case s.srv.Faults.Decline(ctx):
		return contracts.Payment{}, rpc.Errorf(contracts.CodePaymentDeclined, "card declined (injected fault)")
	}
	p := contracts.Payment{
		ID:          newPaymentID(),
		OrderID:     req.OrderID,
		AmountCents: req.AmountCents,
		CardLast4:   card.Last4(req.Card),
		Status:      contracts.PaymentCaptured,
		CreatedAt:   s.cfg.Now().UTC(),
	}
	data, err := json.Marshal(p)
	if err != nil {
		return contracts.Payment{}, err
	}
	if _, err := s.kv.Create(ctx, req.OrderID, data); err != nil {
		if !jsutil.IsConflict(err) {
			return contracts.Payment{}, rpc.Unavailable(err, "payment store unavailable")
		}
		// A concurrent charge (or a refund) for this order won: answer with its record.
		cur, found, err := s.lookup(ctx, req.OrderID)
		if err != nil {
			return contracts.Payment{}, err
		}
		if !found {
			return contracts.Payment{}, rpc.Unavailable(nil, "payment store unavailable")
		}
		return existing(cur, req)
	}
	return p, nil
}

// existing answers a charge for an order that already has a payment record.
func existing(p contracts.Payment, req *contracts.ChargeRequest) (contracts.Payment, error) {
	switch {
	case p.Status != contracts.PaymentCaptured:
		return contracts.Payment{}, rpc.Errorf(contracts.CodeConflict, "payment for order %s is %s; it cannot be charged", rpc.MaskDigits(req.OrderID), p.Status)
	case p.AmountCents != req.AmountCents:
		return contracts.Payment{}, rpc.Errorf(contracts.CodeConflict, "order %s was already charged a different amount", rpc.MaskDigits(req.OrderID))
	}
	return p, nil // idempotent retry
}

// refund refunds an order's captured payment. Idempotent. When the order has no payment
// yet, a voided record is stored instead, so that a charge arriving late (the caller
// timed out and compensated) can never capture.
func (s *Service) refund(ctx context.Context, ref *contracts.OrderRef) (contracts.Payment, error) {
	if err := rpc.CheckID("order_id", ref.OrderID); err != nil {
		return contracts.Payment{}, err
	}
	for attempt := 1; attempt <= 20; attempt++ {
		e, err := s.kv.Get(ctx, ref.OrderID)
		if jsutil.IsNotFound(err) {
			void := contracts.Payment{OrderID: ref.OrderID, Status: contracts.PaymentVoided, CreatedAt: s.cfg.Now().UTC()}
			data, _ := json.Marshal(void)
			if _, err := s.kv.Create(ctx, ref.OrderID, data); err == nil {
				return void, nil
			} else if !jsutil.IsConflict(err) {
				return contracts.Payment{}, rpc.Unavailable(err, "payment store unavailable")
			}
			continue // a charge just landed: refund it
		}
		if err != nil {
			return contracts.Payment{}, rpc.Unavailable(err, "payment store unavailable")
		}
		var p contracts.Payment
		if err := json.Unmarshal(e.Value(), &p); err != nil {
			return contracts.Payment{}, fmt.Errorf("payment %s: %w", ref.OrderID, err)
		}
		if p.Status != contracts.PaymentCaptured {
			return p, nil // refunded or voided already
		}
		p.Status = contracts.PaymentRefunded
		data, _ := json.Marshal(p)
		if _, err := s.kv.Update(ctx, ref.OrderID, data, e.Revision()); err == nil {
			return p, nil
		} else if !jsutil.IsConflict(err) {
			return contracts.Payment{}, rpc.Unavailable(err, "payment store unavailable")
		}
	}
	return contracts.Payment{}, rpc.Unavailable(jsutil.ErrContention, "payment store busy, try again")
}

// payment returns an order's payment record.
func (s *Service) payment(ctx context.Context, ref *contracts.OrderRef) (contracts.Payment, error) {
	if err := rpc.CheckID("order_id", ref.OrderID); err != nil {
		return contracts.Payment{}, err
	}
	p, found, err := s.lookup(ctx, ref.OrderID)
	if err != nil {
		return contracts.Payment{}, err
	}
	if !found {
		return contracts.Payment{}, rpc.Errorf(contracts.CodeNotFound, "no payment for order %s", rpc.MaskDigits(ref.OrderID))
	}
	return p, nil
}

func (s *Service) lookup(ctx context.Context, order string) (contracts.Payment, bool, error) {
	e, err := s.kv.Get(ctx, order)
	if jsutil.IsNotFound(err) {
		return contracts.Payment{}, false, nil
	}
	if err != nil {
		return contracts.Payment{}, false, rpc.Unavailable(err, "payment store unavailable")
	}
	var p contracts.Payment
	if err := json.Unmarshal(e.Value(), &p); err != nil {
		return contracts.Payment{}, false, fmt.Errorf("payment %s: %w", order, err)
	}
	return p, true, nil
}

func newPaymentID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "pay-" + hex.EncodeToString(b[:])
}
