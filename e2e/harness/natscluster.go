package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// NATSCluster is a cluster of nats-server processes on loopback with clustered
// JetStream, as deploy/nats/cluster.conf runs one in compose.
type NATSCluster struct {
	// Nodes are the servers, named n1, n2, ... (their server_name and log name).
	Nodes []*NATSServer
	// URL lists every node's client URL, comma-separated (what NATS_URL gets).
	URL string
}

// StartNATSCluster starts size nats-server nodes routed to each other, each with its own
// JetStream store under dir/<name>, and waits until each is ready (/healthz, which in a
// cluster also waits for the JetStream meta group to have a leader). The nodes start
// together: none is healthy alone. Each node's cleanup stops whichever process is
// current then (see StartNATSServer; NATSServer.Start restarts a node on its ports).
func StartNATSCluster(t testing.TB, tools Tools, dir string, size int) *NATSCluster {
	t.Helper()
	ports := FreePorts(t, 3*size)
	var routes []int
	for i := range size {
		routes = append(routes, ports[3*i+2])
	}
	c := &NATSCluster{}
	var urls []string
	for i := range size {
		name := fmt.Sprintf("n%d", i+1)
		ndir := filepath.Join(dir, name)
		store := filepath.Join(ndir, "jetstream")
		if err := os.MkdirAll(store, 0o755); err != nil {
			t.Fatal(err)
		}
		n := &NATSServer{tools: tools, name: "nats-" + name, dir: ndir, conf: filepath.Join(ndir, "nats-server.conf"),
			URL:        fmt.Sprintf("nats://127.0.0.1:%d", ports[3*i]),
			MonitorURL: fmt.Sprintf("http://127.0.0.1:%d", ports[3*i+1]),
		}
		renderTemplate(t, "nats-cluster.conf.tmpl", n.conf, map[string]any{
			"Name": name, "Port": ports[3*i], "MonitorPort": ports[3*i+1], "ClusterPort": ports[3*i+2],
			"StoreDir": store, "Routes": routes,
		})
		p, err := startProcess(n.processConfig())
		if err != nil {
			t.Fatal(err)
		}
		n.Proc = p
		t.Cleanup(func() { n.Proc.stop(t) })
		c.Nodes = append(c.Nodes, n)
		urls = append(urls, n.URL)
	}
	c.URL = strings.Join(urls, ",")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, n := range c.Nodes {
		if err := n.ready(ctx, n.Proc); err != nil {
			t.Fatalf("%s not ready: %v\n%s", n.name, err, n.Proc.Tail(40))
		}
	}
	return c
}

// Name is the node's server_name ("n1").
func (n *NATSServer) Name() string { return strings.TrimPrefix(n.name, "nats-") }

// JSZ is the part of a node's /jsz monitoring answer the tests read.
type JSZ struct {
	Meta struct {
		Leader string `json:"leader"`
	} `json:"meta_cluster"`
}

// JSZ reads the node's /jsz.
func (n *NATSServer) JSZ(ctx context.Context) (JSZ, error) {
	var z JSZ
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.MonitorURL+"/jsz", nil)
	if err != nil {
		return z, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return z, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return z, fmt.Errorf("%s /jsz: %s", n.name, resp.Status)
	}
	return z, json.NewDecoder(resp.Body).Decode(&z)
}

// Node returns the node whose server_name is name, or nil.
func (c *NATSCluster) Node(name string) *NATSServer {
	for _, n := range c.Nodes {
		if n.Name() == name {
			return n
		}
	}
	return nil
}
