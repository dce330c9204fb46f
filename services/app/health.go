package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// health answers HTTP probes when HEALTH_ADDR is set (Kubernetes' readinessProbe and
// livenessProbe; the service images have no shell, so an exec probe has nothing to run).
//
//	GET /readyz  200 once the service's endpoints are subscribed on the server (start
//	             returned: rpc.Serve flushes its subscriptions), while the connection is
//	             up and until shutdown begins; 503 otherwise
//	GET /livez   200 while the process runs
//
// Readiness is false while NATS is unreachable (the subscriptions are on no server then)
// and from the first moment of shutdown, so a rollout waits for the new instance to
// serve before it stops the old one.
type health struct {
	srv     *http.Server
	ln      net.Listener
	conns   atomic.Pointer[[]*nats.Conn]
	serving atomic.Bool
}

// startHealth listens on addr; "" disables it (nil, nil).
func startHealth(addr string, log *slog.Logger) (*health, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("app: HEALTH_ADDR: %w", err)
	}
	h := &health{ln: ln}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", h.readyz)
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	h.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := h.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("health endpoint stopped", "error", err)
		}
	}()
	log.Info("health endpoint listening", "addr", ln.Addr().String())
	return h, nil
}

func (h *health) readyz(w http.ResponseWriter, _ *http.Request) {
	conns := h.conns.Load()
	switch {
	case !h.serving.Load():
		http.Error(w, "not serving", http.StatusServiceUnavailable)
	case conns == nil || slices.ContainsFunc(*conns, func(nc *nats.Conn) bool { return !nc.IsConnected() }):
		http.Error(w, "not connected to NATS", http.StatusServiceUnavailable)
	default:
		fmt.Fprintln(w, "ready")
	}
}

// The methods below accept a nil *health (HEALTH_ADDR unset).

// connected sets the connections that must be up for the service to be ready (its own
// and its responder's).
func (h *health) connected(conns ...*nats.Conn) {
	if h != nil {
		h.conns.Store(&conns)
	}
}

func (h *health) setServing(v bool) {
	if h != nil {
		h.serving.Store(v)
	}
}

func (h *health) close() {
	if h == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = h.srv.Shutdown(ctx)
}
