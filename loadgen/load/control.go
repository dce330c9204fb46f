package load

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/natsotel/reference/services/contracts"
)

// Control service identity: `nats micro ls` shows it as "loadgen", and
// `nats req loadgen.control '{"rate":50}'` changes the rate.
const (
	ControlService  = "loadgen"
	ControlEndpoint = "control"
	ControlSubject  = "loadgen.control"
	ControlVersion  = "0.1.0"
)

// ControlRequest is the body of a ControlSubject request. An empty body or {} only reads
// the state. Fields present are applied in order: rate, then burst.
type ControlRequest struct {
	// Rate sets the open-loop base rate (requests per second; 0 pauses).
	Rate *float64 `json:"rate,omitempty"`
	// BurstMultiplier and BurstSeconds start a burst: the rate is multiplied for that many
	// seconds, then returns to the base rate. BurstSeconds 0 ends a burst in progress.
	BurstMultiplier *float64 `json:"burst_multiplier,omitempty"`
	BurstSeconds    *int     `json:"burst_seconds,omitempty"`
}

// maxControlBytes bounds a control request body.
const maxControlBytes = 4096

// Apply applies req to r and returns the resulting state. Errors are micro-style: the
// returned code is contracts.CodeBadRequest.
func (r *Runner) Apply(req ControlRequest) (State, error) {
	if req.BurstSeconds != nil && *req.BurstSeconds > 0 && req.BurstMultiplier == nil {
		return r.State(), errors.New("burst_seconds needs burst_multiplier")
	}
	if req.Rate != nil {
		if err := r.SetRate(*req.Rate); err != nil {
			return r.State(), err
		}
	}
	if req.BurstMultiplier != nil || req.BurstSeconds != nil {
		secs := 0
		if req.BurstSeconds != nil {
			secs = *req.BurstSeconds
		}
		mult := 0.0
		if req.BurstMultiplier != nil {
			mult = *req.BurstMultiplier
		}
		if secs < 0 || secs > 24*3600 {
			return r.State(), fmt.Errorf("burst_seconds %d: want 0..86400", secs)
		}
		if err := r.Burst(mult, time.Duration(secs)*time.Second); err != nil {
			return r.State(), err
		}
	}
	return r.State(), nil
}

// AddControlService registers the "loadgen" micro service with its "control" endpoint
// (subject ControlSubject) on nc. It uses the plain connection on purpose: control traffic
// is not part of the traced workload. It returns once the server has the endpoint's
// subscriptions. Stop it with the returned service's Stop.
//
// The endpoint is in a queue group, so with several load generators one of them answers
// each control request.
func (r *Runner) AddControlService(nc *nats.Conn) (micro.Service, error) {
	svc, err := micro.AddService(nc, micro.Config{
		Name:        ControlService,
		Version:     ControlVersion,
		Description: "Load generator: read or change the open-loop rate, start a burst",
		Metadata:    map[string]string{"mode": string(r.cfg.Mode)},
	})
	if err != nil {
		return nil, fmt.Errorf("load: add control service: %w", err)
	}
	err = svc.AddEndpoint(ControlEndpoint, micro.HandlerFunc(r.handleControl),
		micro.WithEndpointSubject(ControlSubject),
		micro.WithEndpointMetadata(map[string]string{
			"request":  `{"rate": float, "burst_multiplier": float, "burst_seconds": int} (empty reads)`,
			"response": "state: mode, rate, effective_rate, burst_*, sent, completed, in_flight, late, dropped",
		}))
	if err != nil {
		_ = svc.Stop()
		return nil, fmt.Errorf("load: add control endpoint: %w", err)
	}
	// Subscriptions reach the server asynchronously: once the flush returns, a request
	// sent from any other connection finds the endpoint.
	if err := nc.FlushTimeout(10 * time.Second); err != nil {
		_ = svc.Stop()
		return nil, fmt.Errorf("load: flush control subscriptions: %w", err)
	}
	return svc, nil
}

func (r *Runner) handleControl(req micro.Request) {
	data := req.Data()
	if len(data) > maxControlBytes {
		_ = req.Error(contracts.CodeTooLarge, fmt.Sprintf("control request over %d bytes", maxControlBytes), nil)
		return
	}
	var cr ControlRequest
	if len(bytes.TrimSpace(data)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cr); err != nil {
			_ = req.Error(contracts.CodeBadRequest, "invalid control request: "+err.Error(), nil)
			return
		}
	}
	state, err := r.Apply(cr)
	if err != nil {
		body, _ := json.Marshal(state)
		_ = req.Error(contracts.CodeBadRequest, err.Error(), body)
		return
	}
	_ = req.RespondJSON(state)
}
