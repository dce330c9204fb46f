package natsotel_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/natsotel/reference/natsotel"
)

// Benchmarks compare bare nats.go with natsotel on the same in-process server, serially:
//
//   - bare: nats.go RequestMsgWithContext to a plain micro endpoint / nc.Publish.
//   - sampled: natsotel with the real SDK (AlwaysSample, BatchSpanProcessor, an exporter that
//     discards) and an SDK MeterProvider (metrics are recorded on every call).
//   - unsampled: the same with NeverSample (spans are not recording; metrics still are).
//
// go test -run '^$' -bench . -benchmem -count 6 | tee new.txt; benchstat new.txt

type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }

// benchSampler is a natsotel variant of a benchmark: the sampler of its SDK pipeline.
type benchSampler struct {
	name    string
	sampler sdktrace.Sampler
}

// benchSamplers are the two natsotel variants every benchmark runs.
var benchSamplers = []benchSampler{{"sampled", sdktrace.AlwaysSample()}, {"unsampled", sdktrace.NeverSample()}}

// benchConns connects twice to s, as a and as c, both instrumented with the benchmark
// pipeline and sampler.
func benchConns(b *testing.B, s *server.Server, sampler sdktrace.Sampler, a, c string) (*natsotel.Conn, *natsotel.Conn) {
	opts := benchOptions(b, sampler)
	ca, err := natsotel.Wrap(connect(b, s, a), opts...)
	if err != nil {
		b.Fatal(err)
	}
	cc, err := natsotel.Wrap(connect(b, s, c), opts...)
	if err != nil {
		b.Fatal(err)
	}
	return ca, cc
}

func benchOptions(b *testing.B, sampler sdktrace.Sampler) []natsotel.Option {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sampler), sdktrace.WithBatcher(discardExporter{}))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	return []natsotel.Option{
		natsotel.WithTracerProvider(tp),
		natsotel.WithMeterProvider(mp),
		natsotel.WithPropagators(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})),
	}
}

func benchCtx(b *testing.B) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	b.Cleanup(cancel)
	return ctx
}

