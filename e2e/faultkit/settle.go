package faultkit

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natsotel/reference/services/contracts"
)

// WaitSettled polls the shop's state until Settled accepts it and the set of pending
// orders has not changed for quiet (the order service retries unfinished orders in the
// background every couple of seconds; quiet should exceed that interval), and returns
// it. After timeout it returns the last state read and the reason it is not settled.
func WaitSettled(ctx context.Context, js jetstream.JetStream, timeout, quiet time.Duration) (State, error) {
	var (
		last         State
		pending      []string
		pendingSince time.Time
	)
	err := Poll(ctx, timeout, 250*time.Millisecond, func(ctx context.Context) error {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		s, err := ReadState(rctx, js)
		if err != nil {
			return err
		}
		last = s
		if err := Settled(s); err != nil {
			pending, pendingSince = nil, time.Time{}
			return err
		}
		p := pendingOrders(s)
		if pendingSince.IsZero() || !slices.Equal(p, pending) {
			pending, pendingSince = p, time.Now()
		}
		if len(p) > 0 && time.Since(pendingSince) < quiet {
			return fmt.Errorf("%d orders pending for %v", len(p), time.Since(pendingSince).Round(time.Millisecond))
		}
		return nil
	})
	return last, err
}

func pendingOrders(s State) []string {
	var ids []string
	for id, o := range s.Orders {
		if o.Status == contracts.OrderPending {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}
