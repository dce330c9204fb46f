package telemetry_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/natsotel/reference/natsotel"
	"github.com/natsotel/reference/services/internal/testenv"
	"github.com/natsotel/reference/services/telemetry"
)

// newProfiled returns a Telemetry with Profile set, pushing to the Pyroscope at addr,
// whose spans are recorded.
func newProfiled(t *testing.T, addr string) (*telemetry.Telemetry, *tracetest.SpanRecorder) {
	t.Helper()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_SDK_DISABLED", "")
	t.Setenv("PYROSCOPE_SERVER_ADDRESS", addr)
	rec := tracetest.NewSpanRecorder()
	tel, err := telemetry.New(context.Background(), telemetry.Config{
		ServiceName: "order", Profile: true, SpanProcessors: []sdktrace.SpanProcessor{rec}, Stderr: io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = tel.Shutdown(ctx) // again, in most tests: a no-op
	})
	return tel, rec
}

// shutdown shuts tel down within 10 s.
func shutdown(t testing.TB, tel *telemetry.Telemetry) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tel.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

// profileID returns the pyroscope.profile.id attribute of s.
func profileID(s sdktrace.ReadOnlySpan) string {
	for _, kv := range s.Attributes() {
		if kv.Key == "pyroscope.profile.id" {
			return kv.Value.AsString()
		}
	}
	return ""
}

// pyroscopeServer receives what pyroscope-go pushes (POST /ingest, the pprof profile in
// the multipart form file "profile") and keeps the parsed profiles.
type pyroscopeServer struct {
	mu       sync.Mutex
	names    []string
	profiles []*profile.Profile
}

func newPyroscopeServer(t testing.TB) (*pyroscopeServer, string) {
	p := &pyroscopeServer{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, _, err := r.FormFile("profile")
		if r.URL.Path != "/ingest" || err != nil {
			t.Errorf("push to %s: %v", r.URL, err)
			http.Error(w, "bad push", http.StatusBadRequest)
			return
		}
		prof, err := profile.Parse(f)
		if err != nil {
			t.Errorf("pushed profile does not parse: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		p.mu.Lock()
		p.names = append(p.names, r.URL.Query().Get("name"))
		p.profiles = append(p.profiles, prof)
		p.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return p, srv.URL
}

// cpuSamples returns the CPU time sampled per value of the pprof label key.
func (p *pyroscopeServer) cpuSamples(key string) map[string]time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]time.Duration{}
	for _, prof := range p.profiles {
		i := -1
		for j, st := range prof.SampleType {
			if st.Type == "cpu" && st.Unit == "nanoseconds" {
				i = j
			}
		}
		for _, s := range prof.Sample {
			for _, v := range s.Label[key] {
				if i >= 0 {
					out[v] += time.Duration(s.Value[i])
				}
			}
		}
	}
	return out
}

// burn keeps the calling goroutine on the CPU for about d of CPU time on an idle machine
// (the work is fixed, so a loaded machine takes longer but samples as much).
func burn(d time.Duration) (n uint64) {
	for i := range uint64(d/time.Millisecond) * 1_000_000 {
		n = n*31 + i
	}
	return n
}

var sink uint64

// CPU samples taken while a span runs carry its local root span's id, in the profile
// pyroscope-go pushes; Shutdown pushes what was sampled since the last upload.
func TestProfilesCarrySpanIDs(t *testing.T) {
	pyro, url := newPyroscopeServer(t)
	tel, rec := newProfiled(t, url)
	tracer := tel.TracerProvider.Tracer("test")

	ctx, root := tracer.Start(context.Background(), "process order.create")
	sink += burn(300 * time.Millisecond)
	_, child := tracer.Start(ctx, "reserve")
	sink += burn(200 * time.Millisecond)
	child.End()
	root.End()
	_, other := tracer.Start(context.Background(), "process order.get")
	sink += burn(300 * time.Millisecond)
	other.End()

	shutdown(t, tel)
	bySpan := pyro.cpuSamples("span_id")
	byName := pyro.cpuSamples("span_name")
	t.Logf("profiles pushed as %v; CPU by span_id %v, by span_name %v", pyro.names, bySpan, byName)
	if len(pyro.names) == 0 || !strings.HasPrefix(pyro.names[0], "order{") {
		t.Errorf("pushed as %v, want application order", pyro.names)
	}
	spans := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		spans[s.Name()] = s
	}
	for _, name := range []string{"process order.create", "process order.get"} {
		s := spans[name]
		id := s.SpanContext().SpanID().String()
		// The child's samples count for its local root: about 300 ms of burn, sampled at
		// 100 Hz; half of it is enough.
		if bySpan[id] < 150*time.Millisecond || byName[name] < 150*time.Millisecond {
			t.Errorf("%s (span %s): %v of CPU samples labelled with its id, %v with its name", name, id, bySpan[id], byName[name])
		}
		if got := profileID(s); got != id {
			t.Errorf("%s: pyroscope.profile.id = %q, want %s", name, got, id)
		}
	}
	if id := spans["reserve"].SpanContext().SpanID().String(); bySpan[id] != 0 {
		t.Errorf("samples labelled with the child span's id: the link is to the local root")
	}
	for id := range bySpan {
		found := false
		for _, s := range rec.Ended() {
			found = found || s.SpanContext().SpanID().String() == id
		}
		if !found {
			t.Errorf("samples labelled with span_id %s, which no exported span has", id)
		}
	}
}

