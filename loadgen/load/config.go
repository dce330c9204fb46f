package load

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/metric"
)

// Mode is how requests are paced.
type Mode string

const (
	// ModeOpen sends at a target rate whatever the replies do (open loop).
	ModeOpen Mode = "open"
	// ModeClosed runs Workers loops that each send the next request as soon as the
	// previous one is answered (closed loop, maximum throughput).
	ModeClosed Mode = "closed"
)

// DefaultLateThreshold is how far behind its schedule an open-loop request may be sent
// before it counts as late: 10ms. Late is meant to say the generator could not keep its
// schedule (CPU starved, or the Concurrency cap reached), not to measure timer jitter:
// a Go timer on an idle host wakes within ~0.1ms, but in a busy process (the whole shop in
// `make demo`, a shared CI machine) wake-ups 1-5ms late are routine. The demo at 20/s on
// a shared 2-core host (load average ~10) counted 29% late at 1ms, 11% at 2ms, 5% at 10ms
// and 1% at 20ms: at 1ms, "late" reads like a fault of the shop. Latency is measured from
// the intended time either way, so the threshold hides no delay.
const DefaultLateThreshold = 10 * time.Millisecond

// Config configures a Runner. The zero value runs the DefaultMix open-loop at 20 req/s
// until the context is canceled.
type Config struct {
	// Mode is ModeOpen (default) or ModeClosed.
	Mode Mode
	// Rate is the open-loop target in requests per second; 0 means the default, 20. It can
	// be changed while running (Runner.SetRate, the control endpoint), where 0 pauses.
	Rate float64
	// Duration stops scheduling new requests this long after the start, by the clock
	// (whatever the rate did meanwhile); 0 means no limit.
	Duration time.Duration
	// Count stops after this many requests were scheduled (sent or dropped); 0 means no
	// limit. With neither Duration nor Count the run lasts until its context is canceled.
	Count int64
	// Concurrency caps requests in flight in open loop: a request whose time has come while
	// the cap is reached is not sent and counts as dropped. Default 64.
	Concurrency int
	// Workers is the number of closed-loop workers. Default 8.
	Workers int
	// Mix weights the scenarios. Default DefaultMix().
	Mix Mix
	// Subject, if set, replaces the mix: every request goes to Subject with Payload as its
	// body, as `nats bench service request` sends them, under scenario ScenarioCustom. Only
	// a reply without a micro error is an expected outcome.
	Subject string
	Payload []byte
	// Timeout bounds every request attempt. Default 5s.
	Timeout time.Duration
	// CreateRetries is how many times an order.create that timed out, or was answered
	// 503 with its order still pending, is sent again with the same idempotency key (so
	// it is the same order, charged at most once). Default 2; negative: no retries.
	CreateRetries int
	// LateThreshold: an open-loop request sent more than this after its intended time
	// counts as late. Default DefaultLateThreshold.
	LateThreshold time.Duration
	// Progress is the interval of progress log lines; default 5s, negative disables.
	Progress time.Duration
	// Seed makes the scenario sequence and order contents reproducible; 0 picks a random
	// seed.
	Seed uint64
	// MeterProvider receives the loadgen.* metrics. Default: no metrics.
	MeterProvider metric.MeterProvider
	// Connections is for the caller, not the Runner: how many NATS connections to give it
	// through Spread. 0 means 1; at most MaxConnections.
	Connections int
	// KeepIDs bounds how many order ids Summary.Confirmed and Summary.Failed keep (the
	// first ones); default 100000, negative keeps none.
	KeepIDs int
}

