package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Stack is the infrastructure of one test: nats-server, Prometheus and the collector, plus
// every process the test starts through it. When the test fails, its cleanup prints the
// tail of every process log.
type Stack struct {
	Tools Tools
	Dir   string // logs, configs, data of this test
	// NATS is the nats-server; nil when the stack runs a cluster (NATSCluster).
	NATS *NATSServer
	// NATSCluster is set instead of NATS when StackConfig.NATSClusterSize > 0.
	NATSCluster *NATSCluster
	Prometheus  *Prometheus
	Collector   *Collector

	// MetricExportInterval is OTEL_METRIC_EXPORT_INTERVAL (ms) given to services (default 1000).
	MetricExportInterval int

	mu    sync.Mutex
	procs []*Process
	logs  []namedLog // printed when the test fails
}

type namedLog struct{ name, path string }

// StackConfig tunes a stack.
type StackConfig struct {
	Collector CollectorConfig
	// LogTailLines is how many lines of each log a failed test prints (default 80).
	LogTailLines int
	// NATSClusterSize, when > 0, runs a cluster of that many nats-server nodes
	// (StartNATSCluster) instead of one server.
	NATSClusterSize int
}

// StartStack starts nats-server, Prometheus and the collector, in that order, each ready
// before the next. The directory for logs and data is $E2E_LOG_DIR/<test name> when
// E2E_LOG_DIR is set (kept after the run, for CI artifacts), else a t.TempDir().
func StartStack(t testing.TB, tools Tools, cfg StackConfig) *Stack {
	t.Helper()
	dir := testDir(t)
	s := &Stack{Tools: tools, Dir: dir, MetricExportInterval: 1000}
	tail := cfg.LogTailLines
	if tail == 0 {
		tail = 80
	}
	// Registered first, so it runs last: after every process has stopped and flushed.
	t.Cleanup(func() {
		if t.Failed() {
			s.dumpLogs(t, tail)
		}
	})
	if cfg.NATSClusterSize > 0 {
		s.NATSCluster = StartNATSCluster(t, tools, dir, cfg.NATSClusterSize)
		for _, n := range s.NATSCluster.Nodes {
			s.track(n.Proc)
		}
	} else {
		s.NATS = StartNATSServer(t, tools, dir)
		s.track(s.NATS.Proc)
	}
	s.Prometheus = StartPrometheus(t, tools, dir)
	s.track(s.Prometheus.Proc)
	s.Collector = StartCollector(t, tools, dir, s.Prometheus, cfg.Collector)
	s.track(s.Collector.Proc)
	return s
}

func testDir(t testing.TB) string {
	base := os.Getenv("E2E_LOG_DIR")
	if base == "" {
		return t.TempDir()
	}
	name := regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(t.Name(), "_")
	dir := filepath.Join(base, name)
	_ = os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// ServiceEnv is the environment compose gives a service or the load generator: the OTel
// variables pointing at the collector and NATS_URL, plus extra ("KEY=value") entries.
func (s *Stack) ServiceEnv(serviceName string, extra ...string) []string {
	env := append(BaseEnv(s.Dir),
		"OTEL_SERVICE_NAME="+serviceName,
		"OTEL_EXPORTER_OTLP_ENDPOINT="+s.Collector.OTLPHTTPEndpoint,
		"OTEL_RESOURCE_ATTRIBUTES=service.namespace=shop",
		fmt.Sprintf("OTEL_METRIC_EXPORT_INTERVAL=%d", s.MetricExportInterval),
		// Export spans and logs quickly so edges pair within the collector's store TTL and
		// tests do not wait for the 5 s / 1 s SDK defaults.
		"OTEL_BSP_SCHEDULE_DELAY=500",
		"OTEL_BLRP_SCHEDULE_DELAY=500",
		"NATS_URL="+s.NATSURL(),
	)
	return append(env, extra...)
}

// NATSURL is what clients connect to: the server's URL, or every cluster node's.
func (s *Stack) NATSURL() string {
	if s.NATSCluster != nil {
		return s.NATSCluster.URL
	}
	return s.NATS.URL
}

// Start starts a process whose log the stack prints when the test fails. Dir and LogDir
// default to the stack's directory.
func (s *Stack) Start(t testing.TB, cfg ProcessConfig) *Process {
	t.Helper()
	if cfg.LogDir == "" {
		cfg.LogDir = s.Dir
	}
	p := StartProcess(t, cfg)
	s.track(p)
	return p
}

// StartService starts one of the repository's binaries (a service, the load generator)
// configured only by environment, checking at cleanup that it exits cleanly on SIGTERM.
func (s *Stack) StartService(t testing.TB, name, path, serviceName string, args []string, extraEnv ...string) *Process {
	t.Helper()
	return s.Start(t, ProcessConfig{
		Name:      name,
		Path:      path,
		Args:      args,
		Env:       s.ServiceEnv(serviceName, extraEnv...),
		CheckExit: true,
		// The services give in-flight work 20 s after SIGTERM before they give up.
		StopTimeout: 25 * time.Second,
	})
}

// Procs returns every process started through the stack.
func (s *Stack) Procs() []*Process {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Process(nil), s.procs...)
}

func (s *Stack) track(p *Process) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.procs = append(s.procs, p)
	s.addLogLocked(p.Name, p.LogPath)
}

func (s *Stack) addLogLocked(name, path string) {
	for _, l := range s.logs {
		if l.path == path {
			return
		}
	}
	s.logs = append(s.logs, namedLog{name, path})
}

func (s *Stack) dumpLogs(t testing.TB, n int) {
	var b strings.Builder
	fmt.Fprintf(&b, "logs of the failed test (full logs and exported telemetry in %s):\n", s.Dir)
	s.mu.Lock()
	logs := append([]namedLog(nil), s.logs...)
	s.mu.Unlock()
	for _, l := range logs {
		fmt.Fprintf(&b, "\n===== %s (%s) =====\n%s\n", l.name, l.path, tailFile(l.path, n))
	}
	t.Log(b.String())
}

// appendLog adds text to <Dir>/<name>.log and lists that log among the ones printed when
// the test fails (for programs run to completion by Run).
func (s *Stack) appendLog(t testing.TB, name, text string) {
	path := filepath.Join(s.Dir, name+".log")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Errorf("log %s: %v", name, err)
		return
	}
	defer f.Close()
	_, _ = f.WriteString(text)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addLogLocked(name, path)
}
