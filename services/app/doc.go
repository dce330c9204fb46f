// Package app is what the service binaries share: Connect (a NATS connection that
// reconnects forever and logs its state changes) and Run/Main, which wire telemetry, the
// connection, natsotel and a service together and shut them down in order on SIGINT or
// SIGTERM:
//
//  1. the service stops taking requests and finishes those in flight (Stopper.Stop);
//  2. the connection drains, flushing pending replies and publishes;
//  3. telemetry is flushed (bounded: a dead backend delays exit by at most FlushTimeout).
//
// A main is then three lines:
//
//	func main() {
//		app.Main(contracts.BillingService, billing.Version, func(ctx context.Context, c app.Conns, log *slog.Logger) (app.Stopper, error) {
//			return billing.Start(ctx, c.Conn, log, billing.Config{Responder: c.Responder})
//		})
//	}
//
// # Inboxes and least privilege
//
// Connect gives every connection a per-user inbox prefix (InboxPrefix): with NATS_USER=order
// its reply subjects are "_INBOX_order.<random>" instead of "_INBOX.<random>". nats.go uses
// the prefix for request replies, micro requests, JetStream API and KeyValue replies,
// pull-consumer deliveries and publish acks, so the server can allow user "order" to
// subscribe to "_INBOX_order.>" only, and a compromised service cannot read replies meant
// for another (deploy/nats/nats.conf does this). NATS_INBOX_PREFIX sets the prefix
// explicitly (for .creds users, or a naming of your own); without NATS_USER or
// NATS_INBOX_PREFIX the prefix stays nats.go's "_INBOX", so an unauthenticated server,
// `make demo` and the tests need nothing.
//
// # Two identities per service
//
// A reply goes wherever the caller's reply subject says, with the rights of the connection
// that answers. So Run serves the endpoints on a second connection when
// NATS_RESPONDER_USER (or NATS_RESPONDER_CREDS) is set (ConnectResponder, Conns): a user
// that may only receive the service's requests and publish into its callers' inboxes,
// while the service's own user, which writes its buckets and events, serves nothing. No
// reply subject can then turn a service into a confused deputy, not even on the
// discovery requests NATS micro answers itself ($SRV.PING, INFO, STATS).
package app
