package inventory

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/natsotel/reference/natsotel"
	"github.com/natsotel/reference/services/contracts"
	"github.com/natsotel/reference/services/internal/fault"
	"github.com/natsotel/reference/services/internal/jsutil"
	"github.com/natsotel/reference/services/internal/rpc"
)

// Version is the micro service version (SemVer).
const Version = "1.0.0"

// Config configures the inventory service. The zero value is a working configuration.
type Config struct {
	// Responder is the connection the endpoints are served on; default the connection
	// given to Start. See app.Conns: a NATS identity that may only answer into its
	// callers' inboxes, so no reply subject can make the service write its own data.
	Responder *natsotel.Conn
	// MaxAttempts bounds each compare-and-set loop on a stock key. Default 100.
	MaxAttempts int
	// MaxDeliver bounds deliveries of one order event to the commit consumer. Default 10.
	// It and AckWait configure the consumer only when this service creates it (it was not
	// provisioned); a provisioned consumer's own MaxDeliver is what counts.
	MaxDeliver int
	// Consumers is how many order events are handled at once: that many Consume loops
	// share the durable consumer (JetStream hands each event to one of them). Events of
	// different orders are independent, and commit and release of one order are idempotent
	// compare-and-set steps, so their order does not matter. Default 4.
	Consumers int
	// AckWait is the consumer's ack wait. Default 30s.
	AckWait time.Duration
	// NakDelay is the redelivery delay of a failed order event. Default 500ms.
	NakDelay time.Duration
	// SweepInterval is how often Sweep runs; default 30s, negative disables it.
	SweepInterval time.Duration
	// StaleAfter is how long a reservation may stay "reserving" before Sweep releases
	// it. Default 1m.
	StaleAfter time.Duration
	// FaultSeed seeds the fault injector (0: random).
	FaultSeed uint64
	// DisableControl leaves out the control endpoint (no runtime fault injection).
	DisableControl bool
	// Now returns the current time; default time.Now.
	Now func() time.Time
}

