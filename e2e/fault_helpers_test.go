package e2e

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natsotel/reference/e2e/faultkit"
	"github.com/natsotel/reference/e2e/harness"
	"github.com/natsotel/reference/loadgen/load"
)

// Shared by the fault tests (fault_*_test.go, `make faults`).

// faultMix is the load of the fault tests: orders that confirm, run out of stock and are
// declined, so every path that holds and returns stock is exercised. No malformed input
// or lookups: they change no state.
var faultMix = load.Mix{load.ScenarioValidOrder: 80, load.ScenarioOutOfStock: 10, load.ScenarioDeclinedCard: 10}

// fileLogger returns a text logger writing to <dir>/<name>.log, for the load generator
// running in the test process.
func fileLogger(t *testing.T, dir, name string) *slog.Logger {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// plainJetStream is a nats.go client that knows nothing of the services or of
// OpenTelemetry, for reading the buckets.
func plainJetStream(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url, nats.Name("fault-test-reader"), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// verifyShop waits until the shop's state has settled, then checks its invariants and
// that every order the load generator was told about ended as it was told. It logs the
// figures and returns them.
func verifyShop(t *testing.T, st *harness.Stack, sum load.Summary, calls []faultkit.Call) (faultkit.Report, faultkit.LoadReport) {
	t.Helper()
	js := plainJetStream(t, st.NATSURL())
	start := time.Now()
	s, err := faultkit.WaitSettled(context.Background(), js, 60*time.Second, 5*time.Second)
	if err != nil {
		t.Errorf("shop state did not settle: %v", err)
	} else {
		t.Logf("state settled after %v", time.Since(start).Round(time.Millisecond))
	}
	rep := faultkit.Check(s, faultkit.Seeds())
	lrep := faultkit.CheckLoad(s, sum, calls)
	t.Logf("%s\n%s", lrep, rep)
	for _, p := range rep.Problems {
		t.Errorf("invariant: %s", p)
	}
	for _, l := range lrep.Lost {
		t.Errorf("lost: %s", l)
	}
	if len(rep.PendingHolding) > 0 {
		// An order whose decision could not be stored (the order store was away longer
		// than the order service's retries) stays pending with its stock held, until
		// order.Service.ReconcileAll fails it: held, not lost, not oversold.
		t.Logf("pending orders holding stock (reserved, outcome never stored; ReconcileAll fails them): %v", rep.PendingHolding)
	}
	return rep, lrep
}

// mergeSummaries returns a with the order ids of the others appended, for checking the
// orders of several runs against the state at once.
func mergeSummaries(a load.Summary, others ...load.Summary) load.Summary {
	a.Confirmed = append([]string(nil), a.Confirmed...)
	a.Failed = append([]string(nil), a.Failed...)
	for _, o := range others {
		a.Sent += o.Sent
		a.Confirmed = append(a.Confirmed, o.Confirmed...)
		a.Failed = append(a.Failed, o.Failed...)
	}
	return a
}

// pids returns the process id of each process, by name.
func pids(procs ...*harness.Process) map[string]int {
	m := map[string]int{}
	for _, p := range procs {
		m[p.Name] = p.Pid()
	}
	return m
}

// checkAlive fails the test for every process that has exited or whose pid changed.
func checkAlive(t *testing.T, before map[string]int, procs ...*harness.Process) {
	t.Helper()
	for _, p := range procs {
		select {
		case <-p.Done():
			t.Errorf("%s exited: %v\n%s", p.Name, p.Err(), p.Tail(30))
		default:
		}
		if before[p.Name] != p.Pid() {
			t.Errorf("%s: pid %d, was %d", p.Name, p.Pid(), before[p.Name])
		}
	}
}

// terminate sends SIGTERM to p and waits up to timeout for it to exit. It returns how long
// the exit took. The harness' cleanup still checks the exit status and the log.
func terminate(t *testing.T, p *harness.Process, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM %s: %v", p.Name, err)
	}
	select {
	case <-p.Done():
	case <-time.After(timeout):
		t.Errorf("%s still running %v after SIGTERM\n%s", p.Name, timeout, p.Tail(30))
		return timeout
	}
	return time.Since(start)
}

// outcomesByWindow splits the calls' outcomes into those in flight during one of the
// windows and the rest.
func outcomesByWindow(calls []faultkit.Call, windows []faultkit.Window) (inside, outside map[string]int) {
	inside, outside = map[string]int{}, map[string]int{}
	for _, c := range calls {
		in := false
		for _, w := range windows {
			if w.Overlaps(c) {
				in = true
				break
			}
		}
		if in {
			inside[c.Outcome]++
		} else {
			outside[c.Outcome]++
		}
	}
	return inside, outside
}

// nonBusiness lists the calls whose outcome is not an answer the shop gives by design.
func nonBusiness(calls []faultkit.Call) []faultkit.Call {
	var out []faultkit.Call
	for _, c := range calls {
		if !faultkit.Business(c.Outcome) {
			out = append(out, c)
		}
	}
	return out
}

// describeCalls renders a few calls for a failure message.
func describeCalls(calls []faultkit.Call, origin time.Time, n int) string {
	sort.Slice(calls, func(i, j int) bool { return calls[i].Start.Before(calls[j].Start) })
	var lines []string
	for i, c := range calls {
		if i == n {
			lines = append(lines, "...")
			break
		}
		lines = append(lines, c.Subject+" started +"+c.Start.Sub(origin).Round(time.Millisecond).String()+
			" ended +"+c.End.Sub(origin).Round(time.Millisecond).String()+" "+c.Outcome+" "+c.Err)
	}
	return strings.Join(lines, "\n  ")
}
