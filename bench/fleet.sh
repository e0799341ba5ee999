#!/usr/bin/env bash
# Benchmark: runnel-server serving a fleet. For each size (streams) and rate (batches/s per
# stream) a fresh release runnel-server takes bench/zb_load's open-loop load: every stream
# sends 1-record batches of one 1064-byte runnel.v1.Record on its own schedule (first send
# jittered), 100 streams per HTTP/2 connection, PersistentStream calls like runnel-agent's.
# After FLEET_WARMUP seconds, FLEET_DURATION seconds are measured: the server's CPU (utime +
# stime from /proc over the window, as % of one core), its RSS peak (VmHWM, whole run), ack
# latency from each batch's scheduled send time (p50/p99/p99.9/max), errors (calls ended by a
# gRPC status, h2 resets, connections lost, batches never acked) and the creates: when the
# first was answered and when all were (seconds after the first call was sent), and each
# create's latency (call sent -> CreateIngestStreamResponse) p50/p99 in seconds. Prints one table and the machine's load average before and after (a shared box
# skews every figure: read them with it).
# Usage: RN_BIN=build-release bench/fleet.sh [sizes...]  (default 1000 10000 50000)
# Environment: FLEET_RATES ("0.2 2"), FLEET_DURATION (60; 300 for the issue's 5-minute
# windows, in which flushes, checkpoints and compactions all happen), FLEET_WARMUP (10),
# FLEET_PER_CONN (100), FLEET_RECORD_BYTES (1000 payload bytes).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
BIN=${RN_BIN:-build-release}
SIZES=${*:-1000 10000 50000}
RATES=${FLEET_RATES:-0.2 2}
DUR=${FLEET_DURATION:-60}
WARM=${FLEET_WARMUP:-10}
PER=${FLEET_PER_CONN:-100}
RECB=${FLEET_RECORD_BYTES:-1000}
[ -x "$BIN/server/runnel-server" ] || { echo "no $BIN/server/runnel-server (RN_BIN=build dir)"; exit 1; }
LOAD=$(zb_load_bin "$BIN")
W=$(mktemp -d /tmp/runnel-bench-fleet.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$W"' EXIT
TABLE=bench.default.fleet

# Descriptors: one per connection on each side, plus the server's WAL and table files.
# Root may raise the hard limit; elsewhere (or in a container without CAP_SYS_RESOURCE)
# the soft limit goes as high as the hard one allows.
ulimit -Hn 1048576 2>/dev/null || true
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

load0=$(cut -d' ' -f1-3 /proc/loadavg)
printf 'runnel bench: fleet, %s s measured after %s s warm-up, 1 x %d B record per batch, %d streams per connection, %d cores, ulimit -n %s\n' \
	"$DUR" "$WARM" $((RECB + 64)) "$PER" "$(nproc)" "$(ulimit -n)"
printf '  %-16s %9s %9s %8s %8s %8s %8s %8s %8s %7s %7s %7s %7s %7s\n' "streams x rate" "offered/s" "acked/s" \
	"srv CPU" "RSS peak" "p50 ms" "p99 ms" "p99.9 ms" "max ms" "errors" "cr 1st" "cr p50" "cr p99" "cr all"
for n in $SIZES; do
	for r in $RATES; do
		data="$W/data-$n-$r"
		mkdir -p "$data"
		cat >"$W/server.conf" <<CONF
listen = "127.0.0.1:0";
data_root = "$data";
tables = [ "$TABLE" ];
max_persistent_streams = $((n + 1000));
max_connections = $((n / PER + 64));
max_streams_per_connection = $PER;
refuse_throttle = 0;
CONF
		start_server "$W/server.conf" "$W/server-$n-$r.log"
		spid=$SERVER_PID
		"$LOAD" -s "$n" -C "$PER" -b 1 --record-bytes "$RECB" -R "$r" -t "$DUR" --warmup "$WARM" \
			-p "$spid" --kv "127.0.0.1:$SERVER_PORT" "$TABLE" >"$W/run.out" 2>"$W/run.err" ||
			{ echo "zb_load failed ($n x $r):"; tail "$W/run.err"; exit 1; }
		kill -TERM "$spid"; wait "$spid" 2>/dev/null || true
		awk -F= -v label="$n x $r/s" '{ v[$1] = $2 } END {
			e = v["errors"] + v["unacked"] + v["skipped"];
			printf "  %-16s %9.0f %9.0f %7.1f%% %5.0f MB %8.1f %8.1f %8.1f %8.1f %7d %6.2fs %6.2fs %6.2fs %6.2fs\n", label,
				v["offered_bps"], v["achieved_bps"], v["server_cpu_pct"], v["server_hwm_mb"],
				v["ack_p50_ms"], v["ack_p99_ms"], v["ack_p999_ms"], v["ack_max_ms"], e,
				v["create_first_ms"] / 1000, v["create_p50_ms"] / 1000, v["create_p99_ms"] / 1000,
				v["create_last_ms"] / 1000 }' "$W/run.out"
		grep -E '^errors_' "$W/run.out" | sed 's/^/      /' || true
		rm -rf "$data"
	done
done
echo "  load average (1/5/15 min): before $load0, after $(cut -d' ' -f1-3 /proc/loadavg)"
