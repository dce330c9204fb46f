package load

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/trace"

	"github.com/natsotel/reference/natsotel"
	"github.com/natsotel/reference/services/contracts"
)

// Requester sends one request and waits for its reply. *natsotel.Conn implements it; its
// Request makes the CLIENT span every order starts from.
type Requester interface {
	Request(ctx context.Context, subject string, data []byte) (*nats.Msg, error)
}

var _ Requester = (*natsotel.Conn)(nil)

// Baggage members every request carries, so downstream spans and logs can tell synthetic
// traffic apart (services/telemetry copies them onto every span and log record), and the
// one requests sent during a burst carry besides, so a trace says it was part of one.
const (
	BaggageSynthetic = "synthetic"
	BaggageScenario  = "loadgen.scenario"
	BaggageBurst     = "loadgen.burst" // the burst's rate multiplier, e.g. "3"
)

// Runner generates load. Create it with New, start it with Run (once); while it runs,
// SetRate, Burst, State and Summary may be called from any goroutine.
type Runner struct {
	cfg     Config
	conn    Requester
	log     *slog.Logger
	gen     *generator
	st      *stats
	ins     *instruments
	baggage map[Scenario]baggage.Baggage
	custom  *request // every request when Config.Subject is set

	ran     atomic.Bool
	changed chan struct{} // wakes the open-loop scheduler after SetRate or Burst

	// scheduled, if set (tests only), runs in the open-loop scheduler after each request
	// was sent or dropped, with the number scheduled so far.
	scheduled func(n int64)

	mu         sync.Mutex
	rate       float64
	burstMult  float64
	burstUntil time.Time
	burstBag   baggage.Member // BaggageBurst with burstMult, made once per burst
	started    time.Time
	finished   time.Time
}

// Run is New followed by Runner.Run.
func Run(ctx context.Context, conn *natsotel.Conn, log *slog.Logger, cfg Config) (Summary, error) {
	r, err := New(conn, log, cfg)
	if err != nil {
		return Summary{}, err
	}
	return r.Run(ctx)
}

