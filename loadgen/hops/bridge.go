package hops

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/natsotel/reference/natsotel"
)

// ScopeName is the instrumentation scope of the bridge's tracer.
const ScopeName = "github.com/natsotel/reference/loadgen/hops"

// QueueGroup is the queue group Subscribe joins, so that replicas of the bridge share the
// events and each becomes spans once.
const QueueGroup = "nats-hops"

// Option configures a Bridge.
type Option interface{ apply(*config) }

type config struct {
	tp      trace.TracerProvider
	onError func(error)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithTracerProvider sets the TracerProvider the hop spans are made with; its resource
// names them (the nats-hops command uses service.name "nats-hops"). Default:
// otel.GetTracerProvider() at New time.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(c *config) {
		if tp != nil {
			c.tp = tp
		}
	})
}

// WithErrorHandler receives the events Subscribe could not turn into spans (see
// ErrMalformed, ErrNoTraceContext); they are dropped and the bridge goes on. Default:
// otel.Handle, the global OpenTelemetry error handler.
func WithErrorHandler(f func(error)) Option {
	return optionFunc(func(c *config) {
		if f != nil {
			c.onError = f
		}
	})
}

// Bridge turns nats-server message trace events into spans. It is safe for concurrent use.
type Bridge struct {
	tracer  trace.Tracer
	onError func(error)
}

// New returns a Bridge. It keeps no state between events.
func New(opts ...Option) *Bridge {
	c := config{tp: otel.GetTracerProvider(), onError: otel.Handle}
	for _, o := range opts {
		o.apply(&c)
	}
	return &Bridge{tracer: c.tp.Tracer(ScopeName), onError: c.onError}
}

// Subscribe subscribes nc to subject, the account's msg_trace destination, in QueueGroup,
// and records every event that arrives. Events that fail go to the error handler.
// Unsubscribe or drain the returned subscription (or nc) to stop.
func (b *Bridge) Subscribe(nc *nats.Conn, subject string) (*nats.Subscription, error) {
	sub, err := nc.QueueSubscribe(subject, QueueGroup, func(m *nats.Msg) {
		if err := b.Record(m); err != nil {
			b.onError(err)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("hops: subscribe %q: %w", subject, err)
	}
	return sub, nil
}

// traceContext reads the W3C traceparent (and tracestate) of the traced message, in any
// header case. Only the W3C format: it is what makes the server trace the message.
var traceContext = propagation.TraceContext{}

// Record turns one trace event, the body the server published on the trace destination,
// into spans: see the package documentation. It returns an error wrapping ErrMalformed or
// ErrNoTraceContext for an event it cannot use; nothing is recorded then.
func (b *Bridge) Record(m *nats.Msg) error {
	ev, err := decode(m)
	if err != nil {
		return fmt.Errorf("hops: %w", err)
	}
	parent := traceContext.Extract(context.Background(), natsotel.HeaderCarrier(ev.Request.Header))
	if sc := trace.SpanContextFromContext(parent); !sc.IsValid() || !sc.IsSampled() {
		return fmt.Errorf("hops: %w", ErrNoTraceContext)
	}
	b.spans(parent, ev)
	return nil
}
