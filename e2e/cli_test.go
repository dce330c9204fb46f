package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/natsotel/reference/e2e/harness"
	"github.com/natsotel/reference/services/contracts"
)

// cliCommand is one command a user types, exactly as the README shows it.
type cliCommand struct {
	// Args follow `nats`, one shell word each.
	Args []string
	// Files are written to the working directory first (name -> content), for commands that
	// read a payload file; the README shows them as a heredoc or echo.
	Files map[string]string
	// Want are substrings the output must contain.
	Want []string
	// Check, when set, inspects the output and the running system further.
	Check func(t *testing.T, st *harness.Stack, output string)
}

// Shell renders the command as the README writes it, after the lines that create its
// files.
func (c cliCommand) Shell() string {
	var b strings.Builder
	for _, name := range harness.SortedKeys(c.Files) {
		fmt.Fprintf(&b, "echo '%s' > %s\n", c.Files[name], name)
	}
	b.WriteString("nats")
	for _, a := range c.Args {
		b.WriteByte(' ')
		if strings.ContainsAny(a, ` "{}*$`) {
			b.WriteString("'" + a + "'")
		} else {
			b.WriteString(a)
		}
	}
	return b.String()
}

// readmeCommands are what README.md tells users to type against the running shop (compose
// publishes NATS on localhost:4222, so no --server flag; the test sets NATS_URL instead).
// Keep in sync with README.md.
var readmeCommands = []cliCommand{
	{
		Args: []string{"micro", "ls"},
		Want: []string{contracts.OrderService, contracts.InventoryService, contracts.BillingService},
	},
	{
		Args: []string{"micro", "info", contracts.OrderService},
		Want: []string{contracts.SubjectOrderCreate, contracts.SubjectOrderGet, contracts.ControlSubject(contracts.OrderService)},
	},
	{
		Args: []string{"micro", "stats", contracts.InventoryService},
		Want: []string{"reserve", "Requests"},
	},
	{
		Args: []string{"req", contracts.SubjectOrderCreate, `{"customer_id":"c-42","lines":[{"sku":"sku-1","qty":2}],"card":"4242424242424242"}`},
		Want: []string{`"status":"confirmed"`, `"amount_cents":500`},
	},
	{
		// A declined card: the reply carries the micro error headers.
		Args: []string{"req", contracts.SubjectOrderCreate, `{"customer_id":"c-42","lines":[{"sku":"sku-1","qty":1}],"card":"4000000000000002"}`},
		Want: []string{"Nats-Service-Error-Code: " + contracts.CodePaymentDeclined},
	},
	{
		// Out of stock: the order fails with 409 and nothing is charged.
		Args: []string{"req", contracts.SubjectOrderCreate, `{"customer_id":"c-42","lines":[{"sku":"sku-oos","qty":1}],"card":"4242424242424242"}`},
		Want: []string{"Nats-Service-Error-Code: " + contracts.CodeConflict},
	},
	{
		// Bad input gets a 400 with a description.
		Args: []string{"req", contracts.SubjectOrderCreate, `{"lines":[]}`},
		Want: []string{"Nats-Service-Error-Code: " + contracts.CodeBadRequest},
	},
	{
		// A request that carries a W3C trace context from outside: the trace continues
		// through order, inventory and billing (find it in Grafana by its id).
		Args: []string{"req", contracts.SubjectOrderCreate, `{"customer_id":"c-42","lines":[{"sku":"sku-2","qty":1}],"card":"4242424242424242"}`,
			"-H", "traceparent:00-" + readmeTraceID + "-00f067aa0ba902b7-01"},
		Want: []string{`"status":"confirmed"`},
		Check: func(t *testing.T, st *harness.Stack, _ string) {
			st.Collector.WaitSpans(t, 20*time.Second, func(spans []harness.Span) error {
				seen := map[string]bool{}
				for _, s := range spans {
					if s.TraceID == readmeTraceID {
						seen[s.Service()] = true
					}
				}
				for _, svc := range []string{contracts.OrderService, contracts.InventoryService, contracts.BillingService} {
					if !seen[svc] {
						return fmt.Errorf("trace %s has no %s span (has %v)", readmeTraceID, svc, harness.SortedKeys(seen))
					}
				}
				return nil
			})
		},
	},
	{
		Args: []string{"req", contracts.SubjectInventoryStock, `{"sku":"sku-5"}`},
		Want: []string{`"sku":"sku-5"`, `"available":`},
	},
	{
		Args: []string{"req", contracts.SubjectOrderGet, `{"id":"no-such-order"}`},
		Want: []string{"Nats-Service-Error-Code: " + contracts.CodeNotFound},
	},
	{
		// A quick benchmark of a read-only endpoint through the real services.
		Files: map[string]string{"stock.json": `{"sku":"sku-1"}`},
		Args:  []string{"bench", "service", "request", contracts.SubjectInventoryStock, "--payload", "stock.json", "--clients", "4", "--msgs", "2000", "--no-progress"},
		Want:  []string{"msgs/sec"},
	},
	{
		// The micro framework's own counters saw the benchmark, without errors: the payload
		// file was a valid stock request.
		Args: []string{"micro", "stats", contracts.InventoryService, "--json"},
		Check: func(t *testing.T, _ *harness.Stack, output string) {
			var stats []struct {
				Endpoints []struct {
					Name     string `json:"name"`
					Requests int    `json:"num_requests"`
					Errors   int    `json:"num_errors"`
				} `json:"endpoints"`
			}
			if err := json.Unmarshal([]byte(output), &stats); err != nil {
				t.Fatalf("nats micro stats --json: %v", err)
			}
			var requests, errors int
			for _, s := range stats {
				for _, e := range s.Endpoints {
					if e.Name == "stock" {
						requests += e.Requests
						errors += e.Errors
					}
				}
			}
			if requests < 2000 || errors != 0 {
				t.Errorf("inventory stock endpoint: %d requests, %d errors; want >= 2000 and 0", requests, errors)
			}
		},
	},
}

