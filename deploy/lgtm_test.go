package deploy

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v4"
)

// Files that replace otel-lgtm's own (grafana/otel-lgtm 0.31.0, docker/ in its repository):
// the Dockerfile copies them to these paths, run-tempo.sh starts Tempo with
// --config.file=./tempo-config.yaml from /otel-lgtm.
const (
	tempoConfigPath       = "lgtm/tempo-config.yaml"
	datasourcesPath       = "lgtm/grafana-datasources.yaml"
	lgtmTempoConfig       = "/otel-lgtm/tempo-config.yaml"
	lgtmDatasourcesConfig = "/otel-lgtm/grafana/conf/provisioning/datasources/grafana-datasources.yaml"
)

// datasource is the part of a Grafana datasource provisioning entry the links use.
type datasource struct {
	Name     string         `yaml:"name"`
	Type     string         `yaml:"type"`
	UID      string         `yaml:"uid"`
	URL      string         `yaml:"url"`
	JSONData map[string]any `yaml:"jsonData"`
}

func loadDatasources(t *testing.T) map[string]datasource {
	t.Helper()
	raw, err := os.ReadFile(datasourcesPath)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		APIVersion  int          `yaml:"apiVersion"`
		Datasources []datasource `yaml:"datasources"`
	}
	if err := yaml.Unmarshal(raw, &f); err != nil {
		t.Fatalf("%s: %v", datasourcesPath, err)
	}
	if f.APIVersion != 1 {
		t.Errorf("%s: apiVersion %d, want 1", datasourcesPath, f.APIVersion)
	}
	byUID := map[string]datasource{}
	for _, d := range f.Datasources {
		if _, dup := byUID[d.UID]; dup {
			t.Errorf("%s: uid %q twice", datasourcesPath, d.UID)
		}
		byUID[d.UID] = d
	}
	return byUID
}

// TestDatasourcesKeepLGTMUIDs: the file replaces otel-lgtm's, so it must still provide every
// datasource otel-lgtm provisions, with the same uid and type (its dashboards, our dashboards
// and the links between datasources refer to them by uid).
func TestDatasourcesKeepLGTMUIDs(t *testing.T) {
	ds := loadDatasources(t)
	want := map[string]struct{ typ, url string }{
		"prometheus": {"prometheus", "http://127.0.0.1:9090"},
		"tempo":      {"tempo", "http://127.0.0.1:3200"},
		"loki":       {"loki", "http://127.0.0.1:3100"},
		"pyroscope":  {"grafana-pyroscope-datasource", "http://127.0.0.1:4040"},
	}
	for uid, w := range want {
		d, ok := ds[uid]
		if !ok {
			t.Errorf("no datasource with uid %q", uid)
			continue
		}
		if d.Type != w.typ || d.URL != w.url {
			t.Errorf("uid %s: type %q url %q, want %q %q", uid, d.Type, d.URL, w.typ, w.url)
		}
	}
	if len(ds) != len(want) {
		t.Errorf("%d datasources, want otel-lgtm's %d", len(ds), len(want))
	}
}

