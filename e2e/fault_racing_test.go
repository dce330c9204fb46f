package e2e

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/natsotel/reference/e2e/faultkit"
	"github.com/natsotel/reference/e2e/harness"
	"github.com/natsotel/reference/services/contracts"
)

// TestFaultReplicasRacing sends 40 concurrent orders of 2 units of the limited SKU
// (contracts seeds sku-5 with 50) through three order and three inventory replicas, so
// the replicas' compare-and-set loops on the same stock key race. Every other order also
// takes a unit of sku-1, which a refused order must give back. Never oversold: the
// confirmed units are at most the seed, stock never goes negative, and what is left plus
// what was confirmed is the seed.
func TestFaultReplicasRacing(t *testing.T) {
	const (
		sku      = "sku-5"
		orders   = 40
		qty      = 2
		replicas = 3
	)
	p, _ := contracts.FindProduct(sku)
	tools := harness.RequireTools(t)
	bins := builder.Get(t)
	st := harness.StartStack(t, tools, harness.StackConfig{})
	harness.StartShop(t, st, builder, harness.ShopConfig{InventoryReplicas: replicas})
	// micro handlers of one process run one request at a time: more order replicas send
	// more reservations at once.
	var more []*harness.Process
	for i := 2; i <= replicas; i++ {
		more = append(more, st.StartService(t, fmt.Sprintf("order-%d", i), bins.Order, contracts.OrderService, nil))
	}
	harness.WaitLogged(t, 60*time.Second, harness.ReadyLog, more...)
	harness.WaitMicro(t, st.NATS.URL, map[string]int{contracts.OrderService: replicas, contracts.InventoryService: replicas}, 60*time.Second)

	nc, err := nats.Connect(st.NATS.URL, nats.Name("fault-racing"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	type result struct {
		outcome string
		order   contracts.Order
	}
	var (
		wg      sync.WaitGroup
		start   = make(chan struct{})
		results = make([]result, orders)
	)
	for i := range orders {
		lines := []contracts.Line{{SKU: sku, Qty: qty}}
		if i%2 == 1 {
			lines = append(lines, contracts.Line{SKU: "sku-1", Qty: 1})
		}
		body, _ := json.Marshal(contracts.CreateOrderRequest{CustomerID: fmt.Sprintf("racer-%02d", i), Lines: lines, Card: contracts.CardOK})
		wg.Go(func() {
			<-start
			msg, err := nc.Request(contracts.SubjectOrderCreate, body, 20*time.Second)
			switch {
			case err != nil:
				results[i].outcome = err.Error()
				return
			case msg.Header.Get("Nats-Service-Error-Code") != "":
				results[i].outcome = msg.Header.Get("Nats-Service-Error-Code")
			default:
				results[i].outcome = "ok"
			}
			_ = json.Unmarshal(msg.Data, &results[i].order)
		})
	}
	began := time.Now()
	close(start)
	wg.Wait()
	elapsed := time.Since(began)

	outcomes := map[string]int{}
	confirmedUnits := 0
	for i, r := range results {
		outcomes[r.outcome]++
		switch r.outcome {
		case "ok":
			confirmedUnits += qty
		case contracts.CodeConflict:
		default:
			t.Errorf("order %d: %s (%s)", i, r.outcome, r.order.Reason)
		}
	}
	t.Logf("%d concurrent orders of %d x %s in %v: %s", orders, qty, sku, elapsed.Round(time.Millisecond), faultkit.FormatCounts(outcomes))

	js := plainJetStream(t, st.NATS.URL)
	s, err := faultkit.WaitSettled(t.Context(), js, 60*time.Second, 5*time.Second)
	if err != nil {
		t.Errorf("not settled: %v", err)
	}
	rep := faultkit.Check(s, faultkit.Seeds())
	t.Logf("%s", rep)
	for _, pr := range rep.Problems {
		t.Errorf("invariant: %s", pr)
	}
	f := rep.SKUs[sku]
	if f.Confirmed > p.Seed || confirmedUnits > p.Seed {
		t.Errorf("oversold: %d units confirmed in KV, %d told to clients, seed %d", f.Confirmed, confirmedUnits, p.Seed)
	}
	if f.Available < 0 || f.Available+f.Confirmed != p.Seed {
		t.Errorf("%s: available %d + confirmed %d != seed %d", sku, f.Available, f.Confirmed, p.Seed)
	}
	if f.Confirmed != confirmedUnits {
		t.Errorf("%s: %d units confirmed in KV, clients were told %d", sku, f.Confirmed, confirmedUnits)
	}
	if want := min(orders*qty, p.Seed); f.Confirmed != want {
		// Every refusal was a 409 and every card was good: the SKU must be sold out.
		t.Errorf("%s: %d units sold, want %d (stock left unsold while orders were refused)", sku, f.Confirmed, want)
	}

	// The race happened between replicas: reservations were served by several inventory
	// instances, and their compare-and-set on the stock key conflicted.
	var instances map[string]int
	var conflicts int
	st.Collector.WaitSpans(t, 30*time.Second, func(spans []harness.Span) error {
		instances, conflicts = map[string]int{}, 0
		for _, sp := range spans {
			if sp.Service() != contracts.InventoryService {
				continue
			}
			if sp.Kind == harness.SpanKindServer && sp.Attributes.String("messaging.destination.name") == contracts.SubjectInventoryReserve {
				instances[sp.Resource.String("service.instance.id")]++
			}
			if sp.Name == "update "+contracts.BucketStock && sp.Attributes.String("error.type") == "revision_mismatch" {
				conflicts++
			}
		}
		n := 0
		for _, c := range instances {
			n += c
		}
		if n < orders {
			return fmt.Errorf("%d of %d reserve spans exported", n, orders)
		}
		return nil
	})
	t.Logf("reserve requests per inventory instance: %v; stock compare-and-set conflicts: %d", instances, conflicts)
	if len(instances) < 2 {
		t.Errorf("reservations were served by %d inventory instance(s); the test did not make replicas race", len(instances))
	}
	t.Logf("FIGURES racing: %d orders x %d %s (seed %d) through %d order and %d inventory replicas: %s; confirmed units %d, left %d, CAS conflicts %d, instances %d",
		orders, qty, sku, p.Seed, replicas, replicas, faultkit.FormatCounts(outcomes), f.Confirmed, f.Available, conflicts, len(instances))
}
