package servicegraph

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Render writes s as a table, one edge a line:
//
//	CLIENT   SERVER     TYPE              TOTAL  RATE/S  ERRORS  P50      P99
//	loadgen  order      request           1200   20.0    15.0%   2.1ms    9.8ms
//	order    orders     database          2400   40.0    0.0%    310µs    1.2ms
//
// Rate and errors are over the graph's window; P50 and P99 are server-side latency (see
// Edge.ServerLatency). Pending, expired and dropped sides follow on one line.
func Render(w io.Writer, s Snapshot) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CLIENT\tSERVER\tTYPE\tTOTAL\tRATE/S\tERRORS\tP50\tP99")
	for _, e := range s.Edges {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.1f\t%.1f%%\t%s\t%s\n",
			e.Client, e.Server, e.Type, e.Requests, e.Rate, 100*e.ErrorShare,
			fmtDuration(e.ServerLatency.P50), fmtDuration(e.ServerLatency.P99))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("servicegraph: render: %w", err)
	}
	_, err := fmt.Fprintf(w, "(%d edges; pending %d, expired %d, dropped %d)\n",
		len(s.Edges), s.Pending, s.Expired, s.Dropped)
	if err != nil {
		return fmt.Errorf("servicegraph: render: %w", err)
	}
	return nil
}

// String renders s as Render does.
func (s Snapshot) String() string {
	var b strings.Builder
	_ = Render(&b, s)
	return b.String()
}

func fmtDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(10 * time.Microsecond).String()
	default:
		return d.Round(time.Millisecond).String()
	}
}
