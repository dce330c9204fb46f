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
//
// Each resource is created in the JetStream of the service that owns it (Owner): under
// deploy/nats/nats.conf each service's own user lives in an account of its own, and the
// provisioning user reaches each account's JetStream API through an import ("js.order.>"
// for ORDER's "$JS.API.>"; see PerService). On a server with one account they are all
// the same JetStream (Single).
package provision

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natsotel/reference/services/contracts"
	"github.com/natsotel/reference/services/internal/jsutil"
)

// attemptTimeout bounds one provisioning attempt; retryWait is the pause between two.
const (
	attemptTimeout = 10 * time.Second
	retryWait      = 500 * time.Millisecond
)

// JetStreams returns the JetStream a service's resources are created in.
type JetStreams func(service string) jetstream.JetStream

// Single is JetStreams for one account: every resource is created in js.
func Single(js jetstream.JetStream) JetStreams {
	return func(string) jetstream.JetStream { return js }
}

// PerService reaches each service's JetStream on nc through the API prefix made from
// prefix, with "{service}" replaced by the service's name: "js.{service}" under
// deploy/nats/nats.conf (js.order, js.inventory, js.billing). An empty prefix is Single:
// the connection's own account's JetStream.
func PerService(nc *nats.Conn, prefix string) (JetStreams, error) {
	if prefix == "" {
		js, err := jetstream.New(nc)
		if err != nil {
			return nil, err
		}
		return Single(js), nil
	}
	if !strings.Contains(prefix, "{service}") {
		return nil, fmt.Errorf("provision: JetStream API prefix %q: want {service} in it (e.g. js.{service})", prefix)
	}
	jss := map[string]jetstream.JetStream{}
	for _, svc := range []string{contracts.OrderService, contracts.InventoryService, contracts.BillingService} {
		js, err := jetstream.NewWithAPIPrefix(nc, strings.ReplaceAll(prefix, "{service}", svc))
		if err != nil {
			return nil, fmt.Errorf("provision: %s: %w", svc, err)
		}
		jss[svc] = js
	}
	return func(service string) jetstream.JetStream { return jss[service] }, nil
}

// Owner is the service whose account holds a bucket, as jsutil declares it with the
// bucket's configuration (every bucket Run creates has one); "" for a bucket it does not
// know. ORDER_EVENTS and its consumer are inventory's (its input queue; order publishes
// into it).
func Owner(bucket string) string { return jsutil.BucketOwner(bucket) }

// Run creates or updates every resource with the given number of replicas (0 means 1; 3
// on a three-node cluster, the services' cmd/provision reads NATS_JS_REPLICAS), logging
// each one on log (nil: no logs).
//
// A failed attempt is tried again until ctx ends (Run is idempotent), each bounded by
// attemptTimeout: right after a cluster's nodes report healthy, its meta leader may not
// be elected yet (a JetStream API request then goes unanswered) or may not yet count every
// peer online ("no suitable peers for placement"). The last error is returned.
func Run(ctx context.Context, js JetStreams, log *slog.Logger, replicas int) error {
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

func once(ctx context.Context, js JetStreams, log *slog.Logger, replicas int) error {
	sc := jsutil.OrderEventsConfig()
	sc.Replicas = replicas
	stream, err := js(contracts.InventoryService).CreateOrUpdateStream(ctx, sc)
	if err != nil {
		return fmt.Errorf("provision: stream %s: %w", jsutil.OrderEventsConfig().Name, err)
	}
	log.InfoContext(ctx, "stream ready", "stream", stream.CachedInfo().Config.Name)
	for _, cfg := range jsutil.BucketConfigs() {
		cfg.Replicas = replicas
		svc := Owner(cfg.Bucket)
		owner := js(svc)
		if _, err := owner.CreateOrUpdateKeyValue(ctx, cfg); err != nil {
			return fmt.Errorf("provision: bucket %s: %w", cfg.Bucket, err)
		}
		direct := true
		if replicas > 1 && cfg.Bucket != contracts.BucketOrders {
			if err := leaderReads(ctx, owner, cfg.Bucket); err != nil {
				return err
			}
			direct = false
		}
		log.InfoContext(ctx, "bucket ready", "bucket", cfg.Bucket, "owner", svc, "history", cfg.History, "replicas", max(replicas, 1), "direct_get", direct)
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