// New validates cfg and prepares a Runner; log may be nil (no logs).
func New(conn Requester, log *slog.Logger, cfg Config) (*Runner, error) {
	if conn == nil {
		return nil, errors.New("load: nil connection")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	r := &Runner{
		cfg:     cfg,
		conn:    conn,
		log:     log,
		gen:     newGenerator(cfg.Mix, seed),
		st:      newStats(max(cfg.KeepIDs, 0)),
		baggage: make(map[Scenario]baggage.Baggage, len(Scenarios)),
		changed: make(chan struct{}, 1),
		rate:    cfg.Rate,
	}
	if cfg.Subject != "" {
		r.custom = &request{scenario: ScenarioCustom, subject: cfg.Subject, body: cfg.Payload, expect: []string{OutcomeOK}}
	}
	for _, s := range append(slices.Clone(Scenarios), ScenarioCustom) {
		b, err := scenarioBaggage(s)
		if err != nil {
			return nil, err
		}
		r.baggage[s] = b
	}
	ins, err := newInstruments(cfg.MeterProvider, func() (float64, bool) {
		if r.cfg.Mode != ModeOpen {
			return 0, false
		}
		return r.effectiveRate(time.Now()), true
	})
	if err != nil {
		return nil, err
	}
	r.ins = ins
	return r, nil
}

func scenarioBaggage(s Scenario) (baggage.Baggage, error) {
	syn, err := baggage.NewMemberRaw(BaggageSynthetic, "true")
	if err != nil {
		return baggage.Baggage{}, fmt.Errorf("load: baggage: %w", err)
	}
	sc, err := baggage.NewMemberRaw(BaggageScenario, string(s))
	if err != nil {
		return baggage.Baggage{}, fmt.Errorf("load: baggage: %w", err)
	}
	b, err := baggage.New(syn, sc)
	if err != nil {
		return baggage.Baggage{}, fmt.Errorf("load: baggage: %w", err)
	}
	return b, nil
}

// Run sends requests until ctx is canceled or a Duration or Count limit is reached, waits
// for the requests in flight (each bounded by Config.Timeout; they are not canceled with
// ctx), logs the summary and returns it. Cancellation is a normal way to stop and is not
// an error. Run may be called once.
func (r *Runner) Run(ctx context.Context) (Summary, error) {
	if !r.ran.CompareAndSwap(false, true) {
		return Summary{}, errors.New("load: Runner.Run called twice")
	}
	defer r.ins.close()
	start := time.Now()
	r.mu.Lock()
	r.started = start
	r.mu.Unlock()

	// Requests outlive ctx (so a stop lets them finish) and never have a parent span: the
	// natsotel CLIENT span of each order is the root of its trace.
	reqCtx := trace.ContextWithSpanContext(context.WithoutCancel(ctx), trace.SpanContext{})
	bagCtx := make(map[Scenario]context.Context, len(r.baggage))
	for s, b := range r.baggage {
		bagCtx[s] = baggage.ContextWithBaggage(reqCtx, b)
	}

	what := []any{"mix", r.cfg.Mix.String()}
	if r.custom != nil {
		what = []any{"subject", r.cfg.Subject, "payload_bytes", len(r.cfg.Payload)}
	}
	r.log.Info("loadgen starting", append([]any{"mode", r.cfg.Mode, "rate", r.cfg.Rate, "workers", r.cfg.Workers,
		"concurrency", r.cfg.Concurrency, "duration", r.cfg.Duration, "count", r.cfg.Count}, what...)...)

	if r.cfg.Mode == ModeOpen {
		// Late and dropped start at 0 for every scenario sent, so their series exist (and
		// dashboards show 0, not "No data") before anything goes wrong.
		for _, s := range r.scenarios() {
			r.ins.late.Add(context.Background(), 0, scenarioSet(s))
			r.ins.dropped.Add(context.Background(), 0, scenarioSet(s))
		}
	}
	stopProgress := r.startProgress(start)
	if r.cfg.Mode == ModeClosed {
		r.runClosed(ctx, bagCtx, start)
	} else {
		r.runOpen(ctx, bagCtx, start)
	}
	stopProgress()

	r.mu.Lock()
	r.finished = time.Now()
	r.mu.Unlock()
	sum := r.Summary()
	r.log.Info("loadgen finished", "summary", sum)
	return sum, nil
}

// scenarios returns the scenarios this run sends.
func (r *Runner) scenarios() []Scenario {
	if r.custom != nil {
		return []Scenario{ScenarioCustom}
	}
	var ss []Scenario
	for _, s := range Scenarios {
		if r.cfg.Mix[s] > 0 {
			ss = append(ss, s)
		}
	}
	return ss
}

// next returns the next request to send.
func (r *Runner) next() request {
	if r.custom != nil {
		return *r.custom
	}
	return r.gen.nextRequest()
}

// runOpen is the open-loop scheduler: request i is due at its intended time, one interval
// (1/rate, at the rate in force) after request i-1, whatever happened to earlier requests.
// When the scheduler falls behind it sends the overdue requests at once (counted late) and
// their latency includes the delay.
func (r *Runner) runOpen(ctx context.Context, bagCtx map[Scenario]context.Context, start time.Time) {
	sem := make(chan struct{}, r.cfg.Concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var end time.Time
	if r.cfg.Duration > 0 {
		// The run ends on the clock: a deadline on the scheduling context, so that no
		// wait (a paused rate, a schedule that fell behind at a high rate) outlives it.
		// Comparing only intended times let a paused 90 s run go on for 11 minutes.
		end = start.Add(r.cfg.Duration)
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, end)
		defer cancel()
	}
	next, prev := start, start
	for {
		if r.cfg.Count > 0 && r.st.scheduled.Load() >= r.cfg.Count {
			return
		}
		if !end.IsZero() && !next.Before(end) {
			return
		}
		// Wait for the intended time; a rate change recomputes it.
		if d := time.Until(next); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			case <-r.changed:
				timer.Stop()
				next = r.reschedule(ctx, prev)
				continue
			}
		}
		if ctx.Err() != nil {
			return
		}

		intended := next
		r.st.scheduled.Add(1)
		req := r.next()
		select {
		case sem <- struct{}{}:
		default:
			r.st.dropped.Add(1)
			r.ins.dropped.Add(context.Background(), 1, scenarioSet(req.scenario))
			r.afterSchedule()
			prev, next = intended, r.advance(ctx, intended)
			continue
		}
		if time.Since(intended) > r.cfg.LateThreshold {
			r.st.late.Add(1)
			r.ins.late.Add(context.Background(), 1, scenarioSet(req.scenario))
		}
		r.st.sent.Add(1)
		r.st.inFlight.Add(1)
		wg.Go(func() {
			defer func() { <-sem }()
			r.do(bagCtx, req, intended)
		})
		r.afterSchedule()
		prev, next = intended, r.advance(ctx, intended)
	}
}

