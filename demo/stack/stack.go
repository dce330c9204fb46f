// Package stack runs the whole shop in one process: an embedded nats-server with
// JetStream, the order, inventory and billing services (each with its own connection and
// its own OpenTelemetry providers, so each has its own service.name exactly as in
// separate processes), optionally the load generator and the micro probe.
//
// Every component's telemetry reads the process's OTEL_* environment (exporters,
// sampler, resource attributes); OTEL_SERVICE_NAME must be unset, or it would give every
// component the same service.name.
//
// It is what `make demo` (demo/cmd/demo) runs and what the in-process end-to-end test
// drives.
package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natsotel/reference/loadgen/hops"
	"github.com/natsotel/reference/loadgen/load"
	"github.com/natsotel/reference/loadgen/probe"
	"github.com/natsotel/reference/natsotel"
	"github.com/natsotel/reference/services/billing"
	"github.com/natsotel/reference/services/contracts"
	"github.com/natsotel/reference/services/inventory"
	"github.com/natsotel/reference/services/order"
	"github.com/natsotel/reference/services/provision"
	"github.com/natsotel/reference/services/telemetry"
)

// Service names of the components that are not shop services.
const (
	LoadgenService = "loadgen"
	ProbeService   = "probe"
	HopsService    = "nats-hops"
)

// HopsSubject is where the embedded server sends its message trace events when
// Config.Hops is set.
const HopsSubject = "nats.hops"

// Config configures a Stack. The zero value runs the three services (one inventory
// replica) on a random port with a temporary store, no load generator and no probe.
type Config struct {
	// Host and Port of the embedded NATS server; default 127.0.0.1 and a random port.
	Host string
	Port int
	// StoreDir holds JetStream data. Empty: a temporary directory removed by Stop.
	StoreDir string
	// InventoryReplicas is the number of inventory instances; default 1.
	InventoryReplicas int

	// Stderr receives every component's text logs; default os.Stderr.
	Stderr io.Writer
	// LogLevel of every component; default Info.
	LogLevel slog.Level
	// Telemetry, if set, may adjust each component's telemetry configuration before it is
	// built (add span processors such as a servicegraph.Graph or a recorder, metric
	// readers, ...). service is the component's service.name.
	Telemetry func(service string, cfg *telemetry.Config)

	// Order, Inventory and Billing configure the services (zero values are fine).
	Order     order.Config
	Inventory inventory.Config
	Billing   billing.Config

	// Load, if not nil, runs the load generator in the background from Start until Stop
	// (or until its own limits), with its control endpoint.
	Load *load.Config
	// Probe, if not nil, runs the micro probe in the background.
	Probe *probe.Config
	// Hops turns the server's message tracing on (msg_trace, every sampled message) and
	// runs the loadgen/hops bridge, which records the server's hops as INTERNAL spans
	// (service.name nats-hops) in the traces of the messages.
	Hops bool
}

// Node is one component's connection and telemetry.
type Node struct {
	Service string
	NC      *nats.Conn
	Conn    *natsotel.Conn
	Tel     *telemetry.Telemetry
	Log     *slog.Logger
}

// Stack is a running shop. Stop it with Stop.
type Stack struct {
	cfg      Config
	Server   *server.Server
	storeDir string
	tempDir  bool

	// Nodes, in start order: nats-hops (if Config.Hops), order, inventory (one per
	// replica), billing, loadgen, probe.
	Order       *order.Service
	Inventories []*inventory.Service
	Billing     *billing.Service
	// Loadgen is the load generator's node (always present, so tests can drive requests
	// under service.name "loadgen"); Runner is set when Config.Load was.
	Loadgen *Node
	Runner  *load.Runner
	Probe   *probe.Probe

	nodes    []*Node
	stops    []stopFunc // in start order; run in reverse
	bgCancel context.CancelFunc
	bgWG     sync.WaitGroup

	mu      sync.Mutex
	summary *load.Summary
	stopped bool
}

type stopFunc struct {
	what string
	fn   func(context.Context) error
}

// URL returns the client URL of the embedded server.
func (s *Stack) URL() string { return s.Server.ClientURL() }

// StoreDir returns the JetStream directory.
func (s *Stack) StoreDir() string { return s.storeDir }

