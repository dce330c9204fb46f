package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/natsotel/reference/services/app"
	"github.com/natsotel/reference/services/billing"
	"github.com/natsotel/reference/services/contracts"
	"github.com/natsotel/reference/services/internal/testenv"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startServerOn(t *testing.T, port int, dir string) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	return s
}

func envMap(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestConnectWaitsThenReconnects(t *testing.T) {
	port := freePort(t)
	dir := t.TempDir()
	logs := &testenv.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)

	type result struct {
		nc  *nats.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		nc, err := app.Connect(context.Background(), "svc-a", envMap(map[string]string{"NATS_URL": url}), log)
		done <- result{nc, err}
	}()
	// The server comes up after the service: Connect waits for it.
	testenv.Eventually(t, 5*time.Second, "Connect waiting", func() bool { return strings.Contains(logs.String(), "waiting for NATS") })
	s := startServerOn(t, port, dir)
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	nc := r.nc
	defer nc.Close()
	if got := nc.Opts.Name; got != "svc-a" {
		t.Errorf("connection name %q", got)
	}

	// The server goes away and comes back: the connection follows.
	s.Shutdown()
	s.WaitForShutdown()
	testenv.Eventually(t, 5*time.Second, "disconnect logged", func() bool { return strings.Contains(logs.String(), "disconnected from NATS") })
	s = startServerOn(t, port, dir)
	defer s.Shutdown()
	testenv.Eventually(t, 10*time.Second, "reconnected", func() bool {
		return nc.IsConnected() && strings.Contains(logs.String(), "reconnected to NATS")
	})
}

func TestConnectGivesUpWithContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := app.Connect(ctx, "svc", envMap(map[string]string{"NATS_URL": fmt.Sprintf("nats://127.0.0.1:%d", freePort(t))}), nil)
	if err == nil || !strings.Contains(err.Error(), "waiting for NATS") {
		t.Fatalf("err = %v", err)
	}
	_, err = app.Connect(context.Background(), "svc", envMap(map[string]string{"NATS_CREDS": "/x", "NATS_USER": "u"}), nil)
	if err == nil {
		t.Fatal("NATS_CREDS and NATS_USER together accepted")
	}
}

func startBilling(ctx context.Context, c app.Conns, log *slog.Logger) (app.Stopper, error) {
	return billing.Start(ctx, c.Conn, log, billing.Config{Responder: c.Responder})
}

// TestRunShutsDownInOrder runs billing through Run with an OTLP endpoint that never
// answers, serves requests, and cancels: Run stops the service, drains, gives up on the
// telemetry flush at its timeout, and returns without error.
func TestRunShutsDownInOrder(t *testing.T) {
	srv := testenv.Server(t)
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer func() { close(release); hang.Close() }()

	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", hang.URL) // read by the SDK's exporters
	logs := &testenv.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, app.Options{
			Name:    contracts.BillingService,
			Version: billing.Version,
			Getenv: envMap(map[string]string{
				"NATS_URL":  srv.ClientURL(),
				"LOG_LEVEL": "debug",
			}),
			Stderr:       logs,
			FlushTimeout: 500 * time.Millisecond,
			Ready:        func(app.Conns, app.Stopper) { close(ready) },
		}, startBilling)
	}()
	<-ready
	client := testenv.NewNode(t, srv, "client")
	for i := range 20 {
		msg, err := client.Request(context.Background(), contracts.SubjectBillingCharge,
			contracts.ChargeRequest{OrderID: fmt.Sprintf("run-%d", i), AmountCents: 10, Card: contracts.CardOK}, 2*time.Second)
		if err != nil {
			t.Fatalf("charge with a hanging telemetry backend: %v", err)
		}
		var p contracts.Payment
		if err := json.Unmarshal(msg.Data, &p); err != nil || p.Status != contracts.PaymentCaptured {
			t.Fatalf("payment %+v, %v", p, err)
		}
	}
	start := time.Now()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v\n%s", err, logs)
	}
	took := time.Since(start)
	out := logs.String()
	for _, want := range []string{"shutting down", "NATS connection closed", "stopped cleanly", "flushing telemetry"} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q:\n%s", want, out)
		}
	}
	if took > 3*time.Second {
		t.Errorf("shutdown took %v with a 500ms flush timeout", took)
	}
	t.Logf("shutdown with a hanging OTLP backend took %v", took)
	if _, err := client.Request(context.Background(), contracts.SubjectBillingCharge, contracts.ChargeRequest{OrderID: "x", AmountCents: 1, Card: contracts.CardOK}, time.Second); testenv.Code(err) != "no responders" {
		t.Errorf("after Run returned: %v, want no responders", err)
	}
}

