package natsotel_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/natsotel/reference/natsotel"
)

// gate holds handlers until it is opened and tells how many are inside.
type gate struct {
	entered chan struct{}
	open    chan struct{}
	inside  atomic.Int64
	most    atomic.Int64
	done    atomic.Int64
}

func newGate() *gate { return &gate{entered: make(chan struct{}, 100), open: make(chan struct{})} }

func (g *gate) handler(ctx context.Context, req micro.Request) {
	n := g.inside.Add(1)
	for {
		m := g.most.Load()
		if n <= m || g.most.CompareAndSwap(m, n) {
			break
		}
	}
	g.entered <- struct{}{}
	<-g.open
	g.inside.Add(-1)
	_ = req.Respond(req.Data())
	g.done.Add(1)
}

func (g *gate) wait(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-g.entered:
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d handlers entered, want %d", g.inside.Load(), n)
		}
	}
}

// gatedService serves "reserve" on srv with a gate as its handler, subscribed on the server.
func gatedService(t *testing.T, srv *natsotel.Conn, opts ...micro.EndpointOpt) (*natsotel.Service, *gate) {
	t.Helper()
	svc, err := srv.AddService(micro.Config{Name: "inventory", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	g := newGate()
	if err := svc.AddEndpoint("reserve", g.handler, opts...); err != nil {
		t.Fatal(err)
	}
	flush(t, srv.Raw())
	return svc, g
}

// requests sends n requests at once; the returned function waits for their results.
func requests(c *natsotel.Conn, subject string, n int, timeout time.Duration) func() []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			body := fmt.Sprint(i)
			reply, err := c.Request(ctx, subject, []byte(body))
			if err == nil && string(reply.Data) != body {
				err = fmt.Errorf("request %d answered %q", i, reply.Data)
			}
			errs[i] = err
		})
	}
	return func() []error { wg.Wait(); return errs }
}

// One slow request does not hold up the others: the handlers of one endpoint run side by
// side (micro alone serves one at a time), and each keeps its SERVER span as the child of
// its caller's CLIENT span.
func TestEndpointServesConcurrently(t *testing.T) {
	s := startServer(t)
	tel := newTelemetry(t)
	srv := tel.wrap(t, connect(t, s, "inventory"), natsotel.WithConcurrency(8))
	cli := tel.wrap(t, connect(t, s, "order"))
	svc, g := gatedService(t, srv)

	results := requests(cli, "reserve", 8, 10*time.Second)
	g.wait(t, 8) // all eight are in their handlers at once
	if st := handlerStats(t, waitStats(t, svc, 8)); st.InFlight != 8 || st.Concurrency != 8 {
		t.Errorf("stats while all are busy: %+v", st)
	}
	close(g.open)
	for i, err := range results() {
		if err != nil {
			t.Errorf("request %d: %v", i, err)
		}
	}
	spans := tel.waitSpans(t, 16)
	clients := map[trace.SpanID]bool{}
	for _, sp := range spans {
		if sp.SpanKind() == trace.SpanKindClient {
			clients[sp.SpanContext().SpanID()] = true
		}
	}
	var servers int
	for _, sp := range spans {
		if sp.SpanKind() != trace.SpanKindServer {
			continue
		}
		servers++
		if !clients[sp.Parent().SpanID()] || sp.Status().Code != 0 {
			t.Errorf("server span %s: parent %s, status %v", sp.Name(), sp.Parent().SpanID(), sp.Status())
		}
	}
	if servers != 8 {
		t.Errorf("%d server spans, want 8", servers)
	}
	st := handlerStats(t, waitStats(t, svc, 8))
	if st.NumRequests != 8 || st.NumErrors != 0 || st.InFlight != 0 {
		t.Errorf("stats after: %+v", st)
	}
}

// WithConcurrency(0), what a service passes when nothing configures it, keeps the default of
// 64 handlers per endpoint (it served one request at a time once).
func TestConcurrencyZeroKeepsDefault(t *testing.T) {
	s := startServer(t)
	tel := newTelemetry(t)
	srv := tel.wrap(t, connect(t, s, "inventory"), natsotel.WithConcurrency(0))
	svc, g := gatedService(t, srv)
	close(g.open)
	if st := handlerStats(t, waitStats(t, svc, 0)); st.Concurrency != 64 {
		t.Errorf("WithConcurrency(0): stats %+v, want concurrency 64", st)
	}
}