// scenarioCommands are the README's failure-scenario commands, run in this order after
// readmeCommands: each control endpoint replies with the configuration now in force, and
// `{}` switches everything off again. Keep in sync with README.md.
var scenarioCommands = []cliCommand{
	{
		Args: []string{"req", contracts.ControlSubject(contracts.BillingService), `{"decline_share":0.3}`},
		Want: []string{`"decline_share":0.3`},
	},
	{
		Args: []string{"req", contracts.ControlSubject(contracts.InventoryService), `{"delay_share":0.2,"delay":"150ms","delay_jitter":"100ms"}`},
		Want: []string{`"delay_share":0.2`, `"delay":"150ms"`, `"delay_jitter":"100ms"`},
	},
	{
		Args: []string{"req", contracts.ControlSubject(contracts.BillingService), `{"drop_share":0.1}`},
		Want: []string{`"drop_share":0.1`},
	},
	{
		Args: []string{"req", contracts.ControlSubject(contracts.InventoryService), `{"nak_share":0.25}`},
		Want: []string{`"nak_share":0.25`},
	},
	{
		// Where nak_share shows without a tracing backend: the consumer's redelivery count.
		Args: []string{"consumer", "info", contracts.OrderEventsStream, contracts.InventoryCommitConsumer},
		Want: []string{"Redelivered Messages"},
	},
	{
		// Everything off again: the reply is the zero configuration.
		Args: []string{"req", contracts.ControlSubject(contracts.BillingService), `{}`},
		Want: []string{"{}"},
	},
	{
		Args: []string{"req", contracts.ControlSubject(contracts.InventoryService), `{}`},
		Want: []string{"{}"},
	},
	{
		Args: []string{"req", "loadgen.control", `{"rate":50}`},
		Want: []string{`"rate":50`},
	},
	{
		Args: []string{"req", "loadgen.control", `{"burst_multiplier":5,"burst_seconds":30}`},
		Want: []string{`"burst_multiplier":5`},
	},
}

// readmeTraceID is the trace id of the README's traceparent example.
const readmeTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"

// TestREADMECommands runs the nats CLI commands the README shows against the shop running
// as separate processes, and checks their output names what the README says it does.
func TestREADMECommands(t *testing.T) {
	tools := harness.RequireTools(t)
	builder.Get(t)
	st := harness.StartStack(t, tools, harness.StackConfig{})
	harness.StartShop(t, st, builder, harness.ShopConfig{InventoryReplicas: 2})

	// A slow, long-running load generator, so its control endpoint answers.
	lg := st.StartService(t, "loadgen", builder.Get(t).Loadgen, "loadgen", nil,
		"LOADGEN_RATE=2", "LOADGEN_DURATION=10m")
	harness.WaitLogged(t, 30*time.Second, harness.LoadgenReadyLog, lg)
	harness.WaitMicro(t, st.NATS.URL, map[string]int{"loadgen": 1}, 30*time.Second)

	env := append(harness.BaseEnv(st.Dir), "NATS_URL="+st.NATS.URL, "NO_COLOR=1")
	for _, c := range append(readmeCommands, scenarioCommands...) {
		t.Run(strings.Join(c.Args[:min(3, len(c.Args))], " "), func(t *testing.T) {
			for name, content := range c.Files {
				if err := os.WriteFile(filepath.Join(st.Dir, name), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			res := st.Run(t, "nats-cli", tools.NATS, c.Args, env, 2*time.Minute)
			t.Logf("$ %s   (exit %d, %v)\n%s", c.Shell(), res.ExitCode, res.Elapsed.Round(time.Millisecond), res.Output)
			if res.ExitCode != 0 {
				t.Errorf("exit code %d", res.ExitCode)
			}
			for _, w := range c.Want {
				if !strings.Contains(res.Output, w) {
					t.Errorf("output lacks %q", w)
				}
			}
			if c.Check != nil {
				c.Check(t, st, res.Output)
			}
		})
	}
}
