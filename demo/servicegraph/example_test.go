package servicegraph_test

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/natsotel/reference/demo/servicegraph"
)

// Register one Graph on the TracerProvider of every service in the process; every pair
// of CLIENT and SERVER spans becomes a request on an edge.
func Example() {
	graph := servicegraph.New(servicegraph.Config{})

	provider := func(service string) *sdktrace.TracerProvider {
		return sdktrace.NewTracerProvider(
			sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(service))),
			sdktrace.WithSpanProcessor(graph),
		)
	}
	loadgen, order := provider("loadgen"), provider("order")
	defer loadgen.Shutdown(context.Background())
	defer order.Shutdown(context.Background())

	// In the real system natsotel carries the client span's context in NATS headers.
	ctx, client := loadgen.Tracer("x").Start(context.Background(), "send order.create",
		trace.WithSpanKind(trace.SpanKindClient))
	_, server := order.Tracer("x").Start(ctx, "process order.create",
		trace.WithSpanKind(trace.SpanKindServer))
	_, kv := order.Tracer("x").Start(ctx, "put orders",
		trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(semconv.DBNamespace("orders")))
	kv.End()
	server.End()
	client.End()

	for _, e := range graph.Snapshot().Edges {
		fmt.Println(e.Client, "->", e.Server, e.Type, e.Requests)
	}
	// Output:
	// loadgen -> order request 1
	// order -> orders database 1
}
