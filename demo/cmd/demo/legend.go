package main

import (
	"fmt"
	"io"

	"github.com/natsotel/reference/loadgen/load"
)

// printLegend explains, once after the banner, what the graph and the load summary show.
func printLegend(w io.Writer, o options, url string) {
	hops := ""
	if o.hops {
		hops = `nats-server hops (under the graph): per step (deliver <subject>, store <stream>), the time
  from the message's arrival at the server to that step; -hops=false turns it off.
`
	}
	fmt.Fprintf(w, `How to read the graph (printed every %s):
  CLIENT SERVER  one edge: a CLIENT or PRODUCER span of one service whose child SERVER or
                 CONSUMER span belongs to another (Tempo's pairing rule). TYPE is request
                 (request/reply), messaging_system (JetStream events) or database (a KV bucket).
  TOTAL          pairs since the start; RATE/S and ERRORS cover the last %s (-graph-window).
  ERRORS         share of pairs with an error status. About a quarter of loadgen -> order is
                 on purpose: the default -mix sends sold-out products (409), declined cards
                 (402) and malformed orders (400); order -> billing/inventory show 402/409.
  P50 P99        server-side span duration (the KV call itself for database edges).
  pending        spans waiting for their other side; expired: waited %s in vain; dropped:
                 refused because too many were pending. Only pending is normal.
  user -> ...    a server span without a traced caller: your own nats req, e.g.
                 nats --server %s req order.get '{"id":"x"}'
Load generator: open loop at %g orders/s (-rate). Its summary on Ctrl-C counts late
  requests (sent more than %s after their planned time: this process fell behind, not the
  shop; their latency includes the delay) and dropped ones (not sent: too many in flight).
-replicas N runs N instances of inventory (the other services stay at one).
%sLogs: warnings and errors only; -logs prints every component's logs (level: -log-level).
Flags through make: make demo ARGS='-rate 100 -replicas 3 -logs'; all flags: make demo ARGS=-h

`, o.graphInterval, o.graphWindow, graphTTL, url, o.rate, load.DefaultLateThreshold, hops)
}
