package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/natsotel/reference/e2e/faultkit"
	"github.com/natsotel/reference/e2e/harness"
	"github.com/natsotel/reference/services/contracts"
)

// edge is one service-graph edge as Prometheus labels it.
type edge struct {
	client, server, connectionType string
}

func (e edge) String() string {
	ct := e.connectionType
	if ct == "" {
		ct = "request"
	}
	return fmt.Sprintf("%s -> %s (%s)", e.client, e.server, ct)
}

func (e edge) selector(extra string) string {
	s := fmt.Sprintf(`client=%q, server=%q, connection_type=%q`, e.client, e.server, e.connectionType)
	if extra != "" {
		s += ", " + extra
	}
	return "{" + s + "}"
}

// The topology the shop promises (issue 4), named from the contracts.
var (
	edgeLoadgenOrder     = edge{"loadgen", contracts.OrderService, ""}
	edgeOrderInventory   = edge{contracts.OrderService, contracts.InventoryService, ""}
	edgeOrderBilling     = edge{contracts.OrderService, contracts.BillingService, ""}
	edgeOrderEvents      = edge{contracts.OrderService, contracts.InventoryService, "messaging_system"}
	edgeOrderOrders      = edge{contracts.OrderService, contracts.BucketOrders, "database"}
	edgeInventoryStock   = edge{contracts.InventoryService, contracts.BucketStock, "database"}
	edgeInventoryReserv  = edge{contracts.InventoryService, contracts.BucketReservations, "database"}
	edgeBillingPayments  = edge{contracts.BillingService, contracts.BucketPayments, "database"}
	expectedShopTopology = []edge{
		edgeLoadgenOrder, edgeOrderInventory, edgeOrderBilling, edgeOrderEvents,
		edgeOrderOrders, edgeInventoryStock, edgeInventoryReserv, edgeBillingPayments,
	}
)

// loadgenEnv is how compose would configure a bounded load generator run: a mix with every
// failure the shop knows, a fixed seed so runs are comparable.
var loadgenEnv = []string{
	"LOADGEN_RATE=40",
	"LOADGEN_DURATION=8s",
	"LOADGEN_MIX=valid=55,out_of_stock=15,declined=15,malformed=8,lookup=7",
	"LOADGEN_SEED=5",
	"LOADGEN_TIMEOUT=5s",
}

