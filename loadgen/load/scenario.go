package load

import (
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"

	"github.com/natsotel/reference/services/contracts"
)

// request is one request the generator is about to send.
type request struct {
	scenario Scenario
	variant  string // which malformed input, or "known"/"unknown" for lookups
	subject  string
	body     []byte
	expect   []string // outcomes that are not "unexpected"
	// retry: an order.create with an idempotency key, safe to send again.
	retry bool
}

func (r request) expected(outcome string) bool { return slices.Contains(r.expect, outcome) }

// generator builds requests. Safe for concurrent use.
type generator struct {
	mu      sync.Mutex
	rng     *rand.Rand
	picker  picker
	inStock []string // SKUs with plenty of stock
	noStock []string // SKUs that never have stock
	recent  []string // ring of recently created order ids, for lookups
	next    int
}

const recentOrders = 256

func newGenerator(mix Mix, seed uint64) *generator {
	g := &generator{
		rng:    rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		picker: newPicker(mix),
	}
	for _, p := range contracts.Catalog {
		switch {
		case p.Seed == 0:
			g.noStock = append(g.noStock, p.SKU)
		case p.Seed >= 100_000:
			// Limited products (a few dozen units) would run out and turn valid orders into
			// 409s; they stay out of the generated traffic.
			g.inStock = append(g.inStock, p.SKU)
		}
	}
	return g
}

// remember records an order id for later lookups.
func (g *generator) remember(id string) {
	if id == "" {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.recent) < recentOrders {
		g.recent = append(g.recent, id)
		return
	}
	g.recent[g.next] = id
	g.next = (g.next + 1) % recentOrders
}

// nextRequest returns the next request of the mix.
func (g *generator) nextRequest() request {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.build(g.picker.pick(g.rng))
}

func (g *generator) build(s Scenario) request {
	switch s {
	case ScenarioOutOfStock:
		lines := append(g.lines(1), contracts.Line{SKU: g.oneOf(g.noStock), Qty: 1})
		return g.create(s, "", contracts.CreateOrderRequest{CustomerID: g.customer(), Lines: lines, Card: contracts.CardOK},
			contracts.CodeConflict)
	case ScenarioDeclinedCard:
		return g.create(s, "", contracts.CreateOrderRequest{CustomerID: g.customer(), Lines: g.lines(3), Card: contracts.CardDeclined},
			contracts.CodePaymentDeclined)
	case ScenarioMalformed:
		return g.malformed()
	case ScenarioLookup:
		if len(g.recent) == 0 {
			return g.lookup("unknown", fmt.Sprintf("ord-loadgen-missing-%d", g.rng.Uint32()), contracts.CodeNotFound)
		}
		return g.lookup("known", g.recent[g.rng.IntN(len(g.recent))], OutcomeOK)
	default:
		// A valid order can still meet a conflict (stock raced away) or a decline (billing's
		// fault injection): those are the system answering correctly.
		return g.create(ScenarioValidOrder, "", contracts.CreateOrderRequest{CustomerID: g.customer(), Lines: g.lines(3), Card: contracts.CardOK},
			OutcomeOK, contracts.CodeConflict, contracts.CodePaymentDeclined)
	}
}

// malformed variants: each is answered with 400 and changes nothing.
var malformedVariants = []string{"bad_json", "zero_qty", "negative_qty", "unknown_sku", "no_lines"}

func (g *generator) malformed() request {
	v := malformedVariants[g.rng.IntN(len(malformedVariants))]
	order := contracts.CreateOrderRequest{CustomerID: g.customer(), Lines: g.lines(2), Card: contracts.CardOK}
	switch v {
	case "bad_json":
		return request{scenario: ScenarioMalformed, variant: v, subject: contracts.SubjectOrderCreate,
			body: []byte(`{"customer_id":"` + order.CustomerID + `","lines":[{"sku":`), expect: []string{contracts.CodeBadRequest}}
	case "zero_qty":
		order.Lines[0].Qty = 0
	case "negative_qty":
		order.Lines[0].Qty = -1 - g.rng.IntN(5)
	case "unknown_sku":
		order.Lines[0].SKU = "sku-does-not-exist"
	case "no_lines":
		order.Lines = nil
	}
	return g.create(ScenarioMalformed, v, order, contracts.CodeBadRequest)
}

func (g *generator) create(s Scenario, variant string, o contracts.CreateOrderRequest, expect ...string) request {
	retry := s != ScenarioMalformed
	if retry {
		o.IdempotencyKey = idempotencyKey()
	}
	body, err := json.Marshal(o)
	if err != nil {
		panic(fmt.Sprintf("load: marshal order: %v", err)) // plain struct: cannot fail
	}
	return request{scenario: s, variant: variant, subject: contracts.SubjectOrderCreate, body: body, expect: expect, retry: retry}
}

// idempotencyKey returns a new key for one order: random (not from the seeded
// generator), so that runs with the same seed against the same store never share one.
func idempotencyKey() string {
	var b [16]byte
	_, _ = crand.Read(b[:])
	return "lg-" + hex.EncodeToString(b[:])
}

func (g *generator) lookup(variant, id string, expect ...string) request {
	body, err := json.Marshal(contracts.GetOrderRequest{ID: id})
	if err != nil {
		panic(fmt.Sprintf("load: marshal lookup: %v", err))
	}
	return request{scenario: ScenarioLookup, variant: variant, subject: contracts.SubjectOrderGet, body: body, expect: expect}
}

// lines returns 1..maxLines lines of distinct in-stock SKUs, 1 to 3 units each.
func (g *generator) lines(maxLines int) []contracts.Line {
	n := 1 + g.rng.IntN(min(maxLines, len(g.inStock)))
	skus := slices.Clone(g.inStock)
	g.rng.Shuffle(len(skus), func(i, j int) { skus[i], skus[j] = skus[j], skus[i] })
	lines := make([]contracts.Line, n)
	for i := range lines {
		lines[i] = contracts.Line{SKU: skus[i], Qty: 1 + g.rng.IntN(3)}
	}
	return lines
}

func (g *generator) customer() string { return fmt.Sprintf("cust-%03d", g.rng.IntN(1000)) }

func (g *generator) oneOf(xs []string) string { return xs[g.rng.IntN(len(xs))] }
