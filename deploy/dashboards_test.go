package deploy

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// allowedDatasources are the datasource uids grafana/otel-lgtm provisions
// (docker/grafana-datasources.yaml in grafana/docker-otel-lgtm).
var allowedDatasources = map[string]bool{"prometheus": true, "tempo": true, "loki": true, "pyroscope": true}

// allowedVars are the template variables a query may use: the dashboards' own $service and
// $endpoint, and Grafana's built-ins that the e2e test knows how to substitute.
var allowedVars = map[string]bool{"service": true, "endpoint": true, "__rate_interval": true, "__interval": true, "__range": true}

// knownMetrics are the Prometheus names (OTLP translation: dots to underscores, unit
// suffix, _total on counters) of everything the dashboards chart; see the names agreed in
// natsotel (semconv messaging and db for KeyValue), the runtime instrumentation, loadgen, the probe, and
// Tempo's service-graph processor. A typo in a query shows up here instead of as an empty
// panel.
var knownMetrics = map[string]bool{}

func init() {
	for _, m := range []string{
		"messaging_process_duration_seconds", "messaging_client_operation_duration_seconds",
		"db_client_operation_duration_seconds",
		"loadgen_request_duration_seconds", "nats_micro_ping_duration_seconds",
		"traces_service_graph_request_server_seconds", "traces_service_graph_request_client_seconds",
	} {
		for _, s := range []string{"_bucket", "_sum", "_count"} {
			knownMetrics[m+s] = true
		}
	}
	for _, m := range []string{
		"messaging_client_sent_messages_total", "messaging_client_consumed_messages_total",
		"go_memory_used_bytes", "go_memory_limit_bytes", "go_memory_allocated_bytes_total",
		"go_memory_allocations_total", "go_memory_gc_goal_bytes", "go_goroutine_count",
		"go_processor_limit", "go_config_gogc_percent",
		"loadgen_requests_late_total", "loadgen_requests_dropped_total", "loadgen_rate_target_per_second",
		"nats_micro_up", "nats_micro_endpoint_requests_total", "nats_micro_endpoint_errors_total",
		"nats_micro_endpoint_processing_time_average_seconds",
		"traces_service_graph_request_total", "traces_service_graph_request_failed_total",
		// Resource attributes per (job, instance): the OBI dashboard tells OBI's series
		// from the SDK's by telemetry_sdk_name.
		"target_info",
	} {
		knownMetrics[m] = true
	}
}

type dashboard struct {
	file  string
	model map[string]any
}

func loadDashboards(t *testing.T) []dashboard {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dashboardsDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no dashboards in %s", dashboardsDir)
	}
	var out []dashboard
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, dashboard{file: f, model: m})
	}
	return out
}

// query is one target of one panel, with the datasource it runs against.
type query struct {
	panel, datasource string
	target            map[string]any
}

// panels walks a dashboard's panels, including those nested in collapsed rows.
func panels(m map[string]any) []map[string]any {
	var out []map[string]any
	var walk func(list any)
	walk = func(list any) {
		items, _ := list.([]any)
		for _, it := range items {
			p, ok := it.(map[string]any)
			if !ok {
				continue
			}
			out = append(out, p)
			walk(p["panels"])
		}
	}
	walk(m["panels"])
	return out
}

func dsUID(v any) string {
	switch ds := v.(type) {
	case map[string]any:
		s, _ := ds["uid"].(string)
		return s
	case string:
		return ds // legacy: datasource by name
	}
	return ""
}

func queries(t *testing.T, d dashboard) []query {
	var out []query
	for _, p := range panels(d.model) {
		title, _ := p["title"].(string)
		panelDS := dsUID(p["datasource"])
		targets, _ := p["targets"].([]any)
		for _, raw := range targets {
			tg, _ := raw.(map[string]any)
			ds := dsUID(tg["datasource"])
			if ds == "" {
				ds = panelDS
			}
			if ds == "" {
				t.Errorf("%s: panel %q has a target without a datasource", d.file, title)
			}
			out = append(out, query{panel: title, datasource: ds, target: tg})
		}
	}
	return out
}

