package load

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/natsotel/reference/natsotel"
	"github.com/natsotel/reference/services/contracts"
)

// startServer runs an in-process nats-server on a random loopback port.
func startServer(t testing.TB) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatalf("nats-server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

func connect(t testing.TB, s *server.Server) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// tracedConn wraps nc with a recording TracerProvider and TraceContext+Baggage.
func tracedConn(t *testing.T, nc *nats.Conn) (*natsotel.Conn, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	conn, err := natsotel.Wrap(nc,
		natsotel.WithTracerProvider(tp),
		natsotel.WithPropagators(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})))
	if err != nil {
		t.Fatalf("wrap: %v", err)
	}
	return conn, rec
}

// fakeShop is a real micro service on order.create and order.get that answers like the
// order service's contract says, without inventory or billing behind it. Hooks let a test
// hold requests.
type fakeShop struct {
	mu       sync.Mutex
	orders   map[string]contracts.Order
	seq      atomic.Int64
	arrived  chan struct{} // if set, one send per request, before answering
	release  chan struct{} // if set, requests wait for it to close before answering
	baggages []string      // baggage header of every request
}

func startFakeShop(t *testing.T, nc *nats.Conn, shop *fakeShop) *fakeShop {
	t.Helper()
	shop.orders = map[string]contracts.Order{}
	svc, err := micro.AddService(nc, micro.Config{Name: "order", Version: "0.0.1"})
	if err != nil {
		t.Fatalf("add service: %v", err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	if err := svc.AddEndpoint("create", micro.HandlerFunc(shop.create), micro.WithEndpointSubject(contracts.SubjectOrderCreate)); err != nil {
		t.Fatal(err)
	}
	if err := svc.AddEndpoint("get", micro.HandlerFunc(shop.get), micro.WithEndpointSubject(contracts.SubjectOrderGet)); err != nil {
		t.Fatal(err)
	}
	return shop
}

func (f *fakeShop) hold(req micro.Request) {
	f.mu.Lock()
	f.baggages = append(f.baggages, req.Headers().Get("baggage"))
	f.mu.Unlock()
	if f.arrived != nil {
		f.arrived <- struct{}{}
	}
	if f.release != nil {
		<-f.release
	}
}

func (f *fakeShop) create(req micro.Request) {
	f.hold(req)
	var in contracts.CreateOrderRequest
	dec := json.NewDecoder(strings.NewReader(string(req.Data())))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		_ = req.Error(contracts.CodeBadRequest, "invalid JSON", nil)
		return
	}
	if len(in.Lines) == 0 {
		_ = req.Error(contracts.CodeBadRequest, "no lines", nil)
		return
	}
	order := contracts.Order{ID: fmt.Sprintf("ord-%d", f.seq.Add(1)), CustomerID: in.CustomerID, Lines: in.Lines, Status: contracts.OrderConfirmed}
	for _, l := range in.Lines {
		p, ok := contracts.FindProduct(l.SKU)
		if !ok || l.Qty <= 0 {
			_ = req.Error(contracts.CodeBadRequest, "bad line", nil)
			return
		}
		if p.Seed == 0 {
			order.Status, order.Reason = contracts.OrderFailed, "409 out of stock"
		}
	}
	if order.Status == contracts.OrderConfirmed && in.Card == contracts.CardDeclined {
		order.Status, order.Reason = contracts.OrderFailed, "402 declined"
	}
	f.mu.Lock()
	f.orders[order.ID] = order
	f.mu.Unlock()
	body, _ := json.Marshal(order)
	switch order.Reason {
	case "":
		_ = req.Respond(body)
	case "409 out of stock":
		_ = req.Error(contracts.CodeConflict, "out of stock", body)
	default:
		_ = req.Error(contracts.CodePaymentDeclined, "declined", body)
	}
}

func (f *fakeShop) get(req micro.Request) {
	f.hold(req)
	var in contracts.GetOrderRequest
	if err := json.Unmarshal(req.Data(), &in); err != nil {
		_ = req.Error(contracts.CodeBadRequest, "invalid JSON", nil)
		return
	}
	f.mu.Lock()
	o, ok := f.orders[in.ID]
	f.mu.Unlock()
	if !ok {
		_ = req.Error(contracts.CodeNotFound, "no such order", nil)
		return
	}
	_ = req.RespondJSON(o)
}
