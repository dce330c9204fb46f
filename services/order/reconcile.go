package order

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/natsotel/reference/services/contracts"
	"github.com/natsotel/reference/services/internal/jsutil"
)

// reconciler is what reconciliation remembers between passes: where it stopped reading
// the orders bucket's history, and the orders it saw unfinished. A pass reads only what
// was written since the last one, so running it every Config.ReconcileInterval costs
// little however many orders the bucket holds; the first pass of a process reads every
// order's current record once.
type reconciler struct {
	mu   sync.Mutex           // one pass at a time
	next uint64               // first revision the next pass reads; 0: every key's last value
	open map[string]time.Time // unfinished orders -> UpdatedAt of their last record
}

// ReconcileAll repairs, from the orders bucket, what a process that died (or ran out of
// retry room, see Config.MaxUnresolved) left unfinished:
//
//   - an order still pending olderThan after its last update is failed: its payment
//     refunded (or voided), its reservation released, the failure stored and published;
//   - a failed order whose compensation is still recorded as outstanding olderThan after
//     its failure was stored gets it finished: refund, release, event, all idempotent.
//   - a confirmed order whose event is still recorded as owed olderThan after its
//     confirmation was stored gets the event published (inventory commits on it).
//
// Orders this process is retrying in the background are left to that retry. It returns
// how many orders it repaired; those it could not are retried in the background and
// looked at again by the next pass.
//
// The service runs it every Config.ReconcileInterval, the first time one interval after
// Start, so a restarted order service repairs what a crash left. olderThan must exceed
// the longest create (a few times Config.RequestTimeout), or it fails orders that are
// still being processed (which is safe, but needless).
func (s *Service) ReconcileAll(ctx context.Context, olderThan time.Duration) (repaired int, err error) {
	r := &s.rec
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := s.scan(ctx); err != nil {
		return 0, err
	}
	now := s.cfg.Now()
	var due []string
	for id, updated := range r.open {
		if now.Sub(updated) >= olderThan && !s.isUnresolved(id) {
			due = append(due, id)
		}
	}
	slices.Sort(due)
	var (
		mu       sync.Mutex
		finished []string
		errs     []error
		n        int
	)
	forEach(ctx, due, retryWorkers, func(id string) {
		done, repaired, err := s.repair(ctx, id, olderThan)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			errs = append(errs, fmt.Errorf("order %s: %w", id, err))
		}
		if done {
			finished = append(finished, id)
		}
		if repaired {
			n++
		}
	})
	for _, id := range finished {
		delete(r.open, id)
	}
	if ctx.Err() != nil {
		errs = append(errs, ctx.Err())
	}
	level := slog.LevelDebug
	if n > 0 || len(errs) > 0 {
		level = slog.LevelInfo
	}
	s.log.Log(ctx, level, "reconciliation pass", "repaired", n, "unfinished", len(r.open), "errors", len(errs))
	return n, errors.Join(errs...)
}

// scanBatch is how many messages of the orders bucket's stream one scan request reads.
const scanBatch = 500

// scan reads the orders bucket from where the last pass stopped up to its current end,
// and updates r.open. Called with r.mu held.
//
// It reads the bucket's stream directly, in batches of scanBatch messages (JetStream's
// batched direct get, $JS.API.DIRECT.GET.KV_orders, through orbit.go's jetstreamext),
// rather than with a KeyValue watch. A watch is a consumer, and a user allowed to create
// consumers can make JetStream deliver anywhere (the create request names the deliver
// subject, and the server does not check it against the creator's permissions): with
// direct get, the order user needs no consumer rights at all (deploy/nats/nats.conf). It
// also removes a failure of the watch: created while the connection was reconnecting,
// nats.go's ordered consumer used the legacy "$JS.API.CONSUMER.CREATE.KV_orders" subject,
// which nats.conf refused, and the pass hung until its timeout.
//
// The first pass of a process reads the bucket's whole history (up to its History
// revisions per order), later passes only what was written since.
func (s *Service) scan(ctx context.Context) error {
	r := &s.rec
	js := s.js.Raw()
	stream := "KV_" + contracts.BucketOrders
	prefix := "$KV." + contracts.BucketOrders + "."
	// Records are applied as they arrive (in revision order, so each order ends with its
	// last one); the position advances only at the end, so after an error the next pass
	// reads the same records again, which changes nothing already applied.
	next := max(r.next, 1)
	for {
		msgs, err := jetstreamext.GetBatch(ctx, js, stream, scanBatch,
			jetstreamext.GetBatchSeq(next), jetstreamext.GetBatchSubject(prefix+contracts.OrderKeys))
		if err != nil {
			return fmt.Errorf("reading orders: %w", err)
		}
		n, done := 0, false
		for m, err := range msgs {
			if errors.Is(err, jetstreamext.ErrNoMessages) {
				done = true // nothing more was written
				break
			}
			if err != nil {
				return fmt.Errorf("reading orders from revision %d: %w", next, err)
			}
			n++
			next = max(next, m.Sequence+1)
			s.apply(ctx, strings.TrimPrefix(m.Subject, prefix), m)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("reading orders: %w", ctx.Err())
		}
		if done || n < scanBatch {
			r.next = next // caught up
			return nil
		}
	}
}

