// Package config holds the configuration templates of the processes the e2e harness runs:
// the OpenTelemetry Collector (otelcol.yaml.tmpl), Prometheus (prometheus.yaml.tmpl) and
// nats-server (nats-server.conf.tmpl; nats-cluster.conf.tmpl for each node of a cluster). They are text/template files embedded into the test
// binary; package harness fills in the ports and paths of one test run.
//
// The collector stands in for what grafana/otel-lgtm does with telemetry: traces go through
// the servicegraph and spanmetrics connectors, configured from the Tempo configuration compose
// mounts into otel-lgtm (deploy/lgtm/tempo-config.yaml, read by harness.LoadTempoGenerator),
// and their output is shaped as Tempo's metrics-generator remote-writes it (Tempo's names and
// labels only: no "failed", job, instance or service_name labels); every metric goes to
// Prometheus' OTLP receiver, and traces, logs and metrics are also written as OTLP JSON lines
// that the tests read back. What the connectors cannot reproduce: Tempo's
// traces_service_graph_request_messaging_system_seconds, and an unmatched CLIENT span without
// a peer attribute, which the connector turns into an edge to "unknown" and Tempo drops. Prometheus mirrors otel-lgtm's docker/prometheus.yaml
// (OTLP receiver, promoted resource attributes, out-of-order window, exemplar storage).
package config

import "embed"

// FS holds the *.tmpl files of this directory.
//
//go:embed *.tmpl
var FS embed.FS
