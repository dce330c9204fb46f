//go:build unix

package main

import (
	"os"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// takeTerminal makes a process group of the demo's own the terminal's foreground group,
// so the keys' signals (Ctrl-C, Ctrl-Z) reach the demo alone. Started by make, the demo
// shares make's group; make would get the same SIGINT and, once the demo had stopped
// cleanly, die of it (status 130). Ctrl-Z still stops the whole job: the demo gives the
// terminal back, rejoins make's group and stops it; fg continues both and the demo takes
// the terminal again.
//
// It does nothing unless stdin is the terminal and the demo's group is its foreground
// group and is not already the demo's own (as when a job control shell starts the demo).
// A demo started in the background (make demo &) or continued there (bg) leaves the
// terminal to make's job: shells do not signal a running job that fg brings back.
// release gives the terminal back to make's group and rejoins it, so a second Ctrl-C
// reaches make too; calling it again does nothing.
func takeTerminal() (release func()) {
	fd := int(os.Stdin.Fd())
	parent := unix.Getpgrp()
	fg, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
	if err != nil || fg != parent || parent == os.Getpid() {
		return func() {}
	}
	t := &terminal{fd: fd, parent: parent, sigs: make(chan os.Signal, 1)}
	signal.Notify(t.sigs, syscall.SIGTSTP, syscall.SIGCONT) // before a Ctrl-Z can reach the demo alone
	t.take()
	go t.watch()
	return t.release
}

type terminal struct {
	fd, parent int
	sigs       chan os.Signal

	mu              sync.Mutex
	owned, released bool
}

// watch follows the job control keys while the demo holds the terminal.
func (t *terminal) watch() {
	for s := range t.sigs {
		t.mu.Lock()
		if t.released {
			t.mu.Unlock()
			return
		}
		switch s {
		case syscall.SIGTSTP: // Ctrl-Z: stop as make's job, as if the demo were still in it
			t.giveBack()
			signal.Reset(syscall.SIGTSTP)
			_ = unix.Kill(-t.parent, syscall.SIGTSTP) // the demo stops here too
		case syscall.SIGCONT: // fg (or bg): after fg, make's group holds the terminal again
			signal.Notify(t.sigs, syscall.SIGTSTP)
			if fg, err := unix.IoctlGetInt(t.fd, unix.TIOCGPGRP); err == nil && fg == t.parent && !t.owned {
				t.take()
			}
		}
		t.mu.Unlock()
	}
}

func (t *terminal) take() {
	if unix.Setpgid(0, 0) == nil {
		t.setForeground(os.Getpid())
		t.owned = true
	}
}

func (t *terminal) giveBack() {
	if t.owned {
		t.setForeground(t.parent)
		_ = unix.Setpgid(0, t.parent)
		t.owned = false
	}
}

// setForeground makes pgrp the terminal's foreground group. A process outside that group
// may do so only with SIGTTOU ignored; otherwise the kernel stops it.
func (t *terminal) setForeground(pgrp int) {
	signal.Ignore(syscall.SIGTTOU)
	defer signal.Reset(syscall.SIGTTOU)
	_ = unix.IoctlSetPointerInt(t.fd, unix.TIOCSPGRP, pgrp)
}

func (t *terminal) release() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.released {
		return
	}
	t.released = true
	t.giveBack()
	signal.Stop(t.sigs)
	close(t.sigs)
}
