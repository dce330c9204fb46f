package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/natsotel/reference/e2e/faultkit"
	"github.com/natsotel/reference/e2e/harness"
	"github.com/natsotel/reference/loadgen/load"
	"github.com/natsotel/reference/services/contracts"
)

// backend is one telemetry backend, and the copy of the shop that exports to it.
type backend struct {
	name     string
	endpoint string
	nats     *harness.NATSServer
	services []*harness.Process
	rec      *faultkit.Recorder
	measured []faultkit.Call    // the orders of the measured rounds, as the load generator saw them
	p99      []time.Duration    // p99 of the orders' round trips, per measured round
	rss      map[string][]int64 // per service: at start, after the warm-up, after each round
}

// TestFaultTelemetryDead runs the same load against three copies of the shop that differ
// only in where their services export telemetry (OTEL_EXPORTER_OTLP_ENDPOINT): a healthy
// collector, a closed port (connection refused) and a server that accepts connections and
// never answers. The copies run side by side, each on its own nats-server, and one load
// generator drives all three, request by request in turn, so that whatever else the
// (shared, 2-core) machine does falls on all three alike. With a dead backend the p99
// of the orders' round trips (as the load generator's requester times them) stays within
// 1.2x of the healthy copy's, the services' memory stays bounded, and SIGTERM still stops
// them within their shutdown timeout.
func TestFaultTelemetryDead(t *testing.T) {
	const (
		rate            = 60 // orders per second, per copy
		warmup          = 3 * time.Second
		slice           = 3 * time.Second // one round
		maxRatio        = 1.2
		maxExtraRSS     = 32 << 20         // per process, whole run, beyond the healthy copy's growth
		maxLateExtraRSS = 8 << 20          // per process, second half of the rounds
		shutdownTimeout = 25 * time.Second // app.Options StopTimeout (20 s) + FlushTimeout (5 s)
	)
	// FAULT_ROUNDS=n runs n rounds instead of 10: a longer soak shows whether memory
	// really levels off.
	rounds := 10
	if v, err := strconv.Atoi(os.Getenv("FAULT_ROUNDS")); err == nil && v >= 3 {
		rounds = v
	}
	maxRounds := 3 * rounds
	tools := harness.RequireTools(t)
	// Latency and memory are measured on binaries built without the race detector, which
	// slows every request several times over and keeps growing its own shadow memory
	// (the other fault tests use the race-enabled binaries).
	plain := &harness.Builder{Dir: t.TempDir(), NoRace: true}
	bins := plain.Get(t)
	t.Logf("built the binaries without -race in %v", plain.Spent().Round(100*time.Millisecond))
	st := harness.StartStack(t, tools, harness.StackConfig{})
	hang := faultkit.StartBlackhole(t)
	backends := []*backend{
		{name: "healthy", endpoint: st.Collector.OTLPHTTPEndpoint},
		{name: "refused", endpoint: faultkit.ClosedPort(t)},
		{name: "hanging", endpoint: hang.Endpoint},
	}
	for _, b := range backends {
		dir := filepath.Join(st.Dir, "shop-"+b.name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		b.nats = harness.StartNATSServer(t, tools, dir)
		for _, svc := range []struct{ name, path string }{
			{contracts.InventoryService, bins.Inventory},
			{contracts.BillingService, bins.Billing},
			{contracts.OrderService, bins.Order},
		} {
			b.services = append(b.services, st.StartService(t, svc.name+"-"+b.name, svc.path, svc.name, nil,
				"NATS_URL="+b.nats.URL, "OTEL_EXPORTER_OTLP_ENDPOINT="+b.endpoint))
		}
	}
	for _, b := range backends {
		harness.WaitLogged(t, 60*time.Second, harness.ReadyLog, b.services...)
		harness.WaitMicro(t, b.nats.URL, map[string]int{contracts.OrderService: 1, contracts.InventoryService: 1, contracts.BillingService: 1}, 60*time.Second)
		_, conn := faultkit.Dial(t, b.nats.URL, nil)
		b.rec = faultkit.NewRecorder(conn)
		b.rss = map[string][]int64{}
		b.sampleRSS(t)
	}

	// One load generator drives the three copies at once, request by request in turn
	// (faultkit.Spread): each copy gets the same rate, and whatever else the machine does
	// at a given moment falls on all three alike. A warm-up first (export queues fill,
	// connections are made and fail), then the measured rounds.
	recs := make([]load.Requester, len(backends))
	for i, b := range backends {
		recs[i] = b.rec
	}
	spread := faultkit.NewSpread(recs...)
	run := func(d time.Duration, seed uint64) {
		r, err := load.New(spread, nil, load.Config{
			Rate: rate * float64(len(backends)), Duration: d, Mix: load.Mix{load.ScenarioValidOrder: 1},
			Timeout: 5 * time.Second, Seed: seed, Progress: -1,
		})
		if err != nil {
			t.Fatal(err)
		}
		sum, err := r.Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if sum.Unexpected > 0 || sum.Dropped > 0 {
			t.Errorf("load: %s", sum)
		}
	}
	run(warmup, 1)
	for _, b := range backends {
		b.sampleRSS(t)
	}
	measure := func(n int) {
		for range n {
			round := len(backends[0].p99)
			before := make([]int, len(backends))
			for i, b := range backends {
				before[i] = len(b.rec.Calls())
			}
			run(slice, uint64(100+round))
			for i, b := range backends {
				calls := b.rec.Calls()[before[i]:]
				b.measured = append(b.measured, calls...)
				b.p99 = append(b.p99, faultkit.Quantile(faultkit.Latencies(calls), 0.99))
				b.sampleRSS(t)
			}
		}
	}
	// Two estimates of how a dead copy's p99 compares with the healthy copy's: per round,
	// the ratio of the two p99s (the same seconds of the same machine), median over the
	// rounds; and the ratio of the p99s of all the orders of the copies, pooled. A burst of
	// load from elsewhere on the machine lifts the tail of whichever copies it catches and
	// moves one estimate or the other; an effect of the backend moves both. A copy fails
	// when both exceed the limit; while one copy would, more rounds are measured (up to
	// maxRounds in all), since noise shrinks with more rounds and an effect does not.
	ratios := func(b *backend) []float64 {
		out := make([]float64, len(b.p99))
		for i := range b.p99 {
			out[i] = float64(b.p99[i]) / float64(backends[0].p99[i])
		}
		return out
	}
	pooled := func(b *backend) float64 {
		return float64(faultkit.Quantile(faultkit.Latencies(b.measured), 0.99)) /
			float64(faultkit.Quantile(faultkit.Latencies(backends[0].measured), 0.99))
	}
	estimate := func(b *backend) float64 { return min(medianOf(ratios(b)), pooled(b)) }
	measure(rounds)
	for len(backends[0].p99) < maxRounds {
		worst := 0.0
		for _, b := range backends[1:] {
			worst = max(worst, estimate(b))
		}
		if worst <= maxRatio {
			break
		}
		t.Logf("after %d rounds a dead copy's p99 is %.2fx the healthy one's; measuring %d more rounds", len(backends[0].p99), worst, rounds)
		measure(rounds)
	}

	var figures []string
	for _, b := range backends {
		lat := faultkit.Latencies(b.measured)
		p50, p90, p99 := faultkit.Quantile(lat, 0.5), faultkit.Quantile(lat, 0.9), faultkit.Quantile(lat, 0.99)
		ratio := medianOf(ratios(b))
		pooledRatio := pooled(b)
		var perRound []string
		for i, d := range b.p99 {
			perRound = append(perRound, fmt.Sprintf("%v(%.2f)", d.Round(10*time.Microsecond), ratios(b)[i]))
		}
		t.Logf("%-8s p99 (ratio to healthy) per round: %s; median ratio %.2f. All %d orders: p50 %v, p90 %v, p99 %v (%.2fx healthy)",
			b.name, strings.Join(perRound, " "), ratio, len(lat), p50.Round(time.Microsecond), p90.Round(time.Microsecond), p99.Round(time.Microsecond), pooledRatio)
		figures = append(figures, fmt.Sprintf("%s p99 ratio median-of-rounds %.2f pooled %.2f (n=%d p50 %v p99 %v)",
			b.name, ratio, pooledRatio, len(lat), p50.Round(time.Microsecond), p99.Round(time.Microsecond)))
		if ratio > maxRatio && pooledRatio > maxRatio {
			t.Errorf("%s backend: over %d rounds its p99 is %.2fx (median of rounds) and %.2fx (pooled) the healthy copy's (limit %.1fx)",
				b.name, len(b.p99), ratio, pooledRatio, maxRatio)
		}
	}
	if hang.Accepted() == 0 {
		t.Errorf("the services never connected to the hanging backend")
	}

	// Memory: a dead backend may cost a fixed amount (full export queues, an export
	// waiting for its timeout), never an amount that grows with the telemetry produced.
	// Compared with the same service of the healthy copy: the extra growth over the run
	// is bounded, and over the second half of the rounds (queues long full) it is close to
	// nothing. A longer soak (FAULT_ROUNDS=30) makes a leak stand out more.
	for _, b := range backends {
		var parts []string
		for i, p := range b.services {
			h := backends[0].rss[backends[0].services[i].Name]
			r := b.rss[p.Name]
			last := len(r) - 1
			total := (r[last] - r[0]) - (h[last] - h[0])
			mid := 2 + len(b.p99)/2 // samples: start, after warm-up, after each round
			late := (r[last] - r[mid]) - (h[last] - h[mid])
			var series []string
			for _, v := range r {
				series = append(series, fmt.Sprintf("%.0f", float64(v)/(1<<20)))
			}
			parts = append(parts, fmt.Sprintf("%s [%s] MiB", strings.TrimSuffix(p.Name, "-"+b.name), strings.Join(series, " ")))
			if total > maxExtraRSS {
				t.Errorf("%s: RSS grew %s more than with a healthy backend (limit %s)", p.Name, faultkit.MiB(total), faultkit.MiB(maxExtraRSS))
			}
			if late > maxLateExtraRSS {
				t.Errorf("%s: over the second half of the rounds, RSS grew %s more than with a healthy backend (limit %s)", p.Name, faultkit.MiB(late), faultkit.MiB(maxLateExtraRSS))
			}
		}
		t.Logf("%-8s RSS at start, after warm-up, after each round: %s", b.name, strings.Join(parts, ", "))
		figures = append(figures, b.name+" RSS "+strings.Join(parts, ", "))
	}

	// Shutdown: every service of every copy at once, each within its timeout.
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		took = map[string]time.Duration{}
	)
	for _, b := range backends {
		for _, p := range b.services {
			wg.Go(func() {
				d := terminate(t, p, shutdownTimeout)
				mu.Lock()
				took[p.Name] = d
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	for _, b := range backends {
		var parts []string
		for _, p := range b.services {
			parts = append(parts, fmt.Sprintf("%s %v", strings.TrimSuffix(p.Name, "-"+b.name), took[p.Name].Round(time.Millisecond)))
		}
		t.Logf("%-8s SIGTERM to exit: %s", b.name, strings.Join(parts, ", "))
		figures = append(figures, b.name+" shutdown "+strings.Join(parts, ", "))
	}
	t.Logf("FIGURES telemetry-dead: %d/s per copy, %d rounds of %v after a %v warm-up; %s; hanging backend accepted %d connections",
		rate, len(backends[0].p99), slice, warmup, strings.Join(figures, "; "), hang.Accepted())
}

func (b *backend) sampleRSS(t *testing.T) {
	for _, p := range b.services {
		b.rss[p.Name] = append(b.rss[p.Name], rss(t, p))
	}
}

func rss(t *testing.T, p *harness.Process) int64 {
	t.Helper()
	n, err := faultkit.RSS(p.Pid())
	if err != nil {
		t.Fatalf("%s: %v", p.Name, err)
	}
	return n
}

func medianOf(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
