package order_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/natsotel/reference/natsotel"
	"github.com/natsotel/reference/services/billing"
	"github.com/natsotel/reference/services/contracts"
	"github.com/natsotel/reference/services/inventory"
	"github.com/natsotel/reference/services/order"
)

// The three services on one embedded JetStream server, and an order through them.
// Without natsotel options, natsotel uses the global (here no-op) OpenTelemetry providers;
// the binaries pass telemetry.New's providers instead.
func Example() {
	dir, _ := os.MkdirTemp("", "order-example")
	defer os.RemoveAll(dir)
	ns, _ := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	go ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(10 * time.Second) {
		panic("nats-server not ready")
	}

	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	connect := func(name string) *natsotel.Conn {
		nc, err := nats.Connect(ns.ClientURL(), nats.Name(name))
		if err != nil {
			panic(err)
		}
		conn, err := natsotel.Wrap(nc)
		if err != nil {
			panic(err)
		}
		return conn
	}
	inv, err := inventory.Start(ctx, connect("inventory"), log, inventory.Config{})
	if err != nil {
		panic(err)
	}
	defer inv.Stop(ctx)
	bill, err := billing.Start(ctx, connect("billing"), log, billing.Config{})
	if err != nil {
		panic(err)
	}
	defer bill.Stop(ctx)
	ord, err := order.Start(ctx, connect("order"), log, order.Config{})
	if err != nil {
		panic(err)
	}
	defer ord.Stop(ctx)

	client := connect("client")
	req, _ := json.Marshal(contracts.CreateOrderRequest{
		CustomerID: "cust-1",
		Lines:      []contracts.Line{{SKU: "sku-5", Qty: 2}},
		Card:       contracts.CardOK,
	})
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	reply, err := client.Request(rctx, contracts.SubjectOrderCreate, req)
	if err != nil {
		panic(err)
	}
	var o contracts.Order
	_ = json.Unmarshal(reply.Data, &o)
	fmt.Println(o.Status, o.AmountCents)

	// The declined test card: 402, with the failed order as the error body.
	req, _ = json.Marshal(contracts.CreateOrderRequest{
		CustomerID: "cust-1",
		Lines:      []contracts.Line{{SKU: "sku-5", Qty: 1}},
		Card:       contracts.CardDeclined,
	})
	_, err = client.Request(rctx, contracts.SubjectOrderCreate, req)
	var se *natsotel.ServiceError
	if errors.As(err, &se) {
		_ = json.Unmarshal(se.Data, &o)
		fmt.Println(se.Code, o.Status, o.Reason)
	}
	// Output:
	// confirmed 19800
	// 402 failed 402 card declined
}
