package probe_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/natsotel/reference/loadgen/probe"
)

func startServer(t *testing.T) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

func connect(t *testing.T, s *server.Server) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// addWorker adds an instance of service "worker" whose "work" endpoint fails requests
// whose body is "fail".
func addWorker(t *testing.T, nc *nats.Conn) micro.Service {
	t.Helper()
	svc, err := micro.AddService(nc, micro.Config{Name: "worker", Version: "1.2.3", QueueGroupDisabled: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	err = svc.AddEndpoint("work", micro.HandlerFunc(func(r micro.Request) {
		if string(r.Data()) == "fail" {
			_ = r.Error("500", "asked to fail", nil)
			return
		}
		_ = r.Respond([]byte("done"))
	}), micro.WithEndpointSubject("worker.work"))
	if err != nil {
		t.Fatal(err)
	}
	// The service's subscriptions must reach the server before a probe publishes.
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return svc
}

type reading struct {
	rm metricdata.ResourceMetrics
}

func collect(t *testing.T, r *sdkmetric.ManualReader) reading {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	return reading{rm}
}

func (r reading) metric(name string) (metricdata.Metrics, bool) {
	for _, sm := range r.rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				return m, sm.Scope.Name == probe.ScopeName
			}
		}
	}
	return metricdata.Metrics{}, false
}

// up returns nats.micro.up by instance id.
func (r reading) up(t *testing.T) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	m, ok := r.metric(probe.MetricUp)
	if !ok {
		return out
	}
	for _, dp := range m.Data.(metricdata.Gauge[int64]).DataPoints {
		id, _ := dp.Attributes.Value(probe.InstanceKey)
		svc, _ := dp.Attributes.Value(probe.ServiceKey)
		if svc.AsString() == "worker" {
			out[id.AsString()] = dp.Value
		}
	}
	return out
}

func (r reading) endpointInt(t *testing.T, name, id string) (int64, attribute.Set, bool) {
	t.Helper()
	m, ok := r.metric(name)
	if !ok {
		return 0, attribute.Set{}, false
	}
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		if v, _ := dp.Attributes.Value(probe.InstanceKey); v.AsString() == id {
			if !m.Data.(metricdata.Sum[int64]).IsMonotonic || m.Data.(metricdata.Sum[int64]).Temporality != metricdata.CumulativeTemporality {
				t.Errorf("%s must be a cumulative monotonic counter", name)
			}
			return dp.Value, dp.Attributes, true
		}
	}
	return 0, attribute.Set{}, false
}

