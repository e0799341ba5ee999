#!/usr/bin/env bash
# Benchmark: MQTT → runnel-agent's disk buffer, QoS 1, against the real mosquitto broker.
# N messages of 200 bytes are queued by the broker for the agent's persistent session while
# the agent is stopped; then the agent starts and drains them (PUBACK only after each batch
# is committed). Baseline in the same run: mosquitto_sub (the broker's own C client) draining
# the same N messages from its own persistent session, i.e. what the broker itself delivers
# to one QoS 1 subscriber on this machine. Prints messages/s for both, the ratio, the agent's
# CPU-seconds per million messages and its peak RSS.
# Usage: RN_BIN=build-release bench/mqtt_to_buffer.sh [messages] [sync]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
BIN=${RN_BIN:-build-release}
N=${1:-500000}
SYNC=${2:-normal}
W=$(mktemp -d /tmp/runnel-bench-mqtt.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$W"' EXIT
mkdir -p "$W/agent"

port=$(free_port)
cat >"$W/mosquitto.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
max_queued_messages 0
max_inflight_messages 1000
CONF
/usr/sbin/mosquitto -c "$W/mosquitto.conf" 2>"$W/broker.log" &
bpid=$!
for _ in $(seq 1 50); do mosquitto_pub -p "$port" -t probe -m up 2>/dev/null && break; sleep 0.1; done

cat >"$W/agent.conf" <<CONF
agent: { device_id = "bench"; data_dir = "$W/agent"; };
buffer: { sync = "$SYNC"; };
uplink: { url = "http://127.0.0.1:9"; backoff_min_ms = 5000; };
sources = ( { type = "mqtt"; name = "bench"; table = "bench.default.mqtt";
              port = $port; topics = [ "bench/#" ]; qos = 1; client_id = "runnel-bench"; } );
CONF

# Make both persistent sessions (agent and baseline subscriber), then stop both.
"$BIN/agent/runnel-agent" -c "$W/agent.conf" 2>"$W/agent0.log" &
apid=$!
for _ in $(seq 1 100); do grep -q "connected to" "$W/agent0.log" && break; sleep 0.05; done
sleep 0.3
kill -TERM $apid; wait $apid || true
mosquitto_sub -p "$port" -q 1 -c -i bench-baseline -t 'bench/#' -C 1 -W 1 >/dev/null 2>&1 || true

payload=$(head -c 200 /dev/zero | tr '\0' 'm')
t0=$(now)
mosquitto_pub -p "$port" -q 1 -t bench/load -m "$payload" --repeat "$N"
t_pub=$(since "$t0")

t0=$(now)
got=$(mosquitto_sub -p "$port" -q 1 -c -i bench-baseline -t 'bench/#' -C "$N" -W 300 | wc -l)
t_base=$(since "$t0")
[ "$got" -eq "$N" ] || { echo "baseline received $got of $N"; exit 1; }

t0=$(now)
"$BIN/agent/runnel-agent" -c "$W/agent.conf" 2>"$W/agent.log" &
apid=$!
while [ "$(status_sum "$W/agent/status.json" records)" -lt "$N" ]; do
	kill -0 $apid 2>/dev/null || { echo "agent died"; tail "$W/agent.log"; exit 1; }
	kill -USR1 $apid
	sleep 0.02
done
t_agent=$(since "$t0")
acpu=$(cpu_s $apid); arss=$(hwm_mb $apid)

printf 'messages                   %d x 200 B, QoS 1, buffer sync = %s\n' "$N" "$SYNC"
printf 'publish (mosquitto_pub)    %.2f s  %8.0f msg/s  (load only, not compared)\n' "$t_pub" "$(echo "$N / $t_pub" | bc -l)"
printf 'broker → mosquitto_sub     %.2f s  %8.0f msg/s  (baseline)\n' "$t_base" "$(echo "$N / $t_base" | bc -l)"
printf 'broker → runnel buffer     %.2f s  %8.0f msg/s  (%.2fx baseline)\n' "$t_agent" \
	"$(echo "$N / $t_agent" | bc -l)" "$(echo "$t_base / $t_agent" | bc -l)"
printf 'agent CPU                  %.2f s per million messages, peak RSS %s MB\n' \
	"$(echo "$acpu * 1000000 / $N" | bc -l)" "$arss"
