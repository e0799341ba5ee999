#!/usr/bin/env bash
# Benchmark: file → runnel-agent's disk buffer (no server: the uplink points nowhere), the
# path the "lines/s per core" figure is about. N lines of 200 bytes are written before the
# agent starts; it reads them from the beginning. Prints lines/s (wall), lines/s per core
# (lines / agent CPU-seconds) and peak RSS, for sync = normal and sync = full in the same run.
# Baseline in the same run: `wc -l` over the file (the cost of just reading the bytes).
# Usage: RN_BIN=build-release bench/file_to_buffer.sh [lines]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
BIN=${RN_BIN:-build-release}
N=${1:-2000000}
W=$(mktemp -d /tmp/runnel-bench-fb.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$W"' EXIT
mkdir -p "$W/logs"
bench_lines "$N" "$W/logs/bench.log"

t0=$(now)
wc -l "$W/logs/bench.log" >/dev/null
t_wc=$(since "$t0")
printf 'lines                  %d x 200 B\n' "$N"
printf 'baseline wc -l         %.2f s  %10.0f lines/s\n' "$t_wc" "$(echo "$N / $t_wc" | bc -l)"

for sync in normal full; do
	d="$W/agent-$sync"
	mkdir -p "$d"
	cat >"$W/agent-$sync.conf" <<CONF
agent: { device_id = "bench"; data_dir = "$d"; };
buffer: { sync = "$sync"; max_bytes = "8G"; };
uplink: { url = "http://127.0.0.1:9"; backoff_min_ms = 60000; backoff_max_ms = 60000; };
sources = ( { type = "file"; name = "bench"; table = "bench.default.lines";
              paths = [ "$W/logs/bench.log" ]; read_from = "beginning"; } );
CONF
	t0=$(now)
	"$BIN/agent/runnel-agent" -c "$W/agent-$sync.conf" 2>"$W/agent-$sync.log" &
	apid=$!
	while [ "$(status_sum "$d/status.json" records)" -lt "$N" ]; do
		kill -0 $apid 2>/dev/null || { echo "agent died"; tail "$W/agent-$sync.log"; exit 1; }
		kill -USR1 $apid
		sleep 0.02
	done
	t=$(since "$t0")
	cpu=$(cpu_s $apid); rss=$(hwm_mb $apid)
	kill -TERM $apid; wait $apid || true
	printf 'file → buffer (%-6s) %.2f s  %10.0f lines/s  %10.0f lines/s per agent core  (CPU %.2f s, peak RSS %s MB)\n' \
		"$sync" "$t" "$(echo "$N / $t" | bc -l)" "$(echo "$N / $cpu" | bc -l)" "$cpu" "$rss"
done
