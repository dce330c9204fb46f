package probe

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"go.opentelemetry.io/otel/metric"
)

// Config configures a Probe. The zero value is usable.
type Config struct {
	// Interval between probe rounds. Default 5s.
	Interval time.Duration
	// Window is how long discovery collects $SRV.PING replies. Default 500ms; it must be
	// shorter than Interval.
	Window time.Duration
	// Timeout bounds each direct ping and stats request. Default 1s.
	Timeout time.Duration
	// MissedLimit is how many consecutive probes an instance may miss before it is
	// forgotten; meanwhile it is reported up=0. Default 3.
	MissedLimit int
	// Services, if not empty, limits the probe to these micro service names.
	Services []string
	// MaxInstances bounds the instances of one service a round takes from discovery
	// (each becomes metric series): a responder answering $SRV.PING with made-up ids
	// cannot flood the probe. Default 100.
	MaxInstances int
	// MeterProvider receives the metrics. Default: no metrics (the probe still tracks
	// instances, see Probe.Instances).
	MeterProvider metric.MeterProvider
	// Logger logs instances appearing and disappearing. Default: no logs.
	Logger *slog.Logger
	// OnRound, if set, is called after every round with its result.
	OnRound func(Round)
	// MonitorURLs are the HTTP monitoring base URLs ("http://nats-1:8222") of the
	// servers; when set, every round also finds out which server each instance is
	// connected to (Instance.Server, Round.PerServer, nats.micro.instances).
	MonitorURLs []string
	// HTTPClient reads the monitoring endpoints. Default http.DefaultClient.
	HTTPClient *http.Client
}

