package e2e

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readmeUntested are README command lines no test runs, each with the reason.
var readmeUntested = map[string]string{
	// Needs compose's NATS users; the deploy tests run every user against nats.conf.
	"nats context save shop --server nats://localhost:4222 --user admin --password admin-dev-password --select": "compose only",
}

// TestREADMECommandsInSync fails when README.md shows a `nats` command (or the file it
// reads) that TestREADMECommands does not run exactly as written, so the README cannot
// drift from what is tested.
func TestREADMECommandsInSync(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	tested := map[string]bool{}
	for _, c := range append(readmeCommands, scenarioCommands...) {
		for _, line := range strings.Split(c.Shell(), "\n") {
			tested[line] = true
		}
	}
	var shown int
	inFence := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "```") {
			inFence = !inFence
			continue
		}
		// Table cells show commands too, in backquotes.
		if !inFence {
			for _, cell := range strings.Split(line, "`") {
				if strings.HasPrefix(cell, "nats req ") {
					shown++
					check(t, n, cell, tested)
				}
			}
			continue
		}
		if !strings.HasPrefix(line, "nats ") && !strings.HasPrefix(line, "echo '") {
			continue
		}
		if i := strings.Index(line, " # "); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		shown++
		check(t, n, line, tested)
	}
	if shown < len(readmeCommands) {
		t.Errorf("README.md shows %d nats commands, the tests run %d: a section went missing?", shown, len(readmeCommands)+len(scenarioCommands))
	}
}

func check(t *testing.T, n int, cmd string, tested map[string]bool) {
	t.Helper()
	if tested[cmd] {
		return
	}
	if _, ok := readmeUntested[cmd]; ok {
		return
	}
	t.Errorf("README.md:%d shows a command no test runs as written:\n\t%s", n, cmd)
}
