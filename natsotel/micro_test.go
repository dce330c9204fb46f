package natsotel_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/natsotel/reference/natsotel"
)

func TestMicroPanicAnswered500AndServiceKeepsServing(t *testing.T) {
	s := startServer(t)
	tel := newTelemetry(t)
	c := tel.wrap(t, connect(t, s, "svc"))
	svc, err := c.AddService(micro.Config{Name: "order", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	if err := svc.AddEndpoint("create", func(ctx context.Context, req micro.Request) {
		if calls.Add(1) == 1 {
			panic("boom")
		}
		_ = req.Respond([]byte("fine"))
	}, micro.WithEndpointSubject("order.create")); err != nil {
		t.Fatal(err)
	}

	_, err = c.Request(ctxTimeout(t), "order.create", nil)
	var se *natsotel.ServiceError
	if !errors.As(err, &se) || se.Code != 500 {
		t.Fatalf("want 500 ServiceError, got %v", err)
	}
	reply, err := c.Request(ctxTimeout(t), "order.create", nil)
	if err != nil || string(reply.Data) != "fine" {
		t.Fatalf("second request: %v %v", reply, err)
	}
	spans := tel.waitSpans(t, 4)
	var panicked int
	for _, sp := range spans {
		if sp.SpanKind() != trace.SpanKindServer {
			continue
		}
		for _, ev := range sp.Events() {
			if ev.Name == semconv.ExceptionEventName {
				panicked++
				if sp.Status().Code != codes.Error {
					t.Errorf("panicking span status %v", sp.Status())
				}
				wantAttr(t, sp, semconv.ErrorTypeKey, "500")
				var msg string
				for _, kv := range ev.Attributes {
					if kv.Key == semconv.ExceptionMessageKey {
						msg = kv.Value.AsString()
					}
				}
				if !strings.Contains(msg, "boom") {
					t.Errorf("exception message %q", msg)
				}
			}
		}
	}
	if panicked != 1 {
		t.Errorf("want 1 exception event, got %d", panicked)
	}
	// Handlers run on goroutines of their own: micro counts the requests but not the errors;
	// the handler's figures are in the endpoint's stats data.
	st := waitStats(t, svc, 2)
	if hs := handlerStats(t, st); hs.NumRequests != 2 || hs.NumErrors != 1 || !strings.HasPrefix(hs.LastError, "500") {
		t.Errorf("handler stats %+v", hs)
	}
}

// handlerStats decodes the figures natsotel puts into an endpoint's $SRV.STATS data.
type handlerStatsJSON struct {
	Concurrency           int           `json:"concurrency"`
	InFlight              int           `json:"in_flight"`
	NumRequests           int64         `json:"num_requests"`
	NumErrors             int64         `json:"num_errors"`
	LastError             string        `json:"last_error"`
	ProcessingTime        time.Duration `json:"processing_time"`
	AverageProcessingTime time.Duration `json:"average_processing_time"`
}

func handlerStats(t *testing.T, st *micro.EndpointStats) handlerStatsJSON {
	t.Helper()
	var hs handlerStatsJSON
	if err := json.Unmarshal(st.Data, &hs); err != nil {
		t.Fatalf("stats data %q: %v", st.Data, err)
	}
	return hs
}

func TestMicroDiscoveryUntraced(t *testing.T) {
	s := startServer(t)
	tel := newTelemetry(t)
	c := tel.wrap(t, connect(t, s, "svc"))
	svc, err := c.AddService(micro.Config{Name: "inventory", Version: "1.2.3", Description: "stock"})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.AddEndpoint("reserve", func(ctx context.Context, req micro.Request) { _ = req.Respond(nil) },
		micro.WithEndpointSubject("inventory.reserve")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Request(ctxTimeout(t), "inventory.reserve", nil); err != nil {
		t.Fatal(err)
	}
	tel.waitSpans(t, 2)
	waitStats(t, svc, 1)

	plain := connect(t, s, "cli")
	for _, verb := range []string{"PING", "INFO", "STATS"} {
		msg, err := plain.RequestWithContext(ctxTimeout(t), "$SRV."+verb+".inventory", nil)
		if err != nil {
			t.Fatalf("$SRV.%s: %v", verb, err)
		}
		var body map[string]any
		if err := json.Unmarshal(msg.Data, &body); err != nil || body["name"] != "inventory" {
			t.Errorf("$SRV.%s reply %s (%v)", verb, msg.Data, err)
		}
		if verb == "STATS" {
			var st micro.Stats
			_ = json.Unmarshal(msg.Data, &st)
			if len(st.Endpoints) != 1 || st.Endpoints[0].NumRequests != 1 {
				t.Errorf("stats %+v", st.Endpoints)
			}
		}
		if verb == "INFO" {
			var info micro.Info
			_ = json.Unmarshal(msg.Data, &info)
			if len(info.Endpoints) != 1 || info.Endpoints[0].Subject != "inventory.reserve" {
				t.Errorf("info %+v", info.Endpoints)
			}
		}
	}
	// No new spans for discovery traffic.
	if n := len(tel.spans()); n != 2 {
		t.Errorf("discovery produced spans: %v", names(tel.spans()))
	}
}

func TestMicroWildcardEndpointUsesTemplate(t *testing.T) {
	s := startServer(t)
	tel := newTelemetry(t)
	c := tel.wrap(t, connect(t, s, "svc"))
	svc, err := c.AddService(micro.Config{Name: "order", Version: "1.0.0", QueueGroup: "orders"})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.AddGroup("order").AddEndpoint("get", func(ctx context.Context, req micro.Request) {
		_ = req.RespondJSON(map[string]string{"subject": req.Subject()})
	}, micro.WithEndpointSubject("get.*")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Request(ctxTimeout(t), "order.get.42", nil); err != nil {
		t.Fatal(err)
	}
	spans := tel.waitSpans(t, 2)
	server := find(t, spans, "process order.get.*", trace.SpanKindServer)
	// The span has the concrete subject, the template is messaging.destination.template.
	wantAttr(t, server, semconv.MessagingDestinationNameKey, "order.get.42")
	wantAttr(t, server, semconv.MessagingDestinationTemplateKey, "order.get.*")
	wantAttr(t, server, semconv.MessagingConsumerGroupNameKey, "orders")
}

func TestMicroDefaultEndpointAndQueueGroupDisabled(t *testing.T) {
	s := startServer(t)
	tel := newTelemetry(t)
	c := tel.wrap(t, connect(t, s, "svc"))
	_, err := c.AddService(micro.Config{Name: "echo", Version: "1.0.0", Endpoint: &micro.EndpointConfig{
		Subject:            "echo",
		Handler:            micro.HandlerFunc(func(req micro.Request) { _ = req.Respond(req.Data()) }),
		QueueGroupDisabled: true,
	}})
	if err != nil {
		t.Fatal(err)
	}
	reply, err := c.Request(ctxTimeout(t), "echo", []byte("hi"))
	if err != nil || string(reply.Data) != "hi" {
		t.Fatalf("%v %v", reply, err)
	}
	server := find(t, tel.waitSpans(t, 2), "process echo", trace.SpanKindServer)
	noAttr(t, server, semconv.MessagingConsumerGroupNameKey)
}

func TestMicroInboundTraceparentCase(t *testing.T) {
	for _, key := range []string{"traceparent", "Traceparent", "TRACEPARENT"} {
		t.Run(key, func(t *testing.T) {
			s := startServer(t)
			tel := newTelemetry(t)
			c := tel.wrap(t, connect(t, s, "svc"))
			svc, err := c.AddService(micro.Config{Name: "x", Version: "1.0.0"})
			if err != nil {
				t.Fatal(err)
			}
			if err := svc.AddEndpoint("x", func(ctx context.Context, req micro.Request) { _ = req.Respond(nil) }); err != nil {
				t.Fatal(err)
			}
			flush(t, c.NATS())
			plain := connect(t, s, "plain")
			const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
			msg := &nats.Msg{Subject: "x", Header: nats.Header{key: []string{tp}}}
			if _, err := plain.RequestMsgWithContext(ctxTimeout(t), msg); err != nil {
				t.Fatal(err)
			}
			server := find(t, tel.waitSpans(t, 1), "process x", trace.SpanKindServer)
			if got := server.Parent().TraceID().String(); got != "4bf92f3577b34da6a3ce929d0e0e4736" {
				t.Errorf("trace id %s", got)
			}
			if got := server.Parent().SpanID().String(); got != "00f067aa0ba902b7" || !server.Parent().IsRemote() {
				t.Errorf("parent span id %s remote=%v", got, server.Parent().IsRemote())
			}
		})
	}
}

func TestMicroMalformedTraceparentNewRoot(t *testing.T) {
	s := startServer(t)
	tel := newTelemetry(t)
	c := tel.wrap(t, connect(t, s, "svc"))
	svc, err := c.AddService(micro.Config{Name: "x", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.AddEndpoint("x", func(ctx context.Context, req micro.Request) { _ = req.Respond([]byte("ok")) }); err != nil {
		t.Fatal(err)
	}
	flush(t, c.NATS())
	plain := connect(t, s, "plain")
	bad := []string{"garbage", "00-zz-yy-01", "00-00000000000000000000000000000000-0000000000000000-01", strings.Repeat("f", 5000), ""}
	for _, v := range bad {
		msg := &nats.Msg{Subject: "x", Header: nats.Header{"traceparent": []string{v}, "tracestate": []string{"=,=,"}, "baggage": []string{"%%%;;"}}}
		reply, err := plain.RequestMsgWithContext(ctxTimeout(t), msg)
		if err != nil || string(reply.Data) != "ok" {
			t.Fatalf("traceparent %.20q: %v %v", v, reply, err)
		}
	}
	spans := tel.waitSpans(t, len(bad))
	for _, sp := range spans {
		if sp.Parent().IsValid() {
			t.Errorf("span %q has parent %v, want new root", sp.Name(), sp.Parent())
		}
		if !sp.SpanContext().IsValid() {
			t.Error("invalid span context")
		}
	}
}

// waitStats polls micro's stats of the first endpoint until it counted n requests: micro
// updates them after the handler returns, which is after the reply was sent.
func waitStats(t *testing.T, svc *natsotel.Service, n int) *micro.EndpointStats {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := svc.Stats().Endpoints[0]
		if st.NumRequests >= n {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("micro stats %+v", st)
		}
		time.Sleep(time.Millisecond)
	}
}