func (r *Runner) afterSchedule() {
	if r.scheduled != nil {
		r.scheduled(r.st.scheduled.Load())
	}
}

// advance returns the intended time of the request after the one due at prev. At rate 0
// it waits for a rate change and restarts the schedule from then.
func (r *Runner) advance(ctx context.Context, prev time.Time) time.Time {
	rate := r.effectiveRate(prev)
	if rate > 0 {
		return prev.Add(interval(rate))
	}
	return r.waitForRate(ctx)
}

// reschedule recomputes the next intended time after a rate change: one new interval
// after the previous request, but never in the past (a rate change restarts the schedule,
// it does not ask for a catch-up of requests the old rate never intended).
func (r *Runner) reschedule(ctx context.Context, prev time.Time) time.Time {
	now := time.Now()
	rate := r.effectiveRate(now)
	if rate <= 0 {
		return r.waitForRate(ctx)
	}
	return later(prev.Add(interval(rate)), now)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// waitForRate blocks while the rate is 0 (or until ctx ends) and returns the time sending
// resumes.
func (r *Runner) waitForRate(ctx context.Context) time.Time {
	for r.effectiveRate(time.Now()) <= 0 {
		select {
		case <-ctx.Done():
			return time.Now()
		case <-r.changed:
		}
	}
	return time.Now()
}

func interval(rate float64) time.Duration {
	d := time.Duration(float64(time.Second) / rate)
	return max(d, 1) // a rate of +Inf still advances
}

// runClosed runs Workers loops back to back until a limit or ctx ends.
func (r *Runner) runClosed(ctx context.Context, bagCtx map[Scenario]context.Context, start time.Time) {
	var wg sync.WaitGroup
	for range r.cfg.Workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				if r.cfg.Duration > 0 && time.Since(start) >= r.cfg.Duration {
					return
				}
				if n := r.st.scheduled.Add(1); r.cfg.Count > 0 && n > r.cfg.Count {
					r.st.scheduled.Add(-1)
					return
				}
				req := r.next()
				r.st.sent.Add(1)
				r.st.inFlight.Add(1)
				r.do(bagCtx, req, time.Now())
			}
		})
	}
	wg.Wait()
}

// maxDetail bounds the error text kept for unexpected samples.
const maxDetail = 200

