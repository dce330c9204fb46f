// Command billing runs the billing service. Configuration: NATS_URL, NATS_CREDS or
// NATS_USER/NATS_PASSWORD, NATS_INBOX_PREFIX (default _INBOX_<NATS_USER>; see app.Connect),
// LOG_LEVEL and the standard OTEL_* variables (see package telemetry). Stop it with SIGINT
// or SIGTERM.
package main

import (
	"context"
	"log/slog"

	"github.com/natsotel/reference/services/app"
	"github.com/natsotel/reference/services/billing"
	"github.com/natsotel/reference/services/contracts"
)

func main() {
	app.Main(contracts.BillingService, billing.Version, func(ctx context.Context, c app.Conns, log *slog.Logger) (app.Stopper, error) {
		return billing.Start(ctx, c.Conn, log, billing.Config{Responder: c.Responder})
	})
}
