package order

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natsotel/reference/services/contracts"
	"github.com/natsotel/reference/services/internal/jsutil"
)

// work is an order on its way to a final state.
type work struct {
	order     contracts.Order // Status is the intended (or, once decided, the stored) outcome
	rev       uint64          // revision of the pending record; 0 if unknown
	decided   bool            // the outcome is stored in the orders bucket
	refund    bool            // failing must refund (or void) the payment
	release   bool            // failing must release the reservation
	published bool            // the outcome event is in the stream
	attempts  int             // background attempts so far
}

// finish drives w to its end: store the decision, then (failed) refund and release, and
// publish the outcome event. Every step is idempotent and remembered in w, so finish can
// be called again after an error until it returns nil.
func (s *Service) finish(ctx context.Context, w *work) error {
	if !w.decided {
		if err := s.decide(ctx, w); err != nil {
			return err
		}
	}
	o := &w.order
	if o.Status == contracts.OrderFailed {
		if w.refund {
			var p contracts.Payment
			if cerr := s.call(ctx, "billing", contracts.SubjectBillingRefund, contracts.OrderRef{OrderID: o.ID}, &p); cerr != nil {
				return fmt.Errorf("refunding: %w", cerr)
			}
			w.refund = false
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
			if o.Status == contracts.OrderFailed && w.release {
				return fmt.Errorf("publishing the failed event (stock still held): %w", err)
			}
			if o.Status == contracts.OrderConfirmed {
				// Without the event the reservation stays held rather than committed:
				// the stock is still taken, so the invariant holds; retry for tidiness.
				return fmt.Errorf("publishing the confirmed event: %w", err)
			}
			s.log.WarnContext(ctx, "publishing the failed event failed; nothing depends on it", "order_id", o.ID, "error", err)
		}
		w.published = true
	}
	return nil
}

// decide stores w.order's outcome with a compare-and-set on the pending record's
// revision. Only a pending record is overwritten: if the record is already final (an
// earlier attempt whose acknowledgement was lost, or ReconcileAll), that outcome is
// adopted and the compensations that do not fit it are dropped.
func (s *Service) decide(ctx context.Context, w *work) error {
	for attempt := 1; attempt <= 3; attempt++ {
		if w.rev != 0 {
			w.order.UpdatedAt = s.cfg.Now().UTC()
			data, err := json.Marshal(w.order)
			if err != nil {
				return err
			}
			if _, err := s.orders.Update(ctx, w.order.ID, data, w.rev); err == nil {
				w.decided = true
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
		var stored contracts.Order
		if err := json.Unmarshal(e.Value(), &stored); err != nil {
			return fmt.Errorf("order %s: %w", w.order.ID, err)
		}
		if stored.Status == contracts.OrderPending {
			w.rev = e.Revision()
			continue
		}
		if stored.Status != w.order.Status {
			s.log.InfoContext(ctx, "adopting the stored outcome", "order_id", w.order.ID, "stored", string(stored.Status), "intended", string(w.order.Status))
		}
		if stored.Status == contracts.OrderConfirmed {
			// Confirmed by the request path (possibly racing ReconcileAll): keep it, and
			// compensate nothing. Compensation only ever runs after a stored failure.
			w.refund, w.release = false, false
		}
		w.order = stored
		w.decided = true
		return nil
	}
	return fmt.Errorf("order %s: %w", w.order.ID, jsutil.ErrContention)
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

// retryLater queues w for the background loop.
func (s *Service) retryLater(w *work) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unresolved[w.order.ID] = w
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
	return ids
}

// retryAll calls finish on every unresolved order once.
func (s *Service) retryAll(ctx context.Context) {
	s.mu.Lock()
	ws := make([]*work, 0, len(s.unresolved))
	for _, w := range s.unresolved {
		ws = append(ws, w)
	}
	s.mu.Unlock()
	for _, w := range ws {
		w.attempts++
		if err := s.finish(ctx, w); err != nil {
			s.log.WarnContext(ctx, "order still unresolved", "order_id", w.order.ID, "attempts", w.attempts, "error", err)
			continue
		}
		s.log.InfoContext(ctx, "order resolved in the background", "order_id", w.order.ID, "status", string(w.order.Status), "attempts", w.attempts)
		s.mu.Lock()
		delete(s.unresolved, w.order.ID)
		s.mu.Unlock()
	}
}

// retryLoop runs retryAll every Config.RetryInterval until quit is closed.
func (s *Service) retryLoop() {
	defer close(s.retryDone)
	t := time.NewTicker(s.cfg.RetryInterval)
	defer t.Stop()
	for {
		select {
		case <-s.quit:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 10*s.cfg.RequestTimeout)
			s.retryAll(ctx)
			cancel()
		}
	}
}

// ReconcileAll scans the orders bucket and fails every order still pending after
// olderThan: it refunds (or voids) its payment, releases its reservation, stores it as
// failed and publishes the event. It covers what the in-memory retries cannot: an order
// process that died in the middle of a create. The scan reads every order, so run it
// from an operator tool or after a crash, not on every request. olderThan must exceed
// the longest create (a few times Config.RequestTimeout), or it fails orders that are
// still being processed (which is safe, but needless).
func (s *Service) ReconcileAll(ctx context.Context, olderThan time.Duration) (failed int, err error) {
	lister, err := s.orders.Raw().ListKeys(ctx)
	if err != nil {
		return 0, fmt.Errorf("listing orders: %w", err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	var errs []error
	for _, k := range keys {
		e, err := s.orders.Get(ctx, k)
		if err != nil {
			if !jsutil.IsNotFound(err) {
				errs = append(errs, err)
			}
			continue
		}
		var o contracts.Order
		if json.Unmarshal(e.Value(), &o) != nil || o.Status != contracts.OrderPending || s.cfg.Now().Sub(o.UpdatedAt) < olderThan {
			continue
		}
		o.Status = contracts.OrderFailed
		o.Reason = contracts.CodeUnavailable + " abandoned: not finished within " + olderThan.String()
		w := &work{order: o, rev: e.Revision(), refund: true, release: true}
		if err := s.finish(ctx, w); err != nil {
			errs = append(errs, fmt.Errorf("order %s: %w", k, err))
			s.retryLater(w)
			continue
		}
		if w.order.Status == contracts.OrderFailed {
			failed++
		}
	}
	return failed, errors.Join(errs...)
}