// do sends req and records its outcome, with latency measured from intended. bagCtx holds
// base with each scenario's baggage, made once per run.
func (r *Runner) do(bagCtx map[Scenario]context.Context, req request, intended time.Time) {
	defer r.st.inFlight.Add(-1)
	base := bagCtx[req.scenario]
	if r.cfg.Mode == ModeOpen {
		if m, ok := r.burstAt(intended); ok {
			bag, _ := r.baggage[req.scenario].SetMember(m)
			base = baggage.ContextWithBaggage(base, bag)
		}
	}
	var reply *nats.Msg
	var err error
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(base, r.cfg.Timeout)
		reply, err = r.conn.Request(ctx, req.subject, req.body)
		cancel()
		if !req.retry || attempt >= r.cfg.CreateRetries || !outcomeUnknown(err) {
			break
		}
		r.st.retried.Add(1)
	}
	latency := time.Since(intended)

	res := result{req: req, outcome: Outcome(err), latency: latency}
	if err != nil {
		res.detail = err.Error()
		if len(res.detail) > maxDetail {
			res.detail = res.detail[:maxDetail] + "..."
		}
	}
	if req.subject == contracts.SubjectOrderCreate {
		var data []byte
		if reply != nil {
			data = reply.Data
		}
		var se *natsotel.ServiceError
		if errors.As(err, &se) && len(se.Data) > 0 {
			data = se.Data
		}
		res.orderID, res.status = orderOf(data, err != nil)
		r.gen.remember(res.orderID)
	}
	r.st.record(res)
	r.ins.recordDuration(context.Background(), req.scenario, res.outcome, latency)
}

// outcomeUnknown reports whether a create's error leaves its order's outcome unknown: a
// timeout, or a 503 whose body is the order still pending. Sending the create again with
// the same idempotency key then answers with that order.
func outcomeUnknown(err error) bool {
	if Outcome(err) == OutcomeTimeout {
		return true
	}
	var se *natsotel.ServiceError
	if !errors.As(err, &se) || se.CodeText != contracts.CodeUnavailable {
		return false
	}
	var o contracts.Order
	return json.Unmarshal(se.Data, &o) == nil && o.Status == contracts.OrderPending
}

// orderOf reads the order a create reply (or error reply body) describes. Failed orders
// come back as micro errors (409, 402, ...) whose body is the order.
func orderOf(data []byte, isError bool) (string, orderStatus) {
	if len(data) == 0 || data[0] != '{' {
		return "", statusUnknown
	}
	var o contracts.Order
	if json.Unmarshal(data, &o) != nil || o.ID == "" {
		return "", statusUnknown
	}
	switch {
	case o.Status == contracts.OrderConfirmed && !isError:
		return o.ID, statusConfirmed
	case o.Status == contracts.OrderFailed:
		return o.ID, statusFailed
	default:
		// Pending (the outcome could not be stored yet: a 503 with the order) or odd.
		return o.ID, statusUnknown
	}
}

// burstAt returns the baggage member of the burst in progress at t, if there is one.
func (r *Runner) burstAt(t time.Time) (baggage.Member, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.burstBag, t.Before(r.burstUntil)
}

// effectiveRate is the open-loop rate in force at t: the base rate, multiplied during a
// burst.
func (r *Runner) effectiveRate(t time.Time) float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t.Before(r.burstUntil) {
		return r.rate * r.burstMult
	}
	return r.rate
}

func (r *Runner) notify() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// SetRate changes the open-loop base rate (requests per second; 0 pauses). It fails in
// closed-loop mode.
func (r *Runner) SetRate(rate float64) error {
	if r.cfg.Mode != ModeOpen {
		return errors.New("load: the rate applies to open-loop mode only")
	}
	if err := checkRate(rate); err != nil {
		return fmt.Errorf("load: %w", err)
	}
	r.mu.Lock()
	old := r.rate
	r.rate = rate
	r.mu.Unlock()
	r.log.Info("loadgen rate changed", "from", old, "to", rate)
	r.notify()
	return nil
}

// Burst multiplies the open-loop rate by multiplier for d, then returns to the base rate.
// A new burst replaces the current one; d <= 0 ends the current burst.
func (r *Runner) Burst(multiplier float64, d time.Duration) error {
	if r.cfg.Mode != ModeOpen {
		return errors.New("load: bursts apply to open-loop mode only")
	}
	if d > 0 && !(multiplier > 0 && multiplier <= MaxBurstMultiplier) {
		return fmt.Errorf("load: burst multiplier %v: want a number above 0 and at most %v", multiplier, MaxBurstMultiplier)
	}
	var bag baggage.Member
	if d > 0 {
		var err error
		if bag, err = baggage.NewMemberRaw(BaggageBurst, strconv.FormatFloat(multiplier, 'g', -1, 64)); err != nil {
			return fmt.Errorf("load: burst baggage: %w", err)
		}
	}
	r.mu.Lock()
	if d > 0 {
		r.burstMult = multiplier
		r.burstUntil = time.Now().Add(d)
	} else {
		r.burstMult = 0
		r.burstUntil = time.Time{}
	}
	r.burstBag = bag
	r.mu.Unlock()
	if d > 0 {
		r.log.Info("loadgen burst", "multiplier", multiplier, "for", d)
	} else {
		r.log.Info("loadgen burst ended")
	}
	r.notify()
	return nil
}

