package natsotel

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// detachedRequest is a micro.Request whose handler runs off micro's delivery goroutine. It
// sends the answers micro would send (the same subject, headers and errors), through the
// connection: micro's own Respond and Error write into the request, which micro reads without
// a lock as soon as the delivery goroutine moves on.
type detachedRequest struct {
	micro.Request
	c *Conn
}

func (r *detachedRequest) Respond(data []byte, opts ...micro.RespondOpt) error {
	m := &nats.Msg{Data: data}
	for _, opt := range opts {
		opt(m)
	}
	if err := r.send(m); err != nil {
		return fmt.Errorf("%w: %s", micro.ErrRespond, err)
	}
	return nil
}

func (r *detachedRequest) RespondJSON(v any, opts ...micro.RespondOpt) error {
	data, err := json.Marshal(v)
	if err != nil {
		return micro.ErrMarshalResponse
	}
	return r.Respond(data, opts...)
}

func (r *detachedRequest) Error(code, description string, data []byte, opts ...micro.RespondOpt) error {
	if code == "" {
		return fmt.Errorf("%w: error code", micro.ErrArgRequired)
	}
	if description == "" {
		return fmt.Errorf("%w: description", micro.ErrArgRequired)
	}
	m := &nats.Msg{Header: nats.Header{
		micro.ErrorHeader:     []string{description},
		micro.ErrorCodeHeader: []string{code},
	}}
	for _, opt := range opts {
		opt(m)
	}
	m.Data = data
	return r.send(m)
}

func (r *detachedRequest) send(m *nats.Msg) error {
	m.Subject = r.Reply()
	if m.Subject == "" {
		return nats.ErrMsgNoReply
	}
	return r.c.nc.PublishMsg(m)
}

// The reply guard.
//
// A responder publishes its answer to whatever reply subject the request names, with the
// responder's permissions, not the requester's: a request to an endpoint with the reply
// subject "$JS.API.STREAM.DELETE.KV_payments" makes the service delete a stream it may
// delete, for a requester who may not (a confused deputy). A reply subject is only ever an
// inbox, so natsotel answers only those: replyAllowed lists them. A request with another
// reply subject is not handled at all (its handler could change state for an answer that is
// never sent): its SERVER span gets error.type=reply_refused, and the consumed-messages
// counter counts it under that error.type. So is a request with no reply subject at all.

// serviceImportReplyPrefix starts the reply subjects nats-server makes up when a request
// crosses accounts through a service import.
const serviceImportReplyPrefix = "_R_."

// replyAllowed reports whether a responder may publish an answer to reply: an inbox
// (nats.go's "_INBOX.", a per-user "_INBOX_<user>.", this connection's own prefix), a
// service import's "_R_." subject, or a prefix given with WithReplyPrefixes.
func (c *Conn) replyAllowed(reply string) bool {
	if reply == "" {
		// Nobody waits for an answer: a request of a service endpoint always has a reply
		// subject. A message without one is no caller's; it is what JetStream sends when
		// a user names the endpoint as the reply subject of its own API request (a direct
		// get of a record the user wrote, say): handled, it would act on data the user
		// chose, with this service's rights.
		return false
	}
	if strings.ContainsAny(reply, "*> \t") {
		return false // not a subject one can publish to
	}
	if isInbox(reply) || strings.HasPrefix(reply, c.inbox) || strings.HasPrefix(reply, serviceImportReplyPrefix) {
		return true
	}
	for _, p := range c.cfg.replyPrefixes {
		if strings.HasPrefix(reply, p) {
			return true
		}
	}
	return false
}
