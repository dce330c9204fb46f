// Package provision creates or updates the shop's JetStream resources: the order events
// stream, the KeyValue buckets (orders, stock, reservations, payments) and inventory's
// durable consumer on the stream. It is the one step that needs JetStream management
// rights; run it (services/cmd/provision, the compose service "provision") as its own
// NATS user before the services start, and the services' users keep only what they use
// at run time: look up, read, write and consume (see deploy/nats/nats.conf).
//
// Why a separate step rather than the services creating what they need at start with an
// admin credential they then drop: a credential a process held is a credential its
// memory, environment and crash dumps held, for its whole life; a one-shot job holds it
// for seconds, and the long-running services never see it. It is also the place where the
// configuration is decided once, instead of by whichever replica started first.
//
// Run is idempotent: an existing stream, bucket or consumer is updated to the
// configuration in services/internal/jsutil, which the services use as well when they
// create a missing resource themselves (an in-process server without authorization, as
// in `make demo` and the tests).
package provision

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natsotel/reference/services/contracts"
	"github.com/natsotel/reference/services/internal/jsutil"
)

// attemptTimeout bounds one provisioning attempt; retryWait is the pause between two.
const (
	attemptTimeout = 10 * time.Second
	retryWait      = 500 * time.Millisecond
)

// Run creates or updates every resource with the given number of replicas (0 means 1; 3
// on a three-node cluster, the services' cmd/provision reads NATS_JS_REPLICAS), logging
// each one on log (nil: no logs).
//
// A failed attempt is tried again until ctx ends (Run is idempotent), each bounded by
// attemptTimeout: right after a cluster's nodes report healthy, its meta leader may not
// be elected yet (a JetStream API request then goes unanswered) or may not yet count every
// peer online ("no suitable peers for placement"). The last error is returned.
func Run(ctx context.Context, js jetstream.JetStream, log *slog.Logger, replicas int) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		err := once(actx, js, log, replicas)
		cancel()
		if err == nil {
			return nil
		}
		log.WarnContext(ctx, "provisioning failed, trying again", "attempt", attempt, "error", err)
		t := time.NewTimer(retryWait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
	}
}

func once(ctx context.Context, js jetstream.JetStream, log *slog.Logger, replicas int) error {
	sc := jsutil.OrderEventsConfig()
	sc.Replicas = replicas
	stream, err := js.CreateOrUpdateStream(ctx, sc)
	if err != nil {
		return fmt.Errorf("provision: stream %s: %w", jsutil.OrderEventsConfig().Name, err)
	}
	log.InfoContext(ctx, "stream ready", "stream", stream.CachedInfo().Config.Name)
	for _, cfg := range jsutil.BucketConfigs() {
		cfg.Replicas = replicas
		if _, err := js.CreateOrUpdateKeyValue(ctx, cfg); err != nil {
			return fmt.Errorf("provision: bucket %s: %w", cfg.Bucket, err)
		}
		direct := true
		if replicas > 1 && cfg.Bucket != contracts.BucketOrders {
			if err := leaderReads(ctx, js, cfg.Bucket); err != nil {
				return err
			}
			direct = false
		}
		log.InfoContext(ctx, "bucket ready", "bucket", cfg.Bucket, "history", cfg.History, "replicas", max(replicas, 1), "direct_get", direct)
	}
	cc := jsutil.CommitConsumerConfig(jsutil.DefaultAckWait, jsutil.DefaultMaxDeliver)
	if _, err := stream.CreateOrUpdateConsumer(ctx, cc); err != nil {
		return fmt.Errorf("provision: consumer %s: %w", cc.Durable, err)
	}
	log.InfoContext(ctx, "consumer ready", "stream", stream.CachedInfo().Config.Name, "consumer", cc.Durable)
	return nil
}

// leaderReads turns direct gets off on a replicated bucket's stream, so that Get is
// answered by the stream leader. With direct gets (nats.go creates every bucket with
// AllowDirect) any replica answers, and a follower that has not yet applied a write
// answers with the old value or "not found": a service does not read its own write (on
// three nodes under load, inventory saw a reservation it had just created vanish and
// answered 500). Leader reads are the workaround nats-server#6557 and #7281 recommend
// until read-after-write reaches the clients; a leader change can still serve one stale
// read, and while a bucket has no leader it cannot be read at all.
//
// The orders bucket keeps direct gets: order's reconciliation reads it with batched
// direct gets (a follower's slightly stale answer is fine there, it runs again), and
// order's own writes are compare-and-set, which a stale read only makes retry.
func leaderReads(ctx context.Context, js jetstream.JetStream, bucket string) error {
	s, err := js.Stream(ctx, "KV_"+bucket)
	if err != nil {
		return fmt.Errorf("provision: bucket %s: %w", bucket, err)
	}
	cfg := s.CachedInfo().Config
	if !cfg.AllowDirect {
		return nil
	}
	cfg.AllowDirect = false
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("provision: bucket %s: turning direct gets off: %w", bucket, err)
	}
	return nil
}
