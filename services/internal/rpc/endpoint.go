package rpc

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/micro"

	"github.com/natsotel/reference/natsotel"
)

// Endpoint is one micro endpoint of a service, with the metadata `nats micro info` shows
// for it: what it does, its request and response types, and the error codes it answers.
type Endpoint struct {
	Name        string
	Handler     natsotel.Handler
	Description string
	Request     string // e.g. "contracts.ReserveRequest"
	Response    string // e.g. "contracts.Reservation"
	Errors      string // e.g. "400 invalid request, 409 out of stock"
	Options     []micro.EndpointOpt
}

// ControlEndpoint is the failure-scenario endpoint every service has. It has no queue
// group, so every replica applies the change; scenarios lists the FaultConfig fields the
// service honours.
func ControlEndpoint(s *Server, scenarios string) Endpoint {
	return Endpoint{
		Name:        "control",
		Handler:     Control(s),
		Description: "Read (empty body) or set failure scenarios: " + scenarios,
		Request:     "contracts.FaultConfig",
		Response:    "contracts.FaultConfig",
		Errors:      "400 invalid configuration, 413 too large",
		Options:     []micro.EndpointOpt{micro.WithEndpointQueueGroupDisabled()},
	}
}

// AddEndpoints registers eps in group g, each with its metadata.
func AddEndpoints(g *natsotel.Group, eps ...Endpoint) error {
	var errs []error
	for _, ep := range eps {
		meta := micro.WithEndpointMetadata(map[string]string{
			"description": ep.Description, "request": ep.Request, "response": ep.Response, "errors": ep.Errors,
		})
		if err := g.AddEndpoint(ep.Name, ep.Handler, append([]micro.EndpointOpt{meta}, ep.Options...)...); err != nil {
			errs = append(errs, fmt.Errorf("adding endpoint %s: %w", ep.Name, err))
		}
	}
	return errors.Join(errs...)
}

// Serve registers a micro service with eps in group and flushes, so the subscriptions are
// in place on the server when it returns (requests from other connections would otherwise
// meet "no responders"). On error nothing stays registered.
func Serve(conn *natsotel.Conn, cfg micro.Config, group string, eps ...Endpoint) (*natsotel.Service, error) {
	svc, err := conn.AddService(cfg)
	if err != nil {
		return nil, fmt.Errorf("adding micro service: %w", err)
	}
	if err := AddEndpoints(svc.AddGroup(group), eps...); err != nil {
		_ = svc.Stop()
		return nil, err
	}
	if err := conn.Raw().FlushTimeout(10 * time.Second); err != nil {
		_ = svc.Stop()
		return nil, fmt.Errorf("flushing subscriptions: %w", err)
	}
	return svc, nil
}
