package inventory

import (
	"context"
	"errors"
	"time"

	"github.com/natsotel/reference/services/contracts"
	"github.com/natsotel/reference/services/internal/jsutil"
	"github.com/natsotel/reference/services/internal/rpc"
)

// reserve takes every line of an order or none. See the package documentation for the
// protocol and its limits.
func (s *Service) reserve(ctx context.Context, req *contracts.ReserveRequest) (contracts.Reservation, error) {
	if err := checkReserve(req); err != nil {
		return contracts.Reservation{}, err
	}
	if d := s.srv.Faults.Delay(ctx); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-s.quit: // stopping: do not hold shutdown for an injected delay
			t.Stop()
		}
	}
	order, lines := req.OrderID, sortedLines(req.Lines)

	// 1. Claim the order: the record in "reserving" state lists the lines to take, so
	// that anyone who later releases the order knows what to give back.
	exists, err := s.res.create(ctx, reservation{Reservation: contracts.Reservation{OrderID: order, Lines: lines, State: stateReserving}})
	if err != nil {
		return contracts.Reservation{}, unavailable(err)
	}
	if exists {
		cur, _, err := s.res.get(ctx, order)
		if err != nil {
			return contracts.Reservation{}, unavailable(err)
		}
		switch {
		case cur.State == contracts.ReservationReleased:
			return contracts.Reservation{}, errReleased(order)
		case !sameLines(cur.Lines, lines):
			return contracts.Reservation{}, rpc.Errorf(contracts.CodeConflict, "order %s already has a reservation with other lines", rpc.MaskDigits(order))
		case cur.State == contracts.ReservationHeld || cur.State == contracts.ReservationCommitted:
			return cur.Reservation, nil // idempotent retry: nothing taken again
		}
		// "reserving": a retry while the first attempt runs or after it died. Taking is
		// idempotent per order and SKU, so carry on alongside it.
	}

	// 2. Take the lines one by one, each a compare-and-set on its SKU.
	for _, l := range lines {
		short, available, err := s.stock.take(ctx, l.SKU, order, l.Qty)
		if err == nil && !short {
			continue
		}
		// 3a. Roll back: release the order first (so no one marks it held), then return
		// every unit it holds.
		res, rerr := s.res.transition(ctx, order, contracts.ReservationReleased, func(r reservation, found bool) (bool, error) {
			return found && r.State == stateReserving, nil
		})
		if rerr != nil {
			s.log.ErrorContext(ctx, "rolling back a reservation failed; the sweeper or a release will return its units", "order_id", order, "error", rerr)
			return contracts.Reservation{}, unavailable(rerr)
		}
		if res.State == contracts.ReservationHeld || res.State == contracts.ReservationCommitted {
			return res.Reservation, nil // another attempt completed the reservation meanwhile
		}
		if gerr := s.giveBackAll(ctx, order, res.Lines); gerr != nil {
			s.log.ErrorContext(ctx, "returning units failed; the sweeper or a release will return them", "order_id", order, "error", gerr)
		}
		if err != nil {
			return contracts.Reservation{}, unavailable(err)
		}
		return contracts.Reservation{}, rpc.Errorf(contracts.CodeConflict,
			"out of stock: %s (requested %d, available %d)", l.SKU, l.Qty, available)
	}

	// 3b. Every line is held: mark the reservation held, unless it was released meanwhile.
	res, err := s.res.transition(ctx, order, contracts.ReservationHeld, func(r reservation, found bool) (bool, error) {
		return found && r.State == stateReserving, nil
	})
	if err != nil {
		return contracts.Reservation{}, unavailable(err)
	}
	switch res.State {
	case contracts.ReservationHeld, contracts.ReservationCommitted:
		return res.Reservation, nil
	case contracts.ReservationReleased:
		if gerr := s.giveBackAll(ctx, order, res.Lines); gerr != nil {
			s.log.ErrorContext(ctx, "returning units failed; the sweeper or a release will return them", "order_id", order, "error", gerr)
		}
		return contracts.Reservation{}, errReleased(order)
	}
	return contracts.Reservation{}, errors.New("reservation vanished while reserving") // 500
}

