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
	// Proc is the current server process (a new one after Start).
	Proc *Process

	tools Tools
	name  string // process and log name
	dir   string
	conf  string
}

// StartNATSServer starts nats-server from config/nats-server.conf.tmpl with JetStream stored
// under dir, and waits until it is ready. Its cleanup stops whichever server process is
// current then, so restarts (Start) keep the place of the first start in the order of
// cleanups: every process started after StartNATSServer stops before the server does.
func StartNATSServer(t testing.TB, tools Tools, dir string) *NATSServer {
	t.Helper()
	storeDir := filepath.Join(dir, "jetstream")
	if err := os.MkdirAll(storeDir, 0o755); err != nil {
		t.Fatal(err)
	}
	n := &NATSServer{tools: tools, name: "nats-server", dir: dir, conf: filepath.Join(dir, "nats-server.conf")}
	n.Proc = startTool(t, toolStart{
		attempt: func(int) ProcessConfig {
			ports := FreePorts(t, 2)
			renderTemplate(t, "nats-server.conf.tmpl", n.conf, map[string]any{
				"Port": ports[0], "MonitorPort": ports[1], "StoreDir": storeDir,
			})
			n.URL = fmt.Sprintf("nats://127.0.0.1:%d", ports[0])
			n.MonitorURL = fmt.Sprintf("http://127.0.0.1:%d", ports[1])
			return n.processConfig()
		},
		ready: n.ready,
	})
	t.Cleanup(func() { n.Proc.stop(t) })
	return n
}

// Start starts the server again on the same ports and storage, and waits until it is ready.
// Fault tests use it after stopping or killing Proc to bring NATS back; a Proc still running
// is stopped first. No new cleanup is registered (see StartNATSServer).
func (n *NATSServer) Start(t testing.TB) {
	t.Helper()
	n.Proc.stop(t)
	n.Proc = startTool(t, toolStart{
		attempt: func(int) ProcessConfig { return n.processConfig() },
		ready:   n.ready,
		// The ports are the clients' to reconnect to: on a port taken meanwhile, wait for
		// it to be free again rather than move.
		retryDelay: time.Second,
	})
}

func (n *NATSServer) processConfig() ProcessConfig {
	return ProcessConfig{
		Name:   n.name,
		Path:   n.tools.NATSServer,
		Args:   []string{"-c", n.conf},
		Env:    BaseEnv(n.dir),
		LogDir: n.dir,
	}
}

// ready waits for /healthz and for "Server is ready", which nats-server logs only once it
// has bound its monitoring and client ports (it exits when it cannot), so another process
// answering on one of those ports is not taken for this one.
func (n *NATSServer) ready(ctx context.Context, p *Process) error {
	if err := WaitHTTP(ctx, n.MonitorURL+"/healthz", p); err != nil {
		return err
	}
	return waitLog(ctx, p, "Server is ready")
}
