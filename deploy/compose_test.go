package deploy

import (
	"context"
	"flag"
	"fmt"
	"go/build"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v4"

	"github.com/natsotel/reference/loadgen/load"
	"github.com/natsotel/reference/services/telemetry"
)

const (
	otlpEndpoint      = "http://lgtm:4318"
	natsURL           = "nats://nats:4222"
	lgtmDashboardsDir = "/otel-lgtm/grafana/conf/provisioning/dashboards/custom"
	lgtmProviderFile  = "/otel-lgtm/grafana/conf/provisioning/dashboards/custom.yaml"
)

func TestComposeLoads(t *testing.T) {
	p := loadCompose(t)
	want := []string{"billing", "inventory", "lgtm", "loadgen", "nats", "nats-hops", "order", "probe", "provision"}
	if got := p.ServiceNames(); !slices.Equal(sortedCopy(got), want) {
		t.Fatalf("services = %v, want %v", sortedCopy(got), want)
	}
}

// TestComposeGoServices checks what every locally built service needs to come up and be
// seen: its image builds the right main package, it exports OTLP to lgtm, names itself,
// and logs into NATS with its own user from nats.conf.
func TestComposeGoServices(t *testing.T) {
	p := loadCompose(t)
	root := repoRoot(t)
	nconf := natsConfig(t)

	for name, svc := range p.Services {
		if svc.Build != nil {
			if _, ok := goServices[name]; !ok {
				t.Errorf("%s: built locally but not listed in goServices (helpers_test.go)", name)
			}
		}
	}
	for name, wantCmd := range goServices {
		t.Run(name, func(t *testing.T) {
			svc, ok := p.Services[name]
			if !ok {
				t.Fatalf("service %s missing from compose.yaml", name)
			}
			b := svc.Build
			if b == nil {
				t.Fatal("no build section")
			}
			if b.Context != root {
				t.Errorf("build.context = %q, want the repo root %q", b.Context, root)
			}
			if df := b.Dockerfile; df != dockerfileName && df != filepath.Join(root, dockerfileName) {
				t.Errorf("build.dockerfile = %q, want %s", df, dockerfileName)
			}
			cmd := b.Args["CMD"]
			if cmd == nil || *cmd != wantCmd {
				t.Fatalf("build.args.CMD = %v, want %q", deref(cmd), wantCmd)
			}
			pkg, err := build.ImportDir(filepath.Join(root, *cmd), 0)
			if err != nil {
				t.Fatalf("CMD %s: %v", *cmd, err)
			}
			if pkg.Name != "main" {
				t.Fatalf("CMD %s is package %s, not main", *cmd, pkg.Name)
			}

			for key, want := range map[string]string{
				"OTEL_EXPORTER_OTLP_ENDPOINT": otlpEndpoint,
				"OTEL_SERVICE_NAME":           name,
				"NATS_URL":                    natsURL,
				"NATS_USER":                   name,
			} {
				if got := env(svc, key); got != want {
					t.Errorf("environment %s = %q, want %q", key, got, want)
				}
			}
			attrs := env(svc, "OTEL_RESOURCE_ATTRIBUTES")
			for _, kv := range []string{"service.namespace=shop", "deployment.environment.name=compose"} {
				if !slices.Contains(strings.Split(attrs, ","), kv) {
					t.Errorf("OTEL_RESOURCE_ATTRIBUTES = %q, missing %s", attrs, kv)
				}
			}
			u := natsUser(nconf, env(svc, "NATS_USER"))
			if u == nil {
				t.Fatalf("NATS_USER %q is not a user in %s", env(svc, "NATS_USER"), natsConfPath)
			}
			if u.Password != env(svc, "NATS_PASSWORD") {
				t.Errorf("NATS_PASSWORD does not match user %s in %s", u.Username, natsConfPath)
			}
			if u.Permissions == nil {
				t.Errorf("NATS user %s has no permissions: least privilege needs an allow list", u.Username)
			}

			deps := map[string]string{"nats": types.ServiceConditionHealthy, "lgtm": types.ServiceConditionHealthy}
			restart := types.RestartPolicyUnlessStopped
			if oneShot[name] {
				deps = map[string]string{"nats": types.ServiceConditionHealthy}
				restart = types.RestartPolicyNo
			} else if name != "loadgen" { // loadgen waits for the services, which wait for these
				for s := range oneShot {
					deps[s] = types.ServiceConditionCompletedSuccessfully
				}
			}
			for dep, cond := range deps {
				d, ok := svc.DependsOn[dep]
				if !ok {
					t.Errorf("depends_on misses %s", dep)
					continue
				}
				if d.Condition != cond {
					t.Errorf("depends_on %s: condition %q, want %s", dep, d.Condition, cond)
				}
			}
			if svc.Restart != restart {
				t.Errorf("restart = %q, want %s", svc.Restart, restart)
			}

			// Scale-safe: `docker compose up --scale inventory=3` needs no fixed name
			// and no host port per replica.
			if svc.ContainerName != "" {
				t.Errorf("container_name %q prevents --scale", svc.ContainerName)
			}
			for _, port := range svc.Ports {
				if port.Published != "" {
					t.Errorf("publishes host port %s: prevents --scale", port.Published)
				}
			}
		})
	}
}

