package e2e

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/natsotel/reference/e2e/faultkit"
	"github.com/natsotel/reference/e2e/harness"
	"github.com/natsotel/reference/loadgen/load"
	"github.com/natsotel/reference/services/contracts"
)

// Throughput of the shop on a three-node cluster (R3 stream and buckets) with 1, 2 and 3
// order replicas (one inventory, one billing): `make cluster-bench`. The variants are
// interleaved on one cluster (rounds of 1, 2, 3 replicas), so drift on a shared machine
// hits all of them alike. Each measurement is a closed loop of E2E_BENCH_WORKERS workers
// (default 24) sending valid orders for E2E_BENCH_SECONDS (default 8); the first second
// is warm-up and not counted. Binaries are built without -race.
func BenchmarkClusterOrders(b *testing.B) {
	rounds := envInt(b, "E2E_BENCH_ROUNDS", 3)
	workers := envInt(b, "E2E_BENCH_WORKERS", 24)
	seconds := envInt(b, "E2E_BENCH_SECONDS", 8)
	tools := harness.RequireTools(b)
	st := harness.StartStack(b, tools, harness.StackConfig{NATSClusterSize: 3})
	plain := &harness.Builder{Dir: b.TempDir(), NoRace: true}
	provisionReplicated(b, st.NATSURL())
	shop := harness.StartShop(b, st, plain, harness.ShopConfig{})
	bins := plain.Get(b)

	orders := []*harness.Process{shop.Order}
	started := 1
	scale := func(n int) {
		for len(orders) < n {
			started++
			p := st.StartService(b, fmt.Sprintf("order-%d", started), bins.Order, contracts.OrderService, nil)
			harness.WaitLogged(b, 60*time.Second, harness.ReadyLog, p)
			orders = append(orders, p)
		}
		for len(orders) > n {
			p := orders[len(orders)-1]
			if err := p.Signal(syscall.SIGTERM); err != nil {
				b.Fatal(err)
			}
			<-p.Done()
			orders = orders[:len(orders)-1]
		}
		harness.WaitMicro(b, st.NATSURL(), map[string]int{contracts.OrderService: n}, 30*time.Second)
	}

	results := map[int][]float64{}
	for round := 1; round <= rounds; round++ {
		for _, n := range []int{1, 2, 3} {
			scale(n)
			b.Run(fmt.Sprintf("order-replicas=%d", n), func(b *testing.B) {
				rate, other := measureOrders(b, st.NATSURL(), workers, time.Duration(seconds)*time.Second, int64(round*10+n))
				results[n] = append(results[n], rate)
				b.ReportMetric(rate, "orders/s")
				b.Logf("round %d, %d order replicas: %.1f confirmed orders/s (other outcomes: %s)", round, n, rate, other)
			})
		}
	}
	base := median(results[1])
	var lines []string
	for _, n := range []int{1, 2, 3} {
		r := results[n]
		lines = append(lines, fmt.Sprintf("%d order replicas: median %.1f orders/s (min %.1f, max %.1f, %d rounds), %.2fx one replica",
			n, median(r), slices.Min(r), slices.Max(r), len(r), median(r)/base))
	}
	b.Logf("FIGURES cluster throughput (3 nats nodes, R3, 1 inventory, 1 billing, %d closed-loop workers, valid orders):\n  %s",
		workers, strings.Join(lines, "\n  "))
}

// measureOrders runs a closed loop of valid orders for d and returns the confirmed orders
// per second after the first second, and the count of every other outcome. Overload
// answers (503 when inventory or billing did not answer in time, a timeout) are counted
// and reported, not failures: they are how the shop says it is saturated.
func measureOrders(b *testing.B, url string, workers int, d time.Duration, seed int64) (float64, string) {
	l := faultkit.StartLoad(b, url, nil, load.Config{
		Mode: load.ModeClosed, Workers: workers, Duration: d, Timeout: 10 * time.Second,
		Mix: load.Mix{load.ScenarioValidOrder: 1}, Seed: uint64(seed),
	})
	if _, err := l.Wait(d + 30*time.Second); err != nil {
		b.Fatal(err)
	}
	calls := l.Recorder.Calls()
	if len(calls) == 0 {
		b.Fatal("no requests")
	}
	start := calls[0].Start
	for _, c := range calls {
		if c.Start.Before(start) {
			start = c.Start
		}
	}
	from, to := start.Add(time.Second), start.Add(d)
	ok := 0
	other := map[string]int{}
	for _, c := range calls {
		if c.Outcome != load.OutcomeOK {
			other[c.Outcome]++
			continue
		}
		if !c.End.Before(from) && c.End.Before(to) {
			ok++
		}
	}
	// Out of stock is an answer the shop gives by design (sku-5 has 50 units), 503 and
	// timeouts are overload; anything else means the shop was not working.
	for o, n := range other {
		if o != contracts.CodeConflict && o != contracts.CodeUnavailable && o != load.OutcomeTimeout {
			b.Errorf("%d orders ended %s", n, o)
		}
	}
	return float64(ok) / to.Sub(from).Seconds(), faultkit.FormatCounts(other)
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func envInt(b *testing.B, key string, def int) int {
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive integer", key, v)
	}
	return n
}
