package order

import (
	"context"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/natsotel/reference/natsotel"
	"github.com/natsotel/reference/services/contracts"
	"github.com/natsotel/reference/services/internal/testenv"
)

// Creates queued behind slow ones while order stops (two handlers at a time): once Stop
// returned, no order is created or changed any more; the queued ones are answered 503
// "service is stopping", and none is left pending.
func TestStopAnswersQueuedRequests(t *testing.T) {
	e := startWith(t, true, true, testConfig, natsotel.WithConcurrency(2))
	if _, err := e.client.Request(context.Background(), contracts.ControlSubject(contracts.InventoryService), `{"delay_share":1,"delay":"30ms"}`, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	const n = 12
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = e.create(t, valid(contracts.Line{SKU: "sku-1", Qty: 1}))
		})
	}
	testenv.Eventually(t, 5*time.Second, "a create in flight", func() bool {
		for _, s := range e.node.Spans.Started() {
			if s.Name() == "process "+contracts.SubjectOrderCreate {
				return true
			}
		}
		return false
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.svc.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	atStop := testenv.Snapshot(t, e.client.NC, contracts.BucketOrders)
	wg.Wait()
	if after := testenv.Snapshot(t, e.client.NC, contracts.BucketOrders); !maps.Equal(atStop, after) {
		t.Errorf("orders changed after Stop returned: %d records at Stop, %d after", len(atStop), len(after))
	}
	var ok, stopping int
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case testenv.Code(err) == contracts.CodeUnavailable && strings.Contains(testenv.Description(err), "service is stopping"):
			stopping++
		case testenv.Code(err) == "no responders": // sent after the endpoints were gone
		default:
			t.Errorf("create: %v", err)
		}
	}
	if ok == 0 || stopping == 0 {
		t.Errorf("%d confirmed, %d refused as stopping: want both", ok, stopping)
	}
	for key := range atStop {
		id := strings.TrimPrefix(key, contracts.BucketOrders+"/")
		if o := e.stored(t, id); o.Status == contracts.OrderPending {
			t.Errorf("order %s left pending", id)
		}
	}
}
