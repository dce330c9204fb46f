package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/natsotel/reference/demo/servicegraph"
	"github.com/natsotel/reference/demo/stack"
	"github.com/natsotel/reference/services/contracts"
)

// lockedBuffer collects output written while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// The demo's main logic, bounded by -duration: it prints the connection hints and a graph
// with every edge of the shop, then a load summary, and exits 0.
func TestDemoPrintsServiceGraph(t *testing.T) {
	var stdout, stderr lockedBuffer
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	code := run(ctx, []string{"-duration", "4s", "-port", "0", "-graph-interval", "1s",
		"-probe-interval", "500ms", "-rate", "40", "-replicas", "2"},
		func(string) string { return "" }, &stdout, &stderr)
	out := stdout.String()
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr.String())
	}
	for _, want := range []string{"nats --server nats://127.0.0.1:", "micro ls", "loadgen.control",
		"How to read the graph", "ERRORS", "expired", "user ->", "late", "-replicas N", "ARGS=",
		"service graph at", "micro instances:", "loadgen open loop:", "unexpected 0",
		"nats-server hops", "deliver order.create", "store ORDER_EVENTS"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out, "WARN") {
		t.Errorf("a free port gave a warning:\n%s", out)
	}
	// By default the terminal gets no INFO log records (the services log one per failed
	// request, the loadgen its progress).
	if e := stderr.String(); strings.Contains(e, "INFO") {
		t.Errorf("INFO logs on stderr without -logs:\n%s", e)
	}

	// The last graph (printed after stopping) has exactly the shop's edges.
	last := out[strings.LastIndex(out, "service graph at"):]
	got := map[string]bool{}
	for _, line := range strings.Split(last, "\n")[2:] {
		f := strings.Fields(line)
		if len(f) < 8 || strings.HasPrefix(line, "(") {
			break
		}
		got[f[0]+" "+f[1]+" "+f[2]] = true
	}
	want := []string{
		stack.LoadgenService + " " + contracts.OrderService + " " + string(servicegraph.ConnectionRequest),
		contracts.OrderService + " " + contracts.InventoryService + " " + string(servicegraph.ConnectionRequest),
		contracts.OrderService + " " + contracts.BillingService + " " + string(servicegraph.ConnectionRequest),
		contracts.OrderService + " " + contracts.InventoryService + " " + string(servicegraph.ConnectionMessaging),
		contracts.OrderService + " " + contracts.BucketOrders + " " + string(servicegraph.ConnectionDatabase),
		contracts.InventoryService + " " + contracts.BucketStock + " " + string(servicegraph.ConnectionDatabase),
		contracts.InventoryService + " " + contracts.BucketReservations + " " + string(servicegraph.ConnectionDatabase),
		contracts.BillingService + " " + contracts.BucketPayments + " " + string(servicegraph.ConnectionDatabase),
	}
	for _, e := range want {
		if !got[e] {
			t.Errorf("graph lacks edge %q", e)
		}
	}
	if len(got) != len(want) {
		t.Errorf("graph has %d edges, want %d:\n%s", len(got), len(want), last)
	}
}

// With 4222 (here: a port the test holds) busy, the demo runs on another port and says so
// above the banner and above every graph; -logs prints the components' INFO logs.
func TestDemoBusyPortAndLogs(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	defaultPort = l.Addr().(*net.TCPAddr).Port
	defer func() { defaultPort = DefaultPort }()

	var stdout, stderr lockedBuffer
	code := run(t.Context(), []string{"-duration", "2500ms", "-graph-interval", "1s", "-logs"},
		func(string) string { return "" }, &stdout, &stderr)
	out := stdout.String()
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr.String())
	}
	warn := fmt.Sprintf("WARN port %d is busy", defaultPort)
	if !strings.HasPrefix(strings.TrimSpace(out), warn) {
		t.Errorf("output does not start with %q:\n%s", warn, out)
	}
	running, _, _ := strings.Cut(out, "stopping...")
	lines := strings.Split(running, "\n")
	graphs := 0
	for i, line := range lines {
		if strings.Contains(line, "service graph at") {
			graphs++
			if i == 0 || !strings.HasPrefix(lines[i-1], warn) {
				t.Errorf("graph at line %d without the warning above it", i)
			}
		}
	}
	if graphs < 2 {
		t.Errorf("%d graphs printed while running, want 2:\n%s", graphs, out)
	}
	if !strings.Contains(out, "NATS listens on nats://127.0.0.1:") {
		t.Errorf("the warning lacks the URL:\n%s", out)
	}
	if e := stderr.String(); !strings.Contains(e, "level=INFO") {
		t.Errorf("-logs printed no INFO records:\n%s", e)
	}
}

func TestHelp(t *testing.T) {
	var stderr strings.Builder
	if code := run(t.Context(), []string{"-h"}, func(string) string { return "" }, io.Discard, &stderr); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "LOG_LEVEL", "-logs", "-replicas", "-duration", "-port", "4222"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
	if code := run(t.Context(), []string{"-mix", "nope=1"}, func(string) string { return "" }, io.Discard, io.Discard); code != 2 {
		t.Errorf("bad mix: exit %d, want 2", code)
	}
	stderr.Reset()
	badLevel := func(k string) string { return map[string]string{"LOG_LEVEL": "loud"}[k] }
	if code := run(t.Context(), nil, badLevel, io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), "LOG_LEVEL") {
		t.Errorf("bad LOG_LEVEL: exit %d, %q", code, stderr.String())
	}
}

func TestChoosePort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := l.Addr().(*net.TCPAddr).Port

	// The default port busy: fall back to a random one, saying why.
	if p, why, err := choosePort("127.0.0.1", busy, false); err != nil || p != server.RANDOM_PORT || why == nil {
		t.Fatalf("default busy: %d %v %v", p, why, err)
	}
	// Asked for explicitly: an error naming the port.
	if _, _, err := choosePort("127.0.0.1", busy, true); err == nil || !strings.Contains(err.Error(), strconv.Itoa(busy)) {
		t.Fatalf("explicit busy: %v", err)
	}
	if p, why, err := choosePort("127.0.0.1", 0, true); err != nil || p != server.RANDOM_PORT || why != nil {
		t.Fatalf("port 0: %d %v %v", p, why, err)
	}
	l.Close()
	if p, why, err := choosePort("127.0.0.1", busy, false); err != nil || p != busy || why != nil {
		t.Fatalf("free port: %d %v %v", p, why, err)
	}
}

// TestMain runs the demo's main instead of the tests when DEMO_TEST_MAIN is set, so a test
// can run the real process (signals, exit status) without building it separately.
func TestMain(m *testing.M) {
	if os.Getenv("DEMO_TEST_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// Ctrl-C stops the demo cleanly: the final graph and the load summary are printed and the
// process exits 0 (make then reports no error).
func TestInterruptExitsZero(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-port", "0", "-graph-interval", "500ms", "-rate", "40")
	cmd.Env = append(os.Environ(), "DEMO_TEST_MAIN=1")
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "micro instances:") {
			break // a whole graph was printed: the shop runs
		}
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
	}
	err = cmd.Wait()
	if err != nil {
		t.Fatalf("after SIGINT: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), stderr.String())
	}
	for _, want := range []string{"stopping...", "loadgen open loop:", "unexpected 0"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