func (c Config) withDefaults() Config {
	if c.Mode == "" {
		c.Mode = ModeOpen
	}
	if c.Rate == 0 && c.Mode == ModeOpen {
		c.Rate = 20
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 64
	}
	if c.Workers <= 0 {
		c.Workers = 8
	}
	if c.Mix.total() == 0 {
		c.Mix = DefaultMix()
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	if c.CreateRetries == 0 {
		c.CreateRetries = 2
	}
	if c.LateThreshold <= 0 {
		c.LateThreshold = DefaultLateThreshold
	}
	if c.Progress == 0 {
		c.Progress = 5 * time.Second
	}
	if c.Connections <= 0 {
		c.Connections = 1
	}
	if c.KeepIDs == 0 {
		c.KeepIDs = 100_000
	}
	return c
}

// Validate reports a configuration that cannot run.
func (c Config) Validate() error {
	var errs []error
	if c.Mode != "" && c.Mode != ModeOpen && c.Mode != ModeClosed {
		errs = append(errs, fmt.Errorf("mode %q: want open or closed", c.Mode))
	}
	if err := checkRate(c.Rate); err != nil {
		errs = append(errs, err)
	}
	if c.Duration < 0 {
		errs = append(errs, fmt.Errorf("duration %v: want >= 0", c.Duration))
	}
	if c.Count < 0 {
		errs = append(errs, fmt.Errorf("count %d: want >= 0", c.Count))
	}
	for s, w := range c.Mix {
		if _, ok := ParseScenario(string(s)); !ok || w < 0 {
			errs = append(errs, fmt.Errorf("mix: bad entry %s=%v", s, w))
		}
	}
	if c.Connections < 0 || c.Connections > MaxConnections {
		errs = append(errs, fmt.Errorf("connections %d: want 1 to %d", c.Connections, MaxConnections))
	}
	if c.Subject != "" {
		if err := validSubject(c.Subject); err != nil {
			errs = append(errs, err)
		}
	} else if c.Payload != nil {
		errs = append(errs, errors.New("a payload needs a subject"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("load: invalid config: %w", err)
	}
	return nil
}

// Environment variables read by RegisterFlags as flag defaults.
const (
	EnvRate        = "LOADGEN_RATE"
	EnvDuration    = "LOADGEN_DURATION"
	EnvCount       = "LOADGEN_COUNT"
	EnvConcurrency = "LOADGEN_CONCURRENCY"
	EnvMix         = "LOADGEN_MIX"
	EnvMode        = "LOADGEN_MODE"
	EnvWorkers     = "LOADGEN_WORKERS"
	EnvTimeout     = "LOADGEN_TIMEOUT"
	EnvSeed        = "LOADGEN_SEED"
	EnvSubject     = "LOADGEN_SUBJECT"
	EnvPayload     = "LOADGEN_PAYLOAD" // a file name
	EnvConnections = "LOADGEN_CONNECTIONS"
)

// MaxConnections bounds Config.Connections: each connection has its own goroutines and
// buffers on both ends, and a few dozen already saturate a server on one host.
const MaxConnections = 256

// RegisterFlags defines the load flags on fs, writing into c. Each flag's default is taken
// from its environment variable (read with getenv; nil means no environment) when set,
// else from c (withDefaults applied). An unparsable environment value is an error, so a
// typo in a compose file does not silently run the default.
func (c *Config) RegisterFlags(fs *flag.FlagSet, getenv func(string) string) error {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	d := c.withDefaults()
	*c = d
	var errs []error
	env := func(name string, parse func(string) error) {
		if v := getenv(name); v != "" {
			if err := parse(v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", name, v, err))
			}
		}
	}
	env(EnvMode, func(v string) error { c.Mode = Mode(v); return nil })
	env(EnvRate, func(v string) (err error) { c.Rate, err = strconv.ParseFloat(v, 64); return })
	env(EnvDuration, func(v string) (err error) { c.Duration, err = time.ParseDuration(v); return })
	env(EnvCount, func(v string) (err error) { c.Count, err = strconv.ParseInt(v, 10, 64); return })
	env(EnvConcurrency, func(v string) (err error) { c.Concurrency, err = strconv.Atoi(v); return })
	env(EnvWorkers, func(v string) (err error) { c.Workers, err = strconv.Atoi(v); return })
	env(EnvTimeout, func(v string) (err error) { c.Timeout, err = time.ParseDuration(v); return })
	env(EnvSeed, func(v string) (err error) { c.Seed, err = strconv.ParseUint(v, 10, 64); return })
	env(EnvMix, func(v string) (err error) { c.Mix, err = ParseMix(v); return })
	env(EnvSubject, func(v string) error { c.Subject = v; return nil })
	env(EnvPayload, func(v string) (err error) { c.Payload, err = readPayload(v); return })
	env(EnvConnections, func(v string) (err error) { c.Connections, err = strconv.Atoi(v); return })

	fs.Func("mode", "open (target rate) or closed (workers back to back) [$"+EnvMode+"] (default "+string(c.Mode)+")",
		func(v string) error {
			if v != string(ModeOpen) && v != string(ModeClosed) {
				return errors.New("want open or closed")
			}
			c.Mode = Mode(v)
			return nil
		})
	fs.Float64Var(&c.Rate, "rate", c.Rate, "open loop: target requests per second [$"+EnvRate+"]")
	fs.DurationVar(&c.Duration, "duration", c.Duration, "stop scheduling after this long, 0 = no limit [$"+EnvDuration+"]")
	fs.Int64Var(&c.Count, "count", c.Count, "stop after this many requests, 0 = no limit [$"+EnvCount+"]")
	fs.IntVar(&c.Concurrency, "concurrency", c.Concurrency, "open loop: max requests in flight; beyond it requests are dropped [$"+EnvConcurrency+"]")
	fs.IntVar(&c.Workers, "workers", c.Workers, "closed loop: number of workers [$"+EnvWorkers+"]")
	fs.DurationVar(&c.Timeout, "timeout", c.Timeout, "per-request timeout [$"+EnvTimeout+"]")
	fs.Uint64Var(&c.Seed, "seed", c.Seed, "random seed, 0 = random [$"+EnvSeed+"]")
	fs.Func("mix", "scenario weights, e.g. valid=70,out_of_stock=10,declined=10,malformed=5,lookup=5 [$"+EnvMix+"] (default "+c.Mix.String()+")",
		func(v string) (err error) { c.Mix, err = ParseMix(v); return })
	fs.StringVar(&c.Subject, "subject", c.Subject, "send every request to this subject instead of the order mix, with -payload as body [$"+EnvSubject+"]")
	fs.Func("payload", "file whose content is the body of every request to -subject (default empty) [$"+EnvPayload+"]",
		func(v string) (err error) { c.Payload, err = readPayload(v); return })
	fs.IntVar(&c.Connections, "connections", c.Connections, "NATS connections to send on, each request on the next in turn [$"+EnvConnections+"]")
	fs.DurationVar(&c.LateThreshold, "late-threshold", c.LateThreshold, "open loop: a request sent later than its intended time by more than this counts as late")
	fs.DurationVar(&c.Progress, "progress", c.Progress, "interval of progress lines, negative disables")
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("load: environment: %w", err)
	}
	return nil
}

// readPayload reads a payload file; an empty file is an empty body, not a nil one.
func readPayload(name string) ([]byte, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}

// validSubject reports a subject a request cannot be sent to: empty tokens, white space
// or wildcards.
func validSubject(s string) error {
	if strings.ContainsAny(s, " \t\r\n") {
		return fmt.Errorf("subject %q: white space", s)
	}
	for tok := range strings.SplitSeq(s, ".") {
		if tok == "" || tok == "*" || tok == ">" {
			return fmt.Errorf("subject %q: want dot-separated tokens without wildcards", s)
		}
	}
	return nil
}
