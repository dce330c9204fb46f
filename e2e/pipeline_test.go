package e2e

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otellog "go.opentelemetry.io/otel/log"
	"go.opentelemetry.io/otel/metric"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/natsotel/reference/e2e/harness"
)

// TestPipelineSelfTest proves the collector -> Prometheus pipeline on its own, with spans,
// metrics and logs sent by the real OTel SDK over OTLP/HTTP (no repository code involved):
// a CLIENT->SERVER pair, a failing pair, a PRODUCER->CONSUMER pair and a database CLIENT
// span must become service-graph edges in Prometheus with Tempo's names and labels; an
// application metric must arrive with otel-lgtm's names and promoted labels; a log record
// must reach the file exporter with its trace and span id.
func TestPipelineSelfTest(t *testing.T) {
	tools := harness.RequireTools(t)
	st := harness.StartStack(t, tools, harness.StackConfig{})
	ctx := context.Background()

	newTP := func(service string) *sdktrace.TracerProvider {
		exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(st.Collector.OTLPHTTPEndpoint+"/v1/traces"))
		if err != nil {
			t.Fatal(err)
		}
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithResource(selfTestResource(service)))
		t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		return tp
	}
	client := newTP("selftest-client").Tracer("selftest")
	server := newTP("selftest-server").Tracer("selftest")

	// Request/reply, ok and failed.
	cctx, call := client.Start(ctx, "call", trace.WithSpanKind(trace.SpanKindClient))
	_, handle := server.Start(cctx, "handle", trace.WithSpanKind(trace.SpanKindServer))
	handle.End()
	call.End()
	cctx, call = client.Start(ctx, "call", trace.WithSpanKind(trace.SpanKindClient))
	_, handle = server.Start(cctx, "handle", trace.WithSpanKind(trace.SpanKindServer))
	handle.SetStatus(codes.Error, "declined")
	handle.End()
	call.End()
	// Messaging.
	pctx, publish := client.Start(ctx, "send events", trace.WithSpanKind(trace.SpanKindProducer))
	_, process := server.Start(pctx, "process events", trace.WithSpanKind(trace.SpanKindConsumer))
	process.End()
	publish.End()
	// A request from outside (a root SERVER span) and one to an uninstrumented service named
	// by a peer attribute: Tempo's virtual nodes "user" and "payments-api".
	_, root := server.Start(ctx, "handle", trace.WithSpanKind(trace.SpanKindServer))
	root.End()
	_, external := client.Start(ctx, "charge", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("peer.service", "payments-api")))
	external.End()
	// Database (KeyValue bucket), which has no server side.
	_, get := client.Start(ctx, "get selftest-bucket", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(semconv.DBSystemNameKey.String("nats"), semconv.DBNamespace("selftest-bucket")))
	get.End()

	// An application metric and a log record correlated with a span.
	mexp, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpointURL(st.Collector.OTLPHTTPEndpoint+"/v1/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(selfTestResource("selftest-client")),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(mexp, sdkmetric.WithInterval(500*time.Millisecond))))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	meter := mp.Meter("selftest")
	sent, _ := meter.Int64Counter("selftest.sent.messages", metric.WithUnit("{message}"))
	sent.Add(ctx, 3, metric.WithAttributes(attribute.String("messaging.system", "nats")))
	dur, _ := meter.Float64Histogram("selftest.operation.duration", metric.WithUnit("s"))
	dur.Record(ctx, 0.003)

	lexp, err := otlploghttp.New(ctx, otlploghttp.WithEndpointURL(st.Collector.OTLPHTTPEndpoint+"/v1/logs"))
	if err != nil {
		t.Fatal(err)
	}
	lp := sdklog.NewLoggerProvider(sdklog.WithResource(selfTestResource("selftest-client")),
		sdklog.WithProcessor(sdklog.NewSimpleProcessor(lexp)))
	t.Cleanup(func() { _ = lp.Shutdown(context.Background()) })
	lctx, logged := client.Start(ctx, "logged", trace.WithSpanKind(trace.SpanKindInternal))
	var rec otellog.Record
	rec.SetBody(attribute.StringValue("hello from the self-test"))
	rec.SetSeverity(otellog.SeverityInfo)
	lp.Logger("selftest").Emit(lctx, rec)
	logged.End()
	if err := mp.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}

	prom := st.Prometheus
	edges := map[string]string{
		`traces_service_graph_request_total{client="selftest-client",server="selftest-server",connection_type=""}`:                                "request/reply edge",
		`traces_service_graph_request_total{client="selftest-client",server="selftest-server",connection_type="messaging_system"}`:                "messaging edge",
		`traces_service_graph_request_total{client="selftest-client",server="selftest-bucket",connection_type="database"}`:                        "database edge",
		`traces_service_graph_request_failed_total{client="selftest-client",server="selftest-server",connection_type=""}`:                         "failed request",
		`traces_service_graph_request_server_seconds_bucket{client="selftest-client",server="selftest-server",le="+Inf"}`:                         "server latency histogram",
		`traces_service_graph_request_client_seconds_count{client="selftest-client",server="selftest-server"}`:                                    "client latency histogram",
		`traces_service_graph_request_total{client="user",server="selftest-server",connection_type="virtual_node",virtual_node="client"}`:         "virtual client node",
		`traces_service_graph_request_total{client="selftest-client",server="payments-api",connection_type="virtual_node",virtual_node="server"}`: "virtual server node (peer.service)",
		`traces_spanmetrics_calls_total{service="selftest-server",span_kind="SPAN_KIND_SERVER",span_name="handle"}`:                               "Tempo span-metrics calls",
		`traces_spanmetrics_latency_bucket{service="selftest-server",span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_ERROR",le="+Inf"}`:     "Tempo span-metrics latency",
		`selftest_sent_messages_total{job="shop/selftest-client",service_name="selftest-client",service_namespace="shop",instance!=""}`:           "application counter",
		`selftest_operation_duration_seconds_bucket{job="shop/selftest-client",le="+Inf"}`:                                                        "application histogram",
	}
	for q, what := range edges {
		s := prom.WaitQuery(t, q, 30*time.Second, harness.NonEmpty)
		t.Logf("%s:\n%s", what, harness.FormatSamples(s))
	}
	// Both pairs of the request/reply edge were counted, one of them failed.
	prom.WaitQuery(t, `sum(traces_service_graph_request_total{client="selftest-client",server="selftest-server",connection_type=""}) == 2`,
		10*time.Second, harness.NonEmpty)
	prom.WaitQuery(t, `sum(traces_service_graph_request_failed_total{client="selftest-client",server="selftest-server",connection_type=""}) == 1`,
		10*time.Second, harness.NonEmpty)
	checkTempoShape(t, prom)

	st.Collector.WaitSpans(t, 10*time.Second, func(spans []harness.Span) error {
		if len(spans) < 8 {
			return fmt.Errorf("want 8 spans, have %d", len(spans))
		}
		return nil
	})
	wantTrace, wantSpan := logged.SpanContext().TraceID().String(), logged.SpanContext().SpanID().String()
	st.Collector.WaitLogs(t, 10*time.Second, func(logs []harness.LogRecord) error {
		for _, l := range logs {
			if l.TraceID == wantTrace && l.SpanID == wantSpan && l.Body == "hello from the self-test" && l.Service() == "selftest-client" {
				return nil
			}
		}
		return fmt.Errorf("no log record with trace %s span %s in %s", wantTrace, wantSpan, st.Collector.LogsFile)
	})
}

