// Command inventory runs the inventory service. Configuration: NATS_URL, NATS_CREDS or
// NATS_USER/NATS_PASSWORD, NATS_INBOX_PREFIX (default _INBOX_<NATS_USER>; see app.Connect),
// LOG_LEVEL and the standard OTEL_* variables (see package telemetry). Stop it with SIGINT
// or SIGTERM.
package main

import (
	"context"
	"log/slog"

	"github.com/natsotel/reference/services/app"
	"github.com/natsotel/reference/services/contracts"
	"github.com/natsotel/reference/services/inventory"
)

func main() {
	app.Main(contracts.InventoryService, inventory.Version, func(ctx context.Context, c app.Conns, log *slog.Logger) (app.Stopper, error) {
		return inventory.Start(ctx, c.Conn, log, inventory.Config{Responder: c.Responder})
	})
}
