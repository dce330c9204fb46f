package inventory

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/natsotel/reference/services/contracts"
	"github.com/natsotel/reference/services/internal/testenv"
)

// Reserves queued when inventory stops: once Stop returned, no stock or reservation
// changes any more; the queued reserves are answered 503 "service is stopping".
func TestStopAnswersQueuedRequests(t *testing.T) {
	srv := testenv.Server(t)
	node := testenv.NewNode(t, srv, contracts.InventoryService)
	client := testenv.NewNode(t, srv, "client")
	svc, err := Start(context.Background(), node.Conn, node.Log, testConfig)
	if err != nil {
		t.Fatal(err)
	}
	const n = 100
	var (
		wg       sync.WaitGroup
		first    = make(chan struct{})
		once     sync.Once
		mu       sync.Mutex
		ok, stop int
	)
	for i := range n {
		wg.Go(func() {
			req := contracts.ReserveRequest{OrderID: fmt.Sprintf("ord-stop-%d", i), Lines: []contracts.Line{{SKU: "sku-1", Qty: 1}}}
			_, err := client.Request(context.Background(), contracts.SubjectInventoryReserve, req, 10*time.Second)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
				once.Do(func() { close(first) })
			case testenv.Code(err) == contracts.CodeUnavailable && strings.Contains(testenv.Description(err), "service is stopping"):
				stop++
			case testenv.Code(err) == "no responders": // sent after the endpoints were gone
			default:
				t.Errorf("reserve: %v", err)
			}
		})
	}
	select {
	case <-first:
	case <-time.After(10 * time.Second):
		t.Fatal("no reserve answered")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := svc.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	buckets := []string{contracts.BucketStock, contracts.BucketReservations}
	atStop := testenv.Snapshot(t, client.NC, buckets...)
	wg.Wait()
	if after := testenv.Snapshot(t, client.NC, buckets...); !maps.Equal(atStop, after) {
		t.Errorf("stock or reservations changed after Stop returned")
	}
	t.Logf("%d reserved, %d refused as stopping", ok, stop)
}
