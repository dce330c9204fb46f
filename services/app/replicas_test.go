package app

import (
	"strings"
	"testing"
)

func TestJetStreamReplicas(t *testing.T) {
	for _, tc := range []struct {
		env  string
		want int
		err  bool
	}{
		{"", 1, false}, {"1", 1, false}, {"3", 3, false}, {"5", 5, false},
		{"0", 0, true}, {"6", 0, true}, {"-1", 0, true}, {"three", 0, true}, {" 3", 0, true},
	} {
		got, err := JetStreamReplicas(func(k string) string {
			if k == "NATS_JS_REPLICAS" {
				return tc.env
			}
			return ""
		})
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("NATS_JS_REPLICAS=%q: got %d, %v; want %d, error %v", tc.env, got, err, tc.want, tc.err)
		}
		if err != nil && !strings.Contains(err.Error(), "NATS_JS_REPLICAS") {
			t.Errorf("error does not name the variable: %v", err)
		}
	}
}
