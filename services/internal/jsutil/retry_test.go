package jsutil

import (
	"context"
	"errors"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A lookup that timed out is tried again (the JetStream API stalls while replicas that
// start together create resources: an inventory replica failed its start so in CI); any
// other error, or a canceled start, ends it at once.
func TestRetryTimeouts(t *testing.T) {
	for _, c := range []struct {
		name  string
		errs  []error
		calls int
		want  error
	}{
		{"timeouts then found", []error{context.DeadlineExceeded, nats.ErrTimeout, nil}, 3, nil},
		{"timeouts only", []error{nats.ErrTimeout, nats.ErrTimeout, nats.ErrTimeout, nil}, lookupAttempts, nats.ErrTimeout},
		{"not found", []error{jetstream.ErrBucketNotFound, nil}, 1, jetstream.ErrBucketNotFound},
	} {
		t.Run(c.name, func(t *testing.T) {
			calls := 0
			_, err := retryTimeouts(context.Background(), func() (int, error) {
				calls++
				return 0, c.errs[calls-1]
			})
			if calls != c.calls || !errors.Is(err, c.want) && (err != nil || c.want != nil) {
				t.Fatalf("%d calls, error %v; want %d, %v", calls, err, c.calls, c.want)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls := 0
	if _, err := retryTimeouts(ctx, func() (int, error) { calls++; return 0, context.DeadlineExceeded }); err == nil || calls != 1 {
		t.Fatalf("canceled start: %d calls, %v", calls, err)
	}
}
