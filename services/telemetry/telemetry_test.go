package telemetry

import (
	"bytes"
	"cmp"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/contrib/exporters/autoexport"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// setenv clears every OTEL_* variable of the process for the test, then sets env: the
// SDK and the exporters read the process environment.
func setenv(t *testing.T, env map[string]string) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "OTEL_") {
			t.Setenv(k, "")
		}
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
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
			setenv(t, map[string]string{
				"OTEL_EXPORTER_OTLP_ENDPOINT": tc.url(t),
				"OTEL_METRIC_EXPORT_INTERVAL": "50",
				"OTEL_EXPORTER_OTLP_TIMEOUT":  "5000",
			})
			ctx := context.Background()
			rec := tracetest.NewSpanRecorder()
			var logs bytes.Buffer
			tel, err := New(ctx, Config{
				ServiceName:    "dead-backend",
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

			// Far more spans and logs than the queues hold (2048, the SDK's default):
			// nothing may block.
			const n = 3 * 2048
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

// The exporters read OTEL_EXPORTER_OTLP_* themselves: base and per-signal endpoints, and
// headers; Shutdown flushes all three signals.
func TestExportsToConfiguredEndpoints(t *testing.T) {
	col, url := newRecordingCollector(t)
	setenv(t, map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT":      url + "/base",
		"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": url + "/custom/logs",
		"OTEL_EXPORTER_OTLP_HEADERS":       "authorization=Bearer%20abc,x-tenant=t1",
		"OTEL_EXPORTER_OTLP_COMPRESSION":   "gzip",
	})
	ctx := context.Background()
	tel, err := New(ctx, Config{ServiceName: "exporting", Stderr: io.Discard})
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
		if h.Get("Authorization") != "Bearer abc" || h.Get("X-Tenant") != "t1" || h.Get("Content-Encoding") != "gzip" {
			t.Errorf("headers = %v, want authorization, x-tenant and gzip", h)
		}
	}
}

// A signal is exported when OTEL_<SIGNAL>_EXPORTER or an OTLP endpoint asks for it, and
// not otherwise (not to the specification's default localhost:4318).
func TestExporterWanted(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want bool
	}{
		{nil, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://c:4318/v1/metrics"}, false},
		{map[string]string{"OTEL_TRACES_EXPORTER": "console"}, true},
		{map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, false},
	} {
		setenv(t, tc.env)
		exp, err := exporter(context.Background(), "TRACES", autoexport.NewSpanExporter, autoexport.IsNoneSpanExporter)
		if err != nil {
			t.Fatal(err)
		}
		if got := exp != nil; got != tc.want {
			t.Errorf("%v: exporter built = %v, want %v", tc.env, got, tc.want)
		}
		_ = shutdownIf(context.Background(), exp)
	}
}

func TestBadConfigurationIsAnError(t *testing.T) {
	for _, env := range []map[string]string{
		{"OTEL_METRICS_EXPORTER": "carrier-pigeon"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "thrift"},
		{"OTEL_RESOURCE_ATTRIBUTES": "novalue"},
	} {
		setenv(t, env)
		if _, err := New(context.Background(), Config{ServiceName: "bad", Stderr: io.Discard}); err == nil {
			t.Errorf("%v: New succeeded", env)
		} else {
			t.Logf("%v: %v", env, err)
		}
	}
}

// newRecorded returns a Telemetry built from env whose spans are recorded.
func newRecorded(t *testing.T, cfg Config, env map[string]string) (*Telemetry, *tracetest.SpanRecorder) {
	t.Helper()
	setenv(t, env)
	rec := tracetest.NewSpanRecorder()
	cfg.SpanProcessors = append(cfg.SpanProcessors, rec)
	cfg.Stderr = cmp.Or[io.Writer](cfg.Stderr, io.Discard)
	tel, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = tel.Shutdown(ctx) // again, in most tests: a no-op
	})
	return tel, rec
}

func TestResource(t *testing.T) {
	res := func(env map[string]string) map[attribute.Key]string {
		t.Helper()
		tel, rec := newRecorded(t, Config{ServiceName: "order", ServiceVersion: "1.2.3"}, env)
		_, span := tel.TracerProvider.Tracer("test").Start(context.Background(), "op")
		span.End()
		m := map[attribute.Key]string{}
		for _, kv := range rec.Ended()[0].Resource().Attributes() {
			m[kv.Key] = kv.Value.String()
		}
		return m
	}
	a := res(nil)
	b := res(nil)
	if a[semconv.ServiceNameKey] != "order" || a[semconv.ServiceVersionKey] != "1.2.3" {
		t.Errorf("service attributes = %v", a)
	}
	if a[semconv.ServiceInstanceIDKey] == "" || a[semconv.ServiceInstanceIDKey] == b[semconv.ServiceInstanceIDKey] {
		t.Errorf("instance ids %q and %q: want unique", a[semconv.ServiceInstanceIDKey], b[semconv.ServiceInstanceIDKey])
	}
	for _, k := range []attribute.Key{semconv.HostNameKey, semconv.ProcessPIDKey, semconv.TelemetrySDKNameKey, semconv.TelemetrySDKLanguageKey, semconv.ProcessRuntimeNameKey} {
		if a[k] == "" {
			t.Errorf("resource lacks %s: %v", k, a)
		}
	}
	c := res(map[string]string{
		"OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=demo,service.name=from-attrs,team=a%2Cb",
	})
	if c["deployment.environment.name"] != "demo" || c["team"] != "a,b" || c[semconv.ServiceNameKey] != "from-attrs" {
		t.Errorf("OTEL_RESOURCE_ATTRIBUTES not applied: %v", c)
	}
	d := res(map[string]string{
		"OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attrs",
		"OTEL_SERVICE_NAME":        "from-service-name",
	})
	if d[semconv.ServiceNameKey] != "from-service-name" {
		t.Errorf("OTEL_SERVICE_NAME must win, got %q", d[semconv.ServiceNameKey])
	}
}

