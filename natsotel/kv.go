package natsotel

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go/jetstream"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// KeyValue is an instrumented jetstream.KeyValue: every call is a CLIENT span "{op} {bucket}"
// (op = get, put, create, update, delete) whose db.* attributes (db.system.name=nats,
// db.namespace and db.collection.name = bucket, db.operation.name = op) make the bucket a
// database node in Tempo's service graph. server.address is deliberately not set on these
// spans: Tempo names the database node by peer.service, then server.address, then the db
// name, and the node should be the bucket, not the NATS server.
//
// A trace context stored with a value (headers written by another client) is never used:
// reads do not extract anything. Errors are returned unchanged, so errors.Is(err,
// jetstream.ErrKeyNotFound) and friends hold. The calls a service makes per request are
// here; the rest of jetstream.KeyValue (Purge, Watch, History, Keys, ...) is untraced, on
// the bucket JetStream.Raw().KeyValue opens.
type KeyValue struct {
	kv   jetstream.KeyValue
	conn *Conn
}

// KeyValue opens an existing bucket.
func (j *JetStream) KeyValue(ctx context.Context, bucket string) (*KeyValue, error) {
	kv, err := j.js.KeyValue(ctx, bucket)
	if err != nil {
		return nil, err
	}
	return j.wrapKeyValue(kv), nil
}

// CreateOrUpdateKeyValue creates the bucket or updates its configuration.
func (j *JetStream) CreateOrUpdateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (*KeyValue, error) {
	kv, err := j.js.CreateOrUpdateKeyValue(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return j.wrapKeyValue(kv), nil
}

// wrapKeyValue instruments an existing bucket handle.
func (j *JetStream) wrapKeyValue(kv jetstream.KeyValue) *KeyValue {
	return &KeyValue{kv: kv, conn: j.conn}
}

// Get returns the latest value of key. A missing or deleted key is an expected outcome, not a
// span error: the span gets nats.kv.found=false and db.response.returned_rows=0, status Unset.
func (k *KeyValue) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	var e jetstream.KeyValueEntry
	err := k.do(ctx, specKVGet, key, func(ctx context.Context) (uint64, error) {
		var err error
		e, err = k.kv.Get(ctx, key)
		if e != nil {
			return e.Revision(), err
		}
		return 0, err
	})
	return e, err
}

// Put stores value under key and returns the new revision.
func (k *KeyValue) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	return k.doRev(ctx, specKVPut, key, func(ctx context.Context) (uint64, error) { return k.kv.Put(ctx, key, value) })
}

// Create stores value only if key does not exist (or was deleted). An existing key fails with
// error.type=key_exists (errors.Is(err, jetstream.ErrKeyExists)).
func (k *KeyValue) Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error) {
	return k.doRev(ctx, specKVCreate, key, func(ctx context.Context) (uint64, error) { return k.kv.Create(ctx, key, value, opts...) })
}

// Update stores value only if revision is the latest. A stale revision fails with
// error.type=revision_mismatch (errors.Is(err, jetstream.ErrKeyRevisionMismatch)): the
// caller is expected to re-read and retry.
func (k *KeyValue) Update(ctx context.Context, key string, value []byte, revision uint64) (uint64, error) {
	return k.doRev(ctx, specKVUpdate, key, func(ctx context.Context) (uint64, error) { return k.kv.Update(ctx, key, value, revision) })
}

// Delete places a delete marker for key.
func (k *KeyValue) Delete(ctx context.Context, key string, opts ...jetstream.KVDeleteOpt) error {
	return k.do(ctx, specKVDelete, key, func(ctx context.Context) (uint64, error) { return 0, k.kv.Delete(ctx, key, opts...) })
}

func (k *KeyValue) doRev(ctx context.Context, spec *opSpec, key string, fn func(context.Context) (uint64, error)) (uint64, error) {
	var rev uint64
	err := k.do(ctx, spec, key, func(ctx context.Context) (uint64, error) {
		var err error
		rev, err = fn(ctx)
		return rev, err
	})
	return rev, err
}

func (k *KeyValue) do(ctx context.Context, spec *opSpec, key string, fn func(context.Context) (uint64, error)) error {
	c := k.conn
	if ctx == nil {
		ctx = context.Background()
	}
	bucket := k.kv.Bucket()
	if c.cfg.filter != nil && !c.cfg.filter("$KV."+bucket+"."+key) {
		_, err := fn(ctx)
		return err
	}
	// The span's attributes, the outcome's included, are set in one call when it ends.
	ctx, cl := c.start(ctx, c.op(spec, bucket, "", false), nil)
	rev, err := fn(ctx)
	errType := kvErrorType(spec, err)
	var b *attrBuf
	if cl.span.IsRecording() {
		b = cl.attrs("")
		switch {
		case err == nil && spec == specKVGet:
			b.kvs = append(b.kvs, kvFoundKey.Bool(true), semconv.DBResponseReturnedRows(1), kvRevisionKey.Int64(int64(rev)))
		case err == nil && rev != 0:
			b.kvs = append(b.kvs, kvRevisionKey.Int64(int64(rev)))
		case spec == specKVGet && isNotFound(err):
			b.kvs = append(b.kvs, kvFoundKey.Bool(false), semconv.DBResponseReturnedRows(0))
		}
	}
	desc := ""
	if errType != "" {
		desc = err.Error()
	}
	cl.endWith(ctx, b, errType, desc, 0)
	return err
}

func isNotFound(err error) bool {
	return errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted)
}

// kvErrorType maps KeyValue errors to error.type; "" for success and not-found.
func kvErrorType(spec *opSpec, err error) string {
	switch {
	case err == nil:
		return ""
	case spec == specKVGet && isNotFound(err):
		return ""
	case errors.Is(err, jetstream.ErrKeyRevisionMismatch):
		return errTypeRevisionMismatch
	case errors.Is(err, jetstream.ErrKeyExists):
		if spec == specKVUpdate {
			return errTypeRevisionMismatch
		}
		return errTypeKeyExists
	default:
		return ErrorType(err)
	}
}
