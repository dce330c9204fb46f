package natsotel_test

import (
	"context"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/natsotel/reference/natsotel"
)

// FuzzHeaderCarrier checks Set/Get/Keys on arbitrary keys and values: no panics, Set is
// visible to Get in any ASCII case, and only one spelling of a key survives Set. (Header
// names are ASCII tokens; non-ASCII bytes are matched exactly.)
func FuzzHeaderCarrier(f *testing.F) {
	f.Add("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "Traceparent")
	f.Add("Baggage", "a=b,c=d", "BAGGAGE")
	f.Add("", "", "")
	f.Add("ǅ", "\x00\xff", "ǆ")
	f.Add("K", strings.Repeat("v", 1000), "k")
	f.Fuzz(func(t *testing.T, key, value, other string) {
		h := nats.Header{other: []string{"pre"}}
		c := natsotel.HeaderCarrier(h)
		c.Set(key, value)
		if got := c.Get(key); got != value {
			t.Fatalf("Get(%q) after Set = %q, want %q", key, got, value)
		}
		// Case-insensitive read of what was just written.
		if up := asciiUpper(key); up != key {
			if got := c.Get(up); got != value {
				t.Fatalf("Get(%q) = %q, want %q", up, got, value)
			}
		}
		n := 0
		for _, k := range c.Keys() {
			if asciiUpper(k) == asciiUpper(key) {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%d spellings of %q after Set: %v", n, key, h)
		}
		var nilc natsotel.HeaderCarrier
		nilc.Set(key, value)
		_ = nilc.Get(key)
	})
}

// asciiUpper uppers ASCII letters only (the carrier's notion of case).
func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - ('a' - 'A')
		}
	}
	return string(b)
}

// FuzzExtract feeds arbitrary trace headers, in any key case, through the propagators:
// no panic, and either a valid remote span context or none.
func FuzzExtract(f *testing.F) {
	f.Add("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "rojo=00f067aa0ba902b7", "k=v")
	f.Add("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", "", "")
	f.Add("TRACEPARENT", "garbage", "=,=", "%%%;;")
	f.Add("traceparent", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "a=b", "k=v;p")
	f.Add("traceparent", "00-00000000000000000000000000000000-0000000000000000-01", "", "")
	f.Add("traceparent", strings.Repeat("0", 55), strings.Repeat("x=y,", 40), strings.Repeat("k=v,", 200))
	prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	f.Fuzz(func(t *testing.T, key, traceparent, tracestate, bag string) {
		h := nats.Header{key: []string{traceparent}, "tracestate": []string{tracestate}, "baggage": []string{bag}}
		ctx := prop.Extract(context.Background(), natsotel.HeaderCarrier(h))
		sc := trace.SpanContextFromContext(ctx)
		if sc.IsValid() {
			if !sc.IsRemote() {
				t.Fatal("extracted span context must be remote")
			}
			if !strings.EqualFold(key, "traceparent") {
				t.Fatalf("valid context from key %q", key)
			}
			// Round trip: injecting it again yields a parseable lowercase traceparent.
			out := nats.Header{}
			prop.Inject(ctx, natsotel.HeaderCarrier(out))
			if out.Get("traceparent") == "" {
				t.Fatal("re-inject wrote no traceparent")
			}
		}
	})
}
