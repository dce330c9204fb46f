package load

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/natsotel/reference/natsotel"
)

// benchEcho serves "bench.echo" with a bare micro endpoint that answers its payload.
func benchEcho(b *testing.B) *nats.Conn {
	s := startServer(b)
	srv := connect(b, s)
	svc, err := micro.AddService(srv, micro.Config{Name: "bench", Version: "0.0.1"})
	if err != nil {
		b.Fatal(err)
	}
	if err := svc.AddEndpoint("echo", micro.HandlerFunc(func(r micro.Request) { _ = r.Respond(r.Data()) }),
		micro.WithEndpointSubject("bench.echo")); err != nil {
		b.Fatal(err)
	}
	if err := srv.Flush(); err != nil { // the caller is another connection
		b.Fatal(err)
	}
	return connect(b, s)
}

var benchPayload = []byte(`{"id":"ord-cef5f6b29fc794ebc36e"}`)

// The loadgen closed loop (one worker) against bare nats.go requests in a loop, on the
// same in-process endpoint, with the steps in between: a context with a deadline, the
// trace headers alone, natsotel's Request (CLIENT span, metrics, headers), then the whole
// loadgen (plus its baggage, stats and metrics). Run with -count 6 and compare with
// benchstat; `make bench-loadgen` compares with the nats CLI on the real services.
func BenchmarkClosedLoop(b *testing.B) {
	b.Run("nats.go", func(b *testing.B) {
		nc := benchEcho(b)
		for b.Loop() {
			if _, err := nc.Request("bench.echo", benchPayload, 5*time.Second); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("nats.go+ctx", func(b *testing.B) {
		nc := benchEcho(b)
		for b.Loop() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if _, err := nc.RequestWithContext(ctx, "bench.echo", benchPayload); err != nil {
				b.Fatal(err)
			}
			cancel()
		}
	})
	b.Run("nats.go+headers", func(b *testing.B) {
		nc := benchEcho(b)
		for b.Loop() {
			m := nats.NewMsg("bench.echo")
			m.Data = benchPayload
			m.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
			m.Header.Set("baggage", "synthetic=true,loadgen.scenario=custom")
			if _, err := nc.RequestMsg(m, 5*time.Second); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("natsotel", func(b *testing.B) {
		nc := benchEcho(b)
		tp := sdktrace.NewTracerProvider()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		conn, _ := natsotel.Wrap(nc, natsotel.WithTracerProvider(tp), natsotel.WithMeterProvider(mp),
			natsotel.WithPropagators(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})))
		for b.Loop() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if _, err := conn.Request(ctx, "bench.echo", benchPayload); err != nil {
				b.Fatal(err)
			}
			cancel()
		}
	})
	b.Run("loadgen", func(b *testing.B) {
		nc := benchEcho(b)
		tp := sdktrace.NewTracerProvider()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		conn, err := natsotel.Wrap(nc, natsotel.WithTracerProvider(tp), natsotel.WithMeterProvider(mp),
			natsotel.WithPropagators(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})))
		if err != nil {
			b.Fatal(err)
		}
		r, err := New(conn, nil, Config{Mode: ModeClosed, Workers: 1, Count: int64(b.N), Progress: -1,
			Subject: "bench.echo", Payload: benchPayload, MeterProvider: mp})
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		sum, err := r.Run(context.Background())
		if err != nil || sum.Unexpected != 0 {
			b.Fatal(err, sum)
		}
	})
}
