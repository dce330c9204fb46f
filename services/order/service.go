package order

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/micro"

	"github.com/natsotel/reference/natsotel"
	"github.com/natsotel/reference/services/contracts"
	"github.com/natsotel/reference/services/internal/fault"
	"github.com/natsotel/reference/services/internal/jsutil"
	"github.com/natsotel/reference/services/internal/rpc"
)

// Version is the micro service version (SemVer).
const Version = "1.0.0"

// Config configures the order service. The zero value is a working configuration.
type Config struct {
	// Responder is the connection the endpoints are served on; default the connection
	// given to Start. See app.Conns: a NATS identity that may only answer into its
	// callers' inboxes, so no reply subject can make the service write its own data.
	Responder *natsotel.Conn
	// RequestTimeout bounds each downstream request (reserve, charge, refund, release)
	// and each event publish. Default 2s.
	RequestTimeout time.Duration
	// RetryInterval is how often orders whose end could not be finished during the
	// request (decision not stored, refund or event not sent) are retried. Default 2s.
	RetryInterval time.Duration
	// MaxUnresolved bounds the orders retried in memory. Beyond it, an order is left to
	// reconciliation, which finds it in the orders bucket. Default 10000.
	MaxUnresolved int
	// ReconcileInterval is how often ReconcileAll runs, the first time one interval after
	// Start: it repairs what a crashed process (this one before a restart, or another
	// replica) left unfinished. Default 30s; negative disables it.
	ReconcileInterval time.Duration
	// AbandonAfter is how long an order may stay pending, or failed with its
	// compensation outstanding, before reconciliation takes it over. It must exceed the
	// longest create. Default max(1m, 10*RequestTimeout).
	AbandonAfter time.Duration
	// FaultSeed seeds the fault injector (0: random).
	FaultSeed uint64
	// DisableControl leaves out the control endpoint (no runtime fault injection).
	DisableControl bool
	// Now returns the current time; default time.Now.
	Now func() time.Time
}