// TestShop runs the shop as compose does, as separate processes configured only by
// environment (two inventory replicas, the micro probe), drives it with the load generator,
// and checks through Prometheus' HTTP API and the collector's exported files what Tempo's
// service graph, Grafana's dashboards and Loki would show in otel-lgtm.
func TestShop(t *testing.T) {
	tools := harness.RequireTools(t)
	bins := builder.Get(t)
	st := harness.StartStack(t, tools, harness.StackConfig{})
	// Default log level, as compose runs it: business outcomes (confirmed, declined, out of
	// stock, bad input) are logged at info inside the request's span, and those records
	// prove log-trace correlation.
	harness.StartShop(t, st, builder, harness.ShopConfig{InventoryReplicas: 2, Probe: true})

	res := st.Run(t, "loadgen", bins.Loadgen, nil, st.ServiceEnv("loadgen", loadgenEnv...), 2*time.Minute)
	t.Logf("loadgen finished in %v (exit %d); summary:\n%s", res.Elapsed.Round(time.Millisecond), res.ExitCode, lastLines(res.Output, 25))
	if res.ExitCode != 0 {
		t.Fatalf("loadgen exited with %d", res.ExitCode)
	}

	prom := st.Prometheus
	// Wait until every edge exists and the graph stops growing: the loadgen has exited and
	// flushed, so what is in Prometheus then is the whole run.
	for _, e := range expectedShopTopology {
		prom.WaitQuery(t, "traces_service_graph_request_total"+e.selector(""), 60*time.Second, harness.NonEmpty)
	}
	waitStable(t, prom, `sum(traces_service_graph_request_total)`, 3*time.Second, 60*time.Second)

	t.Run("service graph edges", func(t *testing.T) {
		s, err := prom.Query(context.Background(), `sum by (client, server, connection_type) (traces_service_graph_request_total)`)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("traces_service_graph_request_total:\n%s", harness.FormatSamples(s))
		got := map[edge]bool{}
		for _, x := range s {
			got[edge{x.Metric["client"], x.Metric["server"], x.Metric["connection_type"]}] = true
		}
		for _, e := range expectedShopTopology {
			if !got[e] {
				t.Errorf("missing edge %v", e)
			}
		}
		for e := range got {
			if !slices.Contains(expectedShopTopology, e) {
				t.Errorf("unexpected edge %v: a span without its parent or peer (virtual node)", e)
			}
		}
	})

	t.Run("failed counts", func(t *testing.T) {
		// Declines (402), out of stock (409) and bad input (400) are micro errors: natsotel
		// marks both the client and the server span of those calls as errors.
		for _, e := range []edge{edgeLoadgenOrder, edgeOrderInventory, edgeOrderBilling} {
			q := fmt.Sprintf(`sum(traces_service_graph_request_failed_total%s)`, e.selector(""))
			s := prom.WaitQuery(t, q, 10*time.Second, harness.NonEmpty)
			if s[0].Value <= 0 {
				t.Errorf("%v: failed = %v, want > 0", e, s[0].Value)
			}
		}
		// Nothing fails on the order-event consumer and on the writes of confirmed orders.
		for _, e := range zeroFailureEdges {
			// Tempo has no failed label: failures are traces_service_graph_request_failed_total.
			q := fmt.Sprintf(`traces_service_graph_request_failed_total%s > 0`, e.selector(""))
			s, err := prom.Query(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			if len(s) > 0 {
				t.Errorf("%v: want no failed requests, got\n%s", e, harness.FormatSamples(s))
			}
			ok := prom.WaitQuery(t, fmt.Sprintf(`sum(traces_service_graph_request_total%s)`, e.selector("")), 10*time.Second, harness.NonEmpty)
			t.Logf("%v: %v requests, none failed", e, ok[0].Value)
		}
	})

	t.Run("semconv messaging metrics", func(t *testing.T) {
		checkMessagingMetrics(t, st)
	})

	t.Run("Go runtime metrics", func(t *testing.T) {
		checkRuntimeMetrics(t, st, []string{"loadgen", contracts.OrderService, contracts.InventoryService, contracts.BillingService})
	})

	t.Run("micro probe metrics", func(t *testing.T) {
		checkProbeMetrics(t, st)
	})

	t.Run("exemplars link metrics to exported traces", func(t *testing.T) {
		checkExemplars(t, st)
	})

	t.Run("logs carry trace and span ids of exported spans", func(t *testing.T) {
		checkLogCorrelation(t, st, []string{contracts.OrderService, contracts.InventoryService, contracts.BillingService})
	})

	t.Run("Traceparent from a plain nats.go client continues the trace", func(t *testing.T) {
		checkPlainClientTraceparent(t, st)
	})

	t.Run("dashboards", func(t *testing.T) {
		provokeTrouble(t, st, bins.Loadgen)
		checkDashboards(t, st)
	})

	t.Run("no card numbers in exported telemetry", func(t *testing.T) {
		checkNoSecrets(t, st)
	})
}

// checkNoSecrets scans everything the collector exported (spans, logs and metrics, as raw
// OTLP/JSON) for the test card numbers the load generator sends: request bodies must never
// reach an attribute, a label or a log line.
func checkNoSecrets(t *testing.T, st *harness.Stack) {
	t.Helper()
	secrets := []string{contracts.CardOK, contracts.CardDeclined}
	var scanned int
	for _, path := range []string{st.Collector.TracesFile, st.Collector.LogsFile, st.Collector.MetricsFile} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("reading exported telemetry: %v", err)
		}
		scanned += len(data)
		for _, s := range secrets {
			if i := bytes.Index(data, []byte(s)); i >= 0 {
				lo, hi := max(0, i-200), min(len(data), i+200)
				t.Errorf("%s contains card number %s: ...%s...", filepath.Base(path), s, data[lo:hi])
			}
		}
	}
	if scanned < 10_000 {
		t.Errorf("only %d bytes of exported telemetry: the scan proves nothing", scanned)
	}
	t.Logf("scanned %d bytes of exported spans, logs and metrics", scanned)
}

