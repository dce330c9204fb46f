package contracts

import "time"

// Line is one product and quantity in an order.
type Line struct {
	SKU string `json:"sku"`
	Qty int    `json:"qty"`
}

// CreateOrderRequest is the body of SubjectOrderCreate.
type CreateOrderRequest struct {
	CustomerID string `json:"customer_id"`
	Lines      []Line `json:"lines"`
	// Card is a test card number (see billing's decline rules). It never appears in
	// telemetry or logs; only its last four digits are kept on the payment.
	Card string `json:"card"`
	// IdempotencyKey, optional, makes retries safe: every create with the same key gets
	// the same order (its current state), created, reserved and charged at most once,
	// whichever order replica answers and across restarts. A key is 1 to 64 letters,
	// digits, '-' or '_' (a UUID fits), chosen by the client per order it means to place;
	// reusing it for a different customer or lines is refused with 409. It is a field
	// rather than a header (like JetStream's Nats-Msg-Id) because it is part of what the
	// request means: it is in the typed contract, validated with the rest, and kept by
	// anything that forwards the body, and unlike Nats-Msg-Id it never expires.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
}

// OrderStatus is the final or current state of an order.
type OrderStatus string

const (
	OrderPending   OrderStatus = "pending"
	OrderConfirmed OrderStatus = "confirmed"
	OrderFailed    OrderStatus = "failed"
)

// Order is the reply of SubjectOrderCreate and SubjectOrderGet, and the value stored in
// BucketOrders.
type Order struct {
	ID          string      `json:"id"`
	CustomerID  string      `json:"customer_id"`
	Lines       []Line      `json:"lines"`
	AmountCents int64       `json:"amount_cents"`
	Status      OrderStatus `json:"status"`
	// Reason is set when Status is failed: the micro error code and description of the
	// step that failed (e.g. "409 out of stock: sku-3").
	Reason    string    `json:"reason,omitempty"`
	PaymentID string    `json:"payment_id,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// GetOrderRequest is the body of SubjectOrderGet.
type GetOrderRequest struct {
	ID string `json:"id"`
}

// ReserveRequest is the body of SubjectInventoryReserve: all lines or nothing.
type ReserveRequest struct {
	OrderID string `json:"order_id"`
	Lines   []Line `json:"lines"`
}

// ReservationState is the lifecycle of a reservation.
type ReservationState string

const (
	ReservationHeld      ReservationState = "held"
	ReservationReleased  ReservationState = "released"
	ReservationCommitted ReservationState = "committed"
)

// Reservation is the reply of reserve, release and commit, and the value stored in
// BucketReservations.
type Reservation struct {
	OrderID string           `json:"order_id"`
	Lines   []Line           `json:"lines"`
	State   ReservationState `json:"state"`
}

// OrderRef is the body of SubjectInventoryRelease, SubjectInventoryCommit,
// SubjectBillingRefund and SubjectBillingPayment.
type OrderRef struct {
	OrderID string `json:"order_id"`
}

// StockRequest is the body of SubjectInventoryStock.
type StockRequest struct {
	SKU string `json:"sku"`
}

// Stock is the reply of SubjectInventoryStock.
type Stock struct {
	SKU       string `json:"sku"`
	Available int    `json:"available"`
}

// ChargeRequest is the body of SubjectBillingCharge. Charges are idempotent per OrderID.
type ChargeRequest struct {
	OrderID     string `json:"order_id"`
	AmountCents int64  `json:"amount_cents"`
	Card        string `json:"card"`
}

// PaymentStatus is the state of a payment.
type PaymentStatus string

const (
	PaymentCaptured PaymentStatus = "captured"
	PaymentRefunded PaymentStatus = "refunded"
	// PaymentVoided: a refund arrived for an order that had no payment (its charge timed
	// out at the caller, who compensated). Nothing was charged, and a charge arriving
	// later for that order is refused with CodeConflict.
	PaymentVoided PaymentStatus = "voided"
)

// Payment is the reply of charge, refund and payment, and the value stored in
// BucketPayments.
type Payment struct {
	ID          string        `json:"id"`
	OrderID     string        `json:"order_id"`
	AmountCents int64         `json:"amount_cents"`
	CardLast4   string        `json:"card_last4"`
	Status      PaymentStatus `json:"status"`
	CreatedAt   time.Time     `json:"created_at"`
}

// OrderEvent is published to OrderEventsStream when an order reaches a final state.
type OrderEvent struct {
	OrderID string      `json:"order_id"`
	Status  OrderStatus `json:"status"`
	Lines   []Line      `json:"lines"`
}
