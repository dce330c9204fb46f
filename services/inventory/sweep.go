package inventory

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/natsotel/reference/services/contracts"
)

// SweepReport counts what one Sweep repaired.
type SweepReport struct {
	Returned  int // holds of released orders given back to stock
	Committed int // holds of committed orders dropped
	Released  int // reservations stuck in "reserving" past Config.StaleAfter, released
}

// Sweep repairs what a crash in the middle of a multi-key update can leave behind. For
// every order holding units of a SKU it looks at the order's reservation:
//
//   - released: the units go back to stock (a release or rollback died halfway, or an
//     attempt added a hold after the order was released and died before undoing it);
//   - committed: the hold is dropped (a commit died halfway);
//   - "reserving" for longer than Config.StaleAfter: the attempt died; the order is
//     released (the caller has long timed out and compensated).
//
// Every step is the same idempotent operation the endpoints use, so sweeping
// concurrently with traffic and with other replicas is safe. Start runs it every
// Config.SweepInterval.
func (s *Service) Sweep(ctx context.Context) (SweepReport, error) {
	var (
		rep  SweepReport
		errs []error
	)
	for _, p := range contracts.Catalog {
		rec, _, err := s.stock.get(ctx, p.SKU)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for order := range rec.Held {
			res, _, err := s.res.get(ctx, order)
			switch {
			case errors.Is(err, errNoReservation):
				// Cannot happen (the claim precedes any hold) unless the record was deleted.
				s.log.WarnContext(ctx, "sweeper: hold without reservation, returning it", "sku", p.SKU, "order_id", order)
				err = s.stock.giveBack(ctx, p.SKU, order)
				rep.Returned++
			case err != nil:
			case res.State == contracts.ReservationReleased:
				err = s.stock.giveBack(ctx, p.SKU, order)
				rep.Returned++
			case res.State == contracts.ReservationCommitted:
				err = s.stock.consume(ctx, p.SKU, order)
				rep.Committed++
			case res.State == stateReserving && s.res.now().Sub(res.UpdatedAt) > s.cfg.StaleAfter:
				_, err = s.releaseOrder(ctx, order)
				rep.Released++
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("sweeping %s of order %s: %w", p.SKU, order, err))
			}
		}
	}
	if n := rep.Returned + rep.Committed + rep.Released; n > 0 {
		s.log.InfoContext(ctx, "sweeper repaired holds", "returned", rep.Returned, "committed", rep.Committed, "released", rep.Released)
	}
	return rep, errors.Join(errs...)
}

// sweepLoop runs Sweep every interval until quit is closed.
func (s *Service) sweepLoop(interval time.Duration) {
	defer close(s.sweepDone)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.quit:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), interval)
			if _, err := s.Sweep(ctx); err != nil {
				s.log.WarnContext(ctx, "sweep failed", "error", err)
			}
			cancel()
		}
	}
}
