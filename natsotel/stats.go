package natsotel

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/micro"
)

// endpointStats are the figures of one endpoint's handler, measured around the handler
// itself (micro measures around the hand-off when handlers run concurrently: see serve.go).
// They are each endpoint's "data" in $SRV.STATS, as JSON:
//
//	{"concurrency":64,"in_flight":3,"num_requests":1200,"num_errors":31,
//	 "last_error":"409: out of stock","processing_time":5.2e9,"average_processing_time":4.3e6}
//
// Times are in nanoseconds, as micro's own; a request counts as an error when its answer
// was a micro error or no answer was sent (error.type on its span).
type endpointStats struct {
	inFlight atomic.Int64 // handlers running, whether on micro's goroutine or their own
	requests atomic.Int64
	errors   atomic.Int64
	nanos    atomic.Int64
	mu       sync.Mutex
	lastErr  string
}

// record counts a request whose handler returned after d.
func (s *endpointStats) record(d time.Duration, errType, desc string) {
	s.inFlight.Add(-1)
	s.requests.Add(1)
	s.nanos.Add(int64(d))
	if errType == "" {
		return
	}
	s.errors.Add(1)
	s.mu.Lock()
	s.lastErr = errType + ": " + desc
	s.mu.Unlock()
}

// statsJSON is endpointStats as $SRV.STATS carries it.
type statsJSON struct {
	Concurrency           int           `json:"concurrency"`
	InFlight              int           `json:"in_flight"`
	NumRequests           int64         `json:"num_requests"`
	NumErrors             int64         `json:"num_errors"`
	LastError             string        `json:"last_error,omitempty"`
	ProcessingTime        time.Duration `json:"processing_time"`
	AverageProcessingTime time.Duration `json:"average_processing_time"`
}

// statsData is the micro StatsHandler of a Service: the figures of the endpoint's handler.
func (s *Service) statsData(e *micro.Endpoint) any {
	v, ok := s.eps.Load(e.Subject)
	if !ok {
		return nil // an endpoint added around natsotel (s.Service.AddEndpoint)
	}
	ep := v.(*endpoint)
	out := statsJSON{
		Concurrency:    max(1, cap(ep.slots)),
		InFlight:       int(ep.stats.inFlight.Load()),
		NumRequests:    ep.stats.requests.Load(),
		NumErrors:      ep.stats.errors.Load(),
		ProcessingTime: time.Duration(ep.stats.nanos.Load()),
	}
	if out.NumRequests > 0 {
		out.AverageProcessingTime = out.ProcessingTime / time.Duration(out.NumRequests)
	}
	ep.stats.mu.Lock()
	out.LastError = ep.stats.lastErr
	ep.stats.mu.Unlock()
	return out
}
