package deploy

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/natsotel/reference/loadgen/hops"
	"github.com/natsotel/reference/services/app"
)

// natsHopsSubject is the msg_trace destination in nats.conf.
const natsHopsSubject = "nats.hops"

// sampledProvider is a TracerProvider that samples everything (what the binaries' default
// parentbased_always_on does for a root span), shut down with the test.
func sampledProvider(t *testing.T) *sdktrace.TracerProvider {
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp
}

// startHopsBridge runs the hops bridge as loadgen/cmd/nats-hops does, under the nats-hops
// user from compose.yaml's environment, recording its spans.
func startHopsBridge(t *testing.T, ctx context.Context, getenv func(string) string, watch func(string, *nats.Conn)) *tracetest.SpanRecorder {
	t.Helper()
	nc, err := app.Connect(ctx, "nats-hops", getenv, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	watch("nats-hops", nc)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	b := hops.New(hops.WithTracerProvider(tp), hops.WithErrorHandler(func(err error) { t.Errorf("nats-hops: %v", err) }))
	if _, err := b.Subscribe(nc, natsHopsSubject); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return rec
}

// checkHops waits for the hop spans of the shop's traffic: the server delivering the
// requests of the loadgen and order users, and storing order's events into ORDER_EVENTS.
// (KeyValue writes carry no traceparent: natsotel keeps trace context out of stored
// values, so they make no hop.)
func checkHops(t *testing.T, rec *tracetest.SpanRecorder) {
	t.Helper()
	want := []string{"deliver order.create", "deliver inventory.reserve", "deliver billing.charge", "store ORDER_EVENTS"}
	deadline := time.Now().Add(10 * time.Second)
	for {
		seen := map[string]bool{}
		for _, s := range rec.Ended() {
			if s.SpanKind() != trace.SpanKindInternal {
				t.Fatalf("nats-hops made a %s span %q", s.SpanKind(), s.Name())
			}
			seen[s.Name()] = true
		}
		var missing []string
		for _, w := range want {
			if !seen[w] {
				missing = append(missing, w)
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("nats-hops recorded no %q spans; it recorded %v", missing, seen)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestNATSConfigTraceDestination: the message trace events (every header of every traced
// message) are readable by nats-hops alone; the users that send traced messages may
// publish there (the server drops their traced messages otherwise), which is also what
// lets them forge events; nats-hops may do nothing else.
func TestNATSConfigTraceDestination(t *testing.T) {
	s := startNATS(t)
	// The users whose code sends traced messages (nats_config_test.go fails, with the
	// server's permission violation, if another one starts to).
	senders := []string{"order", "loadgen"}
	for _, user := range append(sortedCopy(mapKeys(mayCall)), "nats-hops") {
		t.Run(user, func(t *testing.T) {
			c := newPermChecker(t, s, user)
			if got, want := c.canSubscribe(natsHopsSubject, ""), user == "nats-hops"; got != want {
				t.Errorf("subscribe %s: allowed=%v, want %v", natsHopsSubject, got, want)
			}
			if got, want := c.canPublish(natsHopsSubject), slices.Contains(senders, user); got != want {
				t.Errorf("publish %s: allowed=%v, want %v", natsHopsSubject, got, want)
			}
			if user != "nats-hops" {
				return
			}
			for _, subj := range []string{"order.create", "$SRV.PING", "$KV.orders.x", "$JS.API.INFO"} {
				if c.canPublish(subj) {
					t.Errorf("nats-hops may publish %s", subj)
				}
			}
			for _, subj := range []string{">", "order.>", "_INBOX.>", "$SRV.PING"} {
				if c.canSubscribe(subj, "") {
					t.Errorf("nats-hops may subscribe to %s", subj)
				}
			}
		})
	}
}
