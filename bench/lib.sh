# shellcheck shell=bash
# Helpers shared by the bench/*.sh scripts: the standard input lines (bench_lines), timing
# (now, since), a process's CPU time and peak RSS from /proc (cpu_s, hwm_mb), a free local port (free_port), starting runnel-server
# and learning its port (start_server), reading the agent's status from its socket or
# status.json (status_json, status_poll, status_sum, all_acked, wait_acked), a Delta table's live row count
# (live_rows, wait_rows: bench/delta_rows.py), building the load client (zb_load_bin) and
# starting a throw-away Ceph RGW with a bucket (rgw_start).
# Only defines functions; a script sources it with `. "$(dirname "$0")/lib.sh"`
# before its cd to the repository root. Safe under `set -euo pipefail`: a helper fails only
# where its contract says so.

# this folder, absolute (for delta_rows.py and zb_load.c whatever the caller's cwd)
RN_BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# now: prints the current time in seconds since the epoch, with nanoseconds.
now() { date +%s.%N; }

# since T0: prints the seconds elapsed since T0 (a `now` value), computed by bc.
since() { echo "$(now) - $1" | bc; }

# cpu_s PID: prints PID's user + system CPU time in seconds (%.3f), from /proc/PID/stat.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.3f", ($14 + $15) / hz }' "/proc/$1/stat"; }

# hwm_mb PID: prints PID's peak resident set size (VmHWM) in MB (%.1f), from /proc/PID/status.
hwm_mb() { awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

# bench_lines N FILE: writes N unique 200-byte lines (an 18-digit counter, a space, 180 x's,
# a newline) to FILE: the file sources' standard input.
bench_lines() {
	awk -v n="$1" 'BEGIN { pad = sprintf("%180s", ""); gsub(/ /, "x", pad);
		for (i = 0; i < n; i++) printf "%018d %s\n", i, pad }' >"$2"
}

