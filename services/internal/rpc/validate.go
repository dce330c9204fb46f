package rpc

import (
	"strings"

	"github.com/natsotel/reference/services/contracts"
)

// MaxIDLength bounds identifiers (order ids, customer ids).
const MaxIDLength = 64

// CheckID validates an identifier that is also used as a KeyValue key: 1 to MaxIDLength
// characters of A-Z, a-z, 0-9, '-' and '_'. The description names the field, never the
// value.
func CheckID(field, v string) *Error {
	if v == "" {
		return BadRequest("%s is required", field)
	}
	if len(v) > MaxIDLength {
		return BadRequest("%s is longer than %d characters", field, MaxIDLength)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return BadRequest("%s may only hold letters, digits, '-' and '_'", field)
		}
	}
	return nil
}

// CheckLines validates the lines of an order or reservation: 1 to contracts.MaxLines
// lines, each a catalog SKU (unknown -> 400) with 1 to contracts.MaxQty units, no SKU twice.
func CheckLines(lines []contracts.Line) *Error {
	if len(lines) == 0 {
		return BadRequest("lines: at least one line is required")
	}
	if len(lines) > contracts.MaxLines {
		return BadRequest("lines: %d lines, the limit is %d", len(lines), contracts.MaxLines)
	}
	seen := make(map[string]bool, len(lines))
	for i, l := range lines {
		if l.SKU == "" {
			return BadRequest("lines[%d].sku is required", i)
		}
		if _, ok := contracts.FindProduct(l.SKU); !ok {
			return BadRequest("lines[%d].sku: unknown sku %s", i, Echo(l.SKU))
		}
		if seen[l.SKU] {
			return BadRequest("lines[%d].sku: %s appears twice; use one line per sku", i, l.SKU)
		}
		seen[l.SKU] = true
		if l.Qty <= 0 {
			return BadRequest("lines[%d].qty must be at least 1", i)
		}
		if l.Qty > contracts.MaxQty {
			return BadRequest("lines[%d].qty must be at most %d", i, contracts.MaxQty)
		}
	}
	return nil
}

// Echo returns s quoted, for a description, when it looks like an identifier: at most
// 32 characters of A-Z, a-z, 0-9, '.', '_' and '-', holding fewer than 12 digits. Anything
// else is replaced by "(value not shown)". A description travels in the reply, the log
// and the span status, so a secret sent in the wrong place (a card number as a SKU or as
// a field name, with or without separators: cards have 12 to 19 digits) must not be
// quoted back.
func Echo(s string) string {
	const maxLen, maxDigits = 32, 11
	if s == "" || len(s) > maxLen {
		return notShown
	}
	digits := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '.', c == '_', c == '-':
		default:
			return notShown
		}
	}
	if digits > maxDigits {
		return notShown
	}
	return `"` + s + `"`
}

const notShown = "(value not shown)"

// MaskDigits returns id (an identifier a caller chose, quoted in a description) with
// every stretch of digits, spaces and '-' holding 12 digits or more replaced by
// "[masked]": an identifier that passed CheckID may still be a card number with dashes.
// Generated order ids ("ord-" and 20 hex digits) rarely hold such a stretch; when they
// do, the description shows less of the id, nothing else.
func MaskDigits(id string) string {
	var b strings.Builder
	for i := 0; i < len(id); {
		j, digits := i, 0
		for j < len(id) && (id[j] >= '0' && id[j] <= '9' || id[j] == '-' || id[j] == ' ') {
			if id[j] >= '0' && id[j] <= '9' {
				digits++
			}
			j++
		}
		switch {
		case j == i:
			b.WriteByte(id[i])
			i++
			continue
		case digits >= 12:
			b.WriteString("[masked]")
		default:
			b.WriteString(id[i:j])
		}
		i = j
	}
	return b.String()
}
