package hops_test

import (
	"testing"

	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/natsotel/reference/loadgen/hops"
)

// FuzzRecord: no event body or Content-Encoding makes Record panic; an event it accepts
// gives one hop span and at most MaxSteps children, none ending before it starts.
func FuzzRecord(f *testing.F) {
	f.Add([]byte(`{"server":{"name":"n"},"request":{"header":{"traceparent":["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"]}},`+
		`"events":[{"type":"in","ts":"2026-01-02T03:04:05Z","subj":"s"},{"type":"eg","ts":"2026-01-02T03:04:06Z","sub":"_INBOX.x"},`+
		`{"type":"js","ts":"2026-01-02T03:04:01Z","stream":"S"}]}`), "")
	f.Add([]byte(`{"events":[{"type":"in","ts":"0001-01-01T00:00:00Z"}]}`), "identity")
	f.Add([]byte("\x1f\x8b\x08\x00\x00\x00\x00\x00"), "gzip")
	f.Add([]byte("\xff\x06\x00\x00sNaPpY"), "snappy")
	f.Add([]byte(`[]`), "br")
	rec := tracetest.NewSpanRecorder()
	b := hops.New(hops.WithTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))))
	f.Fuzz(func(t *testing.T, data []byte, encoding string) {
		rec.Reset()
		m := &nats.Msg{Data: data, Header: nats.Header{}}
		if encoding != "" {
			m.Header.Set("Content-Encoding", encoding)
		}
		if err := b.Record(m); err != nil {
			if n := len(rec.Ended()); n != 0 {
				t.Fatalf("%d spans from a refused event: %v", n, err)
			}
			return
		}
		got := rec.Ended()
		if len(got) < 1 || len(got) > hops.MaxSteps+1 {
			t.Fatalf("%d spans", len(got))
		}
		for _, s := range got {
			if s.EndTime().Before(s.StartTime()) {
				t.Fatalf("%s ends before it starts", s.Name())
			}
		}
	})
}
