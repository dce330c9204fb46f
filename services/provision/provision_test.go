package provision_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natsotel/reference/services/contracts"
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
