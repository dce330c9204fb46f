package app

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/nats.go"
)

// DefaultInboxPrefix is nats.go's own inbox prefix: reply subjects are "_INBOX.<random>".
const DefaultInboxPrefix = "_INBOX"

// InboxPrefix returns the prefix of the reply subjects (inboxes) Connect gives the
// connection, read through getenv (default os.Getenv):
//
//   - NATS_INBOX_PREFIX, when set, as is;
//   - else "_INBOX_<user>" when NATS_USER is set (user "order" gets "_INBOX_order");
//   - else DefaultInboxPrefix.
//
// With a per-user prefix, the server can let each user subscribe to its own replies only
// ("_INBOX_order.>" in deploy/nats/nats.conf) instead of to everybody's ("_INBOX.>").
// nats.go uses the prefix for every inbox of the connection: request replies, the
// JetStream API and KeyValue replies, pull-consumer deliveries and publish acks.
//
// The prefix must be one or more subject tokens without wildcards or whitespace. A
// NATS_USER that cannot be a token (it contains '.', '*', '>' or whitespace) is an error:
// set NATS_INBOX_PREFIX instead.
func InboxPrefix(getenv func(string) string) (string, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if p := getenv("NATS_INBOX_PREFIX"); p != "" {
		if err := validInboxPrefix(p); err != nil {
			return "", fmt.Errorf("app: NATS_INBOX_PREFIX %q: %w", p, err)
		}
		return p, nil
	}
	user := getenv("NATS_USER")
	if user == "" {
		return DefaultInboxPrefix, nil
	}
	if strings.ContainsAny(user, ".*>") || strings.ContainsFunc(user, isSpace) {
		return "", fmt.Errorf("app: NATS_USER %q cannot form the inbox prefix %q (a single subject token without '.', '*', '>' or whitespace); set NATS_INBOX_PREFIX", user, DefaultInboxPrefix+"_"+user)
	}
	return DefaultInboxPrefix + "_" + user, nil
}

// inboxOption is the nats.Option for prefix; nil for nats.go's default.
func inboxOption(prefix string) nats.Option {
	if prefix == DefaultInboxPrefix {
		return nil
	}
	return nats.CustomInboxPrefix(prefix)
}

// validInboxPrefix applies nats.CustomInboxPrefix's rules (not empty, no wildcard, no
// trailing '.') and the subject rules it leaves out (no whitespace, no empty token).
func validInboxPrefix(p string) error {
	switch {
	case strings.ContainsAny(p, "*>"):
		return errors.New("wildcards are not allowed")
	case strings.ContainsFunc(p, isSpace):
		return errors.New("whitespace is not allowed")
	case strings.HasPrefix(p, ".") || strings.HasSuffix(p, ".") || strings.Contains(p, ".."):
		return errors.New("empty subject token")
	}
	return nil
}

func isSpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\r' || r == '\n' || r == '\f' || r == '\v'
}