// release returns the units an order holds. Idempotent. Releasing an order that has no
// reservation stores a released record without lines, so that a reserve arriving late
// (for example after the caller timed out and compensated) cannot take stock.
func (s *Service) release(ctx context.Context, ref *contracts.OrderRef) (contracts.Reservation, error) {
	if err := rpc.CheckID("order_id", ref.OrderID); err != nil {
		return contracts.Reservation{}, err
	}
	return s.releaseOrder(ctx, ref.OrderID)
}

func (s *Service) releaseOrder(ctx context.Context, order string) (contracts.Reservation, error) {
	res, err := s.res.transition(ctx, order, contracts.ReservationReleased, func(r reservation, found bool) (bool, error) {
		switch {
		case !found, r.State == stateReserving, r.State == contracts.ReservationHeld:
			return true, nil
		case r.State == contracts.ReservationCommitted:
			return false, errCommitted(order)
		}
		return false, nil // already released: return its units again (idempotent)
	})
	if err != nil {
		return contracts.Reservation{}, unavailable(err)
	}
	if err := s.giveBackAll(ctx, order, res.Lines); err != nil {
		return contracts.Reservation{}, unavailable(err)
	}
	return res.Reservation, nil
}

// commit marks a held reservation committed: its units are sold. Idempotent.
func (s *Service) commit(ctx context.Context, ref *contracts.OrderRef) (contracts.Reservation, error) {
	if err := rpc.CheckID("order_id", ref.OrderID); err != nil {
		return contracts.Reservation{}, err
	}
	return s.commitOrder(ctx, ref.OrderID)
}

func (s *Service) commitOrder(ctx context.Context, order string) (contracts.Reservation, error) {
	res, err := s.res.transition(ctx, order, contracts.ReservationCommitted, func(r reservation, found bool) (bool, error) {
		switch {
		case !found:
			return false, rpc.Errorf(contracts.CodeNotFound, "no reservation for order %s", rpc.MaskDigits(order))
		case r.State == contracts.ReservationHeld:
			return true, nil
		case r.State == stateReserving:
			return false, rpc.Errorf(contracts.CodeConflict, "reservation for order %s is not held yet", rpc.MaskDigits(order))
		case r.State == contracts.ReservationReleased:
			return false, errReleased(order)
		}
		return false, nil // already committed: drop its holds again (idempotent)
	})
	if err != nil {
		return res.Reservation, unavailable(err) // res: the state that refused the commit
	}
	for _, l := range res.Lines {
		if err := s.stock.consume(ctx, l.SKU, order); err != nil {
			return contracts.Reservation{}, unavailable(err)
		}
	}
	return res.Reservation, nil
}

// stockOf replies the units of a SKU available for reservation.
func (s *Service) stockOf(ctx context.Context, req *contracts.StockRequest) (contracts.Stock, error) {
	if req.SKU == "" {
		return contracts.Stock{}, rpc.BadRequest("sku is required")
	}
	if _, ok := contracts.FindProduct(req.SKU); !ok {
		return contracts.Stock{}, rpc.Errorf(contracts.CodeNotFound, "unknown sku %s", rpc.Echo(req.SKU))
	}
	r, _, err := s.stock.get(ctx, req.SKU)
	if jsutil.IsNotFound(err) {
		return contracts.Stock{}, rpc.Errorf(contracts.CodeNotFound, "no stock record for sku %s", req.SKU)
	}
	if err != nil {
		return contracts.Stock{}, unavailable(err)
	}
	return contracts.Stock{SKU: req.SKU, Available: r.Available}, nil
}

// giveBackAll returns the order's held units of every line.
func (s *Service) giveBackAll(ctx context.Context, order string, lines []contracts.Line) error {
	var errs []error
	for _, l := range lines {
		errs = append(errs, s.stock.giveBack(ctx, l.SKU, order))
	}
	return errors.Join(errs...)
}

// checkReserve validates a reserve request.
func checkReserve(req *contracts.ReserveRequest) *rpc.Error {
	if err := rpc.CheckID("order_id", req.OrderID); err != nil {
		return err
	}
	return rpc.CheckLines(req.Lines)
}

// unavailable passes an *rpc.Error through and turns any other error (the KV store did
// not answer, or contention outlasted the retries) into 503.
func unavailable(err error) error {
	var rerr *rpc.Error
	if errors.As(err, &rerr) {
		return rerr
	}
	if errors.Is(err, jsutil.ErrContention) {
		return rpc.Errorf(contracts.CodeUnavailable, "stock is busy, try again")
	}
	return rpc.Unavailable(err, "inventory store unavailable")
}
