// Package config holds the configuration templates of the processes the e2e harness runs:
// the OpenTelemetry Collector (otelcol.yaml.tmpl), Prometheus (prometheus.yaml.tmpl) and
// nats-server (nats-server.conf.tmpl; nats-cluster.conf.tmpl for each node of a cluster). They are text/template files embedded into the test
// binary; package harness fills in the ports and paths of one test run.
//
// The collector stands in for what grafana/otel-lgtm does with telemetry: traces go through
// the servicegraph and spanmetrics connectors (Tempo's metrics-generator names), every metric
// goes to Prometheus' OTLP receiver, and traces, logs and metrics are also written as OTLP
// JSON lines that the tests read back. Prometheus mirrors otel-lgtm's docker/prometheus.yaml
// (OTLP receiver, promoted resource attributes, out-of-order window, exemplar storage).
package config

import "embed"

// FS holds the *.tmpl files of this directory.
//
//go:embed *.tmpl
var FS embed.FS
