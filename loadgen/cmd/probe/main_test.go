package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

func TestHelp(t *testing.T) {
	var stderr strings.Builder
	if code := run(t.Context(), []string{"-h"}, func(string) string { return "" }, &stderr); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"PROBE_INTERVAL", "NATS_URL", "nats.micro.up"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("help lacks %s", want)
		}
	}
}

func TestBadEnvironment(t *testing.T) {
	for _, env := range []map[string]string{{"PROBE_INTERVAL": "soon"}, {"PROBE_MISSED": "0"}} {
		if code := run(t.Context(), nil, func(k string) string { return env[k] }, io.Discard); code != 2 {
			t.Errorf("%v: exit %d, want 2", env, code)
		}
	}
	env := map[string]string{"PROBE_INTERVAL": "1s", "PROBE_WINDOW": "2s"}
	if code := run(t.Context(), nil, func(k string) string { return env[k] }, io.Discard); code != 2 {
		t.Errorf("window >= interval: exit %d, want 2", code)
	}
}

// The probe runs until its context is canceled and exits 0.
func TestRunsUntilCanceled(t *testing.T) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	defer ns.Shutdown()
	ns.ReadyForConnections(10 * time.Second)
	env := map[string]string{"NATS_URL": ns.ClientURL()}
	var stderr syncBuilder
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"-interval", "50ms", "-window", "10ms"}, func(k string) string { return env[k] }, &stderr)
	}()
	// "probe running" is logged after connecting; then cancel.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stderr.String(), "probe running") {
		if time.Now().After(deadline) {
			t.Fatalf("probe never ran:\n%s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
}
