package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"

	"github.com/natsotel/reference/natsotel"
)

// Stopper is a started service: Stop stops taking requests, drains and finishes the
// requests in flight. It does not close the connection.
type Stopper interface {
	Stop(ctx context.Context) error
}

// StartFunc starts a service on its instrumented connections.
type StartFunc func(ctx context.Context, c Conns, log *slog.Logger) (Stopper, error)

// Conns are a service's NATS connections, both instrumented the same way.
type Conns struct {
	// Conn is the service's own identity (NATS_USER): what it calls, its KeyValue
	// buckets and streams.
	Conn *natsotel.Conn
	// Responder is the identity its endpoints are served on (NATS_RESPONDER_USER, see
	// ConnectResponder): it may only receive the service's requests and answer into its
	// callers' inboxes, so no reply subject a caller names can make the service write
	// its own data. It is Conn when no responder identity is configured.
	Responder *natsotel.Conn
}

// Options configures Run.
type Options struct {
	// Name is the micro service name, the NATS connection name and the default
	// service.name.
	Name string
	// Version is service.version.
	Version string
	// Getenv reads NATS_* (NATS_RESPONDER_* too), SERVE_CONCURRENCY, LOG_LEVEL and
	// HEALTH_ADDR; default
	// os.Getenv. The OTEL_* variables are read from the process environment by the SDK
	// itself. HEALTH_ADDR (e.g. ":8080") serves /readyz and /livez (see health).
	Getenv func(string) string
	// Stderr receives the text logs; default os.Stderr.
	Stderr io.Writer
	// StopTimeout bounds Stop plus draining the connection. Default 20s.
	StopTimeout time.Duration
	// FlushTimeout bounds the telemetry flush at the end. Default 5s.
	FlushTimeout time.Duration
	// Ready, if set, is called once the service has started (tests use it).
	Ready func(c Conns, svc Stopper)
}

// Run sets up telemetry, connects to NATS (as the service, and as its responder when one
// is configured), starts the service and runs until ctx ends; then it shuts down in
// order: the service stops taking requests and finishes those in flight, the responder
// connection drains (pending replies are flushed), then the service's own (pending
// publishes), and telemetry is flushed. Each step is bounded by its timeout.
func Run(ctx context.Context, opts Options, start StartFunc) (err error) {
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = 20 * time.Second
	}
	if opts.FlushTimeout <= 0 {
		opts.FlushTimeout = 5 * time.Second
	}
	tel, flush, err := StartTelemetry(ctx, opts.Name, opts.Version, opts.Getenv, stderr(opts), opts.FlushTimeout)
	if err != nil {
		return err
	}
	defer flush()
	log := tel.Logger
	hc, err := startHealth(opts.Getenv("HEALTH_ADDR"), log)
	if err != nil {
		return err
	}
	defer hc.close()

	conc, err := concurrency(opts.Getenv)
	if err != nil {
		return err
	}
	nc, err := Connect(ctx, opts.Name, opts.Getenv, log)
	if err != nil {
		return connectFailed(ctx, log, err)
	}
	defer nc.Close() // no-op after a completed drain
	rc, err := ConnectResponder(ctx, opts.Name, opts.Getenv, log, nc)
	if err != nil {
		return connectFailed(ctx, log, err)
	}
	if rc != nc {
		defer rc.Close()
	}
	hc.connected(nc, rc)

	natsOpts := append(tel.NATSOptions(), natsotel.WithConcurrency(conc))
	conn, err := natsotel.Wrap(nc, natsOpts...)
	if err != nil {
		return fmt.Errorf("app: instrumenting the connection: %w", err)
	}
	conns := Conns{Conn: conn, Responder: conn}
	if rc != nc {
		if conns.Responder, err = natsotel.Wrap(rc, natsOpts...); err != nil {
			return fmt.Errorf("app: instrumenting the responder connection: %w", err)
		}
	}
	svc, err := start(ctx, conns, log)
	if err != nil {
		return err
	}
	hc.setServing(true)
	if opts.Ready != nil {
		opts.Ready(conns, svc)
	}
	log.Info("running; stop with SIGINT or SIGTERM", "version", opts.Version)
	<-ctx.Done()

	hc.setServing(false)
	log.Info("shutting down", "timeout", opts.StopTimeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opts.StopTimeout)
	defer cancel()
	var errs []error
	if err := svc.Stop(sctx); err != nil {
		errs = append(errs, fmt.Errorf("stopping %s: %w", opts.Name, err))
	}
	if rc != nc {
		if err := drain(sctx, rc, log.With("conn", "responder")); err != nil {
			errs = append(errs, fmt.Errorf("draining the responder connection: %w", err))
		}
	}
	if err := drain(sctx, nc, log); err != nil {
		errs = append(errs, fmt.Errorf("draining the connection: %w", err))
	}
	if len(errs) > 0 {
		log.Error("shutdown incomplete", "error", errors.Join(errs...))
	} else {
		log.Info("stopped cleanly")
	}
	return errors.Join(errs...)
}

