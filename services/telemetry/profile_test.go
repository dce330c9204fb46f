package telemetry

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// pyroscopeServer receives what pyroscope-go pushes (POST /ingest, the pprof profile in
// the multipart form file "profile") and keeps the parsed profiles.
type pyroscopeServer struct {
	mu       sync.Mutex
	names    []string
	profiles []*profile.Profile
}

func newPyroscopeServer(t *testing.T) (*pyroscopeServer, string) {
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
	tel, rec := newRecorded(t, Config{ServiceName: "order", Profile: true}, map[string]string{"PYROSCOPE_SERVER_ADDRESS": url})
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

	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tel.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
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
		var profileID string
		for _, kv := range s.Attributes() {
			if kv.Key == "pyroscope.profile.id" {
				profileID = kv.Value.AsString()
			}
		}
		if profileID != id {
			t.Errorf("%s: pyroscope.profile.id = %q, want %s", name, profileID, id)
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

// With Pyroscope unreachable or hanging, spans cost no more and Shutdown returns by its
// deadline.
func TestProfilesDeadPyroscope(t *testing.T) {
	for name, url := range map[string]func(*testing.T) string{"closed port": closedPortURL, "hanging server": hangingServerURL} {
		t.Run(name, func(t *testing.T) {
			tel, rec := newRecorded(t, Config{ServiceName: "order", Profile: true, Stderr: io.Discard},
				map[string]string{"PYROSCOPE_SERVER_ADDRESS": url(t)})
			tracer := tel.TracerProvider.Tracer("test")
			const n = 5000
			start := time.Now()
			for range n {
				_, span := tracer.Start(context.Background(), "op")
				span.End()
			}
			sink += burn(100 * time.Millisecond) // something to upload
			if took := time.Since(start); took > 2*time.Second || len(rec.Ended()) != n {
				t.Fatalf("%d spans in %v, want %d quickly", len(rec.Ended()), took, n)
			}
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
