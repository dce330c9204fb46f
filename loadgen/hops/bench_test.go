package hops_test

import (
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/natsotel/reference/loadgen/hops"
)

// BenchmarkRecord: one trace event as the server sends it for a request (ingress and one
// delivery) into two spans, exported in batches to a discarding exporter.
func BenchmarkRecord(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	defer func() { _ = tp.Shutdown(b.Context()) }()
	br := hops.New(hops.WithTracerProvider(tp))
	m := &nats.Msg{Data: []byte(`{"server":{"name":"shop-nats","host":"0.0.0.0","id":"NAD2GSHQBOIUIO3WLCX2SKEZXGTECEUEM3JQRCXQMPLYVZYHE2BDLNXS","ver":"2.15.2","jetstream":true,"flags":7,"seq":18,"time":"2026-12-02T21:13:21.008318727Z"},` +
		`"request":{"header":{"traceparent":["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"],"baggage":["synthetic=true,loadgen.scenario=valid_order"]},"msgsize":183},` +
		`"events":[{"type":"in","ts":"2026-12-02T21:13:21.008283693Z","kind":0,"cid":8,"name":"loadgen","acc":"SHOP","subj":"order.create"},` +
		`{"type":"eg","ts":"2026-12-02T21:13:21.008290066Z","kind":0,"cid":7,"name":"order","sub":"order.create","queue":"q"}]}`)}
	b.ReportAllocs()
	cpu0 := processCPU(b)
	for b.Loop() {
		if err := br.Record(m); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
}

// processCPU is the user and system CPU time this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkServerMsgTrace: what msg_trace costs the publishing side and the server. A
// request/reply with a sampled traceparent through an in-process server, client and
// responder in this process: "off" with no msg_trace on the account, "on" with msg_trace
// and nobody subscribed to the events, "bridge" with this package recording them.
func BenchmarkServerMsgTrace(b *testing.B) {
	for _, variant := range []string{"off", "on", "bridge"} {
		b.Run(variant, func(b *testing.B) {
			opts := &server.Options{}
			conf := accountConf
			if variant == "off" {
				conf = `accounts { SHOP { users: [{user: shop, password: shop}] } }
no_auth_user: shop`
			}
			if err := opts.ProcessConfigString(conf); err != nil {
				b.Fatal(err)
			}
			opts.Host, opts.Port, opts.NoLog, opts.NoSigs = "127.0.0.1", server.RANDOM_PORT, true, true
			s, err := server.NewServer(opts)
			if err != nil {
				b.Fatal(err)
			}
			go s.Start()
			if !s.ReadyForConnections(10 * time.Second) {
				b.Fatal("not ready")
			}
			defer s.Shutdown()
			if variant == "bridge" {
				tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
				defer func() { _ = tp.Shutdown(b.Context()) }()
				bridge := connect(b, s, "bridge")
				if _, err := hops.New(hops.WithTracerProvider(tp)).Subscribe(bridge, traceSubject); err != nil {
					b.Fatal(err)
				}
				// Its subscription is in place before the first request, or the first
				// requests' events would go unrecorded.
				if err := bridge.Flush(); err != nil {
					b.Fatal(err)
				}
			}
			srv := connect(b, s, "responder")
			if _, err := srv.Subscribe("svc", func(m *nats.Msg) { _ = m.Respond([]byte("ok")) }); err != nil {
				b.Fatal(err)
			}
			// The server has the subscription before the first request (no "no responders").
			if err := srv.Flush(); err != nil {
				b.Fatal(err)
			}
			cl := connect(b, s, "client")
			m := nats.NewMsg("svc")
			m.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
			m.Data = make([]byte, 40)
			b.ReportAllocs()
			cpu0 := processCPU(b)
			for b.Loop() {
				if _, err := cl.RequestMsg(m, 5*time.Second); err != nil {
					b.Fatal(err)
				}
			}
			// Wall time on a shared machine mostly measures the neighbours; the CPU the
			// whole process (client, responder, server, bridge) spent per request does not.
			b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}