func (c *Config) defaults() {
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 2 * time.Second
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = 2 * time.Second
	}
	if c.MaxUnresolved <= 0 {
		c.MaxUnresolved = 10000
	}
	if c.ReconcileInterval == 0 {
		c.ReconcileInterval = 30 * time.Second
	}
	if c.AbandonAfter <= 0 {
		c.AbandonAfter = max(time.Minute, 10*c.RequestTimeout)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Service is a running order service.
type Service struct {
	cfg    Config
	log    *slog.Logger
	conn   *natsotel.Conn
	js     *natsotel.JetStream
	orders *natsotel.KeyValue
	srv    *rpc.Server
	svc    *natsotel.Service

	mu         sync.Mutex
	unresolved map[string]*work
	overflow   atomic.Int64 // orders not queued because MaxUnresolved was reached
	rec        reconciler

	quit          chan struct{}
	retryDone     chan struct{}
	reconcileDone chan struct{}
	stopOnce      sync.Once
	stopErr       error
}

// Start binds to the orders bucket (created by the provisioning step, services/provision;
// or here when missing and allowed) and registers the micro service. It does not look up
// the order events stream it publishes into: that stream is inventory's (its input
// queue), in inventory's account under deploy/nats/nats.conf, which order reaches only by
// publishing; an event published before the stream exists is retried in the background.
func Start(ctx context.Context, conn *natsotel.Conn, log *slog.Logger, cfg Config) (*Service, error) {
	cfg.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	js, err := conn.JetStream()
	if err != nil {
		return nil, fmt.Errorf("order: %w", err)
	}
	orders, err := jsutil.Bucket(ctx, js, contracts.BucketOrders)
	if err != nil {
		return nil, fmt.Errorf("order: %w", err)
	}
	s := &Service{
		cfg:           cfg,
		log:           log,
		conn:          conn,
		js:            js,
		orders:        orders,
		srv:           &rpc.Server{Log: log, Faults: fault.New(cfg.FaultSeed)},
		unresolved:    map[string]*work{},
		rec:           reconciler{open: map[string]time.Time{}},
		quit:          make(chan struct{}),
		retryDone:     make(chan struct{}),
		reconcileDone: make(chan struct{}),
	}
	s.svc, err = rpc.Serve(cmp.Or(cfg.Responder, conn), micro.Config{
		Name:        contracts.OrderService,
		Version:     Version,
		Description: "Creates orders: validates, reserves stock, charges, compensates on failure, publishes the outcome",
		Metadata: map[string]string{
			"buckets":   contracts.BucketOrders,
			"publishes": contracts.OrderEventsStream + " (" + contracts.OrderEventsSubjects + ")",
			"calls":     contracts.SubjectInventoryReserve + "," + contracts.SubjectInventoryRelease + "," + contracts.SubjectBillingCharge + "," + contracts.SubjectBillingRefund,
		},
	}, contracts.OrderService, s.endpoints()...)
	if err != nil {
		return nil, fmt.Errorf("order: %w", err)
	}
	go s.every(s.cfg.RetryInterval, 10*s.cfg.RequestTimeout, s.retryDone, s.retryAll)
	if cfg.ReconcileInterval > 0 {
		go s.every(s.cfg.ReconcileInterval, max(s.cfg.ReconcileInterval, 10*s.cfg.RequestTimeout), s.reconcileDone, s.reconcile)
	} else {
		close(s.reconcileDone)
	}
	log.InfoContext(ctx, "order started", "micro_id", s.svc.Info().ID, "version", Version)
	return s, nil
}

func (s *Service) endpoints() []rpc.Endpoint {
	eps := []rpc.Endpoint{
		{Name: "create", Handler: rpc.Typed(s.srv, s.create),
			Description: "Create an order: reserve, charge, confirm; compensate and fail otherwise. Error replies carry the order as body",
			Request:     "contracts.CreateOrderRequest", Response: "contracts.Order",
			Errors: "400 invalid request, 402 payment declined, 409 out of stock or idempotency key reused for another order, 413 too large, 503 a dependency did not answer or the order is still pending"},
		{Name: "get", Handler: rpc.Typed(s.srv, s.get),
			Description: "An order by id",
			Request:     "contracts.GetOrderRequest", Response: "contracts.Order",
			Errors: "400 invalid request, 404 not found, 413 too large, 503 store unavailable"},
	}
	if !s.cfg.DisableControl {
		eps = append(eps, rpc.ControlEndpoint(s.srv, "drop_share"))
	}
	return eps
}

// Faults returns the fault injector.
func (s *Service) Faults() *fault.Injector { return s.srv.Faults }

// Stop stops taking requests (any still queued is answered 503 "service is stopping"),
// waits until every request received has been handled, makes a last attempt at the
// orders still being retried, logs how many remain, and returns. It does not close the
// connection. What remains is in the orders bucket (pending, failed with its
// compensation outstanding, or confirmed with its event owed): the reconciliation of a restarted instance, or of another
// replica, repairs it.
func (s *Service) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() {
		var errs []error
		if err := s.srv.Shutdown(ctx, s.svc); err != nil {
			errs = append(errs, err)
		}
		close(s.quit)
		for _, done := range []chan struct{}{s.retryDone, s.reconcileDone} {
			select {
			case <-done:
			case <-ctx.Done():
			}
		}
		if ctx.Err() == nil { // the loops are idle: one last attempt here
			s.retryAll(ctx)
		}
		if ids := s.Unresolved(); len(ids) > 0 {
			const shown = 20
			s.log.ErrorContext(ctx, "stopping with unresolved orders; reconciliation (a restarted or another instance) repairs them from the orders bucket",
				"unresolved", len(ids), "order_ids", ids[:min(len(ids), shown)])
			errs = append(errs, fmt.Errorf("%d orders unresolved", len(ids)))
		}
		if _, overflowed := s.UnresolvedCount(); overflowed > 0 {
			s.log.WarnContext(ctx, "orders were left to reconciliation because too many were unresolved", "count", overflowed)
		}
		s.stopErr = errors.Join(errs...)
	})
	return s.stopErr
}
