package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/natsotel/reference/e2e/faultkit"
	"github.com/natsotel/reference/e2e/harness"
	"github.com/natsotel/reference/services/contracts"
)

// backend is one telemetry backend the services export to.
type backend struct {
	name     string
	endpoint string
	nats     *harness.NATSServer
	services []*harness.Process
	p99, p50 []time.Duration
	// rss holds each service's RSS before the first round and after each round.
	rss map[string][]int64
}

// TestFaultTelemetryDead runs the same load against three copies of the shop that differ
// only in where their services export telemetry: a healthy collector, a closed port
// (connection refused) and a server that accepts connections and never answers. The
// copies run side by side, each on its own nats-server, and the load generator binary
// (exporting to the healthy collector in every case) visits them in turn, several rounds,
// so the comparison is not skewed by whatever else the machine does meanwhile. Order
// latency (median over the rounds of the load generator's p99) with a dead backend stays
// within 1.2x of the healthy one, the services' memory stays bounded, and SIGTERM still
// stops them within their shutdown timeout.
func TestFaultTelemetryDead(t *testing.T) {
	const (
		rounds          = 4
		maxRatio        = 1.2
		maxExtraRSS     = 64 << 20         // per process, whole run, more than the healthy shop's
		maxLateExtraRSS = 16 << 20         // per process, after the first round
		shutdownTimeout = 25 * time.Second // app.Options StopTimeout (20 s) + FlushTimeout (5 s)
	)
	loadEnv := []string{
		"LOADGEN_RATE=40",
		"LOADGEN_DURATION=4s",
		"LOADGEN_MIX=valid=1",
		"LOADGEN_TIMEOUT=5s",
	}
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
		b.rss = map[string][]int64{}
		b.sampleRSS(t)
	}

	for round := range rounds {
		for i := range backends {
			b := backends[(i+round)%len(backends)] // rotate, so no backend always goes first
			env := st.ServiceEnv("loadgen", append([]string{"NATS_URL=" + b.nats.URL, fmt.Sprintf("LOADGEN_SEED=%d", 100+round)}, loadEnv...)...)
			res := st.Run(t, "loadgen-"+b.name, bins.Loadgen, []string{"-control=false", "-progress=-1s", "-fail-on-unexpected"}, env, 2*time.Minute)
			if res.ExitCode != 0 {
				t.Fatalf("loadgen against the %s shop exited %d:\n%s", b.name, res.ExitCode, res.Output)
			}
			p50, p99, err := latencies(res.Output)
			if err != nil {
				t.Fatal(err)
			}
			b.p50, b.p99 = append(b.p50, p50), append(b.p99, p99)
		}
		for _, b := range backends {
			b.sampleRSS(t)
		}
	}

	healthy := median(backends[0].p99)
	var figures []string
	for _, b := range backends {
		ratio := float64(median(b.p99)) / float64(healthy)
		t.Logf("%-8s p99 per round %v (median %v, %.2fx healthy); p50 per round %v (median %v)",
			b.name, b.p99, median(b.p99), ratio, b.p50, median(b.p50))
		figures = append(figures, fmt.Sprintf("%s p99 %v (%.2fx) p50 %v", b.name, median(b.p99), ratio, median(b.p50)))
		if ratio > maxRatio {
			t.Errorf("%s backend: median p99 %v is %.2fx the healthy %v (limit %.1fx)", b.name, median(b.p99), ratio, healthy, maxRatio)
		}
	}
	if hang.Accepted() == 0 {
		t.Errorf("the services never connected to the hanging backend")
	}

	// Memory: a dead backend may cost a fixed amount (full export queues, requests waiting
	// on their timeout), never an amount that grows with the telemetry produced. Compared
	// with the same service of the healthy shop: the extra growth over the whole run is
	// bounded, and after the first round (queues full by then) the dead shop grows no
	// faster than the healthy one.
	for _, b := range backends {
		var parts []string
		for i, p := range b.services {
			h := backends[0].rss[backends[0].services[i].Name]
			r := b.rss[p.Name]
			total := (r[len(r)-1] - r[0]) - (h[len(h)-1] - h[0])
			late := (r[len(r)-1] - r[1]) - (h[len(h)-1] - h[1])
			var series []string
			for _, v := range r {
				series = append(series, fmt.Sprintf("%.0f", float64(v)/(1<<20)))
			}
			parts = append(parts, fmt.Sprintf("%s [%s] MiB", strings.TrimSuffix(p.Name, "-"+b.name), strings.Join(series, " ")))
			if total > maxExtraRSS {
				t.Errorf("%s: RSS grew %s more than with a healthy backend (limit %s)", p.Name, faultkit.MiB(total), faultkit.MiB(maxExtraRSS))
			}
			if late > maxLateExtraRSS {
				t.Errorf("%s: after the first round RSS grew %s more than with a healthy backend (limit %s): not bounded", p.Name, faultkit.MiB(late), faultkit.MiB(maxLateExtraRSS))
			}
		}
		t.Logf("%-8s RSS before and after each round: %s", b.name, strings.Join(parts, ", "))
		figures = append(figures, b.name+" RSS "+strings.Join(parts, ", "))
	}

	// Shutdown: every service of every shop at once, each within its timeout.
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
	t.Logf("FIGURES telemetry-dead: %d rounds of %s; %s; hanging backend accepted %d connections",
		rounds, strings.Join(loadEnv, " "), strings.Join(figures, "; "), hang.Accepted())
}

var latencyLine = regexp.MustCompile(`latency: p50 (\S+)\s+p90 \S+\s+p99 (\S+)`)

// latencies reads p50 and p99 from the load generator's summary.
func latencies(output string) (p50, p99 time.Duration, err error) {
	m := latencyLine.FindStringSubmatch(output)
	if m == nil {
		return 0, 0, fmt.Errorf("no latency line in the loadgen output:\n%s", output)
	}
	if p50, err = time.ParseDuration(m[1]); err == nil {
		p99, err = time.ParseDuration(m[2])
	}
	return p50, p99, err
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

func (b *backend) sampleRSS(t *testing.T) {
	for _, p := range b.services {
		b.rss[p.Name] = append(b.rss[p.Name], rss(t, p))
	}
}
