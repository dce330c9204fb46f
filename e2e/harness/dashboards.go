package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// DashboardQuery is one PromQL expression found in a Grafana dashboard.
type DashboardQuery struct {
	Dashboard string // file or title
	Panel     string // panel title ("variable <name>" for template variables)
	RefID     string
	Expr      string // as written, with template variables
}

func (q DashboardQuery) String() string {
	return fmt.Sprintf("%s / %s / %s: %s", q.Dashboard, q.Panel, q.RefID, q.Expr)
}

// DashboardVariable is a templating variable of a dashboard.
type DashboardVariable struct {
	Name  string
	Type  string // query, custom, constant, interval, datasource, textbox
	Query string // for query variables: label_values(...) or a PromQL expression
	// Options are the values of custom/constant/interval variables, or the current value.
	Options []string
}

// Dashboard is the PromQL-relevant part of a Grafana dashboard JSON.
type Dashboard struct {
	Title     string
	Queries   []DashboardQuery
	Variables []DashboardVariable
}

// ParseDashboard extracts every Prometheus target expression (panels, nested rows) and the
// templating variables. Targets whose datasource is not Prometheus (Tempo, Loki, ...) are
// left out; a target without a datasource inherits its panel's, then the dashboard default
// (Prometheus).
func ParseDashboard(name string, data []byte) (Dashboard, error) {
	var raw struct {
		Title      string            `json:"title"`
		Panels     []json.RawMessage `json:"panels"`
		Templating struct {
			List []struct {
				Name       string          `json:"name"`
				Type       string          `json:"type"`
				Query      json.RawMessage `json:"query"`
				Definition string          `json:"definition"`
				Datasource json.RawMessage `json:"datasource"`
				Options    []struct {
					Value json.RawMessage `json:"value"`
				} `json:"options"`
				Current struct {
					Value json.RawMessage `json:"value"`
				} `json:"current"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return Dashboard{}, fmt.Errorf("dashboard %s: %w", name, err)
	}
	d := Dashboard{Title: raw.Title}
	for _, v := range raw.Templating.List {
		dv := DashboardVariable{Name: v.Name, Type: v.Type}
		dv.Query = queryString(v.Query)
		if dv.Query == "" {
			dv.Query = v.Definition
		}
		for _, o := range v.Options {
			dv.Options = append(dv.Options, stringsOf(o.Value)...)
		}
		if len(dv.Options) == 0 {
			dv.Options = stringsOf(v.Current.Value)
		}
		if dv.Type == "custom" && len(dv.Options) == 0 && dv.Query != "" {
			for _, o := range strings.Split(dv.Query, ",") {
				dv.Options = append(dv.Options, strings.TrimSpace(o))
			}
		}
		d.Variables = append(d.Variables, dv)
		if dv.Type == "query" && dv.Query != "" && !strings.HasPrefix(dv.Query, "label_values(") &&
			!strings.HasPrefix(dv.Query, "label_names(") && !strings.HasPrefix(dv.Query, "metrics(") &&
			isPrometheus(v.Datasource, true) {
			q := strings.TrimPrefix(dv.Query, "query_result(")
			if q != dv.Query {
				q = strings.TrimSuffix(q, ")")
			}
			d.Queries = append(d.Queries, DashboardQuery{Dashboard: name, Panel: "variable " + dv.Name, Expr: q})
		}
	}
	var walk func(panels []json.RawMessage)
	walk = func(panels []json.RawMessage) {
		for _, rp := range panels {
			var p struct {
				Title      string            `json:"title"`
				Datasource json.RawMessage   `json:"datasource"`
				Panels     []json.RawMessage `json:"panels"`
				Targets    []struct {
					RefID      string          `json:"refId"`
					Expr       string          `json:"expr"`
					Hide       bool            `json:"hide"`
					Datasource json.RawMessage `json:"datasource"`
				} `json:"targets"`
			}
			if err := json.Unmarshal(rp, &p); err != nil {
				continue
			}
			panelProm := isPrometheus(p.Datasource, true)
			for _, tg := range p.Targets {
				if tg.Expr == "" || tg.Hide || !isPrometheus(tg.Datasource, panelProm) {
					continue
				}
				d.Queries = append(d.Queries, DashboardQuery{Dashboard: name, Panel: p.Title, RefID: tg.RefID, Expr: tg.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(raw.Panels)
	return d, nil
}

// isPrometheus decides from a datasource reference ({"type","uid"}, a name string, or
// absent) whether it is Prometheus; def is the answer when nothing says.
func isPrometheus(ds json.RawMessage, def bool) bool {
	if len(ds) == 0 || string(ds) == "null" {
		return def
	}
	var ref struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	}
	var s string
	if json.Unmarshal(ds, &s) == nil {
		ref.UID = s
	} else if json.Unmarshal(ds, &ref) != nil {
		return def
	}
	all := strings.ToLower(ref.Type + " " + ref.UID)
	switch {
	case strings.Contains(all, "prometheus"):
		return true
	case strings.Contains(all, "loki"), strings.Contains(all, "tempo"), strings.Contains(all, "pyroscope"),
		strings.Contains(all, "grafana"), strings.Contains(all, "dashboard"), strings.Contains(all, "expression"),
		ref.UID == "__expr__":
		return false
	}
	return def // "${datasource}", "$DS" and the like: a Prometheus variable in practice
}

func queryString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var q struct {
		Query string `json:"query"`
	}
	if json.Unmarshal(raw, &q) == nil {
		return q.Query
	}
	return ""
}

func stringsOf(raw json.RawMessage) []string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []string{s}
	}
	var ss []string
	if json.Unmarshal(raw, &ss) == nil {
		return ss
	}
	return nil
}

// Grafana's built-in variables, with values that suit a test run of a minute or two.
var builtinVars = map[string]string{
	"__rate_interval":    "1m",
	"__interval":         "15s",
	"__interval_ms":      "15000",
	"__range":            "5m",
	"__range_s":          "300",
	"__range_ms":         "300000",
	"__auto":             "1m",
	"__auto_interval":    "1m",
	"__from":             "0",
	"__to":               "0",
	"__dashboard":        "e2e",
	"__org":              "1",
	"__user":             "admin",
	"__name":             "e2e",
	"__all":              ".*",
	"__timeFilter":       "",
	"__unixEpochFrom()":  "0",
	"__unixEpochTo()":    "0",
	"__interval_seconds": "15",
}

var varRef = regexp.MustCompile(`\$\{([A-Za-z0-9_]+)(?::[A-Za-z0-9_]+)?\}|\[\[([A-Za-z0-9_]+)(?::[A-Za-z0-9_]+)?\]\]|\$([A-Za-z0-9_]+)`)

// ResolveVariables gives every variable of d concrete values from p, the way Grafana would
// when the dashboard loads: label_values() and query variables are evaluated (once per
// dashboard, in order, so a variable may use an earlier one), custom/constant variables use
// their options, interval variables their first option.
func ResolveVariables(ctx context.Context, p *Prometheus, d Dashboard) (map[string][]string, error) {
	vals := map[string][]string{}
	labelValues := regexp.MustCompile(`^label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)$`)
	labelOnly := regexp.MustCompile(`^label_values\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)$`)
	for _, v := range d.Variables {
		switch v.Type {
		case "query":
			q := strings.TrimSpace(v.Query)
			var label, expr string
			if m := labelValues.FindStringSubmatch(q); m != nil {
				expr, label = strings.TrimSpace(m[1]), m[2]
			} else if m := labelOnly.FindStringSubmatch(q); m != nil {
				expr, label = fmt.Sprintf(`{%s!=""}`, m[1]), m[1]
			} else if q != "" {
				expr = q
			}
			if expr == "" {
				continue
			}
			expr = SubstituteVariables(expr, vals)
			s, err := p.Query(ctx, expr)
			if err != nil {
				return vals, fmt.Errorf("variable %s: %w", v.Name, err)
			}
			set := map[string]bool{}
			for _, x := range s {
				if label != "" {
					if lv := x.Metric[label]; lv != "" {
						set[lv] = true
					}
				} else if n := x.Metric["__name__"]; n != "" {
					set[n] = true
				}
			}
			vals[v.Name] = SortedKeys(set)
		case "datasource":
			vals[v.Name] = []string{"prometheus"}
		case "interval":
			if len(v.Options) > 0 {
				vals[v.Name] = v.Options[:1]
			} else {
				vals[v.Name] = []string{"1m"}
			}
		default:
			var opts []string
			for _, o := range v.Options {
				if o != "$__all" && o != "All" {
					opts = append(opts, o)
				}
			}
			vals[v.Name] = opts
		}
	}
	return vals, nil
}

// SubstituteVariables replaces $var, ${var}, ${var:fmt} and [[var]] in expr. A variable used
// after a regex matcher (=~ or !~ "...$var...") becomes the alternation of all its values, as
// Grafana renders a multi-value or All selection; elsewhere it becomes its first value.
// Grafana's built-ins ($__rate_interval, $__interval, $__range, ...) get fixed values.
// Unknown variables are left as they are, so the query fails and names them.
func SubstituteVariables(expr string, vars map[string][]string) string {
	var b strings.Builder
	last := 0
	for _, m := range varRef.FindAllStringSubmatchIndex(expr, -1) {
		name := ""
		for g := 1; g <= 3; g++ {
			if m[2*g] >= 0 {
				name = expr[m[2*g]:m[2*g+1]]
			}
		}
		repl, ok := builtinVars[name]
		if !ok {
			vs, known := vars[name]
			if !known {
				continue
			}
			if quote, ok := inRegexMatcher(expr[:m[0]]); ok {
				quoted := make([]string, 0, len(vs))
				for _, v := range vs {
					q := regexp.QuoteMeta(v)
					if quote != '`' { // in "..." and '...' PromQL strings a backslash is escaped
						q = strings.ReplaceAll(q, `\`, `\\`)
					}
					quoted = append(quoted, q)
				}
				sort.Strings(quoted)
				repl = strings.Join(quoted, "|")
				if len(vs) > 1 {
					repl = "(" + repl + ")"
				}
				if len(vs) == 0 {
					repl = ".*"
				}
			} else if len(vs) > 0 {
				repl = vs[0]
			}
		}
		b.WriteString(expr[last:m[0]])
		b.WriteString(repl)
		last = m[1]
	}
	b.WriteString(expr[last:])
	return b.String()
}

// inRegexMatcher reports whether the text before a variable ends inside the value of a =~ or
// !~ matcher, and which quote opened that value.
func inRegexMatcher(before string) (byte, bool) {
	q := strings.LastIndexAny(before, "\"'`")
	if q < 0 {
		return 0, false
	}
	quote := before[q]
	// The quote must open a value (odd number of such quotes so far) preceded by =~ or !~.
	if strings.Count(before, string(quote))%2 == 0 {
		return 0, false
	}
	op := strings.TrimRight(before[:q], " ")
	return quote, strings.HasSuffix(op, "=~") || strings.HasSuffix(op, "!~")
}
