package natsotel

import (
	"os"
	"strings"

	"go.opentelemetry.io/otel/attribute"
)

// The semantic conventions natsotel follows are those of the newest semconv package the
// OpenTelemetry Go API ships (semconv/v1.43.0 in otel v1.47.0). Conventions 1.44 changed
// nothing natsotel emits: send, receive, process and settle operation types, and
// messaging.system, whose rename to messaging.system.name is planned
// (semantic-conventions#1892) but not made. When it is, natsotel will emit the new name and,
// under OTEL_SEMCONV_STABILITY_OPT_IN=messaging/dup, both, as it does for the database
// attributes today.

// semconvOptIn is the environment variable of the semantic-conventions stability migration.
const semconvOptIn = "OTEL_SEMCONV_STABILITY_OPT_IN"

// databaseDup reports whether OTEL_SEMCONV_STABILITY_OPT_IN (a comma-separated list) asks
// for "database/dup": the database attributes of before the stable conventions (db.system,
// db.name, db.operation) next to the stable ones on KeyValue spans. Grafana's "View traces"
// for a database node searches span.db.name, which the stable conventions replaced by
// db.namespace.
func databaseDup(env string) bool {
	for v := range strings.SplitSeq(env, ",") {
		if strings.TrimSpace(v) == "database/dup" {
			return true
		}
	}
	return false
}

// databaseDupFromEnv reads OTEL_SEMCONV_STABILITY_OPT_IN; Wrap calls it once.
func databaseDupFromEnv() bool { return databaseDup(os.Getenv(semconvOptIn)) }

// Database attributes of the conventions before db.namespace (semconv 1.25 and older); the
// Go semconv packages that still define them are older than the ones natsotel uses.
var (
	dbSystemOld    = attribute.String("db.system", "nats")
	dbNameOld      = attribute.Key("db.name")
	dbOperationOld = attribute.Key("db.operation")
)
