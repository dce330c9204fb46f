package natsotel

// scopeName is the instrumentation scope name of every tracer and meter natsotel creates:
// the import path.
const scopeName = "github.com/natsotel/reference/natsotel"

// version is the version of this package, reported as the instrumentation scope version.
const version = "0.1.0"
