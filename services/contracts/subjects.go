package contracts

// Micro service names, as listed by `nats micro ls`.
const (
	OrderService     = "order"
	InventoryService = "inventory"
	BillingService   = "billing"
)

// Endpoint subjects. Every service owns the subject tree under its name ("order.>",
// "inventory.>", "billing.>"), which is what the per-service NATS users are allowed to
// subscribe to.
const (
	SubjectOrderCreate = "order.create"
	SubjectOrderGet    = "order.get"

	SubjectInventoryReserve = "inventory.reserve"
	SubjectInventoryRelease = "inventory.release"
	SubjectInventoryCommit  = "inventory.commit"
	SubjectInventoryStock   = "inventory.stock"

	SubjectBillingCharge  = "billing.charge"
	SubjectBillingRefund  = "billing.refund"
	SubjectBillingPayment = "billing.payment"
)

// ControlSubject is the runtime fault-injection endpoint of a service ("order.control",
// ...). See FaultConfig.
func ControlSubject(service string) string { return service + ".control" }

// JetStream stream and consumer for order events.
const (
	// OrderEventsStream holds every order outcome event.
	OrderEventsStream = "ORDER_EVENTS"
	// OrderEventsSubjects is the stream's subject filter.
	OrderEventsSubjects = "events.order.>"
	// SubjectOrderConfirmed is published when an order is confirmed (stock reserved,
	// payment captured). Inventory consumes it to commit the reservation.
	SubjectOrderConfirmed = "events.order.confirmed"
	// SubjectOrderFailed is published when an order failed and was compensated.
	SubjectOrderFailed = "events.order.failed"
	// InventoryCommitConsumer is inventory's durable consumer on OrderEventsStream.
	InventoryCommitConsumer = "inventory-commit"
)

// KeyValue buckets. Each appears as a database node in the service graph.
//
// BucketOrders holds the orders under their ids (one subject token: "ord-..."), and the
// order service's idempotency records under "idem.<key>" (two tokens): read the orders
// alone with the key filter OrderKeys.
const (
	BucketStock        = "stock"        // inventory: SKU -> available units
	BucketReservations = "reservations" // inventory: order id -> reserved lines and state
	BucketOrders       = "orders"       // order: order id -> Order (and "idem.<key>" -> idempotency record)
	BucketPayments     = "payments"     // billing: order id -> Payment
)

// OrderKeys is the KeyValue key filter of the orders in BucketOrders.
const OrderKeys = "*"
