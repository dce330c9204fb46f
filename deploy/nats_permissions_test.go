package deploy

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/natsotel/reference/loadgen/load"
	"github.com/natsotel/reference/services/app"
	"github.com/natsotel/reference/services/contracts"
)

// endpointSubjects is every micro endpoint of the shop (contracts), control endpoints
// included, and the load generator's control endpoint.
var endpointSubjects = []string{
	contracts.SubjectOrderCreate, contracts.SubjectOrderGet, contracts.ControlSubject(contracts.OrderService),
	contracts.SubjectInventoryReserve, contracts.SubjectInventoryRelease, contracts.SubjectInventoryCommit,
	contracts.SubjectInventoryStock, contracts.ControlSubject(contracts.InventoryService),
	contracts.SubjectBillingCharge, contracts.SubjectBillingRefund, contracts.SubjectBillingPayment,
	contracts.ControlSubject(contracts.BillingService),
	load.ControlSubject,
}

// mayCall is, per NATS user, exactly the endpoints it may send requests to. Everything
// else in endpointSubjects must be refused by the server.
var mayCall = map[string][]string{
	"order": {
		contracts.SubjectInventoryReserve, contracts.SubjectInventoryRelease,
		contracts.SubjectBillingCharge, contracts.SubjectBillingRefund,
	},
	"inventory": nil,
	"billing":   nil,
	"loadgen": {
		contracts.SubjectOrderCreate, contracts.SubjectOrderGet,
		contracts.ControlSubject(contracts.OrderService),
		contracts.ControlSubject(contracts.InventoryService),
		contracts.ControlSubject(contracts.BillingService),
	},
	"probe":               nil,
	"provision":           nil,
	"order-responder":     nil,
	"inventory-responder": nil,
	"billing-responder":   nil,
	"loadgen-responder":   nil,
}

// responders are the users the endpoints are served as (services/app.ConnectResponder):
// they may receive their service's requests and answer into inboxes, nothing else.
var responders = []string{"order-responder", "inventory-responder", "billing-responder", "loadgen-responder"}

// mayServe is, per NATS user, the endpoints it may subscribe to (serve). A service's own
// user serves nothing: it may write the service's data, so a reply it sent to a subject
// of the caller's choosing could land there.
var mayServe = map[string][]string{
	"order-responder": {contracts.SubjectOrderCreate, contracts.SubjectOrderGet, contracts.ControlSubject(contracts.OrderService)},
	"inventory-responder": {
		contracts.SubjectInventoryReserve, contracts.SubjectInventoryRelease, contracts.SubjectInventoryCommit,
		contracts.SubjectInventoryStock, contracts.ControlSubject(contracts.InventoryService),
	},
	"billing-responder": {
		contracts.SubjectBillingCharge, contracts.SubjectBillingRefund, contracts.SubjectBillingPayment,
		contracts.ControlSubject(contracts.BillingService),
	},
	"loadgen-responder": {load.ControlSubject},
}

// bucketOwner maps each KeyValue bucket to the only user that may read or write it.
var bucketOwner = map[string]string{
	contracts.BucketOrders:       "order",
	contracts.BucketStock:        "inventory",
	contracts.BucketReservations: "inventory",
	contracts.BucketPayments:     "billing",
}

// permChecker asks a real server, as one user, whether a publish or a subscription is
// allowed. The server answers a refused operation with an asynchronous -ERR; to know
// deterministically that an allowed one got none, each check is followed by the same
// operation on a canary subject no user may use, and the errors are read in order until
// the canary's arrives.
type permChecker struct {
	t    *testing.T
	user string
	nc   *nats.Conn
	errs chan error
	n    int
}

func newPermChecker(t *testing.T, s *server.Server, user string) *permChecker {
	t.Helper()
	u := natsUser(natsConfig(t), user)
	if u == nil {
		t.Fatalf("no NATS user %s", user)
	}
	errs := make(chan error, 256)
	nc, err := nats.Connect(s.ClientURL(),
		nats.UserInfo(u.Username, u.Password),
		nats.Name("permcheck-"+user),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }),
	)
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	return &permChecker{t: t, user: user, nc: nc, errs: errs}
}

func (c *permChecker) canPublish(subject string) bool {
	return c.check("Publish", subject, func(subj string) error { return c.nc.Publish(subj, []byte("{}")) })
}

func (c *permChecker) canSubscribe(subject, queue string) bool {
	return c.check("Subscription", subject, func(subj string) error {
		var sub *nats.Subscription
		var err error
		if queue != "" {
			sub, err = c.nc.QueueSubscribeSync(subj, queue)
		} else {
			sub, err = c.nc.SubscribeSync(subj)
		}
		if err == nil {
			c.t.Cleanup(func() { _ = sub.Unsubscribe() })
		}
		return err
	})
}

