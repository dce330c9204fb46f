package hops_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/natsotel/reference/loadgen/hops"
	"github.com/natsotel/reference/natsotel"
)

// A server whose account traces sampled messages to "nats.hops", a bridge subscribed
// there, and one traced request: the server's hop appears in the request's trace.
func Example() {
	opts := &server.Options{}
	_ = opts.ProcessConfigString(`
accounts { SHOP { users: [{user: shop, password: shop}], msg_trace { dest: "nats.hops", sampling: 100 } } }
no_auth_user: shop`)
	opts.ServerName, opts.Host, opts.Port, opts.NoLog, opts.NoSigs = "example", "127.0.0.1", server.RANDOM_PORT, true, true
	s, err := server.NewServer(opts)
	if err != nil {
		fmt.Println(err)
		return
	}
	go s.Start()
	defer s.Shutdown()
	s.ReadyForConnections(10 * time.Second)

	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer func() { _ = tp.Shutdown(context.Background()) }()

	// The bridge, on its own connection.
	bnc, _ := nats.Connect(s.ClientURL())
	defer bnc.Close()
	if _, err := hops.New(hops.WithTracerProvider(tp)).Subscribe(bnc, "nats.hops"); err != nil {
		fmt.Println(err)
		return
	}
	_ = bnc.Flush()

	// A responder and a traced request.
	nc, _ := nats.Connect(s.ClientURL(), nats.Name("app"))
	defer nc.Close()
	_, _ = nc.Subscribe("greet", func(m *nats.Msg) { _ = m.Respond([]byte("hi")) })
	_ = nc.Flush()
	conn, _ := natsotel.Wrap(nc, natsotel.WithTracerProvider(tp), natsotel.WithPropagators(propagation.TraceContext{}))
	if _, err := conn.Request(context.Background(), "greet", nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}

	// The hop span arrives asynchronously, with the server's event.
	deadline := time.Now().Add(5 * time.Second)
	for len(rec.Ended()) < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	var lines []string
	for _, sp := range rec.Ended() {
		lines = append(lines, fmt.Sprintf("%-8s %s", sp.SpanKind(), sp.Name()))
	}
	slices.Sort(lines)
	for _, l := range lines {
		fmt.Println(l)
	}
	// Output:
	// client   request greet
	// internal deliver greet
	// internal hop example
}
