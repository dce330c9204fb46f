package natsotel

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
)

// ServiceError is a micro error reply (Nats-Service-Error-Code / Nats-Service-Error headers).
// Conn.Request and Conn.RequestMsg return it (use errors.As) together with the reply message.
type ServiceError struct {
	// Code is the Nats-Service-Error-Code header as micro's Request.Error got it: "400",
	// "409", "500", ... (micro codes are strings; ErrorType maps them to error.type).
	Code        string
	Description string // Nats-Service-Error
	Subject     string // the request subject
	Data        []byte // reply body, if any
}

func (e *ServiceError) Error() string {
	return "nats micro error " + e.Code + " on " + e.Subject + ": " + e.Description
}

// serviceErrorFrom returns the *ServiceError a reply carries, or nil.
func serviceErrorFrom(subject string, reply *nats.Msg) *ServiceError {
	if reply == nil || len(reply.Header) == 0 {
		return nil
	}
	code := headerGet(reply.Header, micro.ErrorCodeHeader)
	desc := headerGet(reply.Header, micro.ErrorHeader)
	if code == "" && desc == "" {
		return nil
	}
	return &ServiceError{Code: code, Description: desc, Subject: subject, Data: reply.Data}
}

// errorTypeOfCode keeps error.type low-cardinality: a micro code is used as is when it is a
// short number (HTTP-like codes), anything else becomes _OTHER.
func errorTypeOfCode(code string) string {
	if n := len(code); n == 0 || n > 4 {
		return errTypeOther
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return errTypeOther
		}
	}
	return code
}

// ErrorType classifies err the way natsotel's spans and metrics do (error.type): "" for
// nil; the micro code of a *ServiceError ("400", "409", "500", ...; _OTHER unless a short
// number); no_responders, timeout, canceled, max_payload, key_exists, revision_mismatch,
// panic (a *PanicError); _OTHER for anything else. The values are few and fixed, fit for
// metric labels and log fields, so that callers (a load generator's outcome, a service
// mapping a downstream failure) speak the same vocabulary as the telemetry.
func ErrorType(err error) string {
	var se *ServiceError
	var pe *PanicError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &se):
		return errorTypeOfCode(se.Code)
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrNoStreamResponse):
		// jetstream reports a publish no stream listens to as ErrNoStreamResponse, which
		// does not wrap nats.ErrNoResponders.
		return errTypeNoResponders
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return errTypeTimeout
	case errors.Is(err, context.Canceled):
		return errTypeCanceled
	case errors.Is(err, nats.ErrMaxPayload):
		return errTypeMaxPayload
	case errors.Is(err, jetstream.ErrKeyRevisionMismatch):
		return errTypeRevisionMismatch
	case errors.Is(err, jetstream.ErrKeyExists):
		return errTypeKeyExists
	case errors.As(err, &pe):
		return errTypePanic
	default:
		return errTypeOther
	}
}

// OpError is the error natsotel returns when a NATS operation fails: it names the operation
// and subject and wraps the nats.go or context error, so errors.Is(err, nats.ErrNoResponders),
// errors.Is(err, context.DeadlineExceeded) and so on keep working. A timeout matches both
// nats.ErrTimeout and context.DeadlineExceeded, whichever nats.go returned.
type OpError struct {
	Op      string // the span's operation: "request", "send", "receive", ...
	Subject string
	Detail  string // extra explanation, e.g. for max_payload
	Err     error
}

func (e *OpError) Error() string {
	if e.Detail != "" {
		return "natsotel: " + e.Op + " " + e.Subject + ": " + e.Detail + ": " + e.Err.Error()
	}
	return "natsotel: " + e.Op + " " + e.Subject + ": " + e.Err.Error()
}

func (e *OpError) Unwrap() error { return e.Err }

// Is makes a timeout match both spellings.
func (e *OpError) Is(target error) bool {
	switch target {
	case nats.ErrTimeout:
		return errors.Is(e.Err, context.DeadlineExceeded)
	case context.DeadlineExceeded:
		return errors.Is(e.Err, nats.ErrTimeout)
	}
	return false
}

// wrapOpError wraps err, returned by nc when sending m, in an *OpError; a max_payload error
// says how many of the bytes were headers (trace context included).
func wrapOpError(nc *nats.Conn, op string, m *nats.Msg, err error) error {
	if err == nil {
		return nil
	}
	var se *ServiceError
	if errors.As(err, &se) {
		return err
	}
	e := &OpError{Op: op, Subject: m.Subject, Err: err}
	if errors.Is(err, nats.ErrMaxPayload) {
		hdrLen, dataLen := headerSize(m.Header), len(m.Data)
		e.Detail = fmt.Sprintf("message of %d bytes (%d header, %d data) exceeds the server max_payload of %d bytes",
			hdrLen+dataLen, hdrLen, dataLen, nc.MaxPayload())
	}
	return e
}