func (c *permChecker) check(verb, subject string, op func(string) error) bool {
	c.t.Helper()
	c.n++
	canary := fmt.Sprintf("_CANARY.%s.%d", c.user, c.n)
	if err := op(subject); err != nil {
		c.t.Fatalf("%s %s: %v", verb, subject, err)
	}
	if err := op(canary); err != nil {
		c.t.Fatalf("%s %s: %v", verb, canary, err)
	}
	if err := c.nc.Flush(); err != nil {
		c.t.Fatalf("flush: %v", err)
	}
	refused := false
	deadline := time.After(10 * time.Second)
	for {
		select {
		case err := <-c.errs:
			if !errors.Is(err, nats.ErrPermissionViolation) {
				c.t.Fatalf("%s: unexpected async error: %v", c.user, err)
			}
			msg := err.Error()
			switch {
			case strings.Contains(msg, verb) && strings.Contains(msg, fmt.Sprintf("%q", canary)):
				return !refused
			case strings.Contains(msg, verb) && strings.Contains(msg, fmt.Sprintf("%q", subject)):
				refused = true
			default:
				c.t.Fatalf("%s: permission error for something else: %v", c.user, err)
			}
		case <-deadline:
			c.t.Fatalf("%s: no permissions violation for canary %s: is it allowed?", c.user, canary)
		}
	}
}

func TestNATSConfigHealthz(t *testing.T) {
	s := startNATS(t)
	// The URL compose's healthcheck polls (with the test's random monitoring port).
	resp, err := http.Get(fmt.Sprintf("http://%s/healthz?js-enabled-only=true", s.MonitorAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %s %s", resp.Status, body)
	}
	if !s.JetStreamEnabled() {
		t.Fatal("JetStream is not enabled by nats.conf")
	}
}

func TestNATSConfigAdminIsUnrestricted(t *testing.T) {
	u := natsUser(natsConfig(t), "admin")
	if u == nil {
		t.Fatal("no admin user for the nats CLI")
	}
	if u.Permissions != nil {
		t.Errorf("admin has permissions %+v; it is the humans' unrestricted user", u.Permissions)
	}
}

func TestNATSConfigWrongPasswordRefused(t *testing.T) {
	s := startNATS(t)
	nc, err := nats.Connect(s.ClientURL(), nats.UserInfo("order", "not-the-password"), nats.MaxReconnects(0))
	if err == nil {
		nc.Close()
		t.Fatal("connected with a wrong password")
	}
	if !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("err = %v, want %v", err, nats.ErrAuthorization)
	}
	if _, err := nats.Connect(s.ClientURL(), nats.MaxReconnects(0)); err == nil {
		t.Fatal("connected without credentials")
	}
}

// TestNATSConfigEndpointMatrix tries, as every user, to call and to serve every endpoint
// of the shop, and checks the server allows exactly mayCall and mayServe.
func TestNATSConfigEndpointMatrix(t *testing.T) {
	s := startNATS(t)
	for _, user := range sortedCopy(mapKeys(mayCall)) {
		t.Run(user, func(t *testing.T) {
			c := newPermChecker(t, s, user)
			for _, subj := range endpointSubjects {
				if got, want := c.canPublish(subj), slices.Contains(mayCall[user], subj); got != want {
					t.Errorf("%s publish %s: allowed=%v, want %v", user, subj, got, want)
				}
				// micro endpoints subscribe with queue group "q".
				if got, want := c.canSubscribe(subj, "q"), slices.Contains(mayServe[user], subj); got != want {
					t.Errorf("%s serve %s: allowed=%v, want %v", user, subj, got, want)
				}
			}
		})
	}
}

