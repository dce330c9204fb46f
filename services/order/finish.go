package order

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natsotel/reference/services/contracts"
	"github.com/natsotel/reference/services/internal/jsutil"
)

// work is an order on its way to a final state.
type work struct {
	order     contracts.Order // Status is the intended (or, once decided, the stored) outcome
	rev       uint64          // revision of the stored record (pending, then decided); 0 if unknown
	decided   bool            // the outcome is stored in the orders bucket
	refund    bool            // failing must refund (or void) the payment
	release   bool            // failing must release the reservation
	published bool            // the outcome event is in the stream
	marked    bool            // the stored record lists work owed (record.owes), to clear once done
	attempts  int             // background attempts so far
}

// finish drives w to its end: store the decision, then (failed) refund and release,
// publish the outcome event, and record that nothing is owed any more. Every step is
// idempotent and remembered in w, so finish can be called again after an error until it
// returns nil. A failing step does not stop the others: with billing down, the refund
// waits but the stock is returned and the event published all the same.
func (s *Service) finish(ctx context.Context, w *work) error {
	if !w.decided {
		if err := s.decide(ctx, w); err != nil {
			return err
		}
	}
	o := &w.order
	var errs []error
	if o.Status == contracts.OrderFailed {
		if w.refund {
			var p contracts.Payment
			if cerr := s.call(ctx, "billing", contracts.SubjectBillingRefund, contracts.OrderRef{OrderID: o.ID}, &p); cerr != nil {
				errs = append(errs, fmt.Errorf("refunding: %w", cerr))
			} else {
				w.refund = false
			}
		}
		if w.release {
			var r contracts.Reservation
			if cerr := s.call(ctx, "inventory", contracts.SubjectInventoryRelease, contracts.OrderRef{OrderID: o.ID}, &r); cerr != nil {
				// The failed event makes inventory release it: only give up on the
				// synchronous release when that event is published.
				s.log.WarnContext(ctx, "release failed; the order event will release", "order_id", o.ID, "error", cerr.desc)
			} else {
				w.release = false
			}
		}
	}
	if !w.published {
		if err := s.publish(ctx, o); err != nil {
			switch {
			case o.Status == contracts.OrderFailed && w.release:
				errs = append(errs, fmt.Errorf("publishing the failed event (stock still held): %w", err))
			case o.Status == contracts.OrderConfirmed:
				// Without the event the reservation stays held rather than committed:
				// the stock is still taken, so the invariant holds. The stored record
				// says the event is owed, so it is retried here and by reconciliation.
				errs = append(errs, fmt.Errorf("publishing the confirmed event: %w", err))
			default:
				s.log.WarnContext(ctx, "publishing the failed event failed; nothing depends on it", "order_id", o.ID, "error", err)
				w.published = true
			}
		} else {
			w.published = true
		}
	}
	if len(errs) == 0 && w.marked {
		if err := s.markDone(ctx, w); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// decide stores w.order's outcome with a compare-and-set on the pending record's
// revision; a failure is stored with the compensation it needs, a confirmation with its
// event owed (see record). Only a
// pending record is overwritten: if the record is already final (an earlier attempt
// whose acknowledgement was lost, or reconciliation), that outcome is adopted, with the
// compensation it lists, and the compensations that do not fit it are dropped.
func (s *Service) decide(ctx context.Context, w *work) error {
	for attempt := 1; attempt <= 3; attempt++ {
		if w.rev != 0 {
			w.order.UpdatedAt = s.cfg.Now().UTC()
			rec := record{Order: w.order}
			if w.order.Status == contracts.OrderFailed && (w.refund || w.release) {
				rec.Compensate = &compensation{Refund: w.refund, Release: w.release}
			}
			rec.EventOwed = w.order.Status == contracts.OrderConfirmed && !w.published
			data, err := json.Marshal(rec)
			if err != nil {
				return err
			}
			if rev, err := s.orders.Update(ctx, w.order.ID, data, w.rev); err == nil {
				w.rev, w.decided, w.marked = rev, true, rec.owes()
				return nil
			} else if !jsutil.IsConflict(err) {
				// The write may or may not have landed: read it back below.
				s.log.WarnContext(ctx, "storing the order outcome failed", "order_id", w.order.ID, "error", err)
			}
		}
		e, err := s.orders.Get(ctx, w.order.ID)
		if err != nil {
			return fmt.Errorf("reading order %s: %w", w.order.ID, err)
		}
		stored, err := decodeRecord(w.order.ID, e.Value())
		if err != nil {
			return err
		}
		if stored.Status == contracts.OrderPending {
			w.rev = e.Revision()
			continue
		}
		if stored.Status != w.order.Status {
			s.log.InfoContext(ctx, "adopting the stored outcome", "order_id", w.order.ID, "stored", string(stored.Status), "intended", string(w.order.Status))
		}
		switch stored.Status {
		case contracts.OrderConfirmed:
			// Confirmed by the request path (possibly racing reconciliation): keep it,
			// and compensate nothing. Compensation only ever runs after a stored failure.
			// Its event is owed only if the record says so.
			w.refund, w.release = false, false
			w.published = !stored.EventOwed
		case contracts.OrderFailed:
			if c := stored.Compensate; c != nil {
				w.refund = w.refund || c.Refund
				w.release = w.release || c.Release
			}
		}
		w.order = stored.Order
		w.rev = e.Revision()
		w.marked = stored.owes()
		w.decided = true
		return nil
	}
	return fmt.Errorf("order %s: %w", w.order.ID, jsutil.ErrContention)
}

// markDone clears what w's stored record owes (compensation steps, the event) once it
// is all done. If the record changed meanwhile (another replica's reconciliation got
// there first), it is read back: already clear is success.
func (s *Service) markDone(ctx context.Context, w *work) error {
	id := w.order.ID
	data, err := json.Marshal(record{Order: w.order})
	if err != nil {
		return err
	}
	for attempt := 1; attempt <= 3; attempt++ {
		rev, err := s.orders.Update(ctx, id, data, w.rev)
		if err == nil {
			w.rev, w.marked = rev, false
			return nil
		}
		if !jsutil.IsConflict(err) {
			// It may have landed: the next attempt gets a conflict and reads it back.
			return fmt.Errorf("recording order %s finished: %w", id, err)
		}
		e, err := s.orders.Get(ctx, id)
		if err != nil {
			return fmt.Errorf("reading order %s: %w", id, err)
		}
		stored, err := decodeRecord(id, e.Value())
		if err != nil {
			return err
		}
		if !stored.owes() {
			w.marked = false
			return nil
		}
		w.rev = e.Revision()
	}
	return fmt.Errorf("order %s: %w", id, jsutil.ErrContention)
}

// publish sends the outcome event. Nats-Msg-Id = order id + status, so a retry within
// the stream's duplicate window is stored once.
func (s *Service) publish(ctx context.Context, o *contracts.Order) error {
	subject := contracts.SubjectOrderFailed
	if o.Status == contracts.OrderConfirmed {
		subject = contracts.SubjectOrderConfirmed
	}
	data, err := json.Marshal(contracts.OrderEvent{OrderID: o.ID, Status: o.Status, Lines: o.Lines})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	_, err = s.js.Publish(ctx, subject, data, jetstream.WithMsgID(o.ID+":"+string(o.Status)))
	return err
}

// retryLater queues w for the background loop, unless Config.MaxUnresolved orders are
// queued already: beyond that, w is left to reconciliation, which finds what it needs in
// the orders bucket (a pending order, a failed one whose compensation is recorded as
// outstanding, or a confirmed one whose event is).
func (s *Service) retryLater(ctx context.Context, w *work) {
	s.mu.Lock()
	_, known := s.unresolved[w.order.ID]
	full := !known && len(s.unresolved) >= s.cfg.MaxUnresolved
	if !full {
		s.unresolved[w.order.ID] = w
	}
	n := len(s.unresolved)
	s.mu.Unlock()
	if !full {
		return
	}
	s.overflow.Add(1)
	s.log.WarnContext(ctx, "too many unresolved orders: leaving this one to reconciliation", "order_id", w.order.ID, "unresolved", n)
}

// Unresolved returns the ids of orders whose end (decision, compensation or event) is
// still being retried in the background.
func (s *Service) Unresolved() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.unresolved))
	for id := range s.unresolved {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// UnresolvedCount returns how many orders are being retried in the background, and how
// many were not queued because Config.MaxUnresolved was reached (left to
// reconciliation) since Start.
func (s *Service) UnresolvedCount() (queued int, overflowed int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.unresolved), s.overflow.Load()
}

