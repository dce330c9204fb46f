package natsotel

// ScopeName is the instrumentation scope name of every tracer and meter natsotel creates.
const ScopeName = "github.com/natsotel/reference/natsotel"

// version is the version of this package, reported as the instrumentation scope version.
const version = "0.1.0"
