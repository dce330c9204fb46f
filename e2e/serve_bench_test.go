package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/natsotel/reference/e2e/faultkit"
	"github.com/natsotel/reference/e2e/harness"
	"github.com/natsotel/reference/loadgen/load"
	"github.com/natsotel/reference/services/contracts"
)

// BenchmarkServe measures the shop's serving figures (`make bench-serve`): the service
// binaries (built without -race) as processes on their own nats-server, exporting OTLP to
// a sink that discards, driven by the load generator's code in this process. Every case
// runs with SERVE_CONCURRENCY=1 (one request at a time per endpoint, what micro does
// alone) and with the default, one after the other, so the two share the machine's mood.
// Each reports ok orders per second (and p99); run with -benchtime 1x -count N.
//
//   - slow-inventory: inventory 50 ms slower on every request, 32 closed-loop workers.
//   - billing-drop: billing drops 10 % of charges (each costs its order the 2 s request
//     timeout), 32 closed-loop workers.
//   - saturation: no fault, 128 closed-loop workers; reports the CPU each process used
//     per second of the run, the load generator (this process) included (2.0 would be
//     both cores).
//   - tracing-p99: 100 orders/s open loop against two copies of the shop, one with the
//     default sampler and one with OTEL_TRACES_SAMPLER=always_off, request by request in
//     turn; reports both p99s and their ratio.
func BenchmarkServe(b *testing.B) {
	tools := harness.RequireTools(b)
	builder := &harness.Builder{Dir: b.TempDir(), NoRace: true}
	bins := builder.Get(b)
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	b.Cleanup(sink.Close)
	d := benchDuration(b)
	for _, conc := range []string{"1", "default"} {
		b.Run("slow-inventory/concurrency="+conc, func(b *testing.B) {
			shop := startShop(b, tools, bins, sink.URL, conc, nil)
			shop.faults(b, contracts.InventoryService, contracts.FaultConfig{DelayShare: 1, Delay: "50ms"})
			reportClosed(b, shop.closed(b, 32, d), nil)
		})
		b.Run("billing-drop/concurrency="+conc, func(b *testing.B) {
			shop := startShop(b, tools, bins, sink.URL, conc, nil)
			shop.faults(b, contracts.BillingService, contracts.FaultConfig{DropShare: 0.1})
			reportClosed(b, shop.closed(b, 32, d), nil)
		})
		b.Run("saturation/concurrency="+conc, func(b *testing.B) {
			shop := startShop(b, tools, bins, sink.URL, conc, nil)
			shop.closed(b, 32, 2*time.Second) // warm-up
			before := shop.cpu(b)
			sum := shop.closed(b, 128, d)
			reportClosed(b, sum, cpuPerSecond(before, shop.cpu(b), sum.Elapsed))
		})
	}
	b.Run("tracing-p99", func(b *testing.B) {
		on := startShop(b, tools, bins, sink.URL, "default", nil)
		off := startShop(b, tools, bins, sink.URL, "default", []string{"OTEL_TRACES_SAMPLER=always_off"})
		recs := []*faultkit.Recorder{faultkit.NewRecorder(on.conn), faultkit.NewRecorder(off.conn)}
		spread := faultkit.NewSpread(recs[0], recs[1])
		run := func(d time.Duration) {
			r, err := load.New(spread, nil, load.Config{Rate: 200, Duration: d, Mix: load.Mix{load.ScenarioValidOrder: 1}, Progress: -1, Seed: 7})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := r.Run(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
		run(2 * time.Second) // warm-up
		n0, n1 := len(recs[0].Calls()), len(recs[1].Calls())
		run(d)
		p99on := faultkit.Quantile(faultkit.Latencies(recs[0].Calls()[n0:]), 0.99)
		p99off := faultkit.Quantile(faultkit.Latencies(recs[1].Calls()[n1:]), 0.99)
		b.ReportMetric(float64(p99on.Microseconds())/1000, "p99-traced-ms")
		b.ReportMetric(float64(p99off.Microseconds())/1000, "p99-untraced-ms")
		b.ReportMetric(float64(p99on)/float64(p99off), "p99-ratio")
	})
}

// benchDuration is SERVE_BENCH_DURATION (default 10s): how long each measured run lasts.
func benchDuration(b *testing.B) time.Duration {
	if d, err := time.ParseDuration(os.Getenv("SERVE_BENCH_DURATION")); err == nil && d > 0 {
		return d
	}
	return 10 * time.Second
}

// benchShop is one copy of the shop: a nats-server and one replica of each service.
type benchShop struct {
	nats  *harness.NATSServer
	procs map[string]*harness.Process
	conn  load.Requester
}

func startShop(b *testing.B, tools harness.Tools, bins harness.Binaries, otlp, conc string, extraEnv []string) *benchShop {
	dir := b.TempDir()
	shop := &benchShop{nats: harness.StartNATSServer(b, tools, dir), procs: map[string]*harness.Process{}}
	for _, svc := range []struct{ name, path string }{
		{contracts.InventoryService, bins.Inventory},
		{contracts.BillingService, bins.Billing},
		{contracts.OrderService, bins.Order},
	} {
		env := append(harness.BaseEnv(dir), "OTEL_SERVICE_NAME="+svc.name, "OTEL_EXPORTER_OTLP_ENDPOINT="+otlp,
			"NATS_URL="+shop.nats.URL, "LOG_LEVEL=warn")
		if conc != "default" {
			env = append(env, "SERVE_CONCURRENCY="+conc)
		}
		shop.procs[svc.name] = harness.StartProcess(b, harness.ProcessConfig{
			Name: svc.name, Path: svc.path, Env: append(env, extraEnv...), LogDir: dir, StopTimeout: 25 * time.Second,
		})
	}
	// At LOG_LEVEL=warn (no line per order) the services do not log harness.ReadyLog, so
	// discovery is the signal: the endpoints are added right after micro's discovery
	// handlers, well within the 300 ms a $SRV.PING round waits for answers.
	harness.WaitMicro(b, shop.nats.URL, map[string]int{contracts.OrderService: 1, contracts.InventoryService: 1, contracts.BillingService: 1}, 60*time.Second)
	_, shop.conn = faultkit.Dial(b, shop.nats.URL, nil)
	return shop
}

func (s *benchShop) faults(b *testing.B, service string, cfg contracts.FaultConfig) {
	nc, _ := faultkit.Dial(b, s.nats.URL, nil)
	if err := faultkit.SetFaults(nc, service, cfg, 1, 10*time.Second); err != nil {
		b.Fatal(err)
	}
}

// closed runs valid orders in a closed loop with workers for d.
func (s *benchShop) closed(b *testing.B, workers int, d time.Duration) load.Summary {
	r, err := load.New(s.conn, nil, load.Config{Mode: load.ModeClosed, Workers: workers, Duration: d,
		Mix: load.Mix{load.ScenarioValidOrder: 1}, Progress: -1, KeepIDs: -1})
	if err != nil {
		b.Fatal(err)
	}
	sum, err := r.Run(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	return sum
}

// cpu returns the CPU time each process used so far: the services, nats-server, and this
// one (the load generator).
func (s *benchShop) cpu(b *testing.B) map[string]time.Duration {
	out := map[string]time.Duration{"nats-server": procCPU(b, s.nats.Proc.Pid()), "loadgen": procCPU(b, os.Getpid())}
	for name, p := range s.procs {
		out[name] = procCPU(b, p.Pid())
	}
	return out
}

// procCPU is utime+stime of pid from /proc/<pid>/stat (clock ticks of 10 ms).
func procCPU(b *testing.B, pid int) time.Duration {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

func cpuPerSecond(before, after map[string]time.Duration, elapsed time.Duration) map[string]float64 {
	out := map[string]float64{}
	for name, a := range after {
		out[name] = (a - before[name]).Seconds() / elapsed.Seconds()
	}
	return out
}

func reportClosed(b *testing.B, sum load.Summary, cpu map[string]float64) {
	ok := float64(sum.Outcomes[load.OutcomeOK]) / sum.Elapsed.Seconds()
	b.ReportMetric(ok, "ok-orders/s")
	b.ReportMetric(float64(sum.Latency.P99.Microseconds())/1000, "p99-ms")
	var total float64
	for name, v := range cpu {
		b.ReportMetric(v, "cpu-"+name)
		total += v
	}
	if cpu != nil {
		b.ReportMetric(total, "cpu-total")
	}
	b.Logf("%s: %.1f ok orders/s, outcomes %v", b.Name(), ok, fmt.Sprint(sum.Outcomes))
}
