package card

import (
	"strings"
	"testing"

	"github.com/natsotel/reference/services/contracts"
)

func TestCheck(t *testing.T) {
	for number, ok := range map[string]bool{
		contracts.CardOK:       true,
		contracts.CardDeclined: true, // valid number; declining is billing's rule
		"4111111111111111":     true,
		"378282246310005":      true,
		"4242424242424241":     false, // Luhn
		"42424242424":          false, // too short
		"42424242424242424242": false, // too long
		"4242 4242 4242 4242":  false,
		"":                     false,
		"４２４２４２４２４２４２４２４２": false,
	} {
		if err := Check(number); (err == nil) != ok {
			t.Errorf("Check(%q) = %v, want ok=%v", number, err, ok)
		}
		if err := Check(number); err != nil && strings.Contains(err.Error(), number) && number != "" {
			t.Errorf("error text contains the number")
		}
	}
	if got := Last4(contracts.CardOK); got != "4242" {
		t.Errorf("Last4 = %q", got)
	}
}
