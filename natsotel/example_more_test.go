package natsotel_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/natsotel/reference/natsotel"
)

// Wrap a connection once, with the providers and propagator of the service (here in-memory
// SDK ones; a service would use its OTLP pipeline). Every call through the returned Conn
// is traced and measured; nc itself stays usable, untraced.
func ExampleWrap() {
	env := newExampleEnv()
	defer env.close()

	nc, err := nats.Connect(env.srv.ClientURL(), nats.Name("order"))
	if err != nil {
		panic(err)
	}
	defer nc.Close()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	defer tp.Shutdown(context.Background())
	defer mp.Shutdown(context.Background())

	conn, err := natsotel.Wrap(nc,
		natsotel.WithTracerProvider(tp),
		natsotel.WithMeterProvider(mp),
		natsotel.WithPropagators(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})),
	)
	if err != nil {
		panic(err)
	}
	if err := conn.Publish(context.Background(), "audit.order", []byte(`{"id":1}`)); err != nil {
		panic(err)
	}
	sp := rec.Ended()[0]
	fmt.Println(sp.SpanKind(), sp.Name())
	for _, kv := range sp.Attributes() {
		if kv.Key == semconv.MessagingClientIDKey || kv.Key == semconv.MessagingSystemKey {
			fmt.Println(kv.Key, "=", kv.Value.String())
		}
	}
	// Output:
	// producer send audit.order
	// messaging.system = nats
	// messaging.client.id = order
}

// Subscribe: the CONSUMER span is named after the subscription subject (low cardinality);
// the message's own subject is its messaging.destination.name.
func ExampleConn_Subscribe() {
	env := newExampleEnv()
	defer env.close()
	conn := env.connect("audit")
	defer conn.Raw().Close()

	done := make(chan struct{})
	sub, err := conn.Subscribe("orders.*", func(ctx context.Context, msg *nats.Msg) {
		// ctx carries the CONSUMER span, the child of the publisher's PRODUCER span.
		fmt.Println("span in ctx:", trace.SpanContextFromContext(ctx).IsValid())
		close(done)
	})
	if err != nil {
		panic(err)
	}
	defer sub.Unsubscribe()
	if err := conn.Publish(context.Background(), "orders.created", nil); err != nil {
		panic(err)
	}
	<-done
	env.printSpans(2)
	for _, sp := range env.rec.Ended() {
		if sp.SpanKind() == trace.SpanKindConsumer {
			printAttrs(sp, semconv.MessagingDestinationNameKey, semconv.MessagingDestinationTemplateKey)
		}
	}
	// Output:
	// span in ctx: true
	// consumer process orders.*
	// producer send orders.created
	// messaging.destination.name = orders.created
	// messaging.destination.template = orders.*
}

// QueueSubscribe: the queue group becomes messaging.consumer.group.name (also a metric label).
func ExampleConn_QueueSubscribe() {
	env := newExampleEnv()
	defer env.close()
	conn := env.connect("worker")
	defer conn.Raw().Close()

	done := make(chan struct{})
	sub, err := conn.QueueSubscribe("jobs", "workers", func(ctx context.Context, msg *nats.Msg) { close(done) })
	if err != nil {
		panic(err)
	}
	defer sub.Unsubscribe()
	if err := conn.Publish(context.Background(), "jobs", nil); err != nil {
		panic(err)
	}
	<-done
	env.printSpans(2)
	for _, sp := range env.rec.Ended() {
		if sp.SpanKind() == trace.SpanKindConsumer {
			printAttrs(sp, semconv.MessagingConsumerGroupNameKey)
		}
	}
	// Output:
	// consumer process jobs
	// producer send jobs
	// messaging.consumer.group.name = workers
}

