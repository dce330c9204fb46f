package hops

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/nats-io/nats.go"
)

// The wire format of a trace event, as nats-server's server/msgtrace.go (MsgTraceEvent)
// and ADR-41 define it. Only the fields the spans use are decoded. The server's own types
// are not imported: that would link the whole server into the bridge.
type event struct {
	Server struct {
		Name    string `json:"name"`
		ID      string `json:"id"`
		Cluster string `json:"cluster"`
		Version string `json:"ver"`
	} `json:"server"`
	Request struct {
		Header  map[string][]string `json:"header"`
		MsgSize int64               `json:"msgsize"`
	} `json:"request"`
	Hops  int64  `json:"hops"`
	Steps []step `json:"events"`
}

// step is one entry of "events": the union of the six types (in, sm, se, si, js, eg), which
// share the json names they have in common ("acc", "to", "error").
type step struct {
	Type string    `json:"type"`
	TS   time.Time `json:"ts"`

	Kind    int    `json:"kind"` // in, eg: the connection kind (see kindNames)
	CID     uint64 `json:"cid"`  // in, eg
	Name    string `json:"name"` // in, eg: connection name
	Account string `json:"acc"`  // in, se, si, eg
	Subject string `json:"subj"` // in
	Error   string `json:"error"`

	To   string `json:"to"`   // sm (mapped to), se, si
	From string `json:"from"` // si

	Stream     string `json:"stream"`  // js
	StoredAs   string `json:"subject"` // js
	NoInterest bool   `json:"nointerest"`

	Hop          string `json:"hop"` // eg to a route, gateway or leafnode
	Subscription string `json:"sub"` // eg to a client
	Queue        string `json:"queue"`
}

// Step types (msgtrace.go MsgTrace*Type).
const (
	typeIngress        = "in"
	typeSubjectMapping = "sm"
	typeStreamExport   = "se"
	typeServiceImport  = "si"
	typeJetStream      = "js"
	typeEgress         = "eg"
)

// Connection kinds (nats-server CLIENT, ROUTER, ... ; ADR-41 lists them).
var kindNames = [...]string{"client", "route", "gateway", "system", "leafnode", "jetstream", "account"}

const (
	kindClient = 0
)

func kindName(k int) string {
	if k >= 0 && k < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// Limits on one event. The server publishes one event per server per traced message; a
// message delivered to thousands of subscribers lists thousands of egresses. Anyone who
// may publish traced messages may also publish to the trace subject (the server demands
// it), so events are untrusted input: they are bounded, never trusted to be well formed.
const (
	// MaxEventBytes bounds an event after decompression.
	MaxEventBytes = 1 << 20
	// MaxSteps bounds the child spans made from one event; the rest are counted on the
	// hop span (nats.trace.steps.dropped).
	MaxSteps = 128
	// maxString bounds every string copied onto a span.
	maxString = 256
)

var (
	// ErrMalformed is returned (wrapped) for an event that cannot be decoded or lacks
	// its ingress step.
	ErrMalformed = errors.New("malformed trace event")
	// ErrNoTraceContext is returned for a well-formed event whose message carried no
	// valid, sampled traceparent: there is no span to attach the hops to. (Events
	// triggered by a Nats-Trace-Dest header rather than by the account's msg_trace look
	// like this.)
	ErrNoTraceContext = errors.New("trace event without a sampled traceparent")
)

// decode reads a trace event from a message body, decompressing it as its
// Content-Encoding header says (the server compresses when the traced message asked for
// it with Accept-Encoding: gzip or snappy).
func decode(m *nats.Msg) (*event, error) {
	data := m.Data
	switch enc := strings.ToLower(m.Header.Get("Content-Encoding")); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("%w: gzip: %v", ErrMalformed, err)
		}
		if data, err = readLimited(zr); err != nil {
			return nil, fmt.Errorf("%w: gzip: %v", ErrMalformed, err)
		}
	case "snappy":
		var err error
		if data, err = readLimited(s2.NewReader(bytes.NewReader(data))); err != nil {
			return nil, fmt.Errorf("%w: snappy: %v", ErrMalformed, err)
		}
	default:
		return nil, fmt.Errorf("%w: unsupported Content-Encoding %q", ErrMalformed, truncate(enc))
	}
	if len(data) > MaxEventBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrMalformed, len(data), MaxEventBytes)
	}
	var ev event
	if err := json.Unmarshal(data, &ev); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(ev.Steps) == 0 || ev.Steps[0].Type != typeIngress || ev.Steps[0].TS.IsZero() {
		return nil, fmt.Errorf("%w: no ingress step first", ErrMalformed)
	}
	return &ev, nil
}

// readLimited reads r to its end, failing beyond MaxEventBytes (a small compressed event
// can expand to gigabytes).
func readLimited(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxEventBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxEventBytes {
		return nil, fmt.Errorf("more than %d bytes decompressed", MaxEventBytes)
	}
	return b, nil
}

// truncate bounds a string copied from an event (cutting at a rune boundary is not
// needed: attribute values may hold any bytes, and the exporters replace invalid UTF-8).
func truncate(s string) string {
	if len(s) > maxString {
		return s[:maxString]
	}
	return s
}
