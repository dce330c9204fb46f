package harness

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"time"
)

// The collector's file exporter (format: json) writes one OTLP/JSON export request per line:
// {"resourceSpans":[...]}, {"resourceLogs":[...]} or {"resourceMetrics":[...]}. Ids are hex
// strings, enums are numbers, 64-bit integers are strings. The types below read the parts the
// tests look at and flatten them: every span, log record and metric carries its resource.

// SpanKind is the OTLP span kind number.
type SpanKind int

// OTLP span kinds.
const (
	SpanKindUnspecified SpanKind = iota
	SpanKindInternal
	SpanKindServer
	SpanKindClient
	SpanKindProducer
	SpanKindConsumer
)

func (k SpanKind) String() string {
	switch k {
	case SpanKindInternal:
		return "INTERNAL"
	case SpanKindServer:
		return "SERVER"
	case SpanKindClient:
		return "CLIENT"
	case SpanKindProducer:
		return "PRODUCER"
	case SpanKindConsumer:
		return "CONSUMER"
	}
	return "UNSPECIFIED"
}

// StatusError is the OTLP status code of a failed span.
const StatusError = 2

// Attrs are flattened OTLP attributes: string, int64, float64, bool, []any or map[string]any.
type Attrs map[string]any

// String returns the attribute as a string ("" when absent).
func (a Attrs) String(key string) string {
	switch v := a[key].(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		return fmt.Sprint(v)
	}
}

// Span is one exported span with its resource.
type Span struct {
	TraceID, SpanID, ParentSpanID string
	Name                          string
	Kind                          SpanKind
	Start, End                    time.Time
	StatusCode                    int
	StatusMessage                 string
	Attributes                    Attrs
	Events                        []string
	Resource                      Attrs
	Scope                         string
}

// Service is the span's service.name.
func (s Span) Service() string { return s.Resource.String("service.name") }

// LogRecord is one exported log record with its resource.
type LogRecord struct {
	TraceID, SpanID string
	Time            time.Time
	SeverityText    string
	SeverityNumber  int
	Body            any
	Attributes      Attrs
	Resource        Attrs
	Scope           string
}

// Service is the record's service.name.
func (l LogRecord) Service() string { return l.Resource.String("service.name") }

// Metric is one exported metric (all its data points' attributes) with its resource.
type Metric struct {
	Name, Unit, Description string
	// Type is "sum", "gauge", "histogram", "exponentialHistogram" or "summary".
	Type        string
	Monotonic   bool
	Temporality int
	Points      []Attrs // attributes of each data point
	Resource    Attrs
	Scope       string
}

// Service is the metric's service.name.
func (m Metric) Service() string { return m.Resource.String("service.name") }

// ReadSpans reads every span of an OTLP/JSON-lines traces file.
func ReadSpans(path string) ([]Span, error) {
	var out []Span
	err := readLines(path, func(line []byte) error {
		var req struct {
			ResourceSpans []struct {
				Resource   jsonResource `json:"resource"`
				ScopeSpans []struct {
					Scope jsonScope `json:"scope"`
					Spans []struct {
						TraceID      string     `json:"traceId"`
						SpanID       string     `json:"spanId"`
						ParentSpanID string     `json:"parentSpanId"`
						Name         string     `json:"name"`
						Kind         int        `json:"kind"`
						Start        jsonUint64 `json:"startTimeUnixNano"`
						End          jsonUint64 `json:"endTimeUnixNano"`
						Attributes   []jsonKV   `json:"attributes"`
						Events       []struct {
							Name string `json:"name"`
						} `json:"events"`
						Status struct {
							Code    int    `json:"code"`
							Message string `json:"message"`
						} `json:"status"`
					} `json:"spans"`
				} `json:"scopeSpans"`
			} `json:"resourceSpans"`
		}
		if err := json.Unmarshal(line, &req); err != nil {
			return err
		}
		for _, rs := range req.ResourceSpans {
			res := attrs(rs.Resource.Attributes)
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					sp := Span{
						TraceID: s.TraceID, SpanID: s.SpanID, ParentSpanID: s.ParentSpanID,
						Name: s.Name, Kind: SpanKind(s.Kind),
						Start: time.Unix(0, int64(s.Start)), End: time.Unix(0, int64(s.End)),
						StatusCode: s.Status.Code, StatusMessage: s.Status.Message,
						Attributes: attrs(s.Attributes), Resource: res, Scope: ss.Scope.Name,
					}
					for _, e := range s.Events {
						sp.Events = append(sp.Events, e.Name)
					}
					out = append(out, sp)
				}
			}
		}
		return nil
	})
	return out, err
}

// ReadLogs reads every log record of an OTLP/JSON-lines logs file.
func ReadLogs(path string) ([]LogRecord, error) {
	var out []LogRecord
	err := readLines(path, func(line []byte) error {
		var req struct {
			ResourceLogs []struct {
				Resource  jsonResource `json:"resource"`
				ScopeLogs []struct {
					Scope      jsonScope `json:"scope"`
					LogRecords []struct {
						TraceID        string     `json:"traceId"`
						SpanID         string     `json:"spanId"`
						Time           jsonUint64 `json:"timeUnixNano"`
						SeverityText   string     `json:"severityText"`
						SeverityNumber int        `json:"severityNumber"`
						Body           jsonValue  `json:"body"`
						Attributes     []jsonKV   `json:"attributes"`
					} `json:"logRecords"`
				} `json:"scopeLogs"`
			} `json:"resourceLogs"`
		}
		if err := json.Unmarshal(line, &req); err != nil {
			return err
		}
		for _, rl := range req.ResourceLogs {
			res := attrs(rl.Resource.Attributes)
			for _, sl := range rl.ScopeLogs {
				for _, r := range sl.LogRecords {
					out = append(out, LogRecord{
						TraceID: r.TraceID, SpanID: r.SpanID, Time: time.Unix(0, int64(r.Time)),
						SeverityText: r.SeverityText, SeverityNumber: r.SeverityNumber,
						Body: r.Body.value(), Attributes: attrs(r.Attributes), Resource: res, Scope: sl.Scope.Name,
					})
				}
			}
		}
		return nil
	})
	return out, err
}

