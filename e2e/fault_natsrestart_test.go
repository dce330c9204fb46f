package e2e

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/natsotel/reference/e2e/faultkit"
	"github.com/natsotel/reference/e2e/harness"
	"github.com/natsotel/reference/loadgen/load"
	"github.com/natsotel/reference/services/contracts"
)

// natsOutage is how long the NATS server stays down: several of the clients' reconnect
// attempts (500 ms + jitter apart), and less than the load generator's request timeout
// (5 s), so a request buffered by its client during the outage can still be answered.
const natsOutage = 3 * time.Second

// TestFaultNATSRestart stops the NATS server in the middle of a steady load and starts it
// again on the same port with the same JetStream store: once gracefully (SIGTERM) and once
// as a crash (SIGKILL). Afterwards every order the load generator saw confirmed is
// confirmed in the orders bucket, every failed order returned its stock, stock plus
// confirmed units equal the seed per SKU, nobody was charged twice or for a failed order,
// and the services carried on without restarting.
func TestFaultNATSRestart(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(signalName(sig), func(t *testing.T) { natsRestart(t, sig) })
	}
}

func signalName(sig syscall.Signal) string {
	if sig == syscall.SIGKILL {
		return "SIGKILL"
	}
	return "SIGTERM"
}

func natsRestart(t *testing.T, sig syscall.Signal) {
	tools := harness.RequireTools(t)
	st := harness.StartStack(t, tools, harness.StackConfig{})
	shop := harness.StartShop(t, st, builder, harness.ShopConfig{})
	services := []*harness.Process{shop.Order, shop.Inventory[0], shop.Billing}
	before := pids(services...)
	ctx := context.Background()

	l := faultkit.StartLoad(t, st.NATS.URL, fileLogger(t, st.Dir, "loadgen-inprocess"), load.Config{
		Rate: 30, Duration: 15 * time.Second, Mix: faultMix, Timeout: 5 * time.Second, Seed: 11,
	})
	origin := time.Now()
	// Let the shop run normally for a while first (about 4 s at 30/s).
	if err := l.WaitCompleted(ctx, 120, 30*time.Second); err != nil {
		t.Fatal(err)
	}

	down := time.Now()
	if err := st.NATS.Proc.Signal(sig); err != nil {
		t.Fatal(err)
	}
	if err := st.NATS.Proc.Wait(30 * time.Second); err != nil {
		t.Logf("nats-server after %s: %v", signalName(sig), err)
	}
	stopped := time.Now()
	<-time.After(natsOutage) // the fault itself: NATS is away this long
	st.NATS.Start(t)
	up := time.Now()
	t.Logf("nats-server sent %s at +%v (exit took %v), healthy again at +%v", signalName(sig),
		down.Sub(origin).Round(time.Millisecond), stopped.Sub(down).Round(time.Millisecond), up.Sub(origin).Round(time.Millisecond))

	// The services reconnect on their own and answer discovery again.
	harness.WaitMicro(t, st.NATS.URL, map[string]int{
		contracts.OrderService: 1, contracts.InventoryService: 1, contracts.BillingService: 1,
	}, 30*time.Second)
	resumed := time.Now()
	t.Logf("services answer micro discovery again at +%v", resumed.Sub(origin).Round(time.Millisecond))

	sum, err := l.Wait(60 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	calls := l.Recorder.Calls()
	t.Logf("load:\n%s", sum)

	outage := faultkit.Window{Name: "nats outage", From: down, To: resumed}
	inside, outside := outcomesByWindow(calls, []faultkit.Window{outage})
	t.Logf("outcomes of requests in flight during the outage (+%v .. +%v): %s",
		down.Sub(origin).Round(time.Millisecond), resumed.Sub(origin).Round(time.Millisecond), faultkit.FormatCounts(inside))
	t.Logf("outcomes of the other requests: %s", faultkit.FormatCounts(outside))
	// Outside the outage the shop answers as designed; requests sent once the services
	// were back are not affected by it.
	var after []faultkit.Call
	for _, c := range nonBusiness(calls) {
		if !outage.Overlaps(c) {
			after = append(after, c)
		}
	}
	if len(after) > 0 {
		t.Errorf("%d requests outside the outage failed:\n  %s", len(after), describeCalls(after, origin, 10))
	}

	// New orders succeed, on the same processes.
	l2 := faultkit.StartLoad(t, st.NATS.URL, fileLogger(t, st.Dir, "loadgen-inprocess"), load.Config{
		Rate: 20, Count: 40, Mix: load.Mix{load.ScenarioValidOrder: 1}, Timeout: 5 * time.Second, Seed: 12,
	})
	sum2, err := l2.Wait(60 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if sum2.Outcomes[load.OutcomeOK] != 40 {
		t.Errorf("after the restart: %s", sum2)
	}
	checkAlive(t, before, services...)

	rep, lrep := verifyShop(t, st, mergeSummaries(sum, sum2), append(calls, l2.Recorder.Calls()...))
	t.Logf("FIGURES nats-restart %s: outage %v; sent %d (dropped at the concurrency cap %d), confirmed %d, failed %d, lost %d, outage errors %s; orders in KV %d (pending %d); after the restart %d/40 new orders ok",
		signalName(sig), up.Sub(down).Round(time.Millisecond), sum.Sent, sum.Dropped, len(sum.Confirmed), len(sum.Failed), len(lrep.Lost),
		faultkit.FormatCounts(nonBusinessCounts(inside)), rep.Orders, rep.Pending, sum2.Outcomes[load.OutcomeOK])
}

// nonBusinessCounts keeps the outcomes that are not answers the shop gives by design.
func nonBusinessCounts(m map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		if !faultkit.Business(k) {
			out[k] = v
		}
	}
	return out
}
