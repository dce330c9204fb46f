package helm

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// programs are the chart's Deployments; services are the NATS micro services among them;
// servers are the programs that serve endpoints, as their <name>-responder user.
var (
	programs = []string{"order", "inventory", "billing", "loadgen", "probe", "nats-hops"}
	services = []string{"order", "inventory", "billing"}
	servers  = []string{"order", "inventory", "billing", "loadgen"}
)

// users are the NATS users the chart makes Secrets for: the programs, their responders,
// provisioning and the admin.
func users() []string {
	u := append(slices.Clone(programs), "provision", "admin")
	for _, s := range servers {
		u = append(u, s+"-responder")
	}
	return u
}

// passwords sets every password the chart requires.
func passwords() map[string]any {
	p := map[string]any{}
	for _, u := range users() {
		p[u] = u + "-secret"
	}
	return p
}

// rendered is what the chart produced, decoded into the Kubernetes API types.
type rendered struct {
	deployments map[string]*appsv1.Deployment
	secrets     map[string]*corev1.Secret
	pdbs        map[string]*policyv1.PodDisruptionBudget
	jobs        map[string]*batchv1.Job
}

// render renders the chart as `helm template shop deploy/helm/shop -n shop` does, with
// values over values.yaml, and decodes every object strictly.
func render(t *testing.T, values map[string]any) (rendered, error) {
	t.Helper()
	chrt, err := loader.Load("shop")
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	vals, err := util.ToRenderValues(chrt, values, common.ReleaseOptions{Name: "shop", Namespace: "shop", IsInstall: true}, nil)
	if err != nil {
		return rendered{}, err
	}
	files, err := engine.Render(chrt, vals)
	if err != nil {
		return rendered{}, err
	}
	r := rendered{deployments: map[string]*appsv1.Deployment{}, secrets: map[string]*corev1.Secret{}, pdbs: map[string]*policyv1.PodDisruptionBudget{}, jobs: map[string]*batchv1.Job{}}
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range files {
			if !yield(n) {
				return
			}
		}
	})
	for _, name := range names {
		if strings.HasSuffix(name, ".tpl") || strings.HasSuffix(name, "NOTES.txt") {
			continue
		}
		for i, doc := range strings.Split(files[name], "\n---") {
			if strings.TrimSpace(strings.Trim(doc, "-")) == "" {
				continue
			}
			decode(t, fmt.Sprintf("%s#%d", name, i), []byte(doc), &r)
		}
	}
	return r, nil
}

// decode reads one YAML document strictly (unknown fields and duplicate keys fail) into
// the API type its apiVersion and kind name.
func decode(t *testing.T, where string, doc []byte, r *rendered) {
	t.Helper()
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	var obj any
	var name func() string
	switch gvk := tm.APIVersion + "/" + tm.Kind; gvk {
	case "apps/v1/Deployment":
		d := &appsv1.Deployment{}
		obj, name = d, func() string { r.deployments[d.Name] = d; return d.Name }
	case "v1/Secret":
		s := &corev1.Secret{}
		obj, name = s, func() string { r.secrets[s.Name] = s; return s.Name }
	case "batch/v1/Job":
		j := &batchv1.Job{}
		obj, name = j, func() string { r.jobs[j.Name] = j; return j.Name }
	case "policy/v1/PodDisruptionBudget":
		p := &policyv1.PodDisruptionBudget{}
		obj, name = p, func() string { r.pdbs[p.Name] = p; return p.Name }
	default:
		t.Fatalf("%s: unexpected object %s", where, gvk)
	}
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		t.Fatalf("%s: not a valid %s: %v\n%s", where, tm.Kind, err, doc)
	}
	if n := name(); n == "" {
		t.Errorf("%s: %s without a name", where, tm.Kind)
	}
}

func mustRender(t *testing.T, values map[string]any) rendered {
	t.Helper()
	r, err := render(t, values)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return r
}

func defaults() map[string]any {
	return map[string]any{"nats": map[string]any{"credentials": map[string]any{"passwords": passwords()}}}
}

