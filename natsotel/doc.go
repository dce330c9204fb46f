// Package natsotel adds OpenTelemetry tracing and metrics to nats.go, micro and JetStream.
package natsotel
