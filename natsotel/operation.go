package natsotel

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

const schemaURL = semconv.SchemaURL

// maxCachedOps bounds the per-Conn cache of precomputed span names and attribute sets. It only
// grows past a few entries when destinations are high-cardinality (which the caller should
// avoid); beyond the bound entries are computed per call instead of cached.
const maxCachedOps = 4096

// opSpec describes one kind of instrumented operation.
type opSpec struct {
	op        string             // messaging.operation.name / db.operation.name
	kind      trace.SpanKind     // span kind
	opType    attribute.KeyValue // messaging.operation.type (invalid for db)
	db        bool               // KeyValue call: db.* attributes, db.client.operation.duration
	process   bool               // process duration + consumed counter
	consuming bool               // counts messaging.client.consumed.messages
}

var (
	specRequest   = &opSpec{op: OpRequest, kind: trace.SpanKindClient, opType: semconv.MessagingOperationTypeSend}
	specSend      = &opSpec{op: OpSend, kind: trace.SpanKindProducer, opType: semconv.MessagingOperationTypeSend}
	specServe     = &opSpec{op: OpProcess, kind: trace.SpanKindServer, opType: semconv.MessagingOperationTypeProcess, process: true, consuming: true}
	specConsume   = &opSpec{op: OpProcess, kind: trace.SpanKindConsumer, opType: semconv.MessagingOperationTypeProcess, process: true, consuming: true}
	specReceive   = &opSpec{op: OpReceive, kind: trace.SpanKindClient, opType: semconv.MessagingOperationTypeReceive, consuming: true}
	specKVGet     = &opSpec{op: OpGet, kind: trace.SpanKindClient, db: true}
	specKVPut     = &opSpec{op: OpPut, kind: trace.SpanKindClient, db: true}
	specKVCreate  = &opSpec{op: OpCreate, kind: trace.SpanKindClient, db: true}
	specKVUpdate  = &opSpec{op: OpUpdate, kind: trace.SpanKindClient, db: true}
	specKVDelete  = &opSpec{op: OpDelete, kind: trace.SpanKindClient, db: true}
	specKVPurge   = &opSpec{op: OpPurge, kind: trace.SpanKindClient, db: true}
	startOptsKind = map[trace.SpanKind][]trace.SpanStartOption{
		trace.SpanKindClient:   {trace.WithSpanKind(trace.SpanKindClient)},
		trace.SpanKindServer:   {trace.WithSpanKind(trace.SpanKindServer)},
		trace.SpanKindProducer: {trace.WithSpanKind(trace.SpanKindProducer)},
		trace.SpanKindConsumer: {trace.WithSpanKind(trace.SpanKindConsumer)},
	}
)

// opKey identifies a cached opInfo.
type opKey struct {
	spec      *opSpec
	dest      string // low-cardinality destination: subject template, stream or bucket
	group     string // consumer group (queue group, durable), "" if none
	temporary bool   // dest is a temporary destination
}

// opInfo is everything about an operation that does not change from call to call.
type opInfo struct {
	key       opKey
	name      string
	startOpts []trace.SpanStartOption
	attrs     []attribute.KeyValue // static span attributes
	mattrs    []attribute.KeyValue // metric attributes without error.type and server.*

	withSrv     atomic.Pointer[srvAttrs]    // attrs + server attrs, for the last server seen
	lastMetrics atomic.Pointer[lastMetrics] // metric options of the last successful call

	mu      sync.RWMutex
	metrics map[metricVariant]*metricOpts
}

type metricVariant struct {
	errType string
	srvID   string // server id: the same server gives the same server.* attributes
}

type lastMetrics struct {
	v  metricVariant
	mo *metricOpts
}

type metricOpts struct {
	rec []metric.RecordOption
	add []metric.AddOption
}

// opCache is the per-Conn cache of opInfo.
type opCache struct {
	mu sync.RWMutex
	m  map[opKey]*opInfo
}

