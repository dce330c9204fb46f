package faultkit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/natsotel/reference/loadgen/load"
	"github.com/natsotel/reference/natsotel"
	"github.com/natsotel/reference/services/contracts"
)

// Call is one request the load generator sent, as the Recorder saw it.
type Call struct {
	Subject string
	// Start is when the request was first sent: an order.create the load generator sends
	// again with the same idempotency key (a retry after a timeout) is the same request,
	// and its later attempts keep the first attempt's Start. Retry marks those attempts.
	Start, End time.Time
	Retry      bool
	// Outcome is load.Outcome of the error: "ok", a micro code ("409"), "timeout",
	// "no_responders", ...
	Outcome string
	// OrderID and Status come from an order.create reply (or the order carried in an
	// error reply's body); empty when there was none.
	OrderID string
	Status  contracts.OrderStatus
	Err     string
}

// Recorder is a load.Requester that records every request it passes on.
type Recorder struct {
	next load.Requester

	mu    sync.Mutex
	calls []Call
	first map[string]time.Time // idempotency key -> start of its first attempt
}

var _ load.Requester = (*Recorder)(nil)

// NewRecorder records the requests sent through next.
func NewRecorder(next load.Requester) *Recorder { return &Recorder{next: next} }

// Request sends through the wrapped requester and records the call.
func (r *Recorder) Request(ctx context.Context, subject string, data []byte) (*nats.Msg, error) {
	c := Call{Subject: subject, Start: time.Now()}
	if key := idempotencyKey(subject, data); key != "" {
		r.mu.Lock()
		if r.first == nil {
			r.first = map[string]time.Time{}
		}
		if t, ok := r.first[key]; ok {
			c.Start, c.Retry = t, true
		} else {
			r.first[key] = c.Start
		}
		r.mu.Unlock()
	}
	reply, err := r.next.Request(ctx, subject, data)
	c.End = time.Now()
	c.Outcome = load.Outcome(err)
	if err != nil {
		c.Err = err.Error()
	}
	if subject == contracts.SubjectOrderCreate {
		body := []byte(nil)
		if reply != nil {
			body = reply.Data
		}
		var se *natsotel.ServiceError
		if errors.As(err, &se) && len(se.Data) > 0 {
			body = se.Data
		}
		var o contracts.Order
		if len(body) > 0 && body[0] == '{' && json.Unmarshal(body, &o) == nil {
			c.OrderID, c.Status = o.ID, o.Status
		}
	}
	r.mu.Lock()
	r.calls = append(r.calls, c)
	r.mu.Unlock()
	return reply, err
}

// idempotencyKey returns the idempotency key of an order.create body, if it has one.
func idempotencyKey(subject string, data []byte) string {
	if subject != contracts.SubjectOrderCreate {
		return ""
	}
	var req contracts.CreateOrderRequest
	if json.Unmarshal(data, &req) != nil {
		return ""
	}
	return req.IdempotencyKey
}

// Calls returns the calls recorded so far, in the order they ended.
func (r *Recorder) Calls() []Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Call(nil), r.calls...)
}

// Window is a time interval, [From, To].
type Window struct {
	Name     string
	From, To time.Time
}

// Overlaps reports whether the call was in flight at some time within w.
func (w Window) Overlaps(c Call) bool { return !c.Start.After(w.To) && !c.End.Before(w.From) }

// CountOutcomes counts calls by outcome.
func CountOutcomes(calls []Call) map[string]int {
	m := map[string]int{}
	for _, c := range calls {
		m[c.Outcome]++
	}
	return m
}

// FormatCounts renders {"ok": 90, "409": 10} as "409=10 ok=90".
func FormatCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

// Latencies returns the round-trip time (End - Start) of each call.
func Latencies(calls []Call) []time.Duration {
	out := make([]time.Duration, len(calls))
	for i, c := range calls {
		out[i] = c.End.Sub(c.Start)
	}
	return out
}

// Quantile returns the q-quantile (0 < q <= 1) of ds by the nearest-rank method: the
// smallest value with at least q of the values at or below it. 0 for no values.
func Quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rank := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(rank, 0), len(s)-1)]
}
