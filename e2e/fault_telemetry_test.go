package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
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
	measured []faultkit.Call    // calls of the measured rounds
	p99      []time.Duration    // the load generator's own p99 of each measured round
	rss      map[string][]int64 // per service: before the first round, after each round
}

// TestFaultTelemetryDead runs the same load against three copies of the shop that differ
// only in where their services export telemetry (OTEL_EXPORTER_OTLP_ENDPOINT): a healthy
// collector, a closed port (connection refused) and a server that accepts connections and
// never answers. The copies run side by side, each on its own nats-server; the load
// generator visits them in turn for short slices, round after round, so that whatever
// else the (shared, 2-core) machine does falls on all three alike. Per copy, the p99 of
// every order round trip of the measured rounds, pooled, with a dead backend stays within
// 1.2x of the healthy one; the services' memory stays bounded; and SIGTERM still stops
// them within their shutdown timeout.
func TestFaultTelemetryDead(t *testing.T) {
	const (
		rate            = 40 // orders per second
		warmup          = 3 * time.Second
		slice           = 2 * time.Second
		rounds          = 8
		maxRatio        = 1.2
		maxExtraRSS     = 64 << 20         // per process, whole run, beyond the healthy copy's growth
		maxLateExtraRSS = 24 << 20         // per process, from round 2 on
		shutdownTimeout = 25 * time.Second // app.Options StopTimeout (20 s) + FlushTimeout (5 s)
	)
	tools := harness.RequireTools(t)
	bins := builder.Get(t)
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
		harness.WaitMicro(t, b.nats.URL, map[string]int{contracts.OrderService: 1, contracts.InventoryService: 1, contracts.BillingService: 1}, 60*time.Second)
		_, conn := faultkit.Dial(t, b.nats.URL, nil)
		b.rec = faultkit.NewRecorder(conn)
		b.rss = map[string][]int64{}
		b.sampleRSS(t)
	}

	// A warm-up slice each (export queues fill, connections are made), then the rounds,
	// rotating which copy goes first.
	run := func(b *backend, d time.Duration, seed uint64) (load.Summary, []faultkit.Call) {
		before := len(b.rec.Calls())
		r, err := load.New(b.rec, nil, load.Config{
			Rate: rate, Duration: d, Mix: load.Mix{load.ScenarioValidOrder: 1}, Timeout: 5 * time.Second, Seed: seed, Progress: -1,
		})
		if err != nil {
			t.Fatal(err)
		}
		sum, err := r.Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if sum.Unexpected > 0 || sum.Dropped > 0 {
			t.Errorf("%s copy: %s", b.name, sum)
		}
		return sum, b.rec.Calls()[before:]
	}
	for _, b := range backends {
		run(b, warmup, 1)
		b.sampleRSS(t)
	}
	for round := range rounds {
		for i := range backends {
			b := backends[(i+round)%len(backends)]
			sum, calls := run(b, slice, uint64(100+round))
			b.measured = append(b.measured, calls...)
			b.p99 = append(b.p99, sum.Latency.P99)
		}
		for _, b := range backends {
			b.sampleRSS(t)
		}
	}

	healthy := faultkit.Quantile(faultkit.Latencies(backends[0].measured), 0.99)
	var figures []string
	for _, b := range backends {
		lat := faultkit.Latencies(b.measured)
		p50, p90, p99 := faultkit.Quantile(lat, 0.5), faultkit.Quantile(lat, 0.9), faultkit.Quantile(lat, 0.99)
		ratio := float64(p99) / float64(healthy)
		t.Logf("%-8s %d orders: p50 %v p90 %v p99 %v (%.2fx healthy); the load generator's p99 per round %v (median %v)",
			b.name, len(lat), p50, p90, p99, ratio, b.p99, median(b.p99))
		figures = append(figures, fmt.Sprintf("%s n=%d p50 %v p99 %v (%.2fx), per-round loadgen p99 median %v", b.name, len(lat), p50, p99, ratio, median(b.p99)))
		if ratio > maxRatio {
			t.Errorf("%s backend: p99 %v is %.2fx the healthy %v (limit %.1fx)", b.name, p99, ratio, healthy, maxRatio)
		}
	}
	if hang.Accepted() == 0 {
		t.Errorf("the services never connected to the hanging backend")
	}

	// Memory: a dead backend may cost a fixed amount (full export queues, an export
	// waiting for its timeout), never an amount that grows with the telemetry produced.
	// Compared with the same service of the healthy copy: the extra growth over the run
	// is bounded, and from the second round on (queues full by then) it stays small.
	for _, b := range backends {
		var parts []string
		for i, p := range b.services {
			h := backends[0].rss[backends[0].services[i].Name]
			r := b.rss[p.Name]
			last := len(r) - 1
			total := (r[last] - r[0]) - (h[last] - h[0])
			late := (r[last] - r[2]) - (h[last] - h[2])
			var series []string
			for _, v := range r {
				series = append(series, fmt.Sprintf("%.0f", float64(v)/(1<<20)))
			}
			parts = append(parts, fmt.Sprintf("%s [%s] MiB", strings.TrimSuffix(p.Name, "-"+b.name), strings.Join(series, " ")))
			if total > maxExtraRSS {
				t.Errorf("%s: RSS grew %s more than with a healthy backend (limit %s)", p.Name, faultkit.MiB(total), faultkit.MiB(maxExtraRSS))
			}
			if late > maxLateExtraRSS {
				t.Errorf("%s: from round 2 on, RSS grew %s more than with a healthy backend (limit %s)", p.Name, faultkit.MiB(late), faultkit.MiB(maxLateExtraRSS))
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
	t.Logf("FIGURES telemetry-dead: %d/s, %d rounds of %v per copy after a %v warm-up; %s; hanging backend accepted %d connections",
		rate, rounds, slice, warmup, strings.Join(figures, "; "), hang.Accepted())
}

func (b *backend) sampleRSS(t *testing.T) {
	for _, p := range b.services {
		b.rss[p.Name] = append(b.rss[p.Name], rss(t, p))
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func rss(t *testing.T, p *harness.Process) int64 {
	t.Helper()
	n, err := faultkit.RSS(p.Pid())
	if err != nil {
		t.Fatalf("%s: %v", p.Name, err)
	}
	return n
}
