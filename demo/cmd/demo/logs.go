package main

import (
	"bytes"
	"io"
)

// warningsOnly keeps the terminal readable: it drops the components' INFO and DEBUG log
// records and passes everything else (warnings, errors, lines that are not log records).
// The log level itself stays as -log-level says, so an OTLP backend still gets every
// record; only the terminal is quieter. slog's text handler writes one record per Write.
type warningsOnly struct{ w io.Writer }

func (q warningsOnly) Write(p []byte) (int, error) {
	if bytes.HasPrefix(p, []byte("time=")) &&
		(bytes.Contains(p, []byte(" level=INFO ")) || bytes.Contains(p, []byte(" level=DEBUG "))) {
		return len(p), nil
	}
	return q.w.Write(p)
}
