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

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natsotel/reference/services/internal/jsutil"
)

// Run creates or updates every resource, logging each one on log (nil: no logs).
func Run(ctx context.Context, js jetstream.JetStream, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	stream, err := js.CreateOrUpdateStream(ctx, jsutil.OrderEventsConfig())
	if err != nil {
		return fmt.Errorf("provision: stream %s: %w", jsutil.OrderEventsConfig().Name, err)
	}
	log.InfoContext(ctx, "stream ready", "stream", stream.CachedInfo().Config.Name)
	for _, cfg := range jsutil.BucketConfigs() {
		if _, err := js.CreateOrUpdateKeyValue(ctx, cfg); err != nil {
			return fmt.Errorf("provision: bucket %s: %w", cfg.Bucket, err)
		}
		log.InfoContext(ctx, "bucket ready", "bucket", cfg.Bucket, "history", cfg.History)
	}
	cc := jsutil.CommitConsumerConfig(jsutil.DefaultAckWait, jsutil.DefaultMaxDeliver)
	if _, err := stream.CreateOrUpdateConsumer(ctx, cc); err != nil {
		return fmt.Errorf("provision: consumer %s: %w", cc.Durable, err)
	}
	log.InfoContext(ctx, "consumer ready", "stream", stream.CachedInfo().Config.Name, "consumer", cc.Durable)
	return nil
}
