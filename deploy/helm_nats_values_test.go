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

	"github.com/nats-io/nats-server/v2/conf"
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

// passwordVar is the environment variable the NATS chart takes user's password from.
func passwordVar(user string) string {
	return strings.ToUpper(strings.ReplaceAll(user, "-", "_")) + "_PASSWORD"
}

// wantedAccounts is nats.conf's accounts block as the NATS chart's values must carry it:
// each account's JetStream, message tracing, exports, imports and users (permissions
// written out: the JSON the chart renders has no variables), each password the
// chart-expanded variable << $<USER>_PASSWORD >>.
func wantedAccounts(t *testing.T) map[string]any {
	t.Helper()
	parsed, err := conf.ParseFile(natsConfPath)
	if err != nil {
		t.Fatal(err)
	}
	accounts := map[string]any{}
	for name, a := range parsed["accounts"].(map[string]any) {
		acc := map[string]any{}
		for k, v := range a.(map[string]any) {
			switch k {
			case "jetstream", "msg_trace", "exports", "imports", "users":
				acc[k] = v
			}
		}
		for _, u := range acc["users"].([]any) {
			u := u.(map[string]any)
			u["password"] = "<< $" + passwordVar(u["user"].(string)) + " >>"
		}
		accounts[name] = acc
	}
	return accounts
}

// asJSON is v as encoding/json reads it back: YAML's and nats-server's parsers give
// numbers different Go types.
func asJSON(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestHelmNATSValuesKeepAccounts: the accounts the official NATS chart gets from
// helm/nats-values.yaml are nats.conf's, to the last export, import and permission; what
// the chart renders from them (config.merge as JSON) is read by nats-server's own parser
// with exactly nats.conf's users and permissions; each
// password is an environment variable (<< $USER_PASSWORD >>, expanded by the chart) taken
// from the shop chart's Secret for that user.
func TestHelmNATSValuesKeepAccounts(t *testing.T) {
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
			Image struct{ Repository, Tag string } `yaml:"image"`
			Env   map[string]struct {
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
	// The same server as compose's nodes.
	if img, want := values.Container.Image.Repository+":"+values.Container.Image.Tag, loadCompose(t).Services["nats"].Image; img != want {
		t.Errorf("container.image is %s, compose's nats runs %s", img, want)
	}

	// The same accounts as nats.conf, to the last subject. On a difference, the wanted
	// block is printed: paste it under config.merge.
	if want := wantedAccounts(t); !reflect.DeepEqual(asJSON(t, values.Config.Merge["accounts"]), asJSON(t, want)) {
		text, _ := yaml.Dump(map[string]any{"accounts": want}, yaml.V4, yaml.WithLineWidth(-1))
		t.Errorf("config.merge.accounts differs from %s; it should read:\n%s", natsConfPath, text)
	}

	// What the chart renders (config.merge as JSON, << $VAR >> unquoted and expanded from
	// the environment) is a configuration nats-server takes, with nats.conf's users.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // '>' in subjects and << >> stay as written
	if err := enc.Encode(values.Config.Merge); err != nil {
		t.Fatal(err)
	}
	rendered := buf.Bytes()
	// The chart writes << $VAR >> unquoted; here the variable becomes a literal password.
	vars := regexp.MustCompile(`"<< \$([A-Z_]+) >>"`)
	env := map[string]string{}
	rendered = vars.ReplaceAllFunc(rendered, func(m []byte) []byte {
		name := string(vars.FindSubmatch(m)[1])
		env[name] = "from-secret"
		return []byte(`"from-secret-` + name + `"`)
	})
	path := filepath.Join(t.TempDir(), "merged.conf")
	if err := os.WriteFile(path, rendered, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("nats-server cannot parse the merged config: %v\n%s", err, rendered)
	}
	want := natsConfig(t)
	if len(got.Users) != len(want.Users) {
		t.Fatalf("%d users, nats.conf has %d", len(got.Users), len(want.Users))
	}
	for _, w := range want.Users {
		g := natsUser(got, w.Username)
		if g == nil || !sameUser(g, w) {
			t.Errorf("user %s: missing, or account or permissions differ from nats.conf's", w.Username)
			continue
		}
		variable := passwordVar(w.Username)
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
