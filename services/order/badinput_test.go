package order

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/natsotel/reference/services/contracts"
	"github.com/natsotel/reference/services/internal/rpc"
	"github.com/natsotel/reference/services/internal/testenv"
)

func createBody(lines string) string {
	return `{"customer_id":"cust-1","card":"4242424242424242","lines":` + lines + `}`
}

func TestBadInput(t *testing.T) {
	e := start(t, true, true)
	tooMany := "[" + strings.TrimSuffix(strings.Repeat(`{"sku":"sku-1","qty":1},`, contracts.MaxLines+1), ",") + "]"
	manyLines := make([]string, 0, contracts.MaxLines)
	for i := range contracts.MaxLines {
		manyLines = append(manyLines, `{"sku":"sku-`+string(rune('1'+i%4))+`","qty":1}`)
	}
	specific := map[string][]testenv.BadBody{
		contracts.SubjectOrderCreate: {
			testenv.Bad("no lines", createBody(`[]`), "400", "lines: at least one line is required"),
			testenv.Bad("missing lines", `{"customer_id":"c","card":"4242424242424242"}`, "400", "at least one line"),
			testenv.Bad("zero qty", createBody(`[{"sku":"sku-1","qty":0}]`), "400", "lines[0].qty must be at least 1"),
			testenv.Bad("negative qty", createBody(`[{"sku":"sku-2","qty":1},{"sku":"sku-1","qty":-1}]`), "400", "lines[1].qty must be at least 1"),
			testenv.Bad("qty over max", createBody(`[{"sku":"sku-1","qty":1001}]`), "400", "lines[0].qty must be at most 1000"),
			testenv.Bad("huge qty", createBody(`[{"sku":"sku-1","qty":99999999999999999999}]`), "400", `field "lines.qty": want an integer in range, got number`),
			testenv.Bad("qty as string", createBody(`[{"sku":"sku-1","qty":"2"}]`), "400", `field "lines.qty": want int, got string`),
			testenv.Bad("unknown sku", createBody(`[{"sku":"sku-42","qty":1}]`), "400", `lines[0].sku: unknown sku "sku-42"`),
			testenv.Bad("empty sku", createBody(`[{"sku":"","qty":1}]`), "400", "lines[0].sku is required"),
			testenv.Bad("duplicate sku", createBody(`[{"sku":"sku-1","qty":1},{"sku":"sku-1","qty":2}]`), "400", "sku-1 appears twice"),
			testenv.Bad("too many lines", createBody(tooMany), "400", "51 lines, the limit is 50"),
			testenv.Bad("lines as string", createBody(`"sku-1"`), "400", `field "lines": want []contracts.Line, got string`),
			testenv.Bad("empty customer", `{"customer_id":"","card":"4242424242424242","lines":[{"sku":"sku-1","qty":1}]}`, "400", "customer_id is required"),
			testenv.Bad("missing customer", `{"card":"4242424242424242","lines":[{"sku":"sku-1","qty":1}]}`, "400", "customer_id is required"),
			testenv.Bad("customer with spaces", `{"customer_id":"John Smith","card":"4242424242424242","lines":[{"sku":"sku-1","qty":1}]}`, "400", "customer_id may only hold"),
			testenv.Bad("missing card", `{"customer_id":"c","lines":[{"sku":"sku-1","qty":1}]}`, "400", "card is required"),
			testenv.Bad("bad card", `{"customer_id":"c","card":"4242424242424241","lines":[{"sku":"sku-1","qty":1}]}`, "400", "Luhn"),
			testenv.Bad("card as number", `{"customer_id":"c","card":4242424242424242,"lines":[{"sku":"sku-1","qty":1}]}`, "400", `field "card": want string, got number`),
			testenv.Bad("unknown field", `{"customer_id":"c","card":"4242424242424242","lines":[{"sku":"sku-1","qty":1}],"discount":100}`, "400", `unknown field "discount"`),
			testenv.Bad("status supplied", `{"customer_id":"c","card":"4242424242424242","lines":[{"sku":"sku-1","qty":1}],"status":"confirmed"}`, "400", `unknown field "status"`),
			testenv.Bad("oversized but valid JSON", createBody("["+strings.Join(manyLines, ",")+"]"+strings.Repeat(" ", contracts.MaxRequestBytes)), "413", "the limit is 65536"),
		},
		contracts.SubjectOrderGet: {
			testenv.Bad("empty object", `{}`, "400", "id is required"),
			testenv.Bad("id number", `{"id":1}`, "400", `field "id": want string, got number`),
			testenv.Bad("id wildcard", `{"id":"ord-*"}`, "400", "id may only hold"),
			testenv.Bad("order_id instead of id", `{"order_id":"ord-1"}`, "400", `unknown field "order_id"`),
		},
		contracts.ControlSubject(contracts.OrderService): {
			testenv.Bad("unsupported", `{"decline_share":0.5}`, "400", "decline_share is not supported"),
			testenv.Bad("NaN-ish", `{"drop_share":1e999}`, "400", `field "drop_share"`),
		},
	}
	buckets := []string{contracts.BucketOrders, contracts.BucketStock, contracts.BucketReservations, contracts.BucketPayments}
	for subject, bodies := range specific {
		for _, b := range testenv.GenericBadBodies() {
			if subject == contracts.ControlSubject(contracts.OrderService) && strings.TrimSpace(string(b.Body)) == "" {
				continue // empty reads the configuration
			}
			bodies = append(bodies, b)
		}
		t.Run(subject, func(t *testing.T) {
			testenv.CheckBadBodies(t, e.client, subject, bodies, buckets...)
		})
	}
	// Nothing reached inventory or billing.
	for _, s := range e.node.Spans.Ended() {
		if strings.HasPrefix(s.Name(), "request ") {
			t.Errorf("bad input caused a downstream call: %s", s.Name())
		}
	}
}

