package deploy

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/nats-io/nats-server/v2/server"
)

const (
	natsConfPath   = "nats/nats.conf"
	dashboardsDir  = "grafana/dashboards"
	providerPath   = "grafana/custom.yaml"
	composeFile    = "compose.yaml"
	dockerfileName = "Dockerfile"
)

// goServices maps every Go service in compose.yaml to the main package its image builds.
// A service added to compose.yaml without an entry here fails TestComposeGoServices.
var goServices = map[string]string{
	"order":     "services/cmd/order",
	"inventory": "services/cmd/inventory",
	"billing":   "services/cmd/billing",
	"loadgen":   "loadgen/cmd/loadgen",
	"probe":     "loadgen/cmd/probe",
	"provision": "services/cmd/provision",
	"nats-hops": "loadgen/cmd/nats-hops",
}

// oneShot lists the Go services of goServices that run once and exit (restart "no"),
// which every long-running service waits for (depends_on: service_completed_successfully).
var oneShot = map[string]bool{"provision": true}

// repoRoot is the directory holding compose.yaml, go.work and the Dockerfile.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// loadCompose loads compose.yaml the way `docker compose` does: project directory = repo
// root, .env and OS environment for interpolation, normalization and path resolution on.
func loadCompose(t testing.TB) *types.Project {
	t.Helper()
	root := repoRoot(t)
	opts, err := cli.NewProjectOptions(
		[]string{filepath.Join(root, composeFile)},
		cli.WithWorkingDirectory(root),
		cli.WithOsEnv,
		cli.WithDotEnv,
	)
	if err != nil {
		t.Fatalf("compose options: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := opts.LoadProject(ctx)
	if err != nil {
		t.Fatalf("load %s: %v", composeFile, err)
	}
	return p
}

// env returns a service's environment variable from compose.yaml ("" if unset).
func env(svc types.ServiceConfig, key string) string {
	if v, ok := svc.Environment[key]; ok && v != nil {
		return *v
	}
	return ""
}

// natsConfig parses nats/nats.conf with the real server's parser.
func natsConfig(t testing.TB) *server.Options {
	t.Helper()
	opts, err := server.ProcessConfigFile(natsConfPath)
	if err != nil {
		t.Fatalf("parse %s: %v", natsConfPath, err)
	}
	return opts
}

// natsUser returns the user named name in nats.conf, or nil.
func natsUser(opts *server.Options, name string) *server.User {
	for _, u := range opts.Users {
		if u.Username == name {
			return u
		}
	}
	return nil
}

// startNATS runs nats-server with nats/nats.conf, changed only where a test must differ
// from a container: loopback and random ports, a temporary JetStream store, no signals.
func startNATS(t testing.TB) *server.Server {
	t.Helper()
	return startNATSAt(t, 0, t.TempDir())
}

// startNATSAt is startNATS on a given port and store directory (0: random port), so a
// test can restart "the same" server.
func startNATSAt(t testing.TB, port int, storeDir string) *server.Server {
	t.Helper()
	opts := natsConfig(t)
	opts.Host = "127.0.0.1"
	opts.Port = port
	if port == 0 {
		opts.Port = server.RANDOM_PORT
	}
	opts.HTTPHost = "127.0.0.1"
	opts.HTTPPort = server.RANDOM_PORT
	opts.StoreDir = storeDir
	opts.NoSigs = true
	opts.NoLog = true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("nats-server with %s: %v", natsConfPath, err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}
