package main

import (
	"context"
	"io"
	"net"
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
		"-probe-interval", "500ms", "-rate", "40", "-replicas", "2", "-log-level", "warn"},
		func(string) string { return "" }, &stdout, &stderr)
	out := stdout.String()
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr.String())
	}
	for _, want := range []string{"nats --server nats://127.0.0.1:", "micro ls", "loadgen.control",
		"service graph at", "micro instances:", "loadgen open loop:", "unexpected 0",
		"nats-server hops", "deliver order.create", "store ORDER_EVENTS"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
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

func TestHelp(t *testing.T) {
	var stderr strings.Builder
	if code := run(t.Context(), []string{"-h"}, func(string) string { return "" }, io.Discard, &stderr); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "-replicas", "-duration", "-port", "4222"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
	if code := run(t.Context(), []string{"-mix", "nope=1"}, func(string) string { return "" }, io.Discard, io.Discard); code != 2 {
		t.Errorf("bad mix: exit %d, want 2", code)
	}
}

func TestChoosePort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := l.Addr().(*net.TCPAddr).Port

	// The default port busy: fall back to a random one.
	if p, err := choosePort("127.0.0.1", busy, false); err != nil || p != server.RANDOM_PORT {
		t.Fatalf("default busy: %d %v", p, err)
	}
	// Asked for explicitly: an error naming the port.
	if _, err := choosePort("127.0.0.1", busy, true); err == nil || !strings.Contains(err.Error(), strconv.Itoa(busy)) {
		t.Fatalf("explicit busy: %v", err)
	}
	if p, err := choosePort("127.0.0.1", 0, true); err != nil || p != server.RANDOM_PORT {
		t.Fatalf("port 0: %d %v", p, err)
	}
	l.Close()
	if p, err := choosePort("127.0.0.1", busy, false); err != nil || p != busy {
		t.Fatalf("free port: %d %v", p, err)
	}
}
