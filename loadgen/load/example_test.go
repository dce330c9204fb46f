package load_test

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/natsotel/reference/loadgen/load"
	"github.com/natsotel/reference/natsotel"
	"github.com/natsotel/reference/services/contracts"
)

// Run drives a service through a natsotel connection and summarises what came back.
// Here the "order" service knows no orders, so every lookup gets the 404 it expects.
func ExampleRun() {
	ns, _ := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true})
	go ns.Start()
	defer ns.Shutdown()
	ns.ReadyForConnections(10 * time.Second)
	nc, _ := nats.Connect(ns.ClientURL())
	defer nc.Close()

	svc, _ := micro.AddService(nc, micro.Config{Name: "order", Version: "0.0.1"})
	defer svc.Stop()
	_ = svc.AddEndpoint("get", micro.HandlerFunc(func(r micro.Request) {
		_ = r.Error(contracts.CodeNotFound, "no such order", nil)
	}), micro.WithEndpointSubject(contracts.SubjectOrderGet))

	conn, _ := natsotel.Wrap(nc)
	sum, err := load.Run(context.Background(), conn, nil, load.Config{
		Rate:     100,
		Count:    5,
		Mix:      load.Mix{load.ScenarioLookup: 1},
		Progress: -1,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("sent", sum.Sent, "outcomes", sum.Outcomes, "unexpected", sum.Unexpected)
	// Output: sent 5 outcomes map[404:5] unexpected 0
}

func ExampleParseMix() {
	mix, err := load.ParseMix("valid=80,declined=20")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(mix, mix.Share(load.ScenarioDeclinedCard))
	// Output: valid_order=80,declined_card=20 0.2
}
