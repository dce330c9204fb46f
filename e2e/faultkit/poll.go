package faultkit

import (
	"context"
	"fmt"
	"time"
)

// Poll calls check every interval until it returns nil, and returns nil; or, once timeout
// has passed, returns check's last error. It is for genuinely asynchronous external
// state (KeyValue contents after a consumer has run, services reconnecting).
func Poll(ctx context.Context, timeout, interval time.Duration, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		err := check(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("after %v: %w", timeout, err)
		case <-tick.C:
		}
	}
}
