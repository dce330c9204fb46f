package load

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestParseMix(t *testing.T) {
	m, err := ParseMix("valid=70, out_of_stock=10,declined=10,malformed=5,lookup=5")
	if err != nil {
		t.Fatal(err)
	}
	want := Mix{ScenarioValidOrder: 70, ScenarioOutOfStock: 10, ScenarioDeclinedCard: 10, ScenarioMalformed: 5, ScenarioLookup: 5}
	for _, s := range Scenarios {
		if m[s] != want[s] {
			t.Errorf("%s = %v, want %v", s, m[s], want[s])
		}
	}
	if got := m.String(); got != "valid_order=70,out_of_stock=10,declined_card=10,malformed=5,lookup=5" {
		t.Errorf("String() = %q", got)
	}
	if again, err := ParseMix(m.String()); err != nil || again.String() != m.String() {
		t.Errorf("round trip: %v %v", again, err)
	}
	if got := m.Share(ScenarioValidOrder); got != 0.7 {
		t.Errorf("share = %v", got)
	}

	for _, bad := range []string{"", "valid", "valid=x", "valid=-1", "nope=1", "valid=0", "valid=NaN"} {
		if _, err := ParseMix(bad); err == nil {
			t.Errorf("ParseMix(%q): want error", bad)
		}
	}
}

func TestPickerFollowsWeights(t *testing.T) {
	mix := Mix{ScenarioValidOrder: 60, ScenarioOutOfStock: 30, ScenarioLookup: 10}
	p := newPicker(mix)
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 200_000
	counts := map[Scenario]int{}
	for range n {
		counts[p.pick(rng)]++
	}
	for _, s := range Scenarios {
		got := float64(counts[s]) / n
		// 200k draws: the standard error of a share is at most 0.0012; 0.01 is > 8 sigma.
		if math.Abs(got-mix.Share(s)) > 0.01 {
			t.Errorf("%s: share %.4f, want %.2f", s, got, mix.Share(s))
		}
	}
	if counts[ScenarioDeclinedCard] != 0 || counts[ScenarioMalformed] != 0 {
		t.Errorf("zero-weight scenarios drawn: %v", counts)
	}
}

func TestPickerSingleScenario(t *testing.T) {
	p := newPicker(Mix{ScenarioLookup: 1})
	rng := rand.New(rand.NewPCG(3, 4))
	for range 1000 {
		if s := p.pick(rng); s != ScenarioLookup {
			t.Fatalf("picked %s", s)
		}
	}
}
