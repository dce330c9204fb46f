package natsotel

import (
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// systemNATS is messaging.system=nats. "nats" is the value the OpenTelemetry Java agent and
// nats.net use, but it is not (yet) a registered value of messaging.system in the semantic
// conventions, so there is no semconv constant for it.
var systemNATS = semconv.MessagingSystemKey.String("nats")

// dbSystemNATS is db.system.name=nats on KeyValue spans (not a registered value either).
var dbSystemNATS = semconv.DBSystemNameKey.String("nats")

// NATS-specific attribute keys, used only where the semantic conventions have none.
const (
	// sequenceKey is the stream sequence of a published message (PubAck).
	sequenceKey = attribute.Key("messaging.nats.sequence")
	// duplicateKey is true when JetStream reported a publish as a duplicate (Nats-Msg-Id).
	duplicateKey = attribute.Key("messaging.nats.duplicate")
	// deliveredKey is the JetStream delivery count of a consumed message (1 = first delivery).
	deliveredKey = attribute.Key("messaging.nats.delivered")
	// redeliveredKey is true when a consumed message was delivered more than once.
	redeliveredKey = attribute.Key("messaging.nats.redelivered")
	// kvRevisionKey is the revision a KeyValue call read or wrote.
	kvRevisionKey = attribute.Key("nats.kv.revision")
	// kvFoundKey is false when a KeyValue Get found no value (not an error).
	kvFoundKey = attribute.Key("nats.kv.found")
)

// Operation names (messaging.operation.name / db.operation.name) natsotel uses.
const (
	opRequest = "request" // Conn.Request: CLIENT, type send
	opSend    = "send"    // Publish: PRODUCER, type send
	opProcess = "process" // handlers: SERVER (micro) or CONSUMER, type process
	opReceive = "receive" // JetStream Fetch: CLIENT, type receive
	opGet     = "get"     // KeyValue
	opPut     = "put"
	opCreate  = "create"
	opUpdate  = "update"
	opDelete  = "delete"
)

// Low-cardinality error.type values natsotel sets itself (micro codes such as "409" are
// passed through as they are). ErrorType documents them: callers compare its result with
// the strings.
const (
	errTypeNoResponders     = "no_responders"
	errTypeTimeout          = "timeout"
	errTypeCanceled         = "canceled"
	errTypeMaxPayload       = "max_payload"
	errTypeRevisionMismatch = "revision_mismatch"
	errTypeKeyExists        = "key_exists"
	errTypePanic            = "panic"
	errTypeNoReply          = "no_reply"      // a micro handler returned without answering
	errTypeReplyRefused     = "reply_refused" // a request whose reply subject is not an inbox
	errTypeOther            = "_OTHER"
)

// temporaryDestination replaces temporary or per-message subjects (_INBOX.*, _INBOX_<user>.*,
// the connection's custom inbox prefix, $JS.ACK.*) in span names and metric labels.
const temporaryDestination = "(temporary)"
