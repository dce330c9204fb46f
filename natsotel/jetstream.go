package natsotel

import (
	"context"
	"errors"
	"maps"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// JetStream is an instrumented jetstream.JetStream.
type JetStream struct {
	js   jetstream.JetStream
	conn *Conn
}

// JetStream returns the instrumented JetStream context of the connection.
func (c *Conn) JetStream(opts ...jetstream.JetStreamOpt) (*JetStream, error) {
	js, err := jetstream.New(c.nc, opts...)
	if err != nil {
		return nil, err
	}
	return &JetStream{js: js, conn: c}, nil
}

// Raw returns the underlying jetstream.JetStream (for stream/consumer management).
func (j *JetStream) Raw() jetstream.JetStream { return j.js }

// Publish is a PRODUCER span "send <subject>" (named like Conn.Publish, including
// WithDestinationTemplate); the PubAck's stream sequence becomes messaging.nats.sequence
// (and a duplicate messaging.nats.duplicate=true; the stream is the subject's, and the
// consumer's process span names it). The trace
// context is stored with the message in its headers: it is the message's creation context,
// the parent of the consumers' process spans. A failed publish counts as a sent message
// with error.type.
func (j *JetStream) Publish(ctx context.Context, subject string, data []byte, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	return j.publish(ctx, &nats.Msg{Subject: subject, Data: data, Header: make(nats.Header, 2)}, opts)
}

// PublishMsg is Publish with a full message. msg is not modified: a copy with a copied header
// map plus the trace context (replacing any msg.Header carried) is published. A Nats-Msg-Id
// header becomes messaging.message.id.
func (j *JetStream) PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	if msg == nil {
		return nil, &OpError{Op: opSend, Err: nats.ErrInvalidMsg}
	}
	m := &nats.Msg{Subject: msg.Subject, Reply: msg.Reply, Data: msg.Data, Header: make(nats.Header, len(msg.Header)+2)}
	maps.Copy(m.Header, msg.Header)
	return j.publish(ctx, m, opts)
}

func (j *JetStream) publish(ctx context.Context, m *nats.Msg, opts []jetstream.PublishOpt) (*jetstream.PubAck, error) {
	c := j.conn
	if ctx == nil {
		ctx = context.Background()
	}
	if !c.traced(m.Subject) {
		c.inject(ctx, m.Header)
		ack, err := j.js.PublishMsg(ctx, m, opts...)
		return ack, c.publishErr(m, err)
	}
	dest, temp := c.sendDestination(m.Subject)
	// The span's attributes, including the PubAck's, are set in one call when it ends.
	ctx, cl := c.start(ctx, c.op(specSend, dest, "", temp), nil)
	var b *attrBuf
	if cl.span.IsRecording() {
		b = cl.attrs(m.Subject)
		if id := headerGet(m.Header, jetstream.MsgIDHeader); id != "" {
			b.kvs = append(b.kvs, semconv.MessagingMessageID(id))
		}
	}
	c.inject(ctx, m.Header)
	ack, err := j.js.PublishMsg(ctx, m, opts...)
	if err != nil {
		err = c.publishErr(m, err)
		cl.endWith(ctx, b, ErrorType(err), err.Error(), 1)
		return ack, err
	}
	if b != nil && ack != nil {
		b.kvs = append(b.kvs, sequenceKey.Int64(int64(ack.Sequence)))
		if ack.Duplicate {
			b.kvs = append(b.kvs, duplicateKey.Bool(true))
		}
	}
	cl.endWith(ctx, b, "", "", 1)
	return ack, nil
}

// Consume runs h for every message of cons in a CONSUMER span (child of the producer span)
// that ctx carries. See Process for the span and for what msg's Ack, Nak, Term and
// InProgress record.
func (j *JetStream) Consume(cons jetstream.Consumer, h func(ctx context.Context, msg jetstream.Msg), opts ...jetstream.PullConsumeOpt) (jetstream.ConsumeContext, error) {
	_, _, durable := j.conn.consumerOf(cons)
	return cons.Consume(func(msg jetstream.Msg) {
		j.process(context.Background(), msg, h, durable)
	}, opts...)
}

// Messages returns cons.Messages(opts...): an iterator whose Next returns one message at a
// time. Run each message in Process to get its CONSUMER span; the iterator itself makes no
// spans (the wait in Next is not part of any message's processing). Calling Messages rather
// than cons.Messages lets natsotel know cons is durable, so its name becomes the
// messaging.consumer.group.name metric label (see Process).
func (j *JetStream) Messages(cons jetstream.Consumer, opts ...jetstream.PullMessagesOpt) (jetstream.MessagesContext, error) {
	j.conn.consumerOf(cons)
	return cons.Messages(opts...)
}

