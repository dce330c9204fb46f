package faultkit

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Blackhole is a TCP server that accepts every connection and then neither reads nor
// answers: an OTLP backend that hangs. Exporters pointed at it block until their own
// timeout.
type Blackhole struct {
	// Endpoint is the value for OTEL_EXPORTER_OTLP_ENDPOINT ("http://127.0.0.1:<port>").
	Endpoint string

	ln       net.Listener
	accepted atomic.Int64
	mu       sync.Mutex
	conns    []net.Conn
	done     chan struct{}
}

// StartBlackhole listens on a random loopback port until the test ends.
func StartBlackhole(t testing.TB) *Blackhole {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("blackhole: %v", err)
	}
	b := &Blackhole{Endpoint: "http://" + ln.Addr().String(), ln: ln, done: make(chan struct{})}
	go b.serve()
	t.Cleanup(b.Close)
	return b
}

func (b *Blackhole) serve() {
	defer close(b.done)
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.accepted.Add(1)
		b.mu.Lock()
		b.conns = append(b.conns, c)
		b.mu.Unlock()
	}
}

// Accepted is how many connections the blackhole has accepted (and left hanging).
func (b *Blackhole) Accepted() int64 { return b.accepted.Load() }

// Close stops listening and closes every connection.
func (b *Blackhole) Close() {
	_ = b.ln.Close()
	<-b.done
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.conns {
		_ = c.Close()
	}
	b.conns = nil
}

// ClosedPort returns an OTLP endpoint on a loopback port nothing listens on: connections
// are refused at once. The kernel does not hand a just-released port to the next
// ephemeral bind, so it stays closed for the length of a test.
func ClosedPort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("closed port: %v", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatalf("closed port: %v", err)
	}
	return fmt.Sprintf("http://%s", addr)
}
