package jsutil_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natsotel/reference/natsotel"
	"github.com/natsotel/reference/services/internal/jsutil"
	"github.com/natsotel/reference/services/internal/testenv"
)

// cluster starts a three-node JetStream cluster in process and returns a client URL list.
func cluster(t *testing.T) string {
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
	url := ""
	for i, p := range ports {
		opts := &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1), Host: "127.0.0.1", Port: server.RANDOM_PORT,
			JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
			Cluster: server.ClusterOpts{Name: "jsutil", Host: "127.0.0.1", Port: p},
		}
		for _, r := range ports {
			opts.Routes = append(opts.Routes, server.RoutesFromStr(fmt.Sprintf("nats-route://127.0.0.1:%d", r))...)
		}
		s, err := server.NewServer(opts)
		if err != nil {
			t.Fatal(err)
		}
		go s.Start()
		t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
		nodes = append(nodes, s)
	}
	for i, s := range nodes {
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatal("node not ready")
		}
		if i > 0 {
			url += ","
		}
		url += s.ClientURL()
	}
	testenv.Eventually(t, 30*time.Second, "a JetStream meta leader", func() bool {
		for _, s := range nodes {
			if !s.JetStreamIsCurrent() {
				return false
			}
		}
		return true
	})
	return url
}

// TestBucketReplicatedReadsFromLeader: a bucket created with three replicas has direct
// gets off (Get is answered by the stream leader, so a service reads its own writes), and
// a bucket a peer created with direct gets on is changed when bound; reads of fresh
// writes through the bound handle see them.
func TestBucketReplicatedReadsFromLeader(t *testing.T) {
	url := cluster(t)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	conn, err := natsotel.Wrap(nc)
	if err != nil {
		t.Fatal(err)
	}
	js, err := conn.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	allowDirect := func(bucket string) (bool, int) {
		s, err := js.Raw().Stream(ctx, "KV_"+bucket)
		if err != nil {
			t.Fatal(err)
		}
		return s.CachedInfo().Config.AllowDirect, s.CachedInfo().Config.Replicas
	}

	kv, err := jsutil.Bucket(ctx, js, "r3", "test", 1, 3)
	if err != nil {
		t.Fatal(err)
	}
	if direct, r := allowDirect("r3"); direct || r != 3 {
		t.Errorf("r3: allow_direct %v, replicas %d; want false, 3", direct, r)
	}
	// Every write is read back at once, through the leader.
	for i := range 200 {
		key := fmt.Sprintf("k%d", i)
		if _, err := kv.Create(ctx, key, []byte("v")); err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Get(ctx, key); err != nil {
			t.Fatalf("read own write %s: %v", key, err)
		}
	}

	// A single-replica bucket keeps direct gets.
	if _, err := jsutil.Bucket(ctx, js, "r1", "test", 1, 1); err != nil {
		t.Fatal(err)
	}
	if direct, r := allowDirect("r1"); !direct || r != 1 {
		t.Errorf("r1: allow_direct %v, replicas %d; want true, 1", direct, r)
	}

	// Created by someone else with direct gets (nats.go's default): turned off on bind.
	if _, err := js.CreateOrUpdateKeyValue(ctx, jetstreamKV("peer", 3)); err != nil {
		t.Fatal(err)
	}
	if direct, _ := allowDirect("peer"); !direct {
		t.Fatal("nats.go no longer creates buckets with direct get; revisit leaderReads")
	}
	if _, err := jsutil.Bucket(ctx, js, "peer", "test", 1, 3); err != nil {
		t.Fatal(err)
	}
	if direct, _ := allowDirect("peer"); direct {
		t.Error("peer: direct gets still on after Bucket bound it")
	}
}

func jetstreamKV(name string, replicas int) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{Bucket: name, Replicas: replicas, Storage: jetstream.FileStorage}
}
