package telemetry_test

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/natsotel/reference/services/telemetry"
)

// A service builds its telemetry once, hands the providers to natsotel, logs with the
// request context, and shuts down with a deadline.
func Example() {
	ctx := context.Background()
	tel, err := telemetry.New(ctx, telemetry.Config{
		ServiceName:    "inventory",
		ServiceVersion: "1.0.0",
		// Exporters, sampler and resource attributes come from the OTEL_* environment.
		Stderr: io.Discard,
	})
	if err != nil {
		panic(err)
	}
	_ = tel.NATSOptions() // natsotel.Wrap(nc, tel.NATSOptions()...)

	ctx, span := tel.TracerProvider.Tracer("example").Start(ctx, "work")
	tel.Logger.InfoContext(ctx, "reserved", "order_id", "ord-1") // carries trace_id/span_id
	span.End()

	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fmt.Println(tel.Shutdown(sctx))
	// Output: <nil>
}