// WithFilter keeps health checks out of traces and metrics; their trace context still
// passes through, and a panic in their handler is still recovered.
func ExampleWithFilter() {
	env := newExampleEnv()
	defer env.close()
	conn := env.connect("inventory", natsotel.WithFilter(func(subject string) bool {
		return !strings.HasPrefix(subject, "health.")
	}))
	defer conn.Raw().Close()

	svc, err := conn.AddService(micro.Config{Name: "inventory", Version: "1.0.0"})
	if err != nil {
		panic(err)
	}
	defer svc.Stop()
	for _, subject := range []string{"health.inventory", "inventory.reserve"} {
		err := svc.AddEndpoint(strings.ReplaceAll(subject, ".", "-"), func(ctx context.Context, req micro.Request) {
			_ = req.Respond([]byte("ok"))
		}, micro.WithEndpointSubject(subject))
		if err != nil {
			panic(err)
		}
	}
	for _, subject := range []string{"health.inventory", "inventory.reserve"} {
		if _, err := conn.Request(context.Background(), subject, nil); err != nil {
			panic(err)
		}
	}
	env.printSpans(2)
	// Output:
	// client   request inventory.reserve
	// server   process inventory.reserve
}

// WithDestinationTemplate keeps ids in subjects out of span names and metric labels.
func ExampleWithDestinationTemplate() {
	env := newExampleEnv()
	defer env.close()
	conn := env.connect("loadgen", natsotel.WithDestinationTemplate(func(subject string) string {
		if strings.HasPrefix(subject, "order.get.") {
			return "order.get.{id}"
		}
		return "" // use the subject
	}))
	defer conn.Raw().Close()

	if err := conn.Publish(context.Background(), "order.get.4711", nil); err != nil {
		panic(err)
	}
	env.printSpans(1)
	printAttrs(env.rec.Ended()[0], semconv.MessagingDestinationNameKey, semconv.MessagingDestinationTemplateKey)
	// Output:
	// producer send order.get.{id}
	// messaging.destination.name = order.get.4711
	// messaging.destination.template = order.get.{id}
}

// JetStream Fetch: one CLIENT "receive" span for the batch, linking each message's producer
// span; Process runs each message in its own CONSUMER span, the producer's child.
func ExampleJetStream_Fetch() {
	env := newExampleEnv()
	defer env.close()
	conn := env.connect("billing")
	defer conn.Raw().Close()
	ctx := context.Background()

	js, cons := orderEvents(ctx, conn) // the ORDER_EVENTS stream, durable consumer "billing"
	for _, event := range []string{"created", "paid"} {
		if _, err := js.Publish(ctx, "events.order."+event, nil); err != nil {
			panic(err)
		}
	}

	// Up to 2 messages, waiting at most until fctx ends.
	fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	msgs, err := js.Fetch(fctx, cons, 2)
	if err != nil {
		panic(err)
	}
	for _, msg := range msgs {
		js.Process(ctx, msg, func(ctx context.Context, msg jetstream.Msg) {
			fmt.Println("processing", msg.Subject())
			_ = msg.Ack()
		})
	}
	env.printSpans(7)
	// Output:
	// processing events.order.created
	// processing events.order.paid
	// client   ack ORDER_EVENTS
	// client   ack ORDER_EVENTS
	// client   receive ORDER_EVENTS
	// consumer process ORDER_EVENTS
	// consumer process ORDER_EVENTS
	// producer send events.order.created
	// producer send events.order.paid
}

// Messages for a loop that pulls one message at a time: Process gives each its CONSUMER
// span, the child of the span that published it.
func ExampleJetStream_Messages() {
	env := newExampleEnv()
	defer env.close()
	conn := env.connect("billing")
	defer conn.Raw().Close()
	ctx := context.Background()

	js, cons := orderEvents(ctx, conn) // the ORDER_EVENTS stream, durable consumer "billing"
	for _, event := range []string{"created", "paid"} {
		if _, err := js.Publish(ctx, "events.order."+event, nil); err != nil {
			panic(err)
		}
	}

	it, err := js.Messages(cons)
	if err != nil {
		panic(err)
	}
	defer it.Stop()
	for range 2 {
		msg, err := it.Next()
		if err != nil {
			panic(err)
		}
		js.Process(ctx, msg, func(ctx context.Context, msg jetstream.Msg) {
			fmt.Println("processing", msg.Subject())
			_ = msg.Ack()
		})
	}
	env.printSpans(6)
	// Output:
	// processing events.order.created
	// processing events.order.paid
	// client   ack ORDER_EVENTS
	// client   ack ORDER_EVENTS
	// consumer process ORDER_EVENTS
	// consumer process ORDER_EVENTS
	// producer send events.order.created
	// producer send events.order.paid
}

