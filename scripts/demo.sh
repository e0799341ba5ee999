#!/usr/bin/env bash
# The demo: runnel-server and runnel-agent on loopback with an embedded default config. Sample
# vehicle telemetry is appended to a log file, the agent ships it, the server writes a Delta
# table, and a summary is printed from DuckDB (an independent reader). Everything stops
# cleanly at the end; the table stays in demo-run/ for you to query.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${RN_BIN:-build-release}
RUN=$PWD/demo-run
LINES=${DEMO_LINES:-20000}
TABLE=demo.fleet.telemetry

rm -rf "$RUN"
mkdir -p "$RUN/data" "$RUN/agent" "$RUN/logs"

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
# runnel-agent demo config: one file source tailing the sample log.
agent: { device_id = "demo-truck-01"; data_dir = "$RUN/agent"; };
buffer: { sync = "normal"; };
uplink: { url = "http://127.0.0.1:$port"; };
chunk: { linger_ms = 100; };
sources = (
  { type = "file"; name = "vehicle"; table = "$TABLE";
    paths = [ "$RUN/logs/vehicle.log" ]; read_from = "beginning"; }
);
CONF
"$BIN/agent/runnel-agent" -c "$RUN/agent.conf" 2>"$RUN/agent.log" &
pids+=($!)
echo "runnel-agent: tailing $RUN/logs/vehicle.log"

# Sample telemetry: a few vehicles reporting position, speed and engine signals as JSON lines.
awk -v n="$LINES" 'BEGIN {
	srand(42); t = 1790000000;
	for (i = 0; i < n; i++) {
		v = i % 4;
		printf "{\"vehicle\":\"truck-%02d\",\"ts\":%d,\"lat\":%.5f,\"lon\":%.5f,\"speed_kmh\":%.1f,\"rpm\":%d,\"coolant_c\":%.1f}\n",
			v, t + int(i / 4), 52.52 + v * 0.01 + i * 0.00001, 13.40 + i * 0.00001, 40 + rand() * 50,
			900 + int(rand() * 2500), 80 + rand() * 15;
	}
}' >"$RUN/logs/vehicle.log"
echo "wrote $LINES telemetry lines"

node scripts/demo_summary.mjs "$RUN/data" "$TABLE" "$LINES"

kill -TERM "${pids[1]}" && wait "${pids[1]}" || true
kill -TERM "${pids[0]}" && wait "${pids[0]}" || true
pids=()
echo "stopped agent and server cleanly"