// Process runs h for one message (from Consume, Messages then Next or Fetch) in a CONSUMER
// span "process <stream>". The span's parent is the producer context stored in the message
// headers: the creation context of the message, so the JetStream hop is a producer -> consumer
// edge in the service graph (with WithConsumerLinks: a new root linking to it). Without a
// stored context, the span in ctx (if any) is the parent.
//
// Attributes: messaging.destination.name is the message's subject and
// messaging.destination.template the stream (metrics use the stream as
// messaging.destination.name; there is no messaging.nats.stream on this span); a Nats-Msg-Id
// header is messaging.message.id; a message delivered more than once gets its delivery
// count (messaging.nats.delivered), messaging.nats.redelivered=true and a "redelivered"
// event. Its stream sequence is on the producer's send span (PubAck). The consumer is
// messaging.consumer.group.name in the metrics and on the process and settle spans (whose
// attributes are their metric's) only when it is durable: ephemeral and ordered consumers
// have generated names, new ones after every reset of an ordered consumer. natsotel knows a
// consumer is durable from the cached info of the jetstream.Consumer passed to Consume,
// Messages or Fetch (no server round trip); messages of a consumer never passed to any of
// them (cons.Messages called directly) carry no group.
//
// The msg h gets records its settlement: Ack, DoubleAck, Nak, NakWithDelay, Term,
// TermWithReason and InProgress are CLIENT spans "<op> <stream>"
// (messaging.operation.type=settle; op is ack, nak, term or in_progress), children of the
// process span, measured by messaging.client.operation.duration.
//
// A panic in h is recovered, also for subjects WithFilter excludes: it is recorded on the
// span and passed to the WithPanicHandler function, and the message is left unacknowledged,
// so JetStream redelivers it after AckWait. A runtime.Goexit in h ends the span too.
func (j *JetStream) Process(ctx context.Context, msg jetstream.Msg, h func(ctx context.Context, msg jetstream.Msg)) {
	j.process(ctx, msg, h, "")
}

// process is Process; durable names the message's consumer when the caller knows it is
// durable ("" to look it up among the durable consumers seen by Consume and Fetch).
func (j *JetStream) process(ctx context.Context, msg jetstream.Msg, h func(context.Context, jetstream.Msg), durable string) {
	c := j.conn
	if ctx == nil {
		ctx = context.Background()
	}
	subject := msg.Subject()
	ctx = c.cfg.prop.Extract(ctx, HeaderCarrier(msg.Headers()))
	if !c.traced(subject) {
		c.runUntraced(ctx, subject, func() { h(ctx, msg) })
		return
	}
	meta, _ := msg.Metadata()
	var dest, group string
	temp := false
	if meta != nil {
		dest = meta.Stream
		if meta.Consumer != "" && (meta.Consumer == durable || c.durables.has(meta.Stream, meta.Consumer)) {
			group = meta.Consumer
		}
	}
	if dest == "" {
		dest, temp = c.sendDestination(subject)
	}
	// The span's attributes are set in one call when it ends (see endWith).
	ctx, cl := c.start(ctx, c.op(specJSProcess, dest, group, temp), c.consumerStart(ctx))
	var b *attrBuf
	if cl.span.IsRecording() {
		b = cl.attrs(subject)
		if id := headerGet(msg.Headers(), jetstream.MsgIDHeader); id != "" {
			b.kvs = append(b.kvs, semconv.MessagingMessageID(id))
		}
		// The semantic conventions' process span has 8 attributes here (9 with a Nats-Msg-Id),
		// the most the SDK deduplicates at End without growing a map: NATS's own are added
		// only when they tell something, on a redelivery. The stream sequence is on the
		// producer's send span (PubAck).
		if meta != nil && meta.NumDelivered > 1 {
			n := deliveredKey.Int64(int64(meta.NumDelivered))
			b.kvs = append(b.kvs, n, redeliveredKey.Bool(true))
			cl.span.AddEvent("redelivered", trace.WithAttributes(n))
		}
	}
	sm := &settledMsg{Msg: msg, ctx: ctx, c: c, dest: dest, group: group, temp: temp}
	c.runHandler(ctx, &cl, b, subject, func() { h(ctx, sm) })
}

