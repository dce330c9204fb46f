package natsotel

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go/micro"
)

// defaultConcurrency is how many handlers of one micro endpoint run at once unless
// WithConcurrency says otherwise.
const defaultConcurrency = 64

// Serving concurrently.
//
// nats.go delivers the messages of one subscription on one goroutine, and micro runs an
// endpoint's handler on it: left alone, an endpoint answers one request at a time, so one
// slow dependency stalls the whole service. natsotel hands each request to a worker
// goroutine (see worker), at most n at once per endpoint (WithConcurrency). When n
// handlers are busy the delivery goroutine waits for one to finish: further requests queue
// in the endpoint subscription's pending buffer (micro.WithEndpointPendingLimits bounds it;
// nats.go's default is 512Ki messages or 64 MiB). Past that limit nats.go drops them, the
// connection's ErrorHandler gets nats.ErrSlowConsumer and their callers time out: that is
// the back-pressure.
//
// A handler that runs on its own goroutine answers through natsotel (see detachedRequest)
// rather than through micro's request, which micro reads without a lock once the delivery
// goroutine moves on. micro's $SRV.STATS therefore times the hand-off, not the handler, and
// counts no errors: natsotel reports the handler's figures in each endpoint's stats "data"
// (see endpointStats), unless the micro.Config has a StatsHandler of its own.

// slots bounds the handlers of one endpoint that run at once.
type slots chan struct{}

// inflight counts the handlers of a Service that are running, so that Shutdown can wait
// for them. The zero value is ready to use.
type inflight struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n drops to zero; nil while n == 0
}

func (f *inflight) add() {
	f.mu.Lock()
	if f.n == 0 {
		f.idle = make(chan struct{})
	}
	f.n++
	f.mu.Unlock()
}

func (f *inflight) done() {
	f.mu.Lock()
	f.n--
	if f.n == 0 {
		close(f.idle)
		f.idle = nil
	}
	f.mu.Unlock()
}

// wait returns when no handler runs, or ctx's error.
func (f *inflight) wait(ctx context.Context) error {
	f.mu.Lock()
	idle := f.idle
	f.mu.Unlock()
	if idle == nil {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// dispatch runs the endpoint's handler for req: on the delivery goroutine when the endpoint
// serves one request at a time, otherwise, once a slot is free, on one of the endpoint's
// worker goroutines, started when there are fewer of them than requests in flight.
func (ep *endpoint) dispatch(req micro.Request) {
	if ep.slots == nil {
		ep.serve(req)
		return
	}
	ep.slots <- struct{}{} // blocks delivery while every slot is busy: back-pressure
	ep.svc.running.add()
	ep.work <- &detachedRequest{Request: req, c: ep.c} // never blocks: one slot a request
	if int(ep.workers.Load()) < len(ep.slots) {
		ep.workers.Add(1)
		go ep.worker(nil)
	}
}

// workerIdle is how long a worker waits for a request before it exits.
const workerIdle = time.Second

// worker handles dr (if not nil), then the endpoint's requests until none came for
// workerIdle. A goroutine per request would start on a small stack and grow it (copying
// it) every time: the tracing calls of a request go deep enough for that to take about a
// tenth of a service's CPU. A worker grows its stack once.
func (ep *endpoint) worker(dr *detachedRequest) {
	defer ep.retire()
	if dr != nil {
		ep.handle(dr)
	}
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		select {
		case dr := <-ep.work:
			ep.handle(dr)
			idle.Reset(workerIdle)
		case <-idle.C:
			return
		}
	}
}

// retire uncounts a worker that exits (idle, or by a handler's runtime.Goexit) and starts
// another if a request is queued: dispatch may have counted this worker for it.
func (ep *endpoint) retire() {
	ep.workers.Add(-1)
	select {
	case dr := <-ep.work:
		ep.workers.Add(1)
		go ep.worker(dr)
	default:
	}
}

// handle serves dr and frees its slot, also when the handler calls runtime.Goexit.
func (ep *endpoint) handle(dr *detachedRequest) {
	defer func() {
		<-ep.slots
		ep.svc.running.done()
	}()
	ep.serve(dr)
}

// Shutdown stops the service so that every request it received is answered: the endpoints
// unsubscribe (micro.Service.Stop drains them), then Shutdown waits until the requests the
// server delivered before the unsubscribe have been handed to handlers (a flush and a
// barrier behind every subscription of the connection) and until every handler returned.
// Each wait is bounded by ctx. The connection stays open: drain or close it afterwards.
//
// Requests still queued when Shutdown starts are handled as usual: a handler that must not
// change state any more should check a flag of its own (the services of this repo answer
// 503 "service is stopping").
func (s *Service) Shutdown(ctx context.Context) error {
	if err := s.Service.Stop(); err != nil {
		return err
	}
	if err := delivered(ctx, s.conn); err != nil {
		return err
	}
	return s.running.wait(ctx)
}

// delivered returns once every message the server sent to the connection before the call
// was handed to its subscription's handler: a round trip to the server (skipped while
// disconnected: nothing more arrives then), then a barrier behind every subscription.
func delivered(ctx context.Context, c *Conn) error {
	nc := c.nc
	if nc.IsClosed() {
		return nil // nothing queued is delivered any more
	}
	if nc.IsConnected() {
		fctx := ctx
		if _, ok := ctx.Deadline(); !ok { // FlushWithContext wants a deadline
			var cancel context.CancelFunc
			fctx, cancel = context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
		}
		if err := nc.FlushWithContext(fctx); err != nil && !nc.IsClosed() {
			return &OpError{Op: "shutdown", Subject: "flush", Err: err}
		}
	}
	done := make(chan struct{})
	if err := nc.Barrier(func() { close(done) }); err != nil {
		if nc.IsClosed() {
			return nil
		}
		return &OpError{Op: "shutdown", Subject: "barrier", Err: err}
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
