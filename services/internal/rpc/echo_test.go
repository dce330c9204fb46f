package rpc

import (
	"strings"
	"testing"

	"github.com/natsotel/reference/services/contracts"
)

func TestEcho(t *testing.T) {
	for in, want := range map[string]string{
		"sku-42":                  `"sku-42"`,
		"lines.qty":               `"lines.qty"`,
		"discount":                `"discount"`,
		"order_id":                `"order_id"`,
		"":                        notShown,
		"4242424242424242":        notShown, // a card number
		"4242-4242-4242-4242":     notShown, // with separators
		"4242 4242 4242 4242":     notShown,
		"card4242424242424242x":   notShown,
		"sku-12345678901":         `"sku-12345678901"`, // 11 digits
		"a\r\nb":                  notShown,
		"é":                       notShown,
		strings.Repeat("a", 33):   notShown,
		strings.Repeat("a", 32):   `"` + strings.Repeat("a", 32) + `"`,
		`x"y`:                     notShown,
		"Nats-Service-Error-Code": `"Nats-Service-Error-Code"`,
	} {
		if got := Echo(in); got != want {
			t.Errorf("Echo(%q) = %s, want %s", in, got, want)
		}
	}
}

// A card number sent where a name or SKU is expected is never quoted back.
func TestNoCardInDescriptions(t *testing.T) {
	const card = "4242424242424242"
	for _, body := range []string{
		`{"` + card + `":1}`,
		`{"4242 4242 4242 4242":1}`,
		`{"name":"a","4242-4242-4242-4242":true}`,
	} {
		_, err := Decode[sample]([]byte(body))
		if err == nil || err.Code != contracts.CodeBadRequest || !strings.Contains(err.Description, "unknown field (value not shown)") {
			t.Errorf("%s: %v", body, err)
			continue
		}
		if digits(err.Description) >= 12 {
			t.Errorf("%s: description %q quotes the card", body, err.Description)
		}
	}
	for _, sku := range []string{card, "4242 4242 4242 4242", "4242-4242-4242-4242"} {
		err := CheckLines([]contracts.Line{{SKU: "sku-1", Qty: 1}, {SKU: sku, Qty: 1}})
		if err == nil || err.Description != "lines[1].sku: unknown sku (value not shown)" {
			t.Errorf("sku %q: %v", sku, err)
		}
	}
	if err := CheckLines([]contracts.Line{{SKU: "sku-42", Qty: 1}}); err == nil || err.Description != `lines[0].sku: unknown sku "sku-42"` {
		t.Errorf("a harmless unknown sku is no longer named: %v", err)
	}
}

func digits(s string) int {
	n := 0
	for _, r := range s {
		if r >= '0' && r <= '9' {
			n++
		}
	}
	return n
}

func TestMaskDigits(t *testing.T) {
	for in, want := range map[string]string{
		"ord-1":                       "ord-1",
		"ord-3f2a9c0b1d":              "ord-3f2a9c0b1d",
		"4000056655665556":            "[masked]",
		"4000056655665556x":           "[masked]x",
		"card-4000-0566-5566-5556-ok": "card[masked]ok",
		"a1234567890b12345678901c":    "a1234567890b12345678901c", // 10 and 11 digits
		"ord-123456789012abc":         "ord[masked]abc",
	} {
		if got := MaskDigits(in); got != want {
			t.Errorf("MaskDigits(%q) = %q, want %q", in, got, want)
		}
	}
}
