package telemetry

import (
	"crypto/rand"
	"fmt"
	"os"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk"
	"go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// newResource builds the resource from cfg and the environment. Later sources win:
// built-in attributes, then OTEL_RESOURCE_ATTRIBUTES, then OTEL_SERVICE_NAME.
func newResource(cfg Config, e env) (*resource.Resource, error) {
	attrs := []attribute.KeyValue{
		semconv.TelemetrySDKName("opentelemetry"),
		semconv.TelemetrySDKLanguageGo,
		semconv.TelemetrySDKVersion(sdk.Version()),
		semconv.ServiceName(cfg.ServiceName),
		semconv.ServiceInstanceID(newInstanceID()),
		semconv.ProcessPID(os.Getpid()),
	}
	if cfg.ServiceVersion != "" {
		attrs = append(attrs, semconv.ServiceVersion(cfg.ServiceVersion))
	}
	if host, err := os.Hostname(); err == nil && host != "" {
		attrs = append(attrs, semconv.HostName(host))
	}
	fromEnv, err := parseResourceAttributes(e.get("OTEL_RESOURCE_ATTRIBUTES"))
	if err != nil {
		return nil, err
	}
	for _, kv := range fromEnv {
		attrs = append(attrs, attribute.String(kv[0], kv[1]))
	}
	if name := e.get("OTEL_SERVICE_NAME"); name != "" {
		attrs = append(attrs, semconv.ServiceName(name))
	}
	// NewWithAttributes keeps the last value of a repeated key.
	return resource.NewWithAttributes(semconv.SchemaURL, attrs...), nil
}

// newInstanceID returns a random UUID (version 4), unique per Telemetry.
func newInstanceID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never returns an error
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
