package probe

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// ScopeName is the instrumentation scope of the probe's meter.
const ScopeName = "github.com/natsotel/reference/loadgen/probe"

// Attribute keys. There are no semantic conventions for NATS micro; these follow the
// nats.* namespace natsotel uses.
const (
	ServiceKey  = attribute.Key("nats.micro.service")
	InstanceKey = attribute.Key("nats.micro.instance")
	EndpointKey = attribute.Key("nats.micro.endpoint")
	// ServerKey is the server_name of the NATS server an instance is connected to.
	ServerKey = attribute.Key("nats.server.name")
)

// Metric names.
const (
	MetricPingDuration   = "nats.micro.ping.duration"
	MetricUp             = "nats.micro.up"
	MetricRequests       = "nats.micro.endpoint.requests"
	MetricErrors         = "nats.micro.endpoint.errors"
	MetricProcessingTime = "nats.micro.endpoint.processing_time.average"
	MetricInFlight       = "nats.micro.endpoint.in_flight"
	MetricInstances      = "nats.micro.instances"
)

// pingBuckets suit a loopback or LAN round trip (100 µs .. 1 s); the semconv messaging
// buckets start at 5 ms, which would put every ping in the first bucket.
var pingBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}

type instruments struct {
	ping metric.Float64Histogram
	reg  metric.Registration
}

func newInstruments(mp metric.MeterProvider, p *Probe) (*instruments, error) {
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	m := mp.Meter(ScopeName)
	var ins instruments
	var err error
	wrap := func(name string, err error) error { return fmt.Errorf("probe: %s: %w", name, err) }
	if ins.ping, err = m.Float64Histogram(MetricPingDuration, metric.WithUnit("s"),
		metric.WithDescription("Round trip of a direct $SRV.PING to one micro service instance."),
		metric.WithExplicitBucketBoundaries(pingBuckets...)); err != nil {
		return nil, wrap(MetricPingDuration, err)
	}
	up, err := m.Int64ObservableGauge(MetricUp, metric.WithUnit("{instance}"),
		metric.WithDescription("1 if the instance answered the last probe, 0 if it missed it (reported until it is forgotten)."))
	if err != nil {
		return nil, wrap(MetricUp, err)
	}
	reqs, err := m.Int64ObservableCounter(MetricRequests, metric.WithUnit("{request}"),
		metric.WithDescription("Requests the endpoint handled, as reported by $SRV.STATS."))
	if err != nil {
		return nil, wrap(MetricRequests, err)
	}
	errs, err := m.Int64ObservableCounter(MetricErrors, metric.WithUnit("{error}"),
		metric.WithDescription("Error replies the endpoint sent, as reported by $SRV.STATS."))
	if err != nil {
		return nil, wrap(MetricErrors, err)
	}
	avg, err := m.Float64ObservableGauge(MetricProcessingTime, metric.WithUnit("s"),
		metric.WithDescription("Average handler processing time, as reported by $SRV.STATS."))
	if err != nil {
		return nil, wrap(MetricProcessingTime, err)
	}
	inflight, err := m.Int64ObservableGauge(MetricInFlight, metric.WithUnit("{request}"),
		metric.WithDescription("Handlers of the endpoint running at the probe, from natsotel's $SRV.STATS data."))
	if err != nil {
		return nil, wrap(MetricInFlight, err)
	}
	perServer, err := m.Int64ObservableGauge(MetricInstances, metric.WithUnit("{instance}"),
		metric.WithDescription("Instances that answered the last probe, by service and by the NATS server they are connected to (only with monitoring URLs)."))
	if err != nil {
		return nil, wrap(MetricInstances, err)
	}
	ins.reg, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		type where struct{ service, server string }
		counts := map[where]int64{}
		for _, in := range p.Instances() {
			if in.Up && len(p.cfg.MonitorURLs) > 0 {
				counts[where{in.Service, in.Server}]++
			}
			v := int64(0)
			if in.Up {
				v = 1
			}
			o.ObserveInt64(up, v, metric.WithAttributeSet(instanceAttrs(&in)))
			for _, e := range in.Endpoints {
				set := metric.WithAttributeSet(attribute.NewSet(
					ServiceKey.String(in.Service), InstanceKey.String(in.ID),
					EndpointKey.String(e.Name), semconv.MessagingDestinationName(e.Subject)))
				o.ObserveInt64(reqs, e.Requests, set)
				o.ObserveInt64(errs, e.Errors, set)
				o.ObserveFloat64(avg, e.AverageProcessingTime.Seconds(), set)
				o.ObserveInt64(inflight, e.InFlight, set)
			}
		}
		for w, n := range counts {
			o.ObserveInt64(perServer, n, metric.WithAttributes(ServiceKey.String(w.service), ServerKey.String(w.server)))
		}
		return nil
	}, up, reqs, errs, avg, inflight, perServer)
	if err != nil {
		return nil, wrap("callback", err)
	}
	return &ins, nil
}

func instanceAttrs(in *Instance) attribute.Set {
	return attribute.NewSet(ServiceKey.String(in.Service), InstanceKey.String(in.ID))
}

func (ins *instruments) close() error {
	if ins.reg == nil {
		return nil
	}
	if err := ins.reg.Unregister(); err != nil {
		return fmt.Errorf("probe: unregister metrics: %w", err)
	}
	return nil
}
