package faultkit

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/natsotel/reference/loadgen/load"
	"github.com/natsotel/reference/natsotel"
	"github.com/natsotel/reference/services/app"
)

// Load is the load generator running in the test process.
type Load struct {
	Runner   *load.Runner
	Recorder *Recorder
	// NC is the load generator's connection (app.Connect: reconnects forever, as the
	// binary's does).
	NC *nats.Conn

	cancel context.CancelFunc
	done   chan struct{}
	sum    load.Summary
	err    error
}

// Dial connects to natsURL the way the loadgen binary does (app.Connect: reconnects
// forever) and instruments the connection with natsotel, without telemetry: the figures
// come from load.Summary and a Recorder. The connection is closed when the test ends.
func Dial(t testing.TB, natsURL string, log *slog.Logger) (*nats.Conn, *natsotel.Conn) {
	t.Helper()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	getenv := func(k string) string {
		if k == "NATS_URL" {
			return natsURL
		}
		return ""
	}
	nc, err := app.Connect(ctx, "loadgen", getenv, log)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	t.Cleanup(nc.Close)
	conn, err := natsotel.Wrap(nc, natsotel.WithTracerProvider(tracenoop.NewTracerProvider()), natsotel.WithMeterProvider(metricnoop.NewMeterProvider()))
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return nc, conn
}

// StartLoad connects to natsURL (see Dial) and runs cfg in the background, every request
// passing through a Recorder. The run stops at the test's end at the latest.
func StartLoad(t testing.TB, natsURL string, log *slog.Logger, cfg load.Config) *Load {
	t.Helper()
	nc, conn := Dial(t, natsURL, log)
	rec := NewRecorder(conn)
	if cfg.Progress == 0 {
		cfg.Progress = -1
	}
	r, err := load.New(rec, log, cfg)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Load{Runner: r, Recorder: rec, NC: nc, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		l.sum, l.err = r.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-l.done
	})
	return l
}

// Stop ends the run (requests in flight finish, each bounded by the load timeout) and
// returns its summary.
func (l *Load) Stop(timeout time.Duration) (load.Summary, error) {
	l.cancel()
	return l.Wait(timeout)
}

// Done is closed when the run has finished.
func (l *Load) Done() <-chan struct{} { return l.done }

// Wait waits up to timeout for the run to finish and returns its summary.
func (l *Load) Wait(timeout time.Duration) (load.Summary, error) {
	select {
	case <-l.done:
		return l.sum, l.err
	case <-time.After(timeout):
		return l.Runner.Summary(), fmt.Errorf("load still running after %v", timeout)
	}
}

// WaitCompleted polls the runner until at least n requests have completed.
func (l *Load) WaitCompleted(ctx context.Context, n int64, timeout time.Duration) error {
	return Poll(ctx, timeout, 20*time.Millisecond, func(context.Context) error {
		if c := l.Runner.State().Completed; c < n {
			return fmt.Errorf("%d of %d requests completed", c, n)
		}
		return nil
	})
}
