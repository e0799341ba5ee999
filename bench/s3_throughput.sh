#!/usr/bin/env bash
# Benchmark: runnel-server ingest with its tables on S3 (a throw-away Ceph RGW) against the
# same ingest with its tables on the local disk, in one invocation, with identical settings.
# bench/zb_load (the load client of server_throughput.sh and time_to_table.sh) sends the
# same open-loop load to each: 1064-byte runnel.v1.Record envelopes in batches of B records
# over S PersistentStream calls, RATE MB/s in total on a fixed schedule for SEC seconds,
# then waits until every batch is acknowledged and committed to the table. It asks for
# committed acks (`--committed`: the server tells each call when a Delta commit made its
# offsets visible, docs/protocol.md "Committed acks"), so the time to table is measured the
# same way on both stores: per batch, from its scheduled send to the ack that says it is in
# the table (p50/p99), beside the durability ack (send -> WAL fdatasync'd). Also MB/s until
# every batch is in the table, server CPU-seconds over that window and MB/s per server core
# (record bytes / server CPU-seconds), and the RGW daemons' own CPU-seconds in the S3 run
# (on a real S3 that cost is not yours). Open loop, not closed: a closed loop outruns the
# RGW's commits, fills the server's memory budget and is refused with RESOURCE_EXHAUSTED
# (pushback), which zb_load does not retry. The WAL stays on the local disk in both runs
# (data_root); only table_root differs: a directory under the work directory, or
# s3://bench/run. The RGW is tests/s3/rgw.sh (one monitor, one OSD on a file in the work
# directory under BENCH_DIR, default /tmp; stopped on exit), so both stores share one disk.
# Both tables' live rows are checked against the records sent (the S3 table's _delta_log is
# downloaded for that); every batch must have been reported committed and no call may have
# failed.
# Usage: RN_BIN=build-release bench/s3_throughput.sh [MB/s] [seconds] [streams] [records/batch]
#        (default 20 MB/s, 20 s, 4 streams, 100-record batches)
# RN_SERVER_CONF: more server config lines, given to both runs.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
BIN=${RN_BIN:-build-release}
RATE=${1:-20}
SEC=${2:-20}
S=${3:-4}
B=${4:-100}
[ -x "$BIN/server/runnel-server" ] || { echo "no $BIN/server/runnel-server (RN_BIN=build dir)"; exit 1; }
LOAD=$(zb_load_bin "$BIN")
W=$(mktemp -d "${BENCH_DIR:-/tmp}/runnel-bench.XXXXXX")
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true
	tests/s3/rgw.sh stop "$W/rgw" >/dev/null 2>&1 || true; rm -rf "$W"' EXIT
TABLE=bench.default.records

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
rgw_start "$W/rgw" bench

# rgw_cpu: prints the CPU seconds the RGW's daemons (mon, osd, radosgw) have used so far.
rgw_cpu() {
	local f t=0
	for f in "$W"/rgw/pids/*; do
		t=$(echo "$t + $(cpu_s "$(cat "$f")" 2>/dev/null || echo 0)" | bc)
	done
	echo "$t"
}

# run NAME TABLE_ROOT SEC: one fresh server and SEC seconds of load; zb_load's key=value
# lines in $W/NAME.out, the server's log in $W/NAME.log. Exits 1 (with the log's tail) if
# a call failed or a batch was not acknowledged or not reported in the table.
run() {
	local data="$W/data-$1" spid port
	mkdir -p "$data"
	cat >"$W/$1.conf" <<CONF
listen = "127.0.0.1:0";
data_root = "$data";
table_root = "$2";
tables = [ "$TABLE" ];
${ENDPOINT:+s3_endpoint = \"$ENDPOINT\";}
${AWS_REGION:+s3_region = \"$AWS_REGION\";}
${RN_SERVER_CONF:-}
CONF
	start_server "$W/$1.conf" "$W/$1.log"
	spid=$SERVER_PID port=$SERVER_PORT
	"$LOAD" --kv --committed -s "$S" -b "$B" -r "$RATE" -t "$3" -p "$spid" \
		"127.0.0.1:$port" "$TABLE" >"$W/$1.out"
	kill -TERM "$spid"; wait "$spid" 2>/dev/null || true
	awk -F= -v run="$1" '{ v[$1] = $2 } END {
		if (v["errors"] != 0 || v["unacked"] != 0 || v["vis_n"] != v["batches"]) {
			printf "%s: %d errors, %d unacknowledged, %d of %d batches reported in the table\n",
				run, v["errors"], v["unacked"], v["vis_n"], v["batches"] >"/dev/stderr"; exit 1 } }' "$W/$1.out" || {
		grep "^errors_" "$W/$1.out" >&2 || true
		grep -E " (warn|error|crit) " "$W/$1.log" | tail -n 8 >&2 || true
		exit 1
	}
}

# the first objects of a fresh gateway make its data pool: not part of any figure
run warmup "s3://bench/warmup" 3
mkdir -p "$W/tables"
run local "$W/tables" "$SEC"
rows=$(live_rows "$W/tables/bench/default/records")
records=$(sed -n 's/^records=//p' "$W/local.out")
[ "$rows" -eq "$records" ] || { echo "local table has $rows rows, sent $records"; exit 1; }
rgw0=$(rgw_cpu)
run s3 "s3://bench/run" "$SEC"
rgw1=$(rgw_cpu)
python3 tests/s3/s3_client.py "$W/rgw/env" copy-out bench run/bench/default/records/_delta_log/ \
	"$W/s3-log" >/dev/null
rows=$(live_rows "$W/s3-log/run/bench/default/records")
records=$(sed -n 's/^records=//p' "$W/s3.out")
[ "$rows" -eq "$records" ] || { echo "S3 table has $rows rows, sent $records"; exit 1; }
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)

echo "runnel bench: tables on the local disk against S3 (Ceph RGW, one OSD on a file on the same disk)"
awk -F= '{ v[$1] = $2 } END {
	printf "  %d streams, %s MB/s open loop for %s s, batches of %d records of %d B (%.0f KB); %s cores\n",
		v["streams"], "'"$RATE"'", "'"$SEC"'", v["records_per_batch"], v["record_bytes_each"],
		v["record_bytes"] / v["batches"] / 1e3, "'"$(nproc)"'" }' "$W/local.out"
echo "  load average before $LOAD0, after $LOAD1"
echo "                   MB/s    to table   server CPU   MB/s per   ack p50/p99 (ms)   to table p50/p99 (ms)"
echo "  tables on       acked      (MB/s)    (seconds)       core   send -> WAL sync   send -> commit ack"
row() { # label, file
	awk -F= -v label="$1" '{ v[$1] = $2 } END { mb = v["record_bytes"] / 1e6
		printf "  %-12s %8.1f %11.1f %12.2f %10.1f   %7.1f %8.1f   %9.0f %9.0f\n", label,
			v["achieved_mbps"], mb / v["t_table_s"], v["server_cpu_table_s"], mb / v["server_cpu_table_s"],
			v["ack_p50_ms"], v["ack_p99_ms"], v["vis_p50_ms"], v["vis_p99_ms"] }' "$2"
}
row "local disk" "$W/local.out"
row "S3 (RGW)" "$W/s3.out"
awk -F= -v c="$(echo "$rgw1 - $rgw0" | bc)" '{ v[$1] = $2 } END {
	printf "  the RGW itself (mon, osd, radosgw) used %.2f CPU-seconds in the S3 run: with the server, %.1f MB/s per core\n",
		c, v["record_bytes"] / 1e6 / (v["server_cpu_table_s"] + c) }' "$W/s3.out"
