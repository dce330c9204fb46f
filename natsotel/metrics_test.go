package natsotel_test

import (
	"context"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// advisedBuckets are the semantic conventions' advice (5 ms to 10 s) with five NATS-sized
// buckets below it.
var advisedBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025,
	0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// histPoint returns the data point of a float64 histogram whose attributes contain want.
func histPoint(t *testing.T, rm metricdata.ResourceMetrics, name string, want ...attribute.KeyValue) metricdata.HistogramDataPoint[float64] {
	t.Helper()
	m, ok := findMetric(rm, name)
	if !ok {
		t.Fatalf("no metric %s", name)
	}
	h, ok := m.Data.(metricdata.Histogram[float64])
	if !ok {
		t.Fatalf("%s is %T", name, m.Data)
	}
	for _, dp := range h.DataPoints {
		if hasAll(dp.Attributes, want) {
			return dp
		}
	}
	t.Fatalf("%s: no point with %v in %v", name, want, h.DataPoints)
	return metricdata.HistogramDataPoint[float64]{}
}

func sumPoint(t *testing.T, rm metricdata.ResourceMetrics, name string, want ...attribute.KeyValue) int64 {
	t.Helper()
	m, ok := findMetric(rm, name)
	if !ok {
		t.Fatalf("no metric %s", name)
	}
	s := m.Data.(metricdata.Sum[int64])
	var total int64
	for _, dp := range s.DataPoints {
		if hasAll(dp.Attributes, want) || hasAll(dp.Attributes, append(want, semconv.ErrorTypeKey.String(errorTypeOf(dp.Attributes)))) {
			total += dp.Value
		}
	}
	return total
}

// hasAll reports whether set has every attribute of want; error.type must be absent from
// set unless want names it.
func hasAll(set attribute.Set, want []attribute.KeyValue) bool {
	if _, failed := set.Value(semconv.ErrorTypeKey); failed && !slices.ContainsFunc(want, func(kv attribute.KeyValue) bool { return kv.Key == semconv.ErrorTypeKey }) {
		return false
	}
	for _, kv := range want {
		v, ok := set.Value(kv.Key)
		if !ok || v != kv.Value {
			return false
		}
	}
	return true
}

func TestMetrics(t *testing.T) {
	s := startServer(t)
	// Spans are never sampled: metrics must be recorded anyway.
	tel := newTelemetry(t, sdktrace.WithSampler(sdktrace.NeverSample()))
	c := tel.wrap(t, connect(t, s, "c"))
	svc, err := c.AddService(micro.Config{Name: "inventory", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.AddEndpoint("reserve", func(ctx context.Context, req micro.Request) {
		if string(req.Data()) == "bad" {
			_ = req.Error("400", "bad request", nil)
			return
		}
		_ = req.Respond(nil)
	}, micro.WithEndpointSubject("inventory.reserve")); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"ok", "ok", "bad"} {
		_, _ = c.Request(ctxTimeout(t), "inventory.reserve", []byte(d))
	}
	_, _ = c.Request(ctxTimeout(t), "nobody", nil)

	got := make(chan struct{}, 3)
	if _, err := c.QueueSubscribe("events.>", "workers", func(ctx context.Context, m *nats.Msg) { got <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	_ = c.Raw().Flush()
	for i := 0; i < 3; i++ {
		if err := c.Publish(ctxTimeout(t), "events.x", nil); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		<-got
	}
	js, _ := c.JetStream()
	kv, err := js.CreateOrUpdateKeyValue(ctxTimeout(t), jetstream.KeyValueConfig{Bucket: "stock"})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = kv.Put(ctxTimeout(t), "k", []byte("v"))
	_, _ = kv.Get(ctxTimeout(t), "k")
	waitStats(t, svc, 3)

	if n := len(tel.spans()); n != 0 {
		t.Fatalf("NeverSample exported %d spans", n)
	}
	rm := tel.collect(t)
	sys := attribute.String("messaging.system", "nats")

	req := histPoint(t, rm, "messaging.client.operation.duration", sys,
		semconv.MessagingOperationName("request"), semconv.MessagingOperationTypeSend,
		semconv.MessagingDestinationName("inventory.reserve"), semconv.ServerAddress("127.0.0.1"),
		semconv.ServerPort(s.Addr().(*net.TCPAddr).Port))
	if _, bad := req.Attributes.Value(semconv.ErrorTypeKey); bad || req.Count != 2 {
		t.Errorf("successful requests: count %d attrs %v", req.Count, req.Attributes)
	}
	if !slices.Equal(req.Bounds, advisedBuckets) {
		t.Errorf("bounds %v", req.Bounds)
	}
	if req.Sum <= 0 || req.Sum > 5 {
		t.Errorf("sum %v s", req.Sum)
	}
	failed := histPoint(t, rm, "messaging.client.operation.duration", semconv.MessagingDestinationName("inventory.reserve"), semconv.ErrorTypeKey.String("400"))
	if failed.Count != 1 {
		t.Errorf("failed requests %d", failed.Count)
	}
	if p := histPoint(t, rm, "messaging.client.operation.duration", semconv.ErrorTypeKey.String("no_responders")); p.Count != 1 {
		t.Errorf("no responders %d", p.Count)
	}
	proc := histPoint(t, rm, "messaging.process.duration", semconv.MessagingOperationName("process"),
		semconv.MessagingDestinationName("inventory.reserve"), semconv.MessagingConsumerGroupName("q"))
	if proc.Count != 2 {
		t.Errorf("process ok count %d", proc.Count)
	}
	if !slices.Equal(proc.Bounds, advisedBuckets) {
		t.Errorf("process bounds %v", proc.Bounds)
	}
	if p := histPoint(t, rm, "messaging.process.duration", semconv.MessagingDestinationName("inventory.reserve"), semconv.ErrorTypeKey.String("400")); p.Count != 1 {
		t.Errorf("process error count %d", p.Count)
	}
	if p := histPoint(t, rm, "messaging.process.duration", semconv.MessagingDestinationName("events.>"), semconv.MessagingConsumerGroupName("workers")); p.Count != 3 {
		t.Errorf("subscriber process count %d", p.Count)
	}
	if n := sumPoint(t, rm, "messaging.client.sent.messages", semconv.MessagingOperationName("send"), semconv.MessagingDestinationName("events.x")); n != 3 {
		t.Errorf("sent %d", n)
	}
	if n := sumPoint(t, rm, "messaging.client.sent.messages", semconv.MessagingOperationName("request")); n != 4 {
		t.Errorf("requests sent %d", n)
	}
	if n := sumPoint(t, rm, "messaging.client.consumed.messages", semconv.MessagingDestinationName("events.>")); n != 3 {
		t.Errorf("consumed %d", n)
	}
	if n := sumPoint(t, rm, "messaging.client.consumed.messages", semconv.MessagingDestinationName("inventory.reserve")); n != 3 {
		t.Errorf("endpoint consumed %d", n)
	}
	db := histPoint(t, rm, "db.client.operation.duration", semconv.DBSystemNameKey.String("nats"), semconv.DBOperationName("get"), semconv.DBCollectionName("stock"))
	if db.Count != 1 {
		t.Errorf("kv get count %d", db.Count)
	}
	if _, ok := db.Attributes.Value(semconv.ServerAddressKey); ok {
		t.Error("kv metric has server.address")
	}

	// Units as the semantic conventions define them.
	units := map[string]string{
		"messaging.client.operation.duration": "s",
		"messaging.process.duration":          "s",
		"messaging.client.sent.messages":      "{message}",
		"messaging.client.consumed.messages":  "{message}",
		"db.client.operation.duration":        "s",
	}
	for name, unit := range units {
		m, ok := findMetric(rm, name)
		if !ok {
			t.Errorf("no metric %s", name)
			continue
		}
		if m.Unit != unit {
			t.Errorf("%s: unit %q, want %q", name, m.Unit, unit)
		}
	}

	// Low cardinality: no inbox or ack subjects in any label.
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != "github.com/natsotel/reference/natsotel" {
			t.Errorf("scope %q", sm.Scope.Name)
		}
		for _, m := range sm.Metrics {
			forEachAttrs(m.Data, func(set attribute.Set) {
				for _, kv := range set.ToSlice() {
					if v := kv.Value.String(); strings.Contains(v, "_INBOX") || strings.Contains(v, "$JS.ACK") {
						t.Errorf("%s has %s=%s", m.Name, kv.Key, v)
					}
				}
			})
		}
	}
}

func forEachAttrs(data metricdata.Aggregation, fn func(attribute.Set)) {
	switch d := data.(type) {
	case metricdata.Histogram[float64]:
		for _, dp := range d.DataPoints {
			fn(dp.Attributes)
		}
	case metricdata.Sum[int64]:
		for _, dp := range d.DataPoints {
			fn(dp.Attributes)
		}
	}
}

func TestMetricsJetStream(t *testing.T) {
	s := startServer(t)
	tel := newTelemetry(t)
	js := tel.jetStream(t, s, "c")
	cons := setupStream(t, js, 30*time.Second)
	for i := 0; i < 2; i++ {
		if _, err := js.Publish(ctxTimeout(t), "events.order.created", nil); err != nil {
			t.Fatal(err)
		}
	}
	msgs, err := js.Fetch(ctxTimeout(t), cons, 2)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("fetch %d %v", len(msgs), err)
	}
	for _, m := range msgs {
		js.Process(ctxTimeout(t), m, func(ctx context.Context, m jetstream.Msg) { _ = m.Ack() })
	}
	rm := tel.collect(t)
	if p := histPoint(t, rm, "messaging.client.operation.duration", semconv.MessagingOperationName("receive"), semconv.MessagingDestinationName("ORDER_EVENTS"), semconv.MessagingConsumerGroupName("billing")); p.Count != 1 {
		t.Errorf("receive count %d", p.Count)
	}
	if n := sumPoint(t, rm, "messaging.client.consumed.messages", semconv.MessagingOperationName("receive")); n != 2 {
		t.Errorf("received %d", n)
	}
	if p := histPoint(t, rm, "messaging.process.duration", semconv.MessagingDestinationName("ORDER_EVENTS"), semconv.MessagingConsumerGroupName("billing")); p.Count != 2 {
		t.Errorf("process count %d", p.Count)
	}
	if n := sumPoint(t, rm, "messaging.client.sent.messages", semconv.MessagingDestinationName("events.order.created")); n != 2 {
		t.Errorf("sent %d", n)
	}
}

func errorTypeOf(set attribute.Set) string {
	v, _ := set.Value(semconv.ErrorTypeKey)
	return v.AsString()
}
