package harness

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/natsotel/reference/services/contracts"
)

// Shop is the three services running as separate processes, configured only by environment
// (OTEL_*, NATS_URL), as compose runs them.
type Shop struct {
	Order     *Process
	Inventory []*Process
	Billing   *Process
	Probe     *Process // nil unless ShopConfig.Probe
}

// ShopConfig tunes StartShop.
type ShopConfig struct {
	// InventoryReplicas is how many inventory processes run (default 1), as
	// `docker compose up --scale inventory=N`.
	InventoryReplicas int
	// Probe also starts the micro probe (service.name "probe").
	Probe bool
	// Env is added to every service's environment.
	Env []string
}

// ReadyLog is what a service logs (services/app.Run) once it serves requests;
// LoadgenReadyLog what the load generator logs once its control endpoint does.
const (
	ReadyLog        = "running; stop with SIGINT or SIGTERM"
	LoadgenReadyLog = "control endpoint ready"
)

// WaitLogged waits until each process has logged line since it started, or fails t once
// timeout has passed or a process has exited. A service is ready once it logged ReadyLog:
// it does so after its endpoints' subscriptions reached the server (rpc.Serve flushes),
// while a $SRV.PING answer alone proves only micro's discovery subscriptions, made first.
func WaitLogged(t testing.TB, timeout time.Duration, line string, procs ...*Process) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for _, p := range procs {
		if err := waitLog(ctx, p, line); err != nil {
			t.Fatalf("waiting for %s: %v\n--- last lines of its log:\n%s", p.Name, err, p.Tail(30))
		}
	}
}

// StartShop starts inventory, billing and order, waits until each has logged ReadyLog and
// micro discovery lists every instance, and registers cleanups that stop them with SIGTERM and check they exit cleanly.
func StartShop(t testing.TB, st *Stack, b *Builder, cfg ShopConfig) *Shop {
	t.Helper()
	if cfg.InventoryReplicas == 0 {
		cfg.InventoryReplicas = 1
	}

	bins := b.Get(t)
	shop := &Shop{}
	for i := 1; i <= cfg.InventoryReplicas; i++ {
		name := contracts.InventoryService
		if cfg.InventoryReplicas > 1 {
			name = fmt.Sprintf("%s-%d", name, i)
		}
		shop.Inventory = append(shop.Inventory,
			st.StartService(t, name, bins.Inventory, contracts.InventoryService, nil, cfg.Env...))
	}
	shop.Billing = st.StartService(t, contracts.BillingService, bins.Billing, contracts.BillingService, nil, cfg.Env...)
	shop.Order = st.StartService(t, contracts.OrderService, bins.Order, contracts.OrderService, nil, cfg.Env...)
	// Ready: each process logged that it runs, then discovery must list every instance.
	WaitLogged(t, 60*time.Second, ReadyLog, append([]*Process{shop.Order, shop.Billing}, shop.Inventory...)...)
	WaitMicro(t, st.NATSURL(), map[string]int{
		contracts.OrderService:     1,
		contracts.InventoryService: cfg.InventoryReplicas,
		contracts.BillingService:   1,
	}, 60*time.Second)
	if cfg.Probe {
		shop.Probe = st.StartService(t, "probe", bins.Probe, "probe", nil, cfg.Env...)
	}
	return shop
}

// RunResult is the outcome of a process run to completion.
type RunResult struct {
	Output   string // stdout and stderr
	ExitCode int
	Elapsed  time.Duration
}

// Run runs a program to completion (or timeout) with the given environment and returns its
// combined output; it is for bounded runs such as the load generator and the nats CLI. The
// output is also appended to <Stack.Dir>/<name>.log so a failed test prints it.
func (s *Stack) Run(t testing.TB, name, path string, args, env []string, timeout time.Duration) RunResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = env
	cmd.Dir = s.Dir
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	out, err := cmd.CombinedOutput()
	res := RunResult{Output: string(out), Elapsed: time.Since(start)}
	if cmd.ProcessState != nil {
		res.ExitCode = cmd.ProcessState.ExitCode()
	}
	s.appendLog(t, name, fmt.Sprintf("### harness: %s %s (exit %d, %v)\n%s\n", path, strings.Join(args, " "), res.ExitCode, res.Elapsed.Round(time.Millisecond), out))
	if ctx.Err() != nil {
		t.Fatalf("%s %s: still running after %v\n%s", name, strings.Join(args, " "), timeout, out)
	}
	if err != nil && res.ExitCode < 0 {
		t.Fatalf("%s: %v", name, err)
	}
	return res
}
