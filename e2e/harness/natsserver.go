package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// NATSServer is a running nats-server with JetStream.
type NATSServer struct {
	// URL is the client URL ("nats://127.0.0.1:<port>").
	URL string
	// MonitorURL is the HTTP monitoring base URL.
	MonitorURL string
	Proc       *Process

	tools Tools
	dir   string
	conf  string
}

// StartNATSServer starts nats-server from config/nats-server.conf.tmpl with JetStream stored
// under dir, and waits for /healthz.
func StartNATSServer(t testing.TB, tools Tools, dir string) *NATSServer {
	t.Helper()
	port, monitor := FreePort(t), FreePort(t)
	storeDir := filepath.Join(dir, "jetstream")
	if err := os.MkdirAll(storeDir, 0o755); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "nats-server.conf")
	renderTemplate(t, "nats-server.conf.tmpl", conf, map[string]any{
		"Port": port, "MonitorPort": monitor, "StoreDir": storeDir,
	})
	n := &NATSServer{
		URL:        fmt.Sprintf("nats://127.0.0.1:%d", port),
		MonitorURL: fmt.Sprintf("http://127.0.0.1:%d", monitor),
		tools:      tools, dir: dir, conf: conf,
	}
	n.Start(t)
	return n
}

// Start (re)starts the server process on the same ports and storage, and waits until it is
// healthy. Fault tests use it after Stop to bring NATS back.
func (n *NATSServer) Start(t testing.TB) {
	t.Helper()
	n.Proc = StartProcess(t, ProcessConfig{
		Name:   "nats-server",
		Path:   n.tools.NATSServer,
		Args:   []string{"-c", n.conf},
		Env:    BaseEnv(n.dir),
		LogDir: n.dir,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := WaitHTTP(ctx, n.MonitorURL+"/healthz", n.Proc); err != nil {
		t.Fatalf("nats-server not healthy: %v\n%s", err, n.Proc.Tail(40))
	}
}
