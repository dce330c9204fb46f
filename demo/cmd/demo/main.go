// Command demo runs the whole shop in one process, without Docker: an embedded NATS
// server with JetStream (temporary storage), the order, inventory and billing services
// (each with its own OpenTelemetry providers and service.name), the load generator and the
// micro probe, and the nats-hops bridge (the server's message trace events as spans).
// Every few seconds it prints the live service graph computed from the spans
// with Tempo's pairing rule. With OTEL_EXPORTER_OTLP_ENDPOINT set, everything is also
// exported there (for example to grafana/otel-lgtm).
//
//	make demo                       # or: cd demo && go run ./cmd/demo
//	make demo ARGS='-rate 100 -replicas 3 -logs'
//
// The terminal shows the banner, a legend, the graph and warnings; -logs adds every
// component's log lines. Ctrl-C (or SIGTERM) stops everything cleanly and exits 0; a
// second Ctrl-C exits at once.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/natsotel/reference/demo/servicegraph"
	"github.com/natsotel/reference/demo/stack"
	"github.com/natsotel/reference/loadgen/load"
	"github.com/natsotel/reference/loadgen/probe"
	"github.com/natsotel/reference/services/telemetry"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, restore the default behaviour: a second one kills.
		<-ctx.Done()
		stop()
	}()
	// Each component names itself; OTEL_SERVICE_NAME, read by every component's SDK,
	// would give them all one name.
	_ = os.Unsetenv("OTEL_SERVICE_NAME")
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// DefaultPort is the NATS port the demo listens on, so the nats CLI works without flags.
const DefaultPort = 4222

// defaultPort is DefaultPort; tests make it a port they hold busy.
var defaultPort = DefaultPort

// graphTTL is how long a span waits for its other side (Tempo's default wait).
const graphTTL = 10 * time.Second

const usageHeader = `Usage: demo [flags]

Runs an embedded NATS server with JetStream, the order, inventory and billing services,
the load generator and the micro probe in one process, and prints the live service graph
every few seconds. Ctrl-C stops it cleanly.

The NATS server listens on 127.0.0.1:4222 unless -port says otherwise; if 4222 is busy
and -port was not given, a random free port is used instead and a WARN line with its URL
is printed above every graph.

The terminal shows the graph, a legend and warnings; the components' INFO logs are
exported (with OTEL_EXPORTER_OTLP_ENDPOINT) but printed only with -logs.

Environment:
  LOG_LEVEL                    default of -log-level
  OTEL_EXPORTER_OTLP_ENDPOINT  also export traces, metrics and logs over OTLP/HTTP
                               (e.g. http://localhost:4318 for grafana/otel-lgtm)
  OTEL_RESOURCE_ATTRIBUTES, OTEL_METRIC_EXPORT_INTERVAL, ... standard SDK variables
                               (OTEL_SERVICE_NAME is ignored: each component sets its own)

Flags:
`

