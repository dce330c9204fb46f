package order

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

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

// classify maps a failed call to what it says about the change asked for, from its
// error.type (natsotel.ErrorType, the vocabulary of the call's span): a 4xx micro code and
// no_responders (nobody got the request) mean refused; a timeout, a 5xx or anything else
// may have changed state, and is reported to the caller as 503, never as the code itself.
func classify(service string, err error, timeout string) *callError {
	errType := natsotel.ErrorType(err)
	var se *natsotel.ServiceError
	errors.As(err, &se)
	switch {
	case se != nil && len(errType) == 3 && errType[0] == '4':
		return &callError{outcome: refused, code: errType, desc: se.Description, err: err}
	case se != nil && len(errType) == 3 && errType[0] == '5':
		return &callError{outcome: unknown, code: contracts.CodeUnavailable, desc: fmt.Sprintf("%s failed: %s", service, se.Description), err: err}
	case se != nil:
		// Not an HTTP-like code: nothing says the change did not happen.
		return &callError{outcome: unknown, code: contracts.CodeUnavailable, desc: fmt.Sprintf("%s failed with an unexpected error code: %s", service, se.Description), err: err}
	case errType == "no_responders":
		return &callError{outcome: refused, code: contracts.CodeUnavailable, desc: service + " unavailable: no responders", err: err}
	case errType == "timeout":
		return &callError{outcome: unknown, code: contracts.CodeUnavailable, desc: fmt.Sprintf("%s did not answer within %s", service, timeout), err: err}
	default:
		return &callError{outcome: unknown, code: contracts.CodeUnavailable, desc: service + " unavailable", err: err}
	}
}
