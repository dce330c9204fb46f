package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// hopTimes is a span processor for the nats-hops TracerProvider: it keeps the last
// durations of each step span ("deliver order.create", "store ORDER_EVENTS"), which run
// from the message's arrival at the server to that step, so the demo can print where
// messages spend their time inside NATS.
type hopTimes struct {
	mu    sync.Mutex
	steps map[string]*durations
}

// durations is a ring of the last len(d) durations.
type durations struct {
	d [512]time.Duration
	n int // total recorded
}

func newHopTimes() *hopTimes { return &hopTimes{steps: map[string]*durations{}} }

func (h *hopTimes) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (h *hopTimes) Shutdown(context.Context) error                  { return nil }
func (h *hopTimes) ForceFlush(context.Context) error                { return nil }

// OnEnd records a step span; the per-server "hop" spans are not steps.
func (h *hopTimes) OnEnd(s sdktrace.ReadOnlySpan) {
	if strings.HasPrefix(s.Name(), "hop ") {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.steps[s.Name()]
	if r == nil {
		r = &durations{}
		h.steps[s.Name()] = r
	}
	r.d[r.n%len(r.d)] = s.EndTime().Sub(s.StartTime())
	r.n++
}

// print writes one line per step: count, p50 and p99 of its recent durations.
func (h *hopTimes) print(w io.Writer) {
	h.mu.Lock()
	type row struct {
		name     string
		n        int
		p50, p99 time.Duration
	}
	var rows []row
	for name, r := range h.steps {
		d := slices.Clone(r.d[:min(r.n, len(r.d))])
		slices.Sort(d)
		rows = append(rows, row{name, r.n, d[len(d)*50/100], d[len(d)*99/100]})
	}
	h.mu.Unlock()
	if len(rows) == 0 {
		return
	}
	slices.SortFunc(rows, func(a, b row) int { return strings.Compare(a.name, b.name) })
	fmt.Fprintf(w, "nats-server hops (time from arrival at the server, last %d per step):\n", len(durations{}.d))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  STEP\tTOTAL\tP50\tP99")
	for _, r := range rows {
		fmt.Fprintf(tw, "  %s\t%d\t%v\t%v\n", r.name, r.n, r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond))
	}
	_ = tw.Flush()
}
