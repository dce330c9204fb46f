package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"go.yaml.in/yaml/v4"
)

// TempoConfigPath is the Tempo configuration compose mounts into otel-lgtm, relative to the
// repository root. The harness's collector takes its servicegraph and spanmetrics settings
// from it, so the tests see the buckets, labels and nodes Tempo would make.
const TempoConfigPath = "deploy/lgtm/tempo-config.yaml"

// TempoGenerator is the metrics-generator processor configuration of a Tempo config file
// (metrics_generator.processor), with Tempo v3.0.3's defaults for whatever the file leaves
// out (modules/generator/processor/{servicegraphs,spanmetrics}/config.go).
type TempoGenerator struct {
	ServiceGraphs TempoServiceGraphs
	SpanMetrics   TempoSpanMetrics
}

// TempoServiceGraphs is Tempo's service-graphs processor configuration.
type TempoServiceGraphs struct {
	HistogramBuckets []float64 // seconds
	// Wait is how long Tempo keeps half an edge waiting for the other half.
	Wait     time.Duration
	MaxItems int
	// Dimensions are extra labels from span or resource attributes.
	Dimensions []string
	// MessagingSystemLatency: traces_service_graph_request_messaging_system_seconds (the
	// collector's connector cannot make it; see StartCollector).
	MessagingSystemLatency bool
	// VirtualNodeLabel: virtual_node="client"/"server" on edges to inferred nodes.
	VirtualNodeLabel bool
	// PeerAttributes name a virtual node when half an edge never arrives.
	PeerAttributes []string
	// DatabaseNameAttributes make a CLIENT span a database edge and name the database.
	DatabaseNameAttributes []string
}

// TempoSpanMetrics is Tempo's span-metrics processor configuration.
type TempoSpanMetrics struct {
	HistogramBuckets []float64 // seconds
	Dimensions       []string
}

// LoadTempoGenerator reads the metrics-generator settings of the Tempo config at path. It
// refuses settings the collector stand-in cannot reproduce, so the tests never pass on a
// configuration that shapes metrics differently in otel-lgtm.
func LoadTempoGenerator(path string) (TempoGenerator, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return TempoGenerator{}, err
	}
	var f struct {
		MetricsGenerator struct {
			Processor struct {
				ServiceGraphs struct {
					HistogramBuckets         []float64 `yaml:"histogram_buckets"`
					Wait                     string    `yaml:"wait"`
					MaxItems                 *int      `yaml:"max_items"`
					Dimensions               []string  `yaml:"dimensions"`
					EnableClientServerPrefix bool      `yaml:"enable_client_server_prefix"`
					Messaging                bool      `yaml:"enable_messaging_system_latency_histogram"`
					VirtualNodeLabel         bool      `yaml:"enable_virtual_node_label"`
					PeerAttributes           []string  `yaml:"peer_attributes"`
					DatabaseNameAttributes   []string  `yaml:"database_name_attributes"`
					SpanMultiplierKey        string    `yaml:"span_multiplier_key"`
					FilterPolicies           []any     `yaml:"filter_policies"`
				} `yaml:"service_graphs"`
				SpanMetrics struct {
					HistogramBuckets    []float64      `yaml:"histogram_buckets"`
					Dimensions          []string       `yaml:"dimensions"`
					IntrinsicDimensions map[string]any `yaml:"intrinsic_dimensions"`
					DimensionMappings   []any          `yaml:"dimension_mappings"`
					EnableTargetInfo    bool           `yaml:"enable_target_info"`
					FilterPolicies      []any          `yaml:"filter_policies"`
				} `yaml:"span_metrics"`
			} `yaml:"processor"`
		} `yaml:"metrics_generator"`
	}
	if err := yaml.Unmarshal(raw, &f); err != nil {
		return TempoGenerator{}, fmt.Errorf("%s: %w", path, err)
	}
	sg, sm := f.MetricsGenerator.Processor.ServiceGraphs, f.MetricsGenerator.Processor.SpanMetrics
	var unsupported []string
	for name, set := range map[string]bool{
		"service_graphs.enable_client_server_prefix": sg.EnableClientServerPrefix,
		"service_graphs.span_multiplier_key":         sg.SpanMultiplierKey != "",
		"service_graphs.filter_policies":             len(sg.FilterPolicies) > 0,
		"span_metrics.intrinsic_dimensions":          len(sm.IntrinsicDimensions) > 0,
		"span_metrics.dimension_mappings":            len(sm.DimensionMappings) > 0,
		"span_metrics.enable_target_info":            sm.EnableTargetInfo,
		"span_metrics.filter_policies":               len(sm.FilterPolicies) > 0,
	} {
		if set {
			unsupported = append(unsupported, name)
		}
	}
	if len(unsupported) > 0 {
		return TempoGenerator{}, fmt.Errorf("%s: the e2e collector cannot reproduce %v", path, unsupported)
	}

	g := TempoGenerator{
		ServiceGraphs: TempoServiceGraphs{
			HistogramBuckets:       orDefault(sg.HistogramBuckets, exponentialBuckets(0.1, 2, 8)),
			Wait:                   10 * time.Second,
			MaxItems:               10_000,
			Dimensions:             sg.Dimensions,
			MessagingSystemLatency: sg.Messaging,
			VirtualNodeLabel:       sg.VirtualNodeLabel,
			PeerAttributes:         orDefault(sg.PeerAttributes, []string{"peer.service", "db.name", "db.system"}),
			DatabaseNameAttributes: orDefault(sg.DatabaseNameAttributes, []string{"db.namespace", "db.name", "db.system"}),
		},
		SpanMetrics: TempoSpanMetrics{
			HistogramBuckets: orDefault(sm.HistogramBuckets, exponentialBuckets(0.002, 2, 14)),
			Dimensions:       sm.Dimensions,
		},
	}
	if sg.Wait != "" {
		if g.ServiceGraphs.Wait, err = time.ParseDuration(sg.Wait); err != nil {
			return TempoGenerator{}, fmt.Errorf("%s: service_graphs.wait: %w", path, err)
		}
	}
	if sg.MaxItems != nil {
		g.ServiceGraphs.MaxItems = *sg.MaxItems
	}
	for _, b := range [][]float64{g.ServiceGraphs.HistogramBuckets, g.SpanMetrics.HistogramBuckets} {
		for i := range b {
			if b[i] <= 0 || (i > 0 && b[i] <= b[i-1]) {
				return TempoGenerator{}, fmt.Errorf("%s: histogram_buckets %v: want positive and increasing", path, b)
			}
		}
	}
	return g, nil
}

