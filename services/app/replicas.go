package app

import (
	"fmt"
	"os"
	"strconv"
)

// JetStreamReplicas reads NATS_JS_REPLICAS: how many copies of the JetStream stream and
// KeyValue buckets the provisioning step (services/cmd/provision) makes. Unset means 1
// (a single nats-server); a three-node cluster uses 3. JetStream allows 1 to 5.
func JetStreamReplicas(getenv func(string) string) (int, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	v := getenv("NATS_JS_REPLICAS")
	if v == "" {
		return 1, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 5 {
		return 0, fmt.Errorf("app: NATS_JS_REPLICAS=%q: want an integer from 1 to 5", v)
	}
	return n, nil
}
