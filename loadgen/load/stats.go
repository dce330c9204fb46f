package load

import (
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latency histograms record microseconds from 1 µs to 1 hour with 3 significant digits.
const (
	histMin    = 1
	histMax    = int64(time.Hour / time.Microsecond)
	histDigits = 3
)

// maxUnexpectedSamples bounds Summary.UnexpectedSamples.
const maxUnexpectedSamples = 20

// stats accumulates a run. Counters touched by the scheduler on every tick are atomics;
// what a completed request updates is under mu.
type stats struct {
	scheduled, sent, late, dropped, inFlight, retried atomic.Int64

	mu                sync.Mutex
	keep              int
	all, window       *hdrhistogram.Histogram
	completed         int64
	windowCompleted   int64
	outcomes          map[string]int64
	scenarios         map[Scenario]map[string]int64
	unexpected        int64
	unexpectedSamples []string
	confirmed, failed []string
}

func newStats(keep int) *stats {
	return &stats{
		keep:      keep,
		all:       hdrhistogram.New(histMin, histMax, histDigits),
		window:    hdrhistogram.New(histMin, histMax, histDigits),
		outcomes:  map[string]int64{},
		scenarios: map[Scenario]map[string]int64{},
	}
}

// result is what one completed request contributes.
type result struct {
	req     request
	outcome string
	latency time.Duration
	detail  string // error text, for unexpected samples
	orderID string // order created (or failed) by this request, if known
	status  orderStatus
}

type orderStatus int

const (
	statusUnknown orderStatus = iota
	statusConfirmed
	statusFailed
)

func (s *stats) record(r result) {
	us := min(max(r.latency.Microseconds(), histMin), histMax)
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.all.RecordValue(us)
	_ = s.window.RecordValue(us)
	s.completed++
	s.windowCompleted++
	s.outcomes[r.outcome]++
	byOutcome := s.scenarios[r.req.scenario]
	if byOutcome == nil {
		byOutcome = map[string]int64{}
		s.scenarios[r.req.scenario] = byOutcome
	}
	byOutcome[r.outcome]++
	if !r.req.expected(r.outcome) {
		s.unexpected++
		if len(s.unexpectedSamples) < maxUnexpectedSamples {
			sample := fmt.Sprintf("%s: got %s, want one of %v", r.req.scenario, r.outcome, r.req.expect)
			if r.req.variant != "" {
				sample = fmt.Sprintf("%s/%s: got %s, want one of %v", r.req.scenario, r.req.variant, r.outcome, r.req.expect)
			}
			if r.detail != "" {
				sample += " (" + r.detail + ")"
			}
			s.unexpectedSamples = append(s.unexpectedSamples, sample)
		}
	}
	switch r.status {
	case statusConfirmed:
		if len(s.confirmed) < s.keep {
			s.confirmed = append(s.confirmed, r.orderID)
		}
	case statusFailed:
		if len(s.failed) < s.keep {
			s.failed = append(s.failed, r.orderID)
		}
	}
}

// progress is one progress line's worth of numbers.
type progress struct {
	completed int64
	latency   LatencySummary
}

// takeWindow returns the requests completed since the previous call and their latency.
func (s *stats) takeWindow() progress {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := progress{completed: s.windowCompleted, latency: latencyOf(s.window)}
	s.window.Reset()
	s.windowCompleted = 0
	return p
}

// summary fills the counting fields of a Summary.
func (s *stats) summary() Summary {
	sum := Summary{
		Scheduled: s.scheduled.Load(),
		Sent:      s.sent.Load(),
		Late:      s.late.Load(),
		Dropped:   s.dropped.Load(),
		InFlight:  s.inFlight.Load(),
		Retried:   s.retried.Load(),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sum.Completed = s.completed
	sum.Unexpected = s.unexpected
	sum.UnexpectedSamples = append([]string(nil), s.unexpectedSamples...)
	sum.Outcomes = maps.Clone(s.outcomes)
	sum.Scenarios = make(map[Scenario]map[string]int64, len(s.scenarios))
	for sc, m := range s.scenarios {
		sum.Scenarios[sc] = maps.Clone(m)
	}
	sum.Latency = latencyOf(s.all)
	sum.Confirmed = append([]string(nil), s.confirmed...)
	sum.Failed = append([]string(nil), s.failed...)
	return sum
}

func latencyOf(h *hdrhistogram.Histogram) LatencySummary {
	if h.TotalCount() == 0 {
		return LatencySummary{}
	}
	us := func(v int64) time.Duration { return time.Duration(v) * time.Microsecond }
	return LatencySummary{
		Count: h.TotalCount(),
		Min:   us(h.Min()),
		Mean:  time.Duration(h.Mean() * float64(time.Microsecond)),
		P50:   us(h.ValueAtQuantile(50)),
		P90:   us(h.ValueAtQuantile(90)),
		P99:   us(h.ValueAtQuantile(99)),
		P999:  us(h.ValueAtQuantile(99.9)),
		Max:   us(h.Max()),
	}
}
