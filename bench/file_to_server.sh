#!/usr/bin/env bash
# Benchmark: N lines of 200 bytes in a file → runnel-agent → runnel-server, until every record
# is acknowledged (durable in the server's WAL) and then until it is in the Delta table.
# The agent's status is read on its status socket and the table's rows counted by replaying
# the Delta log's adds and removes (bench/lib.sh: wait_acked, wait_rows).
# Prints records/s, CPU-seconds per million records for agent and server separately, and
# the peak RSS of each. Baseline in the same run: `zstd -3` over the same file (the
# compression work every byte also goes through), so the figures can be compared across
# machines as ratios.
# Usage: RN_BIN=build-release bench/file_to_server.sh [lines]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
BIN=${RN_BIN:-build-release}
N=${1:-1000000}
W=$(mktemp -d /tmp/runnel-bench.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$W"' EXIT
mkdir -p "$W/data" "$W/agent" "$W/logs"
TABLE=bench.default.lines

# 200-byte lines (199 characters + newline), each unique.
bench_lines "$N" "$W/logs/bench.log"
bytes=$(stat -c %s "$W/logs/bench.log")

t0=$(now)
zstd -3 -q -c "$W/logs/bench.log" >/dev/null
t_zstd=$(since "$t0")

cat >"$W/server.conf" <<CONF
listen = "127.0.0.1:0";
data_root = "$W/data";
flush_interval_ms = 1000;
tables = [ "$TABLE" ];
CONF
start_server "$W/server.conf" "$W/server.log"
spid=$SERVER_PID port=$SERVER_PORT
cat >"$W/agent.conf" <<CONF
agent: { device_id = "bench"; data_dir = "$W/agent"; };
buffer: { sync = "normal"; };
uplink: { url = "http://127.0.0.1:$port"; };
sources = ( { type = "file"; name = "bench"; table = "$TABLE";
              paths = [ "$W/logs/bench.log" ]; read_from = "beginning"; } );
CONF

t0=$(now)
"$BIN/agent/runnel-agent" -c "$W/agent.conf" 2>"$W/agent.log" &
apid=$!
# Done when the agent's status (asked on its socket by one poller, every 20 ms) shows every
# record read and every chunk acknowledged.
wait_acked "$W/agent/agent.sock" "$N" "$apid" || { echo "agent died"; tail "$W/agent.log"; exit 1; }
t_ack=$(since "$t0")
acpu=$(cpu_s $apid); scpu=$(cpu_s "$spid"); arss=$(hwm_mb $apid); srss=$(hwm_mb "$spid")

# Time until the rows are in the table (the server's flush interval is part of this): live
# rows, replaying the log's adds and removes (a compaction in between does not count twice).
tdir="$W/data/bench/default/lines"
wait_rows "$tdir" "$N" || { echo "the table has $(live_rows "$tdir") rows, not $N"; exit 1; }
t_table=$(since "$t0")
rows=$(live_rows "$tdir")
[ "$rows" -eq "$N" ] || { echo "the table has $rows rows, sent $N"; exit 1; }
scpu2=$(cpu_s "$spid")
kill -TERM $apid "$spid"; wait $apid "$spid" 2>/dev/null || true

awk -v n="$N" -v b="$bytes" -v ta="$t_ack" -v tt="$t_table" -v tz="$t_zstd" \
    -v ac="$acpu" -v sc="$scpu" -v sc2="$scpu2" -v ar="$arss" -v sr="$srss" 'BEGIN {
	m = n / 1e6;
	printf "runnel bench: file -> agent -> server, %d lines of 200 bytes (%.0f MB)\n", n, b / 1e6;
	printf "  acked by server:   %8.2f s  %10.0f records/s  %7.1f MB/s\n", ta, n / ta, b / 1e6 / ta;
	printf "  in the table:      %8.2f s  (includes the 1 s flush interval)\n", tt;
	printf "  agent  CPU:        %8.2f s per million records   peak RSS %6.1f MB\n", ac / m, ar;
	printf "  server CPU:        %8.2f s per million records   peak RSS %6.1f MB (to ack)\n", sc / m, sr;
	printf "  server CPU:        %8.2f s per million records   (to table)\n", sc2 / m;
	printf "  baseline zstd -3:  %8.2f s for the same file; agent CPU / zstd = %.2fx\n", tz, ac / tz;
}'
