package provision_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natsotel/reference/services/contracts"
	"github.com/natsotel/reference/services/internal/jsutil"
	"github.com/natsotel/reference/services/internal/testenv"
	"github.com/natsotel/reference/services/provision"
)

// Run creates every resource, runs again without error, and puts back a configuration
// changed behind its back (it is the place the configuration is decided).
func TestRunIsIdempotentAndRestoresConfig(t *testing.T) {
	s := testenv.Server(t)
	n := testenv.NewNode(t, s, "provision")
	js, err := jetstream.New(n.NC)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := provision.Run(ctx, provision.Single(js), nil, 1); err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, contracts.OrderEventsStream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	cfg.MaxAge = time.Hour
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if err := provision.Run(ctx, provision.Single(js), nil, 1); err != nil {
		t.Fatalf("second run: %v", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.MaxAge != 24*time.Hour {
		t.Errorf("ORDER_EVENTS max age %v after provisioning, want 24h", info.Config.MaxAge)
	}
	for _, b := range []string{contracts.BucketOrders, contracts.BucketStock, contracts.BucketReservations, contracts.BucketPayments} {
		if _, err := js.KeyValue(ctx, b); err != nil {
			t.Errorf("bucket %s: %v", b, err)
		}
	}
	c, err := js.Consumer(ctx, contracts.OrderEventsStream, contracts.InventoryCommitConsumer)
	if err != nil {
		t.Fatal(err)
	}
	if cc := c.CachedInfo().Config; cc.FilterSubject != contracts.OrderEventsSubjects || cc.AckPolicy != jetstream.AckExplicitPolicy || cc.MaxDeliver != 10 {
		t.Errorf("consumer config %+v", cc)
	}
}

// Every bucket is created in the account of the service that uses it, and a bucket nobody
// owns is refused rather than put somewhere.
func TestOwnerOfEveryBucket(t *testing.T) {
	want := map[string]string{
		contracts.BucketOrders:       contracts.OrderService,
		contracts.BucketStock:        contracts.InventoryService,
		contracts.BucketReservations: contracts.InventoryService,
		contracts.BucketPayments:     contracts.BillingService,
	}
	for _, cfg := range jsutil.BucketConfigs() {
		if got := provision.Owner(cfg.Bucket); got != want[cfg.Bucket] {
			t.Errorf("Owner(%q) = %q, want %q", cfg.Bucket, got, want[cfg.Bucket])
		}
		delete(want, cfg.Bucket)
	}
	if len(want) > 0 {
		t.Errorf("buckets not provisioned: %v", want)
	}
	if got := provision.Owner("no-such-bucket"); got != "" {
		t.Errorf("Owner of an unknown bucket = %q, want none", got)
	}
}

// PerService without a prefix is the connection's own JetStream; a prefix must say where
// the service's name goes.
func TestPerServicePrefix(t *testing.T) {
	n := testenv.NewNode(t, testenv.Server(t), "provision")
	js, err := provision.PerService(n.NC, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js(contracts.BillingService).AccountInfo(t.Context()); err != nil {
		t.Errorf("the plain JetStream API: %v", err)
	}
	if _, err := provision.PerService(n.NC, "js.order"); err == nil {
		t.Error("a prefix without {service} was accepted")
	}
}
