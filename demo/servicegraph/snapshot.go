package servicegraph

import (
	"cmp"
	"slices"
	"time"
)

// Latency holds percentiles of one side's span durations.
type Latency struct {
	Count              int64
	P50, P90, P99, Max time.Duration
}

// Edge is one edge of a Snapshot.
type Edge struct {
	EdgeKey
	// Requests and Failed count every pair since the Graph started (or was Reset).
	Requests, Failed int64
	// WindowRequests and WindowFailed count the pairs completed in the last Config.Window.
	WindowRequests, WindowFailed int64
	// Rate is WindowRequests per second (over the edge's age if younger than the window).
	Rate float64
	// ErrorShare is WindowFailed / WindowRequests (0..1).
	ErrorShare float64
	// ServerLatency is the SERVER/CONSUMER span duration (for database edges the CLIENT
	// span's); ClientLatency is the CLIENT/PRODUCER span duration. Both over the last one
	// to two windows.
	ServerLatency, ClientLatency Latency
}

// Snapshot is the graph at one instant.
type Snapshot struct {
	At time.Time
	// Edges sorted by client, server, type.
	Edges []Edge
	// Pending is the number of sides waiting for their pair.
	Pending int
	// Expired counts sides that waited longer than the TTL; Dropped counts sides refused
	// because MaxPending was reached.
	Expired, Dropped int64
}

// Snapshot expires old pending sides and returns the graph now.
func (g *Graph) Snapshot() Snapshot {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.cfg.Now()
	g.sweep(now)
	s := Snapshot{At: now, Pending: len(g.pending), Expired: g.expired, Dropped: g.dropped}
	for k, e := range g.edges {
		s.Edges = append(s.Edges, e.stats(now, k))
	}
	slices.SortFunc(s.Edges, func(a, b Edge) int {
		return cmp.Or(cmp.Compare(a.Client, b.Client), cmp.Compare(a.Server, b.Server), cmp.Compare(a.Type, b.Type))
	})
	return s
}

// Edge returns the edge client -> server of type typ.
func (s Snapshot) Edge(client, server string, typ ConnectionType) (Edge, bool) {
	for _, e := range s.Edges {
		if e.Client == client && e.Server == server && e.Type == typ {
			return e, true
		}
	}
	return Edge{}, false
}

// Keys returns the keys of every edge, in Edges order.
func (s Snapshot) Keys() []EdgeKey {
	keys := make([]EdgeKey, len(s.Edges))
	for i, e := range s.Edges {
		keys[i] = e.EdgeKey
	}
	return keys
}

// Nodes returns every node name, sorted.
func (s Snapshot) Nodes() []string {
	var nodes []string
	for _, e := range s.Edges {
		nodes = append(nodes, e.Client, e.Server)
	}
	slices.Sort(nodes)
	return slices.Compact(nodes)
}
