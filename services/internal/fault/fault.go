// Package fault holds the failure scenarios a service can switch on at runtime through
// its control endpoint (contracts.ControlSubject, body contracts.FaultConfig).
//
// Each decision is random with the configured share, drawn from the Injector's own
// generator (seeded per service, never a global). When a fault is applied, the current
// span gets the attribute demo.fault = <scenario> and an event "fault.injected", so a
// trace explains itself; while any scenario is active every server span of the service
// carries demo.fault.active = "<scenario>=<share>,...".
package fault

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/natsotel/reference/services/contracts"
)

// Scenario names a failure scenario; it is the value of the demo.fault attribute.
type Scenario string

const (
	Drop    Scenario = "drop"    // do not reply (DropShare), any service
	Decline Scenario = "decline" // decline a charge (DeclineShare), billing
	Delay   Scenario = "delay"   // add latency to a reservation (DelayShare, Delay, DelayJitter), inventory
	Nak     Scenario = "nak"     // fail an order event so it is redelivered (NakShare), inventory
)

// Span attribute keys and event name (demo-specific, not semantic conventions).
const (
	AttrFault       = attribute.Key("demo.fault")
	AttrFaultActive = attribute.Key("demo.fault.active")
	AttrDelayMillis = attribute.Key("demo.fault.delay_ms")
	EventInjected   = "fault.injected"
)

// MaxDelay bounds Delay + DelayJitter.
const MaxDelay = time.Minute

// Injector decides, per request, whether to inject a fault. Safe for concurrent use.
type Injector struct {
	supported map[Scenario]bool

	mu     sync.Mutex
	cfg    contracts.FaultConfig
	delay  time.Duration
	jitter time.Duration
	active attribute.KeyValue // AttrFaultActive, or the zero KeyValue when nothing is active
	rnd    *mrand.Rand
}

// New returns an Injector that accepts the given scenarios (Drop is always accepted).
// A seed of 0 draws a random seed from crypto/rand.
func New(seed uint64, supported ...Scenario) *Injector {
	if seed == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		seed = binary.LittleEndian.Uint64(b[:])
	}
	in := &Injector{
		supported: map[Scenario]bool{Drop: true},
		rnd:       mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
	}
	for _, s := range supported {
		in.supported[s] = true
	}
	return in
}

// Set validates cfg and puts it in force. Shares must be within [0, 1]; durations are
// Go duration strings, non-negative, Delay + DelayJitter at most MaxDelay; a scenario
// the service does not support must be left at zero.
func (in *Injector) Set(cfg contracts.FaultConfig) error {
	shares := []struct {
		name  string
		s     Scenario
		share float64
	}{
		{"drop_share", Drop, cfg.DropShare},
		{"decline_share", Decline, cfg.DeclineShare},
		{"delay_share", Delay, cfg.DelayShare},
		{"nak_share", Nak, cfg.NakShare},
	}
	var active []string
	for _, sh := range shares {
		if !(sh.share >= 0 && sh.share <= 1) { // also rejects NaN
			return fmt.Errorf("%s must be between 0 and 1", sh.name)
		}
		if sh.share > 0 && !in.supported[sh.s] {
			return fmt.Errorf("%s is not supported by this service", sh.name)
		}
		if sh.share > 0 {
			active = append(active, fmt.Sprintf("%s=%g", sh.s, sh.share))
		}
	}
	delay, err := parseDuration("delay", cfg.Delay)
	if err != nil {
		return err
	}
	jitter, err := parseDuration("delay_jitter", cfg.DelayJitter)
	if err != nil {
		return err
	}
	if delay+jitter > MaxDelay {
		return fmt.Errorf("delay + delay_jitter must be at most %s", MaxDelay)
	}
	if (delay > 0 || jitter > 0) && !in.supported[Delay] {
		return fmt.Errorf("delay is not supported by this service")
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	in.cfg, in.delay, in.jitter = cfg, delay, jitter
	in.active = attribute.KeyValue{}
	if len(active) > 0 {
		in.active = AttrFaultActive.String(strings.Join(active, ","))
	}
	return nil
}

func parseDuration(name, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%s must be a non-negative Go duration such as \"150ms\"", name)
	}
	return d, nil
}

// Config returns the configuration in force.
func (in *Injector) Config() contracts.FaultConfig {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.cfg
}

// Annotate marks the span in ctx with the active scenarios, if any.
func (in *Injector) Annotate(ctx context.Context) {
	in.mu.Lock()
	active := in.active
	in.mu.Unlock()
	if active.Key != "" {
		trace.SpanFromContext(ctx).SetAttributes(active)
	}
}

// roll reports true with probability share. Callers hold in.mu.
func (in *Injector) roll(share float64) bool {
	return share > 0 && in.rnd.Float64() < share
}

// Drop reports whether to leave this request unanswered.
func (in *Injector) Drop(ctx context.Context) bool {
	in.mu.Lock()
	hit := in.roll(in.cfg.DropShare)
	in.mu.Unlock()
	if hit {
		record(ctx, Drop)
	}
	return hit
}

// Decline reports whether to decline this charge.
func (in *Injector) Decline(ctx context.Context) bool {
	in.mu.Lock()
	hit := in.roll(in.cfg.DeclineShare)
	in.mu.Unlock()
	if hit {
		record(ctx, Decline)
	}
	return hit
}

// Nak reports whether to fail this message so it is redelivered.
func (in *Injector) Nak(ctx context.Context) bool {
	in.mu.Lock()
	hit := in.roll(in.cfg.NakShare)
	in.mu.Unlock()
	if hit {
		record(ctx, Nak)
	}
	return hit
}

// Delay returns the latency to add to this reservation (0 for none).
func (in *Injector) Delay(ctx context.Context) time.Duration {
	in.mu.Lock()
	var d time.Duration
	if in.roll(in.cfg.DelayShare) {
		d = in.delay
		if in.jitter > 0 {
			d += time.Duration(in.rnd.Int64N(int64(in.jitter) + 1))
		}
	}
	in.mu.Unlock()
	if d > 0 {
		record(ctx, Delay, AttrDelayMillis.Int64(d.Milliseconds()))
	}
	return d
}

func record(ctx context.Context, s Scenario, extra ...attribute.KeyValue) {
	span := trace.SpanFromContext(ctx)
	span.SetAttributes(AttrFault.String(string(s)))
	span.AddEvent(EventInjected, trace.WithAttributes(append([]attribute.KeyValue{AttrFault.String(string(s))}, extra...)...))
}
