// Command nats-hops turns the message trace events nats-server publishes (ADR-41) into
// spans of the traces the messages belong to, exported over OTLP under service.name
// "nats-hops". See package github.com/natsotel/reference/loadgen/hops for the spans.
//
// Run `nats-hops -h` for flags and environment variables.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/natsotel/reference/loadgen/hops"
	"github.com/natsotel/reference/services/app"
)

const version = "0.1.0"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stderr)
	stop()
	os.Exit(code)
}

const usageHeader = `Usage: nats-hops [flags]

Subscribes to the subject an account's msg_trace sends message trace events to and
records each as a "hop <server>" span, a child of the span of the traced message's
publisher, with one child per step (deliver, store, forward, ...).

The server side (nats-server 2.11+, a named account):
  accounts { SHOP { msg_trace { dest: "nats.hops", sampling: 100 } ... } }
and every user that publishes traced messages may publish to that subject. With several
accounts, run the bridge in the account whose messages cross into the others (their
events come back there): deploy/nats/nats.conf runs it in ORDER, SHOP exporting its own.

Environment:
  NATS_URL                     NATS server (default nats://127.0.0.1:4222)
  NATS_CREDS | NATS_USER, NATS_PASSWORD
  NATS_INBOX_PREFIX            reply subject prefix (default _INBOX_<NATS_USER>, else _INBOX)
  OTEL_EXPORTER_OTLP_ENDPOINT  export the spans (and logs, metrics) over OTLP/HTTP when set
  OTEL_SERVICE_NAME            service.name of the hop spans (default nats-hops)
  HOPS_SUBJECT                 default of -subject

Flags:
`

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) int {
	fs := flag.NewFlagSet("nats-hops", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := getenv("HOPS_SUBJECT")
	if def == "" {
		def = "nats.hops"
	}
	subject := fs.String("subject", def, "the account's msg_trace destination [$HOPS_SUBJECT]")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageHeader)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}

	tel, nc, stop, err := app.StartClient(ctx, "nats-hops", version, getenv, stderr)
	if err != nil {
		return 1
	}
	defer stop()
	log := tel.Logger

	warn := rateLimited(time.Second, func(err error, suppressed int) {
		log.Warn("trace event dropped", "error", err, "suppressed", suppressed)
	})
	b := hops.New(hops.WithTracerProvider(tel.TracerProvider), hops.WithErrorHandler(warn))
	sub, err := b.Subscribe(nc, *subject)
	if err != nil {
		log.Error("cannot subscribe", "error", err)
		return 1
	}
	log.Info("nats-hops running", "subject", *subject)
	<-ctx.Done()
	// Let the events already received become spans before the telemetry is flushed.
	closed := sub.StatusChanged(nats.SubscriptionClosed)
	if err := sub.Drain(); err != nil {
		log.Warn("drain", "error", err)
		return 0
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		log.Warn("drain timed out")
	}
	return 0
}

// rateLimited calls f at most once per interval with the latest error and how many were
// not reported since: forged or broken events cannot flood the log.
func rateLimited(interval time.Duration, f func(err error, suppressed int)) func(error) {
	var mu sync.Mutex
	var last time.Time
	suppressed := 0
	return func(err error) {
		mu.Lock()
		now := time.Now()
		if now.Sub(last) < interval {
			suppressed++
			mu.Unlock()
			return
		}
		n := suppressed
		last, suppressed = now, 0
		mu.Unlock()
		f(err, n)
	}
}
