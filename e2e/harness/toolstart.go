package harness

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// startAttempts bounds how often a tool (nats-server, Prometheus, the collector) is
// started again when a port it was given was taken by the time it bound it.
const startAttempts = 3

// addrInUse is how every one of the tools (all Go programs) reports a port it could not bind.
const addrInUse = "address already in use"

// toolStart describes how to start one tool process and know it is ready.
type toolStart struct {
	// attempt prepares try n (0-based): picks ports, renders the configuration, and returns
	// the process to start. It runs on the test goroutine and may call t.Fatal.
	attempt func(n int) ProcessConfig
	// ready returns nil once p serves on the ports of this attempt. It must only succeed
	// for p itself, not for another process that holds the same port.
	ready func(ctx context.Context, p *Process) error
	// timeout bounds each attempt's ready (default 30 s).
	timeout time.Duration
	// retryDelay is waited before another attempt (for a restart on the same ports).
	retryDelay time.Duration
}

// startTool starts a tool and waits until it is ready. FreePort only knows a port was free
// a moment ago, so a port can be taken before the child binds it (another test's process,
// an outgoing connection's ephemeral port). When an attempt fails and its log says so, the
// process is stopped and the tool started again with the ports of the next attempt, up to
// startAttempts times; any other failure fails at once, since a retry would only hide it.
// The caller registers the cleanup that stops the returned process.
func startTool(t testing.TB, ts toolStart) *Process {
	t.Helper()
	p, err := startToolErr(ts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func startToolErr(ts toolStart) (*Process, error) {
	if ts.timeout == 0 {
		ts.timeout = 30 * time.Second
	}
	var errs []error
	for n := range startAttempts {
		if n > 0 && ts.retryDelay > 0 {
			time.Sleep(ts.retryDelay) // the port is someone else's: nothing to wait on but time
		}
		cfg := ts.attempt(n)
		p, err := startProcess(cfg)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), ts.timeout)
		err = ts.ready(ctx, p)
		cancel()
		if err == nil && strings.Contains(p.logSinceStart(), addrInUse) {
			err = errors.New("log reports " + addrInUse)
		}
		if err == nil {
			return p, nil
		}
		_ = p.Stop()
		p.closeLog()
		log := p.logSinceStart()
		err = fmt.Errorf("%s (attempt %d of %d) not ready: %w\n--- %s log:\n%s", p.Name, n+1, startAttempts, err, p.Name, lastLines(log, 40, ""))
		if !strings.Contains(log, addrInUse) {
			return nil, err
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// waitLog polls until the log p wrote since it started contains s, ctx ends, or p exits.
func waitLog(ctx context.Context, p *Process, s string) error {
	return poll(ctx, p, func() error {
		if strings.Contains(p.logSinceStart(), s) {
			return nil
		}
		return fmt.Errorf("%s has not logged %q", p.Name, s)
	})
}
