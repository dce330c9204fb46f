package faultkit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natsotel/reference/services/contracts"
)

// StockRecord is the value of a SKU's key in contracts.BucketStock as inventory stores
// it: units still available, and the units each order holds (taken by a reservation that
// is neither committed nor released yet).
type StockRecord struct {
	Available int            `json:"available"`
	Held      map[string]int `json:"held,omitempty"`
}

// HeldUnits is the sum of Held.
func (r StockRecord) HeldUnits() int {
	n := 0
	for _, q := range r.Held {
		n += q
	}
	return n
}

// Reservation is the value of an order's key in contracts.BucketReservations. State is
// one of contracts' reservation states, or "reserving" while inventory takes the lines.
type Reservation struct {
	OrderID string                     `json:"order_id"`
	Lines   []contracts.Line           `json:"lines"`
	State   contracts.ReservationState `json:"state"`
}

// State is the shop's durable state: the current value of every key of its four
// KeyValue buckets.
type State struct {
	Orders       map[string]contracts.Order   // contracts.BucketOrders
	Reservations map[string]Reservation       // contracts.BucketReservations
	Stock        map[string]StockRecord       // contracts.BucketStock
	Payments     map[string]contracts.Payment // contracts.BucketPayments
}

// ReadState reads every bucket with js, a plain nats.go JetStream client.
func ReadState(ctx context.Context, js jetstream.JetStream) (State, error) {
	s := State{
		Orders:       map[string]contracts.Order{},
		Reservations: map[string]Reservation{},
		Stock:        map[string]StockRecord{},
		Payments:     map[string]contracts.Payment{},
	}
	errs := []error{
		readBucket(ctx, js, contracts.BucketOrders, contracts.OrderKeys, s.Orders), // not the idempotency records
		readBucket(ctx, js, contracts.BucketReservations, ">", s.Reservations),
		readBucket(ctx, js, contracts.BucketStock, ">", s.Stock),
		readBucket(ctx, js, contracts.BucketPayments, ">", s.Payments),
	}
	return s, errors.Join(errs...)
}

// readBucket decodes the current value of every key of bucket matching keys into out. It
// watches the bucket from its last values, which delivers each key once and then a nil
// entry.
func readBucket[V any](ctx context.Context, js jetstream.JetStream, bucket, keys string, out map[string]V) error {
	kv, err := js.KeyValue(ctx, bucket)
	if err != nil {
		return fmt.Errorf("bucket %s: %w", bucket, err)
	}
	w, err := kv.Watch(ctx, keys, jetstream.IgnoreDeletes())
	if err != nil {
		return fmt.Errorf("watching %s: %w", bucket, err)
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("reading %s: %w", bucket, ctx.Err())
		case e, ok := <-w.Updates():
			if !ok {
				return fmt.Errorf("reading %s: watcher stopped", bucket)
			}
			if e == nil { // every current value has been delivered
				return nil
			}
			var v V
			if err := json.Unmarshal(e.Value(), &v); err != nil {
				return fmt.Errorf("%s/%s: %w", bucket, e.Key(), err)
			}
			out[e.Key()] = v
		}
	}
}
