package load

import (
	"context"
	"errors"
	"strconv"

	"github.com/nats-io/nats.go"

	"github.com/natsotel/reference/natsotel"
)

// Outcomes besides micro error codes ("400", "402", "409", ...).
const (
	OutcomeOK           = "ok"
	OutcomeTimeout      = "timeout"
	OutcomeNoResponders = "no_responders"
	OutcomeCanceled     = "canceled"
	OutcomeError        = "error"
)

// isCode keeps the outcome attribute low-cardinality: only short numeric codes pass.
func isCode(s string) bool {
	if len(s) == 0 || len(s) > 4 {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Outcome classifies the error of a request: "ok" for nil, the micro error code of a
// *natsotel.ServiceError (short numeric codes only; anything else is "error"), else timeout, no_responders, canceled or error. These are the
// values of the loadgen.outcome attribute.
func Outcome(err error) string {
	var se *natsotel.ServiceError
	switch {
	case err == nil:
		return OutcomeOK
	case errors.As(err, &se):
		if isCode(se.CodeText) {
			return se.CodeText
		}
		if se.Code > 0 && se.Code < 10_000 {
			return strconv.Itoa(se.Code)
		}
		return OutcomeError
	case errors.Is(err, nats.ErrNoResponders):
		return OutcomeNoResponders
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return OutcomeTimeout
	case errors.Is(err, context.Canceled):
		return OutcomeCanceled
	default:
		return OutcomeError
	}
}
