package main

import (
	"context"

	"github.com/nats-io/nats.go"

	"github.com/natsotel/reference/loadgen/load"
	"github.com/natsotel/reference/natsotel"
	"github.com/natsotel/reference/services/app"
	"github.com/natsotel/reference/services/telemetry"
)

// dial returns n instrumented connections for load.Spread: nc, then n-1 more made the way
// app.Connect makes nc (same server, credentials and inbox prefix). closeAll closes the extra
// ones. A failure is logged before dial returns it.
func dial(ctx context.Context, nc *nats.Conn, n int, getenv func(string) string, tel *telemetry.Telemetry) (conns []load.Requester, closeAll func(), err error) {
	var extra []*nats.Conn
	closeAll = func() {
		for _, c := range extra {
			c.Close()
		}
	}
	for i := range n {
		c := nc
		if i > 0 {
			if c, err = app.Connect(ctx, "loadgen", getenv, tel.Logger.With("conn", i)); err != nil {
				tel.Logger.Error("cannot connect to NATS", "conn", i, "error", err)
				closeAll()
				return nil, nil, err
			}
			extra = append(extra, c)
		}
		conn, err := natsotel.Wrap(c, tel.NATSOptions()...)
		if err != nil {
			tel.Logger.Error("natsotel", "error", err)
			closeAll()
			return nil, nil, err
		}
		conns = append(conns, conn)
	}
	return conns, closeAll, nil
}
