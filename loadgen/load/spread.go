package load

import (
	"context"
	"sync/atomic"

	"github.com/nats-io/nats.go"
)

// Spread returns a Requester that sends each request on the next of rs in turn. Give a
// Runner several connections when one is the limit: a nats.Conn has one socket, one
// read loop and one lock for all its requests, so concurrent workers on one connection
// wait on each other where `nats bench --clients N`, one connection per client, does not.
// With one Requester, Spread returns it; with none, it panics.
func Spread(rs ...Requester) Requester {
	switch len(rs) {
	case 0:
		panic("load: Spread needs at least one Requester")
	case 1:
		return rs[0]
	}
	return &spread{rs: rs}
}

type spread struct {
	rs   []Requester
	next atomic.Uint64
}

func (s *spread) Request(ctx context.Context, subject string, data []byte) (*nats.Msg, error) {
	return s.rs[(s.next.Add(1)-1)%uint64(len(s.rs))].Request(ctx, subject, data)
}
