package natsotel_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/natsotel/reference/natsotel"
)

// A capitalised Traceparent (written by http.Header-style code or another client) is read
// by Subscribe handlers and JetStream consumers too, not only by micro endpoints; with
// WithConsumerLinks the consumer span is a new root that links to it instead.
func TestInboundTraceparentCaseSubscribeAndJetStream(t *testing.T) {
	const (
		tp      = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
		spanID  = "00f067aa0ba902b7"
	)
	s := startServer(t)
	plain := connect(t, s, "plain")
	plainJS, err := jetstream.New(plain)
	if err != nil {
		t.Fatal(err)
	}
	for _, links := range []bool{false, true} {
		name := "parent"
		var opts []natsotel.Option
		if links {
			name = "links"
			opts = append(opts, natsotel.WithConsumerLinks())
		}
		t.Run(name, func(t *testing.T) {
			tel := newTelemetry(t)
			c := tel.wrap(t, connect(t, s, "c-"+name), opts...)
			js, err := c.JetStream()
			if err != nil {
				t.Fatal(err)
			}
			cons := setupStream(t, js, 0)
			got := make(chan struct{})
			sub, err := c.Subscribe("orders.created", func(ctx context.Context, m *nats.Msg) { close(got) })
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = sub.Unsubscribe() }()
			flush(t, c.Raw())
			hdr := nats.Header{"Traceparent": []string{tp}}
			if err := plain.PublishMsg(&nats.Msg{Subject: "orders.created", Header: hdr}); err != nil {
				t.Fatal(err)
			}
			<-got
			if _, err := plainJS.PublishMsg(ctxTimeout(t), &nats.Msg{Subject: "events.order.created", Header: hdr}); err != nil {
				t.Fatal(err)
			}
			consumed := make(chan struct{})
			cc, err := js.Consume(cons, func(ctx context.Context, m jetstream.Msg) { _ = m.Ack(); close(consumed) })
			if err != nil {
				t.Fatal(err)
			}
			<-consumed
			cc.Stop()
			spans := tel.waitSpans(t, 3) // the two process spans and the ack
			for _, name := range []string{"process orders.created", "process ORDER_EVENTS"} {
				sp := find(t, spans, name, trace.SpanKindConsumer)
				if !links {
					if sp.Parent().TraceID().String() != traceID || sp.Parent().SpanID().String() != spanID || !sp.Parent().IsRemote() {
						t.Errorf("%s: parent %v, want the remote span %s", name, sp.Parent(), spanID)
					}
					continue
				}
				if sp.Parent().IsValid() {
					t.Errorf("%s: parent %v, want a new root", name, sp.Parent())
				}
				if len(sp.Links()) != 1 || sp.Links()[0].SpanContext.SpanID().String() != spanID || sp.Links()[0].SpanContext.TraceID().String() != traceID {
					t.Errorf("%s: links %v, want one to %s", name, sp.Links(), spanID)
				}
			}
			// Clean the stream for the next subtest's consumer.
			if err := js.Raw().DeleteStream(ctxTimeout(t), "ORDER_EVENTS"); err != nil {
				t.Fatal(err)
			}
		})
	}
}
