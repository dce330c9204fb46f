package harness

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ProcessConfig describes one child process.
type ProcessConfig struct {
	// Name identifies the process in logs and failure messages ("order", "inventory-2").
	Name string
	// Path is the executable; Args its arguments.
	Path string
	Args []string
	// Env is the complete environment of the child. The test's own environment is not
	// inherited (compose does not pass it either); BaseEnv has PATH, HOME and the like.
	Env []string
	// Dir is the working directory (default: LogDir).
	Dir string
	// LogDir receives <Name>.log with stdout and stderr interleaved.
	LogDir string
	// StopTimeout is how long Stop waits after SIGTERM before SIGKILL (default 10 s).
	StopTimeout time.Duration
	// CheckExit makes Stop fail the test when the process exits with a non-zero status after
	// SIGTERM, or its log shows a data race or a panic. Set it for the repository's binaries.
	CheckExit bool
}

// Process is a running child process whose output goes to a log file.
type Process struct {
	Name    string
	LogPath string

	cfg  ProcessConfig
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
	err  error // set before done is closed

	logStart int64 // size of the log file before this process wrote to it

	stopOnce sync.Once
}

// StartProcess starts cfg and registers a cleanup that stops it (SIGTERM, then SIGKILL).
func StartProcess(t testing.TB, cfg ProcessConfig) *Process {
	t.Helper()
	p, err := startProcess(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.stop(t) })
	return p
}

func startProcess(cfg ProcessConfig) (*Process, error) {
	if cfg.Name == "" {
		cfg.Name = filepath.Base(cfg.Path)
	}
	if cfg.LogDir == "" {
		return nil, fmt.Errorf("start %s: no LogDir", cfg.Name)
	}
	if cfg.Dir == "" {
		cfg.Dir = cfg.LogDir
	}
	if cfg.StopTimeout == 0 {
		cfg.StopTimeout = 10 * time.Second
	}
	logPath := filepath.Join(cfg.LogDir, cfg.Name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", cfg.Name, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", cfg.Name, err)
	}
	cmd := exec.Command(cfg.Path, cfg.Args...)
	cmd.Env = cfg.Env
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	cmd.Dir = cfg.Dir
	cmd.Stdout = f
	cmd.Stderr = f
	// Own process group, so a Ctrl-C on the test does not hit the children first and
	// Stop decides the order of shutdown.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	fmt.Fprintf(f, "### harness: %s %s\n", cfg.Path, strings.Join(cfg.Args, " "))
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", cfg.Name, err)
	}
	p := &Process{Name: cfg.Name, LogPath: logPath, cfg: cfg, cmd: cmd, log: f, done: make(chan struct{}), logStart: fi.Size()}
	go func() {
		err := cmd.Wait()
		p.err = err
		close(p.done)
	}()
	return p, nil
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is the exit error once Done is closed (nil for exit status 0).
func (p *Process) Err() error {
	select {
	case <-p.done:
		return p.err
	default:
		return nil
	}
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Wait blocks until the process exits or timeout passes.
func (p *Process) Wait(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		return fmt.Errorf("%s still running after %v", p.Name, timeout)
	}
}

// Logs returns everything the process has written so far.
func (p *Process) Logs() string {
	b, err := os.ReadFile(p.LogPath)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", p.LogPath, err)
	}
	return string(b)
}

// logSinceStart returns what this process has written to its log, without what earlier
// processes of the same name (a restart, a retried start) wrote before it.
func (p *Process) logSinceStart() string {
	b, err := os.ReadFile(p.LogPath)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", p.LogPath, err)
	}
	if int64(len(b)) < p.logStart {
		return ""
	}
	return string(b[p.logStart:])
}

// closeLog closes the harness' handle of the log file (the file stays).
func (p *Process) closeLog() { _ = p.log.Close() }

// Tail returns the last n lines the process has written.
func (p *Process) Tail(n int) string { return tailFile(p.LogPath, n) }

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", path, err)
	}
	return lastLines(string(b), n, " in "+path)
}

// lastLines returns the last n lines of s, noting how many came before (and where, if not "").
func lastLines(s string, n int, where string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... (%d earlier lines%s)", len(lines)-n, where)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// Stop sends SIGTERM, waits up to the stop timeout, then kills. It returns the exit error;
// a process killed by the harness reports that.
func (p *Process) Stop() error {
	var err error
	p.stopOnce.Do(func() { err = p.terminate() })
	if err != nil {
		return err
	}
	<-p.done
	return p.err
}

func (p *Process) terminate() error {
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(p.cfg.StopTimeout):
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	return fmt.Errorf("%s did not exit within %v of SIGTERM and was killed", p.Name, p.cfg.StopTimeout)
}

// stop is the cleanup: stop, close the log, and for CheckExit processes report an unclean
// exit, a data race or a panic as a test error.
func (p *Process) stop(t testing.TB) {
	err := p.Stop()
	p.closeLog()
	if !p.cfg.CheckExit {
		return
	}
	if err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			err = fmt.Errorf("%s exited with %v after SIGTERM", p.Name, exitErr)
		}
		t.Errorf("%v\n--- %s log tail:\n%s", err, p.Name, p.Tail(40))
	}
	logs, _ := os.ReadFile(p.LogPath)
	for _, bad := range [][]byte{[]byte("WARNING: DATA RACE"), []byte("\npanic: "), []byte("fatal error: ")} {
		if i := bytes.Index(logs, bad); i >= 0 {
			end := min(len(logs), i+4000)
			t.Errorf("%s log contains %q:\n%s", p.Name, bytes.TrimSpace(bad), logs[i:end])
		}
	}
}

// BaseEnv is the environment every child starts from: PATH, HOME (a directory of the test),
// TMPDIR, and GORACE so a data race in a race-built binary makes it exit non-zero at once.
func BaseEnv(home string) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"TMPDIR=" + os.TempDir(),
		"GORACE=halt_on_error=1",
		"LANG=C.UTF-8",
	}
	return env
}
