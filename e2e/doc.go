// Package e2e proves the shop's telemetry with the nearest real pipeline that builds from the
// Go module proxy: the service and load generator binaries run as separate processes against
// a real nats-server, export OTLP to a real OpenTelemetry Collector whose servicegraph
// connector implements Tempo's service-graph algorithm, and the collector exports to a real
// Prometheus with its OTLP receiver configured as in grafana/otel-lgtm. The tests then ask
// Prometheus' HTTP API what Grafana would show, and read the collector's exported traces and
// logs.
//
// Run `make e2e` (it runs `make tools` first). The harness lives in package harness, the
// collector, Prometheus and nats-server configuration in package config.
package e2e
