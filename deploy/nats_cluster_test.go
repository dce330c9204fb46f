package deploy

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/natsotel/reference/services/app"
	"github.com/natsotel/reference/services/contracts"
	"github.com/natsotel/reference/services/provision"
)

const (
	clusterComposeFile = "compose.cluster.yaml"
	clusterConfPath    = "nats/cluster.conf"
)

// clusterNodes are the compose services of the three-node cluster.
var clusterNodes = []string{"nats", "nats-2", "nats-3"}

// loadClusterCompose loads compose.yaml with compose.cluster.yaml over it, as
// `docker compose -f compose.yaml -f compose.cluster.yaml` does.
func loadClusterCompose(t testing.TB) *types.Project {
	t.Helper()
	root := repoRoot(t)
	opts, err := cli.NewProjectOptions(
		[]string{filepath.Join(root, composeFile), filepath.Join(root, clusterComposeFile)},
		cli.WithWorkingDirectory(root), cli.WithOsEnv, cli.WithDotEnv,
	)
	if err != nil {
		t.Fatalf("compose options: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := opts.LoadProject(ctx)
	if err != nil {
		t.Fatalf("load %s + %s: %v", composeFile, clusterComposeFile, err)
	}
	return p
}

// clusterConfig parses cluster.conf as node name runs it.
func clusterConfig(t *testing.T, name string) *server.Options {
	t.Helper()
	t.Setenv("NATS_SERVER_NAME", name)
	opts, err := server.ProcessConfigFile(clusterConfPath)
	if err != nil {
		t.Fatalf("parse %s: %v", clusterConfPath, err)
	}
	return opts
}

// TestClusterConfigKeepsUsers: cluster.conf has nats.conf's users and permissions exactly
// (it includes the file), its own server name, and routes to every compose node.
func TestClusterConfigKeepsUsers(t *testing.T) {
	single := natsConfig(t)
	for _, node := range clusterNodes {
		c := clusterConfig(t, node)
		if c.ServerName != node {
			t.Errorf("%s: server_name %q", node, c.ServerName)
		}
		if len(c.Users) != len(single.Users) {
			t.Errorf("%s: %d users, %s has %d", node, len(c.Users), natsConfPath, len(single.Users))
		}
		for _, w := range single.Users {
			if g := natsUser(c, w.Username); g == nil || !sameUser(g, w) {
				t.Errorf("%s: user %s missing or different from %s", node, w.Username, natsConfPath)
			}
		}
		if !c.JetStream || c.StoreDir != single.StoreDir || c.Port != single.Port || c.HTTPPort != single.HTTPPort {
			t.Errorf("%s: JetStream %v store %q port %d http %d; want nats.conf's", node, c.JetStream, c.StoreDir, c.Port, c.HTTPPort)
		}
		var hosts []string
		for _, r := range c.Routes {
			if r.Port() != strconv.Itoa(c.Cluster.Port) {
				t.Errorf("%s: route %s not to the cluster port %d", node, r, c.Cluster.Port)
			}
			hosts = append(hosts, r.Hostname())
		}
		if !slices.Equal(sortedCopy(hosts), clusterNodes) {
			t.Errorf("%s: routes to %v, want every node %v", node, hosts, clusterNodes)
		}
	}
}

// TestComposeClusterWiring checks compose.cluster.yaml over compose.yaml: three nodes
// running cluster.conf with nats.conf beside it, each with its own name and store; every Go
// program connects with all three URLs and waits for every node; provisioning creates R3
// resources; the probe reads every node's monitoring port.
func TestComposeClusterWiring(t *testing.T) {
	p := loadClusterCompose(t)
	root := repoRoot(t)
	c := clusterConfig(t, "nats")
	volumes := map[string]string{}
	for _, node := range clusterNodes {
		svc, ok := p.Services[node]
		if !ok {
			t.Fatalf("no compose service %s", node)
		}
		if got := strings.Join(svc.Command, " "); got != "--config /etc/nats/cluster.conf" {
			t.Errorf("%s: command %q", node, got)
		}
		if env(svc, "NATS_SERVER_NAME") != node {
			t.Errorf("%s: NATS_SERVER_NAME %q", node, env(svc, "NATS_SERVER_NAME"))
		}
		mounts := map[string]string{}
		for _, v := range svc.Volumes {
			mounts[v.Target] = v.Source
			if v.Type == types.VolumeTypeVolume && strings.HasPrefix(c.StoreDir, v.Target) {
				if other, dup := volumes[v.Source]; dup {
					t.Errorf("%s and %s share the JetStream volume %s", node, other, v.Source)
				}
				volumes[v.Source] = node
			}
		}
		// include nats.conf is relative to cluster.conf's directory.
		for target, src := range map[string]string{"/etc/nats/cluster.conf": clusterConfPath, "/etc/nats/nats.conf": natsConfPath} {
			if mounts[target] != filepath.Join(root, "deploy", src) {
				t.Errorf("%s: %s mounted from %q, want deploy/%s", node, target, mounts[target], src)
			}
		}
		if hc := svc.HealthCheck; hc == nil || !strings.Contains(strings.Join(hc.Test, " "), ":8222/healthz") || strings.Contains(strings.Join(hc.Test, " "), "js-enabled-only") {
			t.Errorf("%s: healthcheck %v; want the full /healthz (cluster formed, meta leader)", node, hc)
		}
	}
	if len(volumes) != len(clusterNodes) {
		t.Errorf("JetStream volumes %v, want one per node", volumes)
	}

	wantURLs := func(port int) []string {
		var out []string
		for _, n := range clusterNodes {
			out = append(out, fmt.Sprintf("%s:%d", n, port))
		}
		return sortedCopy(out)
	}
	hostPorts := func(list, scheme string) []string {
		var out []string
		for raw := range strings.SplitSeq(list, ",") {
			u, err := url.Parse(raw)
			if err != nil || u.Scheme != scheme {
				t.Errorf("%q: not a %s URL (%v)", raw, scheme, err)
				continue
			}
			out = append(out, u.Host)
		}
		return sortedCopy(out)
	}
	for name := range goServices {
		svc := p.Services[name]
		if got := hostPorts(env(svc, "NATS_URL"), "nats"); !slices.Equal(got, wantURLs(c.Port)) {
			t.Errorf("%s: NATS_URL %v, want %v", name, got, wantURLs(c.Port))
		}
		getenv := func(k string) string { return env(svc, k) }
		want := 1 // only provisioning creates streams and buckets
		if name == "provision" {
			want = len(clusterNodes)
		}
		if n, err := app.JetStreamReplicas(getenv); err != nil || n != want {
			t.Errorf("%s: NATS_JS_REPLICAS gives %d, %v; want %d", name, n, err, want)
		}
		for _, node := range clusterNodes {
			if d, ok := svc.DependsOn[node]; !ok || d.Condition != types.ServiceConditionHealthy {
				t.Errorf("%s does not wait for %s to be healthy", name, node)
			}
		}
		if env(svc, "NATS_USER") != name {
			t.Errorf("%s: NATS_USER %q (compose.yaml's must stay)", name, env(svc, "NATS_USER"))
		}
	}
	if got := hostPorts(env(p.Services["probe"], "PROBE_MONITOR_URLS"), "http"); !slices.Equal(got, wantURLs(c.HTTPPort)) {
		t.Errorf("probe: PROBE_MONITOR_URLS %v, want %v", got, wantURLs(c.HTTPPort))
	}
	seen := map[string]string{}
	for name, svc := range p.Services {
		for _, port := range svc.Ports {
			key := port.HostIP + ":" + port.Published + "/" + port.Protocol
			if other, dup := seen[key]; dup && port.Published != "" {
				t.Errorf("host port %s published by both %s and %s", key, other, name)
			}
			seen[key] = name
		}
	}
}

// TestNATSClusterConfigRunsTheShop runs three nats-server nodes from cluster.conf (moved to
// loopback ports and temporary stores, routed to each other), then the whole shop with the
// environment compose.cluster.yaml gives it, under the users of nats.conf: every order
// ends as told, nothing is refused, and the stream and buckets have three replicas.
func TestNATSClusterConfigRunsTheShop(t *testing.T) {
	var routes []int
	for range clusterNodes {
		routes = append(routes, freePort(t))
	}
	var nodes []*server.Server
	for i, node := range clusterNodes {
		opts := clusterConfig(t, node)
		opts.Host, opts.Port = "127.0.0.1", server.RANDOM_PORT
		opts.HTTPHost, opts.HTTPPort = "127.0.0.1", server.RANDOM_PORT
		opts.StoreDir = t.TempDir()
		opts.Cluster.Host, opts.Cluster.Port = "127.0.0.1", routes[i]
		opts.Routes = nil
		for _, p := range routes {
			opts.Routes = append(opts.Routes, server.RoutesFromStr(fmt.Sprintf("nats-route://127.0.0.1:%d", p))...)
		}
		opts.NoSigs, opts.NoLog = true, true
		s, err := server.NewServer(opts)
		if err != nil {
			t.Fatalf("%s: %v", node, err)
		}
		go s.Start()
		t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
		nodes = append(nodes, s)
	}
	for _, s := range nodes {
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatalf("%s not ready", s.Name())
		}
	}
	// JetStream is usable once the meta group has a leader every node knows.
	deadline := time.Now().Add(30 * time.Second)
	for !slices.ContainsFunc(nodes, (*server.Server).JetStreamIsLeader) || !allCurrent(nodes) {
		if time.Now().After(deadline) {
			t.Fatal("no JetStream meta leader after 30s")
		}
		time.Sleep(50 * time.Millisecond) // the server offers no leader-elected signal
	}

	// Three in-process nodes replicating every write under -race on a busy machine are
	// slower than one server: an inventory reservation (several replicated KeyValue
	// writes) took over order's default 2 s here, so both timeouts are longer.
	runShop(t, nodes, loadClusterCompose(t), 30*time.Second, 10*time.Second)

	nc, err := nats.Connect(clientURLs(nodes), nats.UserInfo("admin", natsUser(natsConfig(t), "admin").Password))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := provision.PerService(nc, jsAPIPrefix)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, name := range []string{contracts.OrderEventsStream, "KV_" + contracts.BucketOrders, "KV_" + contracts.BucketStock, "KV_" + contracts.BucketReservations, "KV_" + contracts.BucketPayments} {
		s, err := holding(js, name).Stream(t.Context(), name)
		if err != nil {
			t.Errorf("stream %s: %v", name, err)
			continue
		}
		got[name] = s.CachedInfo().Config.Replicas
	}
	want := map[string]int{}
	for k := range got {
		want[k] = len(clusterNodes)
	}
	if len(got) != 5 || !maps.Equal(got, want) {
		t.Errorf("replicas by stream = %v, want %d each", got, len(clusterNodes))
	}
}

func allCurrent(nodes []*server.Server) bool {
	for _, s := range nodes {
		if !s.JetStreamIsCurrent() {
			return false
		}
	}
	return true
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