// env returns the container's environment as name -> EnvVar, failing on duplicates, and
// checks that every $(VAR) reference names a variable defined before it (Kubernetes
// expands only those).
func env(t *testing.T, c corev1.Container) map[string]corev1.EnvVar {
	t.Helper()
	m := map[string]corev1.EnvVar{}
	ref := regexp.MustCompile(`\$\(([A-Z0-9_]+)\)`)
	for _, e := range c.Env {
		if _, dup := m[e.Name]; dup {
			t.Errorf("%s: %s set twice", c.Name, e.Name)
		}
		for _, r := range ref.FindAllStringSubmatch(e.Value, -1) {
			if _, ok := m[r[1]]; !ok {
				t.Errorf("%s: %s refers to $(%s), which is not defined before it", c.Name, e.Name, r[1])
			}
		}
		m[e.Name] = e
	}
	return m
}

// TestChartRendersStrictly renders the chart with its defaults: exactly the expected
// objects, each a valid object of its API type.
func TestChartRendersStrictly(t *testing.T) {
	r := mustRender(t, defaults())
	if got := slices.Sorted(mapKeys(r.deployments)); !slices.Equal(got, sorted(programs)) {
		t.Errorf("deployments %v, want %v", got, sorted(programs))
	}
	if got := slices.Sorted(mapKeys(r.jobs)); !slices.Equal(got, []string{"provision"}) {
		t.Errorf("jobs %v, want provision", got)
	}
	var wantSecrets []string
	for _, u := range users() {
		wantSecrets = append(wantSecrets, "shop-nats-"+u)
	}
	if got := slices.Sorted(mapKeys(r.secrets)); !slices.Equal(got, sorted(wantSecrets)) {
		t.Errorf("secrets %v, want %v", got, sorted(wantSecrets))
	}
	if got := slices.Sorted(mapKeys(r.pdbs)); !slices.Equal(got, sorted(services)) {
		t.Errorf("disruption budgets %v, want %v", got, sorted(services))
	}
}