// RepoTempoGenerator loads the repository's Tempo config (TempoConfigPath).
func RepoTempoGenerator() (TempoGenerator, error) {
	root, err := RepoRoot()
	if err != nil {
		return TempoGenerator{}, err
	}
	return LoadTempoGenerator(filepath.Join(root, TempoConfigPath))
}

// collectorSettings is what otelcol.yaml.tmpl needs from a TempoGenerator: the connectors'
// options and, for the transform that shapes their output as Tempo's remote write does, the
// labels Tempo's series carry.
type collectorSettings struct {
	ServiceGraphBuckets    []string // durations, as the connector reads them
	ServiceGraphDimensions []string
	StoreTTL               string
	MaxItems               int
	PeerAttributes         []string
	DatabaseNameAttributes []string
	// ServiceGraphLabels: client, server, connection_type, the dimensions, virtual_node.
	ServiceGraphLabels []string
	SpanMetricsBuckets []string
	// SpanMetricsDimensions are the span attributes; SpanMetricsLabels Tempo's label names.
	SpanMetricsDimensions []string
	SpanMetricsLabels     []string
	// Renames maps an attribute to the label Tempo gives it (span.name -> span_name, ...).
	Renames []rename
}

type rename struct{ From, To string }

func (g TempoGenerator) collector() collectorSettings {
	sg, sm := g.ServiceGraphs, g.SpanMetrics
	s := collectorSettings{
		ServiceGraphBuckets:    durations(sg.HistogramBuckets),
		ServiceGraphDimensions: nonNil(sg.Dimensions),
		StoreTTL:               sg.Wait.String(),
		MaxItems:               sg.MaxItems,
		PeerAttributes:         nonNil(sg.PeerAttributes),
		DatabaseNameAttributes: nonNil(sg.DatabaseNameAttributes),
		ServiceGraphLabels:     []string{"client", "server", "connection_type"},
		SpanMetricsBuckets:     durations(sm.HistogramBuckets),
		SpanMetricsDimensions:  nonNil(sm.Dimensions),
		SpanMetricsLabels:      []string{"service", "span_name", "span_kind", "status_code"},
		Renames: []rename{
			{"service.name", "service"}, {"span.name", "span_name"},
			{"span.kind", "span_kind"}, {"status.code", "status_code"},
		},
	}
	// Tempo labels a dimension by its sanitized name (a.b -> a_b); the connectors keep the
	// attribute name, so the transform renames it.
	for _, d := range sg.Dimensions {
		s.ServiceGraphLabels = append(s.ServiceGraphLabels, sanitizeLabel(d))
		if sanitizeLabel(d) != d {
			s.Renames = append(s.Renames, rename{d, sanitizeLabel(d)})
		}
	}
	if sg.VirtualNodeLabel {
		s.ServiceGraphLabels = append(s.ServiceGraphLabels, "virtual_node")
	}
	for _, d := range sm.Dimensions {
		s.SpanMetricsLabels = append(s.SpanMetricsLabels, sanitizeLabel(d))
		if sanitizeLabel(d) != d {
			s.Renames = append(s.Renames, rename{d, sanitizeLabel(d)})
		}
	}
	return s
}

var invalidLabelChars = regexp.MustCompile(`[^a-zA-Z0-9_]`)

// sanitizeLabel is Prometheus' (and Tempo's) label name sanitizing for attribute names.
func sanitizeLabel(s string) string {
	s = invalidLabelChars.ReplaceAllString(s, "_")
	if s != "" && s[0] >= '0' && s[0] <= '9' {
		s = "key_" + s
	}
	return s
}

func durations(secs []float64) []string {
	out := make([]string, len(secs))
	for i, s := range secs {
		out[i] = time.Duration(s * float64(time.Second)).String()
	}
	return out
}

// exponentialBuckets is prometheus.ExponentialBuckets, which Tempo uses for its defaults.
func exponentialBuckets(start, factor float64, n int) []float64 {
	b := make([]float64, n)
	for i := range b {
		b[i] = start
		start *= factor
	}
	return b
}

func orDefault[T any](v, def []T) []T {
	if v == nil {
		return def
	}
	return v
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
