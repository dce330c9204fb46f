package natsotel_test

import (
	"context"
	"errors"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

func TestKeyValueSpans(t *testing.T) {
	s := startServer(t)
	tel := newTelemetry(t)
	js := tel.jetStream(t, s, "c")
	ctx := ctxTimeout(t)
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "stock"})
	if err != nil {
		t.Fatal(err)
	}
	rev, err := kv.Create(ctx, "sku-1", []byte("10"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Create(ctx, "sku-1", []byte("10")); !errors.Is(err, jetstream.ErrKeyExists) {
		t.Fatalf("create twice: %v", err)
	}
	if _, err := kv.Update(ctx, "sku-1", []byte("9"), rev+10); !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		t.Fatalf("stale update: %v", err)
	}
	if _, err := kv.Update(ctx, "sku-1", []byte("9"), rev); err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctx, "sku-1")
	if err != nil || string(e.Value()) != "9" {
		t.Fatalf("get: %v %v", e, err)
	}
	if _, err := kv.Get(ctx, "missing"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("get missing: %v", err)
	}
	if _, err := kv.Put(ctx, "sku-2", []byte("1")); err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(ctx, "sku-2"); err != nil {
		t.Fatal(err)
	}

	spans := tel.spans()
	var creates, updates, gets, puts, deletes []trace.SpanKind
	for _, sp := range spans {
		if sp.SpanKind() != trace.SpanKindClient {
			t.Errorf("kind %v for %q", sp.SpanKind(), sp.Name())
		}
		wantAttr(t, sp, semconv.DBSystemNameKey, "nats")
		wantAttr(t, sp, semconv.DBNamespaceKey, "stock")
		wantAttr(t, sp, semconv.DBCollectionNameKey, "stock")
		noAttr(t, sp, semconv.ServerAddressKey)
		noAttr(t, sp, semconv.MessagingSystemKey)
		switch sp.Name() {
		case "create stock":
			creates = append(creates, sp.SpanKind())
		case "update stock":
			updates = append(updates, sp.SpanKind())
		case "get stock":
			gets = append(gets, sp.SpanKind())
		case "put stock":
			puts = append(puts, sp.SpanKind())
		case "delete stock":
			deletes = append(deletes, sp.SpanKind())
		}
	}
	if len(creates) != 2 || len(updates) != 2 || len(gets) != 2 || len(puts) != 1 || len(deletes) != 1 {
		t.Fatalf("spans %v", names(spans))
	}
	for _, sp := range spans {
		switch {
		case sp.Name() == "create stock" && sp.Status().Code == codes.Error:
			wantAttr(t, sp, semconv.ErrorTypeKey, "key_exists")
		case sp.Name() == "update stock" && sp.Status().Code == codes.Error:
			wantAttr(t, sp, semconv.ErrorTypeKey, "revision_mismatch")
		case sp.Name() == "get stock":
			if sp.Status().Code != codes.Unset {
				t.Errorf("get status %v", sp.Status())
			}
			if v, _ := attr(sp, attribute.Key("nats.kv.found")); !v.AsBool() {
				wantAttr(t, sp, semconv.DBResponseReturnedRowsKey, int64(0))
				noAttr(t, sp, semconv.ErrorTypeKey)
			}
		case sp.Name() == "put stock", sp.Name() == "delete stock":
			wantAttr(t, sp, semconv.DBOperationNameKey, sp.Name()[:len(sp.Name())-len(" stock")])
		}
	}
}

// A traceparent stored with a value (written by another client) must never become the
// parent of the reader's span.
func TestKeyValueStoredTraceparentNotAdopted(t *testing.T) {
	s := startServer(t)
	tel := newTelemetry(t)
	c := tel.wrap(t, connect(t, s, "c"))
	js, err := c.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxTimeout(t)
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "orders"})
	if err != nil {
		t.Fatal(err)
	}
	const stale = "00-11111111111111111111111111111111-2222222222222222-01"
	if _, err := js.Raw().PublishMsg(ctx, &nats.Msg{Subject: "$KV.orders.o1", Data: []byte("v"), Header: nats.Header{"traceparent": []string{stale}}}); err != nil {
		t.Fatal(err)
	}
	ctx, root := tel.tp.Tracer("test").Start(ctx, "root")
	e, err := kv.Get(ctx, "o1")
	root.End()
	if err != nil || string(e.Value()) != "v" {
		t.Fatalf("%v %v", e, err)
	}
	get := find(t, tel.spans(), "get orders", trace.SpanKindClient)
	rootSpan := find(t, tel.spans(), "root", trace.SpanKindInternal)
	wantChild(t, rootSpan, get)
}

// A traceparent on a reply is never adopted either.
func TestReplyTraceparentNotAdopted(t *testing.T) {
	s := startServer(t)
	tel := newTelemetry(t)
	c := tel.wrap(t, connect(t, s, "c"))
	plain := connect(t, s, "responder")
	if _, err := plain.Subscribe("svc", func(m *nats.Msg) {
		_ = m.RespondMsg(&nats.Msg{Header: nats.Header{"traceparent": []string{"00-11111111111111111111111111111111-2222222222222222-01"}}})
	}); err != nil {
		t.Fatal(err)
	}
	_ = plain.Flush()
	ctx, root := tel.tp.Tracer("test").Start(context.Background(), "root")
	if _, err := c.Request(ctx, "svc", nil); err != nil {
		t.Fatal(err)
	}
	// Work done after the request with the caller's ctx stays in the caller's trace.
	_, after := tel.tp.Tracer("test").Start(ctx, "after")
	after.End()
	root.End()
	spans := tel.spans()
	rootSpan := find(t, spans, "root", trace.SpanKindInternal)
	wantChild(t, rootSpan, find(t, spans, "request svc", trace.SpanKindClient))
	wantChild(t, rootSpan, find(t, spans, "after", trace.SpanKindInternal))
}

// OTEL_SEMCONV_STABILITY_OPT_IN=database/dup, read at Wrap, adds the pre-stable db.system,
// db.name and db.operation next to db.system.name, db.namespace and db.operation.name
// (Grafana's "View traces" on a database node searches span.db.name).
func TestKeyValueDatabaseDup(t *testing.T) {
	s := startServer(t)
	ctx := ctxTimeout(t)
	for _, tc := range []struct {
		env string
		dup bool
	}{{"", false}, {"database", false}, {"http/dup, database/dup", true}} {
		t.Run(tc.env, func(t *testing.T) {
			t.Setenv("OTEL_SEMCONV_STABILITY_OPT_IN", tc.env)
			tel := newTelemetry(t)
			js := tel.jetStream(t, s, "c")
			t.Setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "") // read once, at Wrap
			kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "dup"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := kv.Put(ctx, "k", []byte("v")); err != nil {
				t.Fatal(err)
			}
			sp := find(t, tel.spans(), "put dup", trace.SpanKindClient)
			wantAttr(t, sp, semconv.DBNamespaceKey, "dup")
			wantAttr(t, sp, semconv.DBSystemNameKey, "nats")
			if tc.dup {
				wantAttr(t, sp, "db.name", "dup")
				wantAttr(t, sp, "db.system", "nats")
				wantAttr(t, sp, "db.operation", "put")
			} else {
				noAttr(t, sp, "db.name")
				noAttr(t, sp, "db.system")
			}
		})
	}
}