# free_port: prints a TCP port on 127.0.0.1 that was free when asked (the OS's pick).
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_server CONF LOG: starts "$BIN/server/runnel-server -c CONF" in the background (stderr
# to LOG) and waits up to ~10 s for its "listening on 127.0.0.1:PORT" line; sets SERVER_PID
# and SERVER_PORT. If the server exits or does not come up, prints LOG's tail to stderr and
# exits 1. Call it directly, not in $(...), or the two variables are lost.
start_server() {
	local _
	"$BIN/server/runnel-server" -c "$1" 2>"$2" &
	SERVER_PID=$!
	SERVER_PORT=
	for _ in $(seq 1 100); do
		SERVER_PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$2" 2>/dev/null | head -n 1) || true
		[ -n "$SERVER_PORT" ] && return 0
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "runnel-server did not start (config $1); the end of $2:" >&2
	tail -n 20 "$2" >&2 || true
	exit 1
}

# status_json JSON: prints the agent's live status: asked on the status socket (agent.sock
# beside JSON) while the agent answers there, else the status.json file at JSON (which a
# running agent rewrites only on change and at most every 5 s). Fails if neither is readable.
status_json() {
	python3 - "$1" <<'PY'
import os, socket, sys
sock = os.path.join(os.path.dirname(sys.argv[1]), "agent.sock")
try:
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(sock)
    buf = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        buf += d
    sys.stdout.write(buf.decode())
except OSError:
    sys.stdout.write(open(sys.argv[1]).read())
PY
}

# status_poll SOCK INTERVAL_MS PID: one python process (not one per sample, whose start-up
# would cost more CPU than the agent being measured) asks the agent's status socket SOCK
# every INTERVAL_MS and prints each answer as one line of JSON; a failed ask (not listening
# yet, an answer cut short) prints nothing. Ends, status 0, once PID has exited (a zombie
# counts as exited) or its reader has closed the pipe: a reader takes lines until it has
# seen what it waits for, and end of input means PID is gone.
status_poll() {
	python3 - "$1" "$2" "$3" <<'PY'
import json, os, socket, sys, time
sock, every, pid = sys.argv[1], int(sys.argv[2]) / 1000.0, sys.argv[3]
def gone():
    try:
        return open("/proc/%s/stat" % pid).read().rsplit(")", 1)[1].split()[0] in "ZX"
    except OSError:
        return True
try:
    while not gone():
        try:
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(5)
            s.connect(sock)
            buf = b""
            while True:
                d = s.recv(65536)
                if not d:
                    break
                buf += d
            s.close()
            line = json.dumps(json.loads(buf), separators=(",", ":"))
        except (OSError, ValueError):
            line = None
        if line is not None:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        time.sleep(every)
except BrokenPipeError:
    pass
os._exit(0)  # no flush at exit: the reader may be gone
PY
}

# status_sum JSON FIELD [DEFAULT]: prints FIELD summed over the streams of the agent's status
# (status_json JSON), or DEFAULT (0) if it cannot be read yet.
status_sum() {
	status_json "$1" 2>/dev/null | python3 -c 'import json,sys; print(sum(x[sys.argv[1]] for x in json.load(sys.stdin)["streams"]))' \
		"$2" 2>/dev/null || echo "${3:-0}"
}

# all_acked JSON N: succeeds if the agent's status (status_json JSON) can be read and shows at
# least N records over its streams and every stream's chunks acknowledged (acked =
# next_offset - 1).
all_acked() {
	local js
	js=$(status_json "$1" 2>/dev/null) || return 1
	python3 -c '
import json, sys
st = json.loads(sys.argv[1])["streams"]
ok = sum(x["records"] for x in st) >= int(sys.argv[2]) and all(x["acked"] == x["next_offset"] - 1 for x in st)
sys.exit(0 if ok else 1)' "$js" "$2"
}

# wait_acked SOCK N PID: status_poll asks the agent's status socket SOCK every 20 ms
# (not status.json, which the agent rewrites at most every 5 s, and not a new process per
# poll, whose start-up costs more CPU than the agent being measured) until the status shows
# at least N records and every stream's chunks acknowledged (acked = next_offset - 1).
# Returns when that holds; fails (1) if PID exits first.
wait_acked() {
	status_poll "$1" 20 "$3" | python3 -c '
import json, sys
n = int(sys.argv[1])
for line in sys.stdin:  # ends when the agent (PID) is gone
    st = json.loads(line)["streams"]
    if sum(x["records"] for x in st) >= n and all(x["acked"] == x["next_offset"] - 1 for x in st):
        sys.exit(0)
sys.exit(1)' "$2"
}

# live_rows TABLE_DIR: prints the table's live row count (bench/delta_rows.py: the add
# actions no remove dropped, so compaction does not count a row twice). Fails if the log
# cannot be replayed.
live_rows() { python3 "$RN_BENCH_DIR/delta_rows.py" "$1"; }

# wait_rows TABLE_DIR N [TIMEOUT_S]: one python process replays the table's log every 50 ms
# until it holds at least N live rows; fails (1) after TIMEOUT_S (default 600) seconds.
wait_rows() {
	python3 - "$RN_BENCH_DIR" "$1" "$2" "${3:-600}" <<'PY'
import sys, time
sys.path.insert(0, sys.argv[1])
from delta_rows import live_rows
end = time.monotonic() + float(sys.argv[4])
while time.monotonic() < end:
    try:
        if live_rows(sys.argv[2]) >= int(sys.argv[3]):
            sys.exit(0)
    except (OSError, ValueError, KeyError):
        pass
    time.sleep(0.05)
sys.exit(1)
PY
}

# zb_load_bin BIN: prints the path of the load client bench/zb_load: BIN/bench/zb_load as
# CMake built it, or else built there from bench/zb_load.c with cc (again if the source is
# newer). Fails if it cannot be built.
zb_load_bin() {
	local load="$1/bench/zb_load"
	if [ ! -x "$load" ] || [ "$RN_BENCH_DIR/zb_load.c" -nt "$load" ]; then
		mkdir -p "$1/bench"
		cc -O2 -Wall -o "$load" "$RN_BENCH_DIR/zb_load.c" -lnghttp2 -lm >&2 || return 1
	fi
	echo "$load"
}

# rgw_start DIR BUCKET: starts a throw-away Ceph RGW in DIR (tests/s3/rgw.sh; it goes with
# this script's process even when that is killed), exports AWS_ACCESS_KEY_ID,
# AWS_SECRET_ACCESS_KEY and AWS_REGION for it, sets ENDPOINT, and makes BUCKET. The caller's
# EXIT trap stops it (tests/s3/rgw.sh stop DIR). Run from the repository root.
rgw_start() {
	RGW_WATCH_PID=$$ tests/s3/rgw.sh start "$1" >/dev/null
	# shellcheck disable=SC2034 # ENDPOINT is the caller's
	ENDPOINT=$(sed -n 's/^endpoint=//p' "$1/env")
	AWS_ACCESS_KEY_ID=$(sed -n 's/^access_key=//p' "$1/env")
	AWS_SECRET_ACCESS_KEY=$(sed -n 's/^secret_key=//p' "$1/env")
	AWS_REGION=$(sed -n 's/^region=//p' "$1/env")
	export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION
	python3 tests/s3/s3_client.py "$1/env" mkbucket "$2" >/dev/null
}
