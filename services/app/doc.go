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
//		app.Main(contracts.BillingService, billing.Version, func(ctx context.Context, c *natsotel.Conn, log *slog.Logger) (app.Stopper, error) {
//			return billing.Start(ctx, c, log, billing.Config{})
//		})
//	}
package app
