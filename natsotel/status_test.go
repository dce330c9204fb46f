package natsotel_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/micro"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Status rules (otelhttp's and otelgrpc's): a SERVER span answering a caller's error (a 4xx
// micro code) keeps status Unset and error.type; the CLIENT span is Error. Server faults
// (5xx, no answer, a panic) are Error on the SERVER span too.
func TestStatusRules(t *testing.T) {
	s := startServer(t)
	tel := newTelemetry(t)
	srv, cli := tel.wrap(t, connect(t, s, "srv")), tel.wrap(t, connect(t, s, "cli"))
	svc, err := srv.AddService(micro.Config{Name: "status", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = svc.Stop() }()
	for _, code := range []string{"400", "402", "404", "409", "500", "503"} {
		if err := svc.AddEndpoint("e"+code, func(_ context.Context, req micro.Request) { _ = req.Error(code, "x", nil) }); err != nil {
			t.Fatal(err)
		}
	}
	if err := svc.AddEndpoint("silent", func(context.Context, micro.Request) {}); err != nil {
		t.Fatal(err)
	}
	if err := svc.AddEndpoint("boom", func(context.Context, micro.Request) { panic("boom") }); err != nil {
		t.Fatal(err)
	}
	flush(t, srv.Raw())
	for _, tc := range []struct {
		subject, errType string
		server           codes.Code
	}{
		{"e400", "400", codes.Unset},
		{"e402", "402", codes.Unset},
		{"e404", "404", codes.Unset},
		{"e409", "409", codes.Unset},
		{"e500", "500", codes.Error},
		{"e503", "503", codes.Error},
		{"silent", "no_reply", codes.Error},
		{"boom", "500", codes.Error},
	} {
		t.Run(tc.subject, func(t *testing.T) {
			tel.rec.Reset()
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			if _, err := cli.Request(ctx, tc.subject, nil); err == nil {
				t.Fatal("want an error")
			}
			spans := tel.waitSpans(t, 2)
			server := find(t, spans, "process "+tc.subject, trace.SpanKindServer)
			client := find(t, spans, "request "+tc.subject, trace.SpanKindClient)
			wantAttr(t, server, semconv.ErrorTypeKey, tc.errType)
			if server.Status().Code != tc.server {
				t.Errorf("server status %v, want %v", server.Status(), tc.server)
			}
			if client.Status().Code != codes.Error {
				t.Errorf("client status %v, want Error", client.Status())
			}
		})
	}
}