type options struct {
	host          string
	port          int
	replicas      int
	rate          float64
	mix           string
	duration      time.Duration
	graphInterval time.Duration
	graphWindow   time.Duration
	probeInterval time.Duration
	storeDir      string
	logLevel      slog.Level
	logs          bool
	hops          bool
	takeTerminal  bool
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.host, "host", "127.0.0.1", "address the NATS server listens on")
	fs.IntVar(&o.port, "port", defaultPort, "NATS port; 0 picks a random free port")
	fs.IntVar(&o.replicas, "replicas", 1, "number of inventory instances")
	fs.Float64Var(&o.rate, "rate", 20, "load generator target rate (orders per second); change it live with nats req loadgen.control")
	fs.StringVar(&o.mix, "mix", load.DefaultMix().String(), "load generator scenario weights")
	fs.DurationVar(&o.duration, "duration", 0, "stop after this long (0: run until Ctrl-C)")
	fs.DurationVar(&o.graphInterval, "graph-interval", 5*time.Second, "how often the service graph is printed")
	fs.DurationVar(&o.graphWindow, "graph-window", 30*time.Second, "window of the graph's rate and error share")
	fs.DurationVar(&o.probeInterval, "probe-interval", 5*time.Second, "micro probe interval")
	fs.BoolVar(&o.hops, "hops", true, "trace the server's hops (msg_trace) and record them as spans of service nats-hops")
	fs.StringVar(&o.storeDir, "store", "", "JetStream directory (default: a temporary directory removed on exit)")
	fs.TextVar(&o.logLevel, "log-level", slog.LevelInfo, "log level of every component (debug, info, warn, error) [$LOG_LEVEL]")
	fs.BoolVar(&o.logs, "logs", false, "print every component's logs on stderr (default: warnings and errors only)")
	fs.BoolVar(&o.takeTerminal, "take-terminal", false, "take the terminal's foreground process group, so Ctrl-C reaches the demo alone, not the make that started it (make demo sets this; make then exits 0)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageHeader)
		fs.PrintDefaults()
	}
	if v := getenv("LOG_LEVEL"); v != "" {
		if err := o.logLevel.UnmarshalText([]byte(v)); err != nil {
			fmt.Fprintf(stderr, "demo: LOG_LEVEL=%q: want debug, info, warn or error\n", v)
			return 2
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	mix, err := load.ParseMix(o.mix)
	if err != nil {
		fmt.Fprintln(stderr, "demo:", err)
		return 2
	}
	portSet := false
	fs.Visit(func(f *flag.Flag) { portSet = portSet || f.Name == "port" })
	port, busy, err := choosePort(o.host, o.port, portSet)
	if err != nil {
		fmt.Fprintln(stderr, "demo:", err)
		return 1
	}
	release := func() {}
	if o.takeTerminal {
		release = takeTerminal()
		defer release()
	}
	if o.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}

	logs := stderr
	if !o.logs {
		logs = warningsOnly{stderr}
	}
	graph := servicegraph.New(servicegraph.Config{Window: o.graphWindow, TTL: graphTTL})
	hops := newHopTimes()
	st, err := stack.Start(ctx, stack.Config{
		Host:              o.host,
		Port:              port,
		StoreDir:          o.storeDir,
		InventoryReplicas: o.replicas,
		Stderr:            logs,
		LogLevel:          o.logLevel,
		Telemetry: func(service string, tc *telemetry.Config) {
			tc.SpanProcessors = append(tc.SpanProcessors, graph)
			if service == stack.HopsService {
				tc.SpanProcessors = append(tc.SpanProcessors, hops)
			}
		},
		Load:  &load.Config{Rate: o.rate, Mix: mix},
		Probe: &probe.Config{Interval: o.probeInterval},
		Hops:  o.hops,
	})
	if err != nil {
		fmt.Fprintln(stderr, "demo:", err)
		return 1
	}
	var warning string
	if busy != nil {
		warning = fmt.Sprintf("WARN port %d is busy (%v): NATS listens on %s instead; give the nats CLI --server %s (or free %d, or pick one with -port)",
			o.port, busy, st.URL(), st.URL(), o.port)
		fmt.Fprintln(stdout, warning)
	}
	printBanner(stdout, st, getenv)
	printLegend(stdout, o, st.URL())

	t := time.NewTicker(o.graphInterval)
	defer t.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-t.C:
			if warning != "" {
				fmt.Fprintln(stdout, warning)
			}
			printGraph(stdout, graph.Snapshot(), st.Probe, hops)
		}
	}

	release() // from here on, a second Ctrl-C reaches make too and ends both at once
	fmt.Fprintln(stdout, "\nstopping...")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer cancel()
	stopErr := st.Stop(sctx)
	printGraph(stdout, graph.Snapshot(), nil, hops)
	if sum, ok := st.LoadSummary(); ok {
		fmt.Fprint(stdout, sum.String())
	}
	if stopErr != nil {
		fmt.Fprintln(stderr, "demo:", stopErr)
		return 1
	}
	return 0
}

// choosePort returns the port to listen on: port itself if free (or if the user asked for
// it explicitly, in which case a busy port is an error), else a random free one, with why
// port could not be used (busy).
func choosePort(host string, port int, explicit bool) (_ int, busy, _ error) {
	if port == 0 {
		return server.RANDOM_PORT, nil, nil
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err == nil {
		_ = l.Close()
		return port, nil, nil
	}
	if explicit {
		return 0, nil, fmt.Errorf("port %d: %w", port, err)
	}
	return server.RANDOM_PORT, err, nil
}

func printBanner(w io.Writer, st *stack.Stack, getenv func(string) string) {
	url := st.URL()
	fmt.Fprintf(w, `
NATS server (JetStream in %s): %s
  nats --server %s micro ls
  nats --server %s micro stats order
  nats --server %s req loadgen.control '{"rate": 100}'
  nats --server %s req loadgen.control '{"burst_multiplier": 5, "burst_seconds": 20}'
  nats --server %s req billing.control '{"decline_share": 0.3}'
`, st.StoreDir(), url, url, url, url, url, url)
	if ep := getenv("OTEL_EXPORTER_OTLP_ENDPOINT"); ep != "" {
		fmt.Fprintf(w, "Exporting traces, metrics and logs to %s\n", ep)
	} else {
		fmt.Fprintln(w, "OTEL_EXPORTER_OTLP_ENDPOINT is not set: nothing is exported, the graph below is computed in process")
	}
	fmt.Fprintln(w)
}

func printGraph(w io.Writer, snap servicegraph.Snapshot, p *probe.Probe, hops *hopTimes) {
	fmt.Fprintf(w, "── service graph at %s (server-side latency) ──\n", snap.At.Format(time.TimeOnly))
	_ = servicegraph.Render(w, snap)
	hops.print(w)
	if p == nil {
		return
	}
	var parts []string
	for _, in := range p.Instances() {
		state := "up " + in.PingRTT.Round(time.Microsecond).String()
		if !in.Up {
			state = fmt.Sprintf("DOWN (missed %d)", in.Missed)
		}
		parts = append(parts, fmt.Sprintf("%s/%s %s", in.Service, shortID(in.ID), state))
	}
	if len(parts) > 0 {
		fmt.Fprintf(w, "micro instances: %s\n", strings.Join(parts, ", "))
	}
	fmt.Fprintln(w)
}

func shortID(id string) string {
	if len(id) > 6 {
		return id[len(id)-6:]
	}
	return id
}