func (s *Service) isUnresolved(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.unresolved[id]
	return ok
}

// retryWorkers bounds the orders finished concurrently by a retry or reconciliation pass.
const retryWorkers = 8

// retryAll calls finish on every unresolved order once, a few at a time.
func (s *Service) retryAll(ctx context.Context) {
	s.mu.Lock()
	ws := make([]*work, 0, len(s.unresolved))
	for _, w := range s.unresolved {
		ws = append(ws, w)
	}
	s.mu.Unlock()
	if len(ws) == 0 {
		return
	}
	var resolved atomic.Int64
	forEach(ctx, ws, retryWorkers, func(w *work) {
		w.attempts++
		if err := s.finish(ctx, w); err != nil {
			s.log.DebugContext(ctx, "order still unresolved", "order_id", w.order.ID, "attempts", w.attempts, "error", err)
			return
		}
		s.log.InfoContext(ctx, "order resolved in the background", "order_id", w.order.ID, "status", string(w.order.Status), "attempts", w.attempts)
		resolved.Add(1)
		s.mu.Lock()
		if s.unresolved[w.order.ID] == w {
			delete(s.unresolved, w.order.ID)
		}
		s.mu.Unlock()
	})
	if left, overflowed := s.UnresolvedCount(); left > 0 {
		s.log.WarnContext(ctx, "orders still unresolved after a retry pass", "unresolved", left, "resolved", resolved.Load(), "left_to_reconciliation", overflowed)
	}
}

// forEach calls fn for every item, at most workers at a time, until ctx ends.
func forEach[T any](ctx context.Context, items []T, workers int, fn func(T)) {
	ch := make(chan T)
	var wg sync.WaitGroup
	for range min(workers, len(items)) {
		wg.Go(func() {
			for it := range ch {
				fn(it)
			}
		})
	}
	for _, it := range items {
		if ctx.Err() != nil {
			break
		}
		ch <- it
	}
	close(ch)
	wg.Wait()
}

// every runs pass every interval, with a context that ends after timeout or when Stop
// closes quit (which also cuts a running pass short), until quit is closed; then it closes
// done. The retry loop (retryAll) and reconciliation (ReconcileAll) run this way.
func (s *Service) every(interval, timeout time.Duration, done chan struct{}, pass func(context.Context)) {
	defer close(done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.quit:
			return
		case <-t.C:
			ctx, cancel := s.passContext(timeout)
			pass(ctx)
			cancel()
		}
	}
}
