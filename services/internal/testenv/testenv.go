// Package testenv gives the services' tests a real environment: an in-process NATS
// server with JetStream, and per service instance its own connection, natsotel.Conn and
// OpenTelemetry SDK (via package telemetry) with an in-memory span recorder, a manual
// metric reader and captured logs.
package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/natsotel/reference/natsotel"
	"github.com/natsotel/reference/services/telemetry"
)

// Server starts a JetStream-enabled nats-server on a random loopback port, with its
// store in a temporary directory, changed by each of with (users, for example); it is
// shut down when the test ends.
func Server(t testing.TB, with ...func(*server.Options)) *server.Server {
	t.Helper()
	opts := &server.Options{
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		JetStream: true,
		StoreDir:  t.TempDir(),
		NoLog:     true,
		NoSigs:    true,
	}
	for _, w := range with {
		w(opts)
	}
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

// Node is one instance's connection and telemetry.
type Node struct {
	Name    string
	NC      *nats.Conn
	Conn    *natsotel.Conn
	Tel     *telemetry.Telemetry
	Spans   *tracetest.SpanRecorder
	Metrics *sdkmetric.ManualReader
	Logs    *Buffer
	Log     *slog.Logger
}

// NewNode connects to s as service name with its own telemetry (exporting only if the
// process's OTEL_* environment asks for it), logging at Debug level into Logs, with
// natsotel's defaults and opts. Closed when the test ends.
func NewNode(t testing.TB, s *server.Server, name string, opts ...natsotel.Option) *Node {
	t.Helper()
	n := &Node{Name: name, Spans: tracetest.NewSpanRecorder(), Metrics: sdkmetric.NewManualReader(), Logs: &Buffer{}}
	tel, err := telemetry.New(context.Background(), telemetry.Config{
		ServiceName:    name,
		ServiceVersion: "0.0.0-test",
		SpanProcessors: []sdktrace.SpanProcessor{n.Spans},
		MetricReaders:  []sdkmetric.Reader{n.Metrics},
		Stderr:         n.Logs,
		LogLevel:       slog.LevelDebug,
	})
	if err != nil {
		t.Fatal(err)
	}
	n.Tel, n.Log = tel, tel.Logger
	nc, err := nats.Connect(s.ClientURL(), nats.Name(name), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	n.NC = nc
	if n.Conn, err = natsotel.Wrap(nc, append(tel.NATSOptions(), opts...)...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		nc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tel.Shutdown(ctx)
	})
	return n
}

// Request sends v as JSON to subject through the node's natsotel.Conn with a timeout.
func (n *Node) Request(ctx context.Context, subject string, v any, timeout time.Duration) (*nats.Msg, error) {
	var data []byte
	switch b := v.(type) {
	case []byte:
		data = b
	case string:
		data = []byte(b)
	default:
		var err error
		if data, err = json.Marshal(v); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return n.Conn.Request(ctx, subject, data)
}

// Buffer is a goroutine-safe bytes.Buffer.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Eventually polls cond every 20ms until it returns true or timeout passes (for state
// that changes asynchronously, such as a JetStream consumer's effect on KV).
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Code returns the micro error code of err as a string ("" for nil, "timeout" for a
// deadline, "no responders", or "error" for anything else).
func Code(err error) string {
	var se *natsotel.ServiceError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &se):
		return se.Code
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, nats.ErrNoResponders):
		return "no responders"
	}
	return "error"
}

// Description returns the micro error description of err, or "".
func Description(err error) string {
	var se *natsotel.ServiceError
	if errors.As(err, &se) {
		return se.Description
	}
	return ""
}

// KeyCount returns the number of keys in bucket (0 if it does not exist).
func KeyCount(t testing.TB, nc *nats.Conn, bucket string) int {
	t.Helper()
	return len(Keys(t, nc, bucket))
}

// Keys returns the keys of bucket.
func Keys(t testing.TB, nc *nats.Conn, bucket string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.Keys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// Get reads key from bucket into v; it reports false if the key does not exist.
func Get(t testing.TB, nc *nats.Conn, bucket, key string, v any) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, bucket)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(e.Value(), v); err != nil {
		t.Fatalf("%s/%s: %v", bucket, key, err)
	}
	return true
}

// SpansNamed returns the ended spans whose name is name.
func (n *Node) SpansNamed(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range n.Spans.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// Attr returns the value of attribute key on s, or "".
func Attr(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.String()
		}
	}
	return ""
}
