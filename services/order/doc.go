// Package order is the order service: it validates an order, reserves its stock, charges
// it, and ends it confirmed or failed, compensating what was done; orders live in the
// KeyValue bucket contracts.BucketOrders and each outcome is published to the JetStream
// stream contracts.OrderEventsStream.
//
// # Endpoints (micro service "order")
//
//	subject         request                          reply              errors
//	order.create    contracts.CreateOrderRequest     contracts.Order    400, 402 declined, 409 out of stock, 413, 503
//	order.get       contracts.GetOrderRequest        contracts.Order    400, 404, 413, 503
//	order.control   contracts.FaultConfig            contracts.FaultConfig  400, 413 (drop_share)
//
// Every create that got as far as storing the order (all but 400/413 and a 503 "order
// store unavailable") names the order id in the error description and carries the order
// (status failed, with Reason) as the error reply's body.
//
// Validation (400 before any state changes): customer_id 1-64 characters of [A-Za-z0-9_-];
// 1 to contracts.MaxLines lines, each a catalog SKU, quantity 1 to contracts.MaxQty, no SKU
// twice; a card of 12-19 digits passing the Luhn check. Bodies over
// contracts.MaxRequestBytes are refused (413) before decoding; malformed JSON, unknown
// fields, trailing data and invalid UTF-8 are 400 "invalid JSON: ...".
//
// # The invariant
//
// Every order ends confirmed (its stock taken once, its amount charged once) or failed
// (its stock returned, nothing charged). The create path:
//
//  1. store the order pending (create-if-absent under a fresh id);
//  2. reserve (inventory.reserve, Config.RequestTimeout). Refused (409 out of stock, or no
//     responders: nobody received it) -> nothing to undo. Outcome unknown (timeout, 5xx)
//     -> release, which also blocks a late reserve;
//  3. charge (billing.charge). Declined or refused -> release. Outcome unknown -> retry the
//     charge once (it is idempotent per order, so a captured first attempt is simply
//     returned). If any attempt's outcome was unknown and the order fails (the retry
//     timed out too, or was declined or found no responders: the first capture's reply
//     may just have been lost) -> refund, which voids the order's payment if none was
//     captured so that a late charge cannot capture, and release;
//  4. decide: a compare-and-set on the pending record's revision stores confirmed or
//     failed. The decision is made once; if the write's acknowledgement is lost, the
//     record is read back and whatever it says is adopted. Compensation only runs after a
//     stored failure, never for a confirmed order. A failure is stored together with the
//     compensation it owes (refund, release), a confirmation with its event owed; what is
//     owed is cleared (one more compare-and-set) once done, so a crash in between loses
//     nothing;
//  5. compensate (failed): refund and release, each attempted whatever happened to the
//     other (billing down must not keep the stock held);
//  6. publish the outcome event (Nats-Msg-Id = order id + ":" + status, so retries are
//     stored once). Inventory commits confirmed reservations and releases failed ones
//     from it, which also guarantees the release when the synchronous one did not get
//     through.
//
// A step that cannot complete during the request (billing silent during the refund, the
// stream unavailable) is retried in the background every Config.RetryInterval until it
// succeeds, for up to Config.MaxUnresolved orders at a time; the reply is then 503 with
// the order (failed, or pending if even the decision could not be stored).
//
// # Reconciliation
//
// What memory cannot hold is in the orders bucket: an order still pending long after its
// creation (the process died mid-create, with its reservation held and maybe its payment
// captured), a failed order whose compensation is still recorded as outstanding, or a
// confirmed order whose event is (without it inventory never commits the reservation:
// the stock stays held, taken but not committed). ReconcileAll fails the first
// (refunding and releasing) and finishes the others, once they are older than
// Config.AbandonAfter. The service runs it every
// Config.ReconcileInterval (30s), so a restarted instance, or another replica, repairs
// what a crash left. After its first pass, which reads every order once, a pass only
// reads the bucket's revisions written since the previous one.
//
// # Stopping
//
// Stop refuses new work at once (requests still queued are answered 503 "service is
// stopping"), waits until every request received has been handled, makes a last attempt
// at the orders it was retrying, and logs how many remain: reconciliation repairs them
// (see above for the one case it does not).
//
// Requests to inventory and billing go through natsotel (CLIENT spans, trace context
// propagated), each bounded by Config.RequestTimeout (default 2s).
//
// A micro endpoint handles one request at a time per instance (nats.go delivers a
// subscription's messages in order): scale with replicas, which share the queue group.
package order
