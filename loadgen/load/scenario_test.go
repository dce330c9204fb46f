package load

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/natsotel/reference/services/contracts"
)

func TestGeneratorBuildsEveryScenario(t *testing.T) {
	g := newGenerator(DefaultMix(), 42)
	for range 200 {
		for _, s := range Scenarios {
			req := g.build(s)
			if req.scenario != s {
				t.Fatalf("built %s for %s", req.scenario, s)
			}
			checkRequest(t, req)
		}
	}
}

func checkRequest(t *testing.T, req request) {
	t.Helper()
	switch req.scenario {
	case ScenarioLookup:
		var in contracts.GetOrderRequest
		if req.subject != contracts.SubjectOrderGet || json.Unmarshal(req.body, &in) != nil || in.ID == "" {
			t.Fatalf("lookup: %s %s", req.subject, req.body)
		}
		return
	case ScenarioMalformed:
		if !slices.Equal(req.expect, []string{contracts.CodeBadRequest}) {
			t.Fatalf("malformed %s expects %v", req.variant, req.expect)
		}
		if req.variant == "bad_json" {
			if json.Valid(req.body) {
				t.Fatalf("bad_json is valid JSON: %s", req.body)
			}
			return
		}
	}
	var in contracts.CreateOrderRequest
	if req.subject != contracts.SubjectOrderCreate || json.Unmarshal(req.body, &in) != nil {
		t.Fatalf("%s: %s %s", req.scenario, req.subject, req.body)
	}
	valid := len(in.Lines) > 0
	oos := false
	for _, l := range in.Lines {
		p, ok := contracts.FindProduct(l.SKU)
		valid = valid && ok && l.Qty >= 1 && l.Qty <= contracts.MaxQty
		oos = oos || (ok && p.Seed == 0)
	}
	switch req.scenario {
	case ScenarioValidOrder:
		if !valid || oos || in.Card != contracts.CardOK || !slices.Contains(req.expect, OutcomeOK) {
			t.Fatalf("valid order is not: %s expect %v", req.body, req.expect)
		}
	case ScenarioOutOfStock:
		if !valid || !oos || !slices.Equal(req.expect, []string{contracts.CodeConflict}) {
			t.Fatalf("out of stock: %s expect %v", req.body, req.expect)
		}
	case ScenarioDeclinedCard:
		if !valid || oos || in.Card != contracts.CardDeclined || !slices.Equal(req.expect, []string{contracts.CodePaymentDeclined}) {
			t.Fatalf("declined: %s expect %v", req.body, req.expect)
		}
	case ScenarioMalformed:
		if valid {
			t.Fatalf("malformed %s is valid: %s", req.variant, req.body)
		}
	}
}

func TestLookupUsesRememberedOrders(t *testing.T) {
	g := newGenerator(Mix{ScenarioLookup: 1}, 7)
	req := g.nextRequest()
	if !slices.Equal(req.expect, []string{contracts.CodeNotFound}) || req.variant != "unknown" {
		t.Fatalf("no order known yet: want a 404 lookup, got %+v", req)
	}
	g.remember("ord-1")
	req = g.nextRequest()
	var in contracts.GetOrderRequest
	if err := json.Unmarshal(req.body, &in); err != nil || in.ID != "ord-1" || !slices.Equal(req.expect, []string{OutcomeOK}) {
		t.Fatalf("lookup after remember: %s %v", req.body, req.expect)
	}
	for i := range 2 * recentOrders {
		g.remember("ord-x" + string(rune('a'+i%26)))
	}
	if len(g.recent) != recentOrders {
		t.Fatalf("ring holds %d", len(g.recent))
	}
}

// The same seed gives the same requests, but for their idempotency keys: those are
// random, so that two runs with the same seed against the same store are two sets of
// orders, not replays of the first.
func TestGeneratorIsReproducible(t *testing.T) {
	a, b := newGenerator(DefaultMix(), 99), newGenerator(DefaultMix(), 99)
	keyed := 0
	for range 100 {
		ra, rb := a.nextRequest(), b.nextRequest()
		ka, bodyA := withoutKey(t, ra.body)
		kb, bodyB := withoutKey(t, rb.body)
		if ra.scenario != rb.scenario || bodyA != bodyB {
			t.Fatalf("same seed, different requests: %s vs %s", ra.body, rb.body)
		}
		if ka != "" {
			keyed++
			if ka == kb {
				t.Fatalf("two generators made the same idempotency key %s", ka)
			}
		}
		if (ka != "") != ra.retry {
			t.Fatalf("%s: retry %v", ra.body, ra.retry)
		}
	}
	if keyed == 0 {
		t.Fatal("no create with an idempotency key")
	}
}

// withoutKey returns a create body's idempotency key and the body without it.
func withoutKey(t *testing.T, body []byte) (key, rest string) {
	var m map[string]any
	if json.Unmarshal(body, &m) != nil {
		return "", string(body) // a malformed variant
	}
	key, _ = m["idempotency_key"].(string)
	delete(m, "idempotency_key")
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return key, string(b)
}
