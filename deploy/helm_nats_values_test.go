package deploy

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"go.yaml.in/yaml/v4"
)

const helmNATSValuesPath = "helm/nats-values.yaml"

// sameUser compares what a user may do: name, account and permissions (the parsed
// *Account values differ between two parses, so they are compared by name).
func sameUser(a, b *server.User) bool {
	account := func(u *server.User) string {
		if u.Account == nil {
			return ""
		}
		return u.Account.Name
	}
	return a.Username == b.Username && account(a) == account(b) && reflect.DeepEqual(a.Permissions, b.Permissions)
}

// TestHelmNATSValuesKeepUsers: the authorization the official NATS chart gets from
// helm/nats-values.yaml, parsed by nats-server's own parser (the chart renders config.merge
// as JSON, which the parser reads), has exactly nats.conf's users and permissions; each
// password is an environment variable (<< $USER_PASSWORD >>, expanded by the chart) taken
// from the shop chart's Secret for that user.
func TestHelmNATSValuesKeepUsers(t *testing.T) {
	raw, err := os.ReadFile(helmNATSValuesPath)
	if err != nil {
		t.Fatal(err)
	}
	var values struct {
		Config struct {
			Cluster   map[string]any `yaml:"cluster"`
			JetStream map[string]any `yaml:"jetstream"`
			Merge     map[string]any `yaml:"merge"`
		} `yaml:"config"`
		Container struct {
			Env map[string]struct {
				ValueFrom struct {
					SecretKeyRef struct{ Name, Key string } `yaml:"secretKeyRef"`
				} `yaml:"valueFrom"`
			} `yaml:"env"`
		} `yaml:"container"`
	}
	if err := yaml.Unmarshal(raw, &values); err != nil {
		t.Fatal(err)
	}
	if values.Config.Cluster["enabled"] != true || values.Config.Cluster["replicas"] != 3 || values.Config.JetStream["enabled"] != true {
		t.Errorf("want a 3-node cluster with JetStream: cluster %v, jetstream %v", values.Config.Cluster, values.Config.JetStream)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // '>' in subjects and << >> stay as written
	if err := enc.Encode(values.Config.Merge); err != nil {
		t.Fatal(err)
	}
	conf := buf.Bytes()
	// The chart writes << $VAR >> unquoted; here the variable becomes a literal password.
	vars := regexp.MustCompile(`"<< \$([A-Z_]+) >>"`)
	env := map[string]string{}
	conf = vars.ReplaceAllFunc(conf, func(m []byte) []byte {
		name := string(vars.FindSubmatch(m)[1])
		env[name] = "from-secret"
		return []byte(`"from-secret-` + name + `"`)
	})
	path := filepath.Join(t.TempDir(), "merged.conf")
	if err := os.WriteFile(path, conf, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("nats-server cannot parse the merged config: %v\n%s", err, conf)
	}
	want := natsConfig(t)
	if len(got.Users) != len(want.Users) {
		t.Fatalf("%d users, nats.conf has %d", len(got.Users), len(want.Users))
	}
	for i, w := range want.Users {
		g := got.Users[i]
		if !sameUser(g, w) {
			t.Errorf("user %s: account or permissions differ from nats.conf's user %s", g.Username, w.Username)
		}
		variable := strings.ToUpper(strings.ReplaceAll(w.Username, "-", "_")) + "_PASSWORD"
		if g.Password != "from-secret-"+variable {
			t.Errorf("user %s: password is not << $%s >>", w.Username, variable)
		}
		ref := values.Container.Env[variable].ValueFrom.SecretKeyRef
		if ref.Name != "shop-nats-"+w.Username || ref.Key != "NATS_PASSWORD" {
			t.Errorf("container.env.%s: secretKeyRef %+v, want shop-nats-%s/NATS_PASSWORD", variable, ref, w.Username)
		}
	}
	if len(values.Container.Env) != len(env) {
		t.Errorf("container.env has %d variables, the config uses %d", len(values.Container.Env), len(env))
	}
}
