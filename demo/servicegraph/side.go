package servicegraph

import (
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconvlegacy "go.opentelemetry.io/otel/semconv/v1.24.0"
	semconvpeer "go.opentelemetry.io/otel/semconv/v1.33.0"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// noLatency marks a side whose duration is unknown (a virtual node).
const noLatency time.Duration = -1

// side is one finished span of an edge, reduced to what pairing needs.
type side struct {
	key       sideKey
	service   string
	server    bool // SERVER or CONSUMER
	messaging bool // PRODUCER or CONSUMER
	database  bool // CLIENT with database attributes
	dbNode    string
	peer      string // virtual node name if the client side expires unpaired
	failed    bool
	latency   time.Duration
	added     time.Time
}

func (s *side) client() bool { return !s.server }

type sideKey struct {
	pairKey
	parentValid bool
}

// Attributes that mark a CLIENT span as a database call (Tempo's database_name_attributes
// plus the system attributes the brief of this repo asks for).
var databaseAttributes = []attribute.Key{
	semconv.DBNamespaceKey,
	semconvlegacy.DBNameKey,
	semconv.DBSystemNameKey,
	semconvlegacy.DBSystemKey,
}

// Attributes that name a virtual server node when a client side expires unpaired
// (the collector connector's default peer attributes, current and legacy names).
var peerAttributes = []attribute.Key{
	semconv.ServicePeerNameKey,
	semconvpeer.PeerServiceKey,
	semconv.DBNamespaceKey,
	semconvlegacy.DBNameKey,
	semconv.DBSystemNameKey,
	semconvlegacy.DBSystemKey,
}

// sideOf reduces s to a side, or reports false if s cannot be part of an edge.
// settle is messaging.operation.type of a settlement (ack, nak, term) span.
const settle = "settle"

func sideOf(s sdktrace.ReadOnlySpan) (*side, bool) {
	sd := &side{}
	switch s.SpanKind() {
	case trace.SpanKindClient:
	case trace.SpanKindProducer:
		sd.messaging = true
	case trace.SpanKindServer:
		sd.server = true
	case trace.SpanKindConsumer:
		sd.server, sd.messaging = true, true
	default:
		return nil, false
	}
	res := s.Resource()
	if res == nil {
		return nil, false
	}
	name, ok := res.Set().Value(semconv.ServiceNameKey)
	if !ok || name.AsString() == "" {
		return nil, false
	}
	sd.service = name.AsString()
	sd.failed = s.Status().Code == codes.Error
	sd.latency = max(s.EndTime().Sub(s.StartTime()), 0)

	sc := s.SpanContext()
	sd.key.trace = sc.TraceID()
	if sd.server {
		sd.key.span = s.Parent().SpanID()
		sd.key.parentValid = s.Parent().IsValid() && s.Parent().TraceID() == sc.TraceID()
	} else {
		sd.key.span = sc.SpanID()
		sd.key.parentValid = true
	}

	if !sd.server {
		attrs := attributeMap(s.Attributes())
		if v, ok := attrs[semconv.MessagingOperationTypeKey]; ok && v.AsString() == settle {
			// An ack, nak or term: a CLIENT span nobody answers with a span. Tempo counts
			// it as unpaired and draws nothing; here it would only fill pending and expired.
			return nil, false
		}
		if s.SpanKind() == trace.SpanKindClient && hasAny(attrs, databaseAttributes) {
			sd.database = true
			sd.dbNode = databaseNode(attrs)
		}
		sd.peer = first(attrs, peerAttributes)
	}
	return sd, true
}

// databaseNode names a database server node the way Tempo does: the peer service, then
// server.address, then network.peer.address (with its port), then the database name.
func databaseNode(attrs map[attribute.Key]attribute.Value) string {
	if v := first(attrs, []attribute.Key{semconv.ServicePeerNameKey, semconvpeer.PeerServiceKey}); v != "" {
		return v
	}
	if v := str(attrs, semconv.ServerAddressKey); v != "" {
		return v
	}
	if v := str(attrs, semconv.NetworkPeerAddressKey); v != "" {
		if p, ok := attrs[semconv.NetworkPeerPortKey]; ok {
			return v + ":" + strconv.FormatInt(p.AsInt64(), 10)
		}
		return v
	}
	if v := first(attrs, databaseAttributes); v != "" {
		return v
	}
	return "unknown"
}

func attributeMap(kvs []attribute.KeyValue) map[attribute.Key]attribute.Value {
	m := make(map[attribute.Key]attribute.Value, len(kvs))
	for _, kv := range kvs {
		m[kv.Key] = kv.Value
	}
	return m
}

func hasAny(attrs map[attribute.Key]attribute.Value, keys []attribute.Key) bool {
	return first(attrs, keys) != ""
}

func first(attrs map[attribute.Key]attribute.Value, keys []attribute.Key) string {
	for _, k := range keys {
		if v := str(attrs, k); v != "" {
			return v
		}
	}
	return ""
}

func str(attrs map[attribute.Key]attribute.Value, k attribute.Key) string {
	v, ok := attrs[k]
	if !ok {
		return ""
	}
	return v.String()
}
