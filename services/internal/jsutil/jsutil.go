// Package jsutil holds the JetStream resources the services share and create
// idempotently at start: the order events stream and the KeyValue buckets, plus the
// compare-and-set helpers around KeyValue revisions.
package jsutil

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natsotel/reference/natsotel"
	"github.com/natsotel/reference/services/contracts"
)

// OrderEventsConfig is the configuration of contracts.OrderEventsStream with the given
// number of replicas (0 means 1). Order (the producer) and inventory (the consumer) both
// create the stream with it when missing.
func OrderEventsConfig(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        contracts.OrderEventsStream,
		Description: "Order outcome events (confirmed, failed)",
		Subjects:    []string{contracts.OrderEventsSubjects},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		MaxAge:      24 * time.Hour,
		Discard:     jetstream.DiscardOld,
		Duplicates:  2 * time.Minute, // Nats-Msg-Id = order id + status deduplicates retries
		Replicas:    replicas,
	}
}

// EnsureOrderEvents returns the order events stream, creating it with replicas copies
// when missing. An existing stream is used as is (its configuration, replicas included,
// is not changed), so that replicas starting together and operators who tuned the
// stream do not fight.
func EnsureOrderEvents(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.Stream, error) {
	for attempt := 0; ; attempt++ {
		s, err := js.Stream(ctx, contracts.OrderEventsStream)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, fmt.Errorf("looking up stream %s: %w", contracts.OrderEventsStream, err)
		}
		s, err = js.CreateStream(ctx, OrderEventsConfig(replicas))
		if err == nil {
			return s, nil
		}
		// Another replica created it first (with possibly different settings): look it up again.
		if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) || attempt > 2 {
			return nil, fmt.Errorf("creating stream %s: %w", contracts.OrderEventsStream, err)
		}
	}
}

// Bucket returns the KeyValue bucket name, creating it with replicas copies (0 means 1)
// when missing; an existing bucket is used as is, except for leaderReads.
func Bucket(ctx context.Context, js *natsotel.JetStream, name, description string, history uint8, replicas int) (*natsotel.KeyValue, error) {
	kv, err := js.KeyValue(ctx, name)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      name,
			Description: description,
			History:     history,
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
		})
		if err != nil {
			return nil, fmt.Errorf("creating bucket %s: %w", name, err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("looking up bucket %s: %w", name, err)
	}
	changed, err := leaderReads(ctx, js.Raw(), name)
	if err != nil {
		return nil, err
	}
	if changed {
		// nats.go picks direct or leader gets when it binds: bind again.
		if kv, err = js.KeyValue(ctx, name); err != nil {
			return nil, fmt.Errorf("looking up bucket %s: %w", name, err)
		}
	}
	return kv, nil
}

// leaderReads turns direct gets off on a replicated bucket's stream, so that Get is
// answered by the stream leader. With direct gets (nats.go always creates buckets with
// AllowDirect) any replica answers, and a follower that has not yet applied a write
// answers with the old value or "not found": a service would not read its own write
// (inventory saw a reservation it had just created vanish, under load on three nodes).
// Leader reads are the workaround nats-server#6557 and #7281 recommend until
// read-after-write lands in the clients; a leader change can still serve one stale read.
// A bucket with one replica keeps direct gets (its only copy is the leader). It reports
// whether it changed the stream.
func leaderReads(ctx context.Context, js jetstream.JetStream, bucket string) (bool, error) {
	s, err := js.Stream(ctx, "KV_"+bucket)
	if err != nil {
		return false, fmt.Errorf("looking up bucket %s: %w", bucket, err)
	}
	cfg := s.CachedInfo().Config
	if cfg.Replicas <= 1 || !cfg.AllowDirect {
		return false, nil
	}
	cfg.AllowDirect = false
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		return false, fmt.Errorf("bucket %s: turning direct gets off: %w", bucket, err)
	}
	return true, nil
}

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