// twoSlotService is an "inventory" service without endpoints on a connection serving two
// requests at once (srv), and a client connection (cli), traced by tel.
func twoSlotService(t *testing.T) (tel *telemetry, srv, cli *natsotel.Conn, svc *natsotel.Service) {
	t.Helper()
	s := startServer(t)
	tel = newTelemetry(t)
	srv = tel.wrap(t, connect(t, s, "inventory"), natsotel.WithConcurrency(2))
	cli = tel.wrap(t, connect(t, s, "order"))
	svc, err := srv.AddService(micro.Config{Name: "inventory", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	return tel, srv, cli, svc
}

// WithConcurrency bounds the handlers in flight: a third request waits for a free slot, and
// its SERVER span starts only after one of the first two ended.
func TestConcurrencyLimit(t *testing.T) {
	tel, srv, cli, svc := twoSlotService(t)
	var first, rest = newGate(), newGate()
	var n, inside, most atomic.Int64
	if err := svc.AddEndpoint("reserve", func(ctx context.Context, req micro.Request) {
		if in := inside.Add(1); in > most.Load() {
			most.Store(in) // only the handlers that are in race here, and there are at most 2
		}
		defer inside.Add(-1)
		if n.Add(1) <= 2 {
			first.handler(ctx, req)
			return
		}
		rest.handler(ctx, req)
	}); err != nil {
		t.Fatal(err)
	}
	flush(t, srv.Raw())

	results := requests(cli, "reserve", 3, 10*time.Second)
	first.wait(t, 2)
	waitStats(t, svc, 1) // the third request reached the endpoint (micro counts hand-offs)
	close(first.open)
	rest.wait(t, 1)
	close(rest.open)
	for i, err := range results() {
		if err != nil {
			t.Errorf("request %d: %v", i, err)
		}
	}
	if m := most.Load(); m != 2 {
		t.Errorf("%d handlers ran at once, limit 2", m)
	}
	var ends []time.Time
	var third sdktrace.ReadOnlySpan
	for _, sp := range tel.waitSpans(t, 6) {
		if sp.SpanKind() != trace.SpanKindServer {
			continue
		}
		ends = append(ends, sp.EndTime())
		if third == nil || sp.StartTime().After(third.StartTime()) {
			third = sp
		}
	}
	earliest := ends[0]
	for _, e := range ends {
		if e.Before(earliest) {
			earliest = e
		}
	}
	if third.StartTime().Before(earliest) {
		t.Errorf("third handler started at %v, before the first free slot at %v", third.StartTime(), earliest)
	}
}

// When every slot is busy, requests queue in the endpoint's pending buffer; beyond its
// limit nats.go drops them and reports a slow consumer, and their callers time out. Those
// queued are answered once a handler returns.
func TestConcurrencyBackPressure(t *testing.T) {
	s := startServer(t)
	tel := newTelemetry(t)
	slow := make(chan struct{}, 1)
	nc, err := nats.Connect(s.ClientURL(), nats.Name("inventory"), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrSlowConsumer) {
			select {
			case slow <- struct{}{}:
			default:
			}
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	srv := tel.wrap(t, nc, natsotel.WithConcurrency(1))
	cli := tel.wrap(t, connect(t, s, "order"))
	_, g := gatedService(t, srv, micro.WithEndpointPendingLimits(1, 1<<20))

	const sent = 6
	results := requests(cli, "reserve", sent, 3*time.Second)
	g.wait(t, 1)
	select {
	case <-slow:
	case <-time.After(10 * time.Second):
		t.Fatal("no slow consumer reported")
	}
	close(g.open)
	var answered, timedOut int
	for _, err := range results() {
		switch {
		case err == nil:
			answered++
		case errors.Is(err, context.DeadlineExceeded):
			timedOut++
		default:
			t.Errorf("unexpected error %v", err)
		}
	}
	if answered < 1 || timedOut < 1 || answered+timedOut != sent {
		t.Errorf("answered %d, timed out %d of %d", answered, timedOut, sent)
	}
	if int(g.done.Load()) != answered {
		t.Errorf("%d handlers ran, %d callers answered", g.done.Load(), answered)
	}
}

// Shutdown answers every request the service received: the handlers in flight, the one
// waiting for a slot and those still queued all finish before it returns.
func TestShutdownWaitsForHandlers(t *testing.T) {
	s := startServer(t)
	tel := newTelemetry(t)
	srv := tel.wrap(t, connect(t, s, "inventory"), natsotel.WithConcurrency(4))
	svc, g := gatedService(t, srv)

	// Seven requests, all published before Shutdown: four run, one waits for a slot, two
	// are queued.
	const sent = 7
	cli := connect(t, s, "order")
	inbox := nats.NewInbox()
	replies, err := cli.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	for i := range sent {
		if err := cli.PublishRequest("reserve", inbox, []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, cli)
	g.wait(t, 4)

	done := make(chan error, 1)
	go func() { done <- svc.Shutdown(context.Background()) }()
	for !svc.Stopped() {
		select {
		case err := <-done:
			t.Fatalf("Shutdown returned %v with handlers still running", err)
		default:
			time.Sleep(time.Millisecond)
		}
	}
	close(g.open)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := g.done.Load(); n != sent {
		t.Errorf("Shutdown returned after %d of %d handlers", n, sent)
	}
	for range sent {
		if _, err := replies.NextMsg(5 * time.Second); err != nil {
			t.Fatalf("a request was left without an answer: %v", err)
		}
	}
}

// A responder answers only to inboxes: a request whose reply subject is anything else
// ("$KV.stock.sku-3", "$JS.API.STREAM.DELETE.KV_payments") is not handled and nothing is
// published there; its span says why and the consumed counter counts it. Inboxes of every
// kind a requester uses are answered.
func TestReplyGuard(t *testing.T) {
	s := startServer(t)
	tel := newTelemetry(t)
	srv := tel.wrap(t, connect(t, s, "billing"), natsotel.WithReplyPrefixes("app.replies."))
	svc, err := srv.AddService(micro.Config{Name: "billing", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	var handled atomic.Int64
	if err := svc.AddEndpoint("control", func(ctx context.Context, req micro.Request) {
		handled.Add(1)
		_ = req.Respond([]byte("ok"))
	}); err != nil {
		t.Fatal(err)
	}
	flush(t, srv.Raw())

	attacker := connect(t, s, "attacker")
	victim := connect(t, s, "victim")
	// ("$JS." replies are refused by nats-server 2.15.3 itself, before any responder.)
	// No reply at all is refused too: it is what JetStream sends when a user names the
	// endpoint as the reply subject of its own API request.
	for _, reply := range []string{"$KV.stock.sku-3", "$KV.payments.ord-1", "events.order.failed", "_INBOX", "_INBOX_.x", ""} {
		sub, err := victim.SubscribeSync(cmp.Or(reply, "nothing"))
		if err != nil {
			t.Fatal(err)
		}
		flush(t, victim)
		before := len(tel.spans())
		if err := attacker.PublishMsg(&nats.Msg{Subject: "control", Reply: reply, Data: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
		flush(t, attacker)
		sp := tel.waitSpans(t, before+1)[before]
		wantAttr(t, sp, semconv.ErrorTypeKey, "reply_refused")
		if len(sp.Events()) != 1 || sp.Events()[0].Name != "reply refused" {
			t.Errorf("%s: events %v", reply, sp.Events())
		}
		flush(t, srv.Raw()) // anything the service published has reached the server
		flush(t, victim)    // and the victim
		if n, _, _ := sub.Pending(); n != 0 {
			t.Errorf("reply published to %s", reply)
		}
		_ = sub.Unsubscribe()
	}
	if n := handled.Load(); n != 0 {
		t.Errorf("%d refused requests were handled", n)
	}
	var refused int64
	if m, ok := findMetric(tel.collect(t), "messaging.client.consumed.messages"); ok {
		for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
			if v, _ := dp.Attributes.Value(semconv.ErrorTypeKey); v.AsString() == "reply_refused" {
				refused += dp.Value
			}
		}
	}
	if refused != 6 {
		t.Errorf("consumed{error.type=reply_refused} = %d, want 6", refused)
	}

	// Inboxes are answered: nats.go's, a per-user prefix, one allowed by WithReplyPrefixes.
	for _, prefix := range []string{"", "_INBOX_loadgen", "app.replies"} {
		opts := []nats.Option{}
		if prefix != "" {
			opts = append(opts, nats.CustomInboxPrefix(prefix))
		}
		nc, err := nats.Connect(s.ClientURL(), opts...)
		if err != nil {
			t.Fatal(err)
		}
		reply, err := nc.Request("control", nil, 5*time.Second)
		nc.Close()
		if err != nil || string(reply.Data) != "ok" {
			t.Errorf("inbox prefix %q: %v %v", prefix, reply, err)
		}
	}
	if n := handled.Load(); n != 3 {
		t.Errorf("%d requests handled, want 3", n)
	}
}

// goroutineID is the id runtime.Stack prints for the calling goroutine.
func goroutineID() string {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	id, _, _ := strings.Cut(strings.TrimPrefix(string(buf), "goroutine "), " ")
	return id
}

// Requests run on at most WithConcurrency worker goroutines, whose stacks have grown already
// (a goroutine per request grew a new one every time). A handler that calls runtime.Goexit
// ends its worker but frees its slot: later requests are still served.
func TestEndpointWorkersAreReused(t *testing.T) {
	_, srv, cli, svc := twoSlotService(t)
	ids := make(chan string, 16)
	if err := svc.AddEndpoint("reserve", func(_ context.Context, req micro.Request) {
		if string(req.Data()) == "exit" {
			runtime.Goexit()
		}
		ids <- goroutineID()
		_ = req.Respond(nil)
	}); err != nil {
		t.Fatal(err)
	}
	flush(t, srv.Raw())
	goroutines := map[string]bool{}
	for range 8 {
		if _, err := cli.Request(ctxTimeout(t), "reserve", nil); err != nil {
			t.Fatal(err)
		}
		goroutines[<-ids] = true
	}
	if len(goroutines) > 2 { // a second worker starts when a request comes before the first is done
		t.Fatalf("8 requests one after another ran on %d goroutines, want at most 2 workers", len(goroutines))
	}
	for range 3 { // more than the 2 slots: each exit must free its own
		if err := cli.Raw().Publish("reserve", []byte("exit")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cli.Request(ctxTimeout(t), "reserve", nil); err != nil {
		t.Fatalf("after handlers exited: %v", err)
	}
}
