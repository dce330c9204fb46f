package natsotel

import (
	"context"
	"maps"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"
)

// Publish publishes data to subject in a PRODUCER span named "send <subject>" (or
// "send <template>" with WithDestinationTemplate) and injects the trace context into the
// message headers. Publishes to inbox subjects (_INBOX.*, _INBOX_<user>.* or the
// connection's custom inbox prefix, as used for replies) are named "send (temporary)" with
// messaging.destination.temporary=true. A failed publish counts as a sent message with
// error.type, as semconv counts attempts.
func (c *Conn) Publish(ctx context.Context, subject string, data []byte) error {
	return c.publish(ctx, &nats.Msg{Subject: subject, Data: data, Header: make(nats.Header, 2)})
}

// PublishMsg is Publish with a full message (Reply and headers kept). msg is not modified:
// natsotel publishes a copy with a copied header map plus the trace context, which replaces
// any trace context (traceparent, tracestate, baggage, in any case) msg.Header carried.
func (c *Conn) PublishMsg(ctx context.Context, msg *nats.Msg) error {
	if msg == nil {
		return &OpError{Op: opSend, Err: nats.ErrInvalidMsg}
	}
	m := &nats.Msg{Subject: msg.Subject, Reply: msg.Reply, Data: msg.Data, Header: make(nats.Header, len(msg.Header)+2)}
	maps.Copy(m.Header, msg.Header)
	return c.publish(ctx, m)
}

func (c *Conn) publish(ctx context.Context, m *nats.Msg) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if !c.traced(m.Subject) {
		c.inject(ctx, m.Header)
		return c.publishErr(m, c.nc.PublishMsg(m))
	}
	dest, temp := c.sendDestination(m.Subject)
	ctx, cl := c.begin(ctx, c.op(specSend, dest, "", temp), m.Subject)
	c.inject(ctx, m.Header)
	if err := c.publishErr(m, c.nc.PublishMsg(m)); err != nil {
		cl.end(ctx, ErrorType(err), err.Error(), 1)
		return err
	}
	cl.end(ctx, "", "", 1)
	return nil
}

func (c *Conn) publishErr(m *nats.Msg, err error) error {
	return wrapOpError(c.nc, opSend, m, err)
}

// Subscribe subscribes to subject; h runs for every message with ctx carrying a CONSUMER
// span "process <subject>" (the subscription subject, wildcards included), the child of the
// producer's span (or a new root linking to it with WithConsumerLinks). The span's
// messaging.destination.name is the message's subject; when that differs from the
// subscription subject, the latter is messaging.destination.template (metrics use it as
// messaging.destination.name). A panic in h is recovered, also for subjects WithFilter
// excludes: it is recorded on the span and passed to the WithPanicHandler function.
func (c *Conn) Subscribe(subject string, h func(ctx context.Context, msg *nats.Msg)) (*nats.Subscription, error) {
	return c.nc.Subscribe(subject, c.msgHandler(subject, "", h))
}

// QueueSubscribe is Subscribe in a queue group; the group becomes
// messaging.consumer.group.name.
func (c *Conn) QueueSubscribe(subject, queue string, h func(ctx context.Context, msg *nats.Msg)) (*nats.Subscription, error) {
	return c.nc.QueueSubscribe(subject, queue, c.msgHandler(subject, queue, h))
}

func (c *Conn) msgHandler(subject, queue string, h func(context.Context, *nats.Msg)) nats.MsgHandler {
	dest, temp := c.destination(subject)
	info := c.op(specConsume, dest, queue, temp)
	return func(m *nats.Msg) {
		ctx := c.cfg.prop.Extract(context.Background(), HeaderCarrier(m.Header))
		if !c.traced(m.Subject) {
			c.runUntraced(ctx, m.Subject, func() { h(ctx, m) })
			return
		}
		ctx, cl := c.beginConsumer(ctx, info, m.Subject)
		c.runHandler(ctx, &cl, nil, m.Subject, func() { h(ctx, m) })
	}
}

// beginConsumer starts a CONSUMER/SERVER span for a message whose producer context was
// extracted into ctx: as a child (default) or as a new root with a link (WithConsumerLinks).
// Only an extracted (remote) context is linked: without one in the message, a local span
// the caller put in ctx (Process) stays the parent.
func (c *Conn) beginConsumer(ctx context.Context, info *opInfo, subject string) (context.Context, call) {
	return c.begin(ctx, info, subject, c.consumerStart(ctx)...)
}

// consumerStart returns the start options of a consumer span: none (a child of the
// extracted context) or, with WithConsumerLinks and an extracted context, a new root with a
// link to it.
func (c *Conn) consumerStart(ctx context.Context) []trace.SpanStartOption {
	if c.cfg.linkOnly {
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() && sc.IsRemote() {
			return []trace.SpanStartOption{trace.WithNewRoot(), trace.WithLinks(trace.Link{SpanContext: sc})}
		}
	}
	return nil
}

// runHandler runs fn and ends cl however fn ends: normally; by a panic, which is recovered,
// recorded as an exception event with error.type=panic and passed to the WithPanicHandler function; or by
// runtime.Goexit (t.FailNow in a test handler), which ends the span with error.type=_OTHER
// and lets the goroutine exit.
//
// b holds the span's attributes when they are set as it ends (see endWith), else nil.
func (c *Conn) runHandler(ctx context.Context, cl *call, b *attrBuf, subject string, fn func()) {
	returned := false
	defer func() {
		if returned {
			return
		}
		if r := recover(); r != nil {
			c.recovered(ctx, cl.span, subject, r)
			cl.endWith(ctx, b, errTypePanic, "panic in handler", 1)
			return
		}
		cl.endWith(ctx, b, errTypeOther, "handler called runtime.Goexit", 1)
	}()
	fn()
	returned = true
	cl.endWith(ctx, b, "", "", 1)
}

// runUntraced runs fn for a message WithFilter excludes: no span, no metrics, but a panic is
// recovered (and passed to the WithPanicHandler function) as for traced messages.
func (c *Conn) runUntraced(ctx context.Context, subject string, fn func()) {
	defer func() {
		if r := recover(); r != nil {
			c.recovered(ctx, nil, subject, r)
		}
	}()
	fn()
}