// A micro endpoint served through natsotel: the CPU its handler burns is labelled with
// the id of the request's server span (the local root in the serving process), which is
// what Grafana opens from a slow "process" span.
func TestProfilesOfNATSRequests(t *testing.T) {
	pyro, url := newPyroscopeServer(t)
	tel, rec := newProfiled(t, url)
	nc, err := nats.Connect(testenv.Server(t).ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	conn, err := natsotel.Wrap(nc, tel.NATSOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := conn.AddService(micro.Config{Name: "work", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.AddEndpoint("burn", func(ctx context.Context, req micro.Request) {
		sink += burn(100 * time.Millisecond)
		_ = req.Respond(nil)
	}, micro.WithEndpointSubject("work.burn")); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if _, err := conn.Request(ctx, "work.burn", nil); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	// Shutdown returns once every handler returned, so every server span has ended.
	if err := svc.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	shutdown(t, tel)

	bySpan := pyro.cpuSamples("span_id")
	var servers []trace.SpanID
	for _, s := range rec.Ended() {
		if s.SpanKind() == trace.SpanKindServer {
			servers = append(servers, s.SpanContext().SpanID())
			if profileID(s) != s.SpanContext().SpanID().String() {
				t.Errorf("server span %q: pyroscope.profile.id = %q", s.Name(), profileID(s))
			}
		}
	}
	if len(servers) != 4 {
		t.Fatalf("%d server spans, want 4", len(servers))
	}
	var total time.Duration
	for _, id := range servers {
		total += bySpan[id.String()]
	}
	t.Logf("CPU labelled with the 4 server spans: %v (by span_id: %v)", total, bySpan)
	if total < 200*time.Millisecond { // about 400 ms burnt; half is enough
		t.Errorf("only %v of CPU samples labelled with the server spans' ids", total)
	}
}

// BenchmarkSpan measures what Profile adds to starting and ending a span (a pprof label
// set and two SetGoroutineLabels calls). Compare with: go test -run - -bench Span -count 6
func BenchmarkSpan(b *testing.B) {
	_, url := newPyroscopeServer(b)
	for _, addr := range []string{"", url} {
		b.Run(map[string]string{"": "plain", url: "profiled"}[addr], func(b *testing.B) {
			b.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
			b.Setenv("PYROSCOPE_SERVER_ADDRESS", addr)
			tel, err := telemetry.New(context.Background(), telemetry.Config{ServiceName: "bench", Profile: true, Stderr: io.Discard})
			if err != nil {
				b.Fatal(err)
			}
			defer shutdown(b, tel)
			tracer := tel.TracerProvider.Tracer("bench")
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				_, span := tracer.Start(ctx, "process order.create")
				span.End()
			}
		})
	}
}

// With Pyroscope unreachable or hanging, spans cost no more and Shutdown returns by its
// deadline. Last in the file: the hanging profiler finishes stopping only after the test
// (the Go CPU profiler is one per process, and the next profiling test needs it).
func TestProfilesDeadPyroscope(t *testing.T) {
	closed := func(t *testing.T) string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return "http://" + l.Addr().String()
	}
	hanging := func(t *testing.T) string {
		release := make(chan struct{})
		h := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		t.Cleanup(func() { close(release); h.Close() })
		return h.URL
	}
	for _, tc := range []struct {
		name string
		url  func(*testing.T) string
	}{{"closed port", closed}, {"hanging server", hanging}} {
		t.Run(tc.name, func(t *testing.T) {
			tel, rec := newProfiled(t, tc.url(t))
			tracer := tel.TracerProvider.Tracer("test")
			const n = 2000
			start := time.Now()
			for range n {
				_, span := tracer.Start(context.Background(), "op")
				span.End()
			}
			if took := time.Since(start); took > 2*time.Second || len(rec.Ended()) != n {
				t.Fatalf("%d spans in %v, want %d quickly", len(rec.Ended()), took, n)
			}
			sink += burn(100 * time.Millisecond) // something to upload
			sctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			start = time.Now()
			err := tel.Shutdown(sctx)
			if took := time.Since(start); took > time.Second {
				t.Fatalf("Shutdown took %v with a 500ms deadline (err %v)", took, err)
			}
		})
	}
}
