package app

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/natsotel/reference/services/telemetry"
)

// StartClient starts what a binary other than a service needs (the load generator, the
// probe, the hop bridge), the way Run does for a service: telemetry from the environment
// (see StartTelemetry), then a NATS connection as name (see Connect). stop closes the
// connection, then flushes telemetry. A failure is reported, on stderr or in the log,
// before StartClient returns it: the caller only exits 1.
func StartClient(ctx context.Context, name, version string, getenv func(string) string, stderr io.Writer) (tel *telemetry.Telemetry, nc *nats.Conn, stop func(), err error) {
	tel, flush, err := StartTelemetry(ctx, name, version, getenv, stderr, 5*time.Second)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return nil, nil, nil, err
	}
	nc, err = Connect(ctx, name, getenv, tel.Logger)
	if err != nil {
		tel.Logger.Error("cannot connect to NATS", "error", err)
		flush()
		return nil, nil, nil, err
	}
	return tel, nc, func() { nc.Close(); flush() }, nil
}
