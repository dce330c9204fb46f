package servicegraph

import (
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// ConnectionType is the kind of an edge, as Tempo's connection_type label names it.
type ConnectionType string

const (
	// ConnectionRequest is a CLIENT -> SERVER pair (request/reply). Tempo's label is empty.
	ConnectionRequest ConnectionType = "request"
	// ConnectionMessaging is a pair with a PRODUCER or CONSUMER side.
	ConnectionMessaging ConnectionType = "messaging_system"
	// ConnectionDatabase is a CLIENT span with database attributes.
	ConnectionDatabase ConnectionType = "database"
	// ConnectionVirtual is an edge to or from a node that sent no span.
	ConnectionVirtual ConnectionType = "virtual_node"
)

// UserNode is the client node of a root SERVER or CONSUMER span.
const UserNode = "user"

// EdgeKey identifies an edge.
type EdgeKey struct {
	Client, Server string
	Type           ConnectionType
}

// Latency histograms: 1 µs to 1 hour at 2 significant digits (a few KiB each).
const (
	histMin    = 1
	histMax    = int64(time.Hour / time.Microsecond)
	histDigits = 2
)

// edgeStats accumulates one edge. Counts over the window live in one-second slots; latency
// in two histograms, the current one and the previous, rotated every window.
type edgeStats struct {
	window        time.Duration
	requests      int64
	failed        int64
	first         time.Time
	slots         []slot
	server, prevS *hdrhistogram.Histogram
	client, prevC *hdrhistogram.Histogram
	rotated       time.Time
}

type slot struct {
	second   int64
	requests int64
	failed   int64
}

func newEdgeStats(now time.Time, window time.Duration) *edgeStats {
	return &edgeStats{
		window:  window,
		first:   now,
		slots:   make([]slot, int(window/time.Second)),
		server:  newHist(),
		prevS:   newHist(),
		client:  newHist(),
		prevC:   newHist(),
		rotated: now,
	}
}

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(histMin, histMax, histDigits) }

func (e *edgeStats) record(now time.Time, failed bool, server, client time.Duration) {
	e.requests++
	if failed {
		e.failed++
	}
	sec := now.Unix()
	s := &e.slots[sec%int64(len(e.slots))]
	if s.second != sec {
		*s = slot{second: sec}
	}
	s.requests++
	if failed {
		s.failed++
	}
	e.rotate(now)
	if server >= 0 {
		_ = e.server.RecordValue(micros(server))
	}
	if client >= 0 {
		_ = e.client.RecordValue(micros(client))
	}
}

func (e *edgeStats) rotate(now time.Time) {
	switch since := now.Sub(e.rotated); {
	case since >= 2*e.window:
		e.prevS.Reset()
		e.prevC.Reset()
		e.server.Reset()
		e.client.Reset()
		e.rotated = now
	case since >= e.window:
		e.prevS, e.server = e.server, e.prevS
		e.prevC, e.client = e.client, e.prevC
		e.server.Reset()
		e.client.Reset()
		e.rotated = now
	}
}

func micros(d time.Duration) int64 {
	us := d.Microseconds()
	if us < histMin {
		return histMin
	}
	if us > histMax {
		return histMax
	}
	return us
}

// stats reads the edge at now.
func (e *edgeStats) stats(now time.Time, k EdgeKey) Edge {
	e.rotate(now)
	out := Edge{EdgeKey: k, Requests: e.requests, Failed: e.failed}
	sec := now.Unix()
	n := int64(len(e.slots))
	for _, s := range e.slots {
		if s.second > sec-n && s.second <= sec {
			out.WindowRequests += s.requests
			out.WindowFailed += s.failed
		}
	}
	span := min(e.window, now.Sub(e.first))
	if span < time.Second {
		span = time.Second
	}
	out.Rate = float64(out.WindowRequests) / span.Seconds()
	if out.WindowRequests > 0 {
		out.ErrorShare = float64(out.WindowFailed) / float64(out.WindowRequests)
	}
	out.ServerLatency = percentiles(e.server, e.prevS)
	out.ClientLatency = percentiles(e.client, e.prevC)
	return out
}

func percentiles(cur, prev *hdrhistogram.Histogram) Latency {
	h := newHist()
	h.Merge(cur)
	h.Merge(prev)
	if h.TotalCount() == 0 {
		return Latency{}
	}
	us := func(v int64) time.Duration { return time.Duration(v) * time.Microsecond }
	return Latency{
		Count: h.TotalCount(),
		P50:   us(h.ValueAtQuantile(50)),
		P90:   us(h.ValueAtQuantile(90)),
		P99:   us(h.ValueAtQuantile(99)),
		Max:   us(h.Max()),
	}
}