// TestNATSConfigLeastPrivilege covers the rest: JetStream, KeyValue, events, discovery
// and the system account, for every user.
func TestNATSConfigLeastPrivilege(t *testing.T) {
	s := startNATS(t)
	type rule struct {
		verb, subject string
		allowed       func(user string) bool
	}
	only := func(users ...string) func(string) bool {
		return func(u string) bool { return slices.Contains(users, u) }
	}
	nobody := only()
	rules := []rule{
		// Replies: nobody may listen to nats.go's default inboxes, i.e. to everybody's
		// replies (each user has its own prefix, added below).
		{"sub", "_INBOX.>", nobody},
		{"sub", "_INBOX.abc.*", nobody},
		{"sub", "*.>", nobody},
		// Nobody may listen to everything or to the order events as plain NATS.
		{"sub", ">", nobody},
		{"sub", "events.order.>", nobody},
		// Only order publishes order events: nobody can forge a confirmation.
		{"pub", contracts.SubjectOrderConfirmed, only("order")},
		{"pub", contracts.SubjectOrderFailed, only("order")},
		// Only inventory's durable consumer is read and acked, by inventory.
		{"pub", "$JS.API.CONSUMER.MSG.NEXT.ORDER_EVENTS." + contracts.InventoryCommitConsumer, only("inventory")},
		{"pub", "$JS.ACK.ORDER_EVENTS." + contracts.InventoryCommitConsumer + ".1.1.1.1.0", only("inventory")},
		{"pub", "$JS.API.CONSUMER.INFO.ORDER_EVENTS." + contracts.InventoryCommitConsumer, only("inventory")},
		{"pub", "$JS.API.CONSUMER.CREATE.ORDER_EVENTS.someone-else", nobody},
		{"pub", "$JS.API.CONSUMER.CREATE.ORDER_EVENTS.someone-else.events.order.>", nobody},
		{"pub", "$JS.API.CONSUMER.CREATE.ORDER_EVENTS", nobody},
		{"pub", "$JS.API.CONSUMER.DURABLE.CREATE.ORDER_EVENTS.x", nobody},
		{"pub", "$JS.API.CONSUMER.DELETE.ORDER_EVENTS." + contracts.InventoryCommitConsumer, nobody},
		// Only provisioning creates the inventory consumer (with a filter subject, as
		// nats.go asks), in inventory's account (js.inventory: PROVISION's import of its
		// JetStream API); no service creates any consumer: a consumer create request names
		// its deliver subject, which the server does not check against the creator's
		// permissions.
		{"pub", "$JS.API.CONSUMER.CREATE.ORDER_EVENTS." + contracts.InventoryCommitConsumer + ".events.order.>", nobody},
		{"pub", "js.inventory.CONSUMER.CREATE.ORDER_EVENTS." + contracts.InventoryCommitConsumer + ".events.order.>", only("provision")},
		{"pub", "js.inventory.CONSUMER.INFO.ORDER_EVENTS." + contracts.InventoryCommitConsumer, only("provision")},
		{"pub", "js.inventory.CONSUMER.CREATE.ORDER_EVENTS.someone-else.events.order.>", nobody},
		{"pub", "js.inventory.CONSUMER.DELETE.ORDER_EVENTS." + contracts.InventoryCommitConsumer, nobody},
		{"pub", "$JS.API.CONSUMER.CREATE.KV_orders", nobody},
		{"pub", "$JS.API.CONSUMER.CREATE.KV_orders.x.$KV.orders.>", nobody},
		// No service can destroy data or reshape a stream; only provisioning creates and
		// updates them, and nobody deletes or purges.
		{"pub", "$JS.API.STREAM.DELETE.ORDER_EVENTS", nobody},
		{"pub", "$JS.API.STREAM.UPDATE.ORDER_EVENTS", nobody},
		{"pub", "$JS.API.STREAM.CREATE.ORDER_EVENTS", nobody},
		{"pub", "$JS.API.STREAM.INFO.ORDER_EVENTS", only("inventory")},
		{"pub", "$JS.API.STREAM.PURGE.ORDER_EVENTS", nobody},
		{"pub", "$JS.API.STREAM.DELETE.KV_stock", nobody},
		{"pub", "$JS.API.STREAM.LIST", nobody},
		{"pub", "js.inventory.STREAM.UPDATE.ORDER_EVENTS", only("provision")},
		{"pub", "js.inventory.STREAM.CREATE.ORDER_EVENTS", only("provision")},
		{"pub", "js.inventory.STREAM.INFO.ORDER_EVENTS", only("provision")},
		{"pub", "js.inventory.STREAM.PURGE.ORDER_EVENTS", nobody},
		{"pub", "js.inventory.STREAM.DELETE.ORDER_EVENTS", nobody},
		{"pub", "js.order.STREAM.LIST", nobody},
		{"pub", "js.billing.STREAM.MSG.DELETE.KV_payments", nobody},
		// Discovery: every micro service answers $SRV for its own name only, as its
		// responder; only the probe asks.
		{"sub", "$SRV.PING", only(responders...)},
		{"sub", "$SRV.INFO.loadgen", only("loadgen-responder")},
		{"sub", "$SRV.STATS.order", only("order-responder")},
		{"sub", "$SRV.INFO.inventory.someid", only("inventory-responder")},
		{"sub", "$SRV.PING.billing", only("billing-responder")},
		// Replies: only responders publish into inboxes, and only into their callers'.
		{"pub", "_INBOX.abc.def", only(responders...)},
		{"pub", "_INBOX_probe.abc.def", only(responders...)},
		{"pub", "_INBOX_loadgen.abc.def", only("order-responder", "inventory-responder", "billing-responder")},
		// order's requests cross from its account on server-made "_R_." reply subjects
		{"pub", "_R_.abc.def", only("inventory-responder", "billing-responder")},
		{"pub", "_INBOX_order.abc.def", nobody},
		{"pub", "_INBOX_inventory.abc.def", nobody},
		{"pub", "_INBOX_billing.abc.def", nobody},
		{"pub", "$SRV.PING", only("probe")},
		{"pub", "$SRV.STATS.inventory", only("probe")},
		// The system account is out of reach.
		{"pub", "$SYS.REQ.SERVER.PING", nobody},
	}
	// Each user subscribes to its own inbox prefix (services/app.InboxPrefix) and to no
	// other user's; a responder, which asks nothing, to none.
	for _, user := range sortedCopy(mapKeys(mayCall)) {
		own := only(user)
		if slices.Contains(responders, user) {
			own = nobody
		}
		rules = append(rules,
			rule{"sub", "_INBOX_" + user + ".>", own},
			rule{"sub", "_INBOX_" + user + ".abc.*", own},
			rule{"sub", "_INBOX_" + user + ".abc.def", own},
		)
	}
	for bucket, owner := range bucketOwner {
		stream := "KV_" + bucket
		rules = append(rules,
			rule{"pub", "$KV." + bucket + ".some-key", only(owner)},
			rule{"pub", "$JS.API.DIRECT.GET." + stream + ".$KV." + bucket + ".some-key", only(owner)},
			rule{"pub", "$JS.API.STREAM.INFO." + stream, only(owner)},
			rule{"pub", "$JS.API.STREAM.CREATE." + stream, nobody},
			rule{"pub", "$JS.API.STREAM.UPDATE." + stream, nobody},
			rule{"pub", "$JS.API.STREAM.DELETE." + stream, nobody},
			rule{"pub", "js." + owner + ".STREAM.INFO." + stream, only("provision")},
			rule{"pub", "js." + owner + ".STREAM.CREATE." + stream, only("provision")},
			rule{"pub", "js." + owner + ".STREAM.UPDATE." + stream, only("provision")},
			rule{"pub", "js." + owner + ".STREAM.DELETE." + stream, nobody},
			rule{"pub", "js." + owner + ".STREAM.PURGE." + stream, nobody},
			rule{"pub", "js." + owner + ".DIRECT.GET." + stream + ".$KV." + bucket + ".some-key", nobody},
			rule{"pub", "$JS.API.STREAM.PURGE." + stream, nobody},
			rule{"pub", "$JS.API.CONSUMER.CREATE." + stream, nobody},
			rule{"sub", "$KV." + bucket + ".>", nobody},
		)
	}
	for _, user := range sortedCopy(mapKeys(mayCall)) {
		t.Run(user, func(t *testing.T) {
			c := newPermChecker(t, s, user)
			for _, r := range rules {
				var got bool
				if r.verb == "pub" {
					got = c.canPublish(r.subject)
				} else {
					got = c.canSubscribe(r.subject, "")
				}
				if want := r.allowed(user); got != want {
					t.Errorf("%s %s %s: allowed=%v, want %v", user, r.verb, r.subject, got, want)
				}
			}
		})
	}
}

