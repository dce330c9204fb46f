package deploy

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v4"
)

const (
	obiConfigPath   = "obi/obi-config.yaml"
	obiConfigTarget = "/otel-lgtm/obi-config.yaml" // where otel-lgtm's run-obi.sh reads it
)

// loadComposeProfiles is loadCompose with compose profiles enabled.
func loadComposeProfiles(t *testing.T, profiles ...string) *types.Project {
	t.Helper()
	root := repoRoot(t)
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, composeFile)},
		cli.WithWorkingDirectory(root), cli.WithOsEnv, cli.WithDotEnv, cli.WithProfiles(profiles))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := opts.LoadProject(ctx)
	if err != nil {
		t.Fatalf("load %s with profiles %v: %v", composeFile, profiles, err)
	}
	return p
}

// TestComposeOBIProfile checks the wiring of the `obi` profile that cannot be run here
// (eBPF needs a kernel and a Docker engine): OBI only with the profile, from the same
// otel-lgtm image as lgtm, with the privileges eBPF needs, watching the executable the
// services' images run, with this repo's configuration where run-obi.sh reads it.
func TestComposeOBIProfile(t *testing.T) {
	if _, ok := loadCompose(t).Services["obi"]; ok {
		t.Error("obi runs without --profile obi: it must stay opt-in (privileged, host pids)")
	}
	p := loadComposeProfiles(t, "obi")
	obi, ok := p.Services["obi"]
	if !ok {
		t.Fatal("no service obi in profile obi")
	}
	if obi.Image != p.Services["lgtm"].Image {
		t.Errorf("obi image %q, lgtm image %q: OBI is otel-lgtm's bundled one, same tag", obi.Image, p.Services["lgtm"].Image)
	}
	if !obi.Privileged || obi.Pid != "host" {
		t.Errorf("obi: privileged=%v pid=%q; eBPF needs privileged and the host pid namespace", obi.Privileged, obi.Pid)
	}
	if len(obi.Entrypoint) != 1 || obi.Entrypoint[0] != "/otel-lgtm/run-obi.sh" {
		t.Errorf("obi entrypoint %v, want otel-lgtm's run-obi.sh only", obi.Entrypoint)
	}
	if d, ok := obi.DependsOn["lgtm"]; !ok || d.Condition != types.ServiceConditionHealthy {
		t.Error("obi must wait for lgtm (it exports there)")
	}

	// The executable OBI selects is the one the Go images run.
	dockerfile, err := os.ReadFile(filepath.Join(repoRoot(t), dockerfileName))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^ENTRYPOINT \["([^"]+)"\]`).FindSubmatch(dockerfile)
	if m == nil {
		t.Fatal("no ENTRYPOINT in the Dockerfile")
	}
	if got := env(obi, "OTEL_EBPF_AUTO_TARGET_EXE"); got != string(m[1]) {
		t.Errorf("OTEL_EBPF_AUTO_TARGET_EXE = %q, the services run %q", got, m[1])
	}

	mounted := false
	for _, v := range obi.Volumes {
		if v.Target == obiConfigTarget {
			mounted = true
			if want, _ := filepath.Abs(obiConfigPath); v.Source != want || !v.ReadOnly {
				t.Errorf("%s mounted from %s (read-only %v), want %s read-only", obiConfigTarget, v.Source, v.ReadOnly, want)
			}
		}
	}
	if !mounted {
		t.Errorf("obi does not mount %s at %s", obiConfigPath, obiConfigTarget)
	}

	// The configuration: OBI keeps the services although they export OTLP themselves,
	// only observes, and exports to lgtm.
	raw, err := os.ReadFile(obiConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Discovery struct {
			ExcludeOTel *bool `yaml:"exclude_otel_instrumented_services"`
		} `yaml:"discovery"`
		EBPF struct {
			ContextPropagation string `yaml:"context_propagation"`
		} `yaml:"ebpf"`
		Traces  struct{ Endpoint string } `yaml:"otel_traces_export"`
		Metrics struct{ Endpoint string } `yaml:"otel_metrics_export"`
	}
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatalf("%s: %v", obiConfigPath, err)
	}
	if cfg.Discovery.ExcludeOTel == nil || *cfg.Discovery.ExcludeOTel {
		t.Error("exclude_otel_instrumented_services must be false: the services export OTLP, and OBI skips such processes by default")
	}
	if cfg.EBPF.ContextPropagation != "disabled" {
		t.Errorf("context_propagation %q, want disabled (observe only)", cfg.EBPF.ContextPropagation)
	}
	for what, ep := range map[string]string{"traces": cfg.Traces.Endpoint, "metrics": cfg.Metrics.Endpoint} {
		if ep != otlpEndpoint {
			t.Errorf("OBI %s go to %q, want %s", what, ep, otlpEndpoint)
		}
	}
}
