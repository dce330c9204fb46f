package rpc

import (
	"context"
	"sync"
)

// Inflight counts running handlers so that Stop can wait for them. The zero value is
// ready to use.
type Inflight struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n drops to zero; nil while n == 0
}

// Begin marks one handler as started.
func (i *Inflight) Begin() {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.n == 0 {
		i.idle = make(chan struct{})
	}
	i.n++
}

// End marks one handler as finished.
func (i *Inflight) End() {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.n--
	if i.n == 0 {
		close(i.idle)
		i.idle = nil
	}
}

// Wait returns when no handler is running, or with ctx's error.
func (i *Inflight) Wait(ctx context.Context) error {
	for {
		i.mu.Lock()
		idle := i.idle
		i.mu.Unlock()
		if idle == nil {
			return nil
		}
		select {
		case <-idle:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