// Main is the whole main function of a service binary: Run until SIGINT or SIGTERM,
// exit status 1 on error. It is the only place that touches process-global state: the
// signal handlers and OpenTelemetry's global error handler (rate-limited to stderr, so
// a dead backend does not flood the log).
func Main(name, version string, start StartFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	otel.SetErrorHandler(newRateLimitedHandler(name, os.Stderr, 10*time.Second))
	if err := Run(ctx, Options{Name: name, Version: version}, start); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		stop()
		os.Exit(1)
	}
}

// connectFailed is Run's result when connecting failed: nil if ctx ended while it waited
// for NATS (a stop before the server came up), err otherwise.
func connectFailed(ctx context.Context, log *slog.Logger, err error) error {
	if ctx.Err() != nil {
		log.Info("stopped while waiting for NATS")
		return nil
	}
	return err
}

// drain drains nc (its subscriptions end, what it has to send is flushed) and waits for
// it to close, until ctx ends. A connection whose server is away is closed at once:
// nothing can be flushed to it.
func drain(ctx context.Context, nc *nats.Conn, log *slog.Logger) error {
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) {
		log.Info("NATS connection closed")
		close(closed)
	})
	if err := nc.Drain(); errors.Is(err, nats.ErrConnectionReconnecting) {
		log.Warn("NATS unreachable, closing without draining")
		nc.Close()
		return nil
	} else if err != nil {
		return err
	}
	select {
	case <-closed:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// concurrency reads SERVE_CONCURRENCY: how many requests each endpoint handles at once
// (unset: 0, natsotel's default of 64; 1 serves one at a time, as plain micro does).
func concurrency(getenv func(string) string) (int, error) {
	v := getenv("SERVE_CONCURRENCY")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 100000 {
		return 0, fmt.Errorf("app: SERVE_CONCURRENCY=%q: want a whole number from 1 to 100000", v)
	}
	return n, nil
}

func stderr(o Options) io.Writer {
	if o.Stderr != nil {
		return o.Stderr
	}
	return os.Stderr
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if s == "" {
		return slog.LevelInfo, nil
	}
	if err := l.UnmarshalText([]byte(strings.ToUpper(s))); err != nil {
		return 0, fmt.Errorf("app: LOG_LEVEL=%q: want debug, info, warn or error", s)
	}
	return l, nil
}

// rateLimitedHandler writes OpenTelemetry SDK errors (failed exports) at most once per
// interval, with a count of the ones it skipped.
type rateLimitedHandler struct {
	name     string
	w        io.Writer
	interval time.Duration

	mu      sync.Mutex
	last    time.Time
	skipped int
}

func newRateLimitedHandler(name string, w io.Writer, interval time.Duration) *rateLimitedHandler {
	return &rateLimitedHandler{name: name, w: w, interval: interval}
}

func (h *rateLimitedHandler) Handle(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	if now.Sub(h.last) < h.interval {
		h.skipped++
		return
	}
	msg := fmt.Sprintf("%s: telemetry: %v", h.name, err)
	if h.skipped > 0 {
		msg += fmt.Sprintf(" (%d similar errors skipped)", h.skipped)
	}
	fmt.Fprintln(h.w, msg)
	h.last, h.skipped = now, 0
}
