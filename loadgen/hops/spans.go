package hops

import (
	"context"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Attribute keys of the hop spans (nats-server's own words; no semantic convention covers
// a broker's internals).
const (
	ServerNameKey     = attribute.Key("nats.server.name")
	ServerIDKey       = attribute.Key("nats.server.id")
	ServerVersionKey  = attribute.Key("nats.server.version")
	ServerClusterKey  = attribute.Key("nats.server.cluster")
	AccountKey        = attribute.Key("nats.account")
	ConnKindKey       = attribute.Key("nats.connection.kind") // client, route, gateway, leafnode, ...
	ConnIDKey         = attribute.Key("nats.connection.id")
	ConnNameKey       = attribute.Key("nats.connection.name")
	TraceHopKey       = attribute.Key("nats.trace.hop")  // Nats-Trace-Hop: which forwarded copy this server got
	TraceHopsKey      = attribute.Key("nats.trace.hops") // servers this one forwarded the message to
	EgressCountKey    = attribute.Key("nats.trace.egress.count")
	StepsDroppedKey   = attribute.Key("nats.trace.steps.dropped")
	SubscriptionKey   = attribute.Key("nats.subscription")
	StreamKey         = attribute.Key("nats.stream")
	NoInterestKey     = attribute.Key("nats.jetstream.no_interest")
	MappedToKey       = attribute.Key("nats.subject.mapped_to")
	ImportFromKey     = attribute.Key("nats.import.from")
	ExportToKey       = attribute.Key("nats.export.to")
	temporarySubject  = "(temporary)"
	traceHopHeader    = "Nats-Trace-Hop"
	defaultServerName = "nats-server"
)

var messagingNATS = semconv.MessagingSystemKey.String("nats")

// spans records one hop span for the server that sent ev, a child of the publisher's span
// (parent), and one child span per later step, each from the ingress to that step.
func (b *Bridge) spans(parent context.Context, ev *event) {
	in := ev.Steps[0]
	start := in.TS
	steps := ev.Steps[1:]
	dropped := 0
	if len(steps) > MaxSteps {
		steps, dropped = steps[:MaxSteps], len(steps)-MaxSteps
	}
	end := start
	egresses := 0
	for _, s := range ev.Steps[1:] {
		if s.TS.After(end) {
			end = s.TS
		}
		if s.Type == typeEgress {
			egresses++
		}
	}

	server := truncate(ev.Server.Name)
	if server == "" {
		server = defaultServerName
	}
	attrs := []attribute.KeyValue{
		messagingNATS,
		ServerNameKey.String(server),
		ServerIDKey.String(truncate(ev.Server.ID)),
		ServerVersionKey.String(truncate(ev.Server.Version)),
		AccountKey.String(truncate(in.Account)),
		ConnKindKey.String(kindName(in.Kind)),
		ConnIDKey.Int64(int64(in.CID)),
		ConnNameKey.String(truncate(in.Name)),
		semconv.MessagingMessageEnvelopeSize(int(ev.Request.MsgSize)),
		EgressCountKey.Int(egresses),
	}
	attrs = append(attrs, destination(in.Subject)...)
	if ev.Server.Cluster != "" {
		attrs = append(attrs, ServerClusterKey.String(truncate(ev.Server.Cluster)))
	}
	if hop := headerValue(ev.Request.Header, traceHopHeader); hop != "" {
		attrs = append(attrs, TraceHopKey.String(truncate(hop)))
	}
	if ev.Hops > 0 {
		attrs = append(attrs, TraceHopsKey.Int64(ev.Hops))
	}
	if dropped > 0 {
		attrs = append(attrs, StepsDroppedKey.Int(dropped))
	}
	ctx, hop := b.tracer.Start(parent, "hop "+server,
		trace.WithSpanKind(trace.SpanKindInternal), trace.WithTimestamp(start), trace.WithAttributes(attrs...))
	if in.Error != "" {
		hop.SetStatus(codes.Error, truncate(in.Error))
	}
	for _, s := range steps {
		name, attrs, ok := describe(s)
		if !ok {
			continue
		}
		_, span := b.tracer.Start(ctx, name,
			trace.WithSpanKind(trace.SpanKindInternal), trace.WithTimestamp(start), trace.WithAttributes(attrs...))
		if s.Error != "" {
			span.SetStatus(codes.Error, truncate(s.Error))
		}
		span.End(trace.WithTimestamp(later(start, s.TS)))
	}
	hop.End(trace.WithTimestamp(end))
}

// describe names a step's span and gives its attributes; ok is false for a step type this
// bridge does not know (a newer server's), which is skipped.
func describe(s step) (name string, attrs []attribute.KeyValue, ok bool) {
	attrs = []attribute.KeyValue{messagingNATS}
	switch s.Type {
	case typeJetStream:
		stream := truncate(s.Stream)
		attrs = append(attrs, StreamKey.String(stream), NoInterestKey.Bool(s.NoInterest))
		attrs = append(attrs, destination(s.StoredAs)...)
		return "store " + stream, attrs, true
	case typeEgress:
		attrs = append(attrs,
			ConnKindKey.String(kindName(s.Kind)),
			ConnIDKey.Int64(int64(s.CID)),
			ConnNameKey.String(truncate(s.Name)))
		if s.Account != "" {
			attrs = append(attrs, AccountKey.String(truncate(s.Account)))
		}
		if s.Kind != kindClient {
			// To another server: a route, gateway or leafnode (no subscription; the
			// remote server reports its own hop with this hop id).
			if s.Hop != "" {
				attrs = append(attrs, TraceHopKey.String(truncate(s.Hop)))
			}
			return "forward " + kindName(s.Kind), attrs, true
		}
		sub, temporary := template(s.Subscription)
		attrs = append(attrs, SubscriptionKey.String(sub))
		if temporary {
			attrs = append(attrs, semconv.MessagingDestinationTemporary(true))
		}
		if s.Queue != "" {
			attrs = append(attrs, semconv.MessagingConsumerGroupName(truncate(s.Queue)))
		}
		return "deliver " + sub, attrs, true
	case typeSubjectMapping:
		attrs = append(attrs, MappedToKey.String(truncate(s.To)))
		return "map subject", attrs, true
	case typeServiceImport:
		attrs = append(attrs, AccountKey.String(truncate(s.Account)),
			ImportFromKey.String(truncate(s.From)), MappedToKey.String(truncate(s.To)))
		return "service import", attrs, true
	case typeStreamExport:
		attrs = append(attrs, AccountKey.String(truncate(s.Account)), ExportToKey.String(truncate(s.To)))
		return "stream export", attrs, true
	}
	return "", nil, false
}

// destination gives messaging.destination.name for a concrete subject, or only
// messaging.destination.temporary for an inbox or ack subject (as natsotel does: those are
// per request, and would make every trace's attributes unique).
func destination(subject string) []attribute.KeyValue {
	if subject == "" {
		return nil
	}
	name, temporary := template(subject)
	if temporary {
		return []attribute.KeyValue{semconv.MessagingDestinationTemporary(true)}
	}
	return []attribute.KeyValue{semconv.MessagingDestinationName(name)}
}

// template returns the subject as used in a span name: inbox and JetStream ack subjects
// become "(temporary)".
func template(subject string) (string, bool) {
	if strings.HasPrefix(subject, "_INBOX") || strings.HasPrefix(subject, "$JS.ACK.") {
		return temporarySubject, true
	}
	return truncate(subject), false
}

// later returns t, or start when t is earlier (a server clock stepping back, or a forged
// event): a span never ends before it starts.
func later(start, t time.Time) time.Time {
	if t.Before(start) {
		return start
	}
	return t
}

// headerValue returns the first value of key in h, in any case (the server keeps the
// case the publisher used).
func headerValue(h map[string][]string, key string) string {
	for k, v := range h {
		if strings.EqualFold(k, key) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}
