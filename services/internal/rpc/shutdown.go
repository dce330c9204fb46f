package rpc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// Shutdown stops a micro service whose endpoints are Typed handlers of s, so that no
// request changes state once it returns:
//
//  1. Inflight.Close: from now on a handler answers 503 "service is stopping" without
//     touching state (requests the server delivered before it saw the unsubscribe are
//     still in the subscriptions' queues: they get this answer, not a silent drop);
//  2. svc.Stop (a micro.Service): unsubscribes the endpoints (micro drains them asynchronously and exposes
//     no completion: micro.Service.Stopped is set at once, and a DoneHandler runs when
//     Stop is called, not when the drain ends);
//  3. waits until every request nc received before that has been handled: a flush (the
//     server processed the unsubscribes, so everything it sent for them is queued on
//     this side) and then nats.Conn.Barrier, which runs after every async subscription
//     of nc has handled what was queued;
//  4. waits for the handlers still running (Inflight.Wait).
//
// Each wait is bounded by ctx. The connection is left open.
func (s *Server) Shutdown(ctx context.Context, nc *nats.Conn, svc interface{ Stop() error }) error {
	s.Inflight.Close()
	var errs []error
	if err := svc.Stop(); err != nil {
		errs = append(errs, fmt.Errorf("stopping micro service: %w", err))
	}
	if err := Drained(ctx, nc); err != nil {
		errs = append(errs, fmt.Errorf("waiting for queued requests: %w", err))
	}
	if err := s.Inflight.Wait(ctx); err != nil {
		errs = append(errs, fmt.Errorf("waiting for handlers: %w", err))
	}
	return errors.Join(errs...)
}

// Drained returns once nc's async subscriptions have handled every message that the
// server sent to this connection before the call: a round trip to the server (skipped
// while disconnected: nothing more arrives then), then a barrier behind every
// subscription's queue. It returns ctx's error if that takes longer.
func Drained(ctx context.Context, nc *nats.Conn) error {
	if nc.IsClosed() {
		return nil // nothing queued is handled any more
	}
	if nc.IsConnected() {
		fctx := ctx
		if _, ok := ctx.Deadline(); !ok { // FlushWithContext wants a deadline
			var cancel context.CancelFunc
			fctx, cancel = context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
		}
		if err := nc.FlushWithContext(fctx); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			return fmt.Errorf("flushing: %w", err)
		}
	}
	done := make(chan struct{})
	if err := nc.Barrier(func() { close(done) }); err != nil {
		if errors.Is(err, nats.ErrConnectionClosed) {
			return nil
		}
		return fmt.Errorf("barrier: %w", err)
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
