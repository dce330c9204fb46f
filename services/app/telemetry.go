package app

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/natsotel/reference/services/telemetry"
)

// StartTelemetry sets up the telemetry of a binary from its environment (LOG_LEVEL read
// through getenv; OTEL_* and PYROSCOPE_* read from the process environment by the SDK,
// the exporters and the profiler) and returns it with a flush function to defer: flush
// shuts telemetry down within timeout and reports a backend that is away on stderr
// without failing, because that is not the binary's failure. Run uses it; so do the load generator and the probe.
func StartTelemetry(ctx context.Context, name, version string, getenv func(string) string, stderr io.Writer, timeout time.Duration) (*telemetry.Telemetry, func(), error) {
	if stderr == nil {
		stderr = os.Stderr
	}
	level, err := parseLevel(getenv("LOG_LEVEL"))
	if err != nil {
		return nil, nil, err
	}
	tel, err := telemetry.New(ctx, telemetry.Config{
		ServiceName:    name,
		ServiceVersion: version,
		Stderr:         stderr,
		LogLevel:       level,
		Profile:        true, // one service per process: its CPU profile, if PYROSCOPE_SERVER_ADDRESS is set
	})
	if err != nil {
		return nil, nil, err
	}
	flush := func() {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		if err := tel.Shutdown(fctx); err != nil {
			fmt.Fprintf(stderr, "%s: flushing telemetry: %v\n", name, err)
		}
	}
	return tel, flush, nil
}