// TestComposeEndpointsResolve checks that the addresses the Go services are given point at
// compose services that listen there.
func TestComposeEndpointsResolve(t *testing.T) {
	p := loadCompose(t)
	nconf := natsConfig(t)
	for raw, port := range map[string]int{otlpEndpoint: 4318, natsURL: nconf.Port} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := p.Services[u.Hostname()]; !ok {
			t.Errorf("%s: no compose service named %s", raw, u.Hostname())
		}
		if u.Port() != strconv.Itoa(port) {
			t.Errorf("%s: port %s, want %d", raw, u.Port(), port)
		}
	}
	if nconf.Port != 4222 {
		t.Errorf("nats.conf listens on %d, compose expects 4222", nconf.Port)
	}
	lgtm := p.Services["lgtm"]
	for _, want := range []uint32{3000, 4317, 4318} {
		if !slices.ContainsFunc(lgtm.Ports, func(pc types.ServicePortConfig) bool { return pc.Target == want }) {
			t.Errorf("lgtm does not publish port %d", want)
		}
	}
}

func TestComposeNATSUsersAllUsed(t *testing.T) {
	p := loadCompose(t)
	used := map[string]bool{"admin": true} // for humans with the nats CLI
	for name := range goServices {
		used[env(p.Services[name], "NATS_USER")] = true
		if r := env(p.Services[name], "NATS_RESPONDER_USER"); r != "" {
			used[r] = true
		}
	}
	for _, u := range natsConfig(t).Users {
		if !used[u.Username] {
			t.Errorf("NATS user %s in %s is used by no compose service", u.Username, natsConfPath)
		}
	}
}

func TestComposeHealthchecks(t *testing.T) {
	p := loadCompose(t)
	nconf := natsConfig(t)
	for name, wants := range map[string][]string{
		"nats": {fmt.Sprintf(":%d/healthz", nconf.HTTPPort), "js-enabled-only=true"},
		"lgtm": {"/tmp/ready"},
	} {
		hc := p.Services[name].HealthCheck
		if hc == nil || hc.Disable || len(hc.Test) == 0 {
			t.Errorf("%s: no healthcheck", name)
			continue
		}
		test := strings.Join(hc.Test, " ")
		for _, w := range wants {
			if !strings.Contains(test, w) {
				t.Errorf("%s healthcheck %q does not mention %q", name, test, w)
			}
		}
		if hc.StartPeriod == nil {
			t.Errorf("%s healthcheck has no start_period", name)
		}
	}
	if nconf.HTTPPort != 8222 {
		t.Errorf("nats.conf monitoring port = %d, want 8222", nconf.HTTPPort)
	}
}

func TestComposeNoHostPortClash(t *testing.T) {
	p := loadCompose(t)
	seen := map[string]string{}
	for name, svc := range p.Services {
		for _, port := range svc.Ports {
			if port.Published == "" {
				continue
			}
			key := port.HostIP + ":" + port.Published + "/" + port.Protocol
			if other, dup := seen[key]; dup {
				t.Errorf("host port %s published by both %s and %s", key, other, name)
			}
			seen[key] = name
		}
	}
}

// TestComposeNATSNodes: every NATS node, in compose.yaml and in the cluster, runs the
// same server image, and publishes its ports on the host's loopback only (monitoring
// lists every connection's user and inbox prefix; the client port is the shop's NATS).
func TestComposeNATSNodes(t *testing.T) {
	images := map[string]bool{}
	for _, p := range []*types.Project{loadCompose(t), loadClusterCompose(t)} {
		for name, svc := range p.Services {
			if !strings.HasPrefix(svc.Image, "nats:") {
				continue
			}
			images[svc.Image] = true
			if len(svc.Ports) == 0 {
				t.Errorf("%s publishes no port", name)
			}
			for _, port := range svc.Ports {
				if port.HostIP != "127.0.0.1" {
					t.Errorf("%s publishes %s:%s beyond the host's loopback", name, port.HostIP, port.Published)
				}
			}
		}
	}
	if len(images) != 1 {
		t.Errorf("NATS nodes run different images: %v", mapKeys(images))
	}
}

func TestComposeImagesPinned(t *testing.T) {
	p := loadCompose(t)
	for name, svc := range p.Services {
		if svc.Build != nil {
			continue
		}
		img := svc.Image
		slash := strings.LastIndex(img, "/")
		colon := strings.LastIndex(img, ":")
		if colon < slash || colon < 0 {
			t.Errorf("%s: image %q has no tag", name, img)
			continue
		}
		tag := img[colon+1:]
		if tag == "latest" || !strings.ContainsAny(tag, "0123456789") {
			t.Errorf("%s: image %q is not pinned to a version", name, img)
		}
	}
}

