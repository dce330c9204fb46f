package load

import (
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go/micro"
)

// A closed loop over three connections sends a third of its requests on each: the
// endpoint sees three reply inboxes (one per connection), ten requests apiece.
func TestSpreadSendsOnEveryConnection(t *testing.T) {
	s := startServer(t)
	srv := connect(t, s)
	var mu sync.Mutex
	perInbox := map[string]int{}
	svc, err := micro.AddService(srv, micro.Config{Name: "echo", Version: "0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	if err := svc.AddEndpoint("echo", micro.HandlerFunc(func(r micro.Request) {
		// A new-style request's reply subject is <inbox prefix>.<nuid of the connection>.<token>.
		inbox := r.Reply()[:strings.LastIndexByte(r.Reply(), '.')]
		mu.Lock()
		perInbox[inbox]++
		mu.Unlock()
		_ = r.Respond(r.Data())
	}), micro.WithEndpointSubject("bench.echo")); err != nil {
		t.Fatal(err)
	}
	if err := srv.Flush(); err != nil {
		t.Fatal(err)
	}

	var conns []Requester
	for range 3 {
		conn, _ := tracedConn(t, connect(t, s))
		conns = append(conns, conn)
	}
	r, err := New(Spread(conns...), nil, Config{Mode: ModeClosed, Workers: 3, Count: 30, Progress: -1,
		Subject: "bench.echo", Payload: []byte("{}")})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := r.Run(t.Context())
	if err != nil || sum.Unexpected != 0 {
		t.Fatalf("run: %v\n%s", err, sum)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(perInbox) != 3 {
		t.Fatalf("requests came from %d inboxes, want 3: %v", len(perInbox), perInbox)
	}
	for inbox, n := range perInbox {
		if n != 10 {
			t.Errorf("%s sent %d requests, want 10: %v", inbox, n, perInbox)
		}
	}
	if Spread(conns[0]) != conns[0] {
		t.Error("Spread of one Requester is not that Requester")
	}
}
