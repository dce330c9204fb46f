package natsotel_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/natsotel/reference/natsotel"
)

// exampleEnv is what the examples need: an in-process nats-server and an SDK that records
// spans in memory (a real service would export them with OTLP).
type exampleEnv struct {
	srv *server.Server
	rec *tracetest.SpanRecorder
	tp  *sdktrace.TracerProvider
	dir string
}

func newExampleEnv() *exampleEnv {
	dir, err := os.MkdirTemp("", "natsotel-example")
	if err != nil {
		panic(err)
	}
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	if err != nil {
		panic(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		panic("nats-server not ready")
	}
	rec := tracetest.NewSpanRecorder()
	return &exampleEnv{srv: srv, rec: rec, tp: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)), dir: dir}
}

// connect returns an instrumented connection named name.
func (e *exampleEnv) connect(name string, opts ...natsotel.Option) *natsotel.Conn {
	nc, err := nats.Connect(e.srv.ClientURL(), nats.Name(name))
	if err != nil {
		panic(err)
	}
	conn, err := natsotel.Wrap(nc, append([]natsotel.Option{
		natsotel.WithTracerProvider(e.tp),
		natsotel.WithPropagators(propagation.TraceContext{}),
	}, opts...)...)
	if err != nil {
		panic(err)
	}
	return conn
}

// printSpans prints the ended spans (sorted by name) once n of them have ended.
func (e *exampleEnv) printSpans(n int) {
	deadline := time.Now().Add(5 * time.Second)
	for len(e.rec.Ended()) < n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	var lines []string
	for _, s := range e.rec.Ended() {
		lines = append(lines, fmt.Sprintf("%-8s %s", s.SpanKind(), s.Name()))
	}
	sort.Strings(lines)
	for _, l := range lines {
		fmt.Println(l)
	}
}

// orderEvents returns conn's JetStream and the durable consumer "billing" of a new stream
// ORDER_EVENTS (subjects events.order.>).
func orderEvents(ctx context.Context, conn *natsotel.Conn) (*natsotel.JetStream, jetstream.Consumer) {
	js, err := conn.JetStream()
	if err != nil {
		panic(err)
	}
	stream, err := js.Raw().CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "ORDER_EVENTS", Subjects: []string{"events.order.>"}})
	if err != nil {
		panic(err)
	}
	cons, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "billing", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		panic(err)
	}
	return js, cons
}

func (e *exampleEnv) close() {
	_ = e.tp.Shutdown(context.Background())
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
	_ = os.RemoveAll(e.dir)
}

// A micro service whose endpoint handlers get a context carrying the SERVER span.
func ExampleConn_AddService() {
	env := newExampleEnv()
	defer env.close()
	conn := env.connect("inventory")
	defer conn.Raw().Close()

	svc, err := conn.AddService(micro.Config{Name: "inventory", Version: "1.0.0"})
	if err != nil {
		panic(err)
	}
	defer svc.Stop()
	err = svc.AddGroup("inventory").AddEndpoint("reserve", func(ctx context.Context, req micro.Request) {
		if len(req.Data()) == 0 {
			// Marks the SERVER span as error with error.type=400.
			_ = req.Error("400", "empty request", nil)
			return
		}
		_ = req.Respond([]byte("reserved"))
	})
	if err != nil {
		panic(err)
	}

	reply, err := conn.Request(context.Background(), "inventory.reserve", []byte(`{"sku":"A-1"}`))
	fmt.Println(string(reply.Data), err)
	_, err = conn.Request(context.Background(), "inventory.reserve", nil)
	var se *natsotel.ServiceError
	if errors.As(err, &se) {
		fmt.Println(se.Code, se.Description)
	}
	env.printSpans(4)
	// Output:
	// reserved <nil>
	// 400 empty request
	// client   request inventory.reserve
	// client   request inventory.reserve
	// server   process inventory.reserve
	// server   process inventory.reserve
}

// A requester: the CLIENT span is the parent of the responder's SERVER span; errors are typed.
func ExampleConn_Request() {
	env := newExampleEnv()
	defer env.close()
	conn := env.connect("loadgen")
	defer conn.Raw().Close()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := conn.Request(ctx, "billing.charge", []byte(`{}`))
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		fmt.Println("no billing service running")
	case err != nil:
		fmt.Println("error:", err)
	}
	env.printSpans(1)
	// Output:
	// no billing service running
	// client   request billing.charge
}

// Publish/subscribe: the subscriber's CONSUMER span is the child of the PRODUCER span.
func ExampleConn_Publish() {
	env := newExampleEnv()
	defer env.close()
	conn := env.connect("order")
	defer conn.Raw().Close()

	done := make(chan struct{})
	sub, err := conn.QueueSubscribe("orders.*", "audit", func(ctx context.Context, msg *nats.Msg) {
		fmt.Println("got", msg.Subject)
		close(done)
	})
	if err != nil {
		panic(err)
	}
	defer sub.Unsubscribe()
	if err := conn.Publish(context.Background(), "orders.created", []byte(`{"id":1}`)); err != nil {
		panic(err)
	}
	<-done
	env.printSpans(2)
	// Output:
	// got orders.created
	// consumer process orders.*
	// producer send orders.created
}

// JetStream: Publish stores the trace context with the message; Consume runs the handler in a
// CONSUMER span that is the child of the publisher's PRODUCER span.
func ExampleJetStream_Consume() {
	env := newExampleEnv()
	defer env.close()
	conn := env.connect("billing")
	defer conn.Raw().Close()
	ctx := context.Background()

	js, cons := orderEvents(ctx, conn) // the ORDER_EVENTS stream, durable consumer "billing"
	ack, err := js.Publish(ctx, "events.order.created", []byte(`{"id":1}`))
	if err != nil {
		panic(err)
	}
	fmt.Println("stored in", ack.Stream, "at", ack.Sequence)

	done := make(chan struct{})
	cc, err := js.Consume(cons, func(ctx context.Context, msg jetstream.Msg) {
		_ = msg.Ack()
		close(done)
	})
	if err != nil {
		panic(err)
	}
	<-done
	cc.Stop()
	env.printSpans(3)
	// Output:
	// stored in ORDER_EVENTS at 1
	// client   ack ORDER_EVENTS
	// consumer process ORDER_EVENTS
	// producer send events.order.created
}

// KeyValue: CLIENT spans "{op} {bucket}" with db.* attributes; errors are jetstream's own.
func ExampleKeyValue() {
	env := newExampleEnv()
	defer env.close()
	conn := env.connect("inventory")
	defer conn.Raw().Close()
	ctx := context.Background()

	js, err := conn.JetStream()
	if err != nil {
		panic(err)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "stock"})
	if err != nil {
		panic(err)
	}
	rev, _ := kv.Create(ctx, "sku-1", []byte("10"))
	// Optimistic concurrency: a stale revision fails with ErrKeyRevisionMismatch.
	if _, err := kv.Update(ctx, "sku-1", []byte("9"), rev+1); errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		fmt.Println("stale revision, re-read and retry")
	}
	entry, _ := kv.Get(ctx, "sku-1")
	fmt.Println(string(entry.Value()))
	if _, err := kv.Get(ctx, "sku-2"); errors.Is(err, jetstream.ErrKeyNotFound) {
		fmt.Println("sku-2 not found")
	}
	env.printSpans(4)
	// Output:
	// stale revision, re-read and retry
	// 10
	// sku-2 not found
	// client   create stock
	// client   get stock
	// client   get stock
	// client   update stock
}
