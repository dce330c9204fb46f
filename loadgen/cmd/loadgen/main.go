// Command loadgen sends order traffic to the shop over NATS: open loop at a target rate
// (default) or closed loop at maximum throughput, with a weighted mix of scenarios. It
// prints progress every few seconds and a summary at the end, exports traces and metrics
// over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set, and serves the "loadgen.control"
// micro endpoint to change the rate at runtime:
//
//	nats req loadgen.control '{"rate": 100}'
//	nats req loadgen.control '{"burst_multiplier": 5, "burst_seconds": 20}'
//
// Run `loadgen -h` for flags and environment variables.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/natsotel/reference/loadgen/load"
	"github.com/natsotel/reference/services/app"
)

// version is service.version and the control service's version.
const version = load.ControlVersion

func main() {
	setGCPercent(os.Getenv)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usageHeader = `Usage: loadgen [flags]

Sends order traffic to the shop's "order" service over NATS and reports what came back.
Every order is the root CLIENT span of its own trace under service.name "loadgen", with
baggage synthetic=true and loadgen.scenario=<scenario>.

Scenarios: valid_order, out_of_stock, declined_card, malformed, lookup.

Any other endpoint: -subject sends every request to that subject with the content of the
-payload file, as "nats bench service request" does, e.g.
  loadgen -mode closed -workers 8 -connections 8 -count 100000 -subject inventory.stock -payload stock.json

Environment:
  NATS_URL                     NATS server (default nats://127.0.0.1:4222)
  NATS_CREDS | NATS_USER, NATS_PASSWORD
  NATS_INBOX_PREFIX            reply subject prefix (default _INBOX_<NATS_USER>, else _INBOX)
  NATS_RESPONDER_CREDS | NATS_RESPONDER_USER, NATS_RESPONDER_PASSWORD
                               serve -control as this user (may only answer into inboxes)
  OTEL_EXPORTER_OTLP_ENDPOINT  export traces, metrics and logs over OTLP/HTTP when set
  OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, ... (standard OTel SDK variables)
  LOADGEN_*                    defaults of the flags below, as named in brackets
  GOGC                         garbage collector target percentage (default 400, not Go's 100)

Flags:
`

// gcPercent is the load generator's GOGC unless the environment sets one. Its live heap is
// about 1 MB, so at Go's default of 100 the collector ran at its 4 MB minimum goal: every
// ~600 requests, 60 cycles a second at 10k requests/s, a tenth of the process's CPU in a
// closed loop (marking, sweeping, assists), which the load generator then does not spend
// sending. At 400 it runs a fifth as often, for about 12 MB more resident memory.
const gcPercent = 400

// setGCPercent applies gcPercent unless GOGC (read through getenv) is set, which the Go
// runtime has applied already.
func setGCPercent(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
}

// run is main without the process: testable.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg load.Config
	envErr := cfg.RegisterFlags(fs, getenv)
	control := fs.Bool("control", true, "serve the loadgen.control micro endpoint (rate changes and bursts at runtime)")
	failOnUnexpected := fs.Bool("fail-on-unexpected", false, "exit with status 1 if any request had an unexpected outcome")
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
	if envErr != nil {
		fmt.Fprintln(stderr, "loadgen:", envErr)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "loadgen: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if err := cfg.Validate(); err != nil { // before waiting for NATS
		fmt.Fprintln(stderr, "loadgen:", err)
		return 2
	}

	tel, nc, stop, err := app.StartClient(ctx, "loadgen", version, getenv, stderr)
	if err != nil {
		return 1
	}
	defer stop()
	log := tel.Logger
	conns, closeConns, err := dial(ctx, nc, max(cfg.Connections, 1), getenv, tel)
	if err != nil {
		return 1
	}
	defer closeConns()

	cfg.MeterProvider = tel.MeterProvider
	r, err := load.New(load.Spread(conns...), log, cfg)
	if err != nil {
		log.Error("invalid configuration", "error", err)
		return 2
	}
	if *control {
		// Served as the load generator's responder identity when one is configured
		// (NATS_RESPONDER_USER, see app.ConnectResponder): a user that may only answer
		// into inboxes.
		rc, err := app.ConnectResponder(ctx, "loadgen", getenv, log, nc)
		if err != nil {
			log.Error("cannot connect to NATS as the responder", "error", err)
			return 1
		}
		if rc != nc {
			defer rc.Close()
		}
		svc, err := r.AddControlService(rc)
		if err != nil {
			log.Error("control service", "error", err)
			return 1
		}
		defer func() { _ = svc.Stop() }()
		log.Info("control endpoint ready", "subject", load.ControlSubject)
	}

	sum, err := r.Run(ctx)
	if err != nil {
		log.Error("load run failed", "error", err)
		return 1
	}
	fmt.Fprint(stdout, sum.String())
	if *failOnUnexpected && sum.Unexpected > 0 {
		return 1
	}
	return 0
}