var longDigits = regexp.MustCompile(`[0-9]{12,}`)

func FuzzDecodeCreateOrder(f *testing.F) {
	for _, s := range []string{
		createBody(`[{"sku":"sku-1","qty":2},{"sku":"sku-5","qty":1}]`),
		createBody(`[{"sku":"sku-1","qty":-1}]`),
		createBody(`[{"sku":"sku-1","qty":1e300}]`),
		`{"customer_id":"c","card":4242424242424242,"lines":[]}`,
		`{"customer_id":"c","card":"4000000000000002","lines":[{"sku":"sku-oos","qty":1}]}`,
		"{\"customer_id\":\"\xff\"}",
		`{"a\r\nb":1}`,
		`{"customer_id":"c","4000056655665556":1}`,
		createBody(`[{"sku":"4000-0566-5566-5556","qty":1}]`),
		`[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := rpc.Decode[contracts.CreateOrderRequest](data)
		if err == nil {
			err = checkCreate(&req)
		}
		if err != nil {
			if err.Code != contracts.CodeBadRequest && err.Code != contracts.CodeTooLarge {
				t.Fatalf("code %s", err.Code)
			}
			d := rpc.Sanitize(err.Description)
			if strings.ContainsAny(d, "\r\n") || longDigits.MatchString(d) {
				t.Fatalf("unsafe description %q", d)
			}
			if len(req.CustomerID) >= 16 && strings.Contains(d, req.CustomerID) {
				t.Fatalf("description %q echoes the customer id", d)
			}
			return
		}
		if a := amount(req.Lines); a <= 0 || a > int64(contracts.MaxLines)*contracts.MaxQty*9900 {
			t.Fatalf("accepted order with amount %d", a)
		}
	})
}

func FuzzDecodeGetOrder(f *testing.F) {
	for _, s := range []string{`{"id":"ord-1"}`, `{"id":""}`, `{"id":"a b"}`, `{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := rpc.Decode[contracts.GetOrderRequest](data)
		if err == nil {
			err = rpc.CheckID("id", req.ID)
		}
		if err != nil && err.Code != contracts.CodeBadRequest && err.Code != contracts.CodeTooLarge {
			t.Fatalf("code %s", err.Code)
		}
	})
}

// A card number sent in the wrong place (as a field name, as a SKU, with or without
// separators) is refused without being quoted back: not in the reply, not in the log,
// not on a span.
func TestMisplacedCardNeverEchoed(t *testing.T) {
	e := start(t, true, true)
	const card = "4000056655665556" // a test card, distinct from the one in the card field
	spaced := "4000 0566 5566 5556"
	dashed := "4000-0566-5566-5556"
	for name, body := range map[string]string{
		"field name":          `{"customer_id":"c","card":"4242424242424242","lines":[{"sku":"sku-1","qty":1}],"` + card + `":1}`,
		"spaced field name":   `{"customer_id":"c","card":"4242424242424242","lines":[{"sku":"sku-1","qty":1}],"` + spaced + `":1}`,
		"line field name":     createBody(`[{"sku":"sku-1","qty":1,"` + dashed + `":1}]`),
		"sku":                 createBody(`[{"sku":"` + card + `","qty":1}]`),
		"spaced sku":          createBody(`[{"sku":"` + spaced + `","qty":1}]`),
		"dashed sku":          createBody(`[{"sku":"` + dashed + `","qty":1}]`),
		"card as get id":      `{"id":"` + card + `x"}`,
		"card in get field":   `{"` + card + `":"ord-1"}`,
		"card in a long name": `{"customer_id":"c","card":"4242424242424242","lines":[{"sku":"sku-1","qty":1}],"my_card_is_` + card + `":1}`,
	} {
		t.Run(name, func(t *testing.T) {
			subject := contracts.SubjectOrderCreate
			if strings.Contains(name, "get") {
				subject = contracts.SubjectOrderGet
			}
			_, err := e.client.Request(context.Background(), subject, body, 5*time.Second)
			if testenv.Code(err) != contracts.CodeBadRequest && testenv.Code(err) != contracts.CodeNotFound {
				t.Fatalf("%v, want 400 or 404", err)
			}
			if d := testenv.Description(err); leaks(d, card) {
				t.Errorf("description %q quotes the card", d)
			}
		})
	}
	if leaks(e.node.Logs.String(), card) {
		t.Errorf("the log quotes the card:\n%s", e.node.Logs.String())
	}
	for _, node := range []*testenv.Node{e.node, e.client} {
		for _, s := range node.Spans.Ended() {
			texts := []string{s.Name(), s.Status().Description}
			for _, kv := range s.Attributes() {
				texts = append(texts, kv.Value.String())
			}
			for _, ev := range s.Events() {
				texts = append(texts, ev.Name)
				for _, kv := range ev.Attributes {
					texts = append(texts, kv.Value.String())
				}
			}
			for _, txt := range texts {
				if leaks(txt, card) {
					t.Errorf("%s span %q carries the card: %q", node.Name, s.Name(), txt)
				}
			}
		}
	}
}

// leaks reports whether s holds card, with or without separators.
func leaks(s, card string) bool {
	digits := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		if r == ' ' || r == '-' {
			return -1
		}
		return '|'
	}, s)
	return strings.Contains(digits, card)
}