func TestDashboardsUIDsAndTitles(t *testing.T) {
	uids, titles := map[string]string{}, map[string]string{}
	for _, d := range loadDashboards(t) {
		uid, _ := d.model["uid"].(string)
		title, _ := d.model["title"].(string)
		// Stable uids: links and bookmarks survive edits and re-provisioning.
		want := "natsotel-" + strings.TrimSuffix(filepath.Base(d.file), ".json")
		if uid != want {
			t.Errorf("%s: uid %q, want %q", d.file, uid, want)
		}
		if len(uid) > 40 {
			t.Errorf("%s: uid %q longer than Grafana's 40 characters", d.file, uid)
		}
		if title == "" {
			t.Errorf("%s: no title", d.file)
		}
		if other, dup := uids[uid]; dup {
			t.Errorf("uid %q in both %s and %s", uid, other, d.file)
		}
		if other, dup := titles[title]; dup {
			t.Errorf("title %q in both %s and %s", title, other, d.file)
		}
		uids[uid], titles[title] = d.file, d.file

		ids := map[float64]bool{}
		for _, p := range panels(d.model) {
			id, _ := p["id"].(float64)
			if ids[id] {
				t.Errorf("%s: panel id %v used twice", d.file, id)
			}
			ids[id] = true
		}
	}
}

func TestDashboardsDatasources(t *testing.T) {
	for _, d := range loadDashboards(t) {
		for _, p := range panels(d.model) {
			if ds := dsUID(p["datasource"]); ds != "" && !allowedDatasources[ds] {
				t.Errorf("%s: panel %q uses datasource %q", d.file, p["title"], ds)
			}
		}
		for _, q := range queries(t, d) {
			if !allowedDatasources[q.datasource] {
				t.Errorf("%s: panel %q queries datasource %q; otel-lgtm provisions only prometheus, tempo, loki, pyroscope", d.file, q.panel, q.datasource)
			}
		}
		for _, v := range templateVars(d) {
			if ds := dsUID(v["datasource"]); ds != "" && !allowedDatasources[ds] {
				t.Errorf("%s: variable %v uses datasource %q", d.file, v["name"], ds)
			}
		}
	}
}

var (
	varRef       = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)`)
	promStrings  = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	promMatchers = regexp.MustCompile(`\{[^{}]*\}`)
	promRanges   = regexp.MustCompile(`\[[^\]]*\]`)
	promGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promIdent    = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
	promFuncs    = map[string]bool{
		"rate": true, "irate": true, "increase": true, "sum": true, "max": true, "min": true, "avg": true,
		"count": true, "histogram_quantile": true, "vector": true, "and": true, "or": true, "unless": true, "bool": true,
	}
)

func templateVars(d dashboard) []map[string]any {
	tmpl, _ := d.model["templating"].(map[string]any)
	list, _ := tmpl["list"].([]any)
	var out []map[string]any
	for _, raw := range list {
		if v, ok := raw.(map[string]any); ok {
			out = append(out, v)
		}
	}
	return out
}

// TestDashboardsPromQL checks every Prometheus query without a Prometheus: non-empty,
// balanced brackets and quotes, only known template variables (each defined by the
// dashboard), only known metric names. The e2e module evaluates every one of these
// queries against a real Prometheus fed by the real services.
func TestDashboardsPromQL(t *testing.T) {
	total := 0
	for _, d := range loadDashboards(t) {
		defined := map[string]bool{"__rate_interval": true, "__interval": true, "__range": true}
		for _, v := range templateVars(d) {
			name, _ := v["name"].(string)
			defined[name] = true
			q := v["query"]
			if m, ok := q.(map[string]any); ok {
				q = m["query"]
			}
			if s, _ := q.(string); !strings.HasPrefix(s, "label_values(") {
				t.Errorf("%s: variable %s: query %v, want label_values(...)", d.file, name, q)
			} else {
				args := strings.TrimSuffix(strings.TrimPrefix(s, "label_values("), ")")
				i := strings.LastIndex(args, ",")
				if i < 0 || strings.TrimSpace(args[i+1:]) == "" {
					t.Errorf("%s: variable %s: %q names no label", d.file, name, s)
					continue
				}
				checkPromQL(t, d.file, "variable "+name, args[:i], defined)
			}
		}
		for _, q := range queries(t, d) {
			switch q.datasource {
			case "prometheus":
				expr, _ := q.target["expr"].(string)
				if strings.TrimSpace(expr) == "" {
					t.Errorf("%s: panel %q: Prometheus target without expr", d.file, q.panel)
					continue
				}
				total++
				checkPromQL(t, d.file, q.panel, expr, defined)
			case "loki":
				if expr, _ := q.target["expr"].(string); !strings.HasPrefix(strings.TrimSpace(expr), "{") {
					t.Errorf("%s: panel %q: Loki expr %q must start with a stream selector", d.file, q.panel, expr)
				}
			case "tempo":
				qt, _ := q.target["queryType"].(string)
				if qt == "" {
					t.Errorf("%s: panel %q: Tempo target without queryType", d.file, q.panel)
				}
				if qt == "traceql" {
					if s, _ := q.target["query"].(string); !strings.HasPrefix(strings.TrimSpace(s), "{") {
						t.Errorf("%s: panel %q: TraceQL %q", d.file, q.panel, s)
					}
				}
			}
		}
	}
	t.Logf("%d Prometheus queries checked", total)
}

func checkPromQL(t *testing.T, file, panel, expr string, defined map[string]bool) {
	t.Helper()
	if err := balanced(expr); err != "" {
		t.Errorf("%s: panel %q: %s in %q", file, panel, err, expr)
	}
	for _, m := range varRef.FindAllStringSubmatch(expr, -1) {
		if !allowedVars[m[1]] {
			t.Errorf("%s: panel %q uses $%s; the e2e test only substitutes %v", file, panel, m[1], keys(allowedVars))
		}
		if !defined[m[1]] {
			t.Errorf("%s: panel %q uses $%s, which the dashboard does not define", file, panel, m[1])
		}
	}
	// What is left without strings, label matchers, ranges, grouping clauses and
	// variables is functions, keywords, numbers and metric names.
	bare := expr
	for _, re := range []*regexp.Regexp{promStrings, promMatchers, promRanges, promGrouping, varRef} {
		bare = re.ReplaceAllString(bare, " ")
	}
	found := false
	for _, name := range promIdent.FindAllString(bare, -1) {
		if promFuncs[name] {
			continue
		}
		found = true
		if !knownMetrics[name] {
			t.Errorf("%s: panel %q: unknown metric %s", file, panel, name)
		}
	}
	if !found {
		t.Errorf("%s: panel %q: no metric in %q", file, panel, expr)
	}
}

// balanced reports unbalanced brackets or an unterminated string ("" when fine).
func balanced(expr string) string {
	var stack []rune
	pairs := map[rune]rune{')': '(', '}': '{', ']': '['}
	var quote rune
	for _, r := range expr {
		if quote != 0 {
			if r == quote {
				quote = 0
			}
			continue
		}
		switch r {
		case '"', '\'', '`':
			quote = r
		case '(', '{', '[':
			stack = append(stack, r)
		case ')', '}', ']':
			if len(stack) == 0 || stack[len(stack)-1] != pairs[r] {
				return "unbalanced " + string(r)
			}
			stack = stack[:len(stack)-1]
		}
	}
	if quote != 0 {
		return "unterminated string"
	}
	if len(stack) > 0 {
		return "unclosed " + string(stack[len(stack)-1])
	}
	return ""
}

