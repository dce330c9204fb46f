package natsotel

import (
	"context"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"
)

// HeaderCarrier adapts nats.Header to propagation.TextMapCarrier.
//
// Set writes lowercase keys ("traceparent", "tracestate", "baggage"), the form W3C Trace
// Context recommends and most NATS clients use, and removes any other-case spelling of the
// same key so a reader never sees two different values. Get matches the exact key first and
// then case-insensitively (ASCII letters only: header names are ASCII tokens, and Unicode
// case folding would make a key unreadable after Set, e.g. "İ" lowercases to two runes), so "Traceparent" written by http.Header-style code, or by
// nats-server versions that change header case in transit, is found. Keys returns the keys
// present. A nil HeaderCarrier is valid: Get returns "", Keys returns nil and Set does
// nothing (give Set a non-nil header to keep what it writes).
type HeaderCarrier nats.Header

var _ propagation.TextMapCarrier = HeaderCarrier(nil)

// Get returns the first value of key, matched exactly first and then case-insensitively.
// Keys without a value are skipped. When several other spellings carry a value (a header
// both "Traceparent" and "TRACEPARENT"), the one that sorts first wins, so repeated reads
// (traceparent, then tracestate) are consistent rather than subject to map order.
func (h HeaderCarrier) Get(key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	found, value := "", ""
	for k, v := range h {
		if len(v) > 0 && k != key && asciiEqualFold(k, key) && (found == "" || k < found) {
			found, value = k, v[0]
		}
	}
	return value
}

// Set stores value under the lowercase form of key (ASCII letters lowered), replacing any
// other spelling of that key.
func (h HeaderCarrier) Set(key, value string) {
	if h == nil {
		return
	}
	lk := asciiLower(key)
	for k := range h {
		if k != lk && asciiEqualFold(k, lk) {
			delete(h, k)
		}
	}
	h[lk] = []string{value}
}

// Keys returns the header keys present, in no particular order.
func (h HeaderCarrier) Keys() []string {
	if len(h) == 0 {
		return nil
	}
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	return keys
}

// asciiLower lowers ASCII letters only, without allocating when there are none.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; 'A' <= c && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// asciiEqualFold reports whether a and b are equal when ASCII letters are folded; other
// bytes must match exactly.
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		ca, cb := a[i], b[i]
		if ca == cb {
			continue
		}
		if 'A' <= ca && ca <= 'Z' {
			ca += 'a' - 'A'
		}
		if 'A' <= cb && cb <= 'Z' {
			cb += 'a' - 'A'
		}
		if ca != cb {
			return false
		}
	}
	return true
}

// headerGet is a case-insensitive nats.Header lookup (exact match first).
func headerGet(h nats.Header, key string) string { return HeaderCarrier(h).Get(key) }

// inject writes ctx's trace context into h with the propagator, after removing every key
// the propagator writes (in any spelling) that h already carries. A header copied from the
// caller's message may hold another trace's context: the propagator writes tracestate and
// baggage only when they are set, so without the removal a new traceparent would travel
// next to the old trace's tracestate or baggage.
func (c *Conn) inject(ctx context.Context, h nats.Header) {
	if len(h) > 0 {
		for _, f := range c.cfg.prop.Fields() {
			for k := range h {
				if asciiEqualFold(k, f) {
					delete(h, k)
				}
			}
		}
	}
	c.cfg.prop.Inject(ctx, HeaderCarrier(h))
}
