package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natsotel/reference/e2e/faultkit"
	"github.com/natsotel/reference/e2e/harness"
	"github.com/natsotel/reference/loadgen/load"
	"github.com/natsotel/reference/services/contracts"
	"github.com/natsotel/reference/services/provision"
)

// clusterStreams are the streams the shop creates: the order events and the stream
// behind each KeyValue bucket.
var clusterStreams = []string{
	contracts.OrderEventsStream,
	"KV_" + contracts.BucketOrders, "KV_" + contracts.BucketStock,
	"KV_" + contracts.BucketReservations, "KV_" + contracts.BucketPayments,
}

// requestTimeout bounds each request of a polling check: a request sent just before its
// server died gets no answer, and must not use up the whole poll.
const requestTimeout = 2 * time.Second

// recoverySlack is how long after a fault requests may still fail because of it: the
// load generator's request timeout.
const recoverySlack = 5 * time.Second

// clusterDownTime is how long the killed leader stays away: long enough for the other two
// nodes to elect new leaders and serve without it.
const clusterDownTime = 5 * time.Second

// TestFaultNATSCluster runs the shop on a three-node nats-server cluster with every
// stream and bucket at R3 (provisioned as services/cmd/provision does with
// NATS_JS_REPLICAS=3), and under a steady load (1) kills with
// SIGKILL the node that leads both the JetStream meta group and ORDER_EVENTS, brings it
// back after clusterDownTime, then (2) restarts all three nodes one after the other
// (SIGTERM, start, wait until every stream has all its replicas current again). Figures:
// the longest gap between successful orders, errors by type, leader failover times, and
// the invariant check (every order confirmed or fully compensated, nothing oversold, one
// charge per confirmed order) with nothing lost.
func TestFaultNATSCluster(t *testing.T) {
	tools := harness.RequireTools(t)
	st := harness.StartStack(t, tools, harness.StackConfig{NATSClusterSize: 3})
	cl := st.NATSCluster
	provisionReplicated(t, cl.URL)
	shop := harness.StartShop(t, st, builder, harness.ShopConfig{})
	services := []*harness.Process{shop.Order, shop.Inventory[0], shop.Billing}
	before := pids(services...)
	ctx := context.Background()

	nc, err := nats.Connect(cl.URL, nats.Name("fault-test-admin"), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// Every stream the services created has three replicas, all current.
	if err := waitStreamsCurrent(ctx, js, 3, 30*time.Second); err != nil {
		t.Fatal(err)
	}

	l := faultkit.StartLoad(t, cl.URL, fileLogger(t, st.Dir, "loadgen-inprocess"), load.Config{
		Rate: 30, Duration: 10 * time.Minute, Mix: faultMix, Timeout: 5 * time.Second, Seed: 21,
	})
	origin := time.Now()
	if err := l.WaitCompleted(ctx, 90, 30*time.Second); err != nil {
		t.Fatal(err)
	}

	// (1) Kill the leader of the meta group and of ORDER_EVENTS.
	victim, err := colocateLeaders(ctx, cl, nc, js)
	if err != nil {
		t.Fatal(err)
	}
	// Buckets led by the victim too (their leaders are placed by the cluster).
	led := leadersOn(ctx, js, victim.Name())
	killed := time.Now()
	if err := victim.Proc.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := victim.Proc.Wait(10 * time.Second); err != nil {
		t.Logf("%s after SIGKILL: %v", victim.Name(), err)
	}
	metaAfter, streamAfter, err := waitNewLeaders(ctx, cl, js, victim.Name(), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("killed %s (meta and ORDER_EVENTS leader; also leading %v) at +%v; new meta leader after %v, ORDER_EVENTS leader after %v",
		victim.Name(), led, killed.Sub(origin).Round(time.Millisecond), metaAfter.Round(time.Millisecond), streamAfter.Round(time.Millisecond))
	<-time.After(clusterDownTime) // the fault itself: the node is away this long
	victim.Start(t)
	if err := waitStreamsCurrent(ctx, js, 3, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	t.Logf("%s back and every replica current at +%v", victim.Name(), back.Sub(origin).Round(time.Millisecond))
	// A fault's window lasts until recoverySlack after the cluster is whole again: leaders
	// may still move while the returned node catches up, and requests sent meanwhile get
	// their answer up to the load generator's timeout later.
	windows := []faultkit.Window{{Name: "leader killed", From: killed, To: back.Add(recoverySlack)}}

	// (2) Rolling restart: each node in turn, the next only once every replica is current.
	<-time.After(recoverySlack) // a stretch of (recovering) service between the faults
	rollFrom := time.Now()
	for _, n := range cl.Nodes {
		if err := n.Proc.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := n.Proc.Wait(30 * time.Second); err != nil {
			t.Logf("%s after SIGTERM: %v", n.Name(), err)
		}
		n.Start(t)
		if err := waitStreamsCurrent(ctx, js, 3, 60*time.Second); err != nil {
			t.Fatalf("after restarting %s: %v", n.Name(), err)
		}
		t.Logf("restarted %s, every replica current at +%v", n.Name(), time.Since(origin).Round(time.Millisecond))
	}
	rollTo := time.Now()
	windows = append(windows, faultkit.Window{Name: "rolling restart", From: rollFrom, To: rollTo.Add(recoverySlack)})
	<-time.After(recoverySlack + 5*time.Second) // normal service again before the load stops

	sum, err := l.Stop(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	calls := l.Recorder.Calls()
	t.Logf("load:\n%s", sum)
	gap, gapAt := longestGap(calls, origin)
	inside, outside := outcomesByWindow(calls, windows)
	t.Logf("errors during the faults: %s; outside them: %s",
		faultkit.FormatCounts(nonBusinessCounts(inside)), faultkit.FormatCounts(nonBusinessCounts(outside)))
	t.Logf("longest gap between successful orders: %v (ending at +%v; leader killed +%v..+%v, rolling restart +%v..+%v)",
		gap.Round(time.Millisecond), gapAt.Round(time.Millisecond),
		killed.Sub(origin).Round(time.Millisecond), back.Sub(origin).Round(time.Millisecond),
		rollFrom.Sub(origin).Round(time.Millisecond), rollTo.Sub(origin).Round(time.Millisecond))
	if out := nonBusinessCounts(outside); len(out) > 0 {
		t.Errorf("requests outside the fault windows failed: %s", faultkit.FormatCounts(out))
	}
	// A bound the test can fail on: failover takes seconds (Raft election timeouts of
	// 4-9 s, reconnects; 7-12 s measured here on a loaded 2-core machine), not minutes.
	if gap > 20*time.Second {
		t.Errorf("no order succeeded for %v", gap)
	}

	// New orders succeed, on the same service processes.
	l2 := faultkit.StartLoad(t, cl.URL, fileLogger(t, st.Dir, "loadgen-inprocess"), load.Config{
		Rate: 20, Count: 40, Mix: load.Mix{load.ScenarioValidOrder: 1}, Timeout: 5 * time.Second, Seed: 22,
	})
	sum2, err := l2.Wait(60 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if sum2.Outcomes[load.OutcomeOK] != 40 {
		t.Errorf("after the faults: %s", sum2)
	}
	checkAlive(t, before, services...)

	rep, lrep := verifyShop(t, st, mergeSummaries(sum, sum2), append(calls, l2.Recorder.Calls()...))
	t.Logf("FIGURES nats-cluster: leader %s killed (meta leader again after %v, ORDER_EVENTS after %v, down %v); rolling restart %v; longest gap in successful orders %v; sent %d, confirmed %d, failed %d, lost %d; errors during faults %s; orders in KV %d (pending %d); after the faults %d/40 new orders ok",
		victim.Name(), metaAfter.Round(time.Millisecond), streamAfter.Round(time.Millisecond), back.Sub(killed).Round(time.Millisecond),
		rollTo.Sub(rollFrom).Round(time.Millisecond), gap.Round(time.Millisecond),
		sum.Sent, len(sum.Confirmed), len(sum.Failed), len(lrep.Lost), faultkit.FormatCounts(nonBusinessCounts(inside)),
		rep.Orders, rep.Pending, sum2.Outcomes[load.OutcomeOK])
}

// waitStreamsCurrent waits until every stream of clusterStreams has the given replicas, a
// leader, and every follower current.
func waitStreamsCurrent(ctx context.Context, js jetstream.JetStream, replicas int, timeout time.Duration) error {
	return faultkit.Poll(ctx, timeout, 100*time.Millisecond, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, requestTimeout)
		defer cancel()
		for _, name := range clusterStreams {
			s, err := js.Stream(ctx, name)
			if err != nil {
				return fmt.Errorf("stream %s: %w", name, err)
			}
			info := s.CachedInfo()
			if info.Config.Replicas != replicas {
				return fmt.Errorf("stream %s has %d replicas, want %d", name, info.Config.Replicas, replicas)
			}
			c := info.Cluster
			if c == nil || c.Leader == "" {
				return fmt.Errorf("stream %s has no leader", name)
			}
			if len(c.Replicas) != replicas-1 {
				return fmt.Errorf("stream %s: leader %s and %d followers, want %d", name, c.Leader, len(c.Replicas), replicas-1)
			}
			for _, r := range c.Replicas {
				if !r.Current || r.Offline {
					return fmt.Errorf("stream %s: replica %s not current", name, r.Name)
				}
			}
		}
		return nil
	})
}

// colocateLeaders moves the ORDER_EVENTS leader onto the meta leader (a stream leader
// step-down with a preferred placement) and returns that node.
func colocateLeaders(ctx context.Context, cl *harness.NATSCluster, nc *nats.Conn, js jetstream.JetStream) (*harness.NATSServer, error) {
	z, err := cl.Nodes[0].JSZ(ctx)
	if err != nil {
		return nil, err
	}
	meta := cl.Node(z.Meta.Leader)
	if meta == nil {
		return nil, fmt.Errorf("meta leader %q is not a node of the cluster", z.Meta.Leader)
	}
	req, _ := json.Marshal(map[string]any{"placement": map[string]any{"preferred": meta.Name()}})
	err = faultkit.Poll(ctx, 30*time.Second, 200*time.Millisecond, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, requestTimeout)
		defer cancel()
		s, err := js.Stream(ctx, contracts.OrderEventsStream)
		if err != nil {
			return err
		}
		if l := s.CachedInfo().Cluster.Leader; l == meta.Name() {
			return nil
		}
		msg, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.LEADER.STEPDOWN."+contracts.OrderEventsStream, req)
		if err != nil {
			return err
		}
		var resp struct {
			Success bool `json:"success"`
			Error   *struct {
				Description string `json:"description"`
			} `json:"error"`
		}
		if err := json.Unmarshal(msg.Data, &resp); err != nil {
			return err
		}
		if resp.Error != nil {
			return errors.New(resp.Error.Description)
		}
		return errors.New("stepped down; waiting for the new leader")
	})
	if err != nil {
		return nil, fmt.Errorf("moving the ORDER_EVENTS leader to %s: %w", meta.Name(), err)
	}
	return meta, nil
}

// leadersOn lists the streams of clusterStreams led by the node name.
func leadersOn(ctx context.Context, js jetstream.JetStream, name string) []string {
	var out []string
	for _, s := range clusterStreams {
		if st, err := js.Stream(ctx, s); err == nil && st.CachedInfo().Cluster.Leader == name {
			out = append(out, s)
		}
	}
	return out
}

// waitNewLeaders waits until the surviving nodes have elected a meta leader and an
// ORDER_EVENTS leader other than gone, and returns how long each took.
func waitNewLeaders(ctx context.Context, cl *harness.NATSCluster, js jetstream.JetStream, gone string, timeout time.Duration) (meta, stream time.Duration, err error) {
	start := time.Now()
	var other *harness.NATSServer
	for _, n := range cl.Nodes {
		if n.Name() != gone {
			other = n
			break
		}
	}
	err = faultkit.Poll(ctx, timeout, 50*time.Millisecond, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, requestTimeout)
		defer cancel()
		if meta == 0 {
			z, err := other.JSZ(ctx)
			if err != nil {
				return err
			}
			if z.Meta.Leader == "" || z.Meta.Leader == gone {
				return fmt.Errorf("meta leader %q", z.Meta.Leader)
			}
			meta = time.Since(start)
		}
		if stream == 0 {
			s, err := js.Stream(ctx, contracts.OrderEventsStream)
			if err != nil {
				return err
			}
			if l := s.CachedInfo().Cluster.Leader; l == "" || l == gone {
				return fmt.Errorf("ORDER_EVENTS leader %q", l)
			}
			stream = time.Since(start)
		}
		return nil
	})
	return meta, stream, err
}