// Start starts the server and every component. On error, whatever was started is
// stopped again.
func Start(ctx context.Context, cfg Config) (_ *Stack, err error) {
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.Port == 0 {
		cfg.Port = server.RANDOM_PORT
	}
	if cfg.InventoryReplicas <= 0 {
		cfg.InventoryReplicas = 1
	}
	if cfg.Stderr == nil {
		cfg.Stderr = os.Stderr
	}

	s := &Stack{cfg: cfg, storeDir: cfg.StoreDir}
	defer func() {
		if err != nil {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			_ = s.Stop(sctx)
		}
	}()

	if s.storeDir == "" {
		dir, err := os.MkdirTemp("", "natsotel-demo-*")
		if err != nil {
			return nil, fmt.Errorf("stack: store directory: %w", err)
		}
		s.storeDir, s.tempDir = dir, true
	}
	if err := s.startServer(); err != nil {
		return nil, err
	}
	if cfg.Hops {
		// First, so that it stops last and records the hops of everything before.
		if err := s.startHops(ctx); err != nil {
			return nil, err
		}
	}

	// The provisioning step, as in compose (services/cmd/provision): streams, buckets
	// and inventory's consumer exist before any service starts. (The embedded server
	// sets no permissions, so the services could create them too; under
	// deploy/nats/nats.conf they may not.)
	if err := s.provision(ctx); err != nil {
		return nil, err
	}

	n, err := s.node(ctx, contracts.OrderService)
	if err != nil {
		return nil, err
	}
	if s.Order, err = order.Start(ctx, n.Conn, n.Log, cfg.Order); err != nil {
		return nil, fmt.Errorf("stack: %w", err)
	}
	s.onStop("order", s.Order.Stop)

	for range cfg.InventoryReplicas {
		n, err := s.node(ctx, contracts.InventoryService)
		if err != nil {
			return nil, err
		}
		inv, err := inventory.Start(ctx, n.Conn, n.Log, cfg.Inventory)
		if err != nil {
			return nil, fmt.Errorf("stack: %w", err)
		}
		s.Inventories = append(s.Inventories, inv)
		s.onStop("inventory", inv.Stop)
	}

	if n, err = s.node(ctx, contracts.BillingService); err != nil {
		return nil, err
	}
	if s.Billing, err = billing.Start(ctx, n.Conn, n.Log, cfg.Billing); err != nil {
		return nil, fmt.Errorf("stack: %w", err)
	}
	s.onStop("billing", s.Billing.Stop)

	if s.Loadgen, err = s.node(ctx, LoadgenService); err != nil {
		return nil, err
	}
	bgCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.bgCancel = cancel
	if cfg.Load != nil {
		if err := s.startLoad(bgCtx, *cfg.Load); err != nil {
			return nil, err
		}
	}
	if cfg.Probe != nil {
		if err := s.startProbe(bgCtx, *cfg.Probe); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// provision runs services/provision on its own connection.
func (s *Stack) provision(ctx context.Context) error {
	nc, err := nats.Connect(s.URL(), nats.Name("provision"))
	if err != nil {
		return fmt.Errorf("stack: provision: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("stack: provision: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	log := slog.New(slog.NewTextHandler(s.cfg.Stderr, &slog.HandlerOptions{Level: s.cfg.LogLevel})).With("service", "provision")
	return provision.Run(pctx, provision.Single(js), log, 1)
}

// serverConfig puts every client, connecting without credentials, into one account: the
// server's message tracing (msg_trace) can only be set on a named account.
const serverConfig = `
accounts { SHOP { jetstream: enabled, users: [{user: shop, password: shop}] %s } }
no_auth_user: shop
`

func (s *Stack) startServer() error {
	msgTrace := ""
	if s.cfg.Hops {
		msgTrace = `, msg_trace { dest: "` + HopsSubject + `", sampling: 100 }`
	}
	opts := &server.Options{}
	if err := opts.ProcessConfigString(fmt.Sprintf(serverConfig, msgTrace)); err != nil {
		return fmt.Errorf("stack: nats-server configuration: %w", err)
	}
	opts.ServerName = "demo"
	opts.Host, opts.Port = s.cfg.Host, s.cfg.Port
	opts.JetStream, opts.StoreDir = true, s.storeDir
	opts.NoLog, opts.NoSigs = true, true
	ns, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("stack: nats-server: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return fmt.Errorf("stack: nats-server on %s:%d did not become ready", s.cfg.Host, s.cfg.Port)
	}
	s.Server = ns
	return nil
}

// node connects a component with its own telemetry.
func (s *Stack) node(ctx context.Context, service string) (*Node, error) {
	tc := telemetry.Config{
		ServiceName:    service,
		ServiceVersion: "demo",
		Stderr:         s.cfg.Stderr,
		LogLevel:       s.cfg.LogLevel,
	}
	if s.cfg.Telemetry != nil {
		s.cfg.Telemetry(service, &tc)
	}
	tel, err := telemetry.New(ctx, tc)
	if err != nil {
		return nil, fmt.Errorf("stack: %s telemetry: %w", service, err)
	}
	n := &Node{Service: service, Tel: tel, Log: tel.Logger}
	s.nodes = append(s.nodes, n)
	n.NC, err = nats.Connect(s.URL(), nats.Name(service), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("stack: %s: connect: %w", service, err)
	}
	if n.Conn, err = natsotel.Wrap(n.NC, tel.NATSOptions()...); err != nil {
		return nil, fmt.Errorf("stack: %s: %w", service, err)
	}
	return n, nil
}

func (s *Stack) onStop(what string, fn func(context.Context) error) {
	s.stops = append(s.stops, stopFunc{what, fn})
}

func (s *Stack) startLoad(ctx context.Context, cfg load.Config) error {
	cfg.MeterProvider = s.Loadgen.Tel.MeterProvider
	r, err := load.New(s.Loadgen.Conn, s.Loadgen.Log, cfg)
	if err != nil {
		return fmt.Errorf("stack: loadgen: %w", err)
	}
	svc, err := r.AddControlService(s.Loadgen.NC)
	if err != nil {
		return fmt.Errorf("stack: %w", err)
	}
	s.Runner = r
	done := make(chan struct{})
	s.bgWG.Go(func() {
		defer close(done)
		sum, err := r.Run(ctx)
		if err != nil {
			s.Loadgen.Log.Error("loadgen failed", "error", err)
			return
		}
		s.mu.Lock()
		s.summary = &sum
		s.mu.Unlock()
	})
	s.onStop("loadgen", func(ctx context.Context) error {
		select {
		case <-done:
		case <-ctx.Done():
			return fmt.Errorf("waiting for the load generator: %w", ctx.Err())
		}
		return svc.Stop()
	})
	return nil
}

// startHops runs the hops bridge on its own connection and telemetry; draining the
// connection at Stop ends it.
func (s *Stack) startHops(ctx context.Context) error {
	n, err := s.node(ctx, HopsService)
	if err != nil {
		return err
	}
	b := hops.New(hops.WithTracerProvider(n.Tel.TracerProvider), hops.WithErrorHandler(func(err error) {
		n.Log.Warn("trace event dropped", "error", err)
	}))
	if _, err := b.Subscribe(n.NC, HopsSubject); err != nil {
		return fmt.Errorf("stack: %w", err)
	}
	// The subscription must be in place before the services send their first message.
	if err := n.NC.Flush(); err != nil {
		return fmt.Errorf("stack: nats-hops: %w", err)
	}
	return nil
}

func (s *Stack) startProbe(ctx context.Context, cfg probe.Config) error {
	n, err := s.node(ctx, ProbeService)
	if err != nil {
		return err
	}
	cfg.MeterProvider = n.Tel.MeterProvider
	if cfg.Logger == nil {
		cfg.Logger = n.Log
	}
	p, err := probe.New(n.NC, cfg)
	if err != nil {
		return fmt.Errorf("stack: probe: %w", err)
	}
	s.Probe = p
	done := make(chan struct{})
	s.bgWG.Go(func() {
		defer close(done)
		if err := p.Run(ctx); err != nil {
			n.Log.Error("probe stopped", "error", err)
		}
	})
	s.onStop("probe", func(ctx context.Context) error {
		select {
		case <-done:
		case <-ctx.Done():
			return fmt.Errorf("waiting for the probe: %w", ctx.Err())
		}
		return p.Close()
	})
	return nil
}

// LoadSummary returns the load generator's summary once it has finished (after Stop, or
// when its Duration or Count limit was reached).
func (s *Stack) LoadSummary() (load.Summary, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.summary == nil {
		return load.Summary{}, false
	}
	return *s.summary, true
}

// Stop stops everything in reverse start order: the load generator and the probe first
// (so no new requests arrive), then billing, inventory and order (each drains its
// in-flight work), then the connections (drained), the telemetry (flushed) and the
// server; a temporary store is removed. ctx bounds the whole; what does not finish in
// time is reported in the error and left behind. A telemetry flush that fails (an
// unreachable OTLP endpoint) is only warned about on Config.Stderr. Calling Stop again
// does nothing.
func (s *Stack) Stop(ctx context.Context) error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil
	}
	s.stopped = true
	s.mu.Unlock()

	var errs []error
	if s.bgCancel != nil {
		s.bgCancel()
	}
	for i := len(s.stops) - 1; i >= 0; i-- {
		if err := s.stops[i].fn(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", s.stops[i].what, err))
		}
	}
	for i := len(s.nodes) - 1; i >= 0; i-- {
		n := s.nodes[i]
		if n.NC != nil {
			drainConn(ctx, n.NC)
		}
		if err := n.Tel.Shutdown(ctx); err != nil {
			// An unreachable backend is not the shop's failure: warn, do not fail.
			fmt.Fprintf(s.cfg.Stderr, "stack: %s: flushing telemetry: %v\n", n.Service, err)
		}
	}
	if s.Server != nil {
		s.Server.Shutdown()
		s.Server.WaitForShutdown()
	}
	if s.tempDir {
		if err := os.RemoveAll(s.storeDir); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", s.storeDir, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("stack: %w", err)
	}
	return nil
}

// drainConn drains nc (flushing what it published) and closes it, bounded by ctx.
func drainConn(ctx context.Context, nc *nats.Conn) {
	if nc.IsClosed() {
		return
	}
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if err := nc.Drain(); err != nil {
		nc.Close()
		return
	}
	select {
	case <-closed:
	case <-ctx.Done():
		nc.Close()
	}
}
