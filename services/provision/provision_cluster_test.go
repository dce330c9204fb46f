package provision_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natsotel/reference/natsotel"
	"github.com/natsotel/reference/services/contracts"
	"github.com/natsotel/reference/services/internal/testenv"
	"github.com/natsotel/reference/services/provision"
)

// cluster starts a three-node JetStream cluster in process and returns a client URL list.
func cluster(t *testing.T) string {
	t.Helper()
	url, _ := partialCluster(t, 3)
	return url
}

// partialCluster starts up of the three nodes of a JetStream cluster in process, waits
// (when all are up) for them to agree on a meta leader, and returns their client URLs and a function that
// starts the other nodes.
func partialCluster(t *testing.T, up int) (url string, startRest func()) {
	t.Helper()
	var ports []int
	for range 3 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
		l.Close()
	}
	var nodes []*server.Server
	for i, p := range ports {
		opts := &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1), Host: "127.0.0.1", Port: server.RANDOM_PORT,
			JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
			Cluster: server.ClusterOpts{Name: "provision", Host: "127.0.0.1", Port: p},
		}
		for _, r := range ports {
			opts.Routes = append(opts.Routes, server.RoutesFromStr(fmt.Sprintf("nats-route://127.0.0.1:%d", r))...)
		}
		s, err := server.NewServer(opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
		nodes = append(nodes, s)
	}
	start := func(nodes []*server.Server) {
		for _, s := range nodes {
			go s.Start()
		}
		for _, s := range nodes {
			if !s.ReadyForConnections(10 * time.Second) {
				t.Fatal("node not ready")
			}
		}
	}
	start(nodes[:up])
	for i, s := range nodes[:up] {
		if i > 0 {
			url += ","
		}
		url += s.ClientURL()
	}
	if up < len(nodes) {
		return url, func() { start(nodes[up:]) } // a meta leader may wait for the others
	}
	testenv.Eventually(t, 30*time.Second, "a JetStream meta leader", func() bool {
		for _, s := range nodes[:up] {
			if !s.JetStreamIsCurrent() {
				return false
			}
		}
		return true
	})
	return url, func() { start(nodes[up:]) }
}

// connectJS connects to url; the connection closes when the test ends.
func connectJS(t *testing.T, url string) (jetstream.JetStream, *nats.Conn) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js, nc
}

// TestRunWaitsForTheCluster: provisioning three replicas while one of the three nodes is
// still down fails ("no suitable peers for placement"); Run tries again, and succeeds once
// the node is up, as in a compose or Kubernetes start where provisioning may run first.
func TestRunWaitsForTheCluster(t *testing.T) {
	url, startRest := partialCluster(t, 2)
	js, _ := connectJS(t, url)
	logs := &testenv.Buffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- provision.Run(ctx, provision.Single(js), slog.New(slog.NewTextHandler(logs, nil)), 3) }()
	testenv.Eventually(t, 30*time.Second, "a failed attempt", func() bool {
		return strings.Contains(logs.String(), "provisioning failed, trying again")
	})
	startRest()
	if err := <-done; err != nil {
		t.Fatalf("provision: %v\n%s", err, logs)
	}
}

// TestRunReplicated provisions a three-node cluster with three replicas: the stream and
// every bucket have three, stock, reservations and payments read from their leader
// (direct get off, so a service reads its own writes), orders keeps direct gets (its
// reconciliation reads in batches); provisioning again changes nothing and fails nothing.
func TestRunReplicated(t *testing.T) {
	js, nc := connectJS(t, cluster(t))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for range 2 { // idempotent: the second run updates AllowDirect back to true, then off again
		if err := provision.Run(ctx, provision.Single(js), nil, 3); err != nil {
			t.Fatal(err)
		}
	}
	check := func(stream string, direct bool) {
		s, err := js.Stream(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		c := s.CachedInfo().Config
		if c.Replicas != 3 || c.AllowDirect != direct {
			t.Errorf("%s: replicas %d, allow_direct %v; want 3, %v", stream, c.Replicas, c.AllowDirect, direct)
		}
	}
	check(contracts.OrderEventsStream, false)
	check("KV_"+contracts.BucketOrders, true)
	for _, b := range []string{contracts.BucketStock, contracts.BucketReservations, contracts.BucketPayments} {
		check("KV_"+b, false)
	}
	// Every write is read back at once, through the leader.
	wrapped, err := natsotel.Wrap(nc)
	if err != nil {
		t.Fatal(err)
	}
	wjs, err := wrapped.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	kv, err := wjs.KeyValue(ctx, contracts.BucketReservations)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		key := fmt.Sprintf("ord-%d", i)
		if _, err := kv.Create(ctx, key, []byte("{}")); err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Get(ctx, key); err != nil {
			t.Fatalf("read own write %s: %v", key, err)
		}
	}
}
