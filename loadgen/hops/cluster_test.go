package hops_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// clusterServer runs a server of cluster "c" with accountConf, routed to the route URL
// seed (none for the first).
func clusterServer(t *testing.T, name string, seed *url.URL) *server.Server {
	t.Helper()
	opts := &server.Options{}
	if err := opts.ProcessConfigString(accountConf); err != nil {
		t.Fatal(err)
	}
	opts.ServerName, opts.Host, opts.Port = name, "127.0.0.1", server.RANDOM_PORT
	opts.Cluster.Name, opts.Cluster.Host, opts.Cluster.Port = "c", "127.0.0.1", server.RANDOM_PORT
	if seed != nil {
		opts.Routes = []*url.URL{seed}
	}
	opts.NoLog, opts.NoSigs = true, true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// waitInterest waits until account SHOP on s knows of a subscriber to subject (a route
// propagates interest asynchronously).
func waitInterest(t *testing.T, s *server.Server, subject string) {
	t.Helper()
	acc, err := s.LookupAccount("SHOP")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !acc.SubscriptionInterest(subject) {
		if time.Now().After(deadline) {
			t.Fatalf("%s never saw interest in %s", s.Name(), subject)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A message published on server a and delivered on server b over a route: each server
// sends its event, and both hops are children of the publisher's span; a's "forward
// route" step and b's hop carry the same hop id.
func TestRoutedHops(t *testing.T) {
	a := clusterServer(t, "a", nil)
	b := clusterServer(t, "b", &url.URL{Scheme: "nats-route", Host: a.ClusterAddr().String()})

	rec := newSpans()
	startBridge(t, a, rec) // b's event crosses the route to the bridge
	waitInterest(t, b, traceSubject)

	sub, err := connect(t, b, "subscriber").SubscribeSync("x")
	if err != nil {
		t.Fatal(err)
	}
	waitInterest(t, a, "x")

	pub := connect(t, a, "publisher")
	m := nats.NewMsg("x")
	m.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	if err := pub.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.NextMsg(5 * time.Second); err != nil {
		t.Fatal(err)
	}

	got := rec.waitFor(t, "both servers' hops", func(ss []sdktrace.ReadOnlySpan) bool {
		return find(ss, trace.SpanKindInternal, "hop a") != nil && find(ss, trace.SpanKindInternal, "hop b") != nil
	})
	hopA, hopB := find(got, trace.SpanKindInternal, "hop a"), find(got, trace.SpanKindInternal, "hop b")
	for _, h := range []sdktrace.ReadOnlySpan{hopA, hopB} {
		if h.Parent().SpanID().String() != "00f067aa0ba902b7" || h.SpanContext().TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
			t.Errorf("%s: parent %s in trace %s, want the publisher's span", h.Name(), h.Parent().SpanID(), h.SpanContext().TraceID())
		}
	}
	forward := find(got, trace.SpanKindInternal, "forward route")
	deliver := find(got, trace.SpanKindInternal, "deliver x")
	if forward == nil || deliver == nil {
		t.Fatalf("spans: %s", names(got))
	}
	if forward.Parent().SpanID() != hopA.SpanContext().SpanID() || deliver.Parent().SpanID() != hopB.SpanContext().SpanID() {
		t.Errorf("forward under %s, deliver under %s: want a's and b's hops", forward.Parent().SpanID(), deliver.Parent().SpanID())
	}
	if id := attr(forward, "nats.trace.hop"); id == "" || id != attr(hopB, "nats.trace.hop") {
		t.Errorf("hop ids: a forwards %q, b received %q", id, attr(hopB, "nats.trace.hop"))
	}
	if attr(hopA, "nats.trace.hops") != "1" || attr(hopB, "nats.connection.kind") != "route" || attr(forward, "nats.connection.name") != "b" {
		t.Errorf("a forwards to %s servers; b's ingress kind %q; forward to %q",
			attr(hopA, "nats.trace.hops"), attr(hopB, "nats.connection.kind"), attr(forward, "nats.connection.name"))
	}
}
