package load

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/natsotel/reference/natsotel"
	"github.com/natsotel/reference/services/contracts"
)

func within(got, want time.Duration, rel float64) bool {
	d := float64(got - want)
	return d <= rel*float64(want) && d >= -rel*float64(want)
}

func TestStatsPercentilesAndCounts(t *testing.T) {
	st := newStats(3)
	valid := request{scenario: ScenarioValidOrder, expect: []string{OutcomeOK, contracts.CodeConflict, contracts.CodePaymentDeclined}}
	// 1..100 ms, one request each: p50 = 50 ms, p90 = 90 ms, p99 = 99 ms, max = 100 ms.
	for i := 1; i <= 100; i++ {
		r := result{req: valid, outcome: OutcomeOK, latency: time.Duration(i) * time.Millisecond,
			orderID: fmt.Sprintf("ord-%d", i), status: statusConfirmed}
		switch {
		case i%10 == 0:
			r.outcome, r.status = contracts.CodeConflict, statusFailed
		case i == 7:
			r.outcome, r.status, r.detail = OutcomeTimeout, statusUnknown, "no reply"
		}
		st.record(r)
	}
	st.scheduled.Store(103)
	st.sent.Store(100)
	st.dropped.Store(3)
	st.late.Store(5)

	s := st.summary()
	if s.Completed != 100 || s.Scheduled != 103 || s.Dropped != 3 || s.Late != 5 {
		t.Fatalf("counts: %+v", s)
	}
	if s.Outcomes[OutcomeOK] != 89 || s.Outcomes[contracts.CodeConflict] != 10 || s.Outcomes[OutcomeTimeout] != 1 {
		t.Fatalf("outcomes: %v", s.Outcomes)
	}
	if s.Scenarios[ScenarioValidOrder][OutcomeOK] != 89 {
		t.Fatalf("scenarios: %v", s.Scenarios)
	}
	// Only the timeout is unexpected for a valid order (409 and 402 are legitimate answers).
	if s.Unexpected != 1 || len(s.UnexpectedSamples) != 1 || !strings.Contains(s.UnexpectedSamples[0], "got timeout") ||
		!strings.Contains(s.UnexpectedSamples[0], "no reply") {
		t.Fatalf("unexpected: %d %v", s.Unexpected, s.UnexpectedSamples)
	}
	l := s.Latency
	// HDR with 3 significant digits: values are exact to 0.1%.
	for name, c := range map[string][2]time.Duration{
		"p50": {l.P50, 50 * time.Millisecond}, "p90": {l.P90, 90 * time.Millisecond},
		"p99": {l.P99, 99 * time.Millisecond}, "max": {l.Max, 100 * time.Millisecond},
		"min": {l.Min, time.Millisecond}, "mean": {l.Mean, 50500 * time.Microsecond},
	} {
		if !within(c[0], c[1], 0.002) {
			t.Errorf("%s = %v, want %v", name, c[0], c[1])
		}
	}
	if l.Count != 100 {
		t.Errorf("count %d", l.Count)
	}
	// KeepIDs = 3 keeps the first three of each.
	if strings.Join(s.Confirmed, ",") != "ord-1,ord-2,ord-3" || strings.Join(s.Failed, ",") != "ord-10,ord-20,ord-30" {
		t.Fatalf("ids: %v %v", s.Confirmed, s.Failed)
	}

	w := st.takeWindow()
	if w.completed != 100 || !within(w.latency.P50, 50*time.Millisecond, 0.002) {
		t.Fatalf("window: %+v", w)
	}
	if w = st.takeWindow(); w.completed != 0 || w.latency.Count != 0 {
		t.Fatalf("window not reset: %+v", w)
	}
}

func TestSummaryRateAndString(t *testing.T) {
	r, err := New(nopRequester{}, nil, Config{Rate: 10})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r.started, r.finished = start, start.Add(4*time.Second)
	for range 20 {
		r.st.record(result{req: request{scenario: ScenarioLookup, expect: []string{OutcomeOK}}, outcome: OutcomeOK, latency: time.Millisecond})
	}
	s := r.Summary()
	if s.Elapsed != 4*time.Second || s.AchievedRate != 5 || s.TargetRate != 10 || s.Mode != ModeOpen {
		t.Fatalf("summary: %+v", s)
	}
	out := s.String()
	for _, want := range []string{"5.0 req/s achieved (target 10.0)", "outcomes: ok=20", "lookup", "p99 1ms"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary text lacks %q:\n%s", want, out)
		}
	}
}

type nopRequester struct{}

func (nopRequester) Request(context.Context, string, []byte) (*nats.Msg, error) {
	return &nats.Msg{}, nil
}

func TestOutcome(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{nil, OutcomeOK},
		{&natsotel.ServiceError{Code: "409"}, "409"},
		{fmt.Errorf("wrapped: %w", &natsotel.ServiceError{Code: "402"}), "402"},
		{&natsotel.ServiceError{Code: "not-a-code"}, OutcomeError},
		{&natsotel.OpError{Op: "request", Err: nats.ErrNoResponders}, OutcomeNoResponders},
		{&natsotel.OpError{Op: "request", Err: context.DeadlineExceeded}, OutcomeTimeout},
		{nats.ErrTimeout, OutcomeTimeout},
		{context.Canceled, OutcomeCanceled},
		{errors.New("boom"), OutcomeError},
	} {
		if got := Outcome(c.err); got != c.want {
			t.Errorf("Outcome(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

func TestOrderOf(t *testing.T) {
	for _, c := range []struct {
		data    string
		isError bool
		id      string
		status  orderStatus
	}{
		{`{"id":"o1","status":"confirmed"}`, false, "o1", statusConfirmed},
		{`{"id":"o2","status":"failed"}`, false, "o2", statusFailed},
		{`{"id":"o3","status":"pending"}`, true, "o3", statusUnknown},
		{`{"id":"o5","status":"failed"}`, true, "o5", statusFailed},
		{`{"id":"o6","status":"confirmed"}`, true, "o6", statusUnknown},
		{`{"id":"o4","status":"pending"}`, false, "o4", statusUnknown},
		{`{"status":"confirmed"}`, false, "", statusUnknown},
		{`not json`, true, "", statusUnknown},
		{``, true, "", statusUnknown},
	} {
		id, st := orderOf([]byte(c.data), c.isError)
		if id != c.id || st != c.status {
			t.Errorf("orderOf(%s, %v) = %q %v, want %q %v", c.data, c.isError, id, st, c.id, c.status)
		}
	}
}
