package load

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/natsotel/reference/natsotel"
	"github.com/natsotel/reference/services/contracts"
)

func TestControlEndpoint(t *testing.T) {
	nc := connect(t, startServer(t))
	conn, _ := tracedConn(t, nc)
	r, err := New(conn, nil, Config{Rate: 20, Progress: -1})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := r.AddControlService(nc)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Stop()

	if info := svc.Info(); info.Name != ControlService || len(info.Endpoints) != 1 || info.Endpoints[0].Subject != ControlSubject {
		t.Fatalf("service info: %+v", info)
	}

	call := func(body string) (State, error) {
		t.Helper()
		reply, err := conn.Request(t.Context(), ControlSubject, []byte(body))
		var st State
		if reply != nil && len(reply.Data) > 0 {
			if jerr := json.Unmarshal(reply.Data, &st); jerr != nil {
				t.Fatalf("reply %q: %v", reply.Data, jerr)
			}
		}
		return st, err
	}

	st, err := call("")
	if err != nil || st.Mode != ModeOpen || st.Rate != 20 || st.EffectiveRate != 20 {
		t.Fatalf("read: %+v %v", st, err)
	}
	if st, err = call(`{}`); err != nil || st.Rate != 20 {
		t.Fatalf("read {}: %+v %v", st, err)
	}
	if st, err = call(`{"rate": 50}`); err != nil || st.Rate != 50 || st.EffectiveRate != 50 {
		t.Fatalf("set rate: %+v %v", st, err)
	}
	if st, err = call(`{"burst_multiplier": 3, "burst_seconds": 30}`); err != nil ||
		st.EffectiveRate != 150 || st.BurstMultiplier != 3 || st.BurstRemainingSeconds <= 0 || st.BurstRemainingSeconds > 30 {
		t.Fatalf("burst: %+v %v", st, err)
	}
	if st, err = call(`{"burst_seconds": 0}`); err != nil || st.EffectiveRate != 50 || st.BurstMultiplier != 0 {
		t.Fatalf("end burst: %+v %v", st, err)
	}

	for _, bad := range []string{`{"rate": -1}`, `{"rate": "fast"}`, `{"speed": 1}`, `not json`,
		`{"burst_seconds": 10}`, `{"burst_multiplier": 0, "burst_seconds": 10}`, `{"burst_multiplier": 2, "burst_seconds": -1}`} {
		st, err := call(bad)
		var se *natsotel.ServiceError
		if !errors.As(err, &se) || se.CodeText != contracts.CodeBadRequest {
			t.Errorf("%s: want a 400 micro error, got %v", bad, err)
		}
		if bad == `{"rate": -1}` && st.Rate != 50 {
			t.Errorf("a rejected request must not change the rate: %+v", st)
		}
	}
	if r.State().Rate != 50 {
		t.Fatalf("state changed by bad requests: %+v", r.State())
	}

	big := make([]byte, maxControlBytes+1)
	if _, err := conn.Request(t.Context(), ControlSubject, big); err == nil {
		t.Fatal("oversized control request: want error")
	} else if se := (*natsotel.ServiceError)(nil); !errors.As(err, &se) || se.CodeText != contracts.CodeTooLarge {
		t.Fatalf("oversized: %v", err)
	}

	// Stats show up like any micro service's.
	stats := svc.Stats()
	if stats.Endpoints[0].NumRequests == 0 || stats.Endpoints[0].NumErrors == 0 {
		t.Fatalf("stats: %+v", stats.Endpoints[0])
	}
	var _ micro.Service = svc
}

func TestControlInClosedModeRejectsRate(t *testing.T) {
	r, err := New(nopRequester{}, nil, Config{Mode: ModeClosed})
	if err != nil {
		t.Fatal(err)
	}
	rate := 10.0
	if _, err := r.Apply(ControlRequest{Rate: &rate}); err == nil {
		t.Fatal("want error")
	}
	if st, err := r.Apply(ControlRequest{}); err != nil || st.Mode != ModeClosed || st.Rate != 0 {
		t.Fatalf("read: %+v %v", st, err)
	}
}

// Absurd control values are refused with a 400 naming the value, and change nothing,
// not even the fields of the same request that were fine.
func TestControlRejectsAbsurdValues(t *testing.T) {
	nc := connect(t, startServer(t))
	conn, _ := tracedConn(t, nc)
	r, err := New(conn, nil, Config{Rate: 200, Progress: -1})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := r.AddControlService(nc)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Stop()
	for _, c := range []struct{ body, mention string }{
		{`{"rate": 1e308}`, "rate"},
		{`{"rate": 10001}`, "rate"},
		{`{"rate": -1}`, "rate"},
		{`{"rate": -0.5, "burst_seconds": 0}`, "rate"},
		{`{"rate": NaN}`, "invalid"},
		{`{"rate": "Infinity"}`, "invalid"},
		{`null`, "JSON object"},
		{`[]`, "JSON object"},
		{`3`, "JSON object"},
		{`{"rate": null}`, "rate is null"},
		{`{"burst_multiplier": null, "burst_seconds": 10}`, "burst_multiplier is null"},
		{`{"burst_multiplier": 1000, "burst_seconds": 10}`, "burst_multiplier"},
		{`{"burst_multiplier": -2, "burst_seconds": 10}`, "burst_multiplier"},
		{`{"burst_multiplier": -2}`, "burst_multiplier"},
		{`{"burst_multiplier": 0, "burst_seconds": 0}`, "burst_multiplier"},
		{`{"burst_multiplier": 60, "burst_seconds": 10}`, "maximum rate"}, // 200 * 60 > MaxRate
		{`{"burst_multiplier": 2, "burst_seconds": 86401}`, "burst_seconds"},
		{`{"rate": 50, "burst_multiplier": 1000, "burst_seconds": 10}`, "burst_multiplier"},
	} {
		reply, err := conn.Request(t.Context(), ControlSubject, []byte(c.body))
		var se *natsotel.ServiceError
		if !errors.As(err, &se) || se.CodeText != contracts.CodeBadRequest {
			t.Errorf("%s: want a 400 micro error, got %v (reply %q)", c.body, err, replyData(reply))
			continue
		}
		if !strings.Contains(se.Description, c.mention) {
			t.Errorf("%s: error %q does not mention %q", c.body, se.Description, c.mention)
		}
		if st := r.State(); st.Rate != 200 || st.EffectiveRate != 200 || st.BurstMultiplier != 0 {
			t.Fatalf("%s changed the state: %+v", c.body, st)
		}
	}
	// At the limits, accepted.
	max, mult, secs := MaxRate, 2.0, 1
	if _, err := r.Apply(ControlRequest{Rate: &max}); err != nil {
		t.Fatalf("rate %v: %v", max, err)
	}
	if _, err := r.Apply(ControlRequest{BurstMultiplier: &mult, BurstSeconds: &secs}); err == nil {
		t.Fatal("a burst over the maximum rate: want error")
	}
}

func replyData(m *nats.Msg) []byte {
	if m == nil {
		return nil
	}
	return m.Data
}
