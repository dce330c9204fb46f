package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/natsotel/reference/services/contracts"
	"github.com/natsotel/reference/services/provision"
)

// The indirect routes: what a user can get done through a service, or through JetStream,
// with rights it does not have itself. Each test runs the real server with nats.conf,
// provisions it as the provision user, tries the route, and then checks, as admin, that
// nothing changed and that the server refused the step (a permissions violation on the
// connection that attempted it).

// userConn connects as user from nats.conf with the inbox prefix services/app.Connect
// gives it, recording the permission violations the server reports.
func userConn(t *testing.T, s *server.Server, user string, opts ...nats.Option) *watchedConn {
	t.Helper()
	u := natsUser(natsConfig(t), user)
	if u == nil {
		t.Fatalf("no NATS user %s", user)
	}
	all := []nats.Option{nats.UserInfo(u.Username, u.Password), nats.Name("indirect-" + user),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {})} // newWatchedConn records them
	if u.Permissions != nil { // admin keeps nats.go's default inbox prefix, as the nats CLI
		all = append(all, nats.CustomInboxPrefix("_INBOX_"+user))
	}
	nc, err := nats.Connect(s.ClientURL(), append(all, opts...)...)
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	return newWatchedConn(user, nc)
}

// jsAPIPrefix is how the provision user and admin reach each service's JetStream in
// nats.conf (PROVISION's imports of each account's $JS.API.>, and SHOP's for admin), as
// compose.yaml tells provision.
const jsAPIPrefix = "js.{service}"

// provisioned starts the server from nats.conf and provisions it as the provision user.
// It returns the server and admin's JetStream handles (one per service's account) to look
// at the state with.
func provisioned(t *testing.T) (*server.Server, provision.JetStreams) {
	t.Helper()
	s := startNATS(t)
	p := userConn(t, s, "provision")
	pjs, err := provision.PerService(p.nc, jsAPIPrefix)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := provision.Run(ctx, pjs, nil, 1); err != nil {
		t.Fatalf("provision: %v", err)
	}
	admin := userConn(t, s, "admin")
	ajs, err := provision.PerService(admin.nc, jsAPIPrefix)
	if err != nil {
		t.Fatal(err)
	}
	return s, ajs
}

// holding returns the JetStream of js that holds stream: a bucket's stream is in its
// owner's account, ORDER_EVENTS in inventory's.
func holding(js provision.JetStreams, stream string) jetstream.JetStream {
	if bucket, ok := strings.CutPrefix(stream, "KV_"); ok {
		return js(provision.Owner(bucket))
	}
	return js(contracts.InventoryService)
}

// seed writes records into buckets, each as the bucket's owner (a KeyValue write is a
// publish to $KV.<bucket>.<key> in the owner's account, out of admin's reach: admin
// reaches the accounts' JetStream API only).
func seed(t *testing.T, s *server.Server, records map[string]map[string]string) {
	t.Helper()
	for bucket, kvs := range records {
		js, err := jetstream.New(userConn(t, s, provision.Owner(bucket)).nc)
		if err != nil {
			t.Fatal(err)
		}
		kv, err := js.KeyValue(t.Context(), bucket)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range kvs {
			if _, err := kv.Put(t.Context(), k, []byte(v)); err != nil {
				t.Fatalf("%s %s: %v", bucket, k, err)
			}
		}
	}
}

// refused waits (up to 10 s) for the server to report to w that it refused a publish to
// subject: the signal that the attempt reached the server and failed there.
func refused(t *testing.T, w *watchedConn, subject string) {
	t.Helper()
	want := fmt.Sprintf("Publish to %q", subject)
	timeout := time.After(10 * time.Second)
	var other []error
	for {
		select {
		case err := <-w.errs:
			if strings.Contains(err.Error(), want) {
				return
			}
			other = append(other, err)
		case <-timeout:
			t.Errorf("%s: the server did not refuse the publish to %s (other violations: %v)", w.name, subject, other)
			return
		}
	}
}

// stateProbe reads a piece of JetStream state, as admin, to compare before and after.
type stateProbe func(t *testing.T) string

