package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// Matcher is one label matcher of a selector.
type Matcher struct {
	Name, Type, Value string // Type: =, !=, =~, !~
}

// Selector is one vector or matrix selector of a PromQL expression.
type Selector struct {
	Metric   string
	Matchers []Matcher // without the __name__ matcher
}

// Selectors asks Prometheus to parse query (/api/v1/parse_query) and returns its selectors.
func (p *Prometheus) Selectors(ctx context.Context, query string) ([]Selector, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL+"/api/v1/parse_query",
		strings.NewReader(url.Values{"query": {query}}.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   any    `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("parse_query: %s: %w", resp.Status, err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("parse_query: %s", r.Error)
	}
	var out []Selector
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if ms, ok := x["matchers"].([]any); ok {
				var s Selector
				for _, m := range ms {
					mm, _ := m.(map[string]any)
					name, _ := mm["name"].(string)
					typ, _ := mm["type"].(string)
					val, _ := mm["value"].(string)
					if name == "__name__" && typ == "=" {
						s.Metric = val
						continue
					}
					s.Matchers = append(s.Matchers, Matcher{name, typ, val})
				}
				out = append(out, s)
				return
			}
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(r.Data)
	return out, nil
}

// ExplainEmpty tells why query returned no series. It returns an error when a selector
// names a metric Prometheus has no series of, or a label that metric never carries: the
// query is wrong (or the metric is never exported). It returns a description and no error
// when every metric and label exists and only the label values match nothing in this run:
// a query that shows events (timeouts, drops) which did not happen.
func (p *Prometheus) ExplainEmpty(ctx context.Context, query string) (string, error) {
	sels, err := p.Selectors(ctx, query)
	if err != nil {
		return "", err
	}
	var filters []string
	for _, s := range sels {
		if s.Metric == "" {
			continue
		}
		if got, err := p.Query(ctx, fmt.Sprintf(`group({__name__=%q})`, s.Metric)); err != nil {
			return "", err
		} else if len(got) == 0 {
			return "", fmt.Errorf("metric %s has no series at all", s.Metric)
		}
		for _, m := range s.Matchers {
			if matchesEmpty(m) {
				continue // also satisfied by series without the label
			}
			got, err := p.Query(ctx, fmt.Sprintf(`group(%s{%s!=""})`, s.Metric, m.Name))
			if err != nil {
				return "", err
			}
			if len(got) == 0 {
				return "", fmt.Errorf("metric %s has no label %s", s.Metric, m.Name)
			}
			filters = append(filters, fmt.Sprintf("%s%s%q", m.Name, m.Type, m.Value))
		}
	}
	return fmt.Sprintf("every metric and label exists; no series matches %s in this run", strings.Join(filters, ", ")), nil
}

func matchesEmpty(m Matcher) bool {
	switch m.Type {
	case "=":
		return m.Value == ""
	case "!=":
		return m.Value != ""
	case "=~", "!~":
		re, err := regexp.Compile("^(?:" + m.Value + ")$")
		if err != nil {
			return false
		}
		return re.MatchString("") == (m.Type == "=~")
	}
	return false
}
