package natsotel_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// TestChainAcrossEveryHop follows one trace through every kind of hop, each service on its
// own connection and pipeline: loadgen -request-> order -request-> inventory -KV-> stock,
// order -JetStream-> billing consumer, order -publish-> audit subscriber.
func TestChainAcrossEveryHop(t *testing.T) {
	s := startServer(t)
	telL, telO, telI, telB := newTelemetry(t), newTelemetry(t), newTelemetry(t), newTelemetry(t)
	loadgen := telL.wrap(t, connect(t, s, "loadgen"))
	order := telO.wrap(t, connect(t, s, "order"))
	inventory := telI.wrap(t, connect(t, s, "inventory"))
	billing := telB.wrap(t, connect(t, s, "billing"))
	ctx := ctxTimeout(t)

	// inventory: micro endpoint reading KV.
	ijs, _ := inventory.JetStream()
	stock, err := ijs.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "stock"})
	if err != nil {
		t.Fatal(err)
	}
	rawStock, err := ijs.Raw().KeyValue(ctx, "stock") // untraced: the test's own setup
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rawStock.Put(ctx, "sku-1", []byte("5")); err != nil {
		t.Fatal(err)
	}
	isvc, err := inventory.AddService(micro.Config{Name: "inventory", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := isvc.AddGroup("inventory").AddEndpoint("reserve", func(ctx context.Context, req micro.Request) {
		if _, err := stock.Get(ctx, "sku-1"); err != nil {
			_ = req.Error("500", err.Error(), nil)
			return
		}
		_ = req.Respond([]byte("ok"))
	}); err != nil {
		t.Fatal(err)
	}
	flush(t, inventory.Raw())

	// billing: JetStream consumer; audit: plain subscriber (on billing's connection).
	bjs, _ := billing.JetStream()
	st, err := bjs.Raw().CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "ORDER_EVENTS", Subjects: []string{"events.order.>"}})
	if err != nil {
		t.Fatal(err)
	}
	cons, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "billing", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	billed, audited := make(chan struct{}), make(chan struct{})
	cc, err := bjs.Consume(cons, func(ctx context.Context, m jetstream.Msg) { _ = m.Ack(); close(billed) })
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Stop()
	if _, err := billing.Subscribe("audit.order", func(ctx context.Context, m *nats.Msg) { close(audited) }); err != nil {
		t.Fatal(err)
	}
	flush(t, billing.Raw())

	// order: micro endpoint calling inventory, then publishing.
	ojs, _ := order.JetStream()
	osvc, err := order.AddService(micro.Config{Name: "order", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := osvc.AddEndpoint("create", func(ctx context.Context, req micro.Request) {
		if _, err := order.Request(ctx, "inventory.reserve", req.Data()); err != nil {
			_ = req.Error("502", "inventory: "+err.Error(), nil)
			return
		}
		if _, err := ojs.Publish(ctx, "events.order.created", req.Data()); err != nil {
			_ = req.Error("500", err.Error(), nil)
			return
		}
		_ = order.Publish(ctx, "audit.order", nil)
		_ = req.Respond([]byte("created"))
	}, micro.WithEndpointSubject("order.create")); err != nil {
		t.Fatal(err)
	}
	flush(t, order.Raw())

	ctx, root := telL.tp.Tracer("loadgen").Start(ctx, "scenario")
	reply, err := loadgen.Request(ctx, "order.create", []byte(`{"sku":"sku-1"}`))
	root.End()
	if err != nil || string(reply.Data) != "created" {
		t.Fatalf("%v %v", reply, err)
	}
	for _, ch := range []chan struct{}{billed, audited} {
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Fatal("event not delivered")
		}
	}

	L := telL.waitSpans(t, 2)
	O := telO.waitSpans(t, 4)
	I := telI.waitSpans(t, 2)
	B := telB.waitSpans(t, 3) // process ORDER_EVENTS, its ack, process audit.order
	scenario := find(t, L, "scenario", trace.SpanKindInternal)
	lreq := find(t, L, "request order.create", trace.SpanKindClient)
	oproc := find(t, O, "process order.create", trace.SpanKindServer)
	oreq := find(t, O, "request inventory.reserve", trace.SpanKindClient)
	iproc := find(t, I, "process inventory.reserve", trace.SpanKindServer)
	kvget := find(t, I, "get stock", trace.SpanKindClient)
	jspub := find(t, O, "send events.order.created", trace.SpanKindProducer)
	jsproc := find(t, B, "process ORDER_EVENTS", trace.SpanKindConsumer)
	pub := find(t, O, "send audit.order", trace.SpanKindProducer)
	sub := find(t, B, "process audit.order", trace.SpanKindConsumer)

	wantChild(t, scenario, lreq)
	wantChild(t, lreq, oproc)
	wantChild(t, oproc, oreq)
	wantChild(t, oreq, iproc)
	wantChild(t, iproc, kvget)
	wantChild(t, oproc, jspub)
	wantChild(t, jspub, jsproc)
	wantChild(t, oproc, pub)
	wantChild(t, pub, sub)
	for _, sp := range append(append(append(L, O...), I...), B...) {
		if sp.SpanContext().TraceID() != scenario.SpanContext().TraceID() {
			t.Errorf("%q in another trace", sp.Name())
		}
		if sp.Status().Code == codes.Error {
			t.Errorf("%q failed: %v", sp.Name(), sp.Status())
		}
	}
}
