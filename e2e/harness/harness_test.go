package harness

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSubstituteVariables(t *testing.T) {
	vars := map[string][]string{"service": {"order", "billing"}, "instance": {"a.b"}}
	for _, tc := range []struct{ in, want string }{
		{`rate(x{service_name=~"$service"}[$__rate_interval])`, `rate(x{service_name=~"(billing|order)"}[1m])`},
		{`rate(x{service_name="${service}"}[${__interval}])`, `rate(x{service_name="order"}[15s])`},
		{`x{instance=~"[[instance]]"}`, `x{instance=~"a\\.b"}`},
		{"x{instance=~`$instance`}", "x{instance=~`a\\.b`}"},
		{`x{service_name=~"$service", instance="$instance"}`, `x{service_name=~"(billing|order)", instance="a.b"}`},
		{`x{a="$unknown"}`, `x{a="$unknown"}`},
		{`increase(x[$__range])`, `increase(x[5m])`},
	} {
		if got := SubstituteVariables(tc.in, vars); got != tc.want {
			t.Errorf("SubstituteVariables(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestParseDashboard(t *testing.T) {
	d, err := ParseDashboard("d.json", []byte(`{
	  "title": "Shop",
	  "templating": {"list": [
	    {"name": "service", "type": "query", "query": {"query": "label_values(go_goroutine_count, service_name)"}},
	    {"name": "ds", "type": "datasource"}
	  ]},
	  "panels": [
	    {"title": "row", "type": "row", "panels": [
	      {"title": "rate", "targets": [{"refId": "A", "expr": "sum(rate(x[$__rate_interval]))"}]}
	    ]},
	    {"title": "traces", "datasource": {"type": "tempo", "uid": "tempo"}, "targets": [{"refId": "A", "expr": "{}"}]},
	    {"title": "logs", "targets": [{"refId": "A", "expr": "{service_name=\"order\"}", "datasource": {"uid": "loki"}}]},
	    {"title": "mixed", "datasource": {"uid": "${ds}"}, "targets": [{"refId": "B", "expr": "up"}, {"refId": "C", "expr": "hidden", "hide": true}]}
	  ]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Queries) != 2 || d.Queries[0].Expr != "sum(rate(x[$__rate_interval]))" || d.Queries[1].Expr != "up" {
		t.Fatalf("queries = %v", d.Queries)
	}
	if len(d.Variables) != 2 || d.Variables[0].Query != "label_values(go_goroutine_count, service_name)" {
		t.Fatalf("variables = %+v", d.Variables)
	}
}

func TestReadOTLPJSON(t *testing.T) {
	dir := t.TempDir()
	traces := filepath.Join(dir, "t.jsonl")
	line := `{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"order"}}]},"scopeSpans":[{"scope":{"name":"natsotel"},"spans":[{"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331","parentSpanId":"00f067aa0ba902b7","name":"process order.create","kind":2,"startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000000001000000","attributes":[{"key":"messaging.message.body.size","value":{"intValue":"42"}},{"key":"ok","value":{"boolValue":true}}],"status":{"code":2,"message":"declined"}}]}]}]}`
	// The second line is incomplete (still being written) and must be ignored.
	if err := os.WriteFile(traces, []byte(line+"\n"+line[:40]), 0o644); err != nil {
		t.Fatal(err)
	}
	spans, err := ReadSpans(traces)
	if err != nil {
		t.Fatal(err)
	}
	if len(spans) != 1 {
		t.Fatalf("spans = %d", len(spans))
	}
	s := spans[0]
	if s.Service() != "order" || s.Kind != SpanKindServer || s.StatusCode != StatusError || s.ParentSpanID != "00f067aa0ba902b7" ||
		s.Attributes["messaging.message.body.size"] != int64(42) || s.Attributes["ok"] != true || s.End.Sub(s.Start).Milliseconds() != 1 {
		t.Fatalf("span = %+v", s)
	}

	logs := filepath.Join(dir, "l.jsonl")
	if err := os.WriteFile(logs, []byte(`{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"billing"}}]},"scopeLogs":[{"scope":{},"logRecords":[{"timeUnixNano":"1","severityNumber":9,"severityText":"INFO","body":{"stringValue":"charged"},"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331"}]}]}]}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	recs, err := ReadLogs(logs)
	if err != nil || len(recs) != 1 || recs[0].Body != "charged" || recs[0].SpanID != "b7ad6b7169203331" || recs[0].Service() != "billing" {
		t.Fatalf("logs = %+v, %v", recs, err)
	}

	metrics := filepath.Join(dir, "m.jsonl")
	if err := os.WriteFile(metrics, []byte(`{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"order"}}]},"scopeMetrics":[{"scope":{"name":"natsotel"},"metrics":[{"name":"messaging.process.duration","unit":"s","histogram":{"dataPoints":[{"attributes":[{"key":"messaging.system","value":{"stringValue":"nats"}}],"count":"1"}],"aggregationTemporality":2}}]}]}]}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ms, err := ReadMetrics(metrics)
	if err != nil || len(ms) != 1 || ms[0].Type != "histogram" || ms[0].Unit != "s" || ms[0].Points[0].String("messaging.system") != "nats" {
		t.Fatalf("metrics = %+v, %v", ms, err)
	}
}

func TestMatchesEmpty(t *testing.T) {
	for _, tc := range []struct {
		m    Matcher
		want bool
	}{
		{Matcher{"a", "=", ""}, true},
		{Matcher{"a", "=", "x"}, false},
		{Matcher{"a", "!=", ""}, false},
		{Matcher{"a", "!=", "x"}, true},
		{Matcher{"a", "=~", "x|y"}, false},
		{Matcher{"a", "=~", ".*"}, true},
		{Matcher{"a", "!~", "x"}, true},
		{Matcher{"a", "!~", ".*"}, false},
	} {
		if got := matchesEmpty(tc.m); got != tc.want {
			t.Errorf("matchesEmpty(%v) = %v, want %v", tc.m, got, tc.want)
		}
	}
}