// TestHomeDashboardLinks checks the two entry points the README sends readers to.
func TestHomeDashboardLinks(t *testing.T) {
	var home map[string]any
	for _, d := range loadDashboards(t) {
		if filepath.Base(d.file) == "home.json" {
			home = d.model
		}
	}
	if home == nil {
		t.Fatal("no home.json")
	}
	links, _ := home["links"].([]any)
	var serviceMap, drilldown bool
	for _, raw := range links {
		l, _ := raw.(map[string]any)
		u, _ := l["url"].(string)
		if strings.HasPrefix(u, "/a/grafana-exploretraces-app/explore") {
			drilldown = true
		}
		if strings.HasPrefix(u, "/explore?") {
			parsed, err := url.Parse(u)
			if err != nil {
				t.Fatalf("explore link: %v", err)
			}
			var panes map[string]struct {
				Datasource string
				Queries    []struct {
					QueryType  string
					Datasource struct{ UID string }
				}
			}
			if err := json.Unmarshal([]byte(parsed.Query().Get("panes")), &panes); err != nil {
				t.Fatalf("explore link panes: %v", err)
			}
			for _, p := range panes {
				for _, q := range p.Queries {
					if p.Datasource == "tempo" && q.Datasource.UID == "tempo" && q.QueryType == "serviceMap" {
						serviceMap = true
					}
				}
			}
		}
	}
	if !serviceMap {
		t.Error("home dashboard has no link to Explore's Tempo service map")
	}
	if !drilldown {
		t.Error("home dashboard has no link to Traces Drilldown")
	}
	// Every dashboard is reachable from every other through the tag link.
	for _, d := range loadDashboards(t) {
		tags, _ := d.model["tags"].([]any)
		if !slices.Contains(tags, any("natsotel")) {
			t.Errorf("%s: missing tag natsotel (the dashboards link menu lists by tag)", d.file)
		}
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