func streamConfig(js provision.JetStreams, stream string) stateProbe {
	return func(t *testing.T) string {
		st, err := holding(js, stream).Stream(t.Context(), stream)
		if err != nil {
			return "error: " + err.Error()
		}
		info, err := st.Info(t.Context())
		if err != nil {
			return "error: " + err.Error()
		}
		cfg, _ := json.Marshal(info.Config)
		return fmt.Sprintf("%s msgs=%d consumers=%d", cfg, info.State.Msgs, info.State.Consumers)
	}
}

func kvValue(js provision.JetStreams, bucket, key string) stateProbe {
	return func(t *testing.T) string {
		kv, err := js(provision.Owner(bucket)).KeyValue(t.Context(), bucket)
		if err != nil {
			return "error: " + err.Error()
		}
		e, err := kv.Get(t.Context(), key)
		if err != nil {
			return "error: " + err.Error()
		}
		return fmt.Sprintf("rev=%d %s", e.Revision(), e.Value())
	}
}

// TestNATSConfigRefusesReplyInjection: a caller names a JetStream API, KeyValue or event
// subject as the reply subject of a request it may send; the service answers as micro
// does (its reply goes to the reply subject, with the rights of the connection that
// answers). The responders here are plain nats.go micro services under the services'
// responder users, so this tests the server's configuration alone, whatever the
// services' own code does: allow_responses let such replies through (they deleted the
// payments bucket, overwrote stock records and forged order events); nats.conf only
// lets replies into inboxes.
//
// A reply is a publish like any other: when the services answered as their own users, a
// reply onto the service's own bucket or events was allowed too (inventory.control with
// reply "$KV.stock.sku-3", $SRV.PING.inventory, which NATS micro answers itself, with
// reply "$KV.stock.sku-5"). Serving as a responder user that may only publish into
// inboxes closes those routes as well; they are the last cases.
func TestNATSConfigRefusesReplyInjection(t *testing.T) {
	s, ajs := provisioned(t)
	seed(t, s, map[string]map[string]string{
		contracts.BucketStock:    {"sku-3": `{"available":10}`, "sku-5": `{"available":10}`},
		contracts.BucketOrders:   {"ord-1": `{"id":"ord-1","status":"failed"}`},
		contracts.BucketPayments: {"ord-1": `{"order_id":"ord-1","status":"captured"}`},
	})

	// One responder per service, serving its endpoints and micro's $SRV handlers as the
	// service's responder user.
	services := map[string][]string{
		contracts.OrderService:     {contracts.SubjectOrderCreate, contracts.SubjectOrderGet, contracts.ControlSubject(contracts.OrderService)},
		contracts.InventoryService: {contracts.SubjectInventoryStock, contracts.ControlSubject(contracts.InventoryService)},
		contracts.BillingService:   {contracts.SubjectBillingPayment, contracts.ControlSubject(contracts.BillingService)},
	}
	responders := map[string]*watchedConn{}
	for name, subjects := range services {
		w := userConn(t, s, name+"-responder")
		responders[name] = w
		svc, err := micro.AddService(w.nc, micro.Config{Name: name, Version: "1.0.0"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = svc.Stop() })
		for _, subj := range subjects {
			err := svc.AddEndpoint(strings.ReplaceAll(subj, ".", "_"), micro.HandlerFunc(func(r micro.Request) {
				_ = r.Respond([]byte(`{"status":"confirmed","available":999999}`))
			}), micro.WithEndpointSubject(subj))
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := w.nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}

	for _, c := range []struct {
		attacker, subject, responder, reply string
		state                               stateProbe
	}{
		{"loadgen", contracts.ControlSubject(contracts.BillingService), contracts.BillingService,
			"$JS.API.STREAM.DELETE.KV_payments", streamConfig(ajs, "KV_payments")},
		{"loadgen", contracts.ControlSubject(contracts.BillingService), contracts.BillingService,
			contracts.SubjectOrderFailed, streamConfig(ajs, contracts.OrderEventsStream)},
		{"loadgen", contracts.ControlSubject(contracts.InventoryService), contracts.InventoryService,
			"$KV.payments.ord-1", kvValue(ajs, contracts.BucketPayments, "ord-1")},
		{"loadgen", contracts.ControlSubject(contracts.InventoryService), contracts.InventoryService,
			"$JS.API.STREAM.DELETE.KV_stock", streamConfig(ajs, "KV_stock")},
		{"loadgen", contracts.SubjectOrderGet, contracts.OrderService,
			"$KV.payments.ord-1", kvValue(ajs, contracts.BucketPayments, "ord-1")},
		{"loadgen", contracts.SubjectOrderGet, contracts.OrderService,
			"$KV.stock.sku-3", kvValue(ajs, contracts.BucketStock, "sku-3")},
		{"loadgen", contracts.SubjectOrderCreate, contracts.OrderService,
			"$JS.API.STREAM.DELETE.KV_orders", streamConfig(ajs, "KV_orders")},
		{"loadgen", contracts.ControlSubject(contracts.OrderService), contracts.OrderService,
			"$JS.API.STREAM.PURGE." + contracts.OrderEventsStream, streamConfig(ajs, contracts.OrderEventsStream)},
		{"probe", "$SRV.PING.inventory", contracts.InventoryService,
			"$KV.orders.ord-1", kvValue(ajs, contracts.BucketOrders, "ord-1")},
		{"probe", "$SRV.INFO.billing", contracts.BillingService,
			"$JS.API.STREAM.DELETE.KV_payments", streamConfig(ajs, "KV_payments")},
		{"probe", "$SRV.STATS.order", contracts.OrderService,
			"$KV.stock.sku-5", kvValue(ajs, contracts.BucketStock, "sku-5")},
		// Every service answers $SRV.PING: a target none of them may publish to.
		{"probe", "$SRV.PING", contracts.BillingService,
			"$JS.API.STREAM.DELETE." + contracts.OrderEventsStream, streamConfig(ajs, contracts.OrderEventsStream)},
		{"probe", "$SRV.PING.billing", contracts.BillingService,
			contracts.SubjectOrderConfirmed, streamConfig(ajs, contracts.OrderEventsStream)},
		// Onto the responder's own service's data.
		{"probe", "$SRV.PING.inventory", contracts.InventoryService,
			"$KV.stock.sku-5", kvValue(ajs, contracts.BucketStock, "sku-5")},
		{"probe", "$SRV.INFO.billing", contracts.BillingService,
			"$KV.payments.ord-1", kvValue(ajs, contracts.BucketPayments, "ord-1")},
		{"probe", "$SRV.STATS.order", contracts.OrderService,
			contracts.SubjectOrderConfirmed, streamConfig(ajs, contracts.OrderEventsStream)},
		{"probe", "$SRV.PING.order", contracts.OrderService,
			"$KV.orders.ord-1", kvValue(ajs, contracts.BucketOrders, "ord-1")},
		{"loadgen", contracts.ControlSubject(contracts.InventoryService), contracts.InventoryService,
			"$KV.stock.sku-3", kvValue(ajs, contracts.BucketStock, "sku-3")},
		{"loadgen", contracts.SubjectOrderGet, contracts.OrderService,
			contracts.SubjectOrderConfirmed, streamConfig(ajs, contracts.OrderEventsStream)},
		{"loadgen", contracts.ControlSubject(contracts.BillingService), contracts.BillingService,
			"$KV.payments.ord-1", kvValue(ajs, contracts.BucketPayments, "ord-1")},
	} {
		t.Run(c.attacker+" "+c.subject+" reply "+c.reply, func(t *testing.T) {
			attacker := userConn(t, s, c.attacker)
			before := c.state(t)
			if err := attacker.nc.PublishMsg(&nats.Msg{Subject: c.subject, Reply: c.reply, Data: []byte("{}")}); err != nil {
				t.Fatal(err)
			}
			if err := attacker.nc.Flush(); err != nil {
				t.Fatal(err)
			}
			// nats-server 2.15.3 refuses a publish whose reply subject starts with "$JS."
			// itself ("Publish with Reply of ..."): the injection stops at the first step.
			// Any other violation means the attacker could not send the request at all,
			// and the case would prove nothing.
			if v := attacker.violations(t); len(v) > 0 {
				if len(v) != 1 || !strings.Contains(v[0].Error(), "Publish with Reply of "+strconv.Quote(c.reply)) {
					t.Fatalf("%s may not send %s at all: %v", c.attacker, c.subject, v)
				}
			} else {
				refused(t, responders[c.responder], c.reply)
			}
			if after := c.state(t); after != before {
				t.Errorf("state changed through %s's reply:\nbefore %s\nafter  %s", c.responder, before, after)
			}
		})
	}
}

// TestNATSConfigReplyAfterReconnect: a service that received a request, lost its
// connection and reconnected, answers on the new connection. allow_responses only
// allows replies to requests the same connection received, so the server refused such
// replies and the callers timed out on orders that had completed. Replies into the
// caller's inbox prefix are allowed whatever the connection.
func TestNATSConfigReplyAfterReconnect(t *testing.T) {
	s, _ := provisioned(t)
	reconnected := make(chan struct{}, 1)
	order := userConn(t, s, contracts.OrderService+"-responder", nats.ReconnectWait(10*time.Millisecond),
		nats.ReconnectHandler(func(*nats.Conn) { reconnected <- struct{}{} }))
	received := make(chan micro.Request, 1)
	svc, err := micro.AddService(order.nc, micro.Config{Name: contracts.OrderService, Version: "1.0.0",
		Endpoint: &micro.EndpointConfig{Subject: contracts.SubjectOrderGet, Handler: micro.HandlerFunc(func(r micro.Request) { received <- r })}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	if err := order.nc.Flush(); err != nil {
		t.Fatal(err)
	}

	loadgen := userConn(t, s, "loadgen")
	type reply struct {
		msg *nats.Msg
		err error
	}
	replies := make(chan reply, 1)
	go func() {
		m, err := loadgen.nc.Request(contracts.SubjectOrderGet, []byte(`{"id":"ord-1"}`), 10*time.Second)
		replies <- reply{m, err}
	}()
	var req micro.Request
	select {
	case req = <-received:
	case <-time.After(10 * time.Second):
		t.Fatal("the request did not arrive")
	}
	if err := order.nc.ForceReconnect(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-reconnected:
	case <-time.After(10 * time.Second):
		t.Fatal("no reconnect")
	}
	if err := req.Respond([]byte(`{"id":"ord-1"}`)); err != nil {
		t.Fatal(err)
	}
	r := <-replies
	if r.err != nil {
		t.Fatalf("reply after the responder's reconnect: %v (violations on the responder: %v)", r.err, order.violations(t))
	}
	if string(r.msg.Data) != `{"id":"ord-1"}` {
		t.Errorf("reply %q", r.msg.Data)
	}
}

// TestNATSConfigRefusesReshapingJetStream: a service user may not change what a stream
// captures (inventory adding billing.charge to its stock bucket's stream would read every
// card number), make its bucket republish into another service's subjects (billing
// forging events.order.failed), or create a consumer (a push consumer on order's bucket
// delivering into inventory.commit, an endpoint order may not call: the server does not
// check a consumer's deliver subject against its creator's permissions). Under the
// accounts each of these would stay in the user's own account; the permissions are the
// second wall, and these cases check it.
func TestNATSConfigRefusesReshapingJetStream(t *testing.T) {
	s, ajs := provisioned(t)
	ctx := t.Context()
	config := func(stream string) jetstream.StreamConfig {
		st, err := holding(ajs, stream).Stream(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		return st.CachedInfo().Config
	}

	attempt := func(t *testing.T, user string, op func(ctx context.Context, js jetstream.JetStream) error) *watchedConn {
		t.Helper()
		w := userConn(t, s, user)
		js, err := jetstream.New(w.nc)
		if err != nil {
			t.Fatal(err)
		}
		// A refused request is never answered: it ends with its timeout.
		actx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if err := op(actx, js); err == nil {
			t.Errorf("%s: the JetStream change succeeded", user)
		}
		return w
	}

	t.Run("inventory adds billing.charge to its stream", func(t *testing.T) {
		before := streamConfig(ajs, "KV_stock")(t)
		cfg := config("KV_stock")
		cfg.Subjects = append(cfg.Subjects, contracts.SubjectBillingCharge)
		w := attempt(t, contracts.InventoryService, func(ctx context.Context, js jetstream.JetStream) error {
			_, err := js.UpdateStream(ctx, cfg)
			return err
		})
		refused(t, w, "$JS.API.STREAM.UPDATE.KV_stock")
		if after := streamConfig(ajs, "KV_stock")(t); after != before {
			t.Errorf("KV_stock changed:\n%s\n%s", before, after)
		}
	})
	t.Run("inventory creates a stream on billing.charge", func(t *testing.T) {
		w := attempt(t, contracts.InventoryService, func(ctx context.Context, js jetstream.JetStream) error {
			_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "KV_stock2", Subjects: []string{contracts.SubjectBillingCharge}})
			return err
		})
		refused(t, w, "$JS.API.STREAM.CREATE.KV_stock2")
		if _, err := ajs(contracts.InventoryService).Stream(ctx, "KV_stock2"); !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Errorf("stream KV_stock2: %v", err)
		}
	})
	t.Run("billing makes its bucket republish into order events", func(t *testing.T) {
		before := streamConfig(ajs, "KV_payments")(t)
		cfg := config("KV_payments")
		cfg.RePublish = &jetstream.RePublish{Source: ">", Destination: contracts.SubjectOrderFailed}
		w := attempt(t, contracts.BillingService, func(ctx context.Context, js jetstream.JetStream) error {
			_, err := js.UpdateStream(ctx, cfg)
			return err
		})
		refused(t, w, "$JS.API.STREAM.UPDATE.KV_payments")
		if after := streamConfig(ajs, "KV_payments")(t); after != before {
			t.Errorf("KV_payments changed:\n%s\n%s", before, after)
		}
	})
	for _, name := range []string{"reconcile", ""} {
		t.Run(fmt.Sprintf("order creates a push consumer (name %q) delivering into inventory.commit", name), func(t *testing.T) {
			before := streamConfig(ajs, "KV_orders")(t)
			subject := "$JS.API.CONSUMER.CREATE.KV_orders"
			if name != "" {
				subject += "." + name + ".$KV.orders.>"
			}
			w := attempt(t, contracts.OrderService, func(ctx context.Context, js jetstream.JetStream) error {
				// The request nats.go would send, with a deliver subject (jetstream's
				// typed API only makes pull consumers).
				body, _ := json.Marshal(map[string]any{"stream_name": "KV_orders", "config": map[string]any{
					"name": name, "deliver_subject": contracts.SubjectInventoryCommit, "filter_subject": "$KV.orders.>",
					"ack_policy": "none", "deliver_policy": "all",
				}})
				if name == "" {
					body, _ = json.Marshal(map[string]any{"stream_name": "KV_orders", "config": map[string]any{
						"deliver_subject": contracts.SubjectInventoryCommit, "ack_policy": "none", "deliver_policy": "all",
					}})
				}
				msg, err := js.Conn().RequestWithContext(ctx, subject, body)
				if err != nil {
					return err
				}
				var resp struct {
					Error *struct{ Description string } `json:"error"`
				}
				if json.Unmarshal(msg.Data, &resp) == nil && resp.Error != nil {
					return errors.New(resp.Error.Description)
				}
				return nil
			})
			refused(t, w, subject)
			if after := streamConfig(ajs, "KV_orders")(t); after != before {
				t.Errorf("KV_orders changed:\n%s\n%s", before, after)
			}
		})
	}
	t.Run("inventory creates a consumer on ORDER_EVENTS", func(t *testing.T) {
		before := streamConfig(ajs, contracts.OrderEventsStream)(t)
		w := attempt(t, contracts.InventoryService, func(ctx context.Context, js jetstream.JetStream) error {
			_, err := js.CreateOrUpdateConsumer(ctx, contracts.OrderEventsStream, jetstream.ConsumerConfig{
				Durable: contracts.InventoryCommitConsumer, FilterSubject: contracts.OrderEventsSubjects, MaxDeliver: 1,
			})
			return err
		})
		refused(t, w, "$JS.API.CONSUMER.CREATE.ORDER_EVENTS.inventory-commit.events.order.>")
		if after := streamConfig(ajs, contracts.OrderEventsStream)(t); after != before {
			t.Errorf("ORDER_EVENTS changed:\n%s\n%s", before, after)
		}
	})
}

// watchSHOP subscribes, as admin, to subjects of SHOP; the function it returns reports
// those that received anything sent before it was called (a flush: the server sends a
// connection's messages in order, so whatever came before the flush's answer is queued).
func watchSHOP(t *testing.T, s *server.Server, subjects []string) func() []string {
	t.Helper()
	admin := userConn(t, s, "admin")
	var subs []*nats.Subscription
	for _, subj := range subjects {
		sub, err := admin.nc.SubscribeSync(subj)
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, sub)
	}
	if err := admin.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return func() []string {
		if err := admin.nc.Flush(); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, sub := range subs {
			if n, _, _ := sub.Pending(); n > 0 {
				got = append(got, sub.Subject)
			}
		}
		return got
	}
}

