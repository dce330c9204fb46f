package natsotel

import (
	"context"
	"maps"

	"github.com/nats-io/nats.go"
)

// Request sends data to subject and waits for the reply, honouring ctx's deadline and
// cancellation, in a CLIENT span named "request <subject>" ("request <template>" with
// WithDestinationTemplate; messaging.destination.name on the span is always the subject,
// and in metrics the template). The trace context is injected
// into the request headers, so a natsotel micro endpoint's SERVER span becomes its child.
//
// A micro error reply returns the reply message and a *ServiceError (use errors.As). Other
// failures return a *OpError that wraps the nats.go or context error: errors.Is works with
// nats.ErrNoResponders, nats.ErrMaxPayload, context.Canceled, and a timeout matches both
// context.DeadlineExceeded and nats.ErrTimeout. Without a deadline on ctx the Conn's default
// request timeout (10 s unless changed with WithDefaultRequestTimeout) applies.
//
// Trace context found on the reply is ignored: a reply never becomes the parent of anything.
func (c *Conn) Request(ctx context.Context, subject string, data []byte) (*nats.Msg, error) {
	return c.request(ctx, &nats.Msg{Subject: subject, Data: data})
}

// RequestMsg is Request with a full message. msg is not modified: natsotel sends a copy whose
// header map is a copy of msg.Header plus the trace context (values slices are shared with
// msg.Header, but only trace keys are written, into the copy); the trace context replaces any
// msg.Header carried (traceparent, tracestate, baggage, in any case). msg.Reply is ignored,
// as in nats.go.
func (c *Conn) RequestMsg(ctx context.Context, msg *nats.Msg) (*nats.Msg, error) {
	if msg == nil {
		return nil, &OpError{Op: opRequest, Err: nats.ErrInvalidMsg}
	}
	m := &nats.Msg{Subject: msg.Subject, Data: msg.Data}
	if len(msg.Header) > 0 {
		m.Header = make(nats.Header, len(msg.Header)+2)
		maps.Copy(m.Header, msg.Header)
	}
	return c.request(ctx, m)
}

func (c *Conn) request(ctx context.Context, m *nats.Msg) (*nats.Msg, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if c.cfg.requestTimeout > 0 {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, c.cfg.requestTimeout)
			defer cancel()
		}
	}
	if m.Header == nil {
		m.Header = make(nats.Header, 2)
	}
	if !c.traced(m.Subject) {
		c.inject(ctx, m.Header)
		reply, err := c.nc.RequestMsgWithContext(ctx, m)
		return c.finishReply(m, reply, err)
	}

	dest, temp := c.sendDestination(m.Subject)
	ctx, cl := c.begin(ctx, c.op(specRequest, dest, "", temp), m.Subject)
	c.inject(ctx, m.Header)
	reply, err := c.nc.RequestMsgWithContext(ctx, m)
	reply, err = c.finishReply(m, reply, err)
	if err != nil {
		cl.end(ctx, ErrorType(err), err.Error(), 1)
		return reply, err
	}
	cl.end(ctx, "", "", 1)
	return reply, nil
}

// finishReply turns a micro error reply into *ServiceError and wraps transport errors.
func (c *Conn) finishReply(m *nats.Msg, reply *nats.Msg, err error) (*nats.Msg, error) {
	if err != nil {
		return nil, wrapOpError(c.nc, opRequest, m, err)
	}
	if se := serviceErrorFrom(m.Subject, reply); se != nil {
		return reply, se
	}
	return reply, nil
}

// headerSize is the encoded size of h as nats.go sends it.
func headerSize(h nats.Header) int {
	if len(h) == 0 {
		return 0
	}
	n := len("NATS/1.0\r\n") + 2
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + 2 + len(v) + 2
		}
	}
	return n
}
