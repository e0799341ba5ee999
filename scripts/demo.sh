#!/usr/bin/env bash
# The demo: runnel-server and runnel-agent on loopback with an embedded default config. The
# agent's sim source generates vehicle telemetry (position, speed, engine signals of four
# vehicles), the agent buffers and ships it, the server writes a Delta table, and a summary is
# printed from DuckDB (an independent reader). Everything stops cleanly at the end; the table
# stays in demo-run/ for you to query.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${RN_BIN:-build-release}
RUN=$PWD/demo-run
LINES=${DEMO_LINES:-20000}
TABLE=demo.fleet.telemetry

rm -rf "$RUN"
mkdir -p "$RUN/data" "$RUN/agent"

cat >"$RUN/server.conf" <<CONF
# runnel-server demo config: h2c on a free loopback port, tables under demo-run/data.
listen = "127.0.0.1:0";
data_root = "$RUN/data";
flush_interval_ms = 500;
tables = [ "$TABLE" ];
CONF

pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT

"$BIN/server/runnel-server" -c "$RUN/server.conf" 2>"$RUN/server.log" &
pids+=($!)
port=""
for _ in $(seq 1 100); do
	port=$(grep -oE 'listening on 127\.0\.0\.1:[0-9]+' "$RUN/server.log" | head -1 | sed 's/.*://') || true
	[ -n "$port" ] && break
	sleep 0.1
done
[ -n "$port" ] || { echo "server did not start:"; cat "$RUN/server.log"; exit 1; }
echo "runnel-server: h2c on 127.0.0.1:$port, data root $RUN/data"

cat >"$RUN/agent.conf" <<CONF
# runnel-agent demo config: one sim source, four vehicles; the event time comes from each
# record's "ts" field, and every record carries the site as a static attribute.
agent: { device_id = "demo-truck-01"; data_dir = "$RUN/agent"; };
buffer: { sync = "normal"; };
uplink: { url = "http://127.0.0.1:$port"; };
chunk: { linger_ms = 100; };
sources = (
  { type = "sim"; name = "vehicle"; table = "$TABLE";
    vehicles = 4; rate = 20000; count = $LINES; seed = 42;
    event_time_field = "ts"; attributes = [ "site=demo-depot" ]; }
);
CONF
"$BIN/agent/runnel-agent" -c "$RUN/agent.conf" 2>"$RUN/agent.log" &
pids+=($!)
echo "runnel-agent: simulating $LINES records from 4 vehicles"

node scripts/demo_summary.mjs "$RUN/data" "$TABLE" "$LINES"

kill -TERM "${pids[1]}" && wait "${pids[1]}" || true
kill -TERM "${pids[0]}" && wait "${pids[0]}" || true
pids=()
echo "stopped agent and server cleanly"
