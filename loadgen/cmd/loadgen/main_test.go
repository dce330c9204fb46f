package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/natsotel/reference/services/contracts"
)

func TestHelpNamesEnvironment(t *testing.T) {
	var stderr strings.Builder
	if code := run(t.Context(), []string{"-h"}, func(string) string { return "" }, io.Discard, &stderr); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"LOADGEN_RATE", "LOADGEN_DURATION", "LOADGEN_COUNT", "LOADGEN_CONCURRENCY",
		"LOADGEN_MIX", "LOADGEN_MODE", "LOADGEN_WORKERS", "LOADGEN_SUBJECT", "LOADGEN_PAYLOAD", "-payload", "LOADGEN_CONNECTIONS", "NATS_URL", "OTEL_EXPORTER_OTLP_ENDPOINT", "-fail-on-unexpected"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("help lacks %s", want)
		}
	}
}

func TestBadEnvironmentIsUsageError(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{map[string]string{"LOADGEN_RATE": "fast"}, nil, "LOADGEN_RATE"},
		{map[string]string{"LOADGEN_CONNECTIONS": "many"}, nil, "LOADGEN_CONNECTIONS"},
		{nil, []string{"-connections", "300"}, "connections 300: want 1 to 256"},
		{map[string]string{"LOADGEN_CONNECTIONS": "-1"}, nil, "connections -1: want 1 to 256"},
	} {
		// Refused before connecting: no server listens at NATS_URL, and run would wait for one.
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		getenv := func(k string) string {
			if k == "NATS_URL" {
				return "nats://127.0.0.1:1"
			}
			return c.env[k]
		}
		var stderr strings.Builder
		code := run(ctx, c.args, getenv, io.Discard, &stderr)
		cancel()
		if code != 2 {
			t.Fatalf("%v %v: exit %d, want 2", c.env, c.args, code)
		}
		if !strings.Contains(stderr.String(), c.want) {
			t.Fatalf("%v %v: stderr lacks %q: %s", c.env, c.args, c.want, stderr.String())
		}
	}
}

// A bounded run against a stand-in order service: summary on stdout, exit status 0, and 1
// with -fail-on-unexpected when nothing answers correctly.
func TestBoundedRun(t *testing.T) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("not ready")
	}
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	svc, err := micro.AddService(nc, micro.Config{Name: "order", Version: "0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Stop()
	var mu sync.Mutex
	inboxes := map[string]bool{} // one per connection the loadgen sent on
	if err := svc.AddEndpoint("get", micro.HandlerFunc(func(r micro.Request) {
		mu.Lock()
		inboxes[r.Reply()[:strings.LastIndexByte(r.Reply(), '.')]] = true
		mu.Unlock()
		_ = r.Error(contracts.CodeNotFound, "no such order", nil)
	}), micro.WithEndpointSubject(contracts.SubjectOrderGet)); err != nil {
		t.Fatal(err)
	}
	// The loadgen connects on a connection of its own: make sure the server has the
	// endpoint's subscription before the first request goes out.
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	env := map[string]string{"NATS_URL": ns.ClientURL(), "LOADGEN_MIX": "lookup=1", "LOADGEN_RATE": "200"}
	getenv := func(k string) string { return env[k] }
	var stdout strings.Builder
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if code := run(ctx, []string{"-count", "10", "-progress", "-1s"}, getenv, &stdout, io.Discard); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(stdout.String(), "10 sent") || !strings.Contains(stdout.String(), "404=10") {
		t.Fatalf("summary:\n%s", stdout.String())
	}

	// Valid orders with no create endpoint: no responders, unexpected.
	env["LOADGEN_MIX"] = "valid=1"
	stdout.Reset()
	if code := run(ctx, []string{"-count", "3", "-fail-on-unexpected", "-control=false"}, getenv, &stdout, io.Discard); code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, stdout.String())
	}
	if !strings.Contains(stdout.String(), "no_responders=3") {
		t.Fatalf("summary:\n%s", stdout.String())
	}

	// Any subject with a payload file, closed loop, on three connections: the 404s are
	// unexpected there.
	payload := filepath.Join(t.TempDir(), "get.json")
	if err := os.WriteFile(payload, []byte(`{"id":"x"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	mu.Lock()
	clear(inboxes)
	mu.Unlock()
	if code := run(ctx, []string{"-mode", "closed", "-workers", "2", "-connections", "3", "-count", "10", "-subject", contracts.SubjectOrderGet,
		"-payload", payload, "-fail-on-unexpected", "-control=false", "-progress", "-1s"}, getenv, &stdout, io.Discard); code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, stdout.String())
	}
	if !strings.Contains(stdout.String(), "loadgen closed loop: 10 sent") || !strings.Contains(stdout.String(), "custom") ||
		!strings.Contains(stdout.String(), "404=10") {
		t.Fatalf("summary:\n%s", stdout.String())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(inboxes) != 3 {
		t.Errorf("requests came from %d connections, want 3: %v", len(inboxes), inboxes)
	}
}

// The load generator collects garbage at GOGC=400 unless GOGC says otherwise.
func TestGCPercent(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	for _, c := range []struct {
		gogc string
		want int
	}{{"", gcPercent}, {"100", 100}, {"off", 100}} {
		debug.SetGCPercent(100) // what the runtime set from the environment
		setGCPercent(func(k string) string { return map[string]string{"GOGC": c.gogc}[k] })
		if got := debug.SetGCPercent(100); got != c.want {
			t.Errorf("GOGC=%q: GC percent %d, want %d", c.gogc, got, c.want)
		}
	}
}