// The SDK's own sampler configuration applies.
func TestSampler(t *testing.T) {
	remote := trace.ContextWithRemoteSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled, Remote: true,
	}))
	for _, tc := range []struct {
		sampler, arg string
		parent       context.Context
		want         int
	}{
		{"", "", context.Background(), 1},
		{"always_off", "", context.Background(), 0},
		{"traceidratio", "0", context.Background(), 0},
		{"parentbased_traceidratio", "0", remote, 1},
		{"parentbased_always_off", "", context.Background(), 0},
	} {
		tel, rec := newRecorded(t, Config{ServiceName: "s"}, map[string]string{"OTEL_TRACES_SAMPLER": tc.sampler, "OTEL_TRACES_SAMPLER_ARG": tc.arg})
		_, span := tel.TracerProvider.Tracer("test").Start(tc.parent, "op")
		span.End()
		if got := len(rec.Ended()); got != tc.want {
			t.Errorf("OTEL_TRACES_SAMPLER=%q ARG=%q: %d spans recorded, want %d", tc.sampler, tc.arg, got, tc.want)
		}
	}
}

// OTEL_PROPAGATORS chooses what crosses NATS: by default the trace context and baggage,
// "none" nothing at all (a load generator that sends what `nats bench` sends), b3 too.
func TestPropagators(t *testing.T) {
	bag, err := baggage.Parse("synthetic=true")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		env  string
		want []string // header names written
	}{
		{"", []string{"baggage", "traceparent"}},
		{"none", nil},
		{"tracecontext", []string{"traceparent"}},
		{"b3,baggage", []string{"b3", "baggage"}},
	} {
		tel, _ := newRecorded(t, Config{ServiceName: "s"}, map[string]string{"OTEL_PROPAGATORS": tc.env})
		ctx, span := tel.TracerProvider.Tracer("test").Start(baggage.ContextWithBaggage(context.Background(), bag), "op")
		carrier := propagation.MapCarrier{}
		tel.Propagator.Inject(ctx, carrier)
		span.End()
		got := carrier.Keys()
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("OTEL_PROPAGATORS=%q: headers %v, want %v", tc.env, got, tc.want)
		}
		// And the receiving side reads what it would send, nothing else.
		in := propagation.MapCarrier{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
		read := trace.SpanContextFromContext(tel.Propagator.Extract(context.Background(), in)).IsValid()
		if want := slices.Contains(tc.want, "traceparent"); read != want {
			t.Errorf("OTEL_PROPAGATORS=%q: traceparent read %v, want %v", tc.env, read, want)
		}
	}
}

// OTEL_SDK_DISABLED=true gives no-op providers: nothing recorded, nothing exported; the
// text log still works.
func TestSDKDisabled(t *testing.T) {
	col, url := newRecordingCollector(t)
	reader := sdkmetric.NewManualReader()
	logs := &logRecorder{}
	var text bytes.Buffer
	tel, rec := newRecorded(t, Config{
		ServiceName:   "off",
		MetricReaders: []sdkmetric.Reader{reader},
		LogProcessors: []sdklog.Processor{logs},
		Stderr:        &syncWriter{w: &text},
	}, map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": url})
	ctx, span := tel.TracerProvider.Tracer("test").Start(context.Background(), "op")
	if span.IsRecording() {
		t.Error("span is recording")
	}
	counter, _ := tel.MeterProvider.Meter("test").Int64Counter("ops")
	counter.Add(ctx, 1)
	tel.Logger.InfoContext(ctx, "still logged")
	span.End()
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(rec.Ended()); n != 0 {
		t.Errorf("%d spans recorded", n)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err == nil && len(rm.ScopeMetrics) > 0 {
		t.Errorf("metrics collected: %v", rm.ScopeMetrics)
	}
	logs.mu.Lock()
	if len(logs.records) != 0 {
		t.Errorf("%d log records", len(logs.records))
	}
	logs.mu.Unlock()
	col.mu.Lock()
	if len(col.paths) != 0 {
		t.Errorf("exported: %v", col.paths)
	}
	col.mu.Unlock()
	if !strings.Contains(text.String(), "still logged") {
		t.Errorf("text log = %q", text.String())
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
	setenv(t, nil)
	tel, err := New(context.Background(), Config{
		ServiceName:   "logging",
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
	setenv(t, nil)
	if _, err := New(context.Background(), Config{}); err == nil {
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
	setenv(t, nil)
	reader := sdkmetric.NewManualReader()
	tel, err := New(context.Background(), Config{ServiceName: "rt", MetricReaders: []sdkmetric.Reader{reader}, Stderr: io.Discard})
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
	setenv(t, nil)
	rec := tracetest.NewSpanRecorder()
	logs := &logRecorder{}
	tel, err := New(context.Background(), Config{
		ServiceName:    "order",
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
