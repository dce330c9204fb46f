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

// Limits of the control values (and of Config.Rate): beyond them a request is refused
// with 400, not clamped. MaxRate bounds the effective rate too (base rate times a burst
// multiplier).
const (
	MaxRate            = 10_000.0
	MaxBurstMultiplier = 100.0
	MaxBurstSeconds    = 24 * 3600
)

// Apply checks all of req, then applies it to r (rate, then burst) and returns the
// resulting state. A request with any bad value changes nothing: the error says which
// value and what is accepted (the control endpoint answers it as a 400).
func (r *Runner) Apply(req ControlRequest) (State, error) {
	if err := r.check(req); err != nil {
		return r.State(), err
	}
	if req.Rate != nil {
		if err := r.SetRate(*req.Rate); err != nil {
			return r.State(), err
		}
	}
	if req.BurstMultiplier != nil || req.BurstSeconds != nil {
		secs, mult := 0, 0.0
		if req.BurstSeconds != nil {
			secs = *req.BurstSeconds
		}
		if req.BurstMultiplier != nil {
			mult = *req.BurstMultiplier
		}
		if err := r.Burst(mult, time.Duration(secs)*time.Second); err != nil {
			return r.State(), err
		}
	}
	return r.State(), nil
}

// check validates every value of req against the limits and the current base rate.
func (r *Runner) check(req ControlRequest) error {
	if r.cfg.Mode != ModeOpen && (req.Rate != nil || req.BurstMultiplier != nil || req.BurstSeconds != nil) {
		return errors.New("rate and bursts apply to open-loop mode only")
	}
	rate := r.State().Rate
	if req.Rate != nil {
		if err := checkRate(*req.Rate); err != nil {
			return err
		}
		rate = *req.Rate
	}
	if req.BurstSeconds != nil && (*req.BurstSeconds < 0 || *req.BurstSeconds > MaxBurstSeconds) {
		return fmt.Errorf("burst_seconds %d: want 0..%d", *req.BurstSeconds, MaxBurstSeconds)
	}
	if req.BurstSeconds != nil && *req.BurstSeconds > 0 && req.BurstMultiplier == nil {
		return errors.New("burst_seconds needs burst_multiplier")
	}
	if m := req.BurstMultiplier; m != nil {
		if !(*m > 0 && *m <= MaxBurstMultiplier) { // also false for NaN
			return fmt.Errorf("burst_multiplier %v: want a number above 0 and at most %v", *m, MaxBurstMultiplier)
		}
		if rate**m > MaxRate {
			return fmt.Errorf("burst_multiplier %v: rate %v times it is over the maximum rate %v", *m, rate, MaxRate)
		}
	}
	return nil
}

// checkRate validates an open-loop rate.
func checkRate(rate float64) error {
	if !(rate >= 0 && rate <= MaxRate) { // also false for NaN
		return fmt.Errorf("rate %v: want a number from 0 to %v requests per second", rate, MaxRate)
	}
	return nil
}

// decodeControl decodes a control request body: empty (read only) or one JSON object
// with the fields of ControlRequest, none of them null.
func decodeControl(data []byte) (ControlRequest, error) {
	var cr ControlRequest
	if len(bytes.TrimSpace(data)) == 0 {
		return cr, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil || fields == nil {
		return cr, errors.New(`invalid control request: want a JSON object such as {"rate": 50}`)
	}
	for name, v := range fields {
		if string(bytes.TrimSpace(v)) == "null" {
			return cr, fmt.Errorf("invalid control request: %s is null; leave it out to keep the current value", name)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cr); err != nil {
		return cr, fmt.Errorf("invalid control request: %w", err)
	}
	return cr, nil
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
	cr, err := decodeControl(data)
	if err != nil {
		_ = req.Error(contracts.CodeBadRequest, err.Error(), nil)
		return
	}
	state, err := r.Apply(cr)
	if err != nil {
		body, _ := json.Marshal(state)
		_ = req.Error(contracts.CodeBadRequest, err.Error(), body)
		return
	}
	_ = req.RespondJSON(state)
}
