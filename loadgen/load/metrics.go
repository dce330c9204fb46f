package load

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// ScopeName is the instrumentation scope of the loadgen meter.
const ScopeName = "github.com/natsotel/reference/loadgen"

// Attribute keys of the loadgen metrics (and the baggage members the requests carry).
const (
	ScenarioKey = attribute.Key("loadgen.scenario")
	OutcomeKey  = attribute.Key("loadgen.outcome")
)

// Metric names.
const (
	MetricRequestDuration = "loadgen.request.duration"
	MetricRequestsLate    = "loadgen.requests.late"
	MetricRequestsDropped = "loadgen.requests.dropped"
	MetricRateTarget      = "loadgen.rate.target"
)

// durationBuckets are the semantic conventions' advised buckets for messaging durations,
// so loadgen's view lines up with the services' messaging.client.operation.duration.
var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

type instruments struct {
	ok       map[Scenario][]metric.RecordOption // outcome ok, for every scenario; read-only
	sets     sync.Map                           // durationSet -> []metric.RecordOption, made once per other pair
	duration metric.Float64Histogram
	late     metric.Int64Counter
	dropped  metric.Int64Counter
	rate     metric.Registration
}

func newInstruments(mp metric.MeterProvider, targetRate func() (float64, bool)) (*instruments, error) {
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	m := mp.Meter(ScopeName)
	ins := instruments{ok: make(map[Scenario][]metric.RecordOption, len(Scenarios)+1)}
	for _, s := range append(slices.Clone(Scenarios), ScenarioCustom) {
		ins.ok[s] = durationOptions(s, OutcomeOK)
	}
	var err error
	if ins.duration, err = m.Float64Histogram(MetricRequestDuration,
		metric.WithUnit("s"),
		metric.WithDescription("Request latency measured from the intended send time (open loop) or the send (closed loop) to the reply."),
		metric.WithExplicitBucketBoundaries(durationBuckets...)); err != nil {
		return nil, fmt.Errorf("load: %s: %w", MetricRequestDuration, err)
	}
	if ins.late, err = m.Int64Counter(MetricRequestsLate,
		metric.WithUnit("{request}"),
		metric.WithDescription("Open-loop requests sent later than intended by more than the late threshold (default 10 ms).")); err != nil {
		return nil, fmt.Errorf("load: %s: %w", MetricRequestsLate, err)
	}
	if ins.dropped, err = m.Int64Counter(MetricRequestsDropped,
		metric.WithUnit("{request}"),
		metric.WithDescription("Open-loop requests not sent because the concurrency cap was reached.")); err != nil {
		return nil, fmt.Errorf("load: %s: %w", MetricRequestsDropped, err)
	}
	gauge, err := m.Float64ObservableGauge(MetricRateTarget,
		metric.WithUnit("{request}/s"),
		metric.WithDescription("Open-loop target rate in force (burst included)."))
	if err != nil {
		return nil, fmt.Errorf("load: %s: %w", MetricRateTarget, err)
	}
	ins.rate, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		if r, ok := targetRate(); ok {
			o.ObserveFloat64(gauge, r)
		}
		return nil
	}, gauge)
	if err != nil {
		return nil, fmt.Errorf("load: %s callback: %w", MetricRateTarget, err)
	}
	return &ins, nil
}

func scenarioSet(s Scenario) metric.MeasurementOption {
	return metric.WithAttributeSet(attribute.NewSet(ScenarioKey.String(string(s))))
}

type durationSet struct {
	scenario Scenario
	outcome  string
}

// durationOptions are Record's options for the scenario and outcome, as a slice: passing
// it on (opts...) allocates nothing, where Record(ctx, v, opt) makes a new one each call.
func durationOptions(s Scenario, outcome string) []metric.RecordOption {
	return []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(ScenarioKey.String(string(s)), OutcomeKey.String(outcome)))}
}

// recordDuration records d with the scenario and outcome. A success (most requests)
// allocates nothing; other outcomes box their sync.Map key.
func (ins *instruments) recordDuration(ctx context.Context, s Scenario, outcome string, d time.Duration) {
	opts, ok := ins.ok[s]
	if !ok || outcome != OutcomeOK {
		k := durationSet{s, outcome}
		v, found := ins.sets.Load(k)
		if !found {
			v, _ = ins.sets.LoadOrStore(k, durationOptions(s, outcome))
		}
		opts = v.([]metric.RecordOption)
	}
	ins.duration.Record(ctx, d.Seconds(), opts...)
}

func (ins *instruments) close() {
	if ins.rate != nil {
		_ = ins.rate.Unregister()
	}
}
