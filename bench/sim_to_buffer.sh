#!/usr/bin/env bash
# Benchmark: the sim source at a very high rate → runnel-agent's disk buffer (sync = normal),
# with a real runnel-server taking the chunks. The simulator has no input I/O, so this
# measures the agent's own pipeline: record building, chunk encoding + zstd, SQLite commits
# with the source's checkpoint, and the uplink sending concurrently. Prints records/s into
# the buffer (from status.json "records", sampled every ~50 ms via SIGUSR1), the time until
# the server acknowledged everything, agent CPU-seconds per million records, and peak RSS.
# The rate is set above what the agent can take, so the source runs as fast as records are
# accepted (the simulator never builds more than 1 s of backlog).
# Usage: RN_BIN=build-release bench/sim_to_buffer.sh [records] [rate] [vehicles]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
BIN=${RN_BIN:-build-release}
N=${1:-2000000}
RATE=${2:-2000000}
VEH=${3:-3}
W=$(mktemp -d /tmp/runnel-bench.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$W"' EXIT
mkdir -p "$W/data" "$W/agent"
TABLE=bench.default.sim

# "records acked next_offset pauses" of the one stream in status.json (empty if not written yet)
status() {
	[ -f "$W/agent/status.json" ] || return 0
	tr ',' '\n' <"$W/agent/status.json" | awk -F: '
		/"records"/ { r = $2 } /"acked"/ { a = $2 } /"next_offset"/ { o = $2 }
		/"pauses"/ { p = $2 } END { if (r != "") print r, a, o, p }'
}

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
sources = ( { type = "sim"; name = "sim"; table = "$TABLE";
              vehicles = $VEH; rate = $RATE; count = $N; seed = 1; } );
CONF

t0=$(now)
"$BIN/agent/runnel-agent" -c "$W/agent.conf" 2>"$W/agent.log" &
apid=$!
# Samples "time records" until every record is in; the rate is taken between the first
# sample with records and the first with all of them (agent start-up excluded).
t_first="" r_first=0 t_in="" acpu_in=""
while :; do
	kill -0 $apid 2>/dev/null || { echo "agent died"; tail "$W/agent.log" || true; exit 1; }
	# SIGUSR1 writes the status at once; only once the agent is up (its default is to die)
	[ -f "$W/agent/status.json" ] && kill -USR1 $apid 2>/dev/null || true
	sleep 0.05
	read -r rec acked noff pauses < <(status) || true
	[ -n "${rec:-}" ] || continue
	t=$(now)
	if [ -z "$t_first" ] && [ "$rec" -gt 0 ]; then t_first=$t; r_first=$rec; fi
	if [ -z "$t_in" ] && [ "$rec" -ge "$N" ]; then
		t_in=$t
		acpu_in=$(cpu_s $apid)
	fi
	if [ -n "$t_in" ] && [ "$acked" -eq $((noff - 1)) ]; then break; fi
done
t_ack=$(now)
acpu=$(cpu_s $apid); arss=$(hwm_mb $apid); scpu=$(cpu_s "$spid")
bufmb=$(du -sm "$W/agent" | cut -f1)
kill -TERM $apid "$spid"; wait $apid "$spid" 2>/dev/null || true

awk -v n="$N" -v rate="$RATE" -v veh="$VEH" -v t0="$t0" -v tf="$t_first" -v rf="$r_first" \
    -v ti="$t_in" -v ta="$t_ack" -v aci="$acpu_in" -v ac="$acpu" -v ar="$arss" -v sc="$scpu" \
    -v bm="$bufmb" -v pz="${pauses:-0}" 'BEGIN {
	m = n / 1e6;
	printf "runnel bench: sim source -> agent buffer (sync = normal) -> server\n";
	printf "  %d records, %d vehicles, rate set to %d/s\n", n, veh, rate;
	printf "  into the buffer:   %8.2f s  %10.0f records/s (steady, from status.json)\n",
		ti - tf, (n - rf) / (ti - tf);
	printf "                     %8.2f s  %10.0f records/s (from agent start)\n",
		ti - t0, n / (ti - t0);
	printf "  acked by server:   %8.2f s  %10.0f records/s (from agent start)\n",
		ta - t0, n / (ta - t0);
	printf "  agent  CPU:        %8.2f s per million records (until in the buffer; the\n", aci / m;
	printf "                                uplink sends concurrently and is included)\n";
	printf "  agent  CPU:        %8.2f s per million records (until acked)   peak RSS %6.1f MB\n",
		ac / m, ar;
	printf "  server CPU:        %8.2f s per million records (until acked)\n", sc / m;
	printf "  agent data dir:    %8d MB at the end; the source paused %d times (buffer full)\n",
		bm, pz;
}'