// longestGap is the longest time between two successive successful order.create replies
// (and from the first request to the first success), with when it ended, from origin.
func longestGap(calls []faultkit.Call, origin time.Time) (time.Duration, time.Duration) {
	var ends []time.Time
	first := time.Time{}
	for _, c := range calls {
		if c.Subject != contracts.SubjectOrderCreate {
			continue
		}
		if first.IsZero() || c.Start.Before(first) {
			first = c.Start
		}
		if c.Outcome == load.OutcomeOK {
			ends = append(ends, c.End)
		}
	}
	sort.Slice(ends, func(i, j int) bool { return ends[i].Before(ends[j]) })
	var gap time.Duration
	var at time.Time
	prev := first
	for _, e := range ends {
		if d := e.Sub(prev); d > gap {
			gap, at = d, e
		}
		prev = e
	}
	return gap, at.Sub(origin)
}

// provisionReplicated runs the provisioning step (services/provision) against the cluster
// with three replicas, before the services start and bind.
func provisionReplicated(t testing.TB, url string) {
	t.Helper()
	nc, err := nats.Connect(url, nats.Name("provision"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// provision.Run tries again while the new cluster's meta leader is not ready.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := provision.Run(ctx, provision.Single(js), nil, 3); err != nil {
		t.Fatal(err)
	}
}
