package natsotel

import (
	"context"
	"maps"
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
	// How a JetStream consumer's spans carry its group (a durable consumer, always a metric
	// label as messaging.consumer.group.name); see newOpInfo:
	groupOffSpan     bool // not on the span (Fetch names every consumer as its subscription)
	groupForClientID bool // on the span in place of messaging.client.id (JetStream process)
}

var (
	specRequest   = &opSpec{op: opRequest, kind: trace.SpanKindClient, opType: semconv.MessagingOperationTypeSend}
	specSend      = &opSpec{op: opSend, kind: trace.SpanKindProducer, opType: semconv.MessagingOperationTypeSend}
	specServe     = &opSpec{op: opProcess, kind: trace.SpanKindServer, opType: semconv.MessagingOperationTypeProcess, process: true, consuming: true}
	specConsume   = &opSpec{op: opProcess, kind: trace.SpanKindConsumer, opType: semconv.MessagingOperationTypeProcess, process: true, consuming: true}
	specJSProcess = &opSpec{op: opProcess, kind: trace.SpanKindConsumer, opType: semconv.MessagingOperationTypeProcess, process: true, consuming: true, groupForClientID: true}
	specReceive   = &opSpec{op: opReceive, kind: trace.SpanKindClient, opType: semconv.MessagingOperationTypeReceive, consuming: true, groupOffSpan: true}
	specKVGet     = &opSpec{op: opGet, kind: trace.SpanKindClient, db: true}
	specKVPut     = &opSpec{op: opPut, kind: trace.SpanKindClient, db: true}
	specKVCreate  = &opSpec{op: opCreate, kind: trace.SpanKindClient, db: true}
	specKVUpdate  = &opSpec{op: opUpdate, kind: trace.SpanKindClient, db: true}
	specKVDelete  = &opSpec{op: opDelete, kind: trace.SpanKindClient, db: true}
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

// opCache is the per-Conn cache of opInfo. Every traced call reads it, from many goroutines,
// and it changes only when an operation is seen for the first time: readers load an
// immutable map without a lock (a read lock's counter would be shared by all of them), and a
// new entry replaces the map with a copy.
type opCache struct {
	m  atomic.Pointer[map[opKey]*opInfo]
	mu sync.Mutex // serialises writers
}

func (c *Conn) op(spec *opSpec, dest, group string, temporary bool) *opInfo {
	k := opKey{spec: spec, dest: dest, group: group, temporary: temporary}
	if info, ok := (*c.ops.m.Load())[k]; ok {
		return info
	}
	info := c.newOpInfo(k)
	c.ops.mu.Lock()
	defer c.ops.mu.Unlock()
	old := c.ops.m.Load()
	if prev, ok := (*old)[k]; ok {
		return prev
	}
	if len(*old) >= maxCachedOps {
		return info
	}
	m := make(map[opKey]*opInfo, len(*old)+1)
	maps.Copy(m, *old)
	m[k] = info
	c.ops.m.Store(&m)
	return info
}

func (c *Conn) newOpInfo(k opKey) *opInfo {
	s := k.spec
	info := &opInfo{key: k, name: s.op + " " + k.dest, startOpts: startOptsKind[s.kind], metrics: map[metricVariant]*metricOpts{}}
	if s.db {
		info.mattrs = []attribute.KeyValue{
			dbSystemNATS,
			semconv.DBOperationName(s.op),
			semconv.DBNamespace(k.dest),
			semconv.DBCollectionName(k.dest),
		}
	} else {
		info.mattrs = []attribute.KeyValue{
			systemNATS,
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
	// Span attributes: the metric attributes, the client id, and for messaging operations
	// messaging.destination.name last, so that begin can replace it with the concrete
	// subject (see begin). A JetStream process span names its durable consumer
	// (messaging.consumer.group.name, conditionally required) in place of the client id
	// (recommended): one more would take it past the 8 attributes the SDK deduplicates
	// without growing a map. Fetch's receive span names the consumer, durable or not, as
	// messaging.destination.subscription.name instead (see Fetch).
	attrs := make([]attribute.KeyValue, 0, len(info.mattrs)+3)
	for _, kv := range info.mattrs {
		switch kv.Key {
		case semconv.MessagingDestinationNameKey:
			continue
		case semconv.MessagingConsumerGroupNameKey:
			if s.groupOffSpan {
				continue
			}
		}
		attrs = append(attrs, kv)
	}
	if !s.db && c.clientID != "" && !(s.groupForClientID && k.group != "") {
		attrs = append(attrs, semconv.MessagingClientID(c.clientID))
	}
	if s.db && c.dbDup {
		attrs = append(attrs, dbSystemOld, dbNameOld.String(k.dest), dbOperationOld.String(s.op))
	}
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
// extra start options (links, new root) are appended. A recording span gets all its
// attributes in one SetAttributes call, so the SDK sizes its attribute slice once.
func (c *Conn) begin(ctx context.Context, info *opInfo, subject string, extra ...trace.SpanStartOption) (context.Context, call) {
	ctx, cl := c.start(ctx, info, extra)
	if cl.span.IsRecording() {
		k := info.key
		concrete := subject != "" && subject != k.dest && !k.temporary && !k.spec.db && !c.temporary(subject)
		if !concrete {
			cl.span.SetAttributes(info.spanAttrs(cl.srv)...)
			return ctx, cl
		}
		b := cl.attrs(subject)
		cl.span.SetAttributes(b.kvs...)
		putAttrBuf(b)
	}
	return ctx, cl
}

// start starts the span of an operation without setting any attribute: the caller sets
// them, all in one SetAttributes call (begin), or collects them with attrs and passes them
// to endWith when the operation's outcome adds more (JetStream publish and process).
func (c *Conn) start(ctx context.Context, info *opInfo, extra []trace.SpanStartOption) (context.Context, call) {
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
	return ctx, cl
}

// attrBuf is a reusable attribute slice: a span copies what SetAttributes passes it, so the
// slice that assembles a span's attributes goes back to attrBufs after the call.
type attrBuf struct{ kvs []attribute.KeyValue }

var attrBufs = sync.Pool{New: func() any { return &attrBuf{kvs: make([]attribute.KeyValue, 0, 24)} }}

func putAttrBuf(b *attrBuf) {
	if cap(b.kvs) > 64 {
		return // grown unusually large: let it go
	}
	clear(b.kvs)
	b.kvs = b.kvs[:0]
	attrBufs.Put(b)
}

// attrs returns a pooled buffer with the span attributes of cl's operation for a message on
// subject (see begin); the caller appends to b.kvs, sets them and returns b with putAttrBuf.
func (cl *call) attrs(subject string) *attrBuf {
	info := cl.info
	attrs := info.spanAttrs(cl.srv)
	k := info.key
	concrete := subject != "" && subject != k.dest && !k.temporary && !k.spec.db && !cl.c.temporary(subject)
	b := attrBufs.Get().(*attrBuf)
	if concrete {
		// the last attribute is messaging.destination.name=dest (see newOpInfo)
		b.kvs = append(b.kvs, attrs[:len(attrs)-1]...)
		b.kvs = append(b.kvs, semconv.MessagingDestinationName(subject), semconv.MessagingDestinationTemplate(k.dest))
	} else {
		b.kvs = append(b.kvs, attrs...)
	}
	return b
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
	cl.endWith(ctx, nil, errType, desc, n)
}

// callerError reports whether errType is a micro code of the 4xx class: the request was
// wrong (400 bad input, 404, 409 out of stock, 402 declined), not the service. Like otelhttp
// and otelgrpc, natsotel leaves the SERVER span of such an answer with status Unset (its
// error.type says the code) and sets Error on the CLIENT span: the server did its job, the
// edge still counts as failed through the client side.
func callerError(errType string) bool {
	return len(errType) == 3 && errType[0] == '4' && errType[1] >= '0' && errType[1] <= '9' && errType[2] >= '0' && errType[2] <= '9'
}

// endWith is end for a span started with start: b (nil if the span does not record) holds
// its attributes, set together with error.type in one SetAttributes call; b is returned to
// the pool.
func (cl *call) endWith(ctx context.Context, b *attrBuf, errType, desc string, n int64) {
	elapsed := time.Since(cl.start).Seconds()
	if b != nil {
		if errType != "" {
			b.kvs = append(b.kvs, semconv.ErrorTypeKey.String(errType))
		}
		cl.span.SetAttributes(b.kvs...)
		putAttrBuf(b)
	} else if errType != "" && cl.span.IsRecording() {
		cl.span.SetAttributes(semconv.ErrorTypeKey.String(errType))
	}
	if errType != "" && !(cl.info.key.spec.kind == trace.SpanKindServer && callerError(errType)) {
		cl.span.SetStatus(codes.Error, desc)
	}
	// Metrics before End: whoever sees the span ended (a test, a span processor) finds the
	// operation's measurements recorded too.
	cl.record(ctx, elapsed, errType, n)
	cl.span.End()
}

// record records the operation's duration and, for n > 0, its sent or consumed messages.
func (cl *call) record(ctx context.Context, elapsed float64, errType string, n int64) {
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

// traced applies the WithFilter function.
func (c *Conn) traced(subject string) bool {
	return c.cfg.filter == nil || c.cfg.filter(subject)
}
