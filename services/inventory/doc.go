// Package inventory is the stock service: units per SKU in the KeyValue bucket
// contracts.BucketStock, reservations per order in contracts.BucketReservations.
//
// # Endpoints (micro service "inventory")
//
//	subject              request                    reply                  errors
//	inventory.reserve    contracts.ReserveRequest   contracts.Reservation  400 invalid / unknown SKU, 409 out of stock, 413, 503
//	inventory.release    contracts.OrderRef         contracts.Reservation  400, 409 already committed, 413, 503
//	inventory.commit     contracts.OrderRef         contracts.Reservation  400, 404 no reservation, 409 not held / released, 413, 503
//	inventory.stock      contracts.StockRequest     contracts.Stock        400, 404 unknown SKU, 413, 503
//	inventory.control    contracts.FaultConfig      contracts.FaultConfig  400, 413 (delay_*, nak_share, drop_share)
//
// An unknown SKU in a reservation is a malformed request (400: the catalog is part of the
// contract); asking the stock of an unknown SKU is a lookup that found nothing (404).
// Lines are validated like an order's: 1 to contracts.MaxLines lines, quantities 1 to
// contracts.MaxQty, no SKU twice. The reply lists the lines sorted by SKU.
//
// # Never overselling, with several replicas
//
// A SKU's record holds the units still Available and, per order, the units it Holds.
// Every change is a compare-and-set on the key's revision (KeyValue Update with the last
// revision read); a writer that lost the race reads again and retries after a jittered
// backoff (Config.MaxAttempts, then 503 "stock is busy"). Taking units is
// "Available -= q; Held[order] = q" in one write, and only if the order holds nothing of
// that SKU yet, so a retried or concurrent attempt for the same order cannot take twice.
//
// # All or nothing across lines
//
// A reservation touches several keys, and KeyValue has no multi-key transaction. The
// order's record in the reservations bucket is the serialisation point:
//
//  1. claim: Create the record in state "reserving" with the lines (create-if-absent). An
//     existing record answers a retry: held or committed -> the same reservation (nothing
//     taken again); released -> 409; reserving -> carry on alongside the first attempt.
//  2. take the lines one by one (sorted by SKU), each its own compare-and-set.
//  3. a short line: first move the record to "released" (compare-and-set), then give back
//     what the order holds of every line. If another attempt marked it held meanwhile, its
//     result stands.
//  4. all taken: move the record "reserving" -> "held". If it was released meanwhile (the
//     caller timed out and released), give everything back and answer 409.
//
// Units are only ever returned after the record says released, and only ever taken while
// it says reserving; both steps are idempotent per order. Release of an order with no
// record stores a released record without lines, so a reserve that arrives after the
// caller gave up cannot take stock. Commit moves held -> committed, then drops the holds
// (the units were already taken at reserve).
//
// Limits: a process that dies between two writes can leave units held for an order that
// is released or committed, or a record stuck in "reserving". Nothing is oversold (held
// units are unavailable), but they are not returned until repaired: any later release of
// the order does it, and Sweep (every Config.SweepInterval) finds such holds and finishes
// the job; a record "reserving" for longer than Config.StaleAfter is released. The stock
// record grows with the number of orders holding a SKU at once (reserved, not yet
// committed or released).
//
// # Order events
//
// A durable pull consumer, contracts.InventoryCommitConsumer on contracts.OrderEventsStream
// (created with the same configuration as order's when missing), shared by all replicas,
// applies each event in a natsotel CONSUMER span: confirmed -> commit, failed -> release,
// both idempotent. Ack after the change is stored; Nak with Config.NakDelay when the store
// did not answer (at most Config.MaxDeliver deliveries); Term, with an error log, for a
// message that cannot be decoded or contradicts the reservation. The loops ask the server
// for a heartbeat every 2 s, so a pull request lost on the way is sent again within 4 s.
//
// # Failure scenarios (control endpoint)
//
// delay_share / delay / delay_jitter add latency to reservations; nak_share fails that
// share of event deliveries (never the last allowed one, so no event is lost); drop_share
// leaves requests unanswered. The control endpoint has no queue group: every replica
// applies the change (`nats req inventory.control '{"nak_share":0.2}'` answers with the
// first replica's configuration).
package inventory
