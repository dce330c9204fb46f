package order

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"

	"github.com/natsotel/reference/natsotel"
	"github.com/natsotel/reference/services/contracts"
)

// outcome is what a downstream call tells about the state it was asked to change.
type outcome int

const (
	done    outcome = iota // the change happened
	refused                // definitely did not happen (4xx, or no responders: nobody got it)
	unknown                // may or may not have happened (timeout, 5xx, connection trouble)
)

// callError describes a failed downstream call.
type callError struct {
	outcome outcome
	code    string // micro code to report: the downstream 4xx, or 503
	desc    string
	err     error
}

func (e *callError) Error() string { return e.code + " " + e.desc }
func (e *callError) Unwrap() error { return e.err }

// call sends in as JSON to subject through natsotel (a CLIENT span), waits at most
// Config.RequestTimeout, and decodes the reply into out.
func (s *Service) call(ctx context.Context, service, subject string, in, out any) *callError {
	data, err := json.Marshal(in)
	if err != nil {
		return &callError{outcome: refused, code: contracts.CodeInternal, desc: "encoding request", err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	reply, err := s.conn.Request(ctx, subject, data)
	if err != nil {
		return classify(service, err, s.cfg.RequestTimeout.String())
	}
	if err := json.Unmarshal(reply.Data, out); err != nil {
		return &callError{outcome: unknown, code: contracts.CodeUnavailable, desc: service + " sent an unreadable reply", err: err}
	}
	return nil
}

func classify(service string, err error, timeout string) *callError {
	var se *natsotel.ServiceError
	switch {
	case errors.As(err, &se):
		if se.Code >= 400 && se.Code < 500 {
			return &callError{outcome: refused, code: strconv.Itoa(se.Code), desc: se.Description, err: err}
		}
		if se.Code < 500 || se.Code > 599 {
			// Not an HTTP-like code (not a number, or outside 400-599): nothing says the
			// change did not happen. Report 503, never the code itself.
			return &callError{outcome: unknown, code: contracts.CodeUnavailable, desc: fmt.Sprintf("%s failed with an unexpected error code: %s", service, se.Description), err: err}
		}
		return &callError{outcome: unknown, code: contracts.CodeUnavailable, desc: fmt.Sprintf("%s failed: %s", service, se.Description), err: err}
	case errors.Is(err, nats.ErrNoResponders):
		return &callError{outcome: refused, code: contracts.CodeUnavailable, desc: service + " unavailable: no responders", err: err}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return &callError{outcome: unknown, code: contracts.CodeUnavailable, desc: fmt.Sprintf("%s did not answer within %s", service, timeout), err: err}
	default:
		return &callError{outcome: unknown, code: contracts.CodeUnavailable, desc: service + " unavailable", err: err}
	}
}
