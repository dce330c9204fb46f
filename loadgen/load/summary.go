package load

import (
	"cmp"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"
)

// LatencySummary holds latency percentiles from an HDR histogram (microsecond resolution,
// 3 significant digits). Open-loop latency runs from each request's intended send time to
// its reply, so time spent waiting behind a slow system is included (no coordinated
// omission); closed-loop latency runs from the actual send.
type LatencySummary struct {
	Count                          int64
	Min, Mean, P50, P90, P99, P999 time.Duration
	Max                            time.Duration
}

// Summary is the result of a run (or, from Runner.Summary, the run so far).
type Summary struct {
	Mode Mode
	// Start is when the run started; Elapsed runs until the last reply (or now).
	Start   time.Time
	Elapsed time.Duration
	// TargetRate is the open-loop base rate at the end of the run (0 in closed loop).
	TargetRate float64
	// Scheduled counts requests whose time came: Sent + Dropped.
	Scheduled int64
	// Sent counts requests handed to NATS; Completed those that got a reply or an error.
	Sent, Completed int64
	// InFlight is Sent - Completed at the time of the summary (0 after Run returns).
	InFlight int64
	// Late counts open-loop requests sent more than Config.LateThreshold after their
	// intended time (they are still sent, and their latency includes the delay).
	Late int64
	// Dropped counts open-loop requests not sent because Config.Concurrency requests were
	// already in flight.
	Dropped int64
	// Retried counts order.create attempts sent again, with the same idempotency key,
	// after a timeout or a "pending" 503 (see Config.CreateRetries). A request counts
	// once in Sent and Completed however many attempts it took.
	Retried int64
	// AchievedRate is Completed / Elapsed, in requests per second.
	AchievedRate float64
	// Outcomes counts completed requests by outcome ("ok", "400", "402", "409", "timeout",
	// ...); Scenarios the same per scenario.
	Outcomes  map[string]int64
	Scenarios map[Scenario]map[string]int64
	// Unexpected counts requests whose outcome was not one their scenario expects (a valid
	// order failing with anything but 402 or 409, a malformed one not getting 400, a
	// timeout, ...). UnexpectedSamples describes the first few.
	Unexpected        int64
	UnexpectedSamples []string
	// Latency of every completed request.
	Latency LatencySummary
	// Confirmed and Failed list the ids of orders the replies reported confirmed or failed
	// (at most Config.KeepIDs each), for checking state afterwards.
	Confirmed, Failed []string
}

// String renders the summary on a few lines for a terminal.
func (s Summary) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "loadgen %s loop: %d sent in %s, %.1f req/s achieved", s.Mode, s.Sent, s.Elapsed.Round(time.Millisecond), s.AchievedRate)
	if s.Mode == ModeOpen {
		fmt.Fprintf(&b, " (target %.1f)", s.TargetRate)
	}
	fmt.Fprintf(&b, "\n  scheduled %d, completed %d, late %d, dropped %d, unexpected %d\n",
		s.Scheduled, s.Completed, s.Late, s.Dropped, s.Unexpected)
	fmt.Fprintf(&b, "  outcomes: %s\n", formatCounts(s.Outcomes))
	for _, sc := range append(slices.Clone(Scenarios), ScenarioCustom) {
		if m := s.Scenarios[sc]; len(m) > 0 {
			fmt.Fprintf(&b, "    %-14s %s\n", sc, formatCounts(m))
		}
	}
	l := s.Latency
	fmt.Fprintf(&b, "  latency: p50 %s  p90 %s  p99 %s  max %s  (mean %s, n=%d)\n",
		l.P50, l.P90, l.P99, l.Max, l.Mean.Round(time.Microsecond), l.Count)
	for _, u := range s.UnexpectedSamples {
		fmt.Fprintf(&b, "  unexpected: %s\n", u)
	}
	return b.String()
}

// LogValue makes a Summary log as a group of its main numbers.
func (s Summary) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("mode", string(s.Mode)),
		slog.Duration("elapsed", s.Elapsed),
		slog.Float64("target_rate", s.TargetRate),
		slog.Float64("achieved_rate", round1(s.AchievedRate)),
		slog.Int64("sent", s.Sent),
		slog.Int64("completed", s.Completed),
		slog.Int64("late", s.Late),
		slog.Int64("dropped", s.Dropped),
		slog.Int64("unexpected", s.Unexpected),
		slog.String("outcomes", formatCounts(s.Outcomes)),
		slog.Duration("p50", s.Latency.P50),
		slog.Duration("p90", s.Latency.P90),
		slog.Duration("p99", s.Latency.P99),
		slog.Duration("max", s.Latency.Max),
	)
}

// formatCounts renders {"ok": 90, "409": 10} as "ok=90 409=10", largest first.
func formatCounts(m map[string]int64) string {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(cmp.Compare(m[b], m[a]), cmp.Compare(a, b)) })
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }
