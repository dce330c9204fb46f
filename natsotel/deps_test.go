package natsotel_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestRuntimeDependencies keeps the promise of the package doc: at run time natsotel
// depends on nats.go and the OpenTelemetry API only — never the SDK, never an exporter,
// never another package of this repository — so the folder can be copied as it is.
func TestRuntimeDependencies(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	forbidden := []string{
		"go.opentelemetry.io/otel/sdk",
		"go.opentelemetry.io/otel/exporters",
		"go.opentelemetry.io/contrib",
		"github.com/nats-io/nats-server",
		"github.com/natsotel/reference/services",
		"github.com/natsotel/reference/loadgen",
		"github.com/natsotel/reference/demo",
	}
	var n int
	for _, dep := range strings.Fields(string(out)) {
		n++
		for _, f := range forbidden {
			if strings.HasPrefix(dep, f) {
				t.Errorf("natsotel depends on %s at run time", dep)
			}
		}
	}
	if n < 5 {
		t.Fatalf("go list -deps listed %d packages: %s", n, out)
	}
}
