package order

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natsotel/reference/services/contracts"
)

// BenchmarkReconcileFirstPass is the first reconciliation pass of a fresh process over a
// bucket of 2000 finished orders, 3 revisions each (pending, decided, done): what a
// restarted order service reads before it can repair anything.
func BenchmarkReconcileFirstPass(b *testing.B) {
	e := startWith(b, false, false, Config{ReconcileInterval: -1})
	ctx := context.Background()
	js, err := jetstream.New(e.client.NC)
	if err != nil {
		b.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, contracts.BucketOrders)
	if err != nil {
		b.Fatal(err)
	}
	const orders = 2000
	for i := range orders {
		rec := crashedOrder(fmt.Sprintf("ord-bench-%05d", i), contracts.OrderPending)
		for _, st := range []contracts.OrderStatus{contracts.OrderPending, contracts.OrderConfirmed, contracts.OrderConfirmed} {
			rec.Status = st
			data, _ := json.Marshal(rec)
			if _, err := kv.Put(ctx, rec.ID, data); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ResetTimer()
	for b.Loop() {
		e.svc.rec = reconciler{open: map[string]time.Time{}} // a fresh process
		if _, err := e.svc.ReconcileAll(ctx, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(orders*3), "records")
}
