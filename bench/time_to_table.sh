#!/usr/bin/env bash
# Benchmark: how long a batch takes to become durable (acknowledged) and to be in the Delta
# table, at a moderate load. bench/zb_load sends batches of runnel.v1.Record envelopes
# (1064 bytes each, 1000-byte payload) on a fixed schedule (open loop: RATE MB/s in total,
# spread over S streams) for SEC seconds, and records per batch the time it was queued to
# the connection, the time its durability ack arrived, and the time the Delta version that
# contains it appeared in _delta_log (inotify on the directory; the server writes and
# fsyncs a version file, then link()s it into place, and zb_load reads its txn actions).
# Prints p50/p90/p99/max of (ack - send) and (version file exists - send), once with the
# default flush_interval_ms (1000) and once with 200. Baseline in the same run, same disk:
# write + fdatasync of one batch's bytes, repeated — the floor under any durable ack.
# Usage: RN_BIN=build-release bench/time_to_table.sh [rate_MBps] [seconds] [streams] [records/batch]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
BIN=${RN_BIN:-build-release}
RATE=${1:-20}
SEC=${2:-10}
S=${3:-4}
B=${4:-100}
[ -x "$BIN/server/runnel-server" ] || { echo "no $BIN/server/runnel-server (RN_BIN=build dir)"; exit 1; }
LOAD=$(zb_load_bin "$BIN")
W=$(mktemp -d /tmp/runnel-bench.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$W"' EXIT
TABLE=bench.default.latency

"$LOAD" -b "$B" -c 500 --fsync-probe "$W/probe.bin" >"$W/probe.out"

run() { # $1 = flush_interval_ms or "" for the default; writes $W/run-$2.out
	local data="$W/data-$2" spid port=
	mkdir -p "$data"
	{
		echo "listen = \"127.0.0.1:0\";"
		echo "data_root = \"$data\";"
		echo "tables = [ \"$TABLE\" ];"
		[ -z "$1" ] || echo "flush_interval_ms = $1;"
	} >"$W/server-$2.conf"
	start_server "$W/server-$2.conf" "$W/server-$2.log"
	spid=$SERVER_PID port=$SERVER_PORT
	"$LOAD" --kv -s "$S" -b "$B" -r "$RATE" -t "$SEC" -p "$spid" \
		-d "$data/bench/default/latency/_delta_log" "127.0.0.1:$port" "$TABLE" >"$W/run-$2.out"
	kill -TERM "$spid"; wait "$spid" 2>/dev/null || true
}
run "" default
run 200 200

row() { # label, file
	awk -F= -v label="$1" '{ v[$1] = $2 } END {
		printf "  %-16s %6.1f %6.1f %6.1f %7.1f   %6.0f %6.0f %6.0f %6.0f   %5d %7.0f%%\n", label,
			v["ack_p50_ms"], v["ack_p90_ms"], v["ack_p99_ms"], v["ack_max_ms"],
			v["vis_p50_ms"], v["vis_p90_ms"], v["vis_p99_ms"], v["vis_max_ms"],
			v["delta_versions"], 100 * v["server_cpu_table_s"] / v["t_table_s"] }' "$2"
}
awk -F= '{ v[$1] = $2 } END {
	printf "runnel bench: time to durability and to table, %d streams, %.1f MB/s open loop, %d batches of %d records (%.0f KB) in %.1f s\n",
		v["streams"], v["record_bytes"] / 1e6 / v["t_ack_s"], v["batches"], v["records_per_batch"],
		v["record_bytes"] / v["batches"] / 1e3, v["t_ack_s"] }' "$W/run-default.out"
echo "                   ----- ack - send (ms) -----   -- in Delta log - send (ms) --  Delta  server"
echo "  flush_interval    p50    p90    p99     max      p50    p90    p99    max  versions  CPU"
row "1000 (default)" "$W/run-default.out"
row "200" "$W/run-200.out"
awk -F= '{ v[$1] = $2 } END {
	printf "  baseline: write %.0f KB + fdatasync, same disk, %d times: p50 %.2f  p90 %.2f  p99 %.2f  max %.2f ms\n",
		v["probe_bytes"] / 1e3, v["fsync_n"], v["fsync_p50_ms"], v["fsync_p90_ms"], v["fsync_p99_ms"], v["fsync_max_ms"] }' "$W/probe.out"
cat "$W/run-default.out" "$W/run-200.out" | awk -F= '
	$1 == "ack_p50_ms" { a = a sprintf(" %.1f", $2); if ($2 > 5) am = 1 }
	$1 == "vis_p50_ms" { t = t sprintf(" %.0f", $2); if ($2 > 2000) tm = 1 }
	END { printf "  targets: durability p50 <= 5 ms: %s (%s ms); table p50 <= 2 s: %s (%s ms)\n",
		am ? "NOT met" : "met", substr(a, 2), tm ? "NOT met" : "met", substr(t, 2) }'
