package jsutil

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natsotel/reference/natsotel"
	"github.com/natsotel/reference/services/contracts"
)

// Where the resources come from: services/provision creates or updates all of them, as
// its own NATS user, before the services start (the compose service "provision"). The
// services then only look them up (STREAM.INFO, CONSUMER.INFO) and use them, which is all
// deploy/nats/nats.conf lets them do. When a resource is missing (an in-process server
// with no authorization: `make demo`, `make test`), the service creates it with the same
// configuration, so both paths end up with identical resources. Under nats.conf that
// create is refused, and the error says to provision.

// OrderEventsConfig is the configuration of contracts.OrderEventsStream.
func OrderEventsConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        contracts.OrderEventsStream,
		Description: "Order outcome events (confirmed, failed)",
		Subjects:    []string{contracts.OrderEventsSubjects},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		MaxAge:      24 * time.Hour,
		Discard:     jetstream.DiscardOld,
		Duplicates:  2 * time.Minute, // Nats-Msg-Id = order id + status deduplicates retries
	}
}

// bucket is one of the shop's KeyValue buckets and the service that owns it (whose
// account holds it, and whose name starts its description).
type bucket struct {
	owner string
	cfg   jetstream.KeyValueConfig
}

// buckets are the shop's KeyValue buckets with their owners.
func buckets() []bucket {
	kv := func(owner, name, about string, history uint8) bucket {
		return bucket{owner, jetstream.KeyValueConfig{Bucket: name, Description: owner + ": " + about, History: history, Storage: jetstream.FileStorage}}
	}
	return []bucket{
		kv(contracts.OrderService, contracts.BucketOrders, "orders by id, and idempotency keys of order.create", 5),
		kv(contracts.InventoryService, contracts.BucketStock, "units available and held per SKU", 1),
		kv(contracts.InventoryService, contracts.BucketReservations, "reservation per order id", 5),
		kv(contracts.BillingService, contracts.BucketPayments, "payment per order id (card last 4 digits only)", 5),
	}
}

// BucketConfigs are the shop's KeyValue buckets.
func BucketConfigs() []jetstream.KeyValueConfig {
	var cfgs []jetstream.KeyValueConfig
	for _, b := range buckets() {
		cfgs = append(cfgs, b.cfg)
	}
	return cfgs
}

// lookup returns the bucket called name, and whether there is one.
func lookup(name string) (bucket, bool) {
	bs := buckets()
	i := slices.IndexFunc(bs, func(b bucket) bool { return b.cfg.Bucket == name })
	if i < 0 {
		return bucket{}, false
	}
	return bs[i], true
}

// BucketOwner is the service that owns the bucket called name, "" for an unknown one.
func BucketOwner(name string) string {
	b, _ := lookup(name)
	return b.owner
}

// BucketConfig returns the configuration of the bucket called name.
func BucketConfig(name string) (jetstream.KeyValueConfig, error) {
	b, ok := lookup(name)
	if !ok {
		return jetstream.KeyValueConfig{}, fmt.Errorf("unknown bucket %s", name)
	}
	return b.cfg, nil
}

// CommitConsumerConfig is the configuration of contracts.InventoryCommitConsumer with
// the given ack wait and maximum deliveries.
func CommitConsumerConfig(ackWait time.Duration, maxDeliver int) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       contracts.InventoryCommitConsumer,
		Description:   "inventory: commit reservations of confirmed orders, release those of failed orders",
		FilterSubject: contracts.OrderEventsSubjects,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxDeliver:    maxDeliver,
		MaxAckPending: 1000,
	}
}

// Default ack wait and maximum deliveries of the commit consumer.
const (
	DefaultAckWait    = 30 * time.Second
	DefaultMaxDeliver = 10
)

// lookupAttempts is how many times a lookup that timed out is tried: the JetStream API
// can stall for seconds while replicas starting together create resources, or while a
// cluster elects a meta leader. Each attempt has nats.go's default API timeout (5 s).
const lookupAttempts = 3

// retryTimeouts runs lookup until it does not time out, lookupAttempts times at most, or
// until ctx ends.
func retryTimeouts[T any](ctx context.Context, lookup func() (T, error)) (T, error) {
	for attempt := 1; ; attempt++ {
		v, err := lookup()
		if err == nil || attempt >= lookupAttempts || ctx.Err() != nil ||
			!(errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)) {
			return v, err
		}
	}
}

// createTimeout bounds a create a service attempts because a resource is missing. The
// server never answers a request it refused for lack of permission (it tells the
// connection asynchronously), so without a bound a service under deploy/nats/nats.conf
// would wait for its whole start context before saying what is wrong.
const createTimeout = 5 * time.Second

// notProvisioned wraps the error of a create a service attempted because a resource was
// missing.
func notProvisioned(what string, err error) error {
	return fmt.Errorf("%s is missing and could not be created (run the provisioning step, services/cmd/provision): %w", what, err)
}

// EnsureOrderEvents returns the order events stream, creating it when missing. An
// existing stream is used as is (its configuration is provisioning's business).
func EnsureOrderEvents(ctx context.Context, js jetstream.JetStream) (jetstream.Stream, error) {
	for attempt := 0; ; attempt++ {
		s, err := retryTimeouts(ctx, func() (jetstream.Stream, error) { return js.Stream(ctx, contracts.OrderEventsStream) })
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, fmt.Errorf("looking up stream %s: %w", contracts.OrderEventsStream, err)
		}
		cctx, cancel := context.WithTimeout(ctx, createTimeout)
		s, err = js.CreateStream(cctx, OrderEventsConfig())
		cancel()
		if err == nil {
			return s, nil
		}
		// Another replica created it first (with possibly different settings): look it up again.
		if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) || attempt > 2 {
			return nil, notProvisioned("stream "+contracts.OrderEventsStream, err)
		}
	}
}

// Bucket returns the KeyValue bucket name (one of BucketConfigs), creating it when
// missing.
func Bucket(ctx context.Context, js *natsotel.JetStream, name string) (*natsotel.KeyValue, error) {
	kv, err := retryTimeouts(ctx, func() (*natsotel.KeyValue, error) { return js.KeyValue(ctx, name) })
	if err == nil {
		return kv, nil
	}
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("looking up bucket %s: %w", name, err)
	}
	cfg, err := BucketConfig(name)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, createTimeout)
	defer cancel()
	kv, err = js.CreateOrUpdateKeyValue(cctx, cfg)
	if err != nil {
		return nil, notProvisioned("bucket "+name, err)
	}
	return kv, nil
}

// CommitConsumer returns inventory's durable consumer on stream, creating it with
// CommitConsumerConfig(ackWait, maxDeliver) when missing. An existing consumer is used
// as is.
func CommitConsumer(ctx context.Context, stream jetstream.Stream, ackWait time.Duration, maxDeliver int) (jetstream.Consumer, error) {
	c, err := retryTimeouts(ctx, func() (jetstream.Consumer, error) { return stream.Consumer(ctx, contracts.InventoryCommitConsumer) })
	if err == nil {
		return c, nil
	}
	if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("looking up consumer %s: %w", contracts.InventoryCommitConsumer, err)
	}
	cctx, cancel := context.WithTimeout(ctx, createTimeout)
	defer cancel()
	c, err = stream.CreateOrUpdateConsumer(cctx, CommitConsumerConfig(ackWait, maxDeliver))
	if err != nil {
		return nil, notProvisioned("consumer "+contracts.InventoryCommitConsumer, err)
	}
	return c, nil
}
