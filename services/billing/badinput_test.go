package billing

import (
	"regexp"
	"strings"
	"testing"

	"github.com/natsotel/reference/services/contracts"
	"github.com/natsotel/reference/services/internal/rpc"
	"github.com/natsotel/reference/services/internal/testenv"
)

func TestBadInput(t *testing.T) {
	e := start(t)
	specific := map[string][]testenv.BadBody{
		contracts.SubjectBillingCharge: {
			testenv.Bad("amount as string", `{"order_id":"o1","amount_cents":"100","card":"4242424242424242"}`, "400", `field "amount_cents": want int64, got string`),
			testenv.Bad("huge amount", `{"order_id":"o1","amount_cents":1e30,"card":"4242424242424242"}`, "400", `field "amount_cents": want an integer in range, got number`),
			testenv.Bad("amount overflows int64", `{"order_id":"o1","amount_cents":9223372036854775808,"card":"4242424242424242"}`, "400", `want an integer in range`),
			testenv.Bad("fractional amount", `{"order_id":"o1","amount_cents":1.5,"card":"4242424242424242"}`, "400", `want an integer in range`),
			testenv.Bad("negative amount", `{"order_id":"o1","amount_cents":-1,"card":"4242424242424242"}`, "400", "amount_cents must be positive"),
			testenv.Bad("card as number", `{"order_id":"o1","amount_cents":1,"card":4242424242424242}`, "400", `field "card": want string, got number`),
			testenv.Bad("missing card", `{"order_id":"o1","amount_cents":1}`, "400", "card is required"),
			testenv.Bad("order id with dots", `{"order_id":"a.b.c","amount_cents":1,"card":"4242424242424242"}`, "400", "order_id may only hold"),
			testenv.Bad("order id too long", `{"order_id":"`+strings.Repeat("a", 65)+`","amount_cents":1,"card":"4242424242424242"}`, "400", "longer than 64"),
			testenv.Bad("order id wildcard", `{"order_id":">","amount_cents":1,"card":"4242424242424242"}`, "400", "order_id may only hold"),
			testenv.Bad("empty object", `{}`, "400", "order_id is required"),
		},
		contracts.SubjectBillingRefund: {
			testenv.Bad("order id number", `{"order_id":12}`, "400", `field "order_id": want string, got number`),
			testenv.Bad("empty object", `{}`, "400", "order_id is required"),
		},
		contracts.SubjectBillingPayment: {
			testenv.Bad("order id object", `{"order_id":{}}`, "400", `want string, got object`),
			testenv.Bad("empty object", `{}`, "400", "order_id is required"),
		},
		contracts.ControlSubject(contracts.BillingService): {
			testenv.Bad("share above 1", `{"decline_share":1.5}`, "400", "decline_share must be between 0 and 1"),
			testenv.Bad("negative share", `{"drop_share":-0.1}`, "400", "drop_share must be between 0 and 1"),
			testenv.Bad("unsupported", `{"nak_share":0.5}`, "400", "nak_share is not supported"),
		},
	}
	for subject, bodies := range specific {
		if subject == contracts.ControlSubject(contracts.BillingService) {
			// Empty means "read" on control endpoints.
			bodies = append(bodies, withoutEmpty(testenv.GenericBadBodies())...)
		} else {
			bodies = append(bodies, testenv.GenericBadBodies()...)
		}
		t.Run(subject, func(t *testing.T) {
			testenv.CheckBadBodies(t, e.client, subject, bodies, contracts.BucketPayments)
		})
	}
	if got := e.svc.Faults().Config(); got != (contracts.FaultConfig{}) {
		t.Errorf("bad control input changed the fault config: %+v", got)
	}
}

func withoutEmpty(bs []testenv.BadBody) []testenv.BadBody {
	var out []testenv.BadBody
	for _, b := range bs {
		if strings.TrimSpace(string(b.Body)) != "" {
			out = append(out, b)
		}
	}
	return out
}

// decodeCharge is what the charge endpoint does before touching any state.
func decodeCharge(data []byte) (contracts.ChargeRequest, *rpc.Error) {
	req, err := rpc.Decode[contracts.ChargeRequest](data)
	if err != nil {
		return req, err
	}
	return req, checkCharge(&req)
}

var longDigits = regexp.MustCompile(`[0-9]{12,}`)

func FuzzDecodeCharge(f *testing.F) {
	f.Add([]byte(`{"order_id":"o1","amount_cents":100,"card":"4242424242424242"}`))
	f.Add([]byte(`{"order_id":"o1","amount_cents":1e30,"card":4242424242424242}`))
	f.Add([]byte(`{"order_id":"o1","amount_cents":-1,"card":"4000000000000002"}`))
	f.Add([]byte(`{"Order_ID":"o1","AMOUNT_CENTS":1,"card":"4242424242424242","card":"x"}`))
	f.Add([]byte("{\"order_id\":\"\xff\"}"))
	f.Add([]byte(`{"a\r\nb":1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := decodeCharge(data)
		if err != nil {
			if err.Code != contracts.CodeBadRequest && err.Code != contracts.CodeTooLarge {
				t.Fatalf("code %s", err.Code)
			}
			d := rpc.Sanitize(err.Description)
			// Neither a value nor a card-like field name is ever echoed.
			if strings.ContainsAny(d, "\r\n") || longDigits.MatchString(d) {
				t.Fatalf("unsafe description %q", d)
			}
			return
		}
		if req.AmountCents <= 0 || rpc.CheckID("order_id", req.OrderID) != nil || checkCharge(&req) != nil {
			t.Fatalf("accepted invalid request %+v", req)
		}
	})
}
