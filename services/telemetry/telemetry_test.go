package telemetry

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// mapEnv is a Getenv backed by a map.
func mapEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// closedPortURL returns an http URL on which nothing listens.
func closedPortURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return "http://" + addr
}

// hangingServerURL returns the URL of a server that accepts requests and never answers
// them (until the test ends).
func hangingServerURL(t *testing.T) string {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() {
		close(release)
		srv.Close()
	})
	return srv.URL
}

// recordingCollector is an OTLP/HTTP endpoint that records request paths and headers.
type recordingCollector struct {
	mu       sync.Mutex
	paths    map[string]int
	headers  []http.Header
	received chan string
}

func newRecordingCollector(t *testing.T) (*recordingCollector, string) {
	c := &recordingCollector{paths: map[string]int{}, received: make(chan string, 1024)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		c.mu.Lock()
		c.paths[r.URL.Path]++
		c.headers = append(c.headers, r.Header.Clone())
		c.mu.Unlock()
		select {
		case c.received <- r.URL.Path:
		default:
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	return c, srv.URL
}

func (c *recordingCollector) count(path string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.paths[path]
}

func TestDeadBackendNeverBlocks(t *testing.T) {
	for _, tc := range []struct {
		name string
		url  func(*testing.T) string
	}{
		{"closed port", closedPortURL},
		{"hanging server", hangingServerURL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			rec := tracetest.NewSpanRecorder()
			var logs bytes.Buffer
			tel, err := New(ctx, Config{
				ServiceName: "dead-backend",
				Getenv: mapEnv(map[string]string{
					"OTEL_EXPORTER_OTLP_ENDPOINT": tc.url(t),
					"OTEL_METRIC_EXPORT_INTERVAL": "50",
					"OTEL_EXPORTER_OTLP_TIMEOUT":  "5000",
				}),
				SpanProcessors: []sdktrace.SpanProcessor{rec},
				Stderr:         &syncWriter{w: &logs},
			})
			if err != nil {
				t.Fatal(err)
			}
			tracer := tel.TracerProvider.Tracer("test")
			counter, err := tel.MeterProvider.Meter("test").Int64Counter("test.ops")
			if err != nil {
				t.Fatal(err)
			}

			// Far more spans and logs than the queues hold: nothing may block.
			const n = 3 * spanQueueSize
			start := time.Now()
			for i := range n {
				sctx, span := tracer.Start(ctx, "op")
				counter.Add(sctx, 1)
				if i%10 == 0 {
					tel.Logger.InfoContext(sctx, "working", "i", i)
				}
				span.End()
			}
			elapsed := time.Since(start)
			if got := len(rec.Ended()); got != n {
				t.Fatalf("recorded %d spans, want %d", got, n)
			}
			if elapsed > 2*time.Second {
				t.Fatalf("%d spans with a dead backend took %v", n, elapsed)
			}
			t.Logf("%d spans + %d logs with a dead backend: %v", n, n/10, elapsed)

			sctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			defer cancel()
			start = time.Now()
			err = tel.Shutdown(sctx)
			took := time.Since(start)
			if took > time.Second {
				t.Fatalf("Shutdown took %v with a 500ms deadline (err %v)", took, err)
			}
			t.Logf("Shutdown returned after %v: %v", took, err)
		})
	}
}

func TestExportsToConfiguredEndpointsOnly(t *testing.T) {
	col, url := newRecordingCollector(t)
	// The process environment points elsewhere and carries a header; Getenv must win.
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", closedPortURL(t))
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-from-process=leak")
	ctx := context.Background()
	tel, err := New(ctx, Config{
		ServiceName: "exporting",
		Getenv: mapEnv(map[string]string{
			"OTEL_EXPORTER_OTLP_ENDPOINT":      url + "/base",
			"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": url + "/custom/logs",
			"OTEL_EXPORTER_OTLP_HEADERS":       "authorization=Bearer%20abc,x-tenant=t1",
			"OTEL_METRIC_EXPORT_INTERVAL":      "100",
		}),
		Stderr: io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	_, span := tel.TracerProvider.Tracer("test").Start(ctx, "op")
	span.End()
	tel.Logger.InfoContext(ctx, "hello")
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := tel.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/base/v1/traces", "/base/v1/metrics", "/custom/logs"} {
		if col.count(p) == 0 {
			t.Errorf("nothing exported to %s; got %v", p, col.paths)
		}
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	for _, h := range col.headers {
		if h.Get("Authorization") != "Bearer abc" || h.Get("X-Tenant") != "t1" {
			t.Errorf("headers = %v, want authorization and x-tenant from Getenv", h)
		}
		if h.Get("X-From-Process") != "" {
			t.Errorf("process environment header leaked into export: %v", h)
		}
	}
}

func TestNoEndpointNoExporter(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "") // process env must not matter either
	tel, err := New(context.Background(), Config{ServiceName: "quiet", Getenv: mapEnv(nil), Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := tel.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestResource(t *testing.T) {
	newRes := func(env map[string]string) map[attribute.Key]string {
		t.Helper()
		res, err := newResource(Config{ServiceName: "order", ServiceVersion: "1.2.3"}, env2(env))
		if err != nil {
			t.Fatal(err)
		}
		m := map[attribute.Key]string{}
		for _, kv := range res.Attributes() {
			m[kv.Key] = kv.Value.String()
		}
		return m
	}
	a := newRes(nil)
	b := newRes(nil)
	if a[semconv.ServiceNameKey] != "order" || a[semconv.ServiceVersionKey] != "1.2.3" {
		t.Errorf("service attributes = %v", a)
	}
	if a[semconv.ServiceInstanceIDKey] == "" || a[semconv.ServiceInstanceIDKey] == b[semconv.ServiceInstanceIDKey] {
		t.Errorf("instance ids %q and %q: want unique", a[semconv.ServiceInstanceIDKey], b[semconv.ServiceInstanceIDKey])
	}
	c := newRes(map[string]string{
		"OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=demo,service.name=from-attrs,team=a%2Cb",
	})
	if c["deployment.environment.name"] != "demo" || c["team"] != "a,b" || c[semconv.ServiceNameKey] != "from-attrs" {
		t.Errorf("OTEL_RESOURCE_ATTRIBUTES not applied: %v", c)
	}
	d := newRes(map[string]string{
		"OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attrs",
		"OTEL_SERVICE_NAME":        "from-service-name",
	})
	if d[semconv.ServiceNameKey] != "from-service-name" {
		t.Errorf("OTEL_SERVICE_NAME must win, got %q", d[semconv.ServiceNameKey])
	}
}

func env2(m map[string]string) env { return env(mapEnv(m)) }

func TestExporterSettings(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		s       signal
		wantURL string
		wantOK  bool
		wantErr string
	}{
		{"absent", nil, signalTraces, "", false, ""},
		{"base", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, signalTraces, "http://c:4318/v1/traces", true, ""},
		{"base trailing slash", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"}, signalMetrics, "http://c:4318/v1/metrics", true, ""},
		{"per signal as is", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "https://l:1/x"}, signalLogs, "https://l:1/x", true, ""},
		{"per signal no path", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:1"}, signalTraces, "http://t:1/", true, ""},
		{"exporter none", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, signalTraces, "", false, ""},
		{"sdk disabled", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, signalTraces, "", false, ""},
		{"bad url", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "c:4318"}, signalTraces, "", false, "want an http"},
		{"grpc", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, signalTraces, "", false, "only http/protobuf"},
		{"bad exporter", map[string]string{"OTEL_METRICS_EXPORTER": "prometheus"}, signalMetrics, "", false, "only otlp and none"},
		{"bad timeout", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_TIMEOUT": "soon"}, signalTraces, "", false, "milliseconds"},
		{"bad headers", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_HEADERS": "novalue"}, signalTraces, "", false, "key=value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, ok, err := env2(tc.env).exporter(tc.s)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ok != tc.wantOK || s.url != tc.wantURL {
				t.Fatalf("got (%q, %v), want (%q, %v)", s.url, ok, tc.wantURL, tc.wantOK)
			}
		})
	}
}

func TestSampler(t *testing.T) {
	for name, want := range map[string]string{
		"":                         "ParentBased{root:AlwaysOnSampler",
		"always_off":               "AlwaysOffSampler",
		"traceidratio":             "TraceIDRatioBased{0.25}",
		"parentbased_traceidratio": "ParentBased{root:TraceIDRatioBased{0.25}",
	} {
		s, err := env2(map[string]string{"OTEL_TRACES_SAMPLER": name, "OTEL_TRACES_SAMPLER_ARG": "0.25"}).sampler()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(s.Description(), want) {
			t.Errorf("%q: sampler %s, want prefix %s", name, s.Description(), want)
		}
	}
	if _, err := env2(map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}).sampler(); err == nil {
		t.Error("ratio 2 accepted")
	}
	if _, err := env2(map[string]string{"OTEL_TRACES_SAMPLER": "jaeger_remote"}).sampler(); err == nil {
		t.Error("unsupported sampler accepted")
	}
}

// logRecorder is an sdklog.Processor that keeps the records it sees.
type logRecorder struct {
	mu      sync.Mutex
	records []sdklog.Record
}

func (r *logRecorder) OnEmit(_ context.Context, rec *sdklog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec.Clone())
	return nil
}
func (r *logRecorder) Enabled(context.Context, sdklog.EnabledParameters) bool { return true }
func (r *logRecorder) Shutdown(context.Context) error                         { return nil }
func (r *logRecorder) ForceFlush(context.Context) error                       { return nil }

func TestLoggerCarriesTraceIDs(t *testing.T) {
	var text bytes.Buffer
	rec := &logRecorder{}
	tel, err := New(context.Background(), Config{
		ServiceName:   "logging",
		Getenv:        mapEnv(nil),
		LogProcessors: []sdklog.Processor{rec},
		Stderr:        &syncWriter{w: &text},
		LogLevel:      slog.LevelInfo,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tel.Shutdown(context.Background()) }()

	ctx, span := tel.TracerProvider.Tracer("test").Start(context.Background(), "op")
	tel.Logger.With("component", "x").InfoContext(ctx, "in span", "k", "v")
	tel.Logger.DebugContext(ctx, "below level")
	span.End()

	sc := span.SpanContext()
	out := text.String()
	for _, want := range []string{"msg=\"in span\"", "service=logging", "component=x", "trace_id=" + sc.TraceID().String(), "span_id=" + sc.SpanID().String()} {
		if !strings.Contains(out, want) {
			t.Errorf("text log %q lacks %q", out, want)
		}
	}
	if strings.Contains(out, "below level") {
		t.Errorf("debug record written at Info level: %q", out)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.records) != 1 {
		t.Fatalf("OTLP records = %d, want 1", len(rec.records))
	}
	if r := rec.records[0]; r.TraceID() != sc.TraceID() || r.SpanID() != sc.SpanID() {
		t.Errorf("OTLP record ids = %s/%s, want %s/%s", r.TraceID(), r.SpanID(), sc.TraceID(), sc.SpanID())
	}
}

func TestServiceNameRequired(t *testing.T) {
	if _, err := New(context.Background(), Config{Getenv: mapEnv(nil)}); err == nil {
		t.Fatal("New without a service name succeeded")
	}
}

// syncWriter serialises writes to w.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func TestRuntimeMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	tel, err := New(context.Background(), Config{ServiceName: "rt", Getenv: mapEnv(nil), MetricReaders: []sdkmetric.Reader{reader}, Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tel.Shutdown(context.Background()) }()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			names[m.Name] = true
		}
	}
	for _, want := range []string{"go.goroutine.count", "go.memory.used"} {
		if !names[want] {
			t.Errorf("runtime metric %s missing; got %v", want, names)
		}
	}
	if v, ok := rm.Resource.Set().Value(semconv.ServiceNameKey); !ok || v.AsString() != "rt" {
		t.Errorf("metric resource service.name = %v", v)
	}
}