// HeaderCarrier carries the trace context in nats.Header for code that sends or receives
// with nats.go directly: it writes lowercase keys and reads any case.
func ExampleHeaderCarrier() {
	prop := propagation.TraceContext{}
	traceID, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	spanID, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled,
	}))

	msg := nats.NewMsg("orders.created")
	prop.Inject(ctx, natsotel.HeaderCarrier(msg.Header))
	fmt.Println(msg.Header.Get("traceparent"))

	// A header written by http.Header-style code, "Traceparent", is read as well.
	in := nats.Header{"Traceparent": []string{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}
	sc := trace.SpanContextFromContext(prop.Extract(context.Background(), natsotel.HeaderCarrier(in)))
	fmt.Println(sc.TraceID(), sc.SpanID(), sc.IsRemote())
	// Output:
	// 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
	// 4bf92f3577b34da6a3ce929d0e0e4736 00f067aa0ba902b7 true
}

// WithPanicHandler is told about every handler panic natsotel recovers, for logging.
func ExampleWithPanicHandler() {
	env := newExampleEnv()
	defer env.close()
	reported := make(chan *natsotel.PanicError, 1)
	conn := env.connect("audit", natsotel.WithPanicHandler(func(ctx context.Context, pe *natsotel.PanicError) {
		reported <- pe // a service would log pe (and pe.Stack) with ctx's trace id
	}))
	defer conn.Raw().Close()

	sub, err := conn.Subscribe("audit.order", func(ctx context.Context, msg *nats.Msg) { panic("nil order") })
	if err != nil {
		panic(err)
	}
	defer sub.Unsubscribe()
	if err := conn.Publish(context.Background(), "audit.order", nil); err != nil {
		panic(err)
	}
	pe := <-reported
	fmt.Println(pe.Subject, pe.Value)
	env.printSpans(2)
	// Output:
	// audit.order nil order
	// consumer process audit.order
	// producer send audit.order
}

func printAttrs(sp sdktrace.ReadOnlySpan, keys ...attribute.Key) {
	for _, k := range keys {
		for _, kv := range sp.Attributes() {
			if kv.Key == k {
				fmt.Println(k, "=", kv.Value.String())
			}
		}
	}
}

// dropSettle is a sampler that drops settlement spans and leaves every other decision to
// next. A sampler decides on the span's name and kind (natsotel sets the attributes just
// after a span starts; see "Sampling" in the package documentation): a settle span is a
// CLIENT span named "<op> <stream>", op one of ack, nak, term and in_progress.
type dropSettle struct{ next sdktrace.Sampler }

func (s dropSettle) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	if op, _, _ := strings.Cut(p.Name, " "); p.Kind == trace.SpanKindClient &&
		(op == "ack" || op == "nak" || op == "term" || op == "in_progress") {
		return sdktrace.SamplingResult{Decision: sdktrace.Drop,
			Tracestate: trace.SpanContextFromContext(p.ParentContext).TraceState()}
	}
	return s.next.ShouldSample(p)
}

func (s dropSettle) Description() string { return "dropSettle(" + s.next.Description() + ")" }

// A sampler that drops the settle spans of JetStream acknowledgements, which a busy consumer
// may not want to store; their duration is still measured.
func ExampleWithTracerProvider_sampler() {
	env := newExampleEnv()
	defer env.close()
	ctx := context.Background()
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSampler(dropSettle{next: sdktrace.ParentBased(sdktrace.AlwaysSample())}),
		sdktrace.WithSpanProcessor(env.rec), // in a service: sdktrace.WithBatcher(exporter)
	)
	defer func() { _ = tp.Shutdown(ctx) }()
	conn := env.connect("billing", natsotel.WithTracerProvider(tp))
	defer conn.Raw().Close()

	js, cons := orderEvents(ctx, conn) // the ORDER_EVENTS stream, durable consumer "billing"
	if _, err := js.Publish(ctx, "events.order.created", []byte(`{"id":1}`)); err != nil {
		panic(err)
	}
	acked := make(chan error, 1)
	cc, err := js.Consume(cons, func(ctx context.Context, msg jetstream.Msg) { acked <- msg.Ack() })
	if err != nil {
		panic(err)
	}
	fmt.Println("ack:", <-acked)
	cc.Stop()
	env.printSpans(2)
	// Output:
	// ack: <nil>
	// consumer process ORDER_EVENTS
	// producer send events.order.created
}
