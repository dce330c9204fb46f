// Package billing is the payment service: one payment record per order in the KeyValue
// bucket contracts.BucketPayments, holding only the card's last four digits.
//
// # Endpoints (micro service "billing")
//
//	subject           request                    reply                  errors
//	billing.charge    contracts.ChargeRequest    contracts.Payment      400 invalid request or card, 402 declined, 409, 413, 503
//	billing.refund    contracts.OrderRef         contracts.Payment      400, 413, 503
//	billing.payment   contracts.OrderRef         contracts.Payment      400, 404 no payment, 413, 503
//	billing.control   contracts.FaultConfig      contracts.FaultConfig  400, 413 (decline_share, drop_share)
//
// # Decline rules (deterministic)
//
//	card not 12-19 digits or failing the Luhn check    400
//	card contracts.CardDeclined                        402 "card declined"
//	amount over contracts.ChargeLimitCents             402 "amount over the limit of 100000 cents"
//	decline fault (decline_share)                      402 "card declined (injected fault)"
//
// # Charged once
//
// A charge stores its payment with a create-if-absent under the order id. A retried or
// concurrent charge for the same order (any replica) finds the record and returns the same
// payment: the customer is never charged twice. A charge for an order already charged a
// different amount is 409.
//
// A refund moves a captured payment to refunded (idempotent). A refund for an order that
// has no payment stores a voided record: the caller timed out on its charge and
// compensated, and a charge that arrives late must not capture. Charging a refunded or
// voided order is 409.
//
// The card number never leaves the request: it is not stored (last four digits only), not
// logged, not in a span attribute or an error description.
package billing
