package harness

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Binaries are the repository's programs, built by Builder.
type Binaries struct {
	Order, Inventory, Billing string // services/cmd/*
	Loadgen, Probe            string // loadgen/cmd/*
}

// binary is one `go build` target: module directory and package.
type binary struct {
	name, module, pkg string
}

var repoBinaries = []binary{
	{"order", "services", "./cmd/order"},
	{"inventory", "services", "./cmd/inventory"},
	{"billing", "services", "./cmd/billing"},
	{"loadgen", "loadgen", "./cmd/loadgen"},
	{"probe", "loadgen", "./cmd/probe"},
}

// Builder builds the repository's binaries once per test binary run, on first use, into
// Dir. Create one in TestMain and remove Dir after m.Run.
//
// Binaries are built with -race unless NoRace is set or E2E_RACE=0: the tests run with
// -race after `make test`, so the race-instrumented packages are already in the build cache
// and only linking is left, and a data race in a real process fails the test.
type Builder struct {
	Dir string
	// NoRace builds without -race whatever E2E_RACE says, for a test that measures latency
	// or memory (the race detector slows every request several times over and grows its
	// own shadow memory). Use a Builder of its own for it, with its own Dir.
	NoRace bool

	once  sync.Once
	bins  map[string]string
	errs  map[string]error
	spent time.Duration
}

// Get builds (once) and returns every binary, failing the test if any of them does not build.
func (b *Builder) Get(t testing.TB) Binaries {
	t.Helper()
	return Binaries{
		Order: b.Path(t, "order"), Inventory: b.Path(t, "inventory"), Billing: b.Path(t, "billing"),
		Loadgen: b.Path(t, "loadgen"), Probe: b.Path(t, "probe"),
	}
}

// Path builds (once) and returns the binary called name ("order", "loadgen", ...).
func (b *Builder) Path(t testing.TB, name string) string {
	t.Helper()
	b.once.Do(b.build)
	if err := b.errs[name]; err != nil {
		t.Fatalf("building %s: %v", name, err)
	}
	p, ok := b.bins[name]
	if !ok {
		t.Fatalf("unknown binary %q", name)
	}
	return p
}

func (b *Builder) build() {
	start := time.Now()
	b.bins, b.errs = map[string]string{}, map[string]error{}
	root, err := RepoRoot()
	if err != nil {
		for _, bin := range repoBinaries {
			b.errs[bin.name] = err
		}
		return
	}
	args := []string{"build", "-trimpath"}
	if !b.NoRace && os.Getenv("E2E_RACE") != "0" {
		args = append(args, "-race")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// One `go build` per binary, two at a time: a package that does not compile yet only
	// fails the tests that need it.
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		sem = make(chan struct{}, 2)
	)
	for _, bin := range repoBinaries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			out := filepath.Join(b.Dir, bin.name)
			cmd := exec.CommandContext(ctx, "go", append(args, "-o", out, bin.pkg)...)
			cmd.Dir = filepath.Join(root, bin.module)
			var stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stderr, &stderr
			err := cmd.Run()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				b.errs[bin.name] = fmt.Errorf("go %v in %s: %w\n%s", cmd.Args[1:], cmd.Dir, err, stderr.Bytes())
				return
			}
			b.bins[bin.name] = out
		}()
	}
	wg.Wait()
	b.spent = time.Since(start)
}

// Spent is how long building took (zero before the first Get).
func (b *Builder) Spent() time.Duration { return b.spent }
