package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/natsotel/reference/e2e/faultkit"
	"github.com/natsotel/reference/e2e/harness"
	"github.com/natsotel/reference/loadgen/load"
	"github.com/natsotel/reference/services/contracts"
)

// Attribute keys the test reads on exported spans: natsotel's delivery count and
// redelivery flag (on a redelivery only: a first delivery has neither) and the services'
// fault marker.
const (
	attrDelivered   = "messaging.nats.delivered"
	attrRedelivered = "messaging.nats.redelivered"
	attrFault       = "demo.fault"
)

// TestFaultRedelivery makes inventory's order-event consumer fail half of the messages on
// purpose (FaultConfig.NakShare through the control endpoint). JetStream redelivers them;
// every order still ends processed exactly once in effect (each confirmed order's
// reservation is committed once, stock is conserved), and the redelivery is visible on
// the CONSUMER spans the collector exported: the failed delivery carries demo.fault=nak,
// the next one messaging.nats.delivered > 1.
func TestFaultRedelivery(t *testing.T) {
	const nakShare = 0.5
	tools := harness.RequireTools(t)
	st := harness.StartStack(t, tools, harness.StackConfig{})
	harness.StartShop(t, st, builder, harness.ShopConfig{})

	nc, err := nats.Connect(st.NATS.URL, nats.Name("fault-redelivery"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := faultkit.SetFaults(nc, contracts.InventoryService, contracts.FaultConfig{NakShare: nakShare}, 1, 10*time.Second); err != nil {
		t.Fatal(err)
	}

	l := faultkit.StartLoad(t, st.NATS.URL, fileLogger(t, st.Dir, "loadgen-inprocess"), load.Config{
		Rate: 15, Count: 40, Mix: faultMix, Timeout: 5 * time.Second, Seed: 21,
	})
	sum, err := l.Wait(60 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("load:\n%s", sum)
	if bad := nonBusiness(l.Recorder.Calls()); len(bad) > 0 {
		t.Errorf("%d requests failed:\n  %s", len(bad), describeCalls(bad, sum.Start, 10))
	}
	rep, lrep := verifyShop(t, st, sum, l.Recorder.Calls())

	// Exactly once in effect: every confirmed order's reservation was written committed
	// once (the reservations bucket keeps 5 revisions: reserving, held, committed).
	js := plainJetStream(t, st.NATS.URL)
	commits, err := committedRevisions(t.Context(), js, sum.Confirmed)
	if err != nil {
		t.Fatal(err)
	}
	for id, n := range commits {
		if n != 1 {
			t.Errorf("order %s: reservation written committed %d times", id, n)
		}
	}

	// The consumer's spans show the failed deliveries and the redeliveries: per message
	// (the send span every delivery's process span is a child of), one delivery more than
	// it was failed, the last one not failed, every delivery after the first marked
	// redelivered with its count.
	var nakked, redelivered, maxDelivered, messages, retried int
	st.Collector.WaitSpans(t, 30*time.Second, func(spans []harness.Span) error {
		type msgSpans struct{ deliveries, naks, lastCount, lastNak int }
		byParent := map[string]*msgSpans{} // trace id / send span id
		nakked, redelivered, maxDelivered = 0, 0, 0
		var problems []string
		for _, sp := range spans {
			if sp.Service() != contracts.InventoryService || sp.Kind != harness.SpanKindConsumer ||
				sp.Name != "process "+contracts.OrderEventsStream {
				continue
			}
			d, ok := sp.Attributes[attrDelivered].(int64)
			if !ok {
				d = 1 // a first delivery carries no count
			}
			if sp.ParentSpanID == "" {
				problems = append(problems, fmt.Sprintf("span %s: a process span with no parent send span", sp.SpanID))
				continue
			}
			key := sp.TraceID + "/" + sp.ParentSpanID
			m := byParent[key]
			if m == nil {
				m = &msgSpans{}
				byParent[key] = m
			}
			m.deliveries++
			maxDelivered = max(maxDelivered, int(d))
			nak := sp.Attributes.String(attrFault) == "nak"
			if nak {
				nakked++
				m.naks++
			}
			if int(d) > m.lastCount {
				m.lastCount, m.lastNak = int(d), 0
				if nak {
					m.lastNak = 1
				}
			}
			if d > 1 {
				redelivered++
				if r, _ := sp.Attributes[attrRedelivered].(bool); !r {
					problems = append(problems, fmt.Sprintf("span %s: delivered %d without %s=true", sp.SpanID, d, attrRedelivered))
				}
			}
		}
		messages, retried = len(byParent), 0
		for key, m := range byParent {
			if m.naks > 0 {
				retried++
			}
			if m.deliveries != m.naks+1 || m.lastNak == 1 || m.lastCount != m.deliveries {
				problems = append(problems, fmt.Sprintf("message of send span %s: %d delivery spans, %d failed on purpose, last delivery count %d", key, m.deliveries, m.naks, m.lastCount))
			}
		}
		switch {
		case len(problems) > 0:
			return fmt.Errorf("%d problems, e.g. %s", len(problems), problems[0])
		case messages < rep.Confirmed+rep.Failed: // every decided order publishes its event
			return fmt.Errorf("spans of %d order events so far", messages)
		case nakked == 0:
			return fmt.Errorf("no CONSUMER span of %s with %s=nak", contracts.InventoryCommitConsumer, attrFault)
		}
		return nil
	})
	t.Logf("consumer spans: %d order events, %d of them failed on purpose at least once; %d deliveries failed, %d redeliveries (%s > 1), highest delivery count %d",
		messages, retried, nakked, redelivered, attrDelivered, maxDelivered)
	t.Logf("FIGURES redelivery: nak_share %.1f; sent %d, confirmed %d, failed %d, lost %d; %d events, %d retried, %d nak'd deliveries, %d redeliveries, max delivery count %d; reservations committed once: %d/%d",
		nakShare, sum.Sent, len(sum.Confirmed), len(sum.Failed), len(lrep.Lost), messages, retried, nakked, redelivered, maxDelivered, countOnce(commits), len(commits))
}

// committedRevisions counts, for each order, the revisions of its reservation in state
// committed.
func committedRevisions(ctx context.Context, js jetstream.JetStream, orders []string) (map[string]int, error) {
	kv, err := js.KeyValue(ctx, contracts.BucketReservations)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, id := range orders {
		hist, err := kv.History(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("history of reservation %s: %w", id, err)
		}
		for _, e := range hist {
			var r faultkit.Reservation
			if e.Operation() == jetstream.KeyValuePut && json.Unmarshal(e.Value(), &r) == nil && r.State == contracts.ReservationCommitted {
				out[id]++
			}
		}
		if _, ok := out[id]; !ok {
			out[id] = 0
		}
	}
	return out, nil
}

func countOnce(m map[string]int) int {
	n := 0
	for _, v := range m {
		if v == 1 {
			n++
		}
	}
	return n
}
