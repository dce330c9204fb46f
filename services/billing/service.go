package billing

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"sync"
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

// Config configures the billing service. The zero value is a working configuration.
type Config struct {
	// Responder is the connection the endpoints are served on; default the connection
	// given to Start. See app.Conns: a NATS identity that may only answer into its
	// callers' inboxes, so no reply subject can make the service write its own data.
	Responder *natsotel.Conn
	// FaultSeed seeds the fault injector (0: random).
	FaultSeed uint64
	// DisableControl leaves out the control endpoint (no runtime fault injection).
	DisableControl bool
	// Now returns the current time; default time.Now.
	Now func() time.Time
}

// Service is a running billing service.
type Service struct {
	cfg  Config
	log  *slog.Logger
	conn *natsotel.Conn
	srv  *rpc.Server
	svc  *natsotel.Service
	kv   *natsotel.KeyValue

	stopOnce sync.Once
	stopErr  error
}

// Start binds to the payments bucket (created by the provisioning step,
// services/provision; or here when missing and allowed) and registers the micro service.
func Start(ctx context.Context, conn *natsotel.Conn, log *slog.Logger, cfg Config) (*Service, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	js, err := conn.JetStream()
	if err != nil {
		return nil, fmt.Errorf("billing: %w", err)
	}
	kv, err := jsutil.Bucket(ctx, js, contracts.BucketPayments)
	if err != nil {
		return nil, fmt.Errorf("billing: %w", err)
	}
	s := &Service{
		cfg:  cfg,
		log:  log,
		conn: conn,
		srv:  &rpc.Server{Log: log, Faults: fault.New(cfg.FaultSeed, fault.Decline)},
		kv:   kv,
	}
	s.svc, err = rpc.Serve(cmp.Or(cfg.Responder, conn), micro.Config{
		Name:        contracts.BillingService,
		Version:     Version,
		Description: "Charges and refunds, idempotent per order id, with deterministic decline rules",
		Metadata: map[string]string{
			"buckets":       contracts.BucketPayments,
			"decline_rules": fmt.Sprintf("the declined test card (contracts.CardDeclined); amounts over %d cents", contracts.ChargeLimitCents),
		},
	}, contracts.BillingService, s.endpoints()...)
	if err != nil {
		return nil, fmt.Errorf("billing: %w", err)
	}
	log.InfoContext(ctx, "billing started", "micro_id", s.svc.Info().ID, "version", Version)
	return s, nil
}

func (s *Service) endpoints() []rpc.Endpoint {
	eps := []rpc.Endpoint{
		{Name: "charge", Handler: rpc.Typed(s.srv, s.charge),
			Description: "Capture a payment for an order; idempotent per order id",
			Request:     "contracts.ChargeRequest", Response: "contracts.Payment",
			Errors: "400 invalid request or card, 402 declined, 409 charged another amount / refunded / voided, 413 too large, 503 store unavailable"},
		{Name: "refund", Handler: rpc.Typed(s.srv, s.refund),
			Description: "Refund an order's payment (void it if none yet); idempotent",
			Request:     "contracts.OrderRef", Response: "contracts.Payment",
			Errors: "400 invalid request, 413 too large, 503 store unavailable"},
		{Name: "payment", Handler: rpc.Typed(s.srv, s.payment),
			Description: "An order's payment record",
			Request:     "contracts.OrderRef", Response: "contracts.Payment",
			Errors: "400 invalid request, 404 no payment, 413 too large, 503 store unavailable"},
	}
	if !s.cfg.DisableControl {
		eps = append(eps, rpc.ControlEndpoint(s.srv, "decline_share, drop_share"))
	}
	return eps
}

// Faults returns the fault injector.
func (s *Service) Faults() *fault.Injector { return s.srv.Faults }

// Stop stops taking requests (any still queued is answered 503 "service is stopping")
// and returns once every request received has been handled: no payment changes after
// it returned. It does not close the connection.
func (s *Service) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() {
		s.stopErr = s.srv.Shutdown(ctx, s.svc)
	})
	return s.stopErr
}
