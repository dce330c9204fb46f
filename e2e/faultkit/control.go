package faultkit

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/natsotel/reference/services/contracts"
)

// SetFaults sends cfg to service's control endpoint (contracts.ControlSubject), which
// every replica answers, and waits until replicas of them confirmed the configuration.
func SetFaults(nc *nats.Conn, service string, cfg contracts.FaultConfig, replicas int, timeout time.Duration) error {
	body, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	inbox := nats.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return err
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.PublishRequest(contracts.ControlSubject(service), inbox, body); err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for n := 0; n < replicas; n++ {
		msg, err := sub.NextMsg(time.Until(deadline))
		if err != nil {
			return fmt.Errorf("%s control: %d of %d replicas answered: %w", service, n, replicas, err)
		}
		if code := msg.Header.Get("Nats-Service-Error-Code"); code != "" {
			return fmt.Errorf("%s control: %s %s", service, code, msg.Header.Get("Nats-Service-Error"))
		}
		var got contracts.FaultConfig
		if err := json.Unmarshal(msg.Data, &got); err != nil {
			return fmt.Errorf("%s control reply %q: %w", service, msg.Data, err)
		}
		if got != cfg {
			return fmt.Errorf("%s control: in force %+v, want %+v", service, got, cfg)
		}
	}
	return nil
}