// TestNATSConfigKeepsJetStreamAnswersHome: JetStream answers an API request on whatever
// reply subject the request names, with no permission check, and a direct get answers
// with a stored message, headers and all. So a user with a bucket of its own could store
// a record and have JetStream "answer" a direct get of it on another service's subject.
// In one shared account that set inventory's stock from billing's bucket (with a
// "Nats-Rollup: sub" header, rolling the key's history up), overwrote a payment or an
// order, stored a forged order event, and reached billing.refund (natsotel refused that
// one: no reply subject). Under nats.conf each service's own user has an account of its
// own: its JetStream's answers land in that account, where nothing but its own data lives.
//
// Each attacker stores a record and aims direct gets of it at every other service's data
// and endpoints, then one at its own inbox; when that answer has arrived (JetStream
// answers one stream's direct gets in order), every target is read, as admin, and must be
// as it was. Last, the provisioning user's answers.
func TestNATSConfigKeepsJetStreamAnswersHome(t *testing.T) {
	s, ajs := provisioned(t)
	ctx := t.Context()
	seed(t, s, map[string]map[string]string{
		contracts.BucketStock:        {"sku-3": `{"available":10}`},
		contracts.BucketOrders:       {"ord-1": `{"id":"ord-1","status":"failed"}`},
		contracts.BucketPayments:     {"ord-1": `{"order_id":"ord-1","status":"captured"}`},
		contracts.BucketReservations: {"ord-1": `{"order_id":"ord-1","state":"held"}`},
	})
	type target struct {
		subject string
		state   stateProbe
	}
	targets := map[string]target{
		contracts.BucketStock:        {"$KV.stock.sku-3", kvValue(ajs, contracts.BucketStock, "sku-3")},
		contracts.BucketOrders:       {"$KV.orders.ord-1", kvValue(ajs, contracts.BucketOrders, "ord-1")},
		contracts.BucketPayments:     {"$KV.payments.ord-1", kvValue(ajs, contracts.BucketPayments, "ord-1")},
		contracts.BucketReservations: {"$KV.reservations.ord-1", kvValue(ajs, contracts.BucketReservations, "ord-1")},
	}
	events := target{contracts.SubjectOrderConfirmed, streamConfig(ajs, contracts.OrderEventsStream)}
	// What each attacker may not write: every bucket but its own, and the order events
	// unless it is order (whose right that is) or inventory (whose input they are: it
	// may write its own stream).
	attackers := map[string]string{ // user -> its bucket
		contracts.OrderService:     contracts.BucketOrders,
		contracts.InventoryService: contracts.BucketStock,
		contracts.BillingService:   contracts.BucketPayments,
	}
	for user, own := range attackers {
		t.Run(user, func(t *testing.T) {
			var aims []target
			for bucket, tg := range targets {
				if provision.Owner(bucket) != user {
					aims = append(aims, tg)
				}
			}
			if user == contracts.BillingService {
				aims = append(aims, events)
			}
			// Endpoints it may not call must not even see the answer. (Into those order
			// calls, imported into its account, an answer does cross, with no reply
			// subject: natsotel refuses it, see TestMicroMessageWithoutReplyIsRefused.)
			for _, subj := range []string{contracts.SubjectBillingRefund, contracts.SubjectInventoryCommit, contracts.SubjectInventoryRelease} {
				if !slices.Contains(mayCall[user], subj) {
					aims = append(aims, target{subj, nil})
				}
			}
			before := make([]string, len(aims))
			for i, a := range aims {
				if a.state != nil {
					before[i] = a.state(t)
				}
			}
			// Endpoint subjects are watched as admin, in SHOP, where they are served.
			var endpoints []string
			for _, a := range aims {
				if a.state == nil {
					endpoints = append(endpoints, a.subject)
				}
			}
			reached := watchSHOP(t, s, endpoints)

			w := userConn(t, s, user)
			js, err := jetstream.New(w.nc)
			if err != nil {
				t.Fatal(err)
			}
			kv, err := js.KeyValue(ctx, own)
			if err != nil {
				t.Fatal(err)
			}
			rec := &nats.Msg{Subject: "$KV." + own + ".zz-evil", Data: []byte(`{"available":0,"id":"ord-1","order_id":"ord-1","status":"confirmed","state":"committed"}`), Header: nats.Header{}}
			rec.Header.Set("Nats-Rollup", "sub")
			rec.Header.Set("Nats-Msg-Id", "ord-1:confirmed")
			if _, err := js.PublishMsg(ctx, rec); err != nil {
				t.Fatalf("storing the record: %v", err)
			}
			if _, err := kv.Get(ctx, "zz-evil"); err != nil {
				t.Fatal(err)
			}
			get := "$JS.API.DIRECT.GET.KV_" + own + ".$KV." + own + ".zz-evil"
			for _, a := range aims {
				if err := w.nc.PublishMsg(&nats.Msg{Subject: get, Reply: a.subject}); err != nil {
					t.Fatal(err)
				}
			}
			// The same get, answered into its own inbox: the signal that the others were.
			answer, err := w.nc.Request(get, nil, 10*time.Second)
			if err != nil {
				t.Fatalf("direct get into its own inbox: %v", err)
			}
			if !strings.Contains(string(answer.Data), "committed") {
				t.Fatalf("direct get answered %q, not the record", answer.Data)
			}
			for i, a := range aims {
				if a.state == nil {
					continue
				}
				if after := a.state(t); after != before[i] {
					t.Errorf("%s changed through JetStream's answer:\nbefore %s\nafter  %s", a.subject, before[i], after)
				}
			}
			if got := reached(); len(got) > 0 {
				t.Errorf("JetStream's answer reached %v", got)
			}
			if v := w.violations(t); len(v) > 0 {
				t.Errorf("%s: the attempt itself was refused, so it proves nothing: %v", user, v)
			}
		})
	}
	// The provisioning user asks JetStream for stream infos (which it may), naming as the
	// reply subjects SHOP's endpoints and the trace destination (which it may not publish
	// to). Its answers land in PROVISION, its own account; in SHOP they were delivered.
	t.Run("provision", func(t *testing.T) {
		aims := []string{contracts.ControlSubject(contracts.BillingService), contracts.SubjectInventoryReserve, natsHopsSubject, "_INBOX_loadgen.x"}
		reached := watchSHOP(t, s, aims)
		w := userConn(t, s, "provision")
		info := "js.inventory.STREAM.INFO.KV_stock"
		for _, subj := range aims {
			if err := w.nc.PublishMsg(&nats.Msg{Subject: info, Reply: subj}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := w.nc.Request(info, nil, 10*time.Second); err != nil {
			t.Fatalf("stream info into its own inbox: %v", err)
		}
		if got := reached(); len(got) > 0 {
			t.Errorf("JetStream's answer to provision reached %v", got)
		}
		if v := w.violations(t); len(v) > 0 {
			t.Errorf("provision: the attempt itself was refused, so it proves nothing: %v", v)
		}
	})
}