// TestChartWiring checks what each program needs to run, be found and stop cleanly.
func TestChartWiring(t *testing.T) {
	r := mustRender(t, defaults())
	grace := drainSeconds(t)
	for _, name := range programs {
		t.Run(name, func(t *testing.T) {
			d := r.deployments[name]
			if d == nil {
				t.Fatal("no deployment")
			}
			sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
			if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				t.Errorf("selector %v does not select the pod template's labels %v", d.Spec.Selector, d.Spec.Template.Labels)
			}
			pod := d.Spec.Template.Spec
			if len(pod.Containers) != 1 {
				t.Fatalf("%d containers", len(pod.Containers))
			}
			c := pod.Containers[0]
			if want := "registry.example.com/natsotel/" + name + ":1.0.0"; c.Image != want {
				t.Errorf("image %s, want %s", c.Image, want)
			}
			if g := pod.TerminationGracePeriodSeconds; g == nil || *g < grace {
				t.Errorf("terminationGracePeriodSeconds %v, want at least %d (services/app Run: StopTimeout + FlushTimeout)", deref(g), grace)
			}
			if sc := pod.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
				t.Error("pod may run as root")
			}
			if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
				sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				t.Error("container: want a read-only root filesystem and no privilege escalation")
			}
			if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
				t.Errorf("resources %v: want cpu and memory requests and a memory limit", c.Resources)
			}

			e := env(t, c)
			value := func(k string) string { return e[k].Value }
			if value("OTEL_SERVICE_NAME") != name {
				t.Errorf("OTEL_SERVICE_NAME %q", value("OTEL_SERVICE_NAME"))
			}
			if value("OTEL_EXPORTER_OTLP_ENDPOINT") != "http://otel-lgtm:4318" || value("OTEL_EXPORTER_OTLP_PROTOCOL") != "http/protobuf" {
				t.Errorf("OTLP endpoint %q protocol %q", value("OTEL_EXPORTER_OTLP_ENDPOINT"), value("OTEL_EXPORTER_OTLP_PROTOCOL"))
			}
			attrs := value("OTEL_RESOURCE_ATTRIBUTES")
			for _, want := range []string{"service.namespace=shop", "k8s.pod.name=$(K8S_POD_NAME)", "k8s.namespace.name=$(K8S_NAMESPACE)", "deployment.environment.name=kubernetes"} {
				if !slices.Contains(strings.Split(attrs, ","), want) {
					t.Errorf("OTEL_RESOURCE_ATTRIBUTES %q lacks %s", attrs, want)
				}
			}
			if e["K8S_POD_NAME"].ValueFrom == nil || e["K8S_POD_NAME"].ValueFrom.FieldRef.FieldPath != "metadata.name" {
				t.Error("K8S_POD_NAME is not the pod's name")
			}
			seeds := strings.Split(value("NATS_URL"), ",")
			if len(seeds) != 3 {
				t.Errorf("NATS_URL %q: want the three nodes", value("NATS_URL"))
			}
			for _, s := range seeds {
				if !regexp.MustCompile(`^nats://nats-[0-2]\.nats-headless:4222$`).MatchString(s) {
					t.Errorf("NATS_URL seed %q is not a node of the NATS chart's headless Service", s)
				}
			}
			// Credentials: NATS_USER and NATS_PASSWORD from this program's Secret, whose user
			// is the nats.conf user of the same name.
			secret := r.secrets["shop-nats-"+name]
			for _, k := range []string{"NATS_USER", "NATS_PASSWORD"} {
				ref := e[k].ValueFrom
				if e[k].Value != "" || ref == nil || ref.SecretKeyRef == nil || ref.SecretKeyRef.Name != "shop-nats-"+name || ref.SecretKeyRef.Key != k {
					t.Errorf("%s: want a secretKeyRef to shop-nats-%s/%s, got %+v", k, name, k, e[k])
				}
				if secret == nil || secret.StringData[k] == "" {
					t.Errorf("secret shop-nats-%s has no %s", name, k)
				}
			}
			if secret != nil && (secret.StringData["NATS_USER"] != name || secret.StringData["NATS_PASSWORD"] != name+"-secret") {
				t.Errorf("secret shop-nats-%s: %v", name, secret.StringData)
			}
			// A program that serves endpoints serves them as its responder user, from the
			// Secret shop-nats-<name>-responder; the others have none.
			responder := name + "-responder"
			for k, key := range map[string]string{"NATS_RESPONDER_USER": "NATS_USER", "NATS_RESPONDER_PASSWORD": "NATS_PASSWORD"} {
				ref := e[k].ValueFrom
				has := ref != nil && ref.SecretKeyRef != nil && ref.SecretKeyRef.Name == "shop-nats-"+responder && ref.SecretKeyRef.Key == key
				if want := slices.Contains(servers, name); has != want || (!want && (e[k].Value != "" || ref != nil)) {
					t.Errorf("%s: %+v; want a secretKeyRef to shop-nats-%s/%s: %v", k, e[k], responder, key, want)
				}
			}
			if s := r.secrets["shop-nats-"+responder]; slices.Contains(servers, name) && (s == nil || s.StringData["NATS_USER"] != responder) {
				t.Errorf("secret shop-nats-%s: %v", responder, s)
			}
			// Every variable is one the program (or the OTel SDK, or a $(...) reference) reads.
			for k := range e {
				if !strings.HasPrefix(k, "OTEL_") && !strings.HasPrefix(k, "K8S_") && !readBySource(t, k) {
					t.Errorf("%s is read nowhere in services/ or loadgen/", k)
				}
			}

			if !slices.Contains(services, name) {
				if c.ReadinessProbe != nil || c.LivenessProbe != nil || len(c.Ports) > 0 || e["HEALTH_ADDR"].Value != "" {
					t.Error("loadgen, probe and nats-hops serve no health endpoint: no probes, no ports")
				}
				if name == "loadgen" && value("LOADGEN_RATE") != "20" {
					t.Errorf("LOADGEN_RATE %q", value("LOADGEN_RATE"))
				}
				if name == "nats-hops" && value("HOPS_SUBJECT") != "nats.hops" {
					t.Errorf("HOPS_SUBJECT %q", value("HOPS_SUBJECT"))
				}
				if name == "probe" && len(strings.Split(value("PROBE_MONITOR_URLS"), ",")) != 3 {
					t.Errorf("PROBE_MONITOR_URLS %q: want the three nodes' monitoring", value("PROBE_MONITOR_URLS"))
				}
				return
			}
			if _, ok := e["NATS_JS_REPLICAS"]; ok {
				t.Error("NATS_JS_REPLICAS set on a service: only provisioning creates resources")
			}
			if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
				t.Errorf("replicas %v, want 2", d.Spec.Replicas)
			}
			if ru := d.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
				t.Error("a rollout may stop an old pod before a new one is ready")
			}
			// The health port: HEALTH_ADDR, the container port and both probes agree.
			if len(c.Ports) != 1 || c.Ports[0].Name != "health" {
				t.Fatalf("ports %v, want one named health", c.Ports)
			}
			if want := ":" + strconv.Itoa(int(c.Ports[0].ContainerPort)); value("HEALTH_ADDR") != want {
				t.Errorf("HEALTH_ADDR %q, container port %d", value("HEALTH_ADDR"), c.Ports[0].ContainerPort)
			}
			for what, p := range map[string]*corev1.Probe{"/readyz": c.ReadinessProbe, "/livez": c.LivenessProbe} {
				if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != what || p.HTTPGet.Port.String() != "health" {
					t.Errorf("probe %s: %+v", what, p)
				}
			}
			if pdb := r.pdbs[name]; pdb == nil || !reflect.DeepEqual(pdb.Spec.Selector, d.Spec.Selector) {
				t.Error("no disruption budget selecting this deployment's pods")
			}
		})
	}
}

