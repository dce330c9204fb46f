package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/natsotel/reference/e2e/config"
)

// Prometheus is a running Prometheus with its OTLP receiver on.
type Prometheus struct {
	// URL is the base URL ("http://127.0.0.1:<port>").
	URL string
	// OTLPEndpoint is where OTLP/HTTP metrics go (URL + "/api/v1/otlp").
	OTLPEndpoint string
	Proc         *Process

	client *http.Client
}

// StartPrometheus starts Prometheus with config/prometheus.yaml.tmpl on a free port and
// waits for /-/ready.
func StartPrometheus(t testing.TB, tools Tools, dir string) *Prometheus {
	t.Helper()
	cfgPath := filepath.Join(dir, "prometheus.yaml")
	renderTemplate(t, "prometheus.yaml.tmpl", cfgPath, nil)
	tsdb := filepath.Join(dir, "prometheus-data")
	p := &Prometheus{client: &http.Client{Timeout: 10 * time.Second}}
	p.Proc = startTool(t, toolStart{
		attempt: func(int) ProcessConfig {
			port := FreePort(t)
			p.URL = fmt.Sprintf("http://127.0.0.1:%d", port)
			p.OTLPEndpoint = p.URL + "/api/v1/otlp"
			return ProcessConfig{
				Name: "prometheus",
				Path: tools.Prometheus,
				Args: []string{
					"--config.file=" + cfgPath,
					"--web.listen-address=" + fmt.Sprintf("127.0.0.1:%d", port),
					"--storage.tsdb.path=" + tsdb,
					// As otel-lgtm's run-prometheus.sh:
					"--web.enable-otlp-receiver",
					"--web.enable-remote-write-receiver",
					"--enable-feature=exemplar-storage",
					"--log.level=warn",
				},
				Env:    BaseEnv(dir),
				LogDir: dir,
			}
		},
		ready: func(ctx context.Context, proc *Process) error {
			if err := WaitHTTP(ctx, p.URL+"/-/ready", proc); err != nil {
				return err
			}
			return p.checkTSDBPath(ctx, tsdb)
		},
		timeout: 60 * time.Second,
	})
	t.Cleanup(func() { p.Proc.stop(t) })
	return p
}

