// Package card checks test card numbers. It never formats a number into an error or a
// string other than its last four digits.
package card

import "errors"

// ErrInvalid is returned for a number that is not 12 to 19 digits or fails the Luhn
// check. Its text never contains the number.
var ErrInvalid = errors.New("card number must be 12 to 19 digits and pass the Luhn check")

// Check validates number.
func Check(number string) error {
	if len(number) < 12 || len(number) > 19 {
		return ErrInvalid
	}
	sum := 0
	double := false
	for i := len(number) - 1; i >= 0; i-- {
		c := number[i]
		if c < '0' || c > '9' {
			return ErrInvalid
		}
		d := int(c - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	if sum%10 != 0 {
		return ErrInvalid
	}
	return nil
}

// Last4 returns the last four characters of number (all of it when shorter).
func Last4(number string) string {
	if len(number) <= 4 {
		return number
	}
	return number[len(number)-4:]
}
