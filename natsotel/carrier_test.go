package natsotel_test

import (
	"context"
	"net/http"
	"slices"
	"testing"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/natsotel/reference/natsotel"
)

func TestHeaderCarrierSetLowercaseAndReplaces(t *testing.T) {
	h := nats.Header{"Traceparent": []string{"old"}, "TRACEPARENT": []string{"older"}, "X-Other": []string{"1"}}
	c := natsotel.HeaderCarrier(h)
	c.Set("Traceparent", "new")
	if len(h) != 2 || h["traceparent"][0] != "new" || h["X-Other"][0] != "1" {
		t.Errorf("header after Set: %v", h)
	}
}

func TestHeaderCarrierGet(t *testing.T) {
	h := nats.Header{"Traceparent": []string{"A"}, "tracestate": []string{"b"}, "empty": nil}
	c := natsotel.HeaderCarrier(h)
	for key, want := range map[string]string{"traceparent": "A", "Traceparent": "A", "TRACESTATE": "b", "tracestate": "b", "missing": "", "empty": ""} {
		if got := c.Get(key); got != want {
			t.Errorf("Get(%q) = %q, want %q", key, got, want)
		}
	}
	// Exact match wins over a case-folded one.
	h2 := natsotel.HeaderCarrier{"traceparent": []string{"lower"}, "Traceparent": []string{"upper"}}
	if got := h2.Get("Traceparent"); got != "upper" {
		t.Errorf("exact match: %q", got)
	}
	keys := c.Keys()
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"Traceparent", "empty", "tracestate"}) {
		t.Errorf("Keys %v", keys)
	}
}

func TestHeaderCarrierNil(t *testing.T) {
	var c natsotel.HeaderCarrier
	c.Set("traceparent", "x") // no panic
	if c.Get("traceparent") != "" || c.Keys() != nil {
		t.Error("nil carrier should be empty")
	}
	ctx := propagation.TraceContext{}.Extract(context.Background(), c)
	if trace.SpanContextFromContext(ctx).IsValid() {
		t.Error("extracted from nil")
	}
}

// Interop with code that uses propagation.HeaderCarrier (http.Header): it writes
// "Traceparent", which natsotel must read.
func TestHeaderCarrierInteropWithHTTPStyleWriter(t *testing.T) {
	prop := propagation.TraceContext{}
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled})
	hh := http.Header{}
	prop.Inject(trace.ContextWithSpanContext(context.Background(), sc), propagation.HeaderCarrier(hh))
	if hh.Get("Traceparent") == "" {
		t.Fatal("http carrier wrote nothing")
	}
	nh := nats.Header(hh) // keys "Traceparent"
	got := trace.SpanContextFromContext(prop.Extract(context.Background(), natsotel.HeaderCarrier(nh)))
	if got.TraceID() != sc.TraceID() || got.SpanID() != sc.SpanID() {
		t.Errorf("extracted %v", got)
	}
}

// Several spellings of one key: Get is deterministic (the spelling that sorts first), and
// an exact key without a value does not hide another spelling that has one.
func TestHeaderCarrierGetDeterministic(t *testing.T) {
	h := natsotel.HeaderCarrier{"Traceparent": {"A"}, "TRACEPARENT": {"B"}}
	for range 200 {
		if got := h.Get("traceparent"); got != "B" { // "TRACEPARENT" < "Traceparent"
			t.Fatalf("Get = %q, want B every time", got)
		}
	}
	if got := (natsotel.HeaderCarrier{"traceparent": {}, "Traceparent": {"A"}}).Get("traceparent"); got != "A" {
		t.Errorf("Get = %q: an empty exact key hid the value of another spelling", got)
	}
}
