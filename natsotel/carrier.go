package natsotel

import (
	"strings"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"
)

// HeaderCarrier adapts nats.Header to propagation.TextMapCarrier.
//
// Set writes lowercase keys ("traceparent", "tracestate", "baggage"), the form W3C Trace
// Context recommends and most NATS clients use, and removes any other-case spelling of the
// same key so a reader never sees two different values. Get matches the exact key first and
// then case-insensitively, so "Traceparent" written by http.Header-style code, or by
// nats-server versions that change header case in transit, is found. Keys returns the keys
// present. A nil HeaderCarrier is valid: Get returns "", Keys returns nil and Set does
// nothing (give Set a non-nil header to keep what it writes).
type HeaderCarrier nats.Header

var _ propagation.TextMapCarrier = HeaderCarrier(nil)

// Get returns the first value of key, matched exactly first and then case-insensitively.
func (h HeaderCarrier) Get(key string) string {
	if v, ok := h[key]; ok {
		if len(v) > 0 {
			return v[0]
		}
		return ""
	}
	for k, v := range h {
		if len(v) > 0 && strings.EqualFold(k, key) {
			return v[0]
		}
	}
	return ""
}

// Set stores value under the lowercase form of key, replacing any spelling of that key.
func (h HeaderCarrier) Set(key, value string) {
	if h == nil {
		return
	}
	lk := strings.ToLower(key)
	for k := range h {
		if k != lk && strings.EqualFold(k, lk) {
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

// headerGet is a case-insensitive nats.Header lookup (exact match first).
func headerGet(h nats.Header, key string) string { return HeaderCarrier(h).Get(key) }
