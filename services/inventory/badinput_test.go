package inventory

import (
	"strings"
	"testing"

	"github.com/natsotel/reference/services/contracts"
	"github.com/natsotel/reference/services/internal/rpc"
	"github.com/natsotel/reference/services/internal/testenv"
)

func reserveBody(lines string) string { return `{"order_id":"bad-1","lines":` + lines + `}` }

func TestBadInput(t *testing.T) {
	e := start(t)
	tooMany := "[" + strings.TrimSuffix(strings.Repeat(`{"sku":"sku-1","qty":1},`, contracts.MaxLines+1), ",") + "]"
	specific := map[string][]testenv.BadBody{
		contracts.SubjectInventoryReserve: {
			testenv.Bad("no lines", reserveBody(`[]`), "400", "at least one line"),
			testenv.Bad("null lines", reserveBody(`null`), "400", "at least one line"),
			testenv.Bad("lines as object", reserveBody(`{}`), "400", `field "lines": want []contracts.Line, got object`),
			testenv.Bad("zero qty", reserveBody(`[{"sku":"sku-1","qty":0}]`), "400", "lines[0].qty must be at least 1"),
			testenv.Bad("negative qty", reserveBody(`[{"sku":"sku-1","qty":-3}]`), "400", "lines[0].qty must be at least 1"),
			testenv.Bad("qty over max", reserveBody(`[{"sku":"sku-1","qty":1001}]`), "400", "must be at most 1000"),
			testenv.Bad("huge qty", reserveBody(`[{"sku":"sku-1","qty":1e300}]`), "400", `field "lines.qty": want an integer in range, got number`),
			testenv.Bad("fractional qty", reserveBody(`[{"sku":"sku-1","qty":0.5}]`), "400", "want an integer in range"),
			testenv.Bad("qty as string", reserveBody(`[{"sku":"sku-1","qty":"1"}]`), "400", `want int, got string`),
			testenv.Bad("unknown sku", reserveBody(`[{"sku":"sku-999","qty":1}]`), "400", `unknown sku "sku-999"`),
			testenv.Bad("missing sku", reserveBody(`[{"qty":1}]`), "400", "lines[0].sku is required"),
			testenv.Bad("duplicate sku", reserveBody(`[{"sku":"sku-1","qty":1},{"sku":"sku-1","qty":1}]`), "400", "appears twice"),
			testenv.Bad("too many lines", reserveBody(tooMany), "400", "51 lines, the limit is 50"),
			testenv.Bad("unknown line field", reserveBody(`[{"sku":"sku-1","qty":1,"price":0}]`), "400", `unknown field "price"`),
			testenv.Bad("missing order id", `{"lines":[{"sku":"sku-1","qty":1}]}`, "400", "order_id is required"),
			testenv.Bad("order id with wildcard", `{"order_id":"a*","lines":[{"sku":"sku-1","qty":1}]}`, "400", "order_id may only hold"),
		},
		contracts.SubjectInventoryRelease: {
			testenv.Bad("empty object", `{}`, "400", "order_id is required"),
			testenv.Bad("order id array", `{"order_id":["a"]}`, "400", "want string, got array"),
		},
		contracts.SubjectInventoryCommit: {
			testenv.Bad("empty object", `{}`, "400", "order_id is required"),
			testenv.Bad("order id bool", `{"order_id":true}`, "400", "want string, got bool"),
		},
		contracts.SubjectInventoryStock: {
			testenv.Bad("empty object", `{}`, "400", "sku is required"),
			testenv.Bad("sku number", `{"sku":5}`, "400", "want string, got number"),
		},
		contracts.ControlSubject(contracts.InventoryService): {
			testenv.Bad("bad delay", `{"delay_share":1,"delay":"soon"}`, "400", "delay must be a non-negative Go duration"),
			testenv.Bad("negative delay", `{"delay_share":1,"delay":"-1s"}`, "400", "delay must be a non-negative"),
			testenv.Bad("delay too long", `{"delay_share":1,"delay":"2m"}`, "400", "at most 1m0s"),
			testenv.Bad("unsupported", `{"decline_share":0.1}`, "400", "decline_share is not supported"),
			testenv.Bad("share as string", `{"nak_share":"half"}`, "400", `field "nak_share": want float64, got string`),
		},
	}
	for subject, bodies := range specific {
		for _, b := range testenv.GenericBadBodies() {
			if subject == contracts.ControlSubject(contracts.InventoryService) && strings.TrimSpace(string(b.Body)) == "" {
				continue // empty reads the configuration
			}
			bodies = append(bodies, b)
		}
		t.Run(subject, func(t *testing.T) {
			testenv.CheckBadBodies(t, e.client, subject, bodies, contracts.BucketStock, contracts.BucketReservations)
		})
	}
	if got := e.svc.Faults().Config(); got != (contracts.FaultConfig{}) {
		t.Errorf("bad control input changed the fault config: %+v", got)
	}
}

// fuzzDecode checks the properties every decoder must have: no panic, only 400/413,
// header-safe descriptions, and accepted values that pass validation.
func fuzzDecode[T any](f *testing.F, seeds []string, check func(*T) *rpc.Error) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Add([]byte("{\"order_id\":\"\xff\"}"))
	f.Add([]byte(`{"a\r\nb":1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := rpc.Decode[T](data)
		if err == nil {
			err = check(&v)
		}
		if err == nil {
			return
		}
		if err.Code != contracts.CodeBadRequest && err.Code != contracts.CodeTooLarge {
			t.Fatalf("code %s", err.Code)
		}
		if d := rpc.Sanitize(err.Description); strings.ContainsAny(d, "\r\n") || len(d) > 300 {
			t.Fatalf("unsafe description %q", d)
		}
	})
}

func FuzzDecodeReserve(f *testing.F) {
	fuzzDecode(f, []string{
		reserveBody(`[{"sku":"sku-1","qty":2},{"sku":"sku-5","qty":1}]`),
		reserveBody(`[{"sku":"sku-1","qty":-1}]`),
		reserveBody(`[{"sku":"sku-1","qty":1e300}]`),
	}, func(r *contracts.ReserveRequest) *rpc.Error {
		err := checkReserve(r)
		if err == nil {
			for _, l := range r.Lines {
				if l.Qty < 1 || l.Qty > contracts.MaxQty {
					panic("accepted a bad quantity")
				}
			}
		}
		return err
	})
}

func FuzzDecodeOrderRef(f *testing.F) {
	fuzzDecode(f, []string{`{"order_id":"o-1"}`, `{"order_id":""}`, `{"order_id":"a.b"}`}, func(r *contracts.OrderRef) *rpc.Error {
		return rpc.CheckID("order_id", r.OrderID)
	})
}

func FuzzDecodeStock(f *testing.F) {
	fuzzDecode(f, []string{`{"sku":"sku-1"}`, `{"sku":""}`}, func(r *contracts.StockRequest) *rpc.Error {
		if r.SKU == "" {
			return rpc.BadRequest("sku is required")
		}
		return nil
	})
}