// TestChartRequiresPasswords: a missing password is a render error that names the value
// (and the way around it), not a Secret with an empty password.
func TestChartRequiresPasswords(t *testing.T) {
	p := passwords()
	delete(p, "billing")
	_, err := render(t, map[string]any{"nats": map[string]any{"credentials": map[string]any{"passwords": p}}})
	if err == nil || !strings.Contains(err.Error(), "nats.credentials.passwords.billing is required") || !strings.Contains(err.Error(), "shop-nats-billing") {
		t.Fatalf("render without billing's password: %v", err)
	}
}

// TestChartExistingSecrets: with credentials.create=false the chart makes no Secret and
// needs no password; the programs still read the Secrets by name.
func TestChartExistingSecrets(t *testing.T) {
	r := mustRender(t, map[string]any{
		"nats":    map[string]any{"credentials": map[string]any{"create": false, "secretPrefix": "mine"}},
		"loadgen": map[string]any{"enabled": false},
		"order":   map[string]any{"replicas": 1},
	})
	if len(r.secrets) != 0 {
		t.Errorf("secrets rendered: %v", slices.Sorted(mapKeys(r.secrets)))
	}
	if _, ok := r.deployments["loadgen"]; ok {
		t.Error("loadgen rendered though disabled")
	}
	if _, ok := r.pdbs["order"]; ok {
		t.Error("a disruption budget for a single order replica would block node drains")
	}
	e := env(t, r.deployments["order"].Spec.Template.Spec.Containers[0])
	if ref := e["NATS_PASSWORD"].ValueFrom.SecretKeyRef; ref.Name != "mine-order" {
		t.Errorf("order reads its password from %s, want mine-order", ref.Name)
	}
}

// TestNATSValuesUseTheChartsSecrets: the NATS chart's values read each user's password
// from a Secret this chart creates.
func TestNATSValuesUseTheChartsSecrets(t *testing.T) {
	r := mustRender(t, defaults())
	raw, err := os.ReadFile("nats-values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var wrapper struct {
		Container struct {
			Env map[string]struct {
				ValueFrom corev1.EnvVarSource `json:"valueFrom"`
			} `json:"env"`
		} `json:"container"`
	}
	if err := yaml.Unmarshal(raw, &wrapper); err != nil {
		t.Fatal(err)
	}
	if len(wrapper.Container.Env) == 0 {
		t.Fatal("nats-values.yaml has no container.env")
	}
	for name, e := range wrapper.Container.Env {
		ref := e.ValueFrom.SecretKeyRef
		if ref == nil {
			t.Errorf("%s: not from a Secret", name)
			continue
		}
		s := r.secrets[ref.Name]
		if s == nil || s.StringData[ref.Key] == "" {
			t.Errorf("%s: Secret %s/%s is not one the shop chart creates", name, ref.Name, ref.Key)
		}
	}
}

