package servicegraph

import (
	"context"
	"sync"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Config configures a Graph. The zero value is usable.
type Config struct {
	// TTL is how long one side of an edge waits for the other before it expires.
	// Default 10s (Tempo's default wait).
	TTL time.Duration
	// MaxPending bounds the number of unpaired sides kept; spans beyond it are dropped
	// and counted in Snapshot.Dropped. Default 10000 (Tempo's max_items).
	MaxPending int
	// Window is the period the rate and error share are computed over; latency
	// percentiles cover the last one to two windows. Default 30s.
	Window time.Duration
	// Now is the clock; default time.Now. Tests may inject a fake one.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.TTL <= 0 {
		c.TTL = 10 * time.Second
	}
	if c.MaxPending <= 0 {
		c.MaxPending = 10_000
	}
	if c.Window <= 0 {
		c.Window = 30 * time.Second
	}
	if c.Window < time.Second {
		c.Window = time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Graph is an sdktrace.SpanProcessor that pairs spans into service graph edges. One Graph
// can be registered on several TracerProviders at once (one per service in the process).
// It is safe for concurrent use.
type Graph struct {
	cfg Config

	mu        sync.Mutex
	pending   map[pairKey]*side
	edges     map[EdgeKey]*edgeStats
	expired   int64
	dropped   int64
	lastSweep time.Time
	started   time.Time
}

var _ sdktrace.SpanProcessor = (*Graph)(nil)

// New returns an empty Graph.
func New(cfg Config) *Graph {
	cfg = cfg.withDefaults()
	now := cfg.Now()
	return &Graph{
		cfg:       cfg,
		pending:   make(map[pairKey]*side),
		edges:     make(map[EdgeKey]*edgeStats),
		lastSweep: now,
		started:   now,
	}
}

// OnStart does nothing: edges are made from finished spans.
func (g *Graph) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

// OnEnd pairs s with its other side, if it is an edge span.
func (g *Graph) OnEnd(s sdktrace.ReadOnlySpan) {
	sd, ok := sideOf(s)
	if !ok {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.cfg.Now()
	g.maybeSweep(now)

	switch {
	case sd.database:
		// A database call has only one span: complete it at once.
		g.complete(now, EdgeKey{Client: sd.service, Server: sd.dbNode, Type: ConnectionDatabase}, sd.failed, sd.latency, sd.latency)
		return
	case sd.server && !sd.key.parentValid:
		// A root server span: its caller is not traced, Tempo calls it "user".
		g.complete(now, EdgeKey{Client: UserNode, Server: sd.service, Type: ConnectionVirtual}, sd.failed, sd.latency, noLatency)
		return
	}

	other, found := g.pending[sd.key.pairKey]
	if !found {
		if len(g.pending) >= g.cfg.MaxPending {
			g.dropped++
			return
		}
		sd.added = now
		g.pending[sd.key.pairKey] = sd
		return
	}
	if other.server == sd.server {
		// Same side twice (a redelivered message, a second subscriber): keep the first,
		// as Tempo's upsert would merge them into one edge.
		return
	}
	delete(g.pending, sd.key.pairKey)
	client, server := other, sd
	if sd.client() {
		client, server = sd, other
	}
	typ := ConnectionRequest
	if client.messaging || server.messaging {
		typ = ConnectionMessaging
	}
	g.complete(now, EdgeKey{Client: client.service, Server: server.service, Type: typ},
		client.failed || server.failed, server.latency, client.latency)
}

// Shutdown does nothing; the graph stays readable.
func (g *Graph) Shutdown(context.Context) error { return nil }

// ForceFlush does nothing: OnEnd is synchronous.
func (g *Graph) ForceFlush(context.Context) error { return nil }

// Reset forgets every edge and pending side.
func (g *Graph) Reset() {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.cfg.Now()
	g.pending = make(map[pairKey]*side)
	g.edges = make(map[EdgeKey]*edgeStats)
	g.expired, g.dropped = 0, 0
	g.started, g.lastSweep = now, now
}

func (g *Graph) complete(now time.Time, k EdgeKey, failed bool, server, client time.Duration) {
	e := g.edges[k]
	if e == nil {
		e = newEdgeStats(now, g.cfg.Window)
		g.edges[k] = e
	}
	e.record(now, failed, server, client)
}

// maybeSweep expires old pending sides at most twice per TTL.
func (g *Graph) maybeSweep(now time.Time) {
	if now.Sub(g.lastSweep) < g.cfg.TTL/2 {
		return
	}
	g.sweep(now)
}

func (g *Graph) sweep(now time.Time) {
	g.lastSweep = now
	for k, sd := range g.pending {
		if now.Sub(sd.added) < g.cfg.TTL {
			continue
		}
		delete(g.pending, k)
		g.expired++
		if sd.client() && sd.peer != "" {
			g.complete(now, EdgeKey{Client: sd.service, Server: sd.peer, Type: ConnectionVirtual}, sd.failed, noLatency, sd.latency)
		}
	}
}

// pairKey identifies both sides of one edge: the client span's id in its trace.
type pairKey struct {
	trace trace.TraceID
	span  trace.SpanID
}
