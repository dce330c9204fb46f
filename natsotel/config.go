package natsotel

import (
	"context"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// defaultRequestTimeout bounds Conn.Request and Conn.RequestMsg when the caller's context has
// no deadline (nats.go would otherwise wait forever for a reply). Change it per Conn with
// WithDefaultRequestTimeout.
const defaultRequestTimeout = 10 * time.Second

// Option configures a Conn. Options are applied in order by Wrap.
type Option interface{ apply(*config) }

type config struct {
	tp             trace.TracerProvider
	mp             metric.MeterProvider
	prop           propagation.TextMapPropagator
	filter         func(subject string) bool
	linkOnly       bool
	requestTimeout time.Duration
	destTemplate   func(subject string) string
	onPanic        func(ctx context.Context, err *PanicError)
	concurrency    int
	replyPrefixes  []string
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithTracerProvider sets the TracerProvider. Default: otel.GetTracerProvider() at Wrap time.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(c *config) {
		if tp != nil {
			c.tp = tp
		}
	})
}

// WithMeterProvider sets the MeterProvider. Default: otel.GetMeterProvider() at Wrap time.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) {
		if mp != nil {
			c.mp = mp
		}
	})
}

// WithPropagators sets the propagator that injects into and extracts from NATS headers.
// Default: otel.GetTextMapPropagator() at Wrap time.
func WithPropagators(p propagation.TextMapPropagator) Option {
	return optionFunc(func(c *config) {
		if p != nil {
			c.prop = p
		}
	})
}

// WithFilter decides per message whether it is traced: f returning false skips span
// creation and metrics for that message; trace context is still propagated through unchanged
// (injected into outgoing headers, extracted into the handler's context), and a handler
// panic is still recovered (and passed to the WithPanicHandler function).
//
// f gets the concrete NATS subject of the message: the request or publish subject, the
// subject a subscriber or endpoint received the message on, the JetStream message subject,
// or "$KV.<bucket>.<key>" for KeyValue calls. JetStream Fetch spans (one per batch, several
// subjects) are not filtered; the Process spans of its messages are.
func WithFilter(f func(subject string) bool) Option {
	return optionFunc(func(c *config) { c.filter = f })
}

// WithDestinationTemplate maps the concrete subject of a request or publish (Conn.Request,
// RequestMsg, Publish, PublishMsg, JetStream.Publish, PublishMsg) to its low-cardinality
// template, e.g. "order.get.4711" to "order.get.{id}". The template names the span
// ("request order.get.{id}"), becomes messaging.destination.template and is the
// messaging.destination.name metric label; the span keeps the concrete subject in
// messaging.destination.name. f returns "" to use the subject itself. Inbox and $JS.ACK
// subjects are "(temporary)" before f is asked. f runs on every traced send, so it must be
// cheap, safe for concurrent use and return few distinct values.
func WithDestinationTemplate(f func(subject string) string) Option {
	return optionFunc(func(c *config) { c.destTemplate = f })
}

// WithPanicHandler sets a function that is called with every handler panic natsotel
// recovers (micro endpoints, subscriptions, JetStream Consume/Process), traced or filtered
// out by WithFilter, after the panic was recorded on the span. ctx is the handler's
// context. natsotel logs nothing itself: use f to log or count panics. f must not panic.
func WithPanicHandler(f func(ctx context.Context, err *PanicError)) Option {
	return optionFunc(func(c *config) { c.onPanic = f })
}

// WithConsumerLinks makes subscribe/consume spans new roots that link to the producer
// instead of being its children (no service-graph edge; see doc.go).
func WithConsumerLinks() Option { return optionFunc(func(c *config) { c.linkOnly = true }) }

// WithDefaultRequestTimeout sets the timeout applied to requests whose context has no
// deadline (default 10 s). d <= 0 disables it (such requests then wait until ctx is
// canceled).
func WithDefaultRequestTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.requestTimeout = d })
}

// WithConcurrency sets how many requests each micro endpoint of a Service handles at once
// (default 64; n <= 0 keeps the default). Each request beyond it waits in the endpoint's
// pending queue until a handler returns; see serve.go for the back-pressure. n = 1 serves
// one request at a time on micro's delivery goroutine, as micro itself does.
func WithConcurrency(n int) Option {
	return optionFunc(func(c *config) {
		if n > 0 {
			c.concurrency = n
		}
	})
}

// WithReplyPrefixes adds subject prefixes that micro endpoints may answer to, besides the
// inboxes ("_INBOX.", "_INBOX_<user>.", the connection's own inbox prefix) and the "_R_."
// replies of service imports. Use it for requesters with an inbox prefix of their own. The
// prefix "" allows any reply subject and so switches the guard off: see replyAllowed.
func WithReplyPrefixes(prefixes ...string) Option {
	return optionFunc(func(c *config) { c.replyPrefixes = append(c.replyPrefixes, prefixes...) })
}

func newConfig(opts []Option) config {
	c := config{requestTimeout: defaultRequestTimeout, concurrency: defaultConcurrency}
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	if c.tp == nil {
		c.tp = otel.GetTracerProvider()
	}
	if c.mp == nil {
		c.mp = otel.GetMeterProvider()
	}
	if c.prop == nil {
		c.prop = otel.GetTextMapPropagator()
	}
	return c
}
