package natsotel

import (
	"errors"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/semconv/v1.43.0/dbconv"
	"go.opentelemetry.io/otel/semconv/v1.43.0/messagingconv"
)

// durationBuckets are the bucket boundaries the messaging and database semantic conventions
// advise for their duration histograms (5 ms to 10 s), below which NATS adds five: a NATS
// request, publish or KeyValue call takes 0.1 to 5 ms, and with the advised buckets alone
// every one of them lands in the first bucket, so a p50 or p99 panel reads "under 5 ms"
// for everything. The generated semconv instruments set no buckets, so natsotel does.
var durationBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025,
	0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// instruments are the metric instruments of one Conn (one MeterProvider).
//
//   - messaging.client.operation.duration (s): Request, Publish, JetStream Publish and Fetch.
//   - messaging.process.duration (s): micro handlers, Subscribe handlers, JetStream Consume/Process.
//   - messaging.client.sent.messages: messages sent by Request and Publish.
//   - messaging.client.consumed.messages: messages handled or fetched.
//   - db.client.operation.duration (s): KeyValue calls.
type instruments struct {
	clientDuration  metric.Float64Histogram
	processDuration metric.Float64Histogram
	sent            metric.Int64Counter
	consumed        metric.Int64Counter
	dbDuration      metric.Float64Histogram
}

func newInstruments(mp metric.MeterProvider) (*instruments, error) {
	m := mp.Meter(scopeName, metric.WithInstrumentationVersion(version), metric.WithSchemaURL(schemaURL))
	buckets := metric.WithExplicitBucketBoundaries(durationBuckets...)
	var errs []error
	cd, err := messagingconv.NewClientOperationDuration(m, buckets)
	errs = append(errs, err)
	pd, err := messagingconv.NewProcessDuration(m, buckets)
	errs = append(errs, err)
	sent, err := messagingconv.NewClientSentMessages(m)
	errs = append(errs, err)
	cons, err := messagingconv.NewClientConsumedMessages(m)
	errs = append(errs, err)
	dd, err := dbconv.NewClientOperationDuration(m, buckets)
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &instruments{
		clientDuration:  cd.Inst(),
		processDuration: pd.Inst(),
		sent:            sent.Inst(),
		consumed:        cons.Inst(),
		dbDuration:      dd.Inst(),
	}, nil
}
