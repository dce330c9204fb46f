package natsotel

// API SKETCH — the implementer replaces this file with real code split one concept per file
// (config.go, carrier.go, conn.go, request.go, micro.go, pubsub.go, jetstream.go, kv.go,
// errors.go, metrics.go, doc.go). Exported names and signatures below are the contract the
// services, loadgen and demo code against; extend freely, change only with care.

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

var errTODO = errors.New("natsotel: not implemented yet")

// ---- config.go ----

// Option configures a Conn.
type Option interface{ apply(*config) }

type config struct {
	tp         trace.TracerProvider
	mp         metric.MeterProvider
	prop       propagation.TextMapPropagator
	nameFmt    SpanNameFormatter
	filter     Filter
	linkOnly   bool
	attributes []attribute.KeyValue
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// SpanNameFormatter names a span from the operation ("send", "process", "receive", "request",
// "get", "put", ...) and the low-cardinality destination (subject template, stream or bucket).
type SpanNameFormatter func(operation, destination string) string

// Filter decides whether a message on subject is traced. Returning false skips span creation
// (context is still propagated through unchanged).
type Filter func(subject string) bool

func WithTracerProvider(tp trace.TracerProvider) Option       { return optionFunc(func(c *config) { c.tp = tp }) }
func WithMeterProvider(mp metric.MeterProvider) Option        { return optionFunc(func(c *config) { c.mp = mp }) }
func WithPropagators(p propagation.TextMapPropagator) Option  { return optionFunc(func(c *config) { c.prop = p }) }
func WithSpanNameFormatter(f SpanNameFormatter) Option         { return optionFunc(func(c *config) { c.nameFmt = f }) }
func WithFilter(f Filter) Option                               { return optionFunc(func(c *config) { c.filter = f }) }
func WithAttributes(kv ...attribute.KeyValue) Option           { return optionFunc(func(c *config) { c.attributes = kv }) }

// WithConsumerLinks makes subscribe/consume spans new roots that link to the producer
// instead of being its children (no service-graph edge; see doc.go).
func WithConsumerLinks() Option { return optionFunc(func(c *config) { c.linkOnly = true }) }

// ---- carrier.go ----

// HeaderCarrier adapts nats.Header to propagation.TextMapCarrier: writes lowercase keys,
// reads case-insensitively.
type HeaderCarrier nats.Header

func (h HeaderCarrier) Get(key string) string { return "" }
func (h HeaderCarrier) Set(key, value string) {}
func (h HeaderCarrier) Keys() []string        { return nil }

// ---- conn.go ----

// Conn is an instrumented view of a *nats.Conn. Safe for concurrent use.
type Conn struct {
	nc  *nats.Conn
	cfg config
}

// Wrap instruments nc. Defaults come from the global providers and propagator.
func Wrap(nc *nats.Conn, opts ...Option) (*Conn, error) { return &Conn{nc: nc}, nil }

// NATS returns the underlying connection.
func (c *Conn) NATS() *nats.Conn { return c.nc }

// Propagator returns the configured propagator.
func (c *Conn) Propagator() propagation.TextMapPropagator { return c.cfg.prop }

// Tracer returns the tracer natsotel uses (scope name = this module's path).
func (c *Conn) Tracer() trace.Tracer { return nil }

// ---- errors.go ----

// ServiceError is a micro error reply (Nats-Service-Error-Code / Nats-Service-Error headers).
type ServiceError struct {
	Code        int    // e.g. 400, 402, 409, 500
	Description string // Nats-Service-Error
	Subject     string // the request subject
	Data        []byte // reply body, if any
}

func (e *ServiceError) Error() string {
	return fmt.Sprintf("nats micro error %d on %s: %s", e.Code, e.Subject, e.Description)
}

// ---- request.go ----

// Request sends data to subject and waits for the reply, honouring ctx's deadline and
// cancellation, in a CLIENT span. A micro error reply returns *ServiceError (use errors.As);
// no responders and timeouts return errors that errors.Is nats.ErrNoResponders /
// context.DeadlineExceeded respectively.
func (c *Conn) Request(ctx context.Context, subject string, data []byte) (*nats.Msg, error) {
	return nil, errTODO
}

// RequestMsg is Request with a full message (headers kept; trace context added).
func (c *Conn) RequestMsg(ctx context.Context, msg *nats.Msg) (*nats.Msg, error) { return nil, errTODO }

// ---- pubsub.go ----

// MsgHandler handles a core NATS message; ctx carries the CONSUMER span.
type MsgHandler func(ctx context.Context, msg *nats.Msg)

func (c *Conn) Publish(ctx context.Context, subject string, data []byte) error { return errTODO }
func (c *Conn) PublishMsg(ctx context.Context, msg *nats.Msg) error               { return errTODO }
func (c *Conn) Subscribe(subject string, h MsgHandler) (*nats.Subscription, error) {
	return nil, errTODO
}
func (c *Conn) QueueSubscribe(subject, queue string, h MsgHandler) (*nats.Subscription, error) {
	return nil, errTODO
}

// ---- micro.go ----

// Handler handles a micro request; ctx carries the SERVER span (child of the caller's
// CLIENT span). req.Error(code, ...) marks the span as error with error.type = code.
// A panic is recorded on the span and answered with a 500 micro error.
type Handler func(ctx context.Context, req micro.Request)

// Service is a micro.Service whose endpoints are traced. Discovery ($SRV.*) stays untraced.
type Service struct {
	micro.Service
	conn *Conn
}

// AddService is micro.AddService on the instrumented connection.
func (c *Conn) AddService(cfg micro.Config) (*Service, error) { return nil, errTODO }

// AddEndpoint adds a traced endpoint (same options as micro.Service.AddEndpoint).
func (s *Service) AddEndpoint(name string, h Handler, opts ...micro.EndpointOpt) error {
	return errTODO
}

// Group is a micro.Group whose endpoints are traced.
type Group struct {
	g    micro.Group
	conn *Conn
}

func (s *Service) AddGroup(name string, opts ...micro.GroupOpt) *Group { return nil }
func (g *Group) AddGroup(name string, opts ...micro.GroupOpt) *Group   { return nil }
func (g *Group) AddEndpoint(name string, h Handler, opts ...micro.EndpointOpt) error {
	return errTODO
}

// ---- jetstream.go ----

// JetStream is an instrumented jetstream.JetStream.
type JetStream struct {
	js   jetstream.JetStream
	conn *Conn
}

// JSHandler handles a JetStream message; ctx carries the CONSUMER "process" span.
type JSHandler func(ctx context.Context, msg jetstream.Msg)

func (c *Conn) JetStream(opts ...jetstream.JetStreamOpt) (*JetStream, error) { return nil, errTODO }

// Raw returns the underlying jetstream.JetStream (for stream/consumer management).
func (j *JetStream) Raw() jetstream.JetStream { return j.js }

// Publish is a PRODUCER span; stream and sequence from the PubAck become span attributes.
func (j *JetStream) Publish(ctx context.Context, subject string, data []byte, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	return nil, errTODO
}
func (j *JetStream) PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	return nil, errTODO
}

