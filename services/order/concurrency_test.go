package order

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/micro"

	"github.com/natsotel/reference/services/contracts"
	"github.com/natsotel/reference/services/internal/testenv"
)

// One slow dependency does not stall the service: with inventory's reservations held up,
// eight creates are all in flight at once, in order's create handler and in inventory's
// reserve handler (each endpoint's $SRV.STATS data counts its handlers in flight). A
// service that answers one request at a time would show one.
func TestSlowDependencyDoesNotStall(t *testing.T) {
	e := start(t, true, true)
	if _, err := e.client.Request(context.Background(), contracts.ControlSubject(contracts.InventoryService), `{"delay_share":1,"delay":"1m"}`, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	const n = 8
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			_, _ = e.client.Request(context.Background(), contracts.SubjectOrderCreate, valid(contracts.Line{SKU: "sku-1", Qty: 1}), 30*time.Second)
		})
	}
	testenv.Eventually(t, 10*time.Second, "8 creates in flight in order and in inventory", func() bool {
		return inFlight(t, e, contracts.OrderService, contracts.SubjectOrderCreate) == n &&
			inFlight(t, e, contracts.InventoryService, contracts.SubjectInventoryReserve) == n
	})
	// Stopping inventory cuts the injected delay short; the creates finish.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.inventory.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}

// inFlight reads the handlers in flight of one endpoint from its service's $SRV.STATS.
func inFlight(t *testing.T, e *env, service, subject string) int {
	t.Helper()
	subj, err := micro.ControlSubject(micro.StatsVerb, service, "")
	if err != nil {
		t.Fatal(err)
	}
	msg, err := e.client.NC.Request(subj, nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var st micro.Stats
	if err := json.Unmarshal(msg.Data, &st); err != nil {
		t.Fatal(err)
	}
	for _, ep := range st.Endpoints {
		if ep.Subject == subject {
			var data struct {
				InFlight int `json:"in_flight"`
			}
			if err := json.Unmarshal(ep.Data, &data); err != nil {
				t.Fatalf("%s stats data %q: %v", subject, ep.Data, err)
			}
			return data.InFlight
		}
	}
	t.Fatalf("%s has no endpoint %s", service, subject)
	return 0
}
