#!/usr/bin/env bash
# Benchmark: the agent's memory while a large backlog drains. Phase 1 (offline): an agent
# whose server does not exist reads SIZE of 1000-byte lines (base64 of random bytes, so zstd
# cannot shrink the buffer much) into its buffer. Phase 2: a fresh agent process on the same
# data_dir (its peak RSS then covers only the drain) sends the backlog to a running server.
# Prints the buffer size, drain time and MB/s, the draining agent's CPU-seconds per GB of
# buffer (and the share of it in the kernel), and its peak RSS (VmHWM) during the drain, next
# to the server's. Target (issue 5): agent RSS <= 16 MB while 10 GB drain.
# Needs about 3 x SIZE of free disk (input file, agent buffer, server WAL + table).
# Usage: RN_BIN=build-release bench/backlog_drain.sh [size, e.g. 10G; default 2G]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
BIN=${RN_BIN:-build-release}
SIZE=${1:-2G}
W=$(mktemp -d /tmp/runnel-bench-bl.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$W"' EXIT
mkdir -p "$W/data" "$W/agent" "$W/logs"
TABLE=bench.default.backlog

bytes_of() { numfmt --from=iec "$1"; }
# user and system CPU seconds of PID, "U S" (fields 14 and 15 of /proc/PID/stat)
cpu_us() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f %.2f", $14 / hz, $15 / hz }' "/proc/$1/stat"; }
records() { status_sum "$W/agent/status.json" records -1; }
buffer_bytes() { # the agent's live buffer_bytes (status_json), -1 if it cannot be read
	status_json "$W/agent/status.json" 2>/dev/null |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["buffer_bytes"])' 2>/dev/null || echo -1
}

raw=$(bytes_of "$SIZE")
head -c $((raw * 3 / 4)) /dev/urandom | base64 -w 999 >"$W/logs/in.log"
lines=$(wc -l <"$W/logs/in.log")
in_bytes=$(stat -c %s "$W/logs/in.log")

port=$(free_port)
agent_conf() {
	cat >"$W/agent.conf" <<CONF
agent: { device_id = "bench"; data_dir = "$W/agent"; };
buffer: { sync = "normal"; max_bytes = "1T"; };
uplink: { url = "http://127.0.0.1:$port"; };
sources = ( { type = "file"; name = "backlog"; table = "$TABLE";
              paths = [ "$W/logs/in.log" ]; read_from = "beginning"; backlog_split = 0; } );
CONF
}
agent_conf

# Phase 1: offline, everything into the buffer.
t0=$(now)
"$BIN/agent/runnel-agent" -c "$W/agent.conf" 2>"$W/agent1.log" &
apid=$!
while [ "$(records)" -lt "$lines" ]; do
	kill -0 $apid 2>/dev/null || { echo "agent died"; tail "$W/agent1.log"; exit 1; }
	sleep 0.5
done
t_fill=$(since "$t0")
buffered=$(buffer_bytes)
kill -TERM $apid; wait $apid || true

# Phase 2: server up, a fresh agent drains the backlog.
cat >"$W/server.conf" <<CONF
listen = "127.0.0.1:$port";
data_root = "$W/data";
tables = [ "$TABLE" ];
CONF
start_server "$W/server.conf" "$W/server.log"
spid=$SERVER_PID
t0=$(now)
"$BIN/agent/runnel-agent" -c "$W/agent.conf" 2>"$W/agent2.log" &
apid=$!
max_rss=0 max_anon=0
while :; do
	rss=$(awk '/VmRSS/ { print $2 }' "/proc/$apid/status")
	anon=$(awk '/RssAnon/ { print $2 }' "/proc/$apid/status")
	[ "$rss" -gt "$max_rss" ] && max_rss=$rss
	[ "$anon" -gt "$max_anon" ] && max_anon=$anon
	[ "$(buffer_bytes)" = 0 ] && break
	kill -0 $apid 2>/dev/null || { echo "agent died"; tail "$W/agent2.log"; exit 1; }
	sleep 0.5
done
t_drain=$(since "$t0")
arss=$(hwm_mb $apid); srss=$(hwm_mb "$spid")
read -r autime astime <<<"$(cpu_us $apid)"
kill -TERM $apid "$spid"; wait $apid "$spid" 2>/dev/null || true

awk -v l="$lines" -v ib="$in_bytes" -v bb="$buffered" -v tf="$t_fill" -v td="$t_drain" \
    -v ar="$arss" -v mr="$max_rss" -v ma="$max_anon" -v sr="$srss" \
    -v au="$autime" -v as="$astime" 'BEGIN {
	printf "runnel bench: backlog drain, %d lines of 1000 bytes (%.2f GB of input)\n", l, ib / 1e9;
	printf "  buffered offline:  %8.1f s   %.2f GB in the agent buffer\n", tf, bb / 1e9;
	printf "  drained:           %8.1f s   %7.1f MB/s of buffer\n", td, bb / 1e6 / td;
	printf "  agent CPU (drain): %8.2f s per GB of buffer (%.0f %% in the kernel) = %.0f MB/s per agent core\n",
		(au + as) / (bb / 1e9), 100 * as / (au + as + 1e-9), bb / 1e6 / (au + as + 1e-9);
	printf "  agent peak RSS during the drain: %.1f MB (VmHWM; sampled VmRSS max %.1f MB)   target <= 16 MB\n", ar, mr / 1024;
	printf "    of which private (RssAnon, sampled max): %.1f MB; the rest are shared library pages\n", ma / 1024;
	printf "  server peak RSS:                 %.1f MB\n", sr;
}'
