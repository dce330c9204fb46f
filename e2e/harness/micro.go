package harness

import (
	"encoding/json"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// WaitMicro polls micro discovery ($SRV.PING) on natsURL until every service in want answers
// with at least the given number of instances, or timeout passes.
func WaitMicro(t testing.TB, natsURL string, want map[string]int, timeout time.Duration) {
	t.Helper()
	nc, err := nats.Connect(natsURL, nats.Name("e2e-harness"))
	if err != nil {
		t.Fatalf("connect %s: %v", natsURL, err)
	}
	defer nc.Close()
	deadline := time.Now().Add(timeout)
	var got map[string]int
	for {
		got, err = pingMicro(nc, 300*time.Millisecond)
		if err == nil && enough(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("micro services not up after %v: want %v, $SRV.PING answered %v (err %v)", timeout, want, got, err)
		}
	}
}

func enough(got, want map[string]int) bool {
	for name, n := range want {
		if got[name] < n {
			return false
		}
	}
	return true
}

// pingMicro sends $SRV.PING and counts distinct instances per service name that answer
// within wait.
func pingMicro(nc *nats.Conn, wait time.Duration) (map[string]int, error) {
	inbox := nats.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return nil, err
	}
	defer sub.Unsubscribe()
	if err := nc.PublishRequest("$SRV.PING", inbox, nil); err != nil {
		return nil, err
	}
	ids := map[string]map[string]bool{}
	end := time.Now().Add(wait)
	for {
		msg, err := sub.NextMsg(time.Until(end))
		if err != nil { // timeout: the answering window is over
			break
		}
		var ping struct {
			Name string `json:"name"`
			ID   string `json:"id"`
		}
		if json.Unmarshal(msg.Data, &ping) != nil {
			continue
		}
		if ids[ping.Name] == nil {
			ids[ping.Name] = map[string]bool{}
		}
		ids[ping.Name][ping.ID] = true
	}
	out := map[string]int{}
	for name, set := range ids {
		out[name] = len(set)
	}
	return out, nil
}

// MicroInstances returns, per service name, how many instances answer $SRV.PING.
func MicroInstances(natsURL string) (map[string]int, error) {
	nc, err := nats.Connect(natsURL, nats.Name("e2e-harness"))
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", natsURL, err)
	}
	defer nc.Close()
	return pingMicro(nc, 300*time.Millisecond)
}

// SortedKeys returns the keys of m, sorted.
func SortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