func selfTestResource(service string) *resource.Resource {
	return resource.NewWithAttributes(semconv.SchemaURL,
		semconv.ServiceName(service), semconv.ServiceNamespace("shop"), semconv.ServiceInstanceID(service+"-1"))
}

// checkTempoShape: the service-graph and span metrics carry only the labels Tempo's
// metrics-generator remote-writes (no "failed" label, none of the labels Prometheus derives
// from OTLP resources), and their histograms have the buckets of deploy/lgtm/tempo-config.yaml.
func checkTempoShape(t *testing.T, prom *harness.Prometheus) {
	t.Helper()
	ctx := context.Background()
	for _, label := range []string{"failed", "job", "instance", "service_name", "service_namespace", "service_instance_id", "otel_scope_name"} {
		q := fmt.Sprintf(`{__name__=~"traces_.+", %s!=""}`, label)
		s, err := prom.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(s) > 0 {
			t.Errorf("%s: Tempo writes no %q label, got\n%s", q, label, harness.FormatSamples(s[:min(len(s), 5)]))
		}
	}
	if s, err := prom.Query(ctx, `traces_target_info`); err != nil || len(s) > 0 {
		t.Errorf("traces_target_info: Tempo writes none without enable_target_info (err %v, %d series)", err, len(s))
	}
	gen, err := harness.RepoTempoGenerator()
	if err != nil {
		t.Fatal(err)
	}
	for metric, want := range map[string][]float64{
		`traces_service_graph_request_server_seconds_bucket{client="selftest-client",server="selftest-server"}`: gen.ServiceGraphs.HistogramBuckets,
		`traces_service_graph_request_client_seconds_bucket{client="selftest-client",server="selftest-server"}`: gen.ServiceGraphs.HistogramBuckets,
		`traces_spanmetrics_latency_bucket{service="selftest-server",span_name="handle"}`:                       gen.SpanMetrics.HistogramBuckets,
	} {
		s := prom.WaitQuery(t, metric, 10*time.Second, harness.NonEmpty)
		les := map[float64]bool{}
		for _, x := range s {
			if le, err := strconv.ParseFloat(x.Metric["le"], 64); err == nil && !math.IsInf(le, 1) {
				les[le] = true
			}
		}
		got := slices.Sorted(maps.Keys(les))
		if !slices.Equal(got, want) {
			t.Errorf("%s: buckets %v, want %s's %v", metric, got, harness.TempoConfigPath, want)
		}
	}
}
