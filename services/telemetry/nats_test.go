package telemetry_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/natsotel/reference/natsotel"
	"github.com/natsotel/reference/services/internal/testenv"
	"github.com/natsotel/reference/services/telemetry"
)

// TestRequestsWithDeadBackend serves and sends real NATS requests through natsotel while
// the OTLP endpoint is a closed port or a server that never answers: every request
// succeeds quickly, its spans exist, and Shutdown returns by its deadline.
func TestRequestsWithDeadBackend(t *testing.T) {
	srv := testenv.Server(t)
	closed := func(t *testing.T) string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		return "http://" + addr
	}
	hanging := func(t *testing.T) string {
		release := make(chan struct{})
		h := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		t.Cleanup(func() { close(release); h.Close() })
		return h.URL
	}
	for name, endpoint := range map[string]func(*testing.T) string{"closed port": closed, "hanging server": hanging} {
		t.Run(name, func(t *testing.T) {
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint(t))
			t.Setenv("OTEL_METRIC_EXPORT_INTERVAL", "100")
			rec := tracetest.NewSpanRecorder()
			tel, err := telemetry.New(context.Background(), telemetry.Config{
				ServiceName:    "echo",
				SpanProcessors: []sdktrace.SpanProcessor{rec},
				Stderr:         io.Discard,
			})
			if err != nil {
				t.Fatal(err)
			}
			nc, err := nats.Connect(srv.ClientURL())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			conn, err := natsotel.Wrap(nc, tel.NATSOptions()...)
			if err != nil {
				t.Fatal(err)
			}
			svc, err := conn.AddService(micro.Config{Name: "echo", Version: "1.0.0"})
			if err != nil {
				t.Fatal(err)
			}
			defer svc.Stop()
			// A subject of its own per subtest: the previous subtest's service may still be
			// draining on the shared server, and must not receive this one's requests.
			subject := "echo." + strings.ReplaceAll(name, " ", "_")
			if err := svc.AddEndpoint("echo", func(ctx context.Context, req micro.Request) {
				tel.Logger.InfoContext(ctx, "echo")
				_ = req.Respond(req.Data())
			}, micro.WithEndpointSubject(subject)); err != nil {
				t.Fatal(err)
			}
			const n = 300
			start := time.Now()
			for range n {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				if _, err := conn.Request(ctx, subject, []byte("hi")); err != nil {
					t.Fatalf("request with a dead backend: %v", err)
				}
				cancel()
			}
			per := time.Since(start) / n
			t.Logf("%d requests, %v each, with the OTLP backend %s", n, per, name)
			if per > 20*time.Millisecond {
				t.Errorf("requests slowed to %v each", per)
			}
			// A server span ends just after its reply is sent, so the last may still be open.
			testenv.Eventually(t, 5*time.Second, "the requests' client and server spans", func() bool {
				return len(rec.Ended()) >= 2*n
			})
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			start = time.Now()
			_ = tel.Shutdown(ctx)
			if took := time.Since(start); took > time.Second {
				t.Errorf("Shutdown took %v with a 500ms deadline", took)
			}
		})
	}
}
