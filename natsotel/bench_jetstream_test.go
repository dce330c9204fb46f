//go:build unix

package natsotel_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// processCPU is the CPU time (user + system) the whole process used so far: client, server
// and exporter goroutines alike.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// jsPublishers is how many goroutines publish at once: JetStream publishes wait for their
// PubAck, so several in flight keep the server and the consumer busy (pipelined).
const jsPublishers = 8

var jsStreams atomic.Int64

// runJetStream publishes b.N messages from jsPublishers goroutines to a new memory stream
// and waits until the consumer started by consume has handled (and acknowledged) all of
// them. It reports the whole process's CPU per message as cpu-us/op, steadier than the
// wall time of one message on a shared machine.
func runJetStream(b *testing.B, s interface{ ClientURL() string }, publish func(ctx context.Context, subject string) error,
	consume func(cons jetstream.Consumer, handled func()) (stop func(), err error)) {
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	ctx := benchCtx(b)
	name := fmt.Sprintf("BENCH%d", jsStreams.Add(1))
	subject := "bench.js." + name
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subject}, Storage: jetstream.MemoryStorage}); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = js.DeleteStream(context.Background(), name) }()
	cons, err := js.CreateOrUpdateConsumer(ctx, name, jetstream.ConsumerConfig{Durable: "bench", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		b.Fatal(err)
	}
	n := int64(b.N)
	var handled atomic.Int64
	all := make(chan struct{})
	stop, err := consume(cons, func() {
		if handled.Add(1) == n {
			close(all)
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	defer stop()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	var wg sync.WaitGroup
	var next atomic.Int64
	for range jsPublishers {
		wg.Go(func() {
			for next.Add(1) <= n {
				if err := publish(ctx, subject); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	<-all
	b.StopTimer()
	b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/1e3/float64(b.N), "cpu-us/op")
}

// BenchmarkJetStream measures one message from JetStream publish (PubAck awaited) to the
// consumer's handler, which acknowledges it: bare nats.go, bare nats.go carrying a fixed
// traceparent, and natsotel on both sides (sampled and unsampled, metrics recorded; and
// sampled with the ack's settle span dropped by the WithTracerProvider example's sampler,
// its duration still recorded).
func BenchmarkJetStream(b *testing.B) {
	s := startServer(b)
	payload := make([]byte, 40)
	for _, withHeader := range []bool{false, true} {
		name := "bare"
		if withHeader {
			name = "bare-headers"
		}
		b.Run(name, func(b *testing.B) {
			pub, err := jetstream.New(connect(b, s, "pub"))
			if err != nil {
				b.Fatal(err)
			}
			runJetStream(b, s, func(ctx context.Context, subject string) error {
				m := &nats.Msg{Subject: subject, Data: payload}
				if withHeader {
					m.Header = nats.Header{"traceparent": []string{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}
				}
				_, err := pub.PublishMsg(ctx, m)
				return err
			}, func(cons jetstream.Consumer, handled func()) (func(), error) {
				cc, err := cons.Consume(func(m jetstream.Msg) { _ = m.Ack(); handled() })
				if err != nil {
					return nil, err
				}
				return cc.Stop, nil
			})
		})
	}
	for _, tc := range slices.Concat(benchSamplers, []benchSampler{{"sampled-no-settle-spans", dropSettle{next: sdktrace.AlwaysSample()}}}) {
		b.Run(tc.name, func(b *testing.B) {
			pc, cc := benchConns(b, s, tc.sampler, "pub", "sub")
			pub, err := pc.JetStream()
			if err != nil {
				b.Fatal(err)
			}
			sub, err := cc.JetStream()
			if err != nil {
				b.Fatal(err)
			}
			runJetStream(b, s, func(ctx context.Context, subject string) error {
				_, err := pub.Publish(ctx, subject, payload)
				return err
			}, func(cons jetstream.Consumer, handled func()) (func(), error) {
				c, err := sub.Consume(cons, func(_ context.Context, m jetstream.Msg) { _ = m.Ack(); handled() })
				if err != nil {
					return nil, err
				}
				return c.Stop, nil
			})
		})
	}
}
