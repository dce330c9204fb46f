package natsotel_test

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/micro"

	"github.com/natsotel/reference/natsotel"
)

// An endpoint handles up to WithConcurrency requests at once, each in its own goroutine
// with its own SERVER span; Shutdown stops taking requests and returns once every request
// received has been answered.
func ExampleWithConcurrency() {
	env := newExampleEnv()
	defer env.close()
	srv := env.connect("inventory", natsotel.WithConcurrency(16))
	svc, err := srv.AddService(micro.Config{Name: "inventory", Version: "1.0.0"})
	if err != nil {
		panic(err)
	}
	// Four requests meet here; a service that answers one at a time would wait forever.
	var arrived sync.WaitGroup
	arrived.Add(4)
	_ = svc.AddEndpoint("reserve", func(ctx context.Context, req micro.Request) {
		arrived.Done()
		arrived.Wait()
		_ = req.Respond([]byte("reserved"))
	})
	_ = srv.NATS().Flush()

	cli := env.connect("order")
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, err := cli.Request(ctx, "reserve", nil); err != nil {
				fmt.Println(err)
			}
		})
	}
	wg.Wait()
	fmt.Println("answered 4 requests together")
	if err := svc.Shutdown(context.Background()); err != nil {
		fmt.Println(err)
	}
	// Output: answered 4 requests together
}