func TestProbeReportsStatsUpAndDown(t *testing.T) {
	s := startServer(t)
	svcConn, probeConn, client := connect(t, s), connect(t, s), connect(t, s)
	a, b := addWorker(t, svcConn), addWorker(t, svcConn)

	// With the queue group disabled every instance gets every request: 5 requests, 2 errors.
	for _, body := range []string{"ok", "fail", "ok", "fail", "ok"} {
		if _, err := client.Request("worker.work", []byte(body), 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}

	reader := sdkmetric.NewManualReader()
	p, err := probe.New(probeConn, probe.Config{
		Window: 200 * time.Millisecond, Interval: time.Second, Services: []string{"worker"},
		MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	round, err := p.Once(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if round.Discovered != 2 || round.Up != 2 || round.Down != 0 {
		t.Fatalf("round: %+v", round)
	}
	got := collect(t, reader)
	if up := got.up(t); len(up) != 2 || up[a.Info().ID] != 1 || up[b.Info().ID] != 1 {
		t.Fatalf("up: %v", up)
	}

	// The probe's numbers are the service's own.
	for _, svc := range []micro.Service{a, b} {
		id := svc.Info().ID
		want := svc.Stats().Endpoints[0]
		reqs, attrs, ok := got.endpointInt(t, probe.MetricRequests, id)
		if !ok || reqs != int64(want.NumRequests) || reqs != 5 {
			t.Fatalf("%s requests = %d (found %v), service says %d", id, reqs, ok, want.NumRequests)
		}
		errs, _, _ := got.endpointInt(t, probe.MetricErrors, id)
		if errs != int64(want.NumErrors) || errs != 2 {
			t.Fatalf("%s errors = %d, service says %d", id, errs, want.NumErrors)
		}
		for k, v := range map[attribute.Key]string{
			probe.ServiceKey: "worker", probe.EndpointKey: "work", semconv.MessagingDestinationNameKey: "worker.work",
		} {
			if got, _ := attrs.Value(k); got.AsString() != v {
				t.Fatalf("attribute %s = %q, want %q", k, got.AsString(), v)
			}
		}
		avg := findFloatGauge(t, got, probe.MetricProcessingTime, id)
		if avg != want.AverageProcessingTime.Seconds() {
			t.Fatalf("%s average processing time %v, service says %v", id, avg, want.AverageProcessingTime)
		}
	}
	ping, ok := got.metric(probe.MetricPingDuration)
	if !ok {
		t.Fatal("no ping histogram")
	}
	hist := ping.Data.(metricdata.Histogram[float64])
	if len(hist.DataPoints) != 2 || hist.DataPoints[0].Count != 1 || hist.DataPoints[0].Sum <= 0 {
		t.Fatalf("ping histogram: %+v", hist.DataPoints)
	}

	// Stop one instance: up 1 -> 0 for MissedLimit-1 rounds, then gone.
	idB := b.Info().ID
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := svcConn.Flush(); err != nil { // the server has the unsubscriptions before the probe asks
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		round, err := p.Once(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		up := collect(t, reader).up(t)
		switch i {
		case 1, 2:
			if up[a.Info().ID] != 1 || len(up) != 2 || up[idB] != 0 {
				t.Fatalf("round %d: up %v", i, up)
			}
			if round.Up != 1 || round.Down != 1 {
				t.Fatalf("round %d: %+v", i, round)
			}
		case 3:
			if _, present := up[idB]; present || len(up) != 1 {
				t.Fatalf("round 3: the stopped instance should be gone: %v", up)
			}
			if len(round.Gone) != 1 || round.Gone[0] != "worker/"+idB {
				t.Fatalf("round 3: %+v", round)
			}
			if _, _, ok := collect(t, reader).endpointInt(t, probe.MetricRequests, idB); ok {
				t.Fatal("endpoint series of a gone instance still reported")
			}
		}
	}
	if ins := p.Instances(); len(ins) != 1 || ins[0].ID != a.Info().ID || !ins[0].Up || ins[0].Version != "1.2.3" {
		t.Fatalf("instances: %+v", ins)
	}

	// A new instance appears on the next round.
	c := addWorker(t, svcConn)
	if _, err := p.Once(t.Context()); err != nil {
		t.Fatal(err)
	}
	if up := collect(t, reader).up(t); up[c.Info().ID] != 1 || len(up) != 2 {
		t.Fatalf("new instance: %v", up)
	}
}

func findFloatGauge(t *testing.T, r reading, name, id string) float64 {
	t.Helper()
	m, ok := r.metric(name)
	if !ok {
		t.Fatalf("%s missing", name)
	}
	for _, dp := range m.Data.(metricdata.Gauge[float64]).DataPoints {
		if v, _ := dp.Attributes.Value(probe.InstanceKey); v.AsString() == id {
			return dp.Value
		}
	}
	t.Fatalf("%s: no point for %s", name, id)
	return 0
}

func TestRunRoundsUntilCanceled(t *testing.T) {
	s := startServer(t)
	addWorker(t, connect(t, s))
	rounds := make(chan probe.Round, 10)
	p, err := probe.New(connect(t, s), probe.Config{
		Interval: 100 * time.Millisecond, Window: 20 * time.Millisecond,
		OnRound: func(r probe.Round) { rounds <- r },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	for i := range 2 {
		select {
		case r := <-rounds:
			if r.Up != 1 {
				t.Fatalf("round %d: %+v", i, r)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no probe round")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// TestDiscoveryIsBounded: a responder answering $SRV.PING with made-up instances (as any
// user allowed to answer discovery can) gets at most MaxInstances of its service tracked.
func TestDiscoveryIsBounded(t *testing.T) {
	s := startServer(t)
	addWorker(t, connect(t, s)) // a real instance of another service
	flooder := connect(t, s)
	if _, err := flooder.Subscribe("$SRV.PING", func(m *nats.Msg) {
		for i := range 50 {
			_ = flooder.Publish(m.Reply, fmt.Appendf(nil, `{"name":"order","id":"fake%04d","version":"6.6.6","type":"io.nats.micro.v1.ping_response"}`, i))
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := flooder.Flush(); err != nil {
		t.Fatal(err)
	}
	p, err := probe.New(connect(t, s), probe.Config{Window: 200 * time.Millisecond, Timeout: 50 * time.Millisecond, MaxInstances: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	round, err := p.Once(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if round.Discovered != 6 || round.Up != 1 {
		t.Errorf("discovered %d, up %d; want 6 (5 order, capped, and the worker) and 1", round.Discovered, round.Up)
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := probe.New(nil, probe.Config{}); err == nil {
		t.Fatal("nil conn: want error")
	}
	s := startServer(t)
	if _, err := probe.New(connect(t, s), probe.Config{Interval: time.Second, Window: 2 * time.Second}); err == nil {
		t.Fatal("window >= interval: want error")
	}
}

// The probe only sees services; its own traffic is plain NATS on inboxes.
func ExampleProbe_Once() {
	ns, _ := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true})
	go ns.Start()
	defer ns.Shutdown()
	ns.ReadyForConnections(10 * time.Second)
	nc, _ := nats.Connect(ns.ClientURL())
	defer nc.Close()

	svc, _ := micro.AddService(nc, micro.Config{Name: "inventory", Version: "1.0.0"})
	defer svc.Stop()
	_ = nc.Flush()

	p, _ := probe.New(nc, probe.Config{Window: 100 * time.Millisecond})
	defer p.Close()
	round, _ := p.Once(context.Background())
	fmt.Println("discovered", round.Discovered, "up", round.Up)
	for _, in := range p.Instances() {
		fmt.Println(in.Service, in.Version, in.Up)
	}
	// Output:
	// discovered 1 up 1
	// inventory 1.0.0 true
}
