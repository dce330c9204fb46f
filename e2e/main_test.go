package e2e

import (
	"fmt"
	"os"
	"testing"

	"github.com/natsotel/reference/e2e/harness"
)

// builder builds the repository's binaries once for every test of this run.
var builder *harness.Builder

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	builder = &harness.Builder{Dir: dir}
	code := m.Run()
	if d := builder.Spent(); d > 0 {
		fmt.Fprintf(os.Stderr, "e2e: built the repository's binaries in %v\n", d.Round(100_000_000))
	}
	os.RemoveAll(dir)
	os.Exit(code)
}
