package probe_test

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/natsotel/reference/loadgen/probe"
)

// startNode starts a cluster node named name with HTTP monitoring, routed to routes.
func startNode(t *testing.T, name string, routes ...string) *server.Server {
	t.Helper()
	opts := &server.Options{
		ServerName: name, Host: "127.0.0.1", Port: server.RANDOM_PORT,
		HTTPHost: "127.0.0.1", HTTPPort: server.RANDOM_PORT,
		Cluster: server.ClusterOpts{Name: "probe-test", Host: "127.0.0.1", Port: server.RANDOM_PORT},
		NoLog:   true, NoSigs: true,
	}
	for _, r := range routes {
		opts.Routes = append(opts.Routes, server.RoutesFromStr(r)...)
	}
	s, err := server.NewServer(opts)
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

// TestProbeFindsEachInstancesServer runs two workers on node a and one on node b of a
// two-node cluster; the probe, connected to a only, discovers all three and, from both
// nodes' monitoring endpoints, which node each is connected to.
func TestProbeFindsEachInstancesServer(t *testing.T) {
	a := startNode(t, "a")
	b := startNode(t, "b", fmt.Sprintf("nats-route://%s", a.ClusterAddr()))
	onA1, onA2, onB := addWorker(t, connect(t, a)), addWorker(t, connect(t, a)), addWorker(t, connect(t, b))
	want := map[string]string{onA1.Info().ID: "a", onA2.Info().ID: "a", onB.Info().ID: "b"}

	reader := sdkmetric.NewManualReader()
	p, err := probe.New(connect(t, a), probe.Config{
		Interval: time.Second, Window: 200 * time.Millisecond, Services: []string{"worker"},
		MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)),
		MonitorURLs:   []string{"http://" + a.MonitorAddr().String(), "http://" + b.MonitorAddr().String() + "/"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	// b's subscriptions reach a over the route: probe until all three answered.
	var round probe.Round
	deadline := time.Now().Add(10 * time.Second)
	for round.Up < 3 && time.Now().Before(deadline) {
		if round, err = p.Once(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if w := map[string]map[string]int{"a": {"worker": 2}, "b": {"worker": 1}}; fmt.Sprint(round.PerServer) != fmt.Sprint(w) {
		t.Errorf("PerServer = %v, want %v", round.PerServer, w)
	}
	got := map[string]string{}
	for _, in := range p.Instances() {
		got[in.ID] = in.Server
	}
	if !maps.Equal(got, want) {
		t.Errorf("servers by instance = %v, want %v", got, want)
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != probe.MetricInstances {
				continue
			}
			for _, dp := range m.Data.(metricdata.Gauge[int64]).DataPoints {
				svc, _ := dp.Attributes.Value(probe.ServiceKey)
				srv, _ := dp.Attributes.Value(probe.ServerKey)
				counts[svc.AsString()+"@"+srv.AsString()] = dp.Value
			}
		}
	}
	if w := map[string]int64{"worker@a": 2, "worker@b": 1}; !maps.Equal(counts, w) {
		t.Errorf("%s = %v, want %v", probe.MetricInstances, counts, w)
	}
}

// TestProbeMonitoringUnreachable: a monitoring URL that does not answer leaves the server
// unknown and the round still succeeds.
func TestProbeMonitoringUnreachable(t *testing.T) {
	s := startServer(t)
	nc := connect(t, s)
	addWorker(t, nc)
	p, err := probe.New(nc, probe.Config{
		Interval: time.Second, Window: 200 * time.Millisecond, Timeout: 200 * time.Millisecond,
		MonitorURLs: []string{"http://127.0.0.1:1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	round, err := p.Once(context.Background())
	if err != nil || round.Up != 1 {
		t.Fatalf("round %+v, %v", round, err)
	}
	if w := map[string]map[string]int{"": {"worker": 1}}; fmt.Sprint(round.PerServer) != fmt.Sprint(w) {
		t.Errorf("PerServer = %v, want %v", round.PerServer, w)
	}
}
