package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// make demo typed into an interactive bash on a terminal, as a user runs it: Ctrl-C
// prints the summary and make exits 0 (make shares the demo's process group; unless the
// demo takes the terminal's foreground group, make dies of the same SIGINT: status 130).
// Ctrl-Z stops make's job as usual, fg continues it, and Ctrl-C still ends it with 0.
func TestMakeDemoCtrlCOnTerminal(t *testing.T) {
	for _, tool := range []string{"make", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s on PATH: make demo needs it", tool)
		}
	}
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	c := startConsole(t, root, "bash", "--norc", "--noprofile", "-i")
	c.expect(t, `PROMPT\$ `)
	makeDemo := "make demo ARGS='-port 0 -graph-interval 500ms'\n"
	status := func() string {
		c.send(t, "echo status=$?\n")
		return c.expect(t, `status=(\d+)`)[1]
	}

	c.send(t, makeDemo)
	c.expect(t, `micro instances:`) // a whole graph: the shop runs
	c.send(t, "\x03")
	run := c.expect(t, `(?s)(.*)PROMPT\$ `)[1]
	for _, want := range []string{"stopping...", "loadgen open loop:", "unexpected 0"} {
		if !strings.Contains(run, want) {
			t.Errorf("after Ctrl-C the output lacks %q:\n%s", want, run)
		}
	}
	if s := status(); s != "0" {
		t.Errorf("make demo, Ctrl-C: status %s, want 0:\n%s", s, run)
	}

	c.send(t, makeDemo)
	c.expect(t, `micro instances:`)
	c.send(t, "\x1a")
	c.expect(t, `Stopped.*make demo`)
	c.expect(t, `PROMPT\$ `)
	c.send(t, "fg\n")
	// Two graphs after fg: it runs again, and the first may have been due while it was
	// stopped, printed before the demo took the terminal back.
	c.expect(t, `micro instances:`)
	c.expect(t, `micro instances:`)
	c.send(t, "\x03")
	run = c.expect(t, `(?s)(.*)PROMPT\$ `)[1]
	if s := status(); s != "0" || !strings.Contains(run, "loadgen open loop:") {
		t.Errorf("make demo, Ctrl-Z, fg, Ctrl-C: status %s, want 0 and the summary:\n%s", s, run)
	}
	c.send(t, "exit\n")
}

// console is a program running on a pseudo-terminal: the test types into it and reads
// what it prints.
type console struct {
	ptmx *os.File
	mu   sync.Mutex
	out  string        // printed and not yet matched by expect
	more chan struct{} // a read added output (or failed)
}

// startConsole starts name in a new session whose controlling terminal is a fresh
// pseudo-terminal, as a terminal emulator starts a shell.
func startConsole(t *testing.T, dir, name string, args ...string) *console {
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skip("no pseudo-terminal:", err)
	}
	t.Cleanup(func() { _ = ptmx.Close() })
	fd := int(ptmx.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal("unlockpt:", err)
	}
	n, err := unix.IoctlGetUint32(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatal("ptsname:", err)
	}
	tty, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PS1=PROMPT$ ", "TERM=dumb", "HISTFILE=")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true} // Ctty 0: stdin
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	_ = tty.Close()
	t.Cleanup(func() { _ = ptmx.Close(); _ = cmd.Wait() }) // closing the master hangs up the session

	c := &console{ptmx: ptmx, more: make(chan struct{}, 1)}
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := ptmx.Read(b)
			c.mu.Lock()
			c.out += string(b[:n])
			c.mu.Unlock()
			select {
			case c.more <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
		}
	}()
	return c
}

func (c *console) send(t *testing.T, keys string) {
	t.Helper()
	if _, err := c.ptmx.WriteString(keys); err != nil {
		t.Fatal(err)
	}
}

// expect waits for pattern in the output not yet matched, consumes the output up to the
// end of the match, and returns the match and its groups.
func (c *console) expect(t *testing.T, pattern string) []string {
	t.Helper()
	re := regexp.MustCompile(pattern)
	timeout := time.After(2 * time.Minute)
	for {
		c.mu.Lock()
		loc := re.FindStringSubmatchIndex(c.out)
		var m []string
		if loc != nil {
			for i := 0; i < len(loc); i += 2 {
				if loc[i] >= 0 {
					m = append(m, c.out[loc[i]:loc[i+1]])
				} else {
					m = append(m, "")
				}
			}
			c.out = c.out[loc[1]:]
		}
		out := c.out
		c.mu.Unlock()
		if m != nil {
			return m
		}
		select {
		case <-c.more:
		case <-timeout:
			t.Fatalf("no %q in 2 minutes; output:\n%s", pattern, out)
		}
	}
}
