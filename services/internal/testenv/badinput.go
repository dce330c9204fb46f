package testenv

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natsotel/reference/services/contracts"
)

// BadBody is a request body every endpoint must refuse with Code, with a description
// containing Desc.
type BadBody struct {
	Name string
	Body []byte
	Code string
	Desc string
}

// GenericBadBodies are refused by every endpoint whatever its request type.
func GenericBadBodies() []BadBody {
	return []BadBody{
		{"empty", nil, contracts.CodeBadRequest, "empty request body"},
		{"whitespace", []byte(" \n\t "), contracts.CodeBadRequest, "empty request body"},
		{"truncated", []byte(`{"order_id":`), contracts.CodeBadRequest, "invalid JSON: unexpected end"},
		{"not json", []byte(`hello`), contracts.CodeBadRequest, "want a JSON object"},
		{"array", []byte(`[{"order_id":"x"}]`), contracts.CodeBadRequest, "want a JSON object"},
		{"null", []byte(`null`), contracts.CodeBadRequest, "want a JSON object"},
		{"number", []byte(`42`), contracts.CodeBadRequest, "want a JSON object"},
		{"syntax", []byte(`{"order_id" "x"}`), contracts.CodeBadRequest, "invalid JSON: invalid character"},
		{"unknown field", []byte(`{"nope":1}`), contracts.CodeBadRequest, `unknown field "nope"`},
		{"header injection in field name", []byte(`{"a\r\nNats-Service-Error-Code: 200":1}`), contracts.CodeBadRequest, "unknown field"},
		{"trailing object", []byte(`{} {}`), contracts.CodeBadRequest, "unexpected data after the JSON object"},
		{"trailing garbage", []byte(`{}x`), contracts.CodeBadRequest, "unexpected data after the JSON object"},
		{"invalid utf-8", []byte("{\"order_id\":\"\xff\xfe\"}"), contracts.CodeBadRequest, "not valid UTF-8"},
		{"oversized", []byte(`{"order_id":"` + strings.Repeat("x", contracts.MaxRequestBytes) + `"}`), contracts.CodeTooLarge, "the limit is 65536"},
		{"deep nesting", []byte(`{"x":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}`), contracts.CodeBadRequest, "unknown field"},
	}
}

// CheckBadBodies sends every body to subject and checks the code and description, that
// the description is a single header-safe line, and that the given buckets did not
// change.
func CheckBadBodies(t *testing.T, client *Node, subject string, bodies []BadBody, buckets ...string) {
	t.Helper()
	before := Snapshot(t, client.NC, buckets...)
	for _, b := range bodies {
		t.Run(b.Name, func(t *testing.T) {
			_, err := client.Request(context.Background(), subject, b.Body, 5*time.Second)
			if got := Code(err); got != b.Code {
				t.Fatalf("code %q (%v), want %q", got, err, b.Code)
			}
			d := Description(err)
			if !strings.Contains(d, b.Desc) {
				t.Errorf("description %q lacks %q", d, b.Desc)
			}
			if strings.ContainsAny(d, "\r\n") {
				t.Errorf("description %q holds a line break", d)
			}
		})
	}
	if after := Snapshot(t, client.NC, buckets...); !maps.Equal(before, after) {
		t.Errorf("bad input changed state: before %v, after %v", before, after)
	}
}

// Snapshot returns "bucket/key" -> revision for every key of the buckets.
func Snapshot(t testing.TB, nc *nats.Conn, buckets ...string) map[string]uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint64{}
	for _, b := range buckets {
		kv, err := js.KeyValue(ctx, b)
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		keys, err := kv.Keys(ctx)
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			e, err := kv.Get(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			out[b+"/"+k] = e.Revision()
		}
	}
	return out
}

// Bad is a BadBody literal.
func Bad(name, body, code, desc string) BadBody {
	return BadBody{Name: name, Body: []byte(body), Code: code, Desc: desc}
}
