package app_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natsotel/reference/services/app"
	"github.com/natsotel/reference/services/internal/testenv"
)

func TestInboxPrefix(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string // "" = error
	}{
		{"no auth", nil, "_INBOX"},
		{"creds", map[string]string{"NATS_CREDS": "/x.creds"}, "_INBOX"},
		{"user", map[string]string{"NATS_USER": "order"}, "_INBOX_order"},
		{"explicit", map[string]string{"NATS_INBOX_PREFIX": "replies.order"}, "replies.order"},
		{"explicit beats user", map[string]string{"NATS_USER": "order", "NATS_INBOX_PREFIX": "_INBOX_shop"}, "_INBOX_shop"},
		{"explicit default", map[string]string{"NATS_USER": "order", "NATS_INBOX_PREFIX": "_INBOX"}, "_INBOX"},
		{"user with dot", map[string]string{"NATS_USER": "ops.order"}, ""},
		{"user with wildcard", map[string]string{"NATS_USER": "a*"}, ""},
		{"user with space", map[string]string{"NATS_USER": "a b"}, ""},
		{"prefix wildcard", map[string]string{"NATS_INBOX_PREFIX": "_INBOX.>"}, ""},
		{"prefix star", map[string]string{"NATS_INBOX_PREFIX": "_INBOX.*.x"}, ""},
		{"prefix trailing dot", map[string]string{"NATS_INBOX_PREFIX": "_INBOX_x."}, ""},
		{"prefix leading dot", map[string]string{"NATS_INBOX_PREFIX": ".x"}, ""},
		{"prefix empty token", map[string]string{"NATS_INBOX_PREFIX": "a..b"}, ""},
		{"prefix space", map[string]string{"NATS_INBOX_PREFIX": "a b"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := app.InboxPrefix(envMap(tc.env))
			switch {
			case tc.want == "" && err == nil:
				t.Fatalf("InboxPrefix = %q, want an error", got)
			case tc.want != "" && err != nil:
				t.Fatalf("InboxPrefix: %v", err)
			case got != tc.want:
				t.Fatalf("InboxPrefix = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestConnectRejectsBadInboxPrefix(t *testing.T) {
	// Refused before dialing: no server needed, no wait.
	_, err := app.Connect(context.Background(), "svc", envMap(map[string]string{"NATS_URL": "nats://127.0.0.1:1", "NATS_USER": "a.b"}), nil)
	if err == nil || !strings.Contains(err.Error(), "NATS_INBOX_PREFIX") {
		t.Fatalf("err = %v, want a hint at NATS_INBOX_PREFIX", err)
	}
}

// userServer runs a nats-server with JetStream and the users "svc" and "other", each
// allowed to subscribe to its own inbox prefix only, plus an unrestricted "admin".
func userServer(t *testing.T) *server.Server {
	t.Helper()
	own := func(user string) *server.Permissions {
		return &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: []string{user + ".>", "$JS.API.>", "$KV.b.>", "$JS.ACK.S.>"}},
			Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX_" + user + ".>"}},
		}
	}
	s, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
		Users: []*server.User{
			{Username: "svc", Password: "svc-pw", Permissions: own("svc")},
			{Username: "other", Password: "other-pw", Permissions: own("other")},
			{Username: "admin", Password: "admin-pw"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

// violations collects the permission violations the server reports to nc.
type violations struct {
	nc   *nats.Conn
	errs chan error
}

func watchViolations(nc *nats.Conn) *violations {
	v := &violations{nc: nc, errs: make(chan error, 64)}
	next := nc.Opts.AsyncErrorCB
	nc.SetErrorHandler(func(c *nats.Conn, sub *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrPermissionViolation) {
			v.errs <- err
		}
		if next != nil {
			next(c, sub, err)
		}
	})
	return v
}

// drain returns the violations reported so far, deterministically: the server answers in
// order, so everything before the refusal of a canary publish (no user may publish to
// "_CANARY.>") has arrived once the canary's has.
func (v *violations) drain(t *testing.T) []string {
	t.Helper()
	if err := v.nc.Publish("_CANARY.x", nil); err != nil {
		t.Fatal(err)
	}
	if err := v.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	var out []string
	timeout := time.After(10 * time.Second)
	for {
		select {
		case err := <-v.errs:
			if strings.Contains(err.Error(), `"_CANARY.x"`) {
				return out
			}
			out = append(out, err.Error())
		case <-timeout:
			t.Fatal("the canary publish was not refused")
		}
	}
}

// TestConnectPerUserInbox connects as a user that may subscribe to "_INBOX_svc.>" only
// and shows that core requests, JetStream publishes, pull consumers (Fetch and Consume)
// and KeyValue all work with the prefix Connect derives, while another user can subscribe
// neither to svc's inboxes nor to "_INBOX.>".
func TestConnectPerUserInbox(t *testing.T) {
	s := userServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	logs := &testenv.Buffer{}
	nc, err := app.Connect(ctx, "svc", envMap(map[string]string{
		"NATS_URL": s.ClientURL(), "NATS_USER": "svc", "NATS_PASSWORD": "svc-pw",
	}), slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	v := watchViolations(nc)
	if got := nc.NewInbox(); !strings.HasPrefix(got, "_INBOX_svc.") {
		t.Fatalf("NewInbox() = %q, want prefix _INBOX_svc.", got)
	}
	// The connected handler runs asynchronously.
	testenv.Eventually(t, 5*time.Second, "the connect log shows the inbox prefix", func() bool {
		return strings.Contains(logs.String(), "inbox_prefix=_INBOX_svc")
	})

	// A core request, answered by someone else (admin).
	admin, err := nats.Connect(s.ClientURL(), nats.UserInfo("admin", "admin-pw"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Subscribe("svc.echo", func(m *nats.Msg) { _ = m.Respond(m.Data) }); err != nil {
		t.Fatal(err)
	}
	if err := admin.Flush(); err != nil {
		t.Fatal(err)
	}
	reply, err := nc.RequestWithContext(ctx, "svc.echo", []byte("hi"))
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	if string(reply.Data) != "hi" {
		t.Fatalf("reply %q, want %q", reply.Data, "hi")
	}

	// JetStream: stream, publish with ack, durable pull consumer via Fetch and Consume.
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"svc.events.>"}})
	if err != nil {
		t.Fatalf("create stream: %v", err)
	}
	for i := range 2 {
		if _, err := js.Publish(ctx, "svc.events.e", []byte{byte('0' + i)}); err != nil {
			t.Fatalf("js publish: %v", err)
		}
	}
	cons, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "d", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatalf("create consumer: %v", err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	n := 0
	for m := range batch.Messages() {
		n++
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatalf("ack: %v", err)
		}
	}
	if batch.Error() != nil || n != 1 {
		t.Fatalf("fetch: %d messages, %v", n, batch.Error())
	}
	got := make(chan jetstream.Msg, 1)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		_ = m.Ack()
		got <- m
	})
	if err != nil {
		t.Fatalf("consume: %v", err)
	}
	select {
	case m := <-got:
		if string(m.Data()) != "1" {
			t.Errorf("consumed %q, want the second message", m.Data())
		}
	case <-ctx.Done():
		t.Fatal("consume: no message")
	}
	cc.Stop()

	// KeyValue: create the bucket, write and read (direct get) a key.
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "b"})
	if err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	if _, err := kv.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatalf("kv put: %v", err)
	}
	e, err := kv.Get(ctx, "k")
	if err != nil {
		t.Fatalf("kv get: %v", err)
	}
	if string(e.Value()) != "v" {
		t.Fatalf("kv get: %q, want %q", e.Value(), "v")
	}
	if vs := v.drain(t); len(vs) > 0 {
		t.Errorf("svc: permission violations with its own inbox prefix: %v", vs)
	}

	// Another user can read neither svc's replies nor everybody's.
	onc, err := app.Connect(ctx, "other", envMap(map[string]string{
		"NATS_URL": s.ClientURL(), "NATS_USER": "other", "NATS_PASSWORD": "other-pw",
	}), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer onc.Close()
	ov := watchViolations(onc)
	for _, subj := range []string{"_INBOX_svc.>", "_INBOX.>", ">"} {
		if _, err := onc.SubscribeSync(subj); err != nil {
			t.Fatal(err)
		}
	}
	vs := ov.drain(t)
	for _, subj := range []string{"_INBOX_svc.>", "_INBOX.>", ">"} {
		refused := false
		for _, e := range vs {
			refused = refused || strings.Contains(e, "Subscription") && strings.Contains(e, `"`+subj+`"`)
		}
		if !refused {
			t.Errorf("other: subscription to %s not refused (violations %v)", subj, vs)
		}
	}
	// ... while its own requests work.
	if _, err := admin.Subscribe("other.echo", func(m *nats.Msg) { _ = m.Respond(m.Data) }); err != nil {
		t.Fatal(err)
	}
	if err := admin.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := onc.RequestWithContext(ctx, "other.echo", nil); err != nil {
		t.Fatalf("other: request: %v", err)
	}
}