// TestDatasourcesLinks follows every datasourceUid reference (traces to profiles, traces to
// logs, service map, exemplars, derived fields) to a provisioned datasource of the right type.
func TestDatasourcesLinks(t *testing.T) {
	ds := loadDatasources(t)
	tempo := ds["tempo"].JSONData

	profiles, _ := tempo["tracesToProfiles"].(map[string]any)
	if profiles == nil {
		t.Fatal("tempo: no jsonData.tracesToProfiles")
	}
	linksTo(t, ds, "tempo tracesToProfiles", profiles["datasourceUid"], "grafana-pyroscope-datasource")
	if pt, _ := profiles["profileTypeId"].(string); !strings.HasPrefix(pt, "process_cpu:cpu:nanoseconds:") {
		t.Errorf("tracesToProfiles.profileTypeId = %q, want the CPU profile pyroscope-go pushes", pt)
	}
	if custom, _ := profiles["customQuery"].(bool); custom {
		t.Error("tracesToProfiles.customQuery: the default query (tags plus span id) is the one that uses span profiles")
	}
	// pyroscope-go's application name is the OTel service.name; Pyroscope stores it as the
	// service_name label, so the span's service.name must map to service_name.
	if !hasTag(profiles["tags"], "service.name", "service_name") {
		t.Errorf("tracesToProfiles.tags = %v, want service.name -> service_name", profiles["tags"])
	}

	logs, _ := tempo["tracesToLogsV2"].(map[string]any)
	linksTo(t, ds, "tempo tracesToLogsV2", logs["datasourceUid"], "loki")
	serviceMap, _ := tempo["serviceMap"].(map[string]any)
	linksTo(t, ds, "tempo serviceMap", serviceMap["datasourceUid"], "prometheus")
	lokiSearch, _ := tempo["lokiSearch"].(map[string]any)
	linksTo(t, ds, "tempo lokiSearch", lokiSearch["datasourceUid"], "loki")

	exemplars, _ := ds["prometheus"].JSONData["exemplarTraceIdDestinations"].([]any)
	if len(exemplars) == 0 {
		t.Error("prometheus: no exemplarTraceIdDestinations")
	}
	for _, e := range exemplars {
		m, _ := e.(map[string]any)
		linksTo(t, ds, "prometheus exemplar", m["datasourceUid"], "tempo")
	}
	derived, _ := ds["loki"].JSONData["derivedFields"].([]any)
	if len(derived) == 0 {
		t.Error("loki: no derivedFields")
	}
	for _, f := range derived {
		m, _ := f.(map[string]any)
		linksTo(t, ds, "loki derived field", m["datasourceUid"], "tempo")
	}
}

func linksTo(t *testing.T, ds map[string]datasource, what string, uid any, wantType string) {
	t.Helper()
	s, _ := uid.(string)
	d, ok := ds[s]
	switch {
	case !ok:
		t.Errorf("%s: datasourceUid %v is not provisioned", what, uid)
	case d.Type != wantType:
		t.Errorf("%s: datasourceUid %s is a %s datasource, want %s", what, s, d.Type, wantType)
	}
}

func hasTag(tags any, key, value string) bool {
	list, _ := tags.([]any)
	return slices.ContainsFunc(list, func(x any) bool {
		m, _ := x.(map[string]any)
		return m["key"] == key && m["value"] == value
	})
}

// TestComposeLGTMConfig checks how compose runs otel-lgtm: the Tempo configuration and the
// datasources of this repo are mounted where the image reads its own, /tmp (where run-all.sh
// leaves its readiness marker) is a tmpfs so the marker never survives a restart, and no
// healthcheck uses start_interval (Docker Engine before 25 refuses it).
func TestComposeLGTMConfig(t *testing.T) {
	p := loadCompose(t)
	root := repoRoot(t)
	lgtm := p.Services["lgtm"]
	mounted := map[string]string{}
	for _, v := range lgtm.Volumes {
		if v.Type == types.VolumeTypeBind {
			mounted[v.Target] = v.Source
			if !v.ReadOnly {
				t.Errorf("lgtm: %s is mounted read-write", v.Target)
			}
		}
	}
	for target, src := range map[string]string{
		lgtmTempoConfig:       tempoConfigPath,
		lgtmDatasourcesConfig: datasourcesPath,
	} {
		if got := mounted[target]; got != filepath.Join(root, "deploy", src) {
			t.Errorf("lgtm: %s mounted from %q, want deploy/%s", target, got, src)
		}
	}
	if !slices.Contains(lgtm.Tmpfs, "/tmp") {
		t.Errorf("lgtm: tmpfs = %v, want /tmp (run-all.sh's /tmp/ready must not survive a restart)", lgtm.Tmpfs)
	}
	for name, svc := range p.Services {
		if hc := svc.HealthCheck; hc != nil && hc.StartInterval != nil {
			t.Errorf("%s: healthcheck.start_interval needs Docker Engine 25 or newer", name)
		}
	}
}