// consumerOf returns the stream and name of cons and, if it is durable, its name again as
// durable, from the consumer's cached info (no server round trip). Durable consumers are
// remembered, so that Process knows them.
func (c *Conn) consumerOf(cons jetstream.Consumer) (stream, name, durable string) {
	ci := cons.CachedInfo()
	if ci == nil {
		return "", "", ""
	}
	if ci.Config.Durable != "" && ci.Name != "" {
		durable = ci.Name
		c.durables.add(ci.Stream, ci.Name)
	}
	return ci.Stream, ci.Name, durable
}

// maxDurables bounds the set of remembered durable consumers; past it, Process of a durable
// consumer not yet remembered sets no consumer group (Consume still does).
const maxDurables = 1024

// durableSet is the set of durable consumers (stream, name) a Conn has seen.
type durableSet struct {
	m sync.Map // consumerRef -> struct{}
	n atomic.Int32
}

type consumerRef struct{ stream, name string }

func (d *durableSet) add(stream, name string) {
	k := consumerRef{stream, name}
	if _, ok := d.m.Load(k); ok || d.n.Load() >= maxDurables {
		return
	}
	if _, loaded := d.m.LoadOrStore(k, struct{}{}); !loaded {
		d.n.Add(1)
	}
}

func (d *durableSet) has(stream, name string) bool {
	_, ok := d.m.Load(consumerRef{stream, name})
	return ok
}

// Fetch fetches up to batch messages in a CLIENT span "receive <stream>" that links every
// message's producer context and records messaging.batch.message_count and the consumer
// (messaging.destination.subscription.name; a durable one is also the
// messaging.consumer.group.name metric label, see Process). Process each message with Process. ctx bounds the fetch: it is passed as jetstream.FetchContext, unless opts
// contain FetchMaxWait (the two exclude each other), which then applies. A fetch that ends
// because its wait expired with fewer than batch messages is not an error.
func (j *JetStream) Fetch(ctx context.Context, cons jetstream.Consumer, batch int, opts ...jetstream.FetchOpt) ([]jetstream.Msg, error) {
	c := j.conn
	if ctx == nil {
		ctx = context.Background()
	}
	stream, consumer, durable := c.consumerOf(cons)
	info := c.op(specReceive, stream, durable, false)
	ctx, cl := c.begin(ctx, info, "")
	msgs, err := j.fetch(ctx, cons, batch, opts)
	if cl.span.IsRecording() {
		cl.span.SetAttributes(semconv.MessagingBatchMessageCount(len(msgs)))
		if consumer != "" {
			// Durable or not; never as messaging.consumer.group.name (see opSpec).
			cl.span.SetAttributes(semconv.MessagingDestinationSubscriptionName(consumer))
		}
		for _, m := range msgs {
			pctx := c.cfg.prop.Extract(context.Background(), HeaderCarrier(m.Headers()))
			if sc := trace.SpanContextFromContext(pctx); sc.IsValid() {
				cl.span.AddLink(trace.Link{SpanContext: sc})
			}
		}
	}
	if err != nil {
		err = &OpError{Op: opReceive, Subject: stream + "/" + consumer, Err: err}
		cl.end(ctx, ErrorType(err), err.Error(), int64(len(msgs)))
		return msgs, err
	}
	cl.end(ctx, "", "", int64(len(msgs)))
	return msgs, nil
}

func (j *JetStream) fetch(ctx context.Context, cons jetstream.Consumer, batch int, opts []jetstream.FetchOpt) ([]jetstream.Msg, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var mb jetstream.MessageBatch
	var err error
	if ctx.Done() != nil {
		mb, err = cons.Fetch(batch, append(opts[:len(opts):len(opts)], jetstream.FetchContext(ctx))...)
		if err != nil && errors.Is(err, jetstream.ErrInvalidOption) && strings.Contains(err.Error(), "FetchMaxWait") {
			// The caller chose FetchMaxWait, which excludes FetchContext (checked before
			// anything is sent): fetch with the caller's options only.
			mb, err = cons.Fetch(batch, opts...)
		}
	} else {
		mb, err = cons.Fetch(batch, opts...)
	}
	if err != nil {
		return nil, err
	}
	var msgs []jetstream.Msg
	for m := range mb.Messages() {
		msgs = append(msgs, m)
	}
	if err := mb.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
		return msgs, err
	}
	return msgs, nil
}