// TestRunServesAsTheResponder: with NATS_RESPONDER_USER set, the endpoints and micro's
// discovery are served on the responder's connection, and the service's own user, which
// may write the payments bucket, answers nothing: a discovery request whose reply subject
// names a payments key is refused by the server, and the key is not written.
func TestRunServesAsTheResponder(t *testing.T) {
	srv := testenv.Server(t, func(o *server.Options) {
		o.Users = []*server.User{
			{Username: "billing", Password: "b", Permissions: &server.Permissions{
				Subscribe: &server.SubjectPermission{Deny: []string{"billing.>", "$SRV.>"}},
			}},
			{Username: "billing-responder", Password: "r", Permissions: &server.Permissions{
				Publish:   &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
				Subscribe: &server.SubjectPermission{Allow: []string{"billing.>", "$SRV.>"}},
			}},
			{Username: "client", Password: "c"},
		}
	})
	logs := &testenv.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan app.Conns, 1)
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, app.Options{
			Name:    contracts.BillingService,
			Version: billing.Version,
			Getenv: envMap(map[string]string{
				"NATS_URL": srv.ClientURL(), "NATS_USER": "billing", "NATS_PASSWORD": "b",
				"NATS_RESPONDER_USER": "billing-responder", "NATS_RESPONDER_PASSWORD": "r",
				"OTEL_SDK_DISABLED": "true",
			}),
			Stderr: logs,
			Ready:  func(c app.Conns, _ app.Stopper) { ready <- c },
		}, startBilling)
	}()
	var conns app.Conns
	select {
	case conns = <-ready:
	case err := <-done:
		t.Fatalf("Run: %v\n%s", err, logs)
	}
	if conns.Responder == conns.Conn {
		t.Fatal("Conns.Responder is the service's own connection")
	}
	client, err := nats.Connect(srv.ClientURL(), nats.UserInfo("client", "c"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	data, _ := json.Marshal(contracts.ChargeRequest{OrderID: "resp-1", AmountCents: 10, Card: contracts.CardOK})
	msg, err := client.Request(contracts.SubjectBillingCharge, data, 5*time.Second)
	if err != nil {
		t.Fatalf("charge: %v\n%s", err, logs)
	}
	if rerr := msg.Header.Get(micro.ErrorCodeHeader); rerr != "" {
		t.Fatalf("charge answered %s %s", rerr, msg.Data)
	}
	// The confused deputy: a ping whose reply subject is a payments key.
	if err := client.PublishMsg(&nats.Msg{Subject: "$SRV.PING.billing", Reply: "$KV.payments.resp-2", Data: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	if err := client.Flush(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the server refusing the ping's reply", func() bool {
		return strings.Contains(logs.String(), `Permissions Violation for Publish to \"$KV.payments.resp-2\"`)
	})
	var p contracts.Payment
	if testenv.Get(t, client, contracts.BucketPayments, "resp-2", &p) {
		t.Errorf("the ping's reply was written into the payments bucket: %+v", p)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v\n%s", err, logs)
	}
	for _, want := range []string{`conn=responder`, "stopped cleanly"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
}

// TestMainHandlesSIGTERM runs Main in a child process (this test binary) and sends it
// SIGTERM: it must stop cleanly and exit 0.
func TestMainHandlesSIGTERM(t *testing.T) {
	if os.Getenv("APP_TEST_MAIN") == "1" {
		app.Main(contracts.BillingService, billing.Version, startBilling)
		return
	}
	srv := testenv.Server(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestMainHandlesSIGTERM$")
	cmd.Env = append(os.Environ(), "APP_TEST_MAIN=1", "NATS_URL="+srv.ClientURL(), "OTEL_EXPORTER_OTLP_ENDPOINT=", "OTEL_TRACES_EXPORTER=none")
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	client := testenv.NewNode(t, srv, "client")
	testenv.Eventually(t, 30*time.Second, "billing up in the child", func() bool {
		_, err := client.Request(context.Background(), contracts.SubjectBillingPayment, contracts.OrderRef{OrderID: "none"}, 200*time.Millisecond)
		return testenv.Code(err) == "404"
	})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	select {
	case err := <-waitErr:
		if err != nil {
			t.Fatalf("child exited with %v:\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("child did not exit after SIGTERM:\n%s", stderr.String())
	}
	if out := stderr.String(); !strings.Contains(out, "stopped cleanly") {
		t.Errorf("child stderr lacks a clean stop:\n%s", out)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRunStopsWhileNATSIsDown: SIGTERM while the server is away still exits cleanly.
func TestRunStopsWhileNATSIsDown(t *testing.T) {
	port := freePort(t)
	srv := startServerOn(t, port, t.TempDir())
	logs := &testenv.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, app.Options{
			Name:    contracts.BillingService,
			Getenv:  envMap(map[string]string{"NATS_URL": srv.ClientURL()}),
			Stderr:  logs,
			Ready:   func(app.Conns, app.Stopper) { close(ready) },
			Version: billing.Version,
		}, startBilling)
	}()
	<-ready
	srv.Shutdown()
	srv.WaitForShutdown()
	testenv.Eventually(t, 5*time.Second, "disconnect", func() bool { return strings.Contains(logs.String(), "disconnected from NATS") })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v\n%s", err, logs)
		}
	case <-time.After(25 * time.Second):
		t.Fatalf("Run did not return\n%s", logs)
	}
	if !strings.Contains(logs.String(), "closing without draining") {
		t.Errorf("logs:\n%s", logs)
	}
}