func (c *Conn) op(spec *opSpec, dest, group string, temporary bool) *opInfo {
	k := opKey{spec: spec, dest: dest, group: group, temporary: temporary}
	c.ops.mu.RLock()
	info, ok := c.ops.m[k]
	c.ops.mu.RUnlock()
	if ok {
		return info
	}
	info = c.newOpInfo(k)
	c.ops.mu.Lock()
	if prev, ok := c.ops.m[k]; ok {
		info = prev
	} else if len(c.ops.m) < maxCachedOps {
		c.ops.m[k] = info
	}
	c.ops.mu.Unlock()
	return info
}

func (c *Conn) newOpInfo(k opKey) *opInfo {
	s := k.spec
	info := &opInfo{key: k, name: c.cfg.nameFmt(s.op, k.dest), startOpts: startOptsKind[s.kind], metrics: map[metricVariant]*metricOpts{}}
	if s.db {
		info.mattrs = []attribute.KeyValue{
			DBSystemNATS,
			semconv.DBOperationName(s.op),
			semconv.DBNamespace(k.dest),
			semconv.DBCollectionName(k.dest),
		}
	} else {
		info.mattrs = []attribute.KeyValue{
			SystemNATS,
			semconv.MessagingOperationName(s.op),
			s.opType,
			semconv.MessagingDestinationName(k.dest),
		}
		if k.temporary {
			info.mattrs = append(info.mattrs, semconv.MessagingDestinationTemporary(true))
		}
		if k.group != "" {
			info.mattrs = append(info.mattrs, semconv.MessagingConsumerGroupName(k.group))
		}
	}
	// Span attributes: the metric attributes, the client id and WithAttributes, and for
	// messaging operations messaging.destination.name last, so that begin can replace it
	// with the concrete subject (see begin).
	attrs := make([]attribute.KeyValue, 0, len(info.mattrs)+2+len(c.cfg.attributes))
	for _, kv := range info.mattrs {
		if kv.Key != semconv.MessagingDestinationNameKey {
			attrs = append(attrs, kv)
		}
	}
	if !s.db && c.clientID != "" {
		attrs = append(attrs, semconv.MessagingClientID(c.clientID))
	}
	attrs = append(attrs, c.cfg.attributes...)
	if !s.db {
		attrs = append(attrs, semconv.MessagingDestinationName(k.dest))
	}
	info.attrs = attrs
	return info
}

func (info *opInfo) metricOptions(c *Conn, errType string, srv *serverInfo) *metricOpts {
	if info.key.spec.db {
		srv = nil // KV metrics carry no server.* (see doc.go)
	}
	v := metricVariant{errType: errType}
	if srv != nil {
		v.srvID = srv.id
	}
	if last := info.lastMetrics.Load(); last != nil && last.v == v {
		return last.mo
	}
	info.mu.RLock()
	mo, ok := info.metrics[v]
	info.mu.RUnlock()
	if ok {
		if errType == "" {
			info.lastMetrics.Store(&lastMetrics{v: v, mo: mo})
		}
		return mo
	}
	kvs := make([]attribute.KeyValue, 0, len(info.mattrs)+3)
	kvs = append(kvs, info.mattrs...)
	if errType != "" {
		kvs = append(kvs, semconv.ErrorTypeKey.String(errType))
	}
	if srv != nil {
		kvs = append(kvs, srv.attrs...)
	}
	set := attribute.NewSet(kvs...)
	mo = &metricOpts{
		rec: []metric.RecordOption{metric.WithAttributeSet(set)},
		add: []metric.AddOption{metric.WithAttributeSet(set)},
	}
	info.mu.Lock()
	if len(info.metrics) < maxCachedOps {
		info.metrics[v] = mo
	}
	info.mu.Unlock()
	return mo
}

// call is one instrumented operation in flight.
type call struct {
	c     *Conn
	info  *opInfo
	span  trace.Span
	srv   *serverInfo
	start time.Time
}