// zeroFailureEdges are the edges on which the load generator's mix causes no error: the
// order-event consumer commits or releases what order reserved, and confirmed orders,
// payments and stock are written without conflict.
var zeroFailureEdges = []edge{edgeOrderEvents, edgeOrderOrders, edgeBillingPayments}

// waitStable polls query until its single value has not changed for quiet, and returns it.
func waitStable(t *testing.T, p *harness.Prometheus, query string, quiet, timeout time.Duration) float64 {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last, since := -1.0, time.Now()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		s, err := p.Query(context.Background(), query)
		if err == nil && len(s) == 1 {
			if s[0].Value != last {
				last, since = s[0].Value, time.Now()
			} else if time.Since(since) >= quiet {
				return last
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not settle within %v (last %v, err %v)", query, timeout, last, err)
		}
		<-tick.C
	}
}

func checkMessagingMetrics(t *testing.T, st *harness.Stack) {
	prom := st.Prometheus
	ctx := context.Background()
	// Every service processes requests in SERVER/CONSUMER spans and records
	// messaging.process.duration; the load generator and order send requests and record
	// messaging.client.operation.duration and messaging.client.sent.messages; inventory
	// consumes order events.
	want := []struct{ metric, service string }{
		{"messaging_process_duration_seconds_bucket", contracts.OrderService},
		{"messaging_process_duration_seconds_bucket", contracts.InventoryService},
		{"messaging_process_duration_seconds_bucket", contracts.BillingService},
		{"messaging_client_operation_duration_seconds_bucket", "loadgen"},
		{"messaging_client_operation_duration_seconds_bucket", contracts.OrderService},
		{"messaging_client_sent_messages_total", "loadgen"},
		{"messaging_client_sent_messages_total", contracts.OrderService},
		{"messaging_client_consumed_messages_total", contracts.InventoryService},
	}
	for _, w := range want {
		q := fmt.Sprintf(`%s{service_name=%q, service_namespace="shop", job="shop/%s", instance!="", service_instance_id!="", messaging_system="nats", messaging_operation_name!="", messaging_destination_name!=""}`,
			w.metric, w.service, w.service)
		s, err := prom.PollQuery(ctx, q, 20*time.Second, harness.NonEmpty)
		if err != nil {
			t.Errorf("%s for %s: %v", w.metric, w.service, err)
			continue
		}
		t.Logf("%s{service_name=%q}: %d series, e.g. %v", w.metric, w.service, len(s), s[0])
	}
	// Failed calls carry error.type: the load generator's declined orders at least.
	if s, err := prom.PollQuery(ctx, `messaging_client_operation_duration_seconds_count{service_name="loadgen", error_type!=""}`, 10*time.Second, harness.NonEmpty); err != nil {
		t.Errorf("no error_type on the load generator's failed requests: %v", err)
	} else {
		var types []string
		for _, x := range s {
			types = append(types, x.Metric["error_type"])
		}
		t.Logf("error_type values on loadgen requests: %v", types)
	}
	// Low cardinality: no inbox or ack subject ever becomes a destination label.
	s, err := prom.Query(ctx, `count by (messaging_destination_name) ({__name__=~"messaging_.+", messaging_destination_name=~"_INBOX.*|\\$JS\\.ACK\\..*|.*\\*\\*.*"})`)
	if err != nil {
		t.Fatal(err)
	}
	if len(s) > 0 {
		t.Errorf("high-cardinality destinations in messaging metrics:\n%s", harness.FormatSamples(s))
	}
	if s, err := prom.Query(ctx, `count(count by (messaging_destination_name) ({__name__=~"messaging_.+"}))`); err == nil && len(s) == 1 {
		t.Logf("%v distinct messaging_destination_name values", s[0].Value)
	}
	// Units as the OTel API names them (the collector's metrics file keeps them).
	checkUnits(t, st, map[string]string{
		"messaging.client.operation.duration": "s",
		"messaging.process.duration":          "s",
		"messaging.client.sent.messages":      "{message}",
		"messaging.client.consumed.messages":  "{message}",
	})
}