func BenchmarkRequest(b *testing.B) {
	s := startServer(b)
	payload := make([]byte, 40)

	b.Run("bare", func(b *testing.B) {
		srv, cli := connect(b, s, "srv"), connect(b, s, "cli")
		svc, err := micro.AddService(srv, micro.Config{Name: "bench", Version: "1.0.0"})
		if err != nil {
			b.Fatal(err)
		}
		defer svc.Stop()
		if err := svc.AddEndpoint("bare", micro.HandlerFunc(func(r micro.Request) { _ = r.Respond(payload) })); err != nil {
			b.Fatal(err)
		}
		flush(b, srv)
		ctx := benchCtx(b)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := cli.RequestMsgWithContext(ctx, &nats.Msg{Subject: "bare", Data: payload}); err != nil {
				b.Fatal(err)
			}
		}
	})
	// bare-headers: bare nats.go carrying a fixed traceparent, to show what the header
	// encoding and parsing on both ends costs by itself.
	b.Run("bare-headers", func(b *testing.B) {
		srv, cli := connect(b, s, "srv"), connect(b, s, "cli")
		svc, err := micro.AddService(srv, micro.Config{Name: "bench", Version: "1.0.0"})
		if err != nil {
			b.Fatal(err)
		}
		defer svc.Stop()
		if err := svc.AddEndpoint("bareh", micro.HandlerFunc(func(r micro.Request) { _ = r.Respond(payload) })); err != nil {
			b.Fatal(err)
		}
		flush(b, srv)
		ctx := benchCtx(b)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			h := nats.Header{"traceparent": []string{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}
			if _, err := cli.RequestMsgWithContext(ctx, &nats.Msg{Subject: "bareh", Data: payload, Header: h}); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, tc := range benchSamplers {
		b.Run(tc.name, func(b *testing.B) {
			srv, cli := benchConns(b, s, tc.sampler, "srv", "cli")
			svc, err := srv.AddService(micro.Config{Name: "bench", Version: "1.0.0"})
			if err != nil {
				b.Fatal(err)
			}
			defer svc.Stop()
			subject := "otel-" + tc.name
			if err := svc.AddEndpoint(subject, func(ctx context.Context, r micro.Request) { _ = r.Respond(payload) }); err != nil {
				b.Fatal(err)
			}
			flush(b, srv.Raw())
			ctx := benchCtx(b)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := cli.Request(ctx, subject, payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPublish measures the publisher's cost only (nats.go buffers the message).
func BenchmarkPublish(b *testing.B) {
	s := startServer(b)
	payload := make([]byte, 40)
	b.Run("bare", func(b *testing.B) {
		nc := connect(b, s, "pub")
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := nc.Publish("bench.pub", payload); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		flush(b, nc)
	})
	for _, tc := range benchSamplers {
		b.Run(tc.name, func(b *testing.B) {
			c, err := natsotel.Wrap(connect(b, s, "pub"), benchOptions(b, tc.sampler)...)
			if err != nil {
				b.Fatal(err)
			}
			ctx := benchCtx(b)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := c.Publish(ctx, "bench.pub", payload); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			flush(b, c.Raw())
		})
	}
}

// BenchmarkPublishSubscribe measures one message from publish to the subscriber's handler.
func BenchmarkPublishSubscribe(b *testing.B) {
	s := startServer(b)
	payload := make([]byte, 40)
	for _, withHeader := range []bool{false, true} {
		name := "bare"
		if withHeader {
			name = "bare-headers" // a fixed traceparent: the cost of carrying the header
		}
		b.Run(name, func(b *testing.B) {
			pub, sub := connect(b, s, "pub"), connect(b, s, "sub")
			got := make(chan struct{})
			if _, err := sub.Subscribe("bench.ps", func(*nats.Msg) { got <- struct{}{} }); err != nil {
				b.Fatal(err)
			}
			flush(b, sub)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				m := &nats.Msg{Subject: "bench.ps", Data: payload}
				if withHeader {
					m.Header = nats.Header{"traceparent": []string{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}
				}
				if err := pub.PublishMsg(m); err != nil {
					b.Fatal(err)
				}
				if err := pub.Flush(); err != nil {
					b.Fatal(err)
				}
				<-got
			}
		})
	}
	for _, tc := range benchSamplers {
		b.Run(tc.name, func(b *testing.B) {
			pub, sub := benchConns(b, s, tc.sampler, "pub", "sub")
			got := make(chan struct{})
			if _, err := sub.Subscribe("bench.ps", func(context.Context, *nats.Msg) { got <- struct{}{} }); err != nil {
				b.Fatal(err)
			}
			flush(b, sub.Raw())
			ctx := benchCtx(b)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := pub.Publish(ctx, "bench.ps", payload); err != nil {
					b.Fatal(err)
				}
				if err := pub.Raw().Flush(); err != nil {
					b.Fatal(err)
				}
				<-got
			}
		})
	}
}

// BenchmarkKeyValueGet measures a KeyValue Get of an existing key (a round trip to the
// JetStream API): bare jetstream against natsotel's CLIENT span with its db.* attributes.
func BenchmarkKeyValueGet(b *testing.B) {
	s := startServer(b)
	ctx := benchCtx(b)
	js, err := jetstream.New(connect(b, s, "setup"))
	if err != nil {
		b.Fatal(err)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "bench", Storage: jetstream.MemoryStorage})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := kv.Put(ctx, "key", make([]byte, 40)); err != nil {
		b.Fatal(err)
	}
	b.Run("bare", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := kv.Get(ctx, "key"); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, tc := range benchSamplers {
		b.Run(tc.name, func(b *testing.B) {
			c, err := natsotel.Wrap(connect(b, s, "kv"), benchOptions(b, tc.sampler)...)
			if err != nil {
				b.Fatal(err)
			}
			js, err := c.JetStream()
			if err != nil {
				b.Fatal(err)
			}
			kv, err := js.KeyValue(ctx, "bench")
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := kv.Get(ctx, "key"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
