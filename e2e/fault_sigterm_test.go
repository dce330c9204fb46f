package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/natsotel/reference/e2e/faultkit"
	"github.com/natsotel/reference/e2e/harness"
	"github.com/natsotel/reference/loadgen/load"
	"github.com/natsotel/reference/services/contracts"
)

// TestFaultSIGTERM runs two replicas of every service under steady load and sends SIGTERM
// to one replica of order, inventory and billing in turn. The one that stops finishes
// what it accepted (micro drains its subscriptions, handlers in flight complete, the
// connection drains) and exits 0; the other takes over. The load generator sees nothing
// but the shop's business answers, except possibly no_responders, timeouts or 503 for
// requests in flight while a replica was shutting down; and the invariants hold.
func TestFaultSIGTERM(t *testing.T) {
	const shutdownTimeout = 25 * time.Second // app.Options StopTimeout (20 s) + FlushTimeout (5 s)
	tools := harness.RequireTools(t)
	bins := builder.Get(t)
	st := harness.StartStack(t, tools, harness.StackConfig{})
	start := func(service, path string, i int) *harness.Process {
		return st.StartService(t, fmt.Sprintf("%s-%d", service, i), path, service, nil)
	}
	var victims, survivors []*harness.Process
	for _, svc := range []struct{ name, path string }{
		{contracts.InventoryService, bins.Inventory},
		{contracts.BillingService, bins.Billing},
		{contracts.OrderService, bins.Order},
	} {
		victims = append(victims, start(svc.name, svc.path, 1))
		survivors = append(survivors, start(svc.name, svc.path, 2))
	}
	harness.WaitLogged(t, 60*time.Second, harness.ReadyLog, append(victims, survivors...)...)
	harness.WaitMicro(t, st.NATS.URL, map[string]int{
		contracts.OrderService: 2, contracts.InventoryService: 2, contracts.BillingService: 2,
	}, 60*time.Second)
	before := pids(survivors...)

	l := faultkit.StartLoad(t, st.NATS.URL, fileLogger(t, st.Dir, "loadgen-inprocess"), load.Config{
		Rate: 20, Duration: 2 * time.Minute, Mix: faultMix, Timeout: 5 * time.Second, Seed: 31,
	})
	origin := time.Now()
	// SIGTERM order first (the entry point), then inventory, then billing; between two,
	// the load runs on for 40 more requests (about 2 s).
	order := []*harness.Process{victims[2], victims[0], victims[1]}
	var windows []faultkit.Window
	completed := int64(60)
	for _, p := range order {
		if err := l.WaitCompleted(t.Context(), completed, 60*time.Second); err != nil {
			t.Fatal(err)
		}
		from := time.Now()
		took := terminate(t, p, shutdownTimeout)
		windows = append(windows, faultkit.Window{Name: p.Name, From: from, To: from.Add(took)})
		t.Logf("SIGTERM %s at +%v: exited after %v (%v)", p.Name, from.Sub(origin).Round(time.Millisecond), took.Round(time.Millisecond), p.Err())
		if took > 10*time.Second {
			t.Errorf("%s took %v to stop", p.Name, took)
		}
		completed = l.Runner.State().Completed + 40
	}
	if err := l.WaitCompleted(t.Context(), completed, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	sum, err := l.Stop(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	calls := l.Recorder.Calls()
	t.Logf("load:\n%s", sum)

	inside, outside := outcomesByWindow(calls, windows)
	t.Logf("outcomes of requests in flight while a replica shut down: %s", faultkit.FormatCounts(inside))
	t.Logf("outcomes of the other requests: %s", faultkit.FormatCounts(outside))
	var bad []faultkit.Call
	for _, c := range nonBusiness(calls) {
		in := false
		for _, w := range windows {
			in = in || w.Overlaps(c)
		}
		tolerated := c.Outcome == load.OutcomeTimeout || c.Outcome == load.OutcomeNoResponders || c.Outcome == contracts.CodeUnavailable
		if !in || !tolerated {
			bad = append(bad, c)
		}
	}
	if len(bad) > 0 {
		t.Errorf("%d requests failed outside a shutdown window or with another error:\n  %s", len(bad), describeCalls(bad, origin, 10))
	}
	checkAlive(t, before, survivors...)
	_, lrep := verifyShop(t, st, sum, calls)
	var shut []string
	for _, w := range windows {
		shut = append(shut, fmt.Sprintf("%s %v", w.Name, w.To.Sub(w.From).Round(time.Millisecond)))
	}
	t.Logf("FIGURES sigterm: sent %d, confirmed %d, failed %d, lost %d; errors inside shutdown windows %s, outside %s; shutdown took %v",
		sum.Sent, len(sum.Confirmed), len(sum.Failed), len(lrep.Lost), faultkit.FormatCounts(nonBusinessCounts(inside)),
		faultkit.FormatCounts(nonBusinessCounts(outside)), shut)
}