// checkUnits asserts the unit of each named metric in the collector's metrics file.
func checkUnits(t *testing.T, st *harness.Stack, units map[string]string) {
	t.Helper()
	seen := map[string]map[string]bool{}
	for _, m := range st.Collector.Metrics(t) {
		if _, ok := units[m.Name]; ok {
			if seen[m.Name] == nil {
				seen[m.Name] = map[string]bool{}
			}
			seen[m.Name][m.Unit] = true
		}
	}
	for name, unit := range units {
		got := harness.SortedKeys(seen[name])
		if len(got) != 1 || got[0] != unit {
			t.Errorf("metric %s: units %q, want %q", name, got, unit)
		}
	}
}

func checkRuntimeMetrics(t *testing.T, st *harness.Stack, services []string) {
	prom := st.Prometheus
	for _, svc := range services {
		for _, metric := range []string{"go_memory_used_bytes", "go_goroutine_count", "go_memory_gc_goal_bytes", "go_processor_limit", "go_memory_allocated_bytes_total"} {
			q := fmt.Sprintf(`%s{service_name=%q, job="shop/%s"}`, metric, svc, svc)
			if _, err := prom.PollQuery(context.Background(), q, 20*time.Second, harness.NonEmpty); err != nil {
				t.Errorf("%s for %s: %v", metric, svc, err)
			}
		}
	}
	checkUnits(t, st, map[string]string{
		"go.memory.used":      "By",
		"go.goroutine.count":  "{goroutine}",
		"go.memory.gc.goal":   "By",
		"go.processor.limit":  "{thread}",
		"go.memory.allocated": "By",
	})
}

func checkProbeMetrics(t *testing.T, st *harness.Stack) {
	prom := st.Prometheus
	ctx := context.Background()
	// Every instance is up: two inventory replicas, one order, one billing.
	wantUp := map[string]int{contracts.OrderService: 1, contracts.InventoryService: 2, contracts.BillingService: 1}
	for svc, n := range wantUp {
		q := fmt.Sprintf(`nats_micro_up{nats_micro_service=%q, service_name="probe"} == 1`, svc)
		if _, err := prom.PollQuery(ctx, q, 30*time.Second, func(s []harness.Sample) bool { return len(s) == n }); err != nil {
			t.Errorf("nats_micro_up for %s: want %d instances up: %v", svc, n, err)
		}
	}
	for _, q := range []string{
		`nats_micro_ping_duration_seconds_bucket{nats_micro_service="inventory", nats_micro_instance!="", le="+Inf"}`,
		`nats_micro_endpoint_requests_total{nats_micro_service="order", nats_micro_endpoint!="", messaging_destination_name="order.create"}`,
		`nats_micro_endpoint_errors_total{nats_micro_service="billing"}`,
		`nats_micro_endpoint_processing_time_average_seconds{nats_micro_service="inventory"}`,
	} {
		s, err := prom.PollQuery(ctx, q, 30*time.Second, harness.NonEmpty)
		if err != nil {
			t.Error(err)
			continue
		}
		t.Logf("%d series, e.g. %v", len(s), s[0])
	}
}

