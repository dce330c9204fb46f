package contracts

// Micro error codes, sent in the Nats-Service-Error-Code header. They mirror HTTP status
// codes so they read naturally in Grafana and in `nats req` output.
const (
	CodeBadRequest      = "400" // malformed JSON, missing or invalid fields
	CodePaymentDeclined = "402" // billing declined the card
	CodeNotFound        = "404" // unknown order, payment or SKU lookup
	CodeConflict        = "409" // out of stock, or a reservation in the wrong state
	CodeTooLarge        = "413" // request body over MaxRequestBytes
	CodeInternal        = "500" // a bug or a panic; the handler recovered
	CodeUnavailable     = "503" // a dependency did not answer (no responders, timeout)
)

// MaxRequestBytes is the largest request body any endpoint accepts; larger ones get
// CodeTooLarge before any decoding.
const MaxRequestBytes = 64 * 1024

// MaxLines and MaxQty bound an order so that amounts cannot overflow.
const (
	MaxLines = 50
	MaxQty   = 1000
)
