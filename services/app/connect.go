package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// ConnectResponder connects as the responder identity of the service called name, when
// one is configured: NATS_RESPONDER_USER and NATS_RESPONDER_PASSWORD, or
// NATS_RESPONDER_CREDS, read as Connect reads NATS_USER, NATS_PASSWORD and NATS_CREDS
// (same URL, the responder user's own inbox prefix). With neither set it returns own, the
// service's own connection, to serve on; the caller closes what it got only if it is not
// own.
//
// A service answers each request by publishing to the reply subject its caller chose,
// with the rights of the connection that answers. Serving on an identity that may only
// publish into inboxes (deploy/nats/nats.conf's <service>-responder users) means no
// reply subject can reach the service's buckets or events, even for the discovery
// requests ($SRV.PING, INFO, STATS) that NATS micro answers itself.
func ConnectResponder(ctx context.Context, name string, getenv func(string) string, log *slog.Logger, own *nats.Conn) (*nats.Conn, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if getenv("NATS_RESPONDER_USER") == "" && getenv("NATS_RESPONDER_CREDS") == "" {
		return own, nil
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return Connect(ctx, name+"-responder", func(key string) string {
		switch key {
		case "NATS_USER":
			return getenv("NATS_RESPONDER_USER")
		case "NATS_PASSWORD":
			return getenv("NATS_RESPONDER_PASSWORD")
		case "NATS_CREDS":
			return getenv("NATS_RESPONDER_CREDS")
		case "NATS_INBOX_PREFIX":
			return "" // the responder user's own
		}
		return getenv(key)
	}, log.With("conn", "responder"))
}

// DefaultNATSURL is used when NATS_URL is not set.
const DefaultNATSURL = "nats://127.0.0.1:4222"

// Connect connects to NATS as the client called name and keeps reconnecting forever.
//
// Environment (read through getenv, default os.Getenv):
//
//	NATS_URL                 server URL(s), comma-separated; default nats://127.0.0.1:4222
//	NATS_CREDS               path of a .creds file (JWT + nkey), or
//	NATS_USER, NATS_PASSWORD user and password
//	NATS_INBOX_PREFIX        prefix of the connection's reply subjects; default
//	                         "_INBOX_<NATS_USER>" when NATS_USER is set, else "_INBOX"
//
// (Run also reads NATS_RESPONDER_* for a second identity: see ConnectResponder.)
//
// The per-user inbox prefix (see InboxPrefix) lets the server restrict each user to its
// own replies: deploy/nats/nats.conf allows user "order" to subscribe to "_INBOX_order.>",
// not to "_INBOX.>". Requests, micro, JetStream and KeyValue all use it.
//
// If the server is not reachable yet, Connect keeps trying until ctx ends (a service
// started before NATS in a compose stack waits for it). Disconnections, reconnections and
// asynchronous errors (a permission violation, a slow consumer) are logged on log.
func Connect(ctx context.Context, name string, getenv func(string) string, log *slog.Logger) (*nats.Conn, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	url := getenv("NATS_URL")
	if url == "" {
		url = DefaultNATSURL
	}
	inbox, err := InboxPrefix(getenv)
	if err != nil {
		return nil, err
	}
	connected := make(chan struct{})
	var once sync.Once
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.ReconnectJitter(250*time.Millisecond, time.Second),
		nats.RetryOnFailedConnect(true),
		nats.ConnectHandler(func(nc *nats.Conn) {
			log.Info("connected to NATS", "url", nc.ConnectedUrlRedacted(), "inbox_prefix", inbox)
			once.Do(func() { close(connected) })
		}),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if err != nil {
				log.Warn("disconnected from NATS, reconnecting", "error", err)
			} else if !nc.IsClosed() {
				log.Warn("disconnected from NATS, reconnecting")
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("reconnected to NATS", "url", nc.ConnectedUrlRedacted(), "reconnects", nc.Reconnects)
		}),
		nats.ClosedHandler(func(*nats.Conn) { log.Info("NATS connection closed") }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			log.Error("NATS error", "subject", subject, "error", err)
		}),
	}
	if o := inboxOption(inbox); o != nil {
		opts = append(opts, o)
	}
	switch creds, user := getenv("NATS_CREDS"), getenv("NATS_USER"); {
	case creds != "" && user != "":
		return nil, errors.New("app: set NATS_CREDS or NATS_USER/NATS_PASSWORD, not both")
	case creds != "":
		opts = append(opts, nats.UserCredentials(creds))
	case user != "":
		opts = append(opts, nats.UserInfo(user, getenv("NATS_PASSWORD")))
	}

	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("app: connecting to %s: %w", url, err)
	}
	if nc.IsConnected() {
		return nc, nil
	}
	log.Info("waiting for NATS", "url", url)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-connected:
			return nc, nil
		case <-tick.C:
			// The handler runs asynchronously; the state is the source of truth.
			if nc.IsConnected() {
				return nc, nil
			}
		case <-ctx.Done():
			nc.Close()
			return nil, fmt.Errorf("app: waiting for NATS at %s: %w", url, ctx.Err())
		}
	}
}