// begin starts the span of an operation. subject is the concrete subject of the message
// ("" if there is none, as for Fetch and KeyValue). When it differs from the operation's
// low-cardinality destination, the span gets it as messaging.destination.name and the
// destination as messaging.destination.template; temporary subjects never reach the span.
// bodySize >= 0 is set as messaging.message.body.size (< 0: none). extra start options
// (links, new root) are appended. A recording span gets all its attributes in one
// SetAttributes call, so the SDK sizes its attribute slice once.
func (c *Conn) begin(ctx context.Context, info *opInfo, subject string, bodySize int, extra ...trace.SpanStartOption) (context.Context, call) {
	opts := info.startOpts
	if len(extra) > 0 {
		opts = append(append(make([]trace.SpanStartOption, 0, len(opts)+len(extra)), opts...), extra...)
	}
	start := time.Now()
	ctx, span := c.tracer.Start(ctx, info.name, opts...)
	cl := call{c: c, info: info, span: span, start: start}
	if !info.key.spec.db {
		cl.srv = c.server(start)
	}
	if span.IsRecording() {
		attrs := info.spanAttrs(cl.srv)
		k := info.key
		concrete := subject != "" && subject != k.dest && !k.temporary && !k.spec.db && !c.temporary(subject)
		if !concrete && bodySize < 0 {
			span.SetAttributes(attrs...)
			return ctx, cl
		}
		n := len(attrs)
		if concrete {
			n-- // the last attribute is messaging.destination.name=dest (see newOpInfo)
		}
		all := make([]attribute.KeyValue, n, n+3)
		copy(all, attrs)
		if concrete {
			all = append(all, semconv.MessagingDestinationName(subject), semconv.MessagingDestinationTemplate(k.dest))
		}
		if bodySize >= 0 {
			all = append(all, semconv.MessagingMessageBodySize(bodySize))
		}
		span.SetAttributes(all...)
	}
	return ctx, cl
}

// spanAttrs returns the static span attributes plus the server's, cached for the current
// server. For messaging operations messaging.destination.name stays the last attribute.
func (info *opInfo) spanAttrs(srv *serverInfo) []attribute.KeyValue {
	if srv == nil || len(srv.attrs) == 0 {
		return info.attrs
	}
	if sa := info.withSrv.Load(); sa != nil && sa.srv == srv {
		return sa.attrs
	}
	attrs := make([]attribute.KeyValue, 0, len(info.attrs)+len(srv.attrs))
	if info.key.spec.db {
		attrs = append(append(attrs, info.attrs...), srv.attrs...)
	} else {
		n := len(info.attrs) - 1
		attrs = append(append(append(attrs, info.attrs[:n]...), srv.attrs...), info.attrs[n])
	}
	info.withSrv.Store(&srvAttrs{srv: srv, attrs: attrs})
	return attrs
}

type srvAttrs struct {
	srv   *serverInfo
	attrs []attribute.KeyValue
}

// end ends the span and records the metrics. errType "" means success; desc is the status
// description on error. n is the number of messages sent or consumed (0: none counted).
func (cl *call) end(ctx context.Context, errType, desc string, n int64) {
	elapsed := time.Since(cl.start).Seconds()
	if errType != "" && cl.span.IsRecording() {
		cl.span.SetAttributes(semconv.ErrorTypeKey.String(errType))
		cl.span.SetStatus(codes.Error, desc)
	}
	// Metrics first, then the span's end: whoever sees the span ended sees its metrics.
	defer cl.span.End()

	c := cl.c
	mo := cl.info.metricOptions(c, errType, cl.srv)
	spec := cl.info.key.spec
	switch {
	case spec.db:
		c.inst.dbDuration.Record(ctx, elapsed, mo.rec...)
		return
	case spec.process:
		c.inst.processDuration.Record(ctx, elapsed, mo.rec...)
	default:
		c.inst.clientDuration.Record(ctx, elapsed, mo.rec...)
	}
	if n > 0 {
		if spec.consuming {
			c.inst.consumed.Add(ctx, n, mo.add...)
		} else {
			c.inst.sent.Add(ctx, n, mo.add...)
		}
	}
}

// traced applies the Filter.
func (c *Conn) traced(subject string) bool {
	return c.cfg.filter == nil || c.cfg.filter(subject)
}
