package natsotel

import (
	"errors"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Conn is an instrumented view of a *nats.Conn. Safe for concurrent use. Create it with Wrap;
// several Conns, each with its own providers, can live in one process.
type Conn struct {
	nc       *nats.Conn
	cfg      config
	tracer   trace.Tracer
	inst     *instruments
	clientID string
	inbox    string // inbox prefix + "." (temporary destinations)
	ops      opCache
	srv      atomic.Pointer[serverInfo]
	durables durableSet // durable JetStream consumers seen by Consume and Fetch
	dbDup    bool       // OTEL_SEMCONV_STABILITY_OPT_IN has database/dup (read by Wrap)
}

// serverInfo is the server the connection is connected to, for server.address/server.port.
type serverInfo struct {
	id      string
	attrs   []attribute.KeyValue
	checked int64 // unix nanos of the last check against the connection
}

// serverRecheck is how often the connected server is re-read from the connection (it takes
// the connection's lock); after a reconnect, server.* can be stale for at most this long.
const serverRecheck = int64(time.Second)

// errNilConn is returned by Wrap for a nil *nats.Conn.
var errNilConn = errors.New("natsotel: nil *nats.Conn")

// Wrap instruments nc. Defaults come from the global providers and propagator as they are
// when Wrap is called, and so does OTEL_SEMCONV_STABILITY_OPT_IN (see the package
// documentation, "Semantic conventions"). nc stays usable directly (untraced) and is not closed by natsotel.
func Wrap(nc *nats.Conn, opts ...Option) (*Conn, error) {
	if nc == nil {
		return nil, errNilConn
	}
	cfg := newConfig(opts)
	inst, err := newInstruments(cfg.mp)
	if err != nil {
		return nil, err
	}
	c := &Conn{
		nc:     nc,
		cfg:    cfg,
		tracer: cfg.tp.Tracer(scopeName, trace.WithInstrumentationVersion(version), trace.WithSchemaURL(schemaURL)),
		inst:   inst,
		inbox:  nats.InboxPrefix,
		dbDup:  databaseDupFromEnv(),
	}
	c.ops.m.Store(&map[opKey]*opInfo{})
	if nc.Opts.InboxPrefix != "" {
		c.inbox = nc.Opts.InboxPrefix + "."
	}
	c.clientID = nc.Opts.Name
	if c.clientID == "" {
		if id, err := nc.GetClientID(); err == nil {
			c.clientID = strconv.FormatUint(id, 10)
		}
	}
	return c, nil
}

// Raw returns the underlying connection (untraced).
func (c *Conn) Raw() *nats.Conn { return c.nc }

// server returns the current server's address attributes, recomputed after a reconnect to
// another server.
func (c *Conn) server(now time.Time) *serverInfo {
	cur := c.srv.Load()
	ns := now.UnixNano()
	if cur != nil && ns-atomic.LoadInt64(&cur.checked) < serverRecheck {
		return cur
	}
	id := c.nc.ConnectedServerId()
	if cur != nil && cur.id == id {
		atomic.StoreInt64(&cur.checked, ns)
		return cur
	}
	s := &serverInfo{id: id, checked: ns}
	if u, err := url.Parse(c.nc.ConnectedUrlRedacted()); err == nil && u.Host != "" {
		host, port, err := net.SplitHostPort(u.Host)
		if err != nil {
			host = u.Host
		}
		s.attrs = append(s.attrs, semconv.ServerAddress(host))
		if p, err := strconv.Atoi(port); err == nil {
			s.attrs = append(s.attrs, semconv.ServerPort(p))
		}
	}
	c.srv.Store(s)
	return s
}

// destination returns the name to use in span names and metric labels for a subscription or
// endpoint subject (already a template, wildcards included), and whether it is temporary.
func (c *Conn) destination(subject string) (string, bool) {
	if c.temporary(subject) {
		return temporaryDestination, true
	}
	return subject, false
}

// sendDestination is destination for a concrete subject a message is sent to: temporary
// subjects first, then the WithDestinationTemplate template, else the subject.
func (c *Conn) sendDestination(subject string) (string, bool) {
	if c.temporary(subject) {
		return temporaryDestination, true
	}
	if c.cfg.destTemplate != nil {
		if t := c.cfg.destTemplate(subject); t != "" {
			return t, false
		}
	}
	return subject, false
}

// temporary reports whether subject is an inbox or a per-message ack subject.
func (c *Conn) temporary(subject string) bool {
	return strings.HasPrefix(subject, c.inbox) || isInbox(subject) || strings.HasPrefix(subject, "$JS.ACK.")
}

// perUserInboxPrefix starts the per-user inbox prefixes "_INBOX_<user>" of the
// nats.CustomInboxPrefix convention that least-privilege setups use (a user may subscribe
// to "_INBOX_<user>.>" only).
const perUserInboxPrefix = "_INBOX_"

// isInbox reports whether subject is somebody's inbox: nats.go's default "_INBOX.<id>" or
// a per-user "_INBOX_<user>.<id>". A reply to a peer's request goes to the peer's inbox,
// whose custom prefix this connection cannot know otherwise.
func isInbox(subject string) bool {
	if strings.HasPrefix(subject, nats.InboxPrefix) {
		return true
	}
	if !strings.HasPrefix(subject, perUserInboxPrefix) {
		return false
	}
	dot := strings.IndexByte(subject, '.')
	return dot > len(perUserInboxPrefix) && dot < len(subject)-1
}
