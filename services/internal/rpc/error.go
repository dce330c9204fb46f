package rpc

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/natsotel/reference/services/contracts"
)

// Error is a micro error reply: Code goes to Nats-Service-Error-Code, Description to
// Nats-Service-Error, Data (optional) is the reply body.
type Error struct {
	Code        string
	Description string
	Data        []byte
	// Cause, if set, is logged with the reply but never sent.
	Cause error
}

func (e *Error) Error() string { return e.Code + " " + e.Description }

// Unwrap returns Cause.
func (e *Error) Unwrap() error { return e.Cause }

// Unavailable returns a 503 with description and cause (logged, not sent).
func Unavailable(cause error, format string, args ...any) *Error {
	e := Errorf(contracts.CodeUnavailable, format, args...)
	e.Cause = cause
	return e
}

// Errorf returns an *Error with a formatted description.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Description: fmt.Sprintf(format, args...)}
}

// BadRequest is Errorf(contracts.CodeBadRequest, ...).
func BadRequest(format string, args ...any) *Error {
	return Errorf(contracts.CodeBadRequest, format, args...)
}

// maxDescription bounds a description: it travels as a header.
const maxDescription = 256

// Sanitize makes s safe as a header value: control characters (a JSON key can hold
// "\r\n") become spaces, and it is cut to a bounded length.
func Sanitize(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return ' '
		}
		return r
	}, s)
	if len(s) > maxDescription {
		cut := maxDescription
		for cut > 0 && !isRuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return s
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
