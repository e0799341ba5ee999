#!/usr/bin/env bash
# Benchmark: NMEA lines through a socat pty pair, both ends set to 921600 8N1, into
# runnel-agent's serial source (line framing, nmea_checksum on) and its disk buffer, with a
# real runnel-server taking the chunks. The baseline is the line rate of a real 921600 8N1
# port: 10 bits per byte, 92,160 B/s. Ptys are not rate limited, so two runs on one agent:
#   unpaced — MB megabytes written as fast as the pty takes them: the most the agent reaches;
#   paced   — SECS seconds written at 92,160 B/s: the agent keeps up with a real port.
# Each run prints bytes/s into the agent (all its lines emitted, from the status socket sampled
# live) and the ratio to the line rate; the paced run also how long after the last
# byte on the line the last record was in (status sampling adds ~30 ms), and when the
# server had acknowledged all of it (so it had been committed to the buffer). Loss check: every line has a number and an
# NMEA checksum, so a lost or damaged byte turns up as a dead letter or a missing record;
# at the end the bytes the agent read (its exit log) are compared with the bytes written.
# Usage: RN_BIN=build-release bench/serial_921600.sh [MB] [SECS]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
BIN=${RN_BIN:-build-release}
MB=${1:-16}
SECS=${2:-5}
PY=/usr/bin/python3 # Debian's, with python3-serial
LINE_RATE=92160
W=$(mktemp -d /tmp/runnel-bench.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$W"' EXIT
mkdir -p "$W/data" "$W/agent"
TABLE=bench.default.serial

# "records dead_letters acked next_offset" of the one stream (the live status)
status() {
	local js
	js=$(status_json "$W/agent/status.json" 2>/dev/null) || { echo "0 0 0 1"; return; }
	"$PY" -c 'import json,sys; s=json.loads(sys.argv[1])["streams"][0]
print(s["records"], s.get("dead_letters", 0), s["acked"], s["next_offset"])' "$js"
}

socat -d -d pty,raw,echo=0,link="$W/dev0" pty,raw,echo=0,link="$W/dev1" 2>"$W/socat.log" &
for _ in $(seq 1 100); do grep -q 'starting data transfer loop' "$W/socat.log" && break; sleep 0.05; done

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
sources = ( { type = "serial"; name = "gps"; table = "$TABLE"; device = "$W/dev0";
              baud = 921600; framing = "line"; nmea_checksum = true; } );
CONF
"$BIN/agent/runnel-agent" -c "$W/agent.conf" 2>"$W/agent.log" &
apid=$!
for _ in $(seq 1 100); do grep -q 'dev0 open' "$W/agent.log" && break; sleep 0.05; done

# The writer: 100-byte NMEA lines numbered from `first`, `mb` MB of them, at `rate` B/s (0 =
# as fast as the pty takes them). Prints "lines bytes t_start"; then keeps the port open
# until killed (closing it would hang up the pair and flush what the agent has not read).
cat >"$W/writer.py" <<'PY'
import functools, serial, sys, time
first, nbytes, rate, out = int(sys.argv[2]), int(float(sys.argv[3])), float(sys.argv[4]), sys.argv[5]
pad = b"x" * 78  # lines of exactly 100 bytes
padx = functools.reduce(lambda a, b: a ^ b, pad, 0)
lines = []
n = max(1, nbytes // 100)
for i in range(first, first + n):
    head = b"RNBEN,%09d," % i
    x = functools.reduce(lambda a, b: a ^ b, head, padx)
    lines.append(b"$" + head + pad + b"*%02X\r\n" % x)
data = b"".join(lines)
s = serial.Serial(sys.argv[1], 921600)  # 8N1
t0 = time.time()
if rate <= 0:
    for off in range(0, len(data), 65536):
        s.write(data[off:off + 65536])
else:
    sent = 0
    while sent < len(data):
        due = min(len(data), int((time.time() - t0) * rate) + 1)
        if due > sent:
            sent += s.write(data[sent:due])
        time.sleep(0.005)
s.flush()
with open(out, "w") as f:
    f.write("%d %d %.6f\n" % (n, len(data), t0))
time.sleep(3600)
PY

total_lines=0
total_bytes=0
results=()
# run NAME BYTES RATE: writes, waits until the agent emitted every line, records figures
run() {
	local name=$1 nbytes=$2 rate=$3 r0 d0 r1 d1 n b t0 t1 t2 acked next
	read -r r0 d0 _ _ < <(status)
	rm -f "$W/written"
	"$PY" "$W/writer.py" "$W/dev1" "$total_lines" "$nbytes" "$rate" "$W/written" &
	wpid=$!
	while [ ! -s "$W/written" ]; do sleep 0.01; done
	read -r n b t0 <"$W/written"
	local deadline=$(( $(date +%s) + 60 + SECS ))
	while :; do
		read -r r1 d1 _ _ < <(status)
		[ "$r1" -ge $((r0 + n)) ] && break
		[ "$(date +%s)" -gt "$deadline" ] && break # lost bytes: stop waiting, report
		kill -0 "$apid" 2>/dev/null || { echo "agent died"; tail "$W/agent.log"; exit 1; }
	done
	t1=$(now)
	# and committed to the buffer and acknowledged by the server
	while :; do
		read -r _ _ acked next < <(status)
		[ "$acked" -eq $((next - 1)) ] && break
	done
	t2=$(now)
	kill "$wpid"; wait "$wpid" 2>/dev/null || true
	total_lines=$((total_lines + n))
	total_bytes=$((total_bytes + b))
	results+=("$name $n $b $t0 $t1 $t2 $((r1 - r0)) $((d1 - d0))")
}

run unpaced "$((MB * 1000000))" 0
run paced "$((SECS * LINE_RATE))" "$LINE_RATE"

# the agent's own count of bytes read, from its exit log
acpu=$(cpu_s $apid); arss=$(hwm_mb $apid)
kill -TERM $apid; wait $apid 2>/dev/null || true
read_bytes=$(grep -oE '[0-9]+ bytes read' "$W/agent.log" | tail -1 | awk '{ print $1 }')
kill -TERM "$spid"; wait "$spid" 2>/dev/null || true

echo "runnel bench: socat pty pair at 921600 8N1 -> serial source (line, nmea) -> agent buffer"
printf "  line rate of 921600 8N1:  %10d B/s (10 bits per byte)\n" "$LINE_RATE"
for r in "${results[@]}"; do
	read -r name n b t0 t1 t2 recs dead <<<"$r"
	awk -v name="$name" -v n="$n" -v b="$b" -v t0="$t0" -v t1="$t1" -v t2="$t2" -v recs="$recs" \
	    -v dead="$dead" -v lr="$LINE_RATE" 'BEGIN {
		t = t1 - t0; good = recs - dead;
		printf "  %-8s %9d bytes %7d lines %7.2f s %10.0f B/s %7.2fx line rate  records %d, dead %d, lines lost %d",
			name, b, n, t, b / t, b / t / lr, recs, dead, n - good;
		# paced: how far the last record trailed the last byte on a real line
		if (name == "paced")
			printf ", last line in %.0f ms after its last byte", (t - b / lr) * 1000;
		printf "\n           acked by the server after %.2f s (%.0f B/s)\n", t2 - t0, b / (t2 - t0);
	}'
done
awk -v w="$total_bytes" -v r="${read_bytes:-0}" -v c="$acpu" -v rss="$arss" 'BEGIN {
	printf "  bytes written %d, read by the agent %d, lost %d\n", w, r, w - r;
	printf "  agent CPU %.2f s per MB, peak RSS %.1f MB\n", c / (w / 1e6), rss;
}'
