package probe_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/micro"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/natsotel/reference/loadgen/probe"
	"github.com/natsotel/reference/natsotel"
)

// A natsotel service runs its handlers concurrently: micro then times only the hand-off
// and sees no error reply, so the probe reports the handler's figures that natsotel puts
// into the stats data (the errors and average the service really had), with micro's own
// average kept as HandOff.
func TestProbeReportsHandlerFigures(t *testing.T) {
	s := startServer(t)
	svcConn, probeConn, client := connect(t, s), connect(t, s), connect(t, s)
	conn, err := natsotel.Wrap(svcConn)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := conn.AddService(micro.Config{Name: "worker", Version: "1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Shutdown(context.Background()) })
	if err := svc.AddEndpoint("work", func(ctx context.Context, r micro.Request) {
		if string(r.Data()) == "fail" {
			_ = r.Error("500", "asked to fail", nil)
			return
		}
		_ = r.Respond([]byte("done"))
	}, micro.WithEndpointSubject("worker.work")); err != nil {
		t.Fatal(err)
	}
	if err := svcConn.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{"ok", "fail", "ok", "fail", "ok"} {
		if _, err := client.Request("worker.work", []byte(body), 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if micro := svc.Stats().Endpoints[0]; micro.NumErrors != 0 {
		t.Fatalf("micro counted %d errors: it should not see the handlers' answers", micro.NumErrors)
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
	if _, err := p.Once(t.Context()); err != nil {
		t.Fatal(err)
	}
	ins := p.Instances()
	if len(ins) != 1 || len(ins[0].Endpoints) != 1 {
		t.Fatalf("instances %+v", ins)
	}
	ep := ins[0].Endpoints[0]
	if ep.Requests != 5 || ep.Errors != 2 || ep.InFlight != 0 || ep.AverageProcessingTime <= 0 || ep.HandOff <= 0 {
		t.Fatalf("endpoint %+v", ep)
	}
	got := collect(t, reader)
	if errs, _, _ := got.endpointInt(t, probe.MetricErrors, svc.Info().ID); errs != 2 {
		t.Fatalf("%s = %d, want 2", probe.MetricErrors, errs)
	}
}
