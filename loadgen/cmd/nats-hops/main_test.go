package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

func TestHelp(t *testing.T) {
	var stderr strings.Builder
	if code := run(t.Context(), []string{"-h"}, func(string) string { return "" }, &stderr); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"HOPS_SUBJECT", "NATS_URL", "msg_trace"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("help lacks %s", want)
		}
	}
	if code := run(t.Context(), []string{"-nope"}, func(string) string { return "" }, io.Discard); code != 2 {
		t.Errorf("bad flag: exit %d, want 2", code)
	}
}

// The command subscribes, runs until its context is canceled and exits 0.
func TestRunsUntilCanceled(t *testing.T) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	defer ns.Shutdown()
	ns.ReadyForConnections(10 * time.Second)
	env := map[string]string{"NATS_URL": ns.ClientURL(), "HOPS_SUBJECT": "trace.here"}
	var stderr syncBuilder
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int, 1)
	go func() { done <- run(ctx, nil, func(k string) string { return env[k] }, &stderr) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stderr.String(), "nats-hops running") {
		if time.Now().After(deadline) {
			t.Fatalf("never ran:\n%s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(stderr.String(), "trace.here") {
		t.Errorf("HOPS_SUBJECT not used:\n%s", stderr.String())
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
}

func TestRateLimited(t *testing.T) {
	var got []string
	f := rateLimited(time.Hour, func(err error, suppressed int) { got = append(got, fmt.Sprint(err, suppressed)) })
	for i := range 5 {
		f(fmt.Errorf("e%d", i))
	}
	if len(got) != 1 || got[0] != "e0 0" {
		t.Errorf("reported %v, want only the first", got)
	}
	g := rateLimited(0, func(err error, suppressed int) { got = append(got, err.Error()) })
	g(errors.New("a"))
	g(errors.New("b"))
	if len(got) != 3 {
		t.Errorf("with no interval every error is reported: %v", got)
	}
}

// syncBuilder is a strings.Builder safe for a logger writing while a test reads.
type syncBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuilder) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuilder) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