func (c *Config) defaults() {
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 100
	}
	if c.MaxDeliver <= 0 {
		c.MaxDeliver = jsutil.DefaultMaxDeliver
	}
	if c.Consumers <= 0 {
		c.Consumers = 4
	}
	if c.AckWait <= 0 {
		c.AckWait = jsutil.DefaultAckWait
	}
	if c.NakDelay <= 0 {
		c.NakDelay = 500 * time.Millisecond
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = 30 * time.Second
	}
	if c.StaleAfter <= 0 {
		c.StaleAfter = time.Minute
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Service is a running inventory service.
type Service struct {
	cfg   Config
	log   *slog.Logger
	conn  *natsotel.Conn
	srv   *rpc.Server
	svc   *natsotel.Service
	stock *stock
	res   *reservations
	cc    []jetstream.ConsumeContext

	quit      chan struct{} // closed by Stop
	sweepDone chan struct{} // closed when the sweeper returned
	stopOnce  sync.Once
	stopErr   error
}

// Start binds to the buckets, the order events stream and the durable consumer (created
// by the provisioning step, services/provision; or here when missing and allowed), seeds
// stock when a SKU has none, registers the micro service and starts consuming.
func Start(ctx context.Context, conn *natsotel.Conn, log *slog.Logger, cfg Config) (*Service, error) {
	cfg.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	js, err := conn.JetStream()
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	stockKV, err := jsutil.Bucket(ctx, js, contracts.BucketStock)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	resKV, err := jsutil.Bucket(ctx, js, contracts.BucketReservations)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	s := &Service{
		cfg:       cfg,
		log:       log,
		conn:      conn,
		srv:       &rpc.Server{Log: log, Faults: fault.New(cfg.FaultSeed, fault.Delay, fault.Nak)},
		stock:     &stock{kv: stockKV, maxAttempts: cfg.MaxAttempts, rnd: jsutil.NewRand()},
		res:       &reservations{kv: resKV, now: cfg.Now},
		quit:      make(chan struct{}),
		sweepDone: make(chan struct{}),
	}
	seeded, err := s.stock.seed(ctx)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	if seeded > 0 {
		log.InfoContext(ctx, "seeded stock", "skus", seeded)
	}

	s.svc, err = rpc.Serve(cmp.Or(cfg.Responder, conn), micro.Config{
		Name:        contracts.InventoryService,
		Version:     Version,
		Description: "Stock per SKU: all-or-nothing reservations with optimistic concurrency on a KeyValue bucket",
		Metadata: map[string]string{
			"buckets":  contracts.BucketStock + "," + contracts.BucketReservations,
			"consumes": contracts.OrderEventsStream + "/" + contracts.InventoryCommitConsumer,
		},
	}, contracts.InventoryService, s.endpoints()...)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	if s.cc, err = s.startConsumer(ctx, js); err != nil {
		_ = s.svc.Shutdown(ctx)
		return nil, fmt.Errorf("inventory: %w", err)
	}
	if cfg.SweepInterval > 0 {
		go s.sweepLoop(cfg.SweepInterval)
	} else {
		close(s.sweepDone)
	}
	log.InfoContext(ctx, "inventory started", "micro_id", s.svc.Info().ID, "version", Version)
	return s, nil
}

// Endpoint metadata, shown by `nats micro info inventory`.
func (s *Service) endpoints() []rpc.Endpoint {
	eps := []rpc.Endpoint{
		{Name: "reserve", Handler: rpc.Typed(s.srv, s.reserve),
			Description: "Reserve every line of an order or none; idempotent per order id",
			Request:     "contracts.ReserveRequest", Response: "contracts.Reservation",
			Errors: "400 invalid request or unknown sku, 409 out of stock / reserved with other lines / released, 413 too large, 503 store unavailable"},
		{Name: "release", Handler: rpc.Typed(s.srv, s.release),
			Description: "Return the units an order holds; idempotent; blocks a later reserve of the same order",
			Request:     "contracts.OrderRef", Response: "contracts.Reservation",
			Errors: "400 invalid request, 409 committed, 413 too large, 503 store unavailable"},
		{Name: "commit", Handler: rpc.Typed(s.srv, s.commit),
			Description: "Mark a held reservation committed (its units are sold); idempotent",
			Request:     "contracts.OrderRef", Response: "contracts.Reservation",
			Errors: "400 invalid request, 404 no reservation, 409 not held or released, 413 too large, 503 store unavailable"},
		{Name: "stock", Handler: rpc.Typed(s.srv, s.stockOf),
			Description: "Units of a SKU available for reservation",
			Request:     "contracts.StockRequest", Response: "contracts.Stock",
			Errors: "400 invalid request, 404 unknown sku, 413 too large, 503 store unavailable"},
	}
	if !s.cfg.DisableControl {
		eps = append(eps, rpc.ControlEndpoint(s.srv, "delay_share, delay, delay_jitter, nak_share, drop_share"))
	}
	return eps
}

// Faults returns the fault injector (tests and the demo switch scenarios with it
// directly; over NATS use the control endpoint).
func (s *Service) Faults() *fault.Injector { return s.srv.Faults }

// Stop stops taking events and requests, waits for the running ones (and the sweeper)
// to finish, and returns: no stock or reservation changes after it returned. Events
// already fetched are handled first; requests still queued when the endpoints stop are
// answered 503 "service is stopping". It does not close the connection. Calling it again
// returns the first result.
func (s *Service) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() {
		close(s.quit)
		var errs []error
		for _, cc := range s.cc {
			cc.Drain()
		}
		for _, cc := range s.cc {
			select {
			case <-cc.Closed():
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			errs = append(errs, fmt.Errorf("draining consumer: %w", ctx.Err()))
		}
		select {
		case <-s.sweepDone:
		case <-ctx.Done():
		}
		if err := s.srv.Shutdown(ctx, s.svc); err != nil {
			errs = append(errs, err)
		}
		s.stopErr = errors.Join(errs...)
	})
	return s.stopErr
}
