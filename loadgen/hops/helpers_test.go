package hops_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/natsotel/reference/loadgen/hops"
	"github.com/natsotel/reference/natsotel"
)

const traceSubject = "nats.hops"

// accountConf puts every client into account SHOP (msg_trace cannot be set on the default
// account) with message tracing to traceSubject for every sampled traceparent.
const accountConf = `
accounts {
  SHOP {
    jetstream: enabled
    users: [{user: shop, password: shop}]
    msg_trace { dest: "` + traceSubject + `", sampling: 100 }
  }
}
no_auth_user: shop
`

// startServer runs an in-process nats-server with JetStream and accountConf.
func startServer(t testing.TB) *server.Server {
	t.Helper()
	opts := &server.Options{}
	if err := opts.ProcessConfigString(accountConf); err != nil {
		t.Fatal(err)
	}
	opts.ServerName = "hops-test"
	opts.Host, opts.Port = "127.0.0.1", server.RANDOM_PORT
	opts.JetStream, opts.StoreDir = true, t.TempDir()
	opts.NoLog, opts.NoSigs = true, true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("nats-server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

func connect(t testing.TB, s *server.Server, name string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), nats.Name(name))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// spans is an SDK span processor that records ended spans and signals each one.
type spans struct {
	*tracetest.SpanRecorder
	changed chan struct{}
}

func newSpans() *spans {
	return &spans{SpanRecorder: tracetest.NewSpanRecorder(), changed: make(chan struct{}, 1)}
}

func (s *spans) OnEnd(span sdktrace.ReadOnlySpan) {
	s.SpanRecorder.OnEnd(span)
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// waitFor returns the ended spans once ok accepts them, or fails the test after 10 s.
func (s *spans) waitFor(t testing.TB, what string, ok func([]sdktrace.ReadOnlySpan) bool) []sdktrace.ReadOnlySpan {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		if got := s.Ended(); ok(got) {
			return got
		}
		select {
		case <-s.changed:
		case <-timeout:
			t.Fatalf("timed out waiting for %s; spans: %s", what, names(s.Ended()))
		}
	}
}

func names(ss []sdktrace.ReadOnlySpan) string {
	var n []string
	for _, s := range ss {
		n = append(n, s.SpanKind().String()+" "+s.Name())
	}
	return strings.Join(n, ", ")
}

// provider returns a TracerProvider recording into rec, shut down with the test.
func provider(t testing.TB, rec sdktrace.SpanProcessor) *sdktrace.TracerProvider {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp
}

// traced wraps a new connection with natsotel recording into rec.
func traced(t testing.TB, s *server.Server, name string, rec sdktrace.SpanProcessor) *natsotel.Conn {
	t.Helper()
	conn, err := natsotel.Wrap(connect(t, s, name),
		natsotel.WithTracerProvider(provider(t, rec)), natsotel.WithPropagators(propagation.TraceContext{}))
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// startBridge subscribes a bridge recording into rec; errors go to errs.
func startBridge(t testing.TB, s *server.Server, rec sdktrace.SpanProcessor) <-chan error {
	t.Helper()
	errs := make(chan error, 16)
	b := hops.New(hops.WithTracerProvider(provider(t, rec)), hops.WithErrorHandler(func(err error) {
		select {
		case errs <- err:
		default:
		}
	}))
	nc := connect(t, s, "bridge")
	if _, err := b.Subscribe(nc, traceSubject); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return errs
}

func find(ss []sdktrace.ReadOnlySpan, kind trace.SpanKind, name string) sdktrace.ReadOnlySpan {
	for _, s := range ss {
		if s.SpanKind() == kind && s.Name() == name {
			return s
		}
	}
	return nil
}

func children(ss []sdktrace.ReadOnlySpan, parent sdktrace.ReadOnlySpan) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range ss {
		if s.Parent().SpanID() == parent.SpanContext().SpanID() && s.SpanContext().TraceID() == parent.SpanContext().TraceID() {
			out = append(out, s)
		}
	}
	return out
}

func attr(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.String()
		}
	}
	return ""
}