// TestComposeMounts checks that every bind mount exists in the repo and that the Grafana
// and NATS mounts land where otel-lgtm and the nats command line look for them.
func TestComposeMounts(t *testing.T) {
	p := loadCompose(t)
	root := repoRoot(t)
	targets := map[string]map[string]string{} // service -> target -> source
	for name, svc := range p.Services {
		targets[name] = map[string]string{}
		for _, v := range svc.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("%s: bind mount source: %v", name, err)
			}
			if !strings.HasPrefix(v.Source, root) {
				t.Errorf("%s: bind mount %s outside the repo", name, v.Source)
			}
			targets[name][v.Target] = v.Source
		}
	}

	lgtm := targets["lgtm"]
	if src := lgtm[lgtmDashboardsDir]; src != filepath.Join(root, "deploy", dashboardsDir) {
		t.Errorf("lgtm: %s mounted from %q, want deploy/%s", lgtmDashboardsDir, src, dashboardsDir)
	}
	if src := lgtm[lgtmProviderFile]; src != filepath.Join(root, "deploy", providerPath) {
		t.Errorf("lgtm: %s mounted from %q, want deploy/%s", lgtmProviderFile, src, providerPath)
	}
	// The provider must read the directory the dashboards are mounted at.
	var provider struct {
		Providers []struct {
			Type    string
			Options struct{ Path string }
		}
	}
	raw, err := os.ReadFile(providerPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &provider); err != nil {
		t.Fatalf("%s: %v", providerPath, err)
	}
	if len(provider.Providers) != 1 || provider.Providers[0].Type != "file" || provider.Providers[0].Options.Path != lgtmDashboardsDir {
		t.Errorf("%s: want one file provider reading %s, got %+v", providerPath, lgtmDashboardsDir, provider.Providers)
	}
	// The home dashboard path given to Grafana must be one of the mounted files.
	home := env(p.Services["lgtm"], "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
	rel, err := filepath.Rel(lgtmDashboardsDir, home)
	if err != nil || strings.HasPrefix(rel, "..") {
		t.Errorf("home dashboard %q is outside %s", home, lgtmDashboardsDir)
	} else if _, err := os.Stat(filepath.Join(dashboardsDir, rel)); err != nil {
		t.Errorf("home dashboard: %v", err)
	}

	// nats: the mounted config is the one the command line names.
	nats := p.Services["nats"]
	i := slices.Index(nats.Command, "--config")
	if i < 0 || i+1 >= len(nats.Command) {
		t.Fatalf("nats command %v has no --config", nats.Command)
	}
	if src := targets["nats"][nats.Command[i+1]]; src != filepath.Join(root, "deploy", natsConfPath) {
		t.Errorf("nats: --config %s is mounted from %q, want deploy/%s", nats.Command[i+1], src, natsConfPath)
	}
	// JetStream's store_dir is on a named volume, so streams and KV survive a restart.
	storeDir := natsConfig(t).StoreDir
	if !slices.ContainsFunc(nats.Volumes, func(v types.ServiceVolumeConfig) bool {
		return v.Type == types.VolumeTypeVolume && strings.HasPrefix(storeDir, v.Target)
	}) {
		t.Errorf("nats: JetStream store_dir %s is not on a named volume", storeDir)
	}
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

func deref(s *string) string {
	if s == nil {
		return "<unset>"
	}
	return *s
}

// TestComposeLoadgenEnvParses feeds the load generator's compose environment to the same
// flag/env parser its main uses, so a bad LOADGEN_* value fails here, not in a container
// restart loop.
func TestComposeLoadgenEnvParses(t *testing.T) {
	p := loadCompose(t)
	svc := p.Services["loadgen"]
	var cfg load.Config
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	if err := cfg.RegisterFlags(fs, func(k string) string { return env(svc, k) }); err != nil {
		t.Fatalf("loadgen environment: %v", err)
	}
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.Count != 0 || cfg.Duration != 0 {
		t.Errorf("loadgen would stop (count %d, duration %v) and restart in a loop under restart: unless-stopped", cfg.Count, cfg.Duration)
	}
}

// TestComposeTelemetryEnvParses builds every Go service's telemetry from its compose.yaml
// environment (OTLP endpoint, protocol, resource attributes, export interval) with the
// same package its main uses. Nothing is exported: the endpoint is only resolved on export.
func TestComposeTelemetryEnvParses(t *testing.T) {
	p := loadCompose(t)
	for name := range goServices {
		t.Run(name, func(t *testing.T) {
			for k, v := range p.Services[name].Environment {
				if strings.HasPrefix(k, "OTEL_") && v != nil {
					t.Setenv(k, *v) // the SDK and its exporters read the process environment
				}
			}
			tel, err := telemetry.New(t.Context(), telemetry.Config{ServiceName: name, Stderr: io.Discard})
			if err != nil {
				t.Fatalf("telemetry from compose.yaml environment: %v", err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			_ = tel.Shutdown(ctx) // lgtm does not resolve here; a failed flush is expected
		})
	}
}
