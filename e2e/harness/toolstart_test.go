package harness

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestStartToolRetriesPortInUse starts fake tools (sh scripts) whose attempts fail as a
// tool that lost its port does, and checks which attempts startTool makes.
func TestStartToolRetriesPortInUse(t *testing.T) {
	const (
		inUse   = `echo "listen tcp 127.0.0.1:4317: bind: address already in use"; exit 1`
		inUseUp = `echo "listen tcp 127.0.0.1:4317: bind: address already in use"; echo up; exec sleep 60`
		broken  = `echo "error: bad config"; exit 1`
		up      = `echo up; exec sleep 60`
	)
	for _, tc := range []struct {
		name     string
		scripts  []string // per attempt
		attempts int      // attempts made
		ok       bool
	}{
		{"ready at once", []string{up}, 1, true},
		{"port taken then free", []string{inUse, up}, 2, true},
		{"ready but the log says a port was taken", []string{inUseUp, inUse, up}, 3, true},
		{"port taken every time", []string{inUse, inUse, inUse}, 3, false},
		{"other failure is not retried", []string{broken, up}, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var made int
			p, err := startToolErr(toolStart{
				attempt: func(n int) ProcessConfig {
					made = n + 1
					return ProcessConfig{
						Name: "fake", Path: "/bin/sh", Args: []string{"-c", tc.scripts[n]},
						Env: BaseEnv(dir), LogDir: dir, StopTimeout: 5 * time.Second,
					}
				},
				ready:   func(ctx context.Context, p *Process) error { return waitLog(ctx, p, "up") },
				timeout: 10 * time.Second,
			})
			if p != nil {
				t.Cleanup(func() { p.stop(t) })
			}
			if made != tc.attempts {
				t.Errorf("made %d attempts, want %d", made, tc.attempts)
			}
			if tc.ok != (err == nil) {
				t.Fatalf("err = %v, want ok = %v", err, tc.ok)
			}
			if !tc.ok {
				t.Logf("error (as expected): %v", err)
				return
			}
			select {
			case <-p.Done():
				t.Fatalf("returned a process that has exited: %v", p.Err())
			default:
			}
			if s := p.logSinceStart(); strings.Contains(s, addrInUse) {
				t.Errorf("the returned process' own log reports %s:\n%s", addrInUse, s)
			}
			if n := strings.Count(p.Logs(), "### harness:"); n != tc.attempts {
				t.Errorf("log has %d starts, want %d:\n%s", n, tc.attempts, p.Logs())
			}
		})
	}
}
