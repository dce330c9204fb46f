package harness

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestRepoTempoGenerator: the repository's Tempo config loads, and what the collector is
// given follows from it (buckets as durations, the store's TTL from wait, the labels kept).
func TestRepoTempoGenerator(t *testing.T) {
	g, err := RepoTempoGenerator()
	if err != nil {
		t.Fatal(err)
	}
	sg := g.ServiceGraphs
	if len(sg.HistogramBuckets) == 0 || sg.HistogramBuckets[0] >= 0.1 {
		t.Errorf("service-graph buckets %v: start at Tempo's default 0.1 s, NATS edges all land in the first", sg.HistogramBuckets)
	}
	c := g.collector()
	if len(c.ServiceGraphBuckets) != len(sg.HistogramBuckets) || c.ServiceGraphBuckets[0] != "250µs" {
		t.Errorf("connector buckets %v from %v", c.ServiceGraphBuckets, sg.HistogramBuckets)
	}
	if c.StoreTTL != sg.Wait.String() {
		t.Errorf("store ttl %s, want Tempo's wait %s", c.StoreTTL, sg.Wait)
	}
	if slices.Contains(c.ServiceGraphLabels, "failed") || !slices.Contains(c.ServiceGraphLabels, "virtual_node") {
		t.Errorf("service-graph labels %v: Tempo has virtual_node (enabled) and no failed", c.ServiceGraphLabels)
	}
}

func TestLoadTempoGeneratorDefaults(t *testing.T) {
	g, err := LoadTempoGenerator(writeTempoConfig(t, "metrics_generator:\n  processor: {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	// Tempo v3.0.3's defaults (modules/generator/processor/*/config.go).
	if want := []float64{0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8}; !slices.Equal(g.ServiceGraphs.HistogramBuckets, want) {
		t.Errorf("service-graph buckets %v, want %v", g.ServiceGraphs.HistogramBuckets, want)
	}
	if b := g.SpanMetrics.HistogramBuckets; len(b) != 14 || b[0] != 0.002 {
		t.Errorf("span-metrics buckets %v, want 14 from 0.002", b)
	}
	if g.ServiceGraphs.Wait != 10*time.Second || g.ServiceGraphs.MaxItems != 10000 {
		t.Errorf("wait %v max_items %d, want 10s 10000", g.ServiceGraphs.Wait, g.ServiceGraphs.MaxItems)
	}
	if !slices.Equal(g.ServiceGraphs.PeerAttributes, []string{"peer.service", "db.name", "db.system"}) {
		t.Errorf("peer attributes %v", g.ServiceGraphs.PeerAttributes)
	}
	if c := g.collector(); slices.Contains(c.ServiceGraphLabels, "virtual_node") {
		t.Errorf("labels %v: virtual_node only with enable_virtual_node_label", c.ServiceGraphLabels)
	}
}

// TestLoadTempoGeneratorRefuses: settings the collector stand-in cannot reproduce, or that
// are malformed, fail loudly instead of letting the tests see differently shaped metrics.
func TestLoadTempoGeneratorRefuses(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"metrics_generator:\n  processor:\n    service_graphs:\n      enable_client_server_prefix: true\n", "enable_client_server_prefix"},
		{"metrics_generator:\n  processor:\n    span_metrics:\n      enable_target_info: true\n", "enable_target_info"},
		{"metrics_generator:\n  processor:\n    service_graphs:\n      histogram_buckets: [0.01, 0.001]\n", "increasing"},
		{"metrics_generator:\n  processor:\n    service_graphs:\n      wait: soon\n", "wait"},
		{"metrics_generator: [", "tempo.yaml"},
	} {
		_, err := LoadTempoGenerator(writeTempoConfig(t, tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err %v, want one mentioning %s", tc.yaml, err, tc.want)
		}
	}
}

func writeTempoConfig(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tempo.yaml")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
