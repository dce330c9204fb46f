package natsotel

import (
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// SystemNATS is messaging.system=nats. "nats" is the value the OpenTelemetry Java agent and
// nats.net use, but it is not (yet) a registered value of messaging.system in the semantic
// conventions, so there is no semconv constant for it.
var SystemNATS = semconv.MessagingSystemKey.String("nats")

// DBSystemNATS is db.system.name=nats on KeyValue spans (not a registered value either).
var DBSystemNATS = semconv.DBSystemNameKey.String("nats")

// NATS-specific attribute keys, used only where the semantic conventions have none.
const (
	// StreamKey is the JetStream stream that stored (PubAck) or delivered a message.
	StreamKey = attribute.Key("messaging.nats.stream")
	// SequenceKey is the stream sequence of a message (PubAck or delivery metadata).
	SequenceKey = attribute.Key("messaging.nats.sequence")
	// DuplicateKey is true when JetStream reported a publish as a duplicate (Nats-Msg-Id).
	DuplicateKey = attribute.Key("messaging.nats.duplicate")
	// DeliveredKey is the JetStream delivery count of a consumed message (1 = first delivery).
	DeliveredKey = attribute.Key("messaging.nats.delivered")
	// RedeliveredKey is true when a consumed message was delivered more than once.
	RedeliveredKey = attribute.Key("messaging.nats.redelivered")
	// KVRevisionKey is the revision a KeyValue call read or wrote.
	KVRevisionKey = attribute.Key("nats.kv.revision")
	// KVFoundKey is false when a KeyValue Get found no value (not an error).
	KVFoundKey = attribute.Key("nats.kv.found")
)

// Operation names (messaging.operation.name / db.operation.name) natsotel uses.
const (
	OpRequest = "request" // Conn.Request: CLIENT, type send
	OpSend    = "send"    // Publish: PRODUCER, type send
	OpProcess = "process" // handlers: SERVER (micro) or CONSUMER, type process
	OpReceive = "receive" // JetStream Fetch: CLIENT, type receive
	OpGet     = "get"     // KeyValue
	OpPut     = "put"
	OpCreate  = "create"
	OpUpdate  = "update"
	OpDelete  = "delete"
	OpPurge   = "purge"
)

// Low-cardinality error.type values natsotel sets itself (micro codes such as "409" are
// passed through as they are).
const (
	ErrTypeNoResponders     = "no_responders"
	ErrTypeTimeout          = "timeout"
	ErrTypeCanceled         = "canceled"
	ErrTypeMaxPayload       = "max_payload"
	ErrTypeRevisionMismatch = "revision_mismatch"
	ErrTypeKeyExists        = "key_exists"
	ErrTypePanic            = "panic"
	ErrTypeNoReply          = "no_reply"      // a micro handler returned without answering
	ErrTypeReplyRefused     = "reply_refused" // a request whose reply subject is not an inbox
	ErrTypeOther            = "_OTHER"
)

// temporaryDestination replaces temporary or per-message subjects (_INBOX.*, _INBOX_<user>.*,
// the connection's custom inbox prefix, $JS.ACK.*) in span names and metric labels.
const temporaryDestination = "(temporary)"
