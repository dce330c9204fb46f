package harness

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Tools are the paths of the programs e2e/tools/build.sh builds.
type Tools struct {
	Dir        string // $TOOLS_DIR
	Otelcol    string // custom OpenTelemetry Collector
	Prometheus string // Prometheus 3 with the OTLP receiver
	NATSServer string // nats-server
	NATS       string // nats CLI
}

// FindTools locates the tools in $TOOLS_DIR, or in <repo>/.cache/tools when TOOLS_DIR is
// unset, and reports every one that is missing.
func FindTools() (Tools, error) {
	dir := os.Getenv("TOOLS_DIR")
	if dir == "" {
		root, err := RepoRoot()
		if err != nil {
			return Tools{}, err
		}
		dir = filepath.Join(root, ".cache", "tools")
	}
	bin := filepath.Join(dir, "bin")
	t := Tools{
		Dir:        dir,
		Otelcol:    filepath.Join(bin, "otelcol"),
		Prometheus: filepath.Join(bin, "prometheus"),
		NATSServer: filepath.Join(bin, "nats-server"),
		NATS:       filepath.Join(bin, "nats"),
	}
	var missing []error
	for _, p := range []string{t.Otelcol, t.Prometheus, t.NATSServer, t.NATS} {
		if st, err := os.Stat(p); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			missing = append(missing, fmt.Errorf("missing %s", p))
		}
	}
	if len(missing) > 0 {
		return t, fmt.Errorf("e2e tools not built (run `make tools` at the repository root): %w", errors.Join(missing...))
	}
	return t, nil
}

// RequireTools returns the tools, or stops the test when they are missing: it fails under CI
// (CI=true), where `make e2e` builds them first, and skips elsewhere.
func RequireTools(t testing.TB) Tools {
	t.Helper()
	tools, err := FindTools()
	if err != nil {
		if InCI() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	return tools
}

// InCI reports whether the test runs in CI (CI=true or CI=1, as CI systems set it).
func InCI() bool {
	v := os.Getenv("CI")
	return v == "true" || v == "1"
}

// RepoRoot walks up from the working directory to the directory holding go.work.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("repo root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("repo root: no go.work above the working directory")
		}
		dir = parent
	}
}
