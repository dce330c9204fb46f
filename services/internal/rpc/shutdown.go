package rpc

import (
	"context"
	"errors"
	"fmt"

	"github.com/natsotel/reference/natsotel"
)

// Shutdown stops a micro service whose endpoints are Typed handlers of s, so that no
// request changes state once it returns:
//
//  1. Inflight.Close: from now on a handler answers 503 "service is stopping" without
//     touching state (requests the server delivered before it saw the unsubscribe are
//     still queued: they get this answer, not a silent drop);
//  2. svc.Shutdown: the endpoints unsubscribe, and it waits until every request received
//     before has been handed to a handler and every handler returned (answered);
//  3. waits for the other users of Inflight (a JetStream consumer) still running.
//
// Each wait is bounded by ctx. The connection is left open.
func (s *Server) Shutdown(ctx context.Context, svc *natsotel.Service) error {
	s.Inflight.Close()
	var errs []error
	if err := svc.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("stopping micro service: %w", err))
	}
	if err := s.Inflight.Wait(ctx); err != nil {
		errs = append(errs, fmt.Errorf("waiting for handlers: %w", err))
	}
	return errors.Join(errs...)
}
