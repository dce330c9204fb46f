package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"

	"github.com/nats-io/nats.go/micro"

	"github.com/natsotel/reference/natsotel"
	"github.com/natsotel/reference/services/contracts"
	"github.com/natsotel/reference/services/internal/fault"
)

// Server is what every handler of one service shares: its logger, its fault injector
// and its in-flight counter (which also refuses requests once the service is stopping:
// see Shutdown).
type Server struct {
	Log      *slog.Logger
	Faults   *fault.Injector
	Inflight Inflight
}

// Option changes how Typed handles a request.
type Option func(*options)

type options struct {
	noFaults bool
}

// NoFaults exempts the endpoint from the drop fault.
func NoFaults() Option { return func(o *options) { o.noFaults = true } }

// Typed adapts fn to a natsotel.Handler: the body is decoded with Decode into a Req, fn's
// result is replied as JSON, an *Error becomes that micro error, any other error becomes
// 500 "internal error" (logged, never sent). A panic is natsotel's to recover: it answers
// 500 "internal error", records it on the span and passes it to the WithPanicHandler
// function (telemetry.NATSOptions logs it with its stack). Once s.Inflight is closed (Shutdown), a
// request is answered 503 "service is stopping" before anything else.
func Typed[Req, Resp any](s *Server, fn func(ctx context.Context, req *Req) (Resp, error), opts ...Option) natsotel.Handler {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	return func(ctx context.Context, req micro.Request) {
		if !s.Inflight.Begin() {
			s.fail(ctx, req, Errorf(contracts.CodeUnavailable, "service is stopping"))
			return
		}
		defer s.Inflight.End()
		if s.Faults != nil && !o.noFaults {
			s.Faults.Annotate(ctx)
			if s.Faults.Drop(ctx) {
				s.Log.DebugContext(ctx, "dropping request (fault injection)", "subject", req.Subject())
				return
			}
		}
		in, derr := Decode[Req](req.Data())
		if derr != nil {
			s.fail(ctx, req, derr)
			return
		}
		out, err := fn(ctx, &in)
		s.respond(ctx, req, out, err)
	}
}

// respond replies out as JSON, or err as a micro error.
func (s *Server) respond(ctx context.Context, req micro.Request, out any, err error) {
	if err != nil {
		var rerr *Error
		if !errors.As(err, &rerr) {
			s.Log.ErrorContext(ctx, "handler failed", "subject", req.Subject(), "error", err)
			rerr = Errorf(contracts.CodeInternal, "internal error")
		}
		s.fail(ctx, req, rerr)
		return
	}
	body, err := json.Marshal(out)
	if err != nil {
		s.Log.ErrorContext(ctx, "encoding reply", "subject", req.Subject(), "error", err)
		s.fail(ctx, req, Errorf(contracts.CodeInternal, "internal error"))
		return
	}
	if err := req.Respond(body); err != nil {
		s.Log.WarnContext(ctx, "sending reply", "subject", req.Subject(), "error", err)
	}
}

// fail replies with a micro error and logs it at a level fitting its code.
func (s *Server) fail(ctx context.Context, req micro.Request, e *Error) {
	desc := Sanitize(e.Description)
	// A 4xx is the caller's mistake or a business outcome (declined, out of stock): Info,
	// so every failed order has a log line linked to its trace.
	level := slog.LevelInfo
	switch e.Code {
	case contracts.CodeInternal:
		level = slog.LevelError
	case contracts.CodeUnavailable:
		level = slog.LevelWarn
	}
	attrs := []any{"subject", req.Subject(), "code", e.Code, "description", desc}
	if e.Cause != nil {
		attrs = append(attrs, "cause", e.Cause.Error())
	}
	s.Log.Log(ctx, level, "request failed", attrs...)
	if err := req.Error(e.Code, desc, e.Data); err != nil {
		s.Log.WarnContext(ctx, "sending error reply", "subject", req.Subject(), "error", err)
	}
}

// Control returns the handler of a service's control endpoint: an empty body reads the
// fault configuration, a contracts.FaultConfig body replaces it (a zero value, "{}",
// switches every scenario off); an invalid one is a 400 and changes nothing. The reply
// is the configuration in force. Control requests are never dropped.
func Control(s *Server) natsotel.Handler {
	return func(ctx context.Context, req micro.Request) {
		if len(bytes.TrimSpace(req.Data())) > 0 {
			cfg, derr := Decode[contracts.FaultConfig](req.Data())
			if derr != nil {
				s.fail(ctx, req, derr)
				return
			}
			if err := s.Faults.Set(cfg); err != nil {
				s.fail(ctx, req, BadRequest("invalid fault configuration: %v", err))
				return
			}
			s.Log.InfoContext(ctx, "fault configuration changed",
				"drop_share", cfg.DropShare, "decline_share", cfg.DeclineShare, "delay_share", cfg.DelayShare,
				"delay", cfg.Delay, "delay_jitter", cfg.DelayJitter, "nak_share", cfg.NakShare)
		}
		s.Faults.Annotate(ctx)
		s.respond(ctx, req, s.Faults.Config(), nil)
	}
}