func mapKeys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestNATSConfigInboxPrefixes ties compose.yaml, services/app.Connect and nats.conf
// together: the inbox prefix Connect derives from each Go service's compose environment
// is one its NATS user may subscribe to, and no other user may.
func TestNATSConfigInboxPrefixes(t *testing.T) {
	s := startNATS(t)
	project := loadCompose(t)
	users := sortedCopy(mapKeys(mayCall))
	checkers := map[string]*permChecker{}
	for _, u := range users {
		checkers[u] = newPermChecker(t, s, u)
	}
	for _, name := range sortedCopy(mapKeys(goServices)) {
		svc, ok := project.Services[name]
		if !ok {
			t.Fatalf("no compose service %s", name)
		}
		user := env(svc, "NATS_USER")
		prefix, err := app.InboxPrefix(func(key string) string { return env(svc, key) })
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if want := "_INBOX_" + user; prefix != want {
			t.Errorf("%s: inbox prefix %q, want %q", name, prefix, want)
		}
		// What nats.go subscribes to for request replies (the response mux).
		mux := prefix + ".abcdefghijklmnopqrstuv.*"
		for _, u := range users {
			if got, want := checkers[u].canSubscribe(mux, ""), u == user; got != want {
				t.Errorf("user %s subscribe %s (%s's replies): allowed=%v, want %v", u, mux, name, got, want)
			}
		}
	}
}