// checkTSDBPath makes sure the Prometheus answering on p.URL is the one started with tsdb
// as its storage, not another process that holds the same port.
func (p *Prometheus) checkTSDBPath(ctx context.Context, tsdb string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/api/v1/status/flags", nil)
	if err != nil {
		return err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("prometheus flags: %w", err)
	}
	defer resp.Body.Close()
	var r struct {
		Data map[string]string `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return fmt.Errorf("prometheus flags: %s: %w", resp.Status, err)
	}
	if got := r.Data["storage.tsdb.path"]; got != tsdb {
		return fmt.Errorf("%s is another Prometheus (storage.tsdb.path %q, want %q)", p.URL, got, tsdb)
	}
	return nil
}

// Sample is one series of an instant-query result.
type Sample struct {
	Metric map[string]string
	Value  float64
	Time   time.Time
}

func (s Sample) String() string {
	keys := make([]string, 0, len(s.Metric))
	for k := range s.Metric {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(s.Metric["__name__"])
	b.WriteString("{")
	first := true
	for _, k := range keys {
		if k == "__name__" {
			continue
		}
		if !first {
			b.WriteString(", ")
		}
		first = false
		fmt.Fprintf(&b, "%s=%q", k, s.Metric[k])
	}
	fmt.Fprintf(&b, "} %g", s.Value)
	return b.String()
}

// Query runs an instant query now. Vector and scalar results come back as samples; a matrix
// (a range selector) comes back as one sample per series holding its last value.
func (p *Prometheus) Query(ctx context.Context, query string) ([]Sample, error) {
	form := url.Values{"query": {query}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL+"/api/v1/query", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("query %q: %w", query, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("query %q: %w", query, err)
	}
	var r struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
		Data      struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("query %q: %s: %w", query, resp.Status, err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("query %q: %s: %s", query, r.ErrorType, r.Error)
	}
	switch r.Data.ResultType {
	case "vector":
		var v []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}
		if err := json.Unmarshal(r.Data.Result, &v); err != nil {
			return nil, err
		}
		out := make([]Sample, 0, len(v))
		for _, s := range v {
			out = append(out, sample(s.Metric, s.Value))
		}
		return out, nil
	case "matrix":
		var m []struct {
			Metric map[string]string `json:"metric"`
			Values [][2]any          `json:"values"`
		}
		if err := json.Unmarshal(r.Data.Result, &m); err != nil {
			return nil, err
		}
		out := make([]Sample, 0, len(m))
		for _, s := range m {
			if len(s.Values) > 0 {
				out = append(out, sample(s.Metric, s.Values[len(s.Values)-1]))
			}
		}
		return out, nil
	case "scalar":
		var v [2]any
		if err := json.Unmarshal(r.Data.Result, &v); err != nil {
			return nil, err
		}
		return []Sample{sample(nil, v)}, nil
	}
	return nil, fmt.Errorf("query %q: result type %q", query, r.Data.ResultType)
}

func sample(metric map[string]string, v [2]any) Sample {
	s := Sample{Metric: metric}
	if ts, ok := v[0].(float64); ok {
		s.Time = time.UnixMilli(int64(ts * 1000))
	}
	if str, ok := v[1].(string); ok {
		s.Value, _ = strconv.ParseFloat(str, 64)
	}
	return s
}

// NonEmpty is a WaitQuery predicate: at least one series.
func NonEmpty(s []Sample) bool { return len(s) > 0 }

// WaitQuery polls query until pred accepts the result or timeout passes, and returns the
// last result. On timeout it fails the test with the last result or error.
func (p *Prometheus) WaitQuery(t testing.TB, query string, timeout time.Duration, pred func([]Sample) bool) []Sample {
	t.Helper()
	s, err := p.PollQuery(context.Background(), query, timeout, pred)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// PollQuery is WaitQuery returning an error instead of failing the test.
func (p *Prometheus) PollQuery(ctx context.Context, query string, timeout time.Duration, pred func([]Sample) bool) ([]Sample, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var (
		last    []Sample
		lastErr error
	)
	for {
		qctx, qcancel := context.WithTimeout(ctx, 5*time.Second)
		s, err := p.Query(qctx, query)
		qcancel()
		if err == nil && pred(s) {
			return s, nil
		}
		switch {
		case err == nil:
			last, lastErr = s, nil
		case ctx.Err() == nil: // not the deadline cutting the last attempt short
			lastErr = err
		}
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return last, fmt.Errorf("waiting %v for %s: %w", timeout, query, lastErr)
			}
			return last, fmt.Errorf("waiting %v for %s: condition not met; last result:\n%s", timeout, query, FormatSamples(last))
		case <-tick.C:
		}
	}
}

// FormatSamples renders samples one per line, sorted, for failure messages and logs.
func FormatSamples(s []Sample) string {
	if len(s) == 0 {
		return "  (no series)"
	}
	lines := make([]string, 0, len(s))
	for _, x := range s {
		lines = append(lines, "  "+x.String())
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// Metadata returns Prometheus' metric metadata (type, unit, help) for metric, as
// /api/v1/metadata reports it.
func (p *Prometheus) Metadata(ctx context.Context, metric string) ([]map[string]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/api/v1/metadata?metric="+url.QueryEscape(metric), nil)
	if err != nil {
		return nil, err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Data map[string][]map[string]string `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, fmt.Errorf("metadata %s: %w", metric, err)
	}
	return r.Data[metric], nil
}

// renderTemplate executes the embedded config template name into path.
func renderTemplate(t testing.TB, name, path string, data any) {
	t.Helper()
	tmpl, err := template.New(name).Funcs(template.FuncMap{
		// json renders a value as JSON, which is also YAML (lists of strings in flow style).
		"json": func(v any) (string, error) {
			b, err := json.Marshal(v)
			return string(b), err
		},
	}).ParseFS(config.FS, name)
	if err != nil {
		t.Fatalf("template %s: %v", name, err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := tmpl.Execute(f, data); err != nil {
		t.Fatalf("template %s: %v", name, err)
	}
}

// Exemplar is one exemplar of a series: its labels (trace_id, span_id) and value.
type Exemplar struct {
	Series map[string]string
	Labels map[string]string
	Value  float64
	Time   time.Time
}

// Exemplars returns the exemplars of the series query selects over the last window.
func (p *Prometheus) Exemplars(ctx context.Context, query string, window time.Duration) ([]Exemplar, error) {
	now := time.Now()
	form := url.Values{
		"query": {query},
		"start": {strconv.FormatFloat(float64(now.Add(-window).UnixMilli())/1000, 'f', 3, 64)},
		"end":   {strconv.FormatFloat(float64(now.UnixMilli())/1000, 'f', 3, 64)},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL+"/api/v1/query_exemplars", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   []struct {
			SeriesLabels map[string]string `json:"seriesLabels"`
			Exemplars    []struct {
				Labels    map[string]string `json:"labels"`
				Value     string            `json:"value"`
				Timestamp float64           `json:"timestamp"`
			} `json:"exemplars"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, fmt.Errorf("exemplars %q: %s: %w", query, resp.Status, err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("exemplars %q: %s", query, r.Error)
	}
	var out []Exemplar
	for _, d := range r.Data {
		for _, e := range d.Exemplars {
			v, _ := strconv.ParseFloat(e.Value, 64)
			out = append(out, Exemplar{Series: d.SeriesLabels, Labels: e.Labels, Value: v, Time: time.UnixMilli(int64(e.Timestamp * 1000))})
		}
	}
	return out, nil
}
