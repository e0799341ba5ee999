#!/usr/bin/env bash
# Benchmark: file → runnel-agent → runnel-server through the test's TCP fault proxy
# (tests/integration/lib/proxy.mjs), once over a clean proxy link and once over a bad one
# (default 20 % loss, 300 ms RTT), in one invocation. Prints records/s and MB/s until every
# record is acknowledged for both, and the ratio lossy / clean.
# The proxy models TCP loss as TCP sees it: a "lost" piece (one socket read, ≤ 16 KiB)
# arrives one retransmission timeout late, max(200 ms, 2 × RTT), with everything behind it
# waiting (head-of-line blocking); see the proxy's header comment. Needs node (18+).
# Usage: RN_BIN=build-release bench/lossy_link.sh [lines] [loss %] [RTT ms]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${RN_BIN:-build-release}
N=${1:-1000000}
LOSS=${2:-20}
RTT=${3:-300}
W=$(mktemp -d /tmp/runnel-lossy.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$W"' EXIT
mkdir -p "$W/logs"
TABLE=bench.default.lossy

# 200-byte lines (199 characters + newline), each unique (as in file_to_server.sh).
bench_lines "$N" "$W/logs/bench.log"
bytes=$(stat -c %s "$W/logs/bench.log")

# run MODE DELAY_MS LOSS_PCT: prints the seconds until every record is acknowledged
run() {
	local mode=$1 delay=$2 loss=$3 d="$W/$1"
	mkdir -p "$d/data" "$d/agent"
	cat >"$d/server.conf" <<CONF
listen = "127.0.0.1:0";
data_root = "$d/data";
flush_interval_ms = 1000;
tables = [ "$TABLE" ];
CONF
	start_server "$d/server.conf" "$d/server.log"
	local spid=$SERVER_PID port=$SERVER_PORT pport=""
	node --input-type=module -e "
		import { Proxy } from '$ROOT/tests/integration/lib/proxy.mjs';
		const p = new Proxy({ target: Number(process.argv[1]), host: '127.0.0.1', seed: 1 });
		await p.start();
		p.set({ delayMs: Number(process.argv[2]), lossPct: Number(process.argv[3]) });
		console.log(p.port);
		process.on('SIGTERM', () => { console.error(JSON.stringify(p.stats())); process.exit(0); });
	" "$port" "$delay" "$loss" >"$d/proxy.port" 2>"$d/proxy.log" &
	local ppid=$!
	for _ in $(seq 1 100); do
		pport=$(cat "$d/proxy.port" 2>/dev/null) && [ -n "$pport" ] && break
		sleep 0.05
	done
	cat >"$d/agent.conf" <<CONF
agent: { device_id = "bench"; data_dir = "$d/agent"; };
buffer: { sync = "normal"; };
uplink: { url = "http://127.0.0.1:$pport"; };
sources = ( { type = "file"; name = "bench"; table = "$TABLE";
              paths = [ "$W/logs/bench.log" ]; read_from = "beginning"; } );
CONF
	local t0
	t0=$(now)
	"$BIN/agent/runnel-agent" -c "$d/agent.conf" 2>"$d/agent.log" &
	local apid=$!
	while :; do
		all_acked "$d/agent/status.json" "$N" && break
		kill -0 $apid 2>/dev/null || { echo "agent died" >&2; tail "$d/agent.log" >&2; exit 1; }
		sleep 0.05
	done
	since "$t0"
	kill -TERM $apid "$spid" $ppid 2>/dev/null || true
	wait $apid "$spid" $ppid 2>/dev/null || true
	# bytes the proxy carried agent -> server (compressed chunks), and pieces it "lost"
	python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s["bytesUp"], s["lostUp"] + s["lostDown"])' \
		"$d/proxy.log" >"$d/wire" 2>/dev/null || echo "0 0" >"$d/wire"
}

half=$((RTT / 2))
t_clean=$(run clean 0 0)
t_lossy=$(run lossy "$half" "$LOSS")
read -r wire_clean _ <"$W/clean/wire"
read -r wire_lossy lost <"$W/lossy/wire"
awk -v n="$N" -v b="$bytes" -v tc="$t_clean" -v tl="$t_lossy" -v loss="$LOSS" -v rtt="$RTT" \
    -v wc="$wire_clean" -v wl="$wire_lossy" -v lost="$lost" 'BEGIN {
	printf "runnel bench: file -> agent -> proxy -> server, %d lines of 200 bytes (%.0f MB), until acknowledged\n", n, b / 1e6;
	printf "  clean proxy link:            %8.2f s  %10.0f records/s  %7.1f MB/s\n", tc, n / tc, b / 1e6 / tc;
	printf "  %2d%% loss, %3d ms RTT:        %8.2f s  %10.0f records/s  %7.1f MB/s\n", loss, rtt, tl, n / tl, b / 1e6 / tl;
	printf "  on the wire (agent -> server): clean %.1f MB, lossy %.1f MB; pieces delayed as lost: %d\n", wc / 1e6, wl / 1e6, lost;
	printf "  ratio lossy / clean:         %8.3f\n", tc / tl;
}'