func (c Config) withDefaults() Config {
	if c.Interval <= 0 {
		c.Interval = 5 * time.Second
	}
	if c.Window <= 0 {
		c.Window = min(500*time.Millisecond, c.Interval/2)
	}
	if c.Timeout <= 0 {
		c.Timeout = time.Second
	}
	if c.MissedLimit <= 0 {
		c.MissedLimit = 3
	}
	if c.MaxInstances <= 0 {
		c.MaxInstances = 100
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.HTTPClient == nil {
		c.HTTPClient = http.DefaultClient
	}
	return c
}

// Validate reports a configuration New would refuse.
func (c Config) Validate() error {
	c = c.withDefaults()
	if c.Window >= c.Interval {
		return fmt.Errorf("probe: window %v must be shorter than interval %v", c.Window, c.Interval)
	}
	return nil
}

// Instance is what the probe knows about one service instance.
type Instance struct {
	Service, ID, Version string
	// Up reports whether the instance answered the last probe; Missed counts consecutive
	// missed probes.
	Up     bool
	Missed int
	// LastSeen is when it last answered; PingRTT is the last direct ping's round trip.
	LastSeen time.Time
	PingRTT  time.Duration
	// Server is the server_name of the server it is connected to; empty without
	// Config.MonitorURLs or when no monitored server lists it.
	Server string
	// Endpoints from the last $SRV.STATS reply.
	Endpoints []Endpoint
}

// Endpoint is one endpoint's stats, as the service reports them.
//
// Errors and AverageProcessingTime are the handler's figures. micro measures around the
// hand-off of a request to its handler; when natsotel runs handlers concurrently, that is
// not the handler, and micro sees no error replies. natsotel then reports the handler's
// figures in the endpoint's stats data ({"in_flight":..,"num_errors":..,...}), and the probe
// uses those; HandOff keeps micro's own average for comparison.
type Endpoint struct {
	Name, Subject         string
	Requests, Errors      int64
	AverageProcessingTime time.Duration
	// InFlight is how many handlers were running (natsotel only; 0 otherwise).
	InFlight int64
	// HandOff is micro's average processing time when natsotel's figures replaced it.
	HandOff time.Duration
}

// handlerStats is what natsotel puts into an endpoint's $SRV.STATS data.
type handlerStats struct {
	InFlight              *int64        `json:"in_flight"`
	NumErrors             int64         `json:"num_errors"`
	AverageProcessingTime time.Duration `json:"average_processing_time"`
}

// Round is the result of one probe round.
type Round struct {
	At time.Time
	// Discovered counts replies to the discovery ping.
	Discovered int
	// Up and Down count tracked instances after the round; Gone lists the "name/id" of
	// instances forgotten in this round.
	Up, Down int
	Gone     []string
	// PerServer counts the instances that answered, by server_name and service name
	// (only with Config.MonitorURLs; instances on no monitored server count under "").
	PerServer map[string]map[string]int
}

// Probe discovers and measures micro services. Create it with New; run rounds with Run or
// Once. Safe for concurrent use.
type Probe struct {
	nc  *nats.Conn
	cfg Config
	ins *instruments

	mu        sync.Mutex
	instances map[instanceKey]*Instance
}

type instanceKey struct{ service, id string }

// New returns a Probe using nc (which stays owned by the caller) and registers its
// metrics. Call Close to unregister them.
func New(nc *nats.Conn, cfg Config) (*Probe, error) {
	if nc == nil {
		return nil, errors.New("probe: nil connection")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	p := &Probe{nc: nc, cfg: cfg, instances: map[instanceKey]*Instance{}}
	ins, err := newInstruments(cfg.MeterProvider, p)
	if err != nil {
		return nil, err
	}
	p.ins = ins
	return p, nil
}

// Close unregisters the metric callback; the series stop.
func (p *Probe) Close() error { return p.ins.close() }

// Run probes at once and then every Interval until ctx is done. It returns nil when ctx
// is canceled and an error only if the connection is closed.
func (p *Probe) Run(ctx context.Context) error {
	t := time.NewTicker(p.cfg.Interval)
	defer t.Stop()
	for {
		if _, err := p.Once(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, nats.ErrConnectionClosed) {
				return err
			}
			p.cfg.Logger.Warn("probe round failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Once runs one probe round: discovery, then a direct ping and a stats read per instance.
func (p *Probe) Once(ctx context.Context) (Round, error) {
	round := Round{At: time.Now()}
	found, err := p.discover(ctx)
	if err != nil {
		return round, err
	}
	round.Discovered = len(found)

	// Probe everything known: discovered now or still tracked from earlier rounds.
	p.mu.Lock()
	targets := make(map[instanceKey]micro.Ping, len(found)+len(p.instances))
	for k, in := range p.instances {
		targets[k] = micro.Ping{ServiceIdentity: micro.ServiceIdentity{Name: in.Service, ID: in.ID, Version: in.Version}}
	}
	p.mu.Unlock()
	for _, f := range found {
		targets[instanceKey{f.Name, f.ID}] = f
	}

	type answer struct {
		key   instanceKey
		ping  micro.Ping
		rtt   time.Duration
		stats *micro.Stats
		err   error
	}
	answers := make(chan answer, len(targets))
	var wg sync.WaitGroup
	for k, f := range targets {
		wg.Go(func() {
			rtt, stats, err := p.measure(ctx, k)
			answers <- answer{key: k, ping: f, rtt: rtt, stats: stats, err: err}
		})
	}
	var where serverOf
	if len(p.cfg.MonitorURLs) > 0 {
		wg.Go(func() {
			var err error
			if where, err = p.locate(ctx); err != nil {
				p.cfg.Logger.Warn("probe could not read every server's monitoring endpoint", "error", err)
			}
		})
	}
	wg.Wait()
	close(answers)

	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	for a := range answers {
		in := p.instances[a.key]
		if a.err != nil {
			if in == nil {
				continue // discovered, then gone before the direct ping: never tracked
			}
			in.Up = false
			in.Missed++
			if in.Missed == 1 {
				p.cfg.Logger.Info("micro instance missed a probe", "micro_service", in.Service, "id", in.ID, "error", a.err)
			}
			if in.Missed >= p.cfg.MissedLimit {
				delete(p.instances, a.key)
				round.Gone = append(round.Gone, in.Service+"/"+in.ID)
				p.cfg.Logger.Info("micro instance gone", "micro_service", in.Service, "id", in.ID, "missed", in.Missed)
			}
			continue
		}
		if in == nil {
			in = &Instance{Service: a.key.service, ID: a.key.id}
			p.instances[a.key] = in
			p.cfg.Logger.Info("micro instance discovered", "micro_service", in.Service, "id", in.ID, "version", a.ping.Version)
		}
		if a.ping.Version != "" {
			in.Version = a.ping.Version
		}
		in.Up, in.Missed, in.LastSeen, in.PingRTT = true, 0, now, a.rtt
		if where != nil {
			if srv := where[a.key]; srv != in.Server {
				if in.Server != "" {
					p.cfg.Logger.Info("micro instance moved to another server", "micro_service", in.Service, "id", in.ID, "from", in.Server, "to", srv)
				}
				in.Server = srv
			}
			if round.PerServer == nil {
				round.PerServer = map[string]map[string]int{}
			}
			if round.PerServer[in.Server] == nil {
				round.PerServer[in.Server] = map[string]int{}
			}
			round.PerServer[in.Server][in.Service]++
		}
		if a.stats != nil {
			in.Endpoints = endpointsOf(a.stats)
		}
		p.ins.ping.Record(context.Background(), a.rtt.Seconds(), metric.WithAttributeSet(instanceAttrs(in)))
	}
	for _, in := range p.instances {
		if in.Up {
			round.Up++
		} else {
			round.Down++
		}
	}
	slices.Sort(round.Gone)
	if p.cfg.OnRound != nil {
		p.cfg.OnRound(round)
	}
	return round, nil
}

// discover publishes $SRV.PING and collects the replies that arrive within the window.
func (p *Probe) discover(ctx context.Context) ([]micro.Ping, error) {
	inbox := p.nc.NewRespInbox()
	sub, err := p.nc.SubscribeSync(inbox)
	if err != nil {
		return nil, fmt.Errorf("probe: discovery subscription: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	subject, err := micro.ControlSubject(micro.PingVerb, "", "")
	if err != nil {
		return nil, fmt.Errorf("probe: %w", err)
	}
	if err := p.nc.PublishRequest(subject, inbox, nil); err != nil {
		return nil, fmt.Errorf("probe: discovery ping: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, p.cfg.Window)
	defer cancel()
	var found []micro.Ping
	perService := map[string]int{}
	dropped := map[string]int{}
	defer func() {
		for name, n := range dropped {
			p.cfg.Logger.Warn("more instances answered discovery than MaxInstances; the rest are ignored this round",
				"service", name, "max_instances", p.cfg.MaxInstances, "ignored", n)
		}
	}()
	for {
		msg, err := sub.NextMsgWithContext(wctx)
		if err != nil {
			if ctx.Err() != nil {
				return found, ctx.Err()
			}
			return found, nil // the window is over
		}
		var ping micro.Ping
		if json.Unmarshal(msg.Data, &ping) != nil || ping.Name == "" || ping.ID == "" {
			continue
		}
		if len(p.cfg.Services) > 0 && !slices.Contains(p.cfg.Services, ping.Name) {
			continue
		}
		if perService[ping.Name] >= p.cfg.MaxInstances {
			dropped[ping.Name]++
			continue
		}
		perService[ping.Name]++
		found = append(found, ping)
	}
}

// measure pings one instance directly, then reads its stats.
func (p *Probe) measure(ctx context.Context, k instanceKey) (time.Duration, *micro.Stats, error) {
	pingSubject, err := micro.ControlSubject(micro.PingVerb, k.service, k.id)
	if err != nil {
		return 0, nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	start := time.Now()
	_, err = p.nc.RequestWithContext(rctx, pingSubject, nil)
	rtt := time.Since(start)
	cancel()
	if err != nil {
		return 0, nil, fmt.Errorf("ping %s: %w", pingSubject, err)
	}

	statsSubject, err := micro.ControlSubject(micro.StatsVerb, k.service, k.id)
	if err != nil {
		return rtt, nil, nil
	}
	rctx, cancel = context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	msg, err := p.nc.RequestWithContext(rctx, statsSubject, nil)
	if err != nil {
		// It answered the ping: up, with the previous stats kept.
		p.cfg.Logger.Debug("micro stats request failed", "subject", statsSubject, "error", err)
		return rtt, nil, nil
	}
	var stats micro.Stats
	if err := json.Unmarshal(msg.Data, &stats); err != nil {
		p.cfg.Logger.Debug("micro stats reply unreadable", "subject", statsSubject, "error", err)
		return rtt, nil, nil
	}
	return rtt, &stats, nil
}

func endpointsOf(s *micro.Stats) []Endpoint {
	eps := make([]Endpoint, 0, len(s.Endpoints))
	for _, e := range s.Endpoints {
		if e == nil {
			continue
		}
		ep := Endpoint{
			Name:                  e.Name,
			Subject:               e.Subject,
			Requests:              int64(e.NumRequests),
			Errors:                int64(e.NumErrors),
			AverageProcessingTime: e.AverageProcessingTime,
		}
		var hs handlerStats
		if len(e.Data) > 0 && json.Unmarshal(e.Data, &hs) == nil && hs.InFlight != nil {
			ep.HandOff = ep.AverageProcessingTime
			ep.Errors, ep.AverageProcessingTime, ep.InFlight = hs.NumErrors, hs.AverageProcessingTime, *hs.InFlight
		}
		eps = append(eps, ep)
	}
	return eps
}

// Instances returns the tracked instances sorted by service and id.
func (p *Probe) Instances() []Instance {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Instance, 0, len(p.instances))
	for _, in := range p.instances {
		c := *in
		c.Endpoints = slices.Clone(in.Endpoints)
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Instance) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.ID, b.ID))
	})
	return out
}
