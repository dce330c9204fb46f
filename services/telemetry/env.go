package telemetry

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// signal is one OTLP signal and its default URL path.
type signal struct {
	name string // TRACES, METRICS, LOGS
	path string // /v1/traces, ...
}

var (
	signalTraces  = signal{"TRACES", "/v1/traces"}
	signalMetrics = signal{"METRICS", "/v1/metrics"}
	signalLogs    = signal{"LOGS", "/v1/logs"}
)

// exporterSettings is what New passes explicitly to one OTLP/HTTP exporter.
type exporterSettings struct {
	url      string // full URL including the signal path
	headers  map[string]string
	timeout  time.Duration
	compress bool
}

// env reads OTEL_* variables through a Getenv function.
type env func(string) string

func (e env) get(key string) string { return strings.TrimSpace(e(key)) }

// perSignal returns OTEL_EXPORTER_OTLP_{SIGNAL}_{suffix}, falling back to
// OTEL_EXPORTER_OTLP_{suffix}.
func (e env) perSignal(s signal, suffix string) string {
	if v := e.get("OTEL_EXPORTER_OTLP_" + s.name + "_" + suffix); v != "" {
		return v
	}
	return e.get("OTEL_EXPORTER_OTLP_" + suffix)
}

// exporter returns the settings for signal s, or ok == false when no exporter is wanted
// (no endpoint, OTEL_{SIGNAL}_EXPORTER=none, or OTEL_SDK_DISABLED=true).
func (e env) exporter(s signal) (settings exporterSettings, ok bool, err error) {
	if strings.EqualFold(e.get("OTEL_SDK_DISABLED"), "true") {
		return settings, false, nil
	}
	switch kind := strings.ToLower(e.get("OTEL_" + s.name + "_EXPORTER")); kind {
	case "", "otlp":
	case "none":
		return settings, false, nil
	default:
		return settings, false, fmt.Errorf("OTEL_%s_EXPORTER=%q: only otlp and none are supported", s.name, kind)
	}

	endpoint := e.get("OTEL_EXPORTER_OTLP_" + s.name + "_ENDPOINT")
	perSignal := endpoint != ""
	if !perSignal {
		endpoint = e.get("OTEL_EXPORTER_OTLP_ENDPOINT")
	}
	if endpoint == "" {
		return settings, false, nil
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return settings, false, fmt.Errorf("OTLP %s endpoint %q: want an http:// or https:// URL", strings.ToLower(s.name), endpoint)
	}
	if perSignal {
		// Per-signal URLs are used as they are; an empty path means "/".
		if u.Path == "" {
			u.Path = "/"
		}
	} else {
		// The base endpoint gets the signal path appended.
		u.Path = strings.TrimSuffix(u.Path, "/") + s.path
	}
	settings.url = u.String()

	if p := e.perSignal(s, "PROTOCOL"); p != "" && p != "http/protobuf" {
		return settings, false, fmt.Errorf("OTLP protocol %q: only http/protobuf is supported", p)
	}
	if settings.headers, err = parseHeaders(e.perSignal(s, "HEADERS")); err != nil {
		return settings, false, err
	}
	if settings.timeout, err = parseMillis(e.perSignal(s, "TIMEOUT"), 10*time.Second); err != nil {
		return settings, false, fmt.Errorf("OTEL_EXPORTER_OTLP_TIMEOUT: %w", err)
	}
	switch c := strings.ToLower(e.perSignal(s, "COMPRESSION")); c {
	case "", "none":
	case "gzip":
		settings.compress = true
	default:
		return settings, false, fmt.Errorf("OTLP compression %q: want gzip or none", c)
	}
	return settings, true, nil
}

// parseHeaders parses the W3C-baggage-like "k=v,k2=v2" list of OTEL_EXPORTER_OTLP_HEADERS.
func parseHeaders(s string) (map[string]string, error) {
	h := map[string]string{}
	if s == "" {
		return h, nil
	}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(part, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("OTLP headers: %q is not key=value", part)
		}
		dv, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("OTLP headers: value of %q: %w", k, err)
		}
		h[k] = dv
	}
	return h, nil
}

// parseResourceAttributes parses OTEL_RESOURCE_ATTRIBUTES ("k=v,k2=v2", values
// URL-decoded) into ordered pairs.
func parseResourceAttributes(s string) ([][2]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out [][2]string
	for _, part := range strings.Split(s, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %q is not key=value", part)
		}
		dv, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: value of %q: %w", k, err)
		}
		out = append(out, [2]string{k, dv})
	}
	return out, nil
}

// parseMillis parses a non-negative integer number of milliseconds.
func parseMillis(s string, def time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a non-negative number of milliseconds", s)
	}
	if n == 0 {
		return def, nil
	}
	return time.Duration(n) * time.Millisecond, nil
}
