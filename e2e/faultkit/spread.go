package faultkit

import (
	"context"
	"sync/atomic"

	"github.com/nats-io/nats.go"

	"github.com/natsotel/reference/loadgen/load"
)

// Spread is a load.Requester that sends request n to target n mod len(targets): one load
// generator drives several copies of the shop at once, interleaved request by request,
// so that anything else happening on the machine at a given moment affects every copy
// alike. Wrap each target in a Recorder to tell the copies' figures apart.
type Spread struct {
	targets []load.Requester
	n       atomic.Uint64
}

var _ load.Requester = (*Spread)(nil)

// NewSpread spreads requests over targets.
func NewSpread(targets ...load.Requester) *Spread { return &Spread{targets: targets} }

// Request sends to the next target in turn.
func (s *Spread) Request(ctx context.Context, subject string, data []byte) (*nats.Msg, error) {
	i := s.n.Add(1) - 1
	return s.targets[i%uint64(len(s.targets))].Request(ctx, subject, data)
}
