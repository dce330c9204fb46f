package dockerfile

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/dockerfile/dockerfile2llb"
	"github.com/moby/buildkit/frontend/dockerui"
	"github.com/moby/buildkit/solver/pb"
	digest "github.com/opencontainers/go-digest"
)

// repoFile reads a file at the repository root (two levels up).
func repoFile(t *testing.T, name string) []byte {
	t.Helper()
	dt, err := os.ReadFile(filepath.Join("..", "..", name))
	if err != nil {
		t.Fatal(err)
	}
	return dt
}

// offline is an image config resolver that never reaches a registry: every base image
// gets an empty linux/amd64 config. It records what was asked for.
type offline struct {
	mu   sync.Mutex
	refs []string
}

func (o *offline) ResolveImageConfig(_ context.Context, ref string, _ sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	o.mu.Lock()
	o.refs = append(o.refs, ref)
	o.mu.Unlock()
	cfg := []byte(`{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},"rootfs":{"type":"layers","diff_ids":[]}}`)
	return ref, digest.FromBytes(cfg), cfg, nil
}

// convertOpt is what `docker build --build-arg ...` gives the frontend, offline.
func convertOpt(t *testing.T, dt []byte, args map[string]string, res *offline) dockerfile2llb.ConvertOpt {
	t.Helper()
	src := llb.Local("dockerfile")
	def, err := src.Marshal(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	opt := dockerfile2llb.ConvertOpt{
		Config:       dockerui.Config{BuildArgs: args},
		MetaResolver: res,
		SourceMap:    llb.NewSourceMap(&src, "Dockerfile", "Dockerfile", dt),
	}
	opt.SourceMap.Definition = def
	return opt
}

// composeCommands returns the CMD build argument of every image compose.yaml builds.
func composeCommands(t *testing.T) []string {
	t.Helper()
	var cmds []string
	for _, m := range regexp.MustCompile(`(?m)^\s+CMD:\s*(\S+)\s*$`).FindAllSubmatch(repoFile(t, "compose.yaml"), -1) {
		cmds = append(cmds, string(m[1]))
	}
	if len(cmds) < 5 {
		t.Fatalf("found %d CMD build arguments in compose.yaml (%v), want the five Go images", len(cmds), cmds)
	}
	return cmds
}

// execs returns the command lines of the RUN steps in a marshalled build graph, with
// variables expanded from each step's environment, and the cache mounts of each.
func execs(t *testing.T, def *llb.Definition) (cmds []string, cacheMounts map[string][]string) {
	t.Helper()
	cacheMounts = map[string][]string{}
	for _, dt := range def.Def {
		var op pb.Op
		if err := op.UnmarshalVT(dt); err != nil {
			t.Fatal(err)
		}
		ex := op.GetExec()
		if ex == nil {
			continue
		}
		// The shell expands build arguments from the step's environment: do the same.
		env := map[string]string{}
		for _, kv := range ex.GetMeta().GetEnv() {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		cmd := os.Expand(strings.Join(ex.GetMeta().GetArgs(), " "), func(k string) string { return env[k] })
		cmds = append(cmds, cmd)
		for _, m := range ex.GetMounts() {
			if m.GetMountType() == pb.MountType_CACHE {
				cacheMounts[cmd] = append(cacheMounts[cmd], m.GetDest())
			}
		}
	}
	return cmds, cacheMounts
}

func TestDockerfileBuildsEveryComposeImage(t *testing.T) {
	dt := repoFile(t, "Dockerfile")
	for _, cmd := range composeCommands(t) {
		t.Run(cmd, func(t *testing.T) {
			res := &offline{}
			out, err := dockerfile2llb.Dockerfile2LLB(context.Background(), dt,
				convertOpt(t, dt, map[string]string{"CMD": cmd}, res))
			if err != nil {
				t.Fatalf("BuildKit refuses the Dockerfile: %v", err)
			}
			img := out.Image.Config
			if !slices.Equal(img.Entrypoint, []string{"/app"}) || img.User != "nonroot:nonroot" {
				t.Errorf("image config: entrypoint %q, user %q; want [/app] and nonroot:nonroot", img.Entrypoint, img.User)
			}
			if got := img.Labels["org.opencontainers.image.title"]; got != "natsotel "+cmd {
				t.Errorf("title label %q: the CMD build argument did not reach the final stage", got)
			}
			if !slices.ContainsFunc(res.refs, func(r string) bool { return strings.HasPrefix(r, "docker.io/library/golang:") }) ||
				!slices.Contains(res.refs, "gcr.io/distroless/static-debian12:nonroot") {
				t.Errorf("base images %v: want golang and distroless static nonroot", res.refs)
			}

			def, err := out.State.Marshal(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			runs, caches := execs(t, def)
			var build string
			for _, r := range runs {
				if strings.Contains(r, "go build") {
					build = r
				}
			}
			if !strings.HasSuffix(build, " ./"+cmd) || !strings.Contains(build, "-trimpath") {
				t.Fatalf("RUN steps %q: want a trimmed `go build` of ./%s", runs, cmd)
			}
			if c := caches[build]; !slices.Contains(c, "/go/pkg/mod") || !slices.Contains(c, "/root/.cache/go-build") {
				t.Errorf("go build cache mounts %v, want the module and build caches", c)
			}
		})
	}
}

// BuildKit's lint rules, as `docker build --check` runs them, over every stage.
func TestDockerfileLint(t *testing.T) {
	dt := repoFile(t, "Dockerfile")
	lr, err := dockerfile2llb.DockerfileLint(context.Background(), dt, convertOpt(t, dt, nil, &offline{}))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range lr.Warnings {
		var lines []string
		for _, l := range w.Location.Ranges {
			lines = append(lines, fmt.Sprint(l.Start.Line))
		}
		t.Errorf("Dockerfile line %s: %s: %s (%s)", strings.Join(lines, ","), w.RuleName, w.Detail, w.URL)
	}
	if lr.Error != nil {
		t.Errorf("lint: %s", lr.Error.Message)
	}
}

// The checks above can fail: a Dockerfile with a mistake BuildKit knows is refused, and
// one with style problems gets lint warnings.
func TestCheckerCatchesMistakes(t *testing.T) {
	broken := []byte("FROM golang:1.26 AS build\nRUN --mount=type=cach,target=/go/pkg/mod go build ./...\n")
	if _, err := dockerfile2llb.Dockerfile2LLB(context.Background(), broken, convertOpt(t, broken, nil, &offline{})); err == nil {
		t.Error("a RUN with an unknown mount type converted without an error")
	}
	sloppy := []byte("FROM golang:1.26 as build\nENV A 1\nFROM scratch\nCOPY --from=build /a /b\n")
	lr, err := dockerfile2llb.DockerfileLint(context.Background(), sloppy, convertOpt(t, sloppy, nil, &offline{}))
	if err != nil {
		t.Fatal(err)
	}
	var rules []string
	for _, w := range lr.Warnings {
		rules = append(rules, w.RuleName)
	}
	if !slices.Contains(rules, "FromAsCasing") || !slices.Contains(rules, "LegacyKeyValueFormat") {
		t.Errorf("lint warnings %v, want FromAsCasing and LegacyKeyValueFormat", rules)
	}
}
