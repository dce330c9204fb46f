package rpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/natsotel/reference/services/contracts"
)

// Decode decodes a request body that must hold exactly one JSON object of type T.
//
// Failures, in the order they are checked:
//
//	body over contracts.MaxRequestBytes     413 "request body is N bytes, the limit is M"
//	empty or whitespace-only body           400 "empty request body: want a JSON object"
//	invalid UTF-8                           400 "request body is not valid UTF-8"
//	not an object (array, null, 42, ...)    400 "invalid JSON: want a JSON object"
//	syntax error                            400 "invalid JSON: <what> at byte N"
//	wrong type                              400 "invalid JSON: field "x": want string, got number"
//	number out of range or fractional       400 "invalid JSON: field "x": want an integer in range, got number"
//	unknown field                           400 "invalid JSON: unknown field "x"" (see Echo)
//	anything after the object               400 "invalid JSON: unexpected data after the JSON object"
//
// Field names match case-insensitively and a repeated key keeps its last value
// (encoding/json rules). Descriptions never contain payload values; a field name is
// quoted only when Echo deems it harmless (an identifier without a card-length digit
// run), else it reads "(value not shown)".
func Decode[T any](data []byte) (T, *Error) {
	var v T
	if len(data) > contracts.MaxRequestBytes {
		return v, Errorf(contracts.CodeTooLarge, "request body is %d bytes, the limit is %d", len(data), contracts.MaxRequestBytes)
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return v, BadRequest("empty request body: want a JSON object")
	}
	if !utf8.Valid(data) {
		return v, BadRequest("request body is not valid UTF-8")
	}
	if trimmed[0] != '{' {
		return v, BadRequest("invalid JSON: want a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		var zero T
		return zero, BadRequest("invalid JSON: %s", describeJSONError(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var zero T
		return zero, BadRequest("invalid JSON: unexpected data after the JSON object")
	}
	return v, nil
}

// describeJSONError explains a decoding error without quoting the offending value: only
// its JSON kind and the field name.
func describeJSONError(err error) string {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("%s at byte %d", strings.TrimPrefix(syn.Error(), "json: "), syn.Offset)
	case errors.As(err, &typ):
		// Value is "string", "number 1e30", "bool", ...: keep the kind, never the literal
		// (a card number sent as a JSON number would otherwise be echoed).
		got, _, _ := strings.Cut(typ.Value, " ")
		want := typ.Type.String()
		if strings.HasPrefix(got, "number") && strings.Contains(want, "int") {
			want = "an integer in range"
		}
		if typ.Field == "" {
			return fmt.Sprintf("want %s, got %s", want, got)
		}
		// Field is the path of the Go type's JSON names, not the input's keys; Echo all
		// the same.
		return fmt.Sprintf("field %s: want %s, got %s", Echo(typ.Field), want, got)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "unexpected end of input"
	default:
		msg := err.Error()
		if q, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
			name, uerr := strconv.Unquote(q)
			if uerr != nil {
				return "unknown field " + notShown
			}
			return "unknown field " + Echo(name)
		}
		// Other decoder errors may quote input (",string" fields, TextUnmarshaler errors):
		// say what failed, not the text.
		return "the request does not fit its type"
	}
}
