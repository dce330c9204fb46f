package fault

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/natsotel/reference/services/contracts"
)

func TestSetValidates(t *testing.T) {
	in := New(1, Delay, Nak)
	for _, tc := range []struct {
		cfg  contracts.FaultConfig
		want string
	}{
		{contracts.FaultConfig{DropShare: 1.01}, "drop_share must be between 0 and 1"},
		{contracts.FaultConfig{DeclineShare: 0.5}, "decline_share is not supported"},
		{contracts.FaultConfig{DelayShare: 1, Delay: "x"}, "delay must be a non-negative Go duration"},
		{contracts.FaultConfig{DelayShare: 1, Delay: "50s", DelayJitter: "11s"}, "at most 1m0s"},
	} {
		if err := in.Set(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Set(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
	if in.Config() != (contracts.FaultConfig{}) {
		t.Fatalf("a refused config was applied: %+v", in.Config())
	}
	billing := New(1, Decline)
	if err := billing.Set(contracts.FaultConfig{DelayShare: 0, Delay: "1s"}); err == nil {
		t.Error("billing accepted a delay")
	}
}

func TestSharesAndSpans(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tracer := trace.NewTracerProvider(trace.WithSpanProcessor(rec)).Tracer("t")
	in := New(42, Delay, Nak)
	if err := in.Set(contracts.FaultConfig{DropShare: 0.25, DelayShare: 1, Delay: "10ms", DelayJitter: "5ms"}); err != nil {
		t.Fatal(err)
	}
	const n = 4000
	drops := 0
	for range n {
		ctx, span := tracer.Start(context.Background(), "op")
		in.Annotate(ctx)
		if in.Drop(ctx) {
			drops++
		}
		if d := in.Delay(ctx); d < 10*time.Millisecond || d > 15*time.Millisecond {
			t.Fatalf("delay %v outside [10ms, 15ms]", d)
		}
		if in.Nak(ctx) {
			t.Fatal("nak with nak_share 0")
		}
		span.End()
	}
	if drops < n*22/100 || drops > n*28/100 {
		t.Errorf("drop_share 0.25 dropped %d of %d", drops, n)
	}
	s := rec.Ended()[0]
	var active string
	for _, kv := range s.Attributes() {
		if kv.Key == AttrFaultActive {
			active = kv.Value.AsString()
		}
	}
	if active != "drop=0.25,delay=1" {
		t.Errorf("demo.fault.active = %q", active)
	}
	if evs := s.Events(); len(evs) == 0 || evs[len(evs)-1].Name != EventInjected {
		t.Errorf("events = %v", evs)
	}
	// Same seed, same decisions.
	a, b := New(9), New(9)
	_ = a.Set(contracts.FaultConfig{DropShare: 0.5})
	_ = b.Set(contracts.FaultConfig{DropShare: 0.5})
	for range 100 {
		if a.Drop(context.Background()) != b.Drop(context.Background()) {
			t.Fatal("seeded injectors diverged")
		}
	}
}
