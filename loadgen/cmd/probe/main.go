// Command probe watches NATS micro services: every few seconds it discovers instances with
// $SRV.PING, measures each one's ping round trip, reads $SRV.STATS and exports
// nats.micro.* metrics over OTLP (service.name "probe") when OTEL_EXPORTER_OTLP_ENDPOINT
// is set. See package github.com/natsotel/reference/loadgen/probe for the metrics.
//
// Run `probe -h` for flags and environment variables.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/natsotel/reference/loadgen/probe"
	"github.com/natsotel/reference/services/app"
)

const version = "0.1.0"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stderr)
	stop()
	os.Exit(code)
}

const usageHeader = `Usage: probe [flags]

Discovers NATS micro services ($SRV.PING), pings every instance, reads its stats
($SRV.STATS) and exports nats.micro.ping.duration, nats.micro.up and
nats.micro.endpoint.{requests,errors,processing_time.average} as OTel metrics.
Its own NATS traffic is not traced.

Environment:
  NATS_URL                     NATS server (default nats://127.0.0.1:4222)
  NATS_CREDS | NATS_USER, NATS_PASSWORD
  NATS_INBOX_PREFIX            reply subject prefix (default _INBOX_<NATS_USER>, else _INBOX)
  OTEL_EXPORTER_OTLP_ENDPOINT  export metrics and logs over OTLP/HTTP when set
  OTEL_METRIC_EXPORT_INTERVAL  metric export interval in ms (SDK default 60000)
  PROBE_INTERVAL, PROBE_WINDOW, PROBE_TIMEOUT, PROBE_MISSED, PROBE_SERVICES,
  PROBE_MONITOR_URLS
                               defaults of the flags below

Flags:
`

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) int {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var envErrs []error
	dur := func(name string, def time.Duration) time.Duration {
		if v := getenv(name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				envErrs = append(envErrs, fmt.Errorf("%s=%q: %w", name, v, err))
				return def
			}
			return d
		}
		return def
	}
	var cfg probe.Config
	fs.DurationVar(&cfg.Interval, "interval", dur("PROBE_INTERVAL", 5*time.Second), "time between probe rounds [$PROBE_INTERVAL]")
	fs.DurationVar(&cfg.Window, "window", dur("PROBE_WINDOW", 500*time.Millisecond), "how long discovery collects $SRV.PING replies [$PROBE_WINDOW]")
	fs.DurationVar(&cfg.Timeout, "timeout", dur("PROBE_TIMEOUT", time.Second), "timeout of each direct ping and stats request [$PROBE_TIMEOUT]")
	missed := 3
	if v := getenv("PROBE_MISSED"); v != "" {
		if _, err := fmt.Sscan(v, &missed); err != nil || missed < 1 {
			envErrs = append(envErrs, fmt.Errorf("PROBE_MISSED=%q: want an integer >= 1", v))
		}
	}
	fs.IntVar(&cfg.MissedLimit, "missed", missed, "missed probes before an instance is forgotten (reported up=0 until then) [$PROBE_MISSED]")
	services := fs.String("services", getenv("PROBE_SERVICES"), "comma-separated micro service names to watch; empty watches all [$PROBE_SERVICES]")
	monitor := fs.String("monitor", getenv("PROBE_MONITOR_URLS"), "comma-separated HTTP monitoring URLs of the NATS servers (http://nats-1:8222,...): report instances per server [$PROBE_MONITOR_URLS]")
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
	if err := errors.Join(envErrs...); err != nil {
		fmt.Fprintln(stderr, "probe:", err)
		return 2
	}
	cfg.Services = splitList(*services)
	cfg.MonitorURLs = splitList(*monitor)
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}

	tel, nc, stop, err := app.StartClient(ctx, "probe", version, getenv, stderr)
	if err != nil {
		return 1
	}
	defer stop()
	log := tel.Logger

	cfg.MeterProvider = tel.MeterProvider
	cfg.Logger = log
	if len(cfg.MonitorURLs) > 0 {
		// One line per round with instances per server, for `docker compose logs probe`.
		cfg.OnRound = func(r probe.Round) { log.Info("micro instances per server", "per_server", fmt.Sprint(r.PerServer)) }
	}
	p, err := probe.New(nc, cfg)
	if err != nil {
		log.Error("invalid configuration", "error", err)
		return 2
	}
	defer p.Close()
	log.Info("probe running", "interval", cfg.Interval, "services", cfg.Services, "monitor", cfg.MonitorURLs)
	if err := p.Run(ctx); err != nil {
		log.Error("probe stopped", "error", err)
		return 1
	}
	return 0
}

// splitList splits a comma-separated list, dropping blanks.
func splitList(v string) []string {
	var out []string
	for s := range strings.SplitSeq(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
