package rpc

import (
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
			return BadRequest("lines[%d].sku: unknown sku %q", i, Clip(l.SKU))
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

// Clip shortens a client-supplied string quoted in a description.
func Clip(s string) string {
	const n = 32
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !isRuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
