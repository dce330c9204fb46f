package telemetry

import (
	"context"
	"fmt"
	"os"
	"sync"

	otelpyroscope "github.com/grafana/otel-profiling-go"
	"github.com/grafana/pyroscope-go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
)

// profiling reports whether Config.Profile asks for profiles and the environment says
// where to send them.
func profiling(cfg Config) bool {
	return cfg.Profile && os.Getenv("PYROSCOPE_SERVER_ADDRESS") != ""
}

// startProfiling starts pushing the process's CPU profile to Pyroscope as application
// service (Pyroscope's service_name, as Grafana's traces-to-profiles link expects) and
// returns tp wrapped so that the samples taken while a span runs carry its local root
// span's id (pprof labels span_id and span_name; the span gets pyroscope.profile.id).
// Uploads happen in the background and are dropped when Pyroscope is slow or down;
// their errors go to the OpenTelemetry error handler. stop uploads what was sampled
// since the last upload and stops.
func startProfiling(service string, tp trace.TracerProvider) (trace.TracerProvider, func(context.Context) error, error) {
	p, err := pyroscope.Start(pyroscope.Config{
		ApplicationName:   service,
		ServerAddress:     os.Getenv("PYROSCOPE_SERVER_ADDRESS"),
		BasicAuthUser:     os.Getenv("PYROSCOPE_BASIC_AUTH_USER"),
		BasicAuthPassword: os.Getenv("PYROSCOPE_BASIC_AUTH_PASSWORD"),
		TenantID:          os.Getenv("PYROSCOPE_TENANT_ID"),
		ProfileTypes:      []pyroscope.ProfileType{pyroscope.ProfileCPU},
		Logger:            errorHandlerLogger{},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("telemetry: pyroscope: %w", err)
	}
	// Once: a second Flush would wait forever for the stopped session.
	stop := sync.OnceValue(func() error {
		p.Flush(true)
		return p.Stop()
	})
	return otelpyroscope.NewTracerProvider(tp), func(context.Context) error { return stop() }, nil
}

// errorHandlerLogger sends pyroscope's errors (failed uploads) to otel.Handle.
type errorHandlerLogger struct{}

func (errorHandlerLogger) Infof(string, ...any)  {}
func (errorHandlerLogger) Debugf(string, ...any) {}
func (errorHandlerLogger) Errorf(format string, args ...any) {
	otel.Handle(fmt.Errorf("pyroscope: "+format, args...))
}
