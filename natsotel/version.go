package natsotel

// ScopeName is the instrumentation scope name of every tracer and meter natsotel creates.
const ScopeName = "github.com/natsotel/reference/natsotel"

// Version is the version of this package, reported as the instrumentation scope version.
const Version = "0.1.0"
