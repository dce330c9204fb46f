#!/usr/bin/env bash
# Builds the programs the e2e harness runs as separate processes, from the Go module proxy, into
# $TOOLS_DIR/bin (default <repo>/.cache/tools/bin, git-ignored):
#
#   otelcol      custom OpenTelemetry Collector (manifest: e2e/tools/otelcol/builder-config.yaml)
#   prometheus   Prometheus 3 with its OTLP receiver (-tags remove_all_sd: no service discovery)
#   nats-server  NATS server with JetStream
#   nats         the nats CLI (nats micro ls/info/stats, nats req, nats bench)
#
# Idempotent: each tool has a stamp file recording what it was built from (versions, manifest hash, Go
# version); a tool is rebuilt only when its binary is missing or its stamp differs. Everything is built
# outside the go.work workspace (GOWORK=off) so the tools keep their own dependency versions.
#
# Usage: bash e2e/tools/build.sh [tool...]   (default: all)
set -euo pipefail

export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
export GOWORK=off
export CGO_ENABLED=0
# -buildvcs=false: the module cache has no VCS metadata; keep whatever else the caller set.
case " ${GOFLAGS:-} " in *" -buildvcs="*) ;; *) export GOFLAGS="${GOFLAGS:+$GOFLAGS }-buildvcs=false" ;; esac

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TOOLS_DIR="${TOOLS_DIR:-$repo/.cache/tools}"
bin="$TOOLS_DIR/bin"
stamps="$TOOLS_DIR/stamps"
logs="$TOOLS_DIR/logs"
mkdir -p "$bin" "$stamps" "$logs"
export GOBIN="$bin"

# Versions (keep in sync with e2e/tools/otelcol/builder-config.yaml and e2e/harness/tools.go).
OTELCOL_BUILDER_VERSION=v0.145.0
PROMETHEUS_VERSION=v0.316.0 # Prometheus 3.x module tag
NATS_SERVER_VERSION=v2.15.3
NATSCLI_VERSION=v0.5.1

manifest="$repo/e2e/tools/otelcol/builder-config.yaml"
goversion="$(go env GOVERSION)"

sha() { sha256sum "$1" | cut -c1-16; }

# needs NAME STAMP: true when bin/NAME is missing or was built from something else.
needs() {
	[[ -x "$bin/$1" ]] || return 0
	[[ "$(cat "$stamps/$1" 2>/dev/null)" == "$2" ]] && return 1
	return 0
}

# build NAME STAMP CMD...: runs CMD (output to logs/NAME.log), then writes the stamp.
build() {
	local name="$1" stamp="$2"
	shift 2
	if ! needs "$name" "$stamp"; then
		echo "tools: $name up to date ($stamp)"
		return 0
	fi
	echo "tools: building $name ($stamp) ..."
	local start=$SECONDS
	if ! "$@" >"$logs/$name.log" 2>&1; then
		echo "tools: building $name FAILED after $((SECONDS - start))s; log $logs/$name.log:" >&2
		tail -n 60 "$logs/$name.log" >&2
		return 1
	fi
	echo "$stamp" >"$stamps/$name"
	echo "tools: built $name in $((SECONDS - start))s"
}

build_otelcol() {
	local src="$TOOLS_DIR/src/otelcol"
	rm -rf "$src"
	mkdir -p "$src"
	go install "go.opentelemetry.io/collector/cmd/builder@$OTELCOL_BUILDER_VERSION"
	# The builder resolves output_path against its working directory.
	(cd "$src" && "$bin/builder" --config "$manifest")
	install -m 0755 "$src/dist/otelcol" "$bin/otelcol"
	rm -f "$src/dist/otelcol" # keep the generated sources, not a second copy of the binary
}

build_prometheus() {
	go install -tags remove_all_sd "github.com/prometheus/prometheus/cmd/prometheus@$PROMETHEUS_VERSION"
}

build_nats_server() {
	go install "github.com/nats-io/nats-server/v2@$NATS_SERVER_VERSION"
}

build_nats() {
	go install "github.com/nats-io/natscli/nats@$NATSCLI_VERSION"
}

want=("$@")
[[ ${#want[@]} -eq 0 ]] && want=(otelcol prometheus nats-server nats)

total=$SECONDS
for t in "${want[@]}"; do
	case "$t" in
	otelcol) build otelcol "builder=$OTELCOL_BUILDER_VERSION manifest=$(sha "$manifest") $goversion" build_otelcol ;;
	prometheus) build prometheus "prometheus=$PROMETHEUS_VERSION tags=remove_all_sd $goversion" build_prometheus ;;
	nats-server) build nats-server "nats-server=$NATS_SERVER_VERSION $goversion" build_nats_server ;;
	nats) build nats "natscli=$NATSCLI_VERSION $goversion" build_nats ;;
	*)
		echo "tools: unknown tool $t (want otelcol, prometheus, nats-server, nats)" >&2
		exit 2
		;;
	esac
done
echo "tools: done in $((SECONDS - total))s; binaries in $bin"
