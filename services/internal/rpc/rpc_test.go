package rpc

import (
	"context"
	"strings"
	"testing"

	"github.com/natsotel/reference/services/contracts"
	"github.com/natsotel/reference/services/internal/fault"
)

type sample struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		body, code, desc string
	}{
		{`{"name":"a","count":2}`, "", ""},
		{`  {"name":"a"}  `, "", ""},
		{``, "400", "empty request body"},
		{`{"name":"a"`, "400", "invalid JSON: unexpected end of input"},
		{`{"name":1}`, "400", `invalid JSON: field "name": want string, got number`},
		{`{"count":1e40}`, "400", `field "count": want an integer in range, got number`},
		{`{"count":"4242424242424242"}`, "400", `field "count": want int, got string`},
		{`{"extra":true}`, "400", `invalid JSON: unknown field "extra"`},
		{`{}{}`, "400", "unexpected data after the JSON object"},
		{`{} // comment`, "400", "unexpected data after the JSON object"},
		{`true`, "400", "want a JSON object"},
		{"{\"name\":\"\xc3\x28\"}", "400", "not valid UTF-8"},
		{`{"name":"` + strings.Repeat("a", contracts.MaxRequestBytes) + `"}`, "413", "the limit is 65536"},
	} {
		v, err := Decode[sample]([]byte(tc.body))
		switch {
		case tc.code == "" && err != nil:
			t.Errorf("%.40q: %v", tc.body, err)
		case tc.code != "" && (err == nil || err.Code != tc.code || !strings.Contains(err.Description, tc.desc)):
			t.Errorf("%.40q: got %v, want %s %q", tc.body, err, tc.code, tc.desc)
		case tc.code == "" && v.Name != "a":
			t.Errorf("%.40q: decoded %+v", tc.body, v)
		}
		if err != nil && strings.Contains(err.Description, "4242424242424242") {
			t.Errorf("description echoes a value: %q", err.Description)
		}
	}
}

func TestSanitize(t *testing.T) {
	if got := Sanitize("a\r\nb\x00c"); got != "a  b c" {
		t.Errorf("Sanitize = %q", got)
	}
	long := strings.Repeat("é", 200) // 400 bytes
	got := Sanitize(long)
	if len(got) > maxDescription+3 || !strings.HasSuffix(got, "...") || strings.ContainsRune(got, '\uFFFD') {
		t.Errorf("Sanitize(long) = %d bytes %q", len(got), got[len(got)-10:])
	}
}

func TestInflight(t *testing.T) {
	var in Inflight
	if err := in.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	in.Begin()
	in.Begin()
	done := make(chan error)
	go func() { done <- in.Wait(context.Background()) }()
	in.End()
	select {
	case <-done:
		t.Fatal("Wait returned with one handler running")
	default:
	}
	in.End()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	in.Begin()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := in.Wait(ctx); err == nil {
		t.Fatal("Wait ignored its context")
	}
	// Close refuses new handlers; the running one is still waited for.
	in.Close()
	if in.Begin() {
		t.Fatal("Begin accepted after Close")
	}
	go func() { done <- in.Wait(context.Background()) }()
	select {
	case <-done:
		t.Fatal("Wait returned with one handler running")
	default:
	}
	in.End()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestCheckID(t *testing.T) {
	for id, ok := range map[string]bool{"ord-1": true, "A_b-9": true, "": false, "a.b": false, "a b": false, "a>": false, "é": false, strings.Repeat("a", 64): true, strings.Repeat("a", 65): false} {
		if got := CheckID("id", id) == nil; got != ok {
			t.Errorf("CheckID(%q) ok = %v", id, got)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"name":"a","count":1}`))
	f.Add([]byte(`{"count":1e999}`))
	f.Add([]byte("{\"na\\u0000me\":1}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := Decode[sample](data)
		if err == nil {
			return
		}
		if err.Code != contracts.CodeBadRequest && err.Code != contracts.CodeTooLarge {
			t.Fatalf("code %s", err.Code)
		}
		if d := Sanitize(err.Description); strings.ContainsAny(d, "\r\n\x00") {
			t.Fatalf("unsafe description %q", d)
		}
	})
}

func FuzzDecodeFaultConfig(f *testing.F) {
	f.Add([]byte(`{"drop_share":0.5}`))
	f.Add([]byte(`{"delay_share":1,"delay":"150ms","delay_jitter":"1h"}`))
	f.Add([]byte(`{"nak_share":1e999}`))
	f.Add([]byte(`{"delay":"-9223372036854775808ns"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Decode[contracts.FaultConfig](data)
		if err != nil {
			if err.Code != contracts.CodeBadRequest && err.Code != contracts.CodeTooLarge {
				t.Fatalf("code %s", err.Code)
			}
			return
		}
		in := fault.New(1, fault.Delay, fault.Nak, fault.Decline)
		if in.Set(cfg) != nil {
			if in.Config() != (contracts.FaultConfig{}) {
				t.Fatal("a refused configuration was applied")
			}
			return
		}
		got := in.Config()
		for _, s := range []float64{got.DropShare, got.DeclineShare, got.DelayShare, got.NakShare} {
			if !(s >= 0 && s <= 1) {
				t.Fatalf("accepted share %v", s)
			}
		}
		if d := in.Delay(context.Background()); d < 0 || d > fault.MaxDelay {
			t.Fatalf("delay %v", d)
		}
	})
}
