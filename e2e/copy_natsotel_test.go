package e2e

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// copyUserMain is the user's code: it imports the copied package and nats.go.
const copyUserMain = `package main

import (
	"fmt"

	"github.com/nats-io/nats.go"

	"example.com/shop/natsotel"
)

func main() {
	nc, err := nats.Connect(nats.DefaultURL)
	if err != nil {
		fmt.Println(err)
		return
	}
	conn, err := natsotel.Wrap(nc)
	fmt.Println(conn != nil, err)
}
`

// TestCopyNatsotel copies natsotel/ into a fresh module exactly as natsotel/README.md says,
// both ways (a module of its own next to the user's; merged into the user's module, with
// and without its tests), then builds the user's code and runs natsotel's Examples from
// the copy against their in-process nats-server. The steps are read from the README, so
// they cannot drift from what is tested.
func TestCopyNatsotel(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash on PATH")
	}
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	steps := readmeShellBlocks(t, filepath.Join(repo, "natsotel", "README.md"), "## Copying it")
	nested, merged := steps["As a module of its own, next to yours"], steps["Merged into your module"]
	if len(nested) != 1 || len(merged) != 2 {
		t.Fatalf("natsotel/README.md: want one sh block for the nested module and two for the merged one, got %d and %d", len(nested), len(merged))
	}

	// newModule makes an empty user module with code importing the copy, outside any
	// go.work, and returns a function running a shell script in it.
	newModule := func(t *testing.T) (dir string, sh func(script string) string) {
		dir = t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(copyUserMain), 0o644); err != nil {
			t.Fatal(err)
		}
		env := append(os.Environ(), "GOWORK=off", "GOFLAGS=", "GOTOOLCHAIN=local")
		sh = func(script string) string {
			t.Helper()
			cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
			cmd.Dir, cmd.Env = dir, env
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%v\n%s\noutput:\n%s", err, script, out)
			}
			return string(out)
		}
		sh(goTool + " mod init example.com/shop")
		return dir, sh
	}
	// The README's REF line names where the user cloned this repository.
	withRepo := func(block string) string {
		out, n := replaceLine(block, "REF=", "REF="+shellQuote(repo))
		if n != 1 {
			t.Fatalf("want one REF= line in:\n%s", block)
		}
		return out
	}
	runExamples := func(t *testing.T, sh func(string) string, dir string) {
		out := sh(dir + goTool + " test -count=1 -run '^Example' -v .")
		if n := strings.Count(out, "--- PASS: Example"); n < 5 {
			t.Fatalf("%d Examples passed in the copy, want every one:\n%s", n, out)
		}
		if strings.Contains(sh(dir+goTool+" list -deps -test -f '{{.ImportPath}}' ."), "github.com/natsotel/reference") {
			t.Fatalf("the copy still imports this repository")
		}
	}

	t.Run("nested", func(t *testing.T) {
		_, sh := newModule(t)
		sh(withRepo(nested[0]))
		sh(goTool + " mod tidy && " + goTool + " build ./... && " + goTool + " vet ./...")
		runExamples(t, sh, "cd natsotel && ")
		goMod := sh("cat go.mod")
		if strings.Contains(goMod, "nats-server") || strings.Contains(goMod, "otel/sdk") {
			t.Errorf("the user's go.mod has natsotel's test-only dependencies:\n%s", goMod)
		}
	})
	t.Run("merged", func(t *testing.T) {
		_, sh := newModule(t)
		sh(withRepo(merged[0]))
		sh(goTool + " mod tidy && " + goTool + " build ./... && " + goTool + " vet ./...")
		runExamples(t, sh, "cd natsotel && ")
	})
	t.Run("merged without tests", func(t *testing.T) {
		_, sh := newModule(t)
		sh(withRepo(merged[0]))
		sh(merged[1])
		sh(goTool + " mod tidy && " + goTool + " build ./... && " + goTool + " vet ./...")
		goMod := sh("cat go.mod")
		if strings.Contains(goMod, "nats-server") || strings.Contains(goMod, "otel/sdk") {
			t.Errorf("go.mod keeps test-only dependencies after the tests were dropped:\n%s", goMod)
		}
		if !strings.Contains(goMod, "go.opentelemetry.io/otel ") {
			t.Errorf("go.mod lacks the OpenTelemetry API:\n%s", goMod)
		}
	})
}

// readmeShellBlocks returns the ```sh blocks of the section that starts with the heading
// section, keyed by the ### heading they follow.
func readmeShellBlocks(t *testing.T, path, section string) map[string][]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blocks := map[string][]string{}
	var in bool
	var heading string
	var block *strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case block != nil && strings.HasPrefix(line, "```"):
			blocks[heading] = append(blocks[heading], block.String())
			block = nil
		case block != nil:
			block.WriteString(line + "\n")
		case strings.HasPrefix(line, "## "):
			in = line == section
		case in && strings.HasPrefix(line, "### "):
			heading = strings.TrimPrefix(line, "### ")
		case in && line == "```sh":
			block = &strings.Builder{}
		}
	}
	return blocks
}

// replaceLine replaces every line of s starting with prefix by line; it returns how many.
func replaceLine(s, prefix, line string) (string, int) {
	lines := strings.Split(s, "\n")
	n := 0
	for i, l := range lines {
		if strings.HasPrefix(l, prefix) {
			lines[i], n = line, n+1
		}
	}
	return strings.Join(lines, "\n"), n
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