// drainSeconds reads services/app.Run's default StopTimeout and FlushTimeout from the
// source: the longest a service takes to stop after SIGTERM.
func drainSeconds(t *testing.T) int64 {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "..", "services", "app", "run.go"))
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, field := range []string{"StopTimeout", "FlushTimeout"} {
		m := regexp.MustCompile(`opts\.` + field + ` = (\d+) \* time\.Second`).FindSubmatch(src)
		if m == nil {
			t.Fatalf("services/app/run.go: no default for %s", field)
		}
		n, _ := strconv.ParseInt(string(m[1]), 10, 64)
		total += n
	}
	return total
}

var sourceCache = map[string]bool{}

// readBySource reports whether a Go file under services/ or loadgen/ names the variable
// in a string literal.
func readBySource(t *testing.T, name string) bool {
	t.Helper()
	if v, ok := sourceCache[name]; ok {
		return v
	}
	found := false
	for _, dir := range []string{"services", "loadgen"} {
		_ = filepath.WalkDir(filepath.Join("..", "..", dir), func(path string, d os.DirEntry, err error) error {
			if err != nil || found || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			b, err := os.ReadFile(path)
			if err == nil && strings.Contains(string(b), `"`+name+`"`) {
				found = true
			}
			return err
		})
	}
	sourceCache[name] = found
	return found
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func sorted(s []string) []string {
	c := slices.Clone(s)
	sort.Strings(c)
	return c
}

func deref(p *int64) any {
	if p == nil {
		return "unset"
	}
	return *p
}

// TestChartProvisionJob: provisioning runs as a Helm hook after install and upgrade (the
// Secrets exist by then), as the provision user, with the replicas of the cluster, and
// retries until NATS answers.
func TestChartProvisionJob(t *testing.T) {
	r := mustRender(t, defaults())
	j := r.jobs["provision"]
	if j == nil {
		t.Fatal("no provision job")
	}
	if hook := j.Annotations["helm.sh/hook"]; hook != "post-install,post-upgrade" {
		t.Errorf("helm.sh/hook %q", hook)
	}
	if j.Annotations["helm.sh/hook-delete-policy"] != "before-hook-creation" {
		t.Error("a previous run's Job would block the next one (Jobs are immutable)")
	}
	if j.Spec.BackoffLimit == nil || *j.Spec.BackoffLimit < 3 {
		t.Errorf("backoffLimit %v: the Job must outlast NATS starting", j.Spec.BackoffLimit)
	}
	pod := j.Spec.Template.Spec
	if pod.RestartPolicy != corev1.RestartPolicyNever && pod.RestartPolicy != corev1.RestartPolicyOnFailure {
		t.Errorf("restartPolicy %q", pod.RestartPolicy)
	}
	c := pod.Containers[0]
	if c.Image != "registry.example.com/natsotel/provision:1.0.0" {
		t.Errorf("image %s", c.Image)
	}
	e := env(t, c)
	// Each service's JetStream is in its own account, reached through PROVISION's imports.
	if e["NATS_JS_API_PREFIX"].Value != "js.{service}" {
		t.Errorf("NATS_JS_API_PREFIX %q, want js.{service} (../nats-values.yaml's PROVISION imports)", e["NATS_JS_API_PREFIX"].Value)
	}
	if e["NATS_JS_REPLICAS"].Value != "3" || len(strings.Split(e["NATS_URL"].Value, ",")) != 3 {
		t.Errorf("NATS_JS_REPLICAS %q, NATS_URL %q", e["NATS_JS_REPLICAS"].Value, e["NATS_URL"].Value)
	}
	for _, k := range []string{"NATS_USER", "NATS_PASSWORD"} {
		if ref := e[k].ValueFrom; ref == nil || ref.SecretKeyRef.Name != "shop-nats-provision" || ref.SecretKeyRef.Key != k {
			t.Errorf("%s: %+v", k, e[k])
		}
	}
	if r.secrets["shop-nats-provision"].StringData["NATS_USER"] != "provision" {
		t.Error("the provision Secret's user is not provision")
	}
	for k := range e {
		if !readBySource(t, k) {
			t.Errorf("%s is read nowhere in services/ or loadgen/", k)
		}
	}
}
