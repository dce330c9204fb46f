package natsotel

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Handler handles a micro request; ctx carries the SERVER span (child of the caller's
// CLIENT span). req.Error(code, ...) marks the span as error with error.type = code.
//
// The handler must answer (Respond, RespondJSON or Error) before it returns: micro finishes
// the request when the handler returns (answering later from another goroutine races with
// micro's bookkeeping) and the span ends then. A handler that returns without answering
// leaves the caller waiting for its timeout; its span gets status Error with
// error.type=no_reply. If a handler answers more than once, the caller gets the first answer
// and so does the span. A panic is recorded on the span, passed to the WithPanicHandler
// function and answered with a 500 micro error (unless an answer was already sent).
type Handler func(ctx context.Context, req micro.Request)

// panicCode and panicDescription answer a request whose handler panicked.
const (
	panicCode        = "500"
	panicDescription = "internal error"
)

// errNilHandler is returned when an endpoint is added without a handler.
var errNilHandler = errors.New("natsotel: nil handler")

// Service is a micro.Service whose endpoints are traced and serve up to WithConcurrency
// requests at once each. Discovery ($SRV.PING, INFO, STATS) is answered by micro itself and
// stays untraced. The embedded micro.Service gives Info, Stats, Reset, Stop and Stopped; its
// own AddEndpoint/AddGroup (reachable as s.Service.AddEndpoint) add untraced, serial
// endpoints. Stop with Shutdown, which waits for the handlers still running.
type Service struct {
	micro.Service
	conn    *Conn
	mu      sync.Mutex // serialises endpoint registration (see addEndpoint)
	eps     sync.Map   // endpoint subject -> *endpoint, for the stats data
	running inflight   // handlers running on goroutines of their own
}

// AddService is micro.AddService on the instrumented connection. A cfg.Endpoint is added as
// a traced endpoint named "default", as micro would. Unless cfg has a StatsHandler, each
// endpoint's $SRV.STATS data carries the handler figures natsotel measures (see
// endpointStats).
func (c *Conn) AddService(cfg micro.Config) (*Service, error) {
	ep := cfg.Endpoint
	cfg.Endpoint = nil
	if ep != nil && ep.Handler == nil {
		return nil, errNilHandler
	}
	s := &Service{conn: c}
	if cfg.StatsHandler == nil {
		cfg.StatsHandler = s.statsData
	}
	svc, err := micro.AddService(c.nc, cfg)
	if err != nil {
		return nil, err
	}
	s.Service = svc
	if ep != nil {
		opts := []micro.EndpointOpt{micro.WithEndpointSubject(ep.Subject)}
		if ep.Metadata != nil {
			opts = append(opts, micro.WithEndpointMetadata(ep.Metadata))
		}
		switch {
		case ep.QueueGroupDisabled:
			opts = append(opts, micro.WithEndpointQueueGroupDisabled())
		case ep.QueueGroup != "":
			opts = append(opts, micro.WithEndpointQueueGroup(ep.QueueGroup))
		}
		mh := ep.Handler
		if err := s.AddEndpoint("default", func(_ context.Context, req micro.Request) { mh.Handle(req) }, opts...); err != nil {
			_ = svc.Stop()
			return nil, err
		}
	}
	return s, nil
}

// AddEndpoint adds a traced endpoint (same options as micro.Service.AddEndpoint).
func (s *Service) AddEndpoint(name string, h Handler, opts ...micro.EndpointOpt) error {
	return s.addEndpoint(s.Service.AddEndpoint, "", name, h, opts)
}

// Group is a micro.Group whose endpoints are traced.
type Group struct {
	g      micro.Group
	svc    *Service
	prefix string
}

// AddGroup is micro.Service.AddGroup for traced endpoints.
func (s *Service) AddGroup(name string, opts ...micro.GroupOpt) *Group {
	return &Group{g: s.Service.AddGroup(name, opts...), svc: s, prefix: name}
}

// AddGroup adds a nested group (prefix "<group>.<name>").
func (g *Group) AddGroup(name string, opts ...micro.GroupOpt) *Group {
	prefix := name
	switch {
	case g.prefix == "":
	case name == "":
		prefix = g.prefix
	default:
		prefix = g.prefix + "." + name
	}
	return &Group{g: g.g.AddGroup(name, opts...), svc: g.svc, prefix: prefix}
}

// AddEndpoint adds a traced endpoint to the group.
func (g *Group) AddEndpoint(name string, h Handler, opts ...micro.EndpointOpt) error {
	return g.svc.addEndpoint(g.g.AddEndpoint, g.prefix, name, h, opts)
}

// endpoint is the traced handler of one micro endpoint.
type endpoint struct {
	c       *Conn
	svc     *Service
	h       Handler
	slots   slots                 // nil: one request at a time, on micro's delivery goroutine
	work    chan *detachedRequest // requests for the workers (see dispatch)
	workers atomic.Int32
	ready   chan struct{}          // closed once meta is set
	meta    atomic.Pointer[opInfo] // SERVER "process <endpoint subject>" operation
	stats   endpointStats
}

// addEndpoint registers the endpoint with micro and then resolves its subject and queue group
// from Service.Info (endpoint options are opaque, so they cannot be read before). Requests
// can arrive before that: the handler waits for ready, which addEndpoint closes right after
// registration, success or not. Registration is serialised so the endpoint added is the
// one appended to Info().Endpoints.
func (s *Service) addEndpoint(add func(string, micro.Handler, ...micro.EndpointOpt) error, prefix, name string, h Handler, opts []micro.EndpointOpt) error {
	if h == nil {
		return errNilHandler
	}
	ep := &endpoint{c: s.conn, svc: s, h: h, ready: make(chan struct{})}
	if n := s.conn.cfg.concurrency; n > 1 {
		ep.slots = make(slots, n)
		ep.work = make(chan *detachedRequest, n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.Service.Info().Endpoints)
	err := add(name, micro.HandlerFunc(ep.dispatch), opts...)

	subject, queue := name, ""
	if prefix != "" {
		subject = prefix + "." + name
	}
	if err == nil {
		infos := s.Service.Info().Endpoints
		idx := -1
		if n < len(infos) && infos[n].Name == name {
			idx = n
		} else {
			for i := len(infos) - 1; i >= 0; i-- {
				if infos[i].Name == name {
					idx = i
					break
				}
			}
		}
		if idx >= 0 {
			subject, queue = infos[idx].Subject, infos[idx].QueueGroup
		}
		s.eps.Store(subject, ep)
	}
	ep.meta.Store(s.conn.op(specServe, subject, queue, false))
	close(ep.ready)
	return err
}

// serve runs the handler for one request, traced unless the WithFilter function says otherwise, and
// records its outcome in the endpoint's stats. A request whose reply subject is not an inbox
// is refused without running the handler (see replyAllowed).
func (ep *endpoint) serve(req micro.Request) {
	info := ep.meta.Load()
	if info == nil {
		<-ep.ready
		info = ep.meta.Load()
	}
	c := ep.c
	ctx := c.cfg.prop.Extract(context.Background(), HeaderCarrier(req.Headers()))
	r := &tracedRequest{Request: req}
	subject := req.Subject()
	traced := c.traced(subject)
	var cl call
	ep.stats.inFlight.Add(1)
	if traced {
		ctx, cl = c.begin(ctx, info, subject)
	} else {
		cl.start = time.Now()
	}
	// Ends the span however the handler ends: return, panic or runtime.Goexit.
	defer func() {
		if p := recover(); p != nil {
			r.answerPanic() // answer first: the panic handler may be slow
			c.recovered(ctx, cl.span, subject, p)
		}
		errType, desc := r.outcome()
		d := time.Since(cl.start)
		if traced {
			cl.end(ctx, errType, desc, 1)
		}
		// Counted last: a request in the stats has its span ended and its metrics recorded.
		ep.stats.record(d, errType, desc)
	}()
	if reply := req.Reply(); !c.replyAllowed(reply) {
		r.refuse(reply)
		if traced && cl.span.IsRecording() {
			cl.span.AddEvent("reply refused", trace.WithAttributes(replySubjectKey.String(truncate(reply, maxRefusedReply))))
		}
		return
	}
	ep.h(ctx, r)
}

// tracedRequest observes how a handler answers.
type tracedRequest struct {
	micro.Request

	mu       sync.Mutex
	sent     bool   // an answer was sent: the caller got it, its outcome is final
	refused  bool   // the reply subject was refused: nothing handled, nothing sent
	panicked bool   // the handler panicked
	errType  string // outcome of the answer sent, or the error of the last failed attempt
	errDesc  string
}

func (r *tracedRequest) Respond(data []byte, opts ...micro.RespondOpt) error {
	err := r.Request.Respond(data, opts...)
	r.record(err, "", "")
	return err
}

func (r *tracedRequest) RespondJSON(v any, opts ...micro.RespondOpt) error {
	err := r.Request.RespondJSON(v, opts...)
	r.record(err, "", "")
	return err
}

func (r *tracedRequest) Error(code, description string, data []byte, opts ...micro.RespondOpt) error {
	err := r.Request.Error(code, description, data, opts...)
	r.record(err, errorTypeOfCode(code), description)
	return err
}

// record notes an answer attempt: err is what sending returned, errType and desc the outcome
// if it was sent ("" for success). Only the first answer sent counts.
func (r *tracedRequest) record(err error, errType, desc string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sent {
		return // the caller got the first answer
	}
	if err != nil {
		// Nothing was sent (marshalling or publishing failed, max_payload for one); the
		// handler may still answer.
		r.errType, r.errDesc = answerErrorType(err), err.Error()
		return
	}
	r.sent = true
	r.errType, r.errDesc = errType, desc
}

// answerErrorType is ErrorType for an error of micro's Respond, which keeps only the text
// of the nats.go error it wraps (fmt.Errorf("%w: %s", micro.ErrRespond, err)): a message
// over max_payload is recognised by nats.ErrMaxPayload's text.
func answerErrorType(err error) string {
	if t := ErrorType(err); t != errTypeOther {
		return t
	}
	if strings.Contains(err.Error(), nats.ErrMaxPayload.Error()) {
		return errTypeMaxPayload
	}
	return errTypeOther
}

// replySubjectKey names the refused reply subject on the "reply refused" span event.
const replySubjectKey = attribute.Key("messaging.nats.reply_subject")

// maxRefusedReply bounds how much of a refused reply subject is recorded.
const maxRefusedReply = 128

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// refuse marks the request as refused for its reply subject.
func (r *tracedRequest) refuse(reply string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refused, r.errType = true, errTypeReplyRefused
	r.errDesc = "no reply subject"
	if reply != "" {
		r.errDesc = "reply subject is not an inbox: " + truncate(reply, maxRefusedReply)
	}
}

// answerPanic answers a panicking handler's request with a 500, unless it was answered.
func (r *tracedRequest) answerPanic() {
	r.mu.Lock()
	sent := r.sent
	r.mu.Unlock()
	if !sent {
		_ = r.Request.Error(panicCode, panicDescription, nil)
	}
	r.mu.Lock()
	r.sent, r.panicked = true, true
	r.mu.Unlock()
}

// outcome is the span's error.type ("" for success) and status description.
func (r *tracedRequest) outcome() (string, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.refused:
		return r.errType, r.errDesc
	case r.panicked:
		return panicCode, "handler panic"
	case r.sent:
		return r.errType, r.errDesc
	case r.errDesc != "":
		// The handler tried to answer and could not: say why (max_payload, ...).
		return r.errType, "no answer sent: " + r.errDesc
	default:
		return errTypeNoReply, "handler returned without answering"
	}
}