// TestComposeDatabaseDup: KeyValue spans need db.name next to db.namespace, which natsotel
// emits with OTEL_SEMCONV_STABILITY_OPT_IN=database/dup, for Grafana's "View traces" on a
// bucket node to find them.
func TestComposeDatabaseDup(t *testing.T) {
	p := loadCompose(t)
	for name := range goServices {
		optIn := strings.Split(env(p.Services[name], "OTEL_SEMCONV_STABILITY_OPT_IN"), ",")
		if !slices.Contains(optIn, "database/dup") {
			t.Errorf("%s: OTEL_SEMCONV_STABILITY_OPT_IN = %v, want database/dup", name, optIn)
		}
	}
}

// TestTempoConfig checks the metrics-generator settings the dashboards depend on (the e2e
// harness configures its stand-in from the same file, e2e/harness/tempo.go).
func TestTempoConfig(t *testing.T) {
	raw, err := os.ReadFile(tempoConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		MetricsGenerator struct {
			Processor struct {
				ServiceGraphs struct {
					HistogramBuckets       []float64 `yaml:"histogram_buckets"`
					Messaging              bool      `yaml:"enable_messaging_system_latency_histogram"`
					VirtualNodeLabel       bool      `yaml:"enable_virtual_node_label"`
					PeerAttributes         []string  `yaml:"peer_attributes"`
					DatabaseNameAttributes []string  `yaml:"database_name_attributes"`
				} `yaml:"service_graphs"`
				SpanMetrics struct {
					HistogramBuckets []float64 `yaml:"histogram_buckets"`
				} `yaml:"span_metrics"`
			} `yaml:"processor"`
			Storage struct {
				RemoteWrite []struct {
					URL string `yaml:"url"`
				} `yaml:"remote_write"`
			} `yaml:"storage"`
		} `yaml:"metrics_generator"`
		Overrides struct {
			Defaults struct {
				MetricsGenerator struct {
					Processors []string `yaml:"processors"`
				} `yaml:"metrics_generator"`
			} `yaml:"defaults"`
		} `yaml:"overrides"`
	}
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatalf("%s: %v", tempoConfigPath, err)
	}
	sg := cfg.MetricsGenerator.Processor.ServiceGraphs
	for name, b := range map[string][]float64{
		"service_graphs": sg.HistogramBuckets,
		"span_metrics":   cfg.MetricsGenerator.Processor.SpanMetrics.HistogramBuckets,
	} {
		// NATS latencies: sub-millisecond (a local request) to seconds (a timeout).
		if len(b) == 0 || b[0] > 0.0005 || b[len(b)-1] < 5 || !slices.IsSorted(b) {
			t.Errorf("%s.histogram_buckets = %v: want sorted, from <= 0.5 ms to >= 5 s", name, b)
		}
	}
	if !sg.Messaging || !sg.VirtualNodeLabel {
		t.Errorf("service_graphs: messaging latency histogram %v, virtual node label %v: want both on", sg.Messaging, sg.VirtualNodeLabel)
	}
	if len(sg.DatabaseNameAttributes) == 0 || sg.DatabaseNameAttributes[0] != "db.namespace" {
		t.Errorf("database_name_attributes = %v: natsotel names a bucket by db.namespace", sg.DatabaseNameAttributes)
	}
	if !slices.Contains(sg.PeerAttributes, "peer.service") {
		t.Errorf("peer_attributes = %v: want peer.service", sg.PeerAttributes)
	}
	if got := cfg.Overrides.Defaults.MetricsGenerator.Processors; !slices.Contains(got, "service-graphs") || !slices.Contains(got, "span-metrics") {
		t.Errorf("overrides.defaults.metrics_generator.processors = %v", got)
	}
	if rw := cfg.MetricsGenerator.Storage.RemoteWrite; len(rw) != 1 || rw[0].URL != "http://127.0.0.1:9090/api/v1/write" {
		t.Errorf("remote_write = %+v: want otel-lgtm's Prometheus", rw)
	}
}
