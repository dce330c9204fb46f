package load

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
)

// Scenario names a kind of request the load generator sends. The names are the values of
// the loadgen.scenario attribute and baggage member.
type Scenario string

const (
	// ScenarioValidOrder creates an order of in-stock products with an accepted card.
	ScenarioValidOrder Scenario = "valid_order"
	// ScenarioOutOfStock orders a product that never has stock (expects 409).
	ScenarioOutOfStock Scenario = "out_of_stock"
	// ScenarioDeclinedCard orders with the test card billing always declines (expects 402).
	ScenarioDeclinedCard Scenario = "declined_card"
	// ScenarioMalformed sends bad input: broken JSON, zero or negative quantity, an
	// unknown SKU or no lines (expects 400).
	ScenarioMalformed Scenario = "malformed"
	// ScenarioLookup reads back a recently created order with order.get (expects ok; 404
	// when no order has been created yet and a made-up id is looked up).
	ScenarioLookup Scenario = "lookup"
	// ScenarioCustom is every request when Config.Subject is set: its subject and payload
	// (expects a reply without a micro error). It is not part of a Mix.
	ScenarioCustom Scenario = "custom"
)

// Scenarios lists every scenario in a stable order.
var Scenarios = []Scenario{ScenarioValidOrder, ScenarioOutOfStock, ScenarioDeclinedCard, ScenarioMalformed, ScenarioLookup}

// scenarioAliases are the short names ParseMix accepts besides the full ones.
var scenarioAliases = map[string]Scenario{
	"valid":    ScenarioValidOrder,
	"oos":      ScenarioOutOfStock,
	"declined": ScenarioDeclinedCard,
	"bad":      ScenarioMalformed,
	"get":      ScenarioLookup,
}

// ParseScenario returns the scenario called name (full name or alias).
func ParseScenario(name string) (Scenario, bool) {
	name = strings.TrimSpace(strings.ToLower(name))
	if s, ok := scenarioAliases[name]; ok {
		return s, true
	}
	if slices.Contains(Scenarios, Scenario(name)) {
		return Scenario(name), true
	}
	return "", false
}

// Mix is a weighted choice of scenarios. Weights are relative (they need not sum to 100).
// A nil or all-zero Mix is replaced by DefaultMix.
type Mix map[Scenario]float64

// DefaultMix is mostly valid orders with a few of every failure, as a shop would see.
func DefaultMix() Mix {
	return Mix{
		ScenarioValidOrder:   70,
		ScenarioOutOfStock:   10,
		ScenarioDeclinedCard: 10,
		ScenarioMalformed:    5,
		ScenarioLookup:       5,
	}
}

// ParseMix parses "valid=70,out_of_stock=10,declined=10,malformed=5,lookup=5". Scenarios
// not named get weight 0. Aliases: valid, oos, declined, bad, get.
func ParseMix(s string) (Mix, error) {
	m := Mix{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, weight, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("load: mix %q: %q is not name=weight", s, part)
		}
		sc, ok := ParseScenario(name)
		if !ok {
			return nil, fmt.Errorf("load: mix %q: unknown scenario %q (want one of %s)", s, name, scenarioList())
		}
		w, err := strconv.ParseFloat(strings.TrimSpace(weight), 64)
		if err != nil || w < 0 || w != w {
			return nil, fmt.Errorf("load: mix %q: weight of %s must be a number >= 0", s, name)
		}
		m[sc] += w
	}
	if m.total() == 0 {
		return nil, fmt.Errorf("load: mix %q: no scenario has a positive weight", s)
	}
	return m, nil
}

func scenarioList() string {
	names := make([]string, len(Scenarios))
	for i, s := range Scenarios {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// String formats m as ParseMix reads it, in Scenarios order.
func (m Mix) String() string {
	var parts []string
	for _, s := range Scenarios {
		if w := m[s]; w > 0 {
			parts = append(parts, string(s)+"="+strconv.FormatFloat(w, 'g', -1, 64))
		}
	}
	return strings.Join(parts, ",")
}

// Share returns the fraction (0..1) of requests of scenario s.
func (m Mix) Share(s Scenario) float64 {
	t := m.total()
	if t == 0 {
		return 0
	}
	return m[s] / t
}

func (m Mix) total() float64 {
	var t float64
	for _, s := range Scenarios {
		t += max(m[s], 0)
	}
	return t
}

// picker draws scenarios with the weights of a Mix.
type picker struct {
	scenarios []Scenario
	cum       []float64 // cumulative weights
}

func newPicker(m Mix) picker {
	var p picker
	var acc float64
	for _, s := range Scenarios {
		if w := m[s]; w > 0 {
			acc += w
			p.scenarios = append(p.scenarios, s)
			p.cum = append(p.cum, acc)
		}
	}
	return p
}

// pick draws one scenario.
func (p picker) pick(rng *rand.Rand) Scenario {
	x := rng.Float64() * p.cum[len(p.cum)-1]
	i, _ := slices.BinarySearch(p.cum, x)
	// BinarySearch finds the first cum >= x; x == cum[i] belongs to the next bucket.
	for i < len(p.cum)-1 && p.cum[i] <= x {
		i++
	}
	return p.scenarios[i]
}