// ReadMetrics reads every metric of an OTLP/JSON-lines metrics file (one entry per metric per
// export; the same metric appears once per export interval).
func ReadMetrics(path string) ([]Metric, error) {
	type points struct {
		DataPoints []struct {
			Attributes []jsonKV `json:"attributes"`
		} `json:"dataPoints"`
		AggregationTemporality int  `json:"aggregationTemporality"`
		IsMonotonic            bool `json:"isMonotonic"`
	}
	var out []Metric
	err := readLines(path, func(line []byte) error {
		var req struct {
			ResourceMetrics []struct {
				Resource     jsonResource `json:"resource"`
				ScopeMetrics []struct {
					Scope   jsonScope `json:"scope"`
					Metrics []struct {
						Name                 string  `json:"name"`
						Unit                 string  `json:"unit"`
						Description          string  `json:"description"`
						Sum                  *points `json:"sum"`
						Gauge                *points `json:"gauge"`
						Histogram            *points `json:"histogram"`
						ExponentialHistogram *points `json:"exponentialHistogram"`
						Summary              *points `json:"summary"`
					} `json:"metrics"`
				} `json:"scopeMetrics"`
			} `json:"resourceMetrics"`
		}
		if err := json.Unmarshal(line, &req); err != nil {
			return err
		}
		for _, rm := range req.ResourceMetrics {
			res := attrs(rm.Resource.Attributes)
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					met := Metric{Name: m.Name, Unit: m.Unit, Description: m.Description, Resource: res, Scope: sm.Scope.Name}
					var p *points
					switch {
					case m.Sum != nil:
						met.Type, p = "sum", m.Sum
					case m.Gauge != nil:
						met.Type, p = "gauge", m.Gauge
					case m.Histogram != nil:
						met.Type, p = "histogram", m.Histogram
					case m.ExponentialHistogram != nil:
						met.Type, p = "exponentialHistogram", m.ExponentialHistogram
					case m.Summary != nil:
						met.Type, p = "summary", m.Summary
					}
					if p != nil {
						met.Monotonic, met.Temporality = p.IsMonotonic, p.AggregationTemporality
						for _, dp := range p.DataPoints {
							met.Points = append(met.Points, attrs(dp.Attributes))
						}
					}
					out = append(out, met)
				}
			}
		}
		return nil
	})
	return out, err
}

// readLines calls fn for each complete line of path. A last line without a newline is still
// being written by the collector and is skipped; a missing file has no lines.
func readLines(path string, fn func([]byte) error) error {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	for n := 1; ; n++ {
		line, err := r.ReadBytes('\n')
		if err != nil { // io.EOF: line (if any) is incomplete
			return nil
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if err := fn(line); err != nil {
			return fmt.Errorf("%s:%d: %w", path, n, err)
		}
	}
}

type jsonResource struct {
	Attributes []jsonKV `json:"attributes"`
}

type jsonScope struct {
	Name string `json:"name"`
}

type jsonKV struct {
	Key   string    `json:"key"`
	Value jsonValue `json:"value"`
}

type jsonValue struct {
	StringValue *string    `json:"stringValue"`
	IntValue    *jsonInt64 `json:"intValue"`
	DoubleValue *float64   `json:"doubleValue"`
	BoolValue   *bool      `json:"boolValue"`
	BytesValue  *string    `json:"bytesValue"`
	ArrayValue  *struct {
		Values []jsonValue `json:"values"`
	} `json:"arrayValue"`
	KvlistValue *struct {
		Values []jsonKV `json:"values"`
	} `json:"kvlistValue"`
}

func (v jsonValue) value() any {
	switch {
	case v.StringValue != nil:
		return *v.StringValue
	case v.IntValue != nil:
		return int64(*v.IntValue)
	case v.DoubleValue != nil:
		return *v.DoubleValue
	case v.BoolValue != nil:
		return *v.BoolValue
	case v.BytesValue != nil:
		return *v.BytesValue
	case v.ArrayValue != nil:
		out := make([]any, 0, len(v.ArrayValue.Values))
		for _, e := range v.ArrayValue.Values {
			out = append(out, e.value())
		}
		return out
	case v.KvlistValue != nil:
		return map[string]any(attrs(v.KvlistValue.Values))
	}
	return nil
}

func attrs(kvs []jsonKV) Attrs {
	out := make(Attrs, len(kvs))
	for _, kv := range kvs {
		out[kv.Key] = kv.Value.value()
	}
	return out
}

// jsonInt64 and jsonUint64 accept OTLP/JSON's 64-bit integers, which are strings (numbers
// are accepted too).
type jsonInt64 int64

func (i *jsonInt64) UnmarshalJSON(b []byte) error {
	v, err := strconv.ParseInt(string(bytes.Trim(b, `"`)), 10, 64)
	*i = jsonInt64(v)
	return err
}

type jsonUint64 uint64

func (u *jsonUint64) UnmarshalJSON(b []byte) error {
	v, err := strconv.ParseUint(string(bytes.Trim(b, `"`)), 10, 64)
	*u = jsonUint64(v)
	return err
}
