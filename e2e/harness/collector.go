package harness

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// Collector is a running OpenTelemetry Collector built from e2e/tools/otelcol.
type Collector struct {
	// OTLPHTTPEndpoint is the value for OTEL_EXPORTER_OTLP_ENDPOINT ("http://127.0.0.1:<port>").
	OTLPHTTPEndpoint string
	// OTLPGRPCAddr is the OTLP/gRPC listen address ("127.0.0.1:<port>").
	OTLPGRPCAddr string
	// TracesFile, LogsFile and MetricsFile receive OTLP/JSON lines.
	TracesFile, LogsFile, MetricsFile string
	Proc                              *Process
}

// CollectorConfig tunes the collector of a test.
type CollectorConfig struct {
	// Debug adds the debug exporter to every pipeline and logs at debug level.
	Debug bool
}

// StartCollector starts the collector with config/otelcol.yaml.tmpl, exporting metrics to
// prom, and waits until its OTLP ports accept connections.
func StartCollector(t testing.TB, tools Tools, dir string, prom *Prometheus, cfg CollectorConfig) *Collector {
	t.Helper()
	c := &Collector{
		TracesFile:  filepath.Join(dir, "otel-traces.jsonl"),
		LogsFile:    filepath.Join(dir, "otel-logs.jsonl"),
		MetricsFile: filepath.Join(dir, "otel-metrics.jsonl"),
	}
	promPort := prom.URL[len("http://127.0.0.1:"):]
	level := "info"
	if cfg.Debug {
		level = "debug"
	}
	tempo, err := RepoTempoGenerator()
	if err != nil {
		t.Fatalf("collector: %v", err)
	}
	cfgPath := filepath.Join(dir, "otelcol.yaml")
	c.Proc = startTool(t, toolStart{
		attempt: func(int) ProcessConfig {
			ports := FreePorts(t, 2)
			c.OTLPHTTPEndpoint = fmt.Sprintf("http://127.0.0.1:%d", ports[0])
			c.OTLPGRPCAddr = fmt.Sprintf("127.0.0.1:%d", ports[1])
			renderTemplate(t, "otelcol.yaml.tmpl", cfgPath, map[string]any{
				"OTLPHTTPPort":   ports[0],
				"OTLPGRPCPort":   ports[1],
				"PrometheusPort": promPort,
				"TracesFile":     c.TracesFile,
				"LogsFile":       c.LogsFile,
				"MetricsFile":    c.MetricsFile,
				"LogLevel":       level,
				"Debug":          cfg.Debug,
				"Tempo":          tempo.collector(),
			})
			return ProcessConfig{
				Name:   "otelcol",
				Path:   tools.Otelcol,
				Args:   []string{"--config=" + cfgPath},
				Env:    BaseEnv(dir),
				LogDir: dir,
			}
		},
		// The collector logs "Everything is ready" only once every receiver has bound its
		// port (it shuts down when one cannot), so a port answering for another process is
		// not taken for this one.
		ready: func(ctx context.Context, p *Process) error {
			for _, addr := range []string{c.OTLPHTTPEndpoint[len("http://"):], c.OTLPGRPCAddr} {
				if err := WaitTCP(ctx, addr, p); err != nil {
					return err
				}
			}
			return waitLog(ctx, p, "Everything is ready")
		},
	})
	t.Cleanup(func() { c.Proc.stop(t) })
	return c
}

// Spans reads every span the collector has written so far.
func (c *Collector) Spans(t testing.TB) []Span {
	t.Helper()
	s, err := ReadSpans(c.TracesFile)
	if err != nil {
		t.Fatalf("reading spans: %v", err)
	}
	return s
}

// Logs reads every log record the collector has written so far.
func (c *Collector) Logs(t testing.TB) []LogRecord {
	t.Helper()
	l, err := ReadLogs(c.LogsFile)
	if err != nil {
		t.Fatalf("reading logs: %v", err)
	}
	return l
}

// Metrics reads every metric the collector has written so far.
func (c *Collector) Metrics(t testing.TB) []Metric {
	t.Helper()
	m, err := ReadMetrics(c.MetricsFile)
	if err != nil {
		t.Fatalf("reading metrics: %v", err)
	}
	return m
}

// WaitSpans polls the traces file until pred accepts the spans or timeout passes.
func (c *Collector) WaitSpans(t testing.TB, timeout time.Duration, pred func([]Span) error) []Span {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		spans := c.Spans(t)
		err := pred(spans)
		if err == nil {
			return spans
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v (%d spans exported): %v", timeout, len(spans), err)
		}
		<-tick.C
	}
}

// WaitLogs polls the logs file until pred accepts the records or timeout passes.
func (c *Collector) WaitLogs(t testing.TB, timeout time.Duration, pred func([]LogRecord) error) []LogRecord {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		logs := c.Logs(t)
		err := pred(logs)
		if err == nil {
			return logs
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v (%d log records exported): %v", timeout, len(logs), err)
		}
		<-tick.C
	}
}