// checkExemplars: Prometheus keeps the exemplars the SDKs attach to histograms (otel-lgtm
// enables exemplar storage so Grafana can jump from a latency panel to the trace), and
// their trace ids are traces the collector exported.
func checkExemplars(t *testing.T, st *harness.Stack) {
	spans := map[string]bool{}
	for _, s := range st.Collector.Spans(t) {
		spans[s.TraceID+"/"+s.SpanID] = true
	}
	for _, svc := range []string{"loadgen", contracts.OrderService, contracts.InventoryService, contracts.BillingService} {
		metric := "messaging_process_duration_seconds_bucket"
		if svc == "loadgen" {
			metric = "messaging_client_operation_duration_seconds_bucket"
		}
		ex, err := st.Prometheus.Exemplars(context.Background(), fmt.Sprintf(`%s{service_name=%q}`, metric, svc), 10*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		found := 0
		for _, e := range ex {
			if spans[e.Labels["trace_id"]+"/"+e.Labels["span_id"]] {
				found++
			}
		}
		if found == 0 {
			t.Errorf("%s: %d exemplars on %s, none pointing at an exported span", svc, len(ex), metric)
			continue
		}
		t.Logf("%s: %d of %d exemplars on %s point at exported spans", svc, found, len(ex), metric)
	}
}

func checkLogCorrelation(t *testing.T, st *harness.Stack, services []string) {
	var (
		matched  map[string]int
		problems []string
	)
	st.Collector.WaitLogs(t, 20*time.Second, func(logs []harness.LogRecord) error {
		spans := map[string]string{} // trace/span -> service
		for _, s := range st.Collector.Spans(t) {
			spans[s.TraceID+"/"+s.SpanID] = s.Service()
		}
		matched, problems = map[string]int{}, nil
		for _, l := range logs {
			if l.TraceID == "" && l.SpanID == "" {
				continue
			}
			svc, ok := spans[l.TraceID+"/"+l.SpanID]
			switch {
			case !ok:
				problems = append(problems, fmt.Sprintf("%s log %q: trace %s span %s not exported", l.Service(), l.Body, l.TraceID, l.SpanID))
			case svc != l.Service():
				problems = append(problems, fmt.Sprintf("%s log %q: span %s belongs to %s", l.Service(), l.Body, l.SpanID, svc))
			default:
				matched[l.Service()]++
			}
		}
		for _, svc := range services {
			if matched[svc] == 0 {
				problems = append(problems, fmt.Sprintf("no %s log record with the ids of one of its spans", svc))
			}
		}
		if len(problems) > 0 {
			return fmt.Errorf("%d problems, first: %s", len(problems), strings.Join(problems[:min(10, len(problems))], "\n  "))
		}
		return nil
	})
	t.Logf("log records matched to exported spans, per service: %v", matched)
}

// checkPlainClientTraceparent sends order.create from a nats.go client that knows nothing
// of OpenTelemetry, with a capitalised Traceparent header as http.Header-based code writes
// it, and finds the trace continued by order, inventory and billing.
func checkPlainClientTraceparent(t *testing.T, st *harness.Stack) {
	nc, err := nats.Connect(st.NATS.URL, nats.Name("plain-client"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	traceID, parentID := randomHex(16), randomHex(8)
	body, _ := json.Marshal(contracts.CreateOrderRequest{
		CustomerID: "plain-client", Lines: []contracts.Line{{SKU: "sku-1", Qty: 1}}, Card: contracts.CardOK,
	})
	msg := nats.NewMsg(contracts.SubjectOrderCreate)
	msg.Header["Traceparent"] = []string{"00-" + traceID + "-" + parentID + "-01"}
	msg.Data = body
	reply, err := nc.RequestMsg(msg, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if code := reply.Header.Get("Nats-Service-Error-Code"); code != "" {
		t.Fatalf("order.create: micro error %s %s", code, reply.Header.Get("Nats-Service-Error"))
	}
	var order contracts.Order
	if err := json.Unmarshal(reply.Data, &order); err != nil || order.Status != contracts.OrderConfirmed {
		t.Fatalf("order.create reply %s (%v): want a confirmed order", reply.Data, err)
	}
	spans := st.Collector.WaitSpans(t, 20*time.Second, func(all []harness.Span) error {
		services := map[string]bool{}
		for _, s := range all {
			if s.TraceID == traceID {
				services[s.Service()] = true
			}
		}
		for _, svc := range []string{contracts.OrderService, contracts.InventoryService, contracts.BillingService} {
			if !services[svc] {
				return fmt.Errorf("trace %s: no %s span yet (have %v)", traceID, svc, harness.SortedKeys(services))
			}
		}
		return nil
	})
	var root *harness.Span
	var lines []string
	for i, s := range spans {
		if s.TraceID != traceID {
			continue
		}
		lines = append(lines, fmt.Sprintf("  %-9s %-8s %-30s span %s parent %s", s.Service(), s.Kind, s.Name, s.SpanID, s.ParentSpanID))
		if s.Service() == contracts.OrderService && s.Kind == harness.SpanKindServer && s.ParentSpanID == parentID {
			root = &spans[i]
		}
	}
	sort.Strings(lines)
	t.Logf("trace %s:\n%s", traceID, strings.Join(lines, "\n"))
	if root == nil {
		t.Errorf("no order SERVER span whose parent is the plain client's span %s", parentID)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// provokeTrouble gives the panels of things that go wrong something to show: a second,
// short load generator run, capped at one request in flight, against an order service
// that answers nothing (drop_share 1). Its requests time out (unexpected outcomes), the
// ones scheduled meanwhile are dropped. Runs after the checks that count
// failures, and switches the fault off again.
func provokeTrouble(t *testing.T, st *harness.Stack, loadgen string) {
	t.Helper()
	nc, err := nats.Connect(st.NATS.URL, nats.Name("e2e-trouble"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := faultkit.SetFaults(nc, contracts.OrderService, contracts.FaultConfig{DropShare: 1}, 1, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := faultkit.SetFaults(nc, contracts.OrderService, contracts.FaultConfig{}, 1, 10*time.Second); err != nil {
			t.Error(err)
		}
	}()
	res := st.Run(t, "loadgen-trouble", loadgen, nil, st.ServiceEnv("loadgen",
		"LOADGEN_RATE=20", "LOADGEN_DURATION=2s", "LOADGEN_MIX=lookup=1",
		"LOADGEN_CONCURRENCY=1", "LOADGEN_TIMEOUT=500ms", "LOADGEN_SEED=7"), time.Minute)
	t.Logf("trouble run (exit %d):\n%s", res.ExitCode, lastLines(res.Output, 12))
	if res.ExitCode != 0 {
		t.Fatalf("loadgen exited with %d", res.ExitCode)
	}
	for _, q := range []string{
		`loadgen_request_duration_seconds_count{loadgen_outcome="timeout"}`,
		`sum(loadgen_requests_dropped_total) > 0`,
	} {
		st.Prometheus.WaitQuery(t, q, 30*time.Second, harness.NonEmpty)
	}
}

// obiSeries selects OBI's series in the OBI dashboard (deploy/grafana/dashboards/obi.json):
// no OBI runs here, so those queries are not evaluated.
const obiSeries = `and on (job, instance) target_info{telemetry_sdk_name!="opentelemetry"}`

// checkDashboards evaluates every PromQL expression of deploy/grafana/dashboards/*.json
// against this Prometheus, with template variables resolved as Grafana would, and lists
// the ones that return no data. A trailing "or vector(0)" (a panel's zero instead of "No
// data") is dropped first, so that the series behind it must exist too.
func checkDashboards(t *testing.T, st *harness.Stack) {
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(root, "deploy", "grafana", "dashboards", "*.json"))
	if len(files) == 0 {
		t.Skip("no dashboards in deploy/grafana/dashboards yet")
	}
	ctx := context.Background()
	var failed []string
	total := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		d, err := harness.ParseDashboard(filepath.Base(f), data)
		if err != nil {
			t.Error(err)
			continue
		}
		vars, err := harness.ResolveVariables(ctx, st.Prometheus, d)
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(f), err)
		}
		for _, q := range d.Queries {
			if strings.Contains(q.Expr, obiSeries) {
				t.Logf("skipped (OBI's series need the compose obi profile: eBPF, not run here) %v", q)
				continue
			}
			total++
			expr := strings.TrimSuffix(harness.SubstituteVariables(q.Expr, vars), " or vector(0)")
			s, err := st.Prometheus.PollQuery(ctx, expr, 3*time.Second, harness.NonEmpty)
			if err == nil {
				t.Logf("ok (%d series) %v", len(s), q)
				continue
			}
			why, xerr := st.Prometheus.ExplainEmpty(ctx, expr)
			if xerr != nil {
				why = xerr.Error()
			}
			failed = append(failed, fmt.Sprintf("%v\n      evaluated: %s\n      %v: %s", q, expr, firstLine(err.Error()), why))
		}
	}
	if len(failed) > 0 {
		t.Errorf("%d of %d dashboard queries return no data:\n  %s", len(failed), total, strings.Join(failed, "\n  "))
	}
	// The OBI dashboard tells the SDK's series from OBI's by joining target_info on job
	// and instance: the SDK's series must join, with telemetry_sdk_name "opentelemetry".
	st.Prometheus.WaitQuery(t, `messaging_process_duration_seconds_count and on (job, instance) target_info{telemetry_sdk_name="opentelemetry"}`,
		30*time.Second, harness.NonEmpty)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