// apply updates r.open with one record of the orders bucket. Called with r.mu held.
func (s *Service) apply(ctx context.Context, key string, m *jetstream.RawStreamMsg) {
	r := &s.rec
	if op := m.Header.Get(kvOperationHeader); op == "DEL" || op == "PURGE" {
		delete(r.open, key)
		return
	}
	rec, err := decodeRecord(key, m.Data)
	switch {
	case err != nil:
		s.log.WarnContext(ctx, "skipping an unreadable order record", "key", key, "error", err)
		delete(r.open, key)
	case rec.unfinished():
		r.open[key] = rec.UpdatedAt
	default:
		delete(r.open, key)
	}
}

// kvOperationHeader is the header KeyValue writes on delete and purge markers.
const kvOperationHeader = "KV-Operation"

// repair finishes one order found unfinished by scan, from its current record. done
// reports that the order needs nothing more (finished by this call or by anyone else);
// repaired, that this call finished it.
func (s *Service) repair(ctx context.Context, id string, olderThan time.Duration) (done, repaired bool, err error) {
	e, err := s.orders.Get(ctx, id)
	if jsutil.IsNotFound(err) {
		return true, false, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("reading: %w", err)
	}
	rec, err := decodeRecord(id, e.Value())
	if err != nil {
		return true, false, err // nothing to be done with it
	}
	if !rec.unfinished() {
		return true, false, nil // finished since the scan
	}
	if s.cfg.Now().Sub(rec.UpdatedAt) < olderThan {
		return false, false, nil // updated since the scan: look again next pass
	}
	w := &work{order: rec.Order, rev: e.Revision()}
	if rec.Status == contracts.OrderPending {
		w.order.Status = contracts.OrderFailed
		w.order.Reason = contracts.CodeUnavailable + " abandoned: not finished within " + olderThan.String()
		w.refund, w.release = true, true
		s.log.WarnContext(ctx, "failing an abandoned order", "order_id", id, "updated_at", rec.UpdatedAt)
	} else {
		w.decided, w.marked = true, true
		w.published = !rec.EventOwed && rec.Status == contracts.OrderConfirmed
		if c := rec.Compensate; c != nil {
			w.refund, w.release = c.Refund, c.Release
		}
		s.log.WarnContext(ctx, "finishing a decided order", "order_id", id, "status", string(rec.Status),
			"refund", w.refund, "release", w.release, "event_owed", rec.EventOwed)
	}
	if err := s.finish(ctx, w); err != nil {
		s.retryLater(ctx, w)
		return false, false, err
	}
	s.log.InfoContext(ctx, "order repaired", "order_id", id, "status", string(w.order.Status))
	// A pending order found confirmed meanwhile was finished by the request path.
	return true, rec.Status != contracts.OrderPending || w.order.Status == contracts.OrderFailed, nil
}

// reconcile is one pass of the reconciliation loop (see every).
func (s *Service) reconcile(ctx context.Context) {
	if _, err := s.ReconcileAll(ctx, s.cfg.AbandonAfter); err != nil && !s.stopping() {
		s.log.WarnContext(ctx, "reconciliation incomplete; retried next pass", "error", err)
	}
}

// passContext returns the context of one background pass: it ends after d, or when Stop
// closes quit.
func (s *Service) passContext(d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	go func() {
		select {
		case <-s.quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// stopping reports whether Stop closed quit.
func (s *Service) stopping() bool {
	select {
	case <-s.quit:
		return true
	default:
		return false
	}
}
