package inventory

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/natsotel/reference/natsotel"
	"github.com/natsotel/reference/services/contracts"
	"github.com/natsotel/reference/services/internal/jsutil"
	"github.com/natsotel/reference/services/internal/rpc"
)

// startConsumer binds to the durable consumer contracts.InventoryCommitConsumer on the
// order events stream (creating it when missing) and starts Config.Consumers loops
// consuming it. Every loop of every replica consumes the same durable consumer, so each
// event is handled by one of them.
func (s *Service) startConsumer(ctx context.Context, js *natsotel.JetStream) ([]jetstream.ConsumeContext, error) {
	stream, err := jsutil.EnsureOrderEvents(ctx, js.Raw())
	if err != nil {
		return nil, err
	}
	cons, err := jsutil.CommitConsumer(ctx, stream, s.cfg.AckWait, s.cfg.MaxDeliver)
	if err != nil {
		return nil, err
	}
	if md := cons.CachedInfo().Config.MaxDeliver; md > 0 {
		s.cfg.MaxDeliver = md // the consumer's own limit: never fail its last delivery on purpose
	}
	opts := []jetstream.PullConsumeOpt{
		jetstream.PullMaxMessages(max(1, 1000/s.cfg.Consumers)),
		jetstream.PullHeartbeat(pullHeartbeat),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			s.log.Warn("consuming order events", "consumer", contracts.InventoryCommitConsumer, "error", err)
		}),
	}
	ccs := make([]jetstream.ConsumeContext, 0, s.cfg.Consumers)
	for range s.cfg.Consumers {
		cc, err := js.Consume(cons, s.handleEvent, opts...)
		if err != nil {
			for _, cc := range ccs {
				cc.Stop()
			}
			return nil, fmt.Errorf("consuming %s: %w", contracts.InventoryCommitConsumer, err)
		}
		ccs = append(ccs, cc)
	}
	return ccs, nil
}

// pullHeartbeat is how often the server confirms a waiting pull request. A pull request
// can be lost without an answer the loop would act on: sent right after the consumer was
// created in a cluster, before its interest reached this client's node (the server answers
// "no responders", which nats.go only reports), or dropped with a route. The loop then
// waits for messages that never come until two heartbeats are missed, and pulls again:
// with nats.go's default (half the 30 s expiry) that was 30 s of events left pending, long
// enough to fail the cluster test; at 2 s it is 4 s, for one small message a second per
// idle loop.
const pullHeartbeat = 2 * time.Second

// handleEvent applies one order event: confirmed -> commit the reservation, failed ->
// make sure it is released. Both are idempotent, so a redelivery is harmless.
//
// Acknowledgement: Ack after the change is stored; Nak with a delay when the store did
// not answer or a confirmed order's reservation is not held yet (see notYet), redelivered
// up to Config.MaxDeliver times; Term for a message that can never succeed (undecodable,
// or contradicting the reservation's state), logged as an error.
func (s *Service) handleEvent(ctx context.Context, msg jetstream.Msg) {
	if !s.srv.Inflight.Begin() {
		// Stopping (Stop drains the consumer first, so only an event arriving after a
		// timed-out drain gets here): leave it to be redelivered.
		s.settle(ctx, msg, "nak", msg.Nak())
		return
	}
	defer s.srv.Inflight.End()
	s.srv.Faults.Annotate(ctx)

	delivered := uint64(1)
	if md, err := msg.Metadata(); err == nil {
		delivered = md.NumDelivered
	}
	// Never fail the last delivery on purpose: the event must not be lost to a demo fault.
	if delivered < uint64(s.cfg.MaxDeliver) && s.srv.Faults.Nak(ctx) {
		s.settle(ctx, msg, "nak", msg.NakWithDelay(s.cfg.NakDelay))
		return
	}

	ev, derr := rpc.Decode[contracts.OrderEvent](msg.Data())
	if derr == nil {
		derr = rpc.CheckID("order_id", ev.OrderID)
	}
	if derr != nil {
		s.log.ErrorContext(ctx, "dropping an undecodable order event", "subject", msg.Subject(), "error", derr.Description)
		s.settle(ctx, msg, "term", msg.Term())
		return
	}

	var (
		err error
		res contracts.Reservation
	)
	switch ev.Status {
	case contracts.OrderConfirmed:
		res, err = s.commitOrder(ctx, ev.OrderID)
	case contracts.OrderFailed:
		_, err = s.releaseOrder(ctx, ev.OrderID)
	default:
		s.log.WarnContext(ctx, "ignoring an order event with an unexpected status", "order_id", ev.OrderID, "status", string(ev.Status))
		s.settle(ctx, msg, "term", msg.Term())
		return
	}
	var rerr *rpc.Error
	switch {
	case err == nil:
		s.settle(ctx, msg, "ack", msg.Ack())
	case errors.As(err, &rerr) && rerr.Code != contracts.CodeUnavailable && !notYet(ev.Status, res):
		// 409 (released for a confirmed order, committed for a failed one): the
		// reservation contradicts the event. Retrying cannot help.
		s.log.ErrorContext(ctx, "order event contradicts the reservation", "order_id", ev.OrderID,
			"status", string(ev.Status), "code", rerr.Code, "description", rerr.Description)
		s.settle(ctx, msg, "term", msg.Term())
	default:
		s.log.WarnContext(ctx, "order event failed, will be redelivered", "order_id", ev.OrderID,
			"status", string(ev.Status), "delivered", delivered, "error", err)
		s.settle(ctx, msg, "nak", msg.NakWithDelay(s.cfg.NakDelay))
	}
}

func (s *Service) settle(ctx context.Context, msg jetstream.Msg, how string, err error) {
	if err != nil {
		s.log.WarnContext(ctx, "settling an order event failed; it will be redelivered", "how", how, "subject", msg.Subject(), "error", err)
	}
}

// notYet reports whether a confirmed order's reservation was read missing or still
// "reserving": not a contradiction, a read behind the write that held it (on a cluster, a
// stream leader that has just changed can serve one stale read) or a reservation still
// being taken. The event is redelivered (up to Config.MaxDeliver times): terminating it
// would leave the order's stock held for good.
func notYet(status contracts.OrderStatus, res contracts.Reservation) bool {
	return status == contracts.OrderConfirmed && (res.State == "" || res.State == stateReserving)
}
