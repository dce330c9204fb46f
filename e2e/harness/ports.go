package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago. Someone else can
// take it before a child process binds it (rarely); the harness starts its tools through
// startTool, which starts a tool again on new ports when that happens.
func FreePort(t testing.TB) int {
	t.Helper()
	return FreePorts(t, 1)[0]
}

// FreePorts returns n distinct TCP ports on 127.0.0.1 that were free a moment ago (all of
// them are held at once, so no two are the same).
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// pollInterval is how often readiness checks poll external state.
const pollInterval = 50 * time.Millisecond

// WaitTCP polls until addr accepts a TCP connection, ctx ends, or proc exits.
func WaitTCP(ctx context.Context, addr string, proc *Process) error {
	return poll(ctx, proc, func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
}

// WaitHTTP polls until url answers 200, ctx ends, or proc exits.
func WaitHTTP(ctx context.Context, url string, proc *Process) error {
	client := &http.Client{Timeout: 2 * time.Second}
	return poll(ctx, proc, func() error {
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	})
}

// poll calls check until it succeeds, ctx ends, or proc (if not nil) exits.
func poll(ctx context.Context, proc *Process, check func() error) error {
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	var done <-chan struct{}
	if proc != nil {
		done = proc.Done()
	}
	for {
		err := check()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-done:
			return errors.Join(fmt.Errorf("%s exited: %v", proc.Name, proc.Err()), err)
		case <-tick.C:
		}
	}
}
