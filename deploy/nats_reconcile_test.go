package deploy

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/natsotel/reference/natsotel"
	"github.com/natsotel/reference/services/contracts"
	"github.com/natsotel/reference/services/order"
	"github.com/natsotel/reference/services/provision"
)

// TestNATSConfigReconcileAfterRestart: order's reconciliation pass, started while the
// connection is reconnecting to a restarted server, completes under the order user's
// permissions. It used to watch the bucket with an ordered consumer, which nats.go
// created, while disconnected, through the legacy "$JS.API.CONSUMER.CREATE.KV_orders"
// subject (it picks the subject from the connected server's version, unknown then);
// nats.conf refused it and the pass hung until its timeout (30 s). It now reads the
// bucket with batched direct gets and needs no consumer at all.
func TestNATSConfigReconcileAfterRestart(t *testing.T) {
	store := t.TempDir()
	s1 := startNATSAt(t, 0, store)
	addr := s1.ClientURL()
	port := s1.Addr().(*net.TCPAddr).Port

	p := userConn(t, s1, "provision")
	pjs, err := provision.PerService(p.nc, jsAPIPrefix)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := provision.Run(pctx, pjs, nil, 1); err != nil {
		t.Fatal(err)
	}

	u := natsUser(natsConfig(t), contracts.OrderService)
	nc, err := nats.Connect(addr, nats.UserInfo(u.Username, u.Password), nats.CustomInboxPrefix("_INBOX_order"),
		nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	w := newWatchedConn("order", nc)
	conn, err := natsotel.Wrap(nc)
	if err != nil {
		t.Fatal(err)
	}
	// The endpoints are served as order-responder (services/app.Run does the same).
	responder, err := natsotel.Wrap(userConn(t, s1, "order-responder").nc)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := order.Start(ctx, conn, nil, order.Config{ReconcileInterval: -1, Responder: responder})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop(context.Background()) })

	// One finished order in the bucket, so the pass has something to read.
	js, err := conn.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, contracts.BucketOrders)
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := json.Marshal(contracts.Order{ID: "ord-1", Status: contracts.OrderConfirmed, UpdatedAt: time.Now()})
	if _, err := kv.Create(ctx, "ord-1", rec); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.ReconcileAll(ctx, time.Hour); err != nil {
		t.Fatalf("reconciliation before the restart: %v", err)
	}

	// Stop the server and wait until the client knows.
	reconnecting := nc.StatusChanged(nats.RECONNECTING)
	s1.Shutdown()
	s1.WaitForShutdown()
	select {
	case <-reconnecting:
	case <-time.After(10 * time.Second):
		t.Fatal("the order connection did not notice the shutdown")
	}

	type result struct {
		err  error
		took time.Duration
	}
	done := make(chan result, 1)
	go func() {
		rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		start := time.Now()
		_, err := svc.ReconcileAll(rctx, time.Hour)
		done <- result{err, time.Since(start)}
	}()

	// The same server again: same port, same store.
	startNATSAt(t, port, store)
	r := <-done
	if r.err != nil {
		t.Fatalf("reconciliation across the restart: %v after %v (violations: %v)", r.err, r.took.Round(time.Millisecond), w.violations(t))
	}
	if v := w.violations(t); len(v) > 0 {
		t.Errorf("order: permission violations: %v", v)
	}
	t.Logf("reconciliation across the restart took %v", r.took.Round(time.Millisecond))
}

// TestNATSConfigServicesNeedProvisioning: under nats.conf a service cannot create what
// was not provisioned; it fails to start, promptly, saying so.
func TestNATSConfigServicesNeedProvisioning(t *testing.T) {
	s := startNATS(t)
	u := natsUser(natsConfig(t), contracts.OrderService)
	nc, err := nats.Connect(s.ClientURL(), nats.UserInfo(u.Username, u.Password), nats.CustomInboxPrefix("_INBOX_order"),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	w := newWatchedConn("order", nc)
	conn, err := natsotel.Wrap(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	svc, err := order.Start(ctx, conn, nil, order.Config{ReconcileInterval: -1})
	if err == nil {
		_ = svc.Stop(context.Background())
		t.Fatal("order started on an unprovisioned server")
	}
	if !strings.Contains(err.Error(), "provision") || ctx.Err() != nil {
		t.Errorf("error %q (context: %v): want one naming the provisioning step, before the deadline", err, ctx.Err())
	}
	if v := w.violations(t); len(v) == 0 {
		t.Error("no permission violation: did order create the bucket?")
	}
}