// State is the runtime state the control endpoint reports.
type State struct {
	Mode Mode `json:"mode"`
	// Rate is the base open-loop rate; EffectiveRate includes a burst in progress.
	Rate          float64 `json:"rate"`
	EffectiveRate float64 `json:"effective_rate"`
	// BurstMultiplier and BurstRemainingSeconds describe a burst in progress.
	BurstMultiplier       float64 `json:"burst_multiplier,omitempty"`
	BurstRemainingSeconds float64 `json:"burst_remaining_seconds,omitempty"`
	Sent                  int64   `json:"sent"`
	Completed             int64   `json:"completed"`
	InFlight              int64   `json:"in_flight"`
	Late                  int64   `json:"late"`
	Dropped               int64   `json:"dropped"`
}

// State returns the current rate settings and counters.
func (r *Runner) State() State {
	now := time.Now()
	r.mu.Lock()
	s := State{Mode: r.cfg.Mode, Rate: r.rate, EffectiveRate: r.rate}
	if now.Before(r.burstUntil) {
		s.BurstMultiplier = r.burstMult
		s.BurstRemainingSeconds = math.Round(r.burstUntil.Sub(now).Seconds()*10) / 10
		s.EffectiveRate = r.rate * r.burstMult
	}
	r.mu.Unlock()
	if r.cfg.Mode != ModeOpen {
		s.Rate, s.EffectiveRate = 0, 0
	}
	s.Sent = r.st.sent.Load()
	s.InFlight = r.st.inFlight.Load()
	s.Late = r.st.late.Load()
	s.Dropped = r.st.dropped.Load()
	s.Completed = s.Sent - s.InFlight
	return s
}

// Summary returns the run so far (or the final summary once Run returned).
func (r *Runner) Summary() Summary {
	sum := r.st.summary()
	r.mu.Lock()
	sum.Start = r.started
	end := r.finished
	if end.IsZero() {
		end = time.Now()
	}
	if !r.started.IsZero() {
		sum.Elapsed = end.Sub(r.started)
	}
	sum.TargetRate = r.rate
	r.mu.Unlock()
	sum.Mode = r.cfg.Mode
	if sum.Mode != ModeOpen {
		sum.TargetRate = 0
	}
	if sum.Elapsed > 0 {
		sum.AchievedRate = float64(sum.Completed) / sum.Elapsed.Seconds()
	}
	return sum
}

// startProgress logs a progress line every Config.Progress until the returned func is
// called.
func (r *Runner) startProgress(start time.Time) (stop func()) {
	if r.cfg.Progress < 0 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(r.cfg.Progress)
		defer t.Stop()
		last := start
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				w := r.st.takeWindow()
				sum := r.st.summary()
				rate := float64(w.completed) / now.Sub(last).Seconds()
				last = now
				r.log.Info("loadgen progress",
					"elapsed", now.Sub(start).Round(time.Second),
					"target_rate", r.effectiveRate(now),
					"rate", round1(rate),
					"sent", sum.Sent, "in_flight", sum.InFlight,
					"late", sum.Late, "dropped", sum.Dropped, "unexpected", sum.Unexpected,
					"outcomes", formatCounts(sum.Outcomes),
					"p50", w.latency.P50, "p99", w.latency.P99)
			}
		}
	})
	return func() { close(done); wg.Wait() }
}
