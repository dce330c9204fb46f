package billing

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

// Charges queued when billing stops: once Stop returned, no payment is written any
// more; the queued charges are answered 503 "service is stopping".
func TestStopAnswersQueuedRequests(t *testing.T) {
	e := start(t)
	const n = 200
	var (
		wg       sync.WaitGroup
		first    = make(chan struct{})
		once     sync.Once
		mu       sync.Mutex
		ok, stop int
	)
	for i := range n {
		wg.Go(func() {
			_, err := e.charge(t, contracts.ChargeRequest{OrderID: fmt.Sprintf("ord-stop-%d", i), AmountCents: 100, Card: contracts.CardOK})
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
				t.Errorf("charge: %v", err)
			}
		})
	}
	select {
	case <-first:
	case <-time.After(10 * time.Second):
		t.Fatal("no charge answered")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.svc.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	atStop := testenv.Snapshot(t, e.client.NC, contracts.BucketPayments)
	wg.Wait()
	if after := testenv.Snapshot(t, e.client.NC, contracts.BucketPayments); !maps.Equal(atStop, after) {
		t.Errorf("payments changed after Stop returned: %d at Stop, %d after", len(atStop), len(after))
	}
	if ok != len(atStop) {
		t.Errorf("%d charges confirmed, %d payments stored", ok, len(atStop))
	}
	t.Logf("%d charged, %d refused as stopping", ok, stop)
}
