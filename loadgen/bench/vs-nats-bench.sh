#!/usr/bin/env bash
# Compares the loadgen's closed loop with `nats bench service request` on the same endpoint
# of the real services: a real nats-server, the order, inventory and billing binaries
# (make build), the nats CLI (make tools). For each client count, ROUNDS rounds run both
# tools one after the other, in alternating order (so drift on a shared machine hits both),
# and print loadgen/nats-bench throughput ratios: per round, then median, min and max.
# nats bench gives each client its own connection; the loadgen gets as many (-connections
# equal to -workers). Two of the comparisons send the same bytes on both sides, so they
# measure the driver:
#   traced     the loadgen as it runs by default (a sampled CLIENT span per request, its
#              traceparent and baggage) against nats bench sending those same two headers;
#   untraced   the loadgen with OTEL_SDK_DISABLED=true OTEL_PROPAGATORS=none (no span, no
#              headers) against plain nats bench.
# The third, mixed, is the default loadgen against plain nats bench: its gap adds what the
# trace context costs everywhere else (every nats-server hop looks into messages that carry
# a traceparent, the services continue the trace and copy the baggage).
#
#   make bench-loadgen                                  # order.get, 1 8 32 clients
#   make bench-loadgen BENCH_ARGS='ROUNDS=7 MSGS=50000'
#
# Environment: TOOLS_DIR (nats, nats-server), BIN (service and loadgen binaries), ROUNDS,
# CLIENTS, MSGS, PORT, SUBJECT (order.get of an order created first, or any endpoint with
# PAYLOAD, a file).
set -euo pipefail

: "${TOOLS_DIR:?TOOLS_DIR must name the e2e tools directory (make tools)}"
BIN=${BIN:-bin}
ROUNDS=${ROUNDS:-5}
CLIENTS=${CLIENTS:-1 8 32}
MSGS=${MSGS:-20000}
PORT=${PORT:-14222}
SUBJECT=${SUBJECT:-order.get}
nats=$TOOLS_DIR/bin/nats
export NATS_URL=nats://127.0.0.1:$PORT LOG_LEVEL=warn

work=$(mktemp -d)
pids=()
keep=
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	[ -n "$keep" ] || rm -rf "$work"
}
trap cleanup EXIT
fail() { # message: exit 1, keeping the logs
	echo "$*; logs in $work" >&2
	keep=1
	exit 1
}

"$TOOLS_DIR/bin/nats-server" -a 127.0.0.1 -p "$PORT" -js -sd "$work/js" >"$work/nats-server.log" 2>&1 &
pids+=($!)
for s in order inventory billing; do
	"$BIN/$s" >"$work/$s.log" 2>&1 &
	pids+=($!)
done
# Ready when the order service answers (a 404 for an unknown order is an answer).
for i in $(seq 100); do
	if "$nats" req order.get '{"id":"none"}' >/dev/null 2>&1; then break; fi
	[ "$i" = 100 ] && fail "the services did not come up"
	sleep 0.2
done

payload=${PAYLOAD:-}
if [ -z "$payload" ]; then
	[ "$SUBJECT" = order.get ] || { echo "SUBJECT=$SUBJECT needs PAYLOAD (a file)" >&2; exit 1; }
	# Retried: inventory and billing may still be starting.
	for i in $(seq 50); do
		id=$("$nats" req order.create '{"customer_id":"c-bench","lines":[{"sku":"sku-1","qty":1}],"card":"4242424242424242"}' --raw 2>/dev/null |
			sed -n 's/.*"id":"\([^"]*\)".*"status":"confirmed".*/\1/p')
		[ -n "$id" ] && break
		[ "$i" = 50 ] && fail "could not create an order"
		sleep 0.2
	done
	payload=$work/get.json
	printf '{"id":"%s"}' "$id" >"$payload"
fi

# Each run prints its rate, or nothing if it failed (the last run's output stays in $work).
natsbench() { # clients [nats flags] -> msgs/s
	"$nats" bench service request "$SUBJECT" --payload "$payload" --clients "$1" --msgs "$MSGS" --no-progress "${@:2}" \
		>"$work/nats-bench.log" 2>&1 || return 0
	sed -n 's/.*stats: \([0-9,]*\) msgs\/sec.*/\1/p' "$work/nats-bench.log" | tail -1 | tr -d ,
}
traced=(-H traceparent:00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 -H baggage:synthetic=true,loadgen.scenario=custom)
loadgen() { # clients [env] -> req/s
	env "${@:2}" "$BIN/loadgen" -mode closed -workers "$1" -connections "$1" -count "$MSGS" -subject "$SUBJECT" \
		-payload "$payload" -progress=-1s -control=false -fail-on-unexpected >"$work/loadgen.out" 2>"$work/loadgen.log" || return 0
	sed -n 's/.* \([0-9.]*\) req\/s achieved.*/\1/p' "$work/loadgen.out"
}

untraced=(OTEL_SDK_DISABLED=true OTEL_PROPAGATORS=none)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
summary() { # clients name ratios...: median, min, max
	printf '%s\n' "${@:3}" | sort -n | awk -v c="$1" -v w="$2" '{ v[NR] = $1 } END {
		m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "clients %-3s loadgen/nats-bench %-9s median %.3f  min %.3f  max %.3f  (n=%d)\n", c, w, m, v[1], v[NR], NR }'
}

echo "endpoint $SUBJECT, $MSGS requests a run, $ROUNDS rounds, nats CLI $("$nats" --version 2>&1)"
for c in $CLIENTS; do
	traced_r=() untraced_r=() mixed_r=()
	for r in $(seq "$ROUNDS"); do
		if [ $((r % 2)) = 1 ]; then
			nb=$(natsbench "$c"); lu=$(loadgen "$c" "${untraced[@]}"); lg=$(loadgen "$c"); nt=$(natsbench "$c" "${traced[@]}")
		else
			nt=$(natsbench "$c" "${traced[@]}"); lg=$(loadgen "$c"); lu=$(loadgen "$c" "${untraced[@]}"); nb=$(natsbench "$c")
		fi
		[ -n "$nb" ] && [ -n "$nt" ] && [ -n "$lg" ] && [ -n "$lu" ] ||
			fail "a run failed (nats bench '$nb', with headers '$nt'; loadgen '$lg', untraced '$lu'): see the last run's log"
		traced_r+=("$(ratio "$lg" "$nt")") untraced_r+=("$(ratio "$lu" "$nb")") mixed_r+=("$(ratio "$lg" "$nb")")
		printf "clients %-3s round %s: nats bench %6.0f/s, with trace headers %6.0f/s; " "$c" "$r" "$nb" "$nt"
		printf "loadgen %6.0f/s, untraced %6.0f/s; ratios traced %s, untraced %s, mixed %s\n" \
			"$lg" "$lu" "${traced_r[-1]}" "${untraced_r[-1]}" "${mixed_r[-1]}"
	done
	summary "$c" traced "${traced_r[@]}"
	summary "$c" untraced "${untraced_r[@]}"
	summary "$c" mixed "${mixed_r[@]}"
done
