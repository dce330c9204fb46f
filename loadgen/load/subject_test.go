package load

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go/micro"
)

// -subject and -payload drive any endpoint with a fixed body, as `nats bench service
// request` does: every request arrives with exactly that payload and the loadgen's
// baggage, in closed and open loop, and a micro error is counted as unexpected.
func TestCustomSubject(t *testing.T) {
	nc := connect(t, startServer(t))
	var mu sync.Mutex
	bodies := map[string]int{}
	var bags []string
	svc, err := micro.AddService(nc, micro.Config{Name: "bench", Version: "0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	handler := func(req micro.Request) {
		mu.Lock()
		bodies[req.Subject()+" "+string(req.Data())]++
		bags = append(bags, req.Headers().Get("baggage"))
		mu.Unlock()
		if req.Subject() == "bench.fail" {
			_ = req.Error("503", "unavailable", nil)
			return
		}
		_ = req.Respond(req.Data())
	}
	for _, s := range []string{"bench.echo", "bench.fail"} {
		if err := svc.AddEndpoint(strings.ReplaceAll(s, ".", "_"), micro.HandlerFunc(handler), micro.WithEndpointSubject(s)); err != nil {
			t.Fatal(err)
		}
	}
	conn, _ := tracedConn(t, nc)

	payload := []byte(`{"sku":"sku-1"}`)
	for _, mode := range []Mode{ModeClosed, ModeOpen} {
		r, err := New(conn, nil, Config{Mode: mode, Rate: 1000, Workers: 4, Count: 40, Progress: -1,
			Subject: "bench.echo", Payload: payload})
		if err != nil {
			t.Fatal(err)
		}
		sum, err := r.Run(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if sum.Completed != 40 || sum.Outcomes[OutcomeOK] != 40 || sum.Scenarios[ScenarioCustom][OutcomeOK] != 40 || sum.Unexpected != 0 {
			t.Fatalf("%s: %+v", mode, sum)
		}
		if !strings.Contains(sum.String(), "custom") {
			t.Errorf("summary lacks the custom scenario:\n%s", sum)
		}
	}
	r, err := New(conn, nil, Config{Mode: ModeClosed, Workers: 2, Count: 10, Progress: -1, Subject: "bench.fail"})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := r.Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if sum.Outcomes["503"] != 10 || sum.Unexpected != 10 {
		t.Fatalf("errors: %+v", sum)
	}

	mu.Lock()
	defer mu.Unlock()
	if bodies["bench.echo "+string(payload)] != 80 || bodies["bench.fail "] != 10 || len(bodies) != 2 {
		t.Fatalf("the endpoints saw %v", bodies)
	}
	for _, b := range bags {
		if !strings.Contains(b, "loadgen.scenario=custom") || !strings.Contains(b, "synthetic=true") {
			t.Fatalf("baggage %q", b)
		}
	}
}

func TestCustomSubjectConfig(t *testing.T) {
	for _, c := range []Config{
		{Subject: "bench.*"},
		{Subject: "bench.>"},
		{Subject: "bench..echo"},
		{Subject: "bench echo"},
		{Payload: []byte("x")},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
	if err := (Config{Subject: "_INBOX.x.y", Payload: []byte{}}).Validate(); err != nil {
		t.Error(err)
	}

	dir := t.TempDir()
	file := filepath.Join(dir, "p.json")
	if err := os.WriteFile(file, []byte("{\"id\":1}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var cfg Config
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	env := map[string]string{EnvSubject: "from.env"}
	if err := cfg.RegisterFlags(fs, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if err := fs.Parse([]string{"-payload", file}); err != nil {
		t.Fatal(err)
	}
	if cfg.Subject != "from.env" || string(cfg.Payload) != "{\"id\":1}\n" {
		t.Fatalf("subject %q payload %q", cfg.Subject, cfg.Payload)
	}
	fs = flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(&strings.Builder{})
	if err := cfg.RegisterFlags(fs, nil); err != nil {
		t.Fatal(err)
	}
	if err := fs.Parse([]string{"-payload", filepath.Join(dir, "missing")}); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("missing payload file: %v", err)
	}
}
