package natsotel_test

import (
	"context"
	"errors"
	"net"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/natsotel/reference/natsotel"
)

func TestRequestToMicroEndpointParentChild(t *testing.T) {
	s := startServer(t)
	tel := newTelemetry(t)
	srvConn := tel.wrap(t, connect(t, s, "server"))
	cliConn := tel.wrap(t, connect(t, s, "client"))

	svc, err := srvConn.AddService(micro.Config{Name: "inventory", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	g := svc.AddGroup("inventory")
	if err := g.AddEndpoint("reserve", func(ctx context.Context, req micro.Request) {
		if !trace.SpanContextFromContext(ctx).IsValid() {
			t.Error("handler ctx has no span")
		}
		_ = req.Respond([]byte("ok"))
	}); err != nil {
		t.Fatal(err)
	}
	flush(t, srvConn.Raw())

	ctx, root := tel.tp.Tracer("test").Start(ctxTimeout(t), "root")
	reply, err := cliConn.Request(ctx, "inventory.reserve", []byte("x"))
	root.End()
	if err != nil {
		t.Fatal(err)
	}
	if string(reply.Data) != "ok" {
		t.Fatalf("reply %q", reply.Data)
	}
	spans := tel.waitSpans(t, 3)
	client := find(t, spans, "request inventory.reserve", trace.SpanKindClient)
	server := find(t, spans, "process inventory.reserve", trace.SpanKindServer)
	rootSpan := find(t, spans, "root", trace.SpanKindInternal)
	wantChild(t, rootSpan, client)
	wantChild(t, client, server)

	wantAttr(t, client, semconv.MessagingSystemKey, "nats")
	wantAttr(t, client, semconv.MessagingOperationNameKey, "request")
	wantAttr(t, client, semconv.MessagingOperationTypeKey, "send")
	wantAttr(t, client, semconv.MessagingDestinationNameKey, "inventory.reserve")
	noAttr(t, client, semconv.MessagingMessageBodySizeKey) // Opt-In in semconv 1.44
	wantAttr(t, client, semconv.MessagingClientIDKey, "client")
	wantAttr(t, client, semconv.ServerAddressKey, "127.0.0.1")
	wantAttr(t, client, semconv.ServerPortKey, int64(s.Addr().(*net.TCPAddr).Port))
	wantAttr(t, server, semconv.ServerAddressKey, "127.0.0.1")
	wantAttr(t, server, semconv.ServerPortKey, int64(s.Addr().(*net.TCPAddr).Port))
	wantAttr(t, server, semconv.MessagingOperationNameKey, "process")
	wantAttr(t, server, semconv.MessagingOperationTypeKey, "process")
	wantAttr(t, server, semconv.MessagingDestinationNameKey, "inventory.reserve")
	wantAttr(t, server, semconv.MessagingConsumerGroupNameKey, "q")
	wantAttr(t, server, semconv.MessagingClientIDKey, "server")
	if client.Status().Code != codes.Unset || server.Status().Code != codes.Unset {
		t.Errorf("status client %v server %v", client.Status(), server.Status())
	}
}

func TestRequestMicroErrorCode(t *testing.T) {
	s := startServer(t)
	tel := newTelemetry(t)
	c := tel.wrap(t, connect(t, s, "both"))
	svc, err := c.AddService(micro.Config{Name: "billing", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.AddEndpoint("charge", func(ctx context.Context, req micro.Request) {
		_ = req.Error("409", "insufficient funds", []byte(`{"x":1}`))
	}, micro.WithEndpointSubject("billing.charge")); err != nil {
		t.Fatal(err)
	}
	reply, err := c.Request(ctxTimeout(t), "billing.charge", nil)
	var se *natsotel.ServiceError
	if !errors.As(err, &se) {
		t.Fatalf("want *ServiceError, got %v", err)
	}
	if se.Code != "409" || se.Description != "insufficient funds" || string(se.Data) != `{"x":1}` || se.Subject != "billing.charge" {
		t.Errorf("ServiceError %+v", se)
	}
	if reply == nil {
		t.Error("reply should be returned with the ServiceError")
	}
	spans := tel.waitSpans(t, 2)
	client := find(t, spans, "request billing.charge", trace.SpanKindClient)
	server := find(t, spans, "process billing.charge", trace.SpanKindServer)
	// A 4xx answer is the caller's error: Error on the CLIENT span only.
	if client.Status().Code != codes.Error || server.Status().Code != codes.Unset {
		t.Errorf("status client %v server %v, want Error and Unset", client.Status(), server.Status())
	}
	wantAttr(t, client, semconv.ErrorTypeKey, "409")
	wantAttr(t, server, semconv.ErrorTypeKey, "409")
}

func TestRequestNoResponders(t *testing.T) {
	s := startServer(t)
	tel := newTelemetry(t)
	c := tel.wrap(t, connect(t, s, "c"))
	_, err := c.Request(ctxTimeout(t), "nobody.home", nil)
	if !errors.Is(err, nats.ErrNoResponders) {
		t.Fatalf("want ErrNoResponders, got %v", err)
	}
	sp := find(t, tel.spans(), "request nobody.home", trace.SpanKindClient)
	wantAttr(t, sp, semconv.ErrorTypeKey, "no_responders")
	if sp.Status().Code != codes.Error {
		t.Errorf("status %v", sp.Status())
	}
}
