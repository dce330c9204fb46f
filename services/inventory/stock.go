package inventory

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/natsotel/reference/natsotel"
	"github.com/natsotel/reference/services/contracts"
	"github.com/natsotel/reference/services/internal/jsutil"
)

// stockRecord is the value of a SKU's key in contracts.BucketStock.
//
// Available is what can still be reserved. Held maps an order id to the units that order
// holds: units leave Available and enter Held in one compare-and-set, and leave Held
// either back to Available (release) or for good (commit). Because each order appears
// at most once in Held, taking and returning a line is idempotent: a retry, a second
// replica working on the same order, or a repeated release cannot take or return the
// units twice.
//
// Invariant per SKU: seed == Available + sum(Held) + units of committed orders.
type stockRecord struct {
	Available int            `json:"available"`
	Held      map[string]int `json:"held,omitempty"`
}

// stock is the stock bucket with compare-and-set updates.
type stock struct {
	kv          *natsotel.KeyValue
	maxAttempts int
	rnd         func(int64) int64
	turns       sync.Map // sku -> turn
}

// turn is a lock whose wait ends with the caller's context.
type turn chan struct{}

func (s *stock) get(ctx context.Context, sku string) (stockRecord, uint64, error) {
	e, err := s.kv.Get(ctx, sku)
	if err != nil {
		return stockRecord{}, 0, err
	}
	var r stockRecord
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return stockRecord{}, 0, fmt.Errorf("stock record %s: %w", sku, err)
	}
	return r, e.Revision(), nil
}

// update applies fn to the SKU's record and writes it back if fn reports a change, with
// optimistic concurrency: the write only succeeds against the revision that was read,
// otherwise it reads again and retries, after a jittered backoff, up to maxAttempts times.
//
// The compare-and-set is what makes replicas safe against each other. Within one replica
// the handlers run concurrently too, and a popular SKU gets many updates at once: all
// reading the same revision and all but one failing their write, again and again, the
// SKU's throughput would fall as load rises. So one replica updates a SKU one caller at a
// time (its turn), each in its own context, so its KeyValue spans stay in its own trace.
func (s *stock) update(ctx context.Context, sku string, fn func(*stockRecord) bool) error {
	v, _ := s.turns.LoadOrStore(sku, make(turn, 1))
	t := v.(turn)
	select {
	case t <- struct{}{}:
		defer func() { <-t }()
	case <-ctx.Done():
		return fmt.Errorf("waiting to update the stock of %s: %w", sku, ctx.Err())
	}
	for attempt := 1; ; attempt++ {
		r, rev, err := s.get(ctx, sku)
		if err != nil {
			return fmt.Errorf("reading stock of %s: %w", sku, err)
		}
		if r.Held == nil {
			r.Held = map[string]int{}
		}
		if !fn(&r) {
			return nil
		}
		data, err := json.Marshal(r)
		if err != nil {
			return err
		}
		_, err = s.kv.Update(ctx, sku, data, rev)
		if err == nil {
			return nil
		}
		if !jsutil.IsConflict(err) {
			return fmt.Errorf("writing stock of %s: %w", sku, err)
		}
		if attempt >= s.maxAttempts {
			return fmt.Errorf("stock of %s: %w after %d attempts", sku, jsutil.ErrContention, attempt)
		}
		if err := jsutil.Backoff(ctx, s.rnd, attempt); err != nil {
			return err
		}
	}
}

// seed creates each catalog SKU's record with its seed stock if the key does not exist.
// Create is a compare-and-set on "no key", so replicas starting together seed once.
func (s *stock) seed(ctx context.Context) (seeded int, err error) {
	for _, p := range contracts.Catalog {
		data, _ := json.Marshal(stockRecord{Available: p.Seed})
		if _, err := s.kv.Create(ctx, p.SKU, data); err != nil {
			if jsutil.IsConflict(err) {
				continue
			}
			return seeded, fmt.Errorf("seeding %s: %w", p.SKU, err)
		}
		seeded++
	}
	return seeded, nil
}

// take moves qty units of sku from Available to Held[order]. It does nothing if the
// order already holds that SKU. short is true when not enough units are available.
func (s *stock) take(ctx context.Context, sku, order string, qty int) (short bool, available int, err error) {
	err = s.update(ctx, sku, func(r *stockRecord) bool {
		short, available = false, r.Available
		if _, ok := r.Held[order]; ok {
			return false
		}
		if r.Available < qty {
			short = true
			return false
		}
		r.Available -= qty
		r.Held[order] = qty
		return true
	})
	return short, available, err
}

// giveBack moves the order's held units of sku back to Available (release). Idempotent.
func (s *stock) giveBack(ctx context.Context, sku, order string) error {
	return s.update(ctx, sku, func(r *stockRecord) bool {
		q, ok := r.Held[order]
		if !ok {
			return false
		}
		r.Available += q
		delete(r.Held, order)
		return true
	})
}

// consume drops the order's held units of sku: they are sold (commit). Idempotent.
func (s *stock) consume(ctx context.Context, sku, order string) error {
	return s.update(ctx, sku, func(r *stockRecord) bool {
		if _, ok := r.Held[order]; !ok {
			return false
		}
		delete(r.Held, order)
		return true
	})
}
