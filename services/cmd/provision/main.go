// Command provision creates or updates the shop's JetStream resources (see package
// provision) and exits: 0 when everything is in place. Run it once before the services,
// as the NATS user "provision" (deploy/nats/nats.conf). Configuration: NATS_URL,
// NATS_CREDS or NATS_USER/NATS_PASSWORD, NATS_INBOX_PREFIX (see app.Connect),
// PROVISION_TIMEOUT (default 60s: how long to wait for NATS and JetStream),
// NATS_JS_REPLICAS (replicas of every stream and bucket, default 1; 3 on a three-node
// cluster), NATS_JS_API_PREFIX (each service's JetStream API as this user reaches it, with
// {service} replaced by the service's name: js.{service} under deploy/nats/nats.conf,
// where each service has an account of its own; default: the user's own account's).
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/natsotel/reference/services/app"
	"github.com/natsotel/reference/services/provision"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(log); err != nil {
		log.Error("provisioning failed", "error", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger) error {
	timeout := time.Minute
	if v := os.Getenv("PROVISION_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return err
		}
		timeout = d
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	nc, err := app.Connect(ctx, "provision", nil, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	prefix := os.Getenv("NATS_JS_API_PREFIX")
	js, err := provision.PerService(nc, prefix)
	if err != nil {
		return err
	}
	replicas, err := app.JetStreamReplicas(nil)
	if err != nil {
		return err
	}
	if err := provision.Run(ctx, js, log, replicas); err != nil {
		if prefix == "" {
			// Under nats.conf the provision user's account has no JetStream: its requests
			// are refused asynchronously and every attempt only times out.
			return fmt.Errorf("%w (with deploy/nats/nats.conf, set NATS_JS_API_PREFIX=js.{service})", err)
		}
		return err
	}
	return nil
}