// Consume runs h for every message of cons in a CONSUMER span (child of the producer span).
func (j *JetStream) Consume(cons jetstream.Consumer, h JSHandler, opts ...jetstream.PullConsumeOpt) (jetstream.ConsumeContext, error) {
	return nil, errTODO
}

// Process runs h for one message (from Messages().Next() or Fetch) in a CONSUMER span.
func (j *JetStream) Process(ctx context.Context, msg jetstream.Msg, h JSHandler) {}

// Fetch fetches up to batch messages in a CLIENT "receive" span that links every message's
// producer context. Process each message with Process.
func (j *JetStream) Fetch(ctx context.Context, cons jetstream.Consumer, batch int, opts ...jetstream.FetchOpt) ([]jetstream.Msg, error) {
	return nil, errTODO
}

// ---- kv.go ----

// KeyValue is an instrumented jetstream.KeyValue: every call is a CLIENT span whose
// db.* attributes make the bucket a database node in Tempo's service graph.
type KeyValue struct {
	kv   jetstream.KeyValue
	conn *Conn
}

func (j *JetStream) KeyValue(ctx context.Context, bucket string) (*KeyValue, error) {
	return nil, errTODO
}
func (j *JetStream) CreateOrUpdateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (*KeyValue, error) {
	return nil, errTODO
}
func (j *JetStream) WrapKeyValue(kv jetstream.KeyValue) *KeyValue { return &KeyValue{kv: kv, conn: j.conn} }
func (k *KeyValue) Raw() jetstream.KeyValue                        { return k.kv }
func (k *KeyValue) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	return nil, errTODO
}
func (k *KeyValue) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	return 0, errTODO
}
func (k *KeyValue) Create(ctx context.Context, key string, value []byte) (uint64, error) {
	return 0, errTODO
}
func (k *KeyValue) Update(ctx context.Context, key string, value []byte, revision uint64) (uint64, error) {
	return 0, errTODO
}
func (k *KeyValue) Delete(ctx context.Context, key string) error { return errTODO }
