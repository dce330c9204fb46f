package app_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/natsotel/reference/services/app"
	"github.com/natsotel/reference/services/billing"
	"github.com/natsotel/reference/services/contracts"
	"github.com/natsotel/reference/services/internal/testenv"
)

// readyz returns the status code and body of GET /readyz.
func readyz(t *testing.T, base string) (int, string) {
	t.Helper()
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatalf("GET /readyz: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// stopHook is a Stopper that calls hook before stopping the service it wraps.
type stopHook struct {
	app.Stopper
	hook func()
}

func (s stopHook) Stop(ctx context.Context) error { s.hook(); return s.Stopper.Stop(ctx) }

// TestHealthReadiness runs billing through Run with HEALTH_ADDR: /readyz is 503 until the
// service's endpoints serve, 200 while they do (a request is answered), 503 while NATS is
// away and again as soon as shutdown begins; /livez is 200 throughout.
func TestHealthReadiness(t *testing.T) {
	port := freePort(t)
	dir := t.TempDir()
	srv := startServerOn(t, port, dir)
	base := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	addr := strings.TrimPrefix(base, "http://")

	type probe struct {
		code int
		body string
	}
	var beforeStart, duringStop probe
	start := func(ctx context.Context, c app.Conns, log *slog.Logger) (app.Stopper, error) {
		beforeStart.code, beforeStart.body = readyz(t, base) // the listener is up before start
		svc, err := billing.Start(ctx, c.Conn, log, billing.Config{})
		if err != nil {
			return nil, err
		}
		return stopHook{svc, func() { duringStop.code, duringStop.body = readyz(t, base) }}, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, app.Options{
			Name: contracts.BillingService, Version: billing.Version,
			Getenv: envMap(map[string]string{"NATS_URL": srv.ClientURL(), "HEALTH_ADDR": addr}),
			Stderr: io.Discard,
			Ready:  func(app.Conns, app.Stopper) { close(ready) },
		}, start)
	}()
	<-ready
	if beforeStart.code != http.StatusServiceUnavailable || beforeStart.body != "not serving" {
		t.Errorf("before the service started: %+v, want 503 not serving", beforeStart)
	}
	if code, body := readyz(t, base); code != http.StatusOK {
		t.Errorf("serving: %d %s", code, body)
	}
	client := testenv.NewNode(t, srv, "client")
	if _, err := client.Request(context.Background(), contracts.SubjectBillingCharge,
		contracts.ChargeRequest{OrderID: "ready-1", AmountCents: 10, Card: contracts.CardOK}, 2*time.Second); err != nil {
		t.Fatalf("ready, but a charge failed: %v", err)
	}

	srv.Shutdown()
	srv.WaitForShutdown()
	if err := pollStatus(base, http.StatusServiceUnavailable, "not connected to NATS"); err != nil {
		t.Errorf("NATS down: %v", err)
	}
	srv = startServerOn(t, port, dir)
	defer srv.Shutdown()
	if err := pollStatus(base, http.StatusOK, "ready"); err != nil {
		t.Errorf("NATS back: %v", err)
	}
	if resp, err := http.Get(base + "/livez"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("/livez: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if duringStop.code != http.StatusServiceUnavailable || duringStop.body != "not serving" {
		t.Errorf("while stopping: %+v, want 503 not serving", duringStop)
	}
	if _, err := http.Get(base + "/livez"); err == nil {
		t.Error("health endpoint still answers after Run returned")
	}
}

// pollStatus waits up to 10 s for /readyz to answer code and body.
func pollStatus(base string, code int, body string) error {
	deadline := time.Now().Add(10 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == code && strings.TrimSpace(string(b)) == body {
				return nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, b)
		} else {
			last = err.Error()
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("last answer %s, want %d %s", last, code, body)
}

// TestHealthAddrInUse: a HEALTH_ADDR that cannot be bound is a clear error from Run.
func TestHealthAddrInUse(t *testing.T) {
	srv := testenv.Server(t)
	port := freePort(t)
	ln := listenOn(t, port)
	defer ln.Close()
	err := app.Run(context.Background(), app.Options{
		Name: contracts.BillingService, Version: billing.Version,
		Getenv: envMap(map[string]string{"NATS_URL": srv.ClientURL(), "HEALTH_ADDR": fmt.Sprintf("127.0.0.1:%d", port)}),
		Stderr: io.Discard,
	}, startBilling)
	if err == nil || !strings.Contains(err.Error(), "HEALTH_ADDR") {
		t.Fatalf("Run with a taken HEALTH_ADDR: %v", err)
	}
}

func listenOn(t *testing.T, port int) io.Closer {
	t.Helper()
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	return ln
}