// Baggage crosses processes through the propagator, and the load generator's members
// (only those) become attributes of every span and log record started or emitted with it.
func TestBaggagePropagatedAndCopied(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	logs := &logRecorder{}
	tel, err := New(context.Background(), Config{
		ServiceName:    "order",
		Getenv:         mapEnv(nil),
		SpanProcessors: []sdktrace.SpanProcessor{rec},
		LogProcessors:  []sdklog.Processor{logs},
		Stderr:         io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tel.Shutdown(context.Background()) }()

	// What the load generator sends: its baggage, plus a member nobody should copy.
	bag, err := baggage.Parse("synthetic=true,loadgen.scenario=valid_order,loadgen.burst=3,customer=alice")
	if err != nil {
		t.Fatal(err)
	}
	carrier := propagation.MapCarrier{}
	tel.Propagator.Inject(baggage.ContextWithBaggage(context.Background(), bag), carrier)
	if carrier.Get("baggage") == "" {
		t.Fatalf("the propagator wrote no baggage header: %v", carrier)
	}
	// The receiving side: extract, start a span, log.
	ctx := tel.Propagator.Extract(context.Background(), carrier)
	ctx, span := tel.TracerProvider.Tracer("test").Start(ctx, "process order.create")
	tel.Logger.InfoContext(ctx, "order confirmed")
	span.End()

	want := map[attribute.Key]string{"synthetic": "true", "loadgen.scenario": "valid_order", "loadgen.burst": "3"}
	check := func(what string, attrs map[attribute.Key]string) {
		t.Helper()
		for k, v := range want {
			if attrs[k] != v {
				t.Errorf("%s: %s = %q, want %q", what, k, attrs[k], v)
			}
		}
		if v, ok := attrs["customer"]; ok {
			t.Errorf("%s: copied the customer member (%q)", what, v)
		}
	}
	spans := rec.Ended()
	if len(spans) != 1 {
		t.Fatalf("%d spans", len(spans))
	}
	spanAttrs := map[attribute.Key]string{}
	for _, kv := range spans[0].Attributes() {
		spanAttrs[kv.Key] = kv.Value.String()
	}
	check("span", spanAttrs)

	logs.mu.Lock()
	defer logs.mu.Unlock()
	if len(logs.records) != 1 {
		t.Fatalf("%d log records", len(logs.records))
	}
	logAttrs := map[attribute.Key]string{}
	logs.records[0].WalkAttributes(func(kv attribute.KeyValue) bool {
		logAttrs[kv.Key] = kv.Value.String()
		return true
	})
	check("log record", logAttrs)
}
