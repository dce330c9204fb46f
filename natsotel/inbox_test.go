package natsotel_test

import (
	"context"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// TestInboxDestinations publishes, on a connection with a custom inbox prefix, to its own
// inboxes, to per-user inboxes of other connections and to ordinary subjects, and checks
// which become "(temporary)".
func TestInboxDestinations(t *testing.T) {
	s := startServer(t)
	nc, err := nats.Connect(s.ClientURL(), nats.Name("c"), nats.CustomInboxPrefix("replies.svc"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	for _, tc := range []struct {
		subject   string
		temporary bool
	}{
		{nc.NewInbox(), true},             // own custom prefix
		{nc.NewRespInbox(), true},         // own request reply subject
		{"_INBOX.abc", true},              // nats.go's default
		{"_INBOX_loadgen.abc.def", true},  // a peer's per-user inbox (reply to its request)
		{"_INBOX_order.abc", true},        //
		{"replies.other.abc", false},      // someone else's custom prefix: unknowable
		{"_INBOX_loadgen", false},         // a prefix alone is no inbox
		{"_INBOXES.abc", false},           // not the convention
		{"orders.created", false},         // ordinary subject
		{"replies.svcx.abc", false},       // own prefix is a whole token
		{"$JS.ACK.S.C.1.2.3.4.0", true},   // per-message ack subject
		{"order._INBOX_loadgen.x", false}, // inbox text later in the subject
	} {
		t.Run(tc.subject, func(t *testing.T) {
			tel := newTelemetry(t)
			c := tel.wrap(t, nc)
			if err := c.Publish(ctxTimeout(t), tc.subject, nil); err != nil {
				t.Fatal(err)
			}
			want := "send " + tc.subject
			if tc.temporary {
				want = "send (temporary)"
			}
			sp := find(t, tel.spans(), want, trace.SpanKindProducer)
			if tc.temporary {
				wantAttr(t, sp, semconv.MessagingDestinationTemporaryKey, true)
				wantAttr(t, sp, semconv.MessagingDestinationNameKey, "(temporary)")
			} else {
				noAttr(t, sp, semconv.MessagingDestinationTemporaryKey)
				wantAttr(t, sp, semconv.MessagingDestinationNameKey, tc.subject)
			}
		})
	}
}

// TestReplyToPerUserInbox is the least-privilege deployment: the requester connects with a
// per-user inbox prefix (nats.CustomInboxPrefix("_INBOX_loadgen")), the responder answers
// with Publish to msg.Reply. The responder's spans and metrics name the reply
// "(temporary)", never the requester's inbox subject.
func TestReplyToPerUserInbox(t *testing.T) {
	s := startServer(t)
	tel := newTelemetry(t)
	responder := tel.wrap(t, connect(t, s, "responder"))
	if _, err := responder.Subscribe("svc.echo", func(ctx context.Context, m *nats.Msg) {
		if err := responder.Publish(ctx, m.Reply, m.Data); err != nil {
			t.Errorf("reply: %v", err)
		}
	}); err != nil {
		t.Fatal(err)
	}
	flush(t, responder.Raw())

	requester, err := nats.Connect(s.ClientURL(), nats.Name("requester"), nats.CustomInboxPrefix("_INBOX_loadgen"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(requester.Close)
	reply, err := requester.RequestWithContext(ctxTimeout(t), "svc.echo", []byte("hi"))
	if err != nil {
		t.Fatal(err)
	}
	if string(reply.Data) != "hi" {
		t.Fatalf("reply %q", reply.Data)
	}

	spans := tel.waitSpans(t, 2)
	send := find(t, spans, "send (temporary)", trace.SpanKindProducer)
	wantAttr(t, send, semconv.MessagingDestinationTemporaryKey, true)
	wantChild(t, find(t, spans, "process svc.echo", trace.SpanKindConsumer), send)
	for _, sp := range spans {
		for _, kv := range sp.Attributes() {
			if strings.Contains(kv.Value.String(), "_INBOX") {
				t.Errorf("span %q: inbox leaked into %s=%s", sp.Name(), kv.Key, kv.Value.String())
			}
		}
	}
	rm := tel.collect(t)
	labels := 0
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			forEachAttrs(m.Data, func(set attribute.Set) {
				labels++
				for _, kv := range set.ToSlice() {
					if strings.Contains(kv.Value.String(), "_INBOX") {
						t.Errorf("%s: inbox leaked into %s=%s", m.Name, kv.Key, kv.Value.String())
					}
				}
			})
		}
	}
	if labels == 0 {
		t.Fatal("no metric data points recorded")
	}
}
