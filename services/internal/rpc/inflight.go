package rpc

import (
	"context"
	"sync"
)

// Inflight counts running handlers so that Stop can wait for them, and closes the door
// behind them: once Close was called, Begin refuses. The zero value is ready to use.
type Inflight struct {
	mu     sync.Mutex
	n      int
	closed bool
	idle   chan struct{} // closed when n drops to zero; nil while n == 0
}

// Begin marks one handler as started. It returns false, counting nothing, once Close
// was called: the handler must then leave state alone (answer 503, or nak).
func (i *Inflight) Begin() bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.closed {
		return false
	}
	if i.n == 0 {
		i.idle = make(chan struct{})
	}
	i.n++
	return true
}

// End marks one handler (whose Begin returned true) as finished.
func (i *Inflight) End() {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.n--
	if i.n == 0 {
		close(i.idle)
		i.idle = nil
	}
}

// Close makes every later Begin return false. Handlers already begun are still counted
// and waited for by Wait.
func (i *Inflight) Close() {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.closed = true
}

// Closed reports whether Close was called.
func (i *Inflight) Closed() bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.closed
}

// Wait returns when no handler is running, or with ctx's error. After Close, no handler
// can start again once Wait returned nil.
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
