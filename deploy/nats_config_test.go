package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/propagation"

	"github.com/natsotel/reference/loadgen/load"
	"github.com/natsotel/reference/loadgen/probe"
	"github.com/natsotel/reference/natsotel"
	"github.com/natsotel/reference/services/app"
	"github.com/natsotel/reference/services/billing"
	"github.com/natsotel/reference/services/contracts"
	"github.com/natsotel/reference/services/inventory"
	"github.com/natsotel/reference/services/order"
	"github.com/natsotel/reference/services/provision"
)

// TestNATSConfigRunsTheShop is nats.conf's positive proof: the real server runs it, every
// service runs through its real main wiring (app.Run: telemetry, app.Connect, natsotel,
// Start, graceful stop) with the environment compose.yaml gives it, so under its own NATS
// user, and the real load generator and probe drive and watch them. Any subject a user
// lacks shows up as a "Permissions Violation" (or a failed start, or a timeout).
func TestNATSConfigRunsTheShop(t *testing.T) {
	runShop(t, []*server.Server{startNATS(t)}, loadCompose(t), 2*time.Second, 0)
}

// runShop runs the services, the load generator and the probe with the environment
// project gives them, against servers (one, or a cluster's nodes), and checks that nothing
// was refused. timeout bounds each load generator request, orderTimeout each of order's
// downstream requests (0: order's default).
func runShop(t *testing.T, servers []*server.Server, project *types.Project, timeout, orderTimeout time.Duration) {
	natsURL := clientURLs(servers)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	// getenv is the service's compose.yaml environment, pointed at the test server and
	// without an OTLP endpoint (no backend here; telemetry stays in process).
	getenv := func(name string) func(string) string {
		svc, ok := project.Services[name]
		if !ok {
			t.Fatalf("no compose service %s", name)
		}
		return func(key string) string {
			switch key {
			case "NATS_URL":
				return natsURL
			case "OTEL_EXPORTER_OTLP_ENDPOINT":
				return ""
			}
			return env(svc, key)
		}
	}

	var watched []*watchedConn
	var watchedMu sync.Mutex
	watch := func(name string, nc *nats.Conn) {
		w := newWatchedConn(name, nc)
		watchedMu.Lock()
		watched = append(watched, w)
		watchedMu.Unlock()
	}

	// The provisioning step, as compose runs it before the services: its own user creates
	// the stream, the buckets and the consumer, which the services' users may not.
	provisionAs(t, ctx, getenv("provision"))

	// The three services, started together as compose does.
	type result struct {
		name string
		err  error
	}
	starts := map[string]app.StartFunc{
		contracts.OrderService: func(ctx context.Context, c app.Conns, log *slog.Logger) (app.Stopper, error) {
			// Reconciliation every 200 ms instead of 30 s, so its KeyValue watch runs under
			// the order user's permissions during the test.
			return order.Start(ctx, c.Conn, log, order.Config{Responder: c.Responder, ReconcileInterval: 200 * time.Millisecond, RequestTimeout: orderTimeout})
		},
		contracts.InventoryService: func(ctx context.Context, c app.Conns, log *slog.Logger) (app.Stopper, error) {
			return inventory.Start(ctx, c.Conn, log, inventory.Config{Responder: c.Responder})
		},
		contracts.BillingService: func(ctx context.Context, c app.Conns, log *slog.Logger) (app.Stopper, error) {
			return billing.Start(ctx, c.Conn, log, billing.Config{Responder: c.Responder})
		},
	}
	ready := make(chan string, len(starts))
	done := make(chan result, len(starts))
	logs := map[string]*syncBuffer{}
	for name, start := range starts {
		buf := &syncBuffer{}
		logs[name] = buf
		go func() {
			err := app.Run(ctx, app.Options{
				Name:        name,
				Version:     "0.0.0-test",
				Getenv:      getenv(name),
				Stderr:      buf,
				StopTimeout: 10 * time.Second,
				Ready: func(c app.Conns, _ app.Stopper) {
					watch(name, c.Conn.Raw())
					if c.Responder == c.Conn {
						t.Errorf("%s serves on its own connection: compose.yaml gives it no responder user", name)
					} else {
						watch(name+"-responder", c.Responder.Raw())
					}
					ready <- name
				},
			}, start)
			done <- result{name, err}
		}()
	}
	for range starts {
		select {
		case name := <-ready:
			t.Logf("%s started", name)
		case r := <-done:
			t.Fatalf("%s stopped during start: %v\n%s", r.name, r.err, logs[r.name])
		case <-time.After(30 * time.Second):
			t.Fatalf("services not started in 30s\n%s", allLogs(logs))
		}
	}
	waitForEndpoints(t, servers)

	// The load generator, wired as loadgen/cmd/loadgen does, with its control endpoint.
	lgLogs := &syncBuffer{}
	logs["loadgen"] = lgLogs
	lgLog := slog.New(slog.NewTextHandler(lgLogs, nil))
	lnc, err := app.Connect(ctx, "loadgen", getenv("loadgen"), lgLog)
	if err != nil {
		t.Fatal(err)
	}
	defer lnc.Close()
	watch("loadgen", lnc)
	// The NATS server hops bridge under its own user, started before the load. The load
	// generator samples its traces as cmd/loadgen does: a traced message from a user that
	// may not publish to the msg_trace destination would be dropped by the server.
	hops := startHopsBridge(t, ctx, getenv("nats-hops"), watch)
	lconn, err := natsotel.Wrap(lnc, natsotel.WithTracerProvider(sampledProvider(t)), natsotel.WithPropagators(propagation.TraceContext{}))
	if err != nil {
		t.Fatal(err)
	}
	runner, err := load.New(lconn, lgLog, load.Config{Mode: load.ModeClosed, Workers: 8, Count: 120, Seed: 7, Timeout: timeout, Progress: -1})
	if err != nil {
		t.Fatal(err)
	}
	lrc, err := app.ConnectResponder(ctx, "loadgen", getenv("loadgen"), lgLog, lnc)
	if err != nil || lrc == lnc {
		t.Fatalf("loadgen responder: %v (compose.yaml must give loadgen a responder user)", err)
	}
	defer lrc.Close()
	watch("loadgen-responder", lrc)
	ctl, err := runner.AddControlService(lrc)
	if err != nil {
		t.Fatalf("loadgen control service: %v", err)
	}
	defer func() { _ = ctl.Stop() }()
	sum, err := runner.Run(ctx)
	if err != nil {
		t.Fatalf("loadgen run: %v", err)
	}
	t.Logf("loadgen: %d completed, outcomes %v, %d confirmed, %d failed", sum.Completed, sum.Outcomes, len(sum.Confirmed), len(sum.Failed))
	if sum.Completed != 120 || sum.Unexpected != 0 {
		t.Fatalf("loadgen: completed %d of 120, %d unexpected outcomes %v\n%s", sum.Completed, sum.Unexpected, sum.UnexpectedSamples, allLogs(logs))
	}
	for _, want := range []string{"ok", contracts.CodeBadRequest, contracts.CodePaymentDeclined, contracts.CodeConflict} {
		if sum.Outcomes[want] == 0 {
			t.Errorf("loadgen: no %q outcome in %v; the mix should exercise every path", want, sum.Outcomes)
		}
	}
	if len(sum.Confirmed) == 0 || len(sum.Failed) == 0 {
		t.Fatalf("loadgen: %d confirmed, %d failed orders; want both", len(sum.Confirmed), len(sum.Failed))
	}

	// The control endpoints the loadgen user may call (fault scenarios), with a body that
	// only reads the current configuration.
	for _, svc := range []string{contracts.OrderService, contracts.InventoryService, contracts.BillingService} {
		rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
		msg, err := lconn.Request(rctx, contracts.ControlSubject(svc), nil)
		rcancel()
		if err != nil {
			t.Errorf("loadgen -> %s: %v", contracts.ControlSubject(svc), err)
			continue
		}
		var fc contracts.FaultConfig
		if err := json.Unmarshal(msg.Data, &fc); err != nil {
			t.Errorf("%s reply %q: %v", contracts.ControlSubject(svc), msg.Data, err)
		}
	}

	// The probe, as the probe user: discovery and stats of every micro service.
	pnc, err := app.Connect(ctx, "probe", getenv("probe"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pnc.Close()
	watch("probe", pnc)
	pr, err := probe.New(pnc, probe.Config{Interval: 2 * time.Second, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	round, err := pr.Once(ctx)
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	if round.Discovered != 4 || round.Up != 4 {
		t.Errorf("probe: discovered %d, up %d; want order, inventory, billing and loadgen", round.Discovered, round.Up)
	}
	requests := map[string]int64{}
	for _, in := range pr.Instances() {
		for _, ep := range in.Endpoints {
			requests[ep.Subject] += ep.Requests
		}
	}
	for _, subj := range []string{contracts.SubjectOrderCreate, contracts.SubjectInventoryReserve, contracts.SubjectBillingCharge} {
		if requests[subj] == 0 {
			t.Errorf("probe: $SRV.STATS shows no requests on %s (%v)", subj, requests)
		}
	}

	// A human with the nats CLI (admin): the loadgen's control endpoint answers, and the
	// asynchronous consumer (inventory, its own user) commits every confirmed order's
	// reservation and releases every failed one's.
	anc, err := nats.Connect(natsURL, nats.UserInfo("admin", natsUser(natsConfig(t), "admin").Password))
	if err != nil {
		t.Fatal(err)
	}
	defer anc.Close()
	if _, err := anc.Request(load.ControlSubject, nil, 5*time.Second); err != nil {
		t.Errorf("admin -> %s: %v", load.ControlSubject, err)
	}
	if err := waitForReservations(ctx, anc, sum.Confirmed, contracts.ReservationCommitted); err != nil {
		t.Fatalf("%v\n%s", err, allLogs(logs))
	}
	if err := waitForReservations(ctx, anc, sum.Failed, contracts.ReservationReleased, ""); err != nil {
		t.Fatalf("%v\n%s", err, allLogs(logs))
	}

	checkHops(t, hops)

	// Nothing was refused along the way.
	for _, w := range watched {
		if v := w.violations(t); len(v) > 0 {
			t.Errorf("%s: permission violations: %v", w.name, v)
		}
	}
	for name, b := range logs {
		for _, line := range strings.Split(b.String(), "\n") {
			if strings.Contains(strings.ToLower(line), "permissions violation") && !strings.Contains(line, "_CANARY.") {
				t.Errorf("%s logged a permissions violation: %s", name, line)
			}
		}
	}

	// Graceful shutdown works under the same permissions (drain, unsubscribe).
	cancel()
	for range starts {
		r := <-done
		if r.err != nil {
			t.Errorf("%s: shutdown: %v\n%s", r.name, r.err, logs[r.name])
		}
	}
}

// clientURLs is the NATS_URL of servers: every node's client URL.
func clientURLs(servers []*server.Server) string {
	urls := make([]string, len(servers))
	for i, s := range servers {
		urls[i] = s.ClientURL()
	}
	return strings.Join(urls, ",")
}

// waitForEndpoints waits until every node knows a responder of every service endpoint.
// A subscription reaches a cluster's other nodes asynchronously; a request arriving before
// it is answered "no responders" (order then fails the order with 503, as it would in a
// cluster whose services have just started). The server offers no signal: this polls.
func waitForEndpoints(t *testing.T, servers []*server.Server) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, s := range servers {
		shop, err := s.LookupAccount("SHOP")
		if err != nil {
			t.Fatal(err)
		}
		for _, subj := range endpointSubjects {
			if subj == load.ControlSubject {
				continue // served by the load generator, which starts later
			}
			for !shop.SubscriptionInterest(subj) {
				if time.Now().After(deadline) {
					t.Fatalf("%s: no responder of %s after 10s", s.Name(), subj)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
}

// provisionAs runs the provisioning step (services/cmd/provision's wiring) with getenv.
func provisionAs(t *testing.T, ctx context.Context, getenv func(string) string) {
	t.Helper()
	nc, err := app.Connect(ctx, "provision", getenv, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	w := newWatchedConn("provision", nc)
	js, err := provision.PerService(nc, getenv("NATS_JS_API_PREFIX"))
	if err != nil {
		t.Fatal(err)
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	replicas, err := app.JetStreamReplicas(getenv)
	if err != nil {
		t.Fatal(err)
	}
	if err := provision.Run(pctx, js, nil, replicas); err != nil {
		t.Fatalf("provision: %v", err)
	}
	if v := w.violations(t); len(v) > 0 {
		t.Errorf("provision: permission violations: %v", v)
	}
}

// waitForReservations waits until every order's reservation is in one of the states
// (the empty state meaning "no reservation", e.g. an order refused before reserving).
// The consumer is asynchronous: this polls the bucket with a deadline.
// nc is a connection of admin, which reaches inventory's JetStream as js.inventory.
func waitForReservations(ctx context.Context, nc *nats.Conn, orders []string, states ...contracts.ReservationState) error {
	js, err := provision.PerService(nc, jsAPIPrefix)
	if err != nil {
		return err
	}
	kv, err := js(contracts.InventoryService).KeyValue(ctx, contracts.BucketReservations)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, id := range orders {
		for {
			var state contracts.ReservationState
			e, err := kv.Get(ctx, id)
			switch {
			case errors.Is(err, jetstream.ErrKeyNotFound):
			case err != nil:
				return fmt.Errorf("reservation %s: %w", id, err)
			default:
				var r contracts.Reservation
				if err := json.Unmarshal(e.Value(), &r); err != nil {
					return fmt.Errorf("reservation %s: %w", id, err)
				}
				state = r.State
			}
			if containsState(states, state) {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("reservation of order %s is %q, want one of %q; %s", id, state, states, consumerState(ctx, js(contracts.InventoryService)))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

// consumerState describes inventory's commit consumer, for a failure message.
func consumerState(ctx context.Context, js jetstream.JetStream) string {
	c, err := js.Consumer(ctx, contracts.OrderEventsStream, contracts.InventoryCommitConsumer)
	if err != nil {
		return fmt.Sprintf("commit consumer: %v", err)
	}
	ci := c.CachedInfo()
	return fmt.Sprintf("commit consumer: delivered %d, ack floor %d, pending %d, ack pending %d, redelivered %d",
		ci.Delivered.Stream, ci.AckFloor.Stream, ci.NumPending, ci.NumAckPending, ci.NumRedelivered)
}

func containsState(states []contracts.ReservationState, s contracts.ReservationState) bool {
	for _, st := range states {
		if st == s {
			return true
		}
	}
	return false
}

// watchedConn records the permission violations the server reports to a connection,
// keeping the connection's own error handler (app.Connect's logger) in the chain.
type watchedConn struct {
	name string
	nc   *nats.Conn
	errs chan error
}

func newWatchedConn(name string, nc *nats.Conn) *watchedConn {
	w := &watchedConn{name: name, nc: nc, errs: make(chan error, 1024)}
	next := nc.Opts.AsyncErrorCB
	nc.SetErrorHandler(func(c *nats.Conn, sub *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrPermissionViolation) {
			w.errs <- err
		}
		if next != nil {
			next(c, sub, err)
		}
	})
	return w
}

// violations returns the violations reported so far, deterministically: it publishes to
// a canary subject no user may use and reads the (ordered) errors until the canary's.
func (w *watchedConn) violations(t *testing.T) []error {
	t.Helper()
	canary := "_CANARY.final." + w.name
	if err := w.nc.Publish(canary, nil); err != nil {
		t.Fatalf("%s: %v", w.name, err)
	}
	if err := w.nc.Flush(); err != nil {
		t.Fatalf("%s: %v", w.name, err)
	}
	var out []error
	timeout := time.After(10 * time.Second)
	for {
		select {
		case err := <-w.errs:
			if strings.Contains(err.Error(), fmt.Sprintf("%q", canary)) {
				return out
			}
			out = append(out, err)
		case <-timeout:
			t.Fatalf("%s: the canary publish to %s was not refused", w.name, canary)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the concurrent writers of a service's logs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	if s == nil {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func allLogs(logs map[string]*syncBuffer) string {
	var b strings.Builder
	for name, l := range logs {
		fmt.Fprintf(&b, "--- %s\n%s", name, l)
	}
	return b.String()
}
