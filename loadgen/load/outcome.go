package load

import "github.com/natsotel/reference/natsotel"

// Outcomes: "ok", or natsotel's error.type of the failure (natsotel.ErrorType): a micro
// code ("400", "402", "409", ...) or one of the values below.
const (
	OutcomeOK           = "ok"
	OutcomeTimeout      = "timeout"
	OutcomeNoResponders = "no_responders"
	OutcomeCanceled     = "canceled"
	OutcomeError        = "_OTHER" // anything else
)

// Outcome classifies the error of a request for the loadgen.outcome attribute: "ok" for
// nil, else natsotel.ErrorType(err), the error.type natsotel's spans and metrics carry for
// the same failure.
func Outcome(err error) string {
	if err == nil {
		return OutcomeOK
	}
	return natsotel.ErrorType(err)
}
