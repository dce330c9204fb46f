// Package jsutil holds the JetStream resources of the shop (the order events stream, the
// KeyValue buckets, inventory's durable consumer: their configurations, and how a service
// binds to them), plus the compare-and-set helpers around KeyValue revisions.
package jsutil

import (
	"context"
	"errors"
	mrand "math/rand/v2"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// IsConflict reports whether err is a failed compare-and-set: Create on an existing key
// or Update with a stale revision.
func IsConflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}

// IsNotFound reports whether err means the key does not exist (or was deleted).
func IsNotFound(err error) bool {
	return errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted)
}

// ErrContention is returned when a compare-and-set loop gave up.
var ErrContention = errors.New("too much contention on a key")

// Backoff sleeps before retry attempt (1, 2, ...) of a compare-and-set loop: a random
// delay up to min(1ms << attempt, 50ms), so colliding writers spread out. It returns
// ctx's error if ctx ends first.
func Backoff(ctx context.Context, rnd func(n int64) int64, attempt int) error {
	ceiling := min(time.Millisecond<<min(attempt, 6), 50*time.Millisecond)
	d := time.Duration(rnd(int64(ceiling))) + 100*time.Microsecond
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// NewRand returns a goroutine-safe random source for Backoff, seeded from the runtime's
// random source (no shared global state between services).
func NewRand() func(n int64) int64 {
	r := mrand.New(mrand.NewPCG(mrand.Uint64(), mrand.Uint64()))
	var mu sync.Mutex
	return func(n int64) int64 {
		mu.Lock()
		defer mu.Unlock()
		return r.Int64N(n)
	}
}
