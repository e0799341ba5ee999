#!/usr/bin/env bash
# Benchmark: the agent's memory while a large backlog drains. Phase 1 (offline): an agent
# whose server does not exist reads SIZE of 1000-byte lines (base64 of random bytes, so zstd
# cannot shrink the buffer much) into its buffer. Phase 2: a fresh agent process on the same
# data_dir (its peak RSS then covers only the drain) sends the backlog to a running server.
# Prints the buffer size, drain time and MB/s, the draining agent's CPU-seconds per GB of
# buffer (and the share of it in the kernel), and its peak RSS (VmHWM) during the drain, next
# to the server's. Target (issue 5): agent RSS <= 16 MB while 10 GB drain.
# Where the drain waits (issue 13): the CPU-seconds of each thread of the server and the agent
# during the drain, the server's WAL sync time (its /metrics, when the build has them), and a
# disk baseline measured in the same invocation: dd with conv=fdatasync of as many bytes as
# the server wrote during the drain (/proc/PID/io wchar), in 1 MiB blocks, next to the result.
# Where those bytes went, per GB of buffer drained: the WAL (its wal_written_bytes_total),
# the Parquet files the tables' Delta logs added by flushes and by compaction rewrites, the
# logs themselves, and the rest (the /proc write_bytes that reached the block layer, too).
# --tmpfs puts every data directory on /dev/shm, so disk-bound and CPU-bound can be told apart.
# Needs about 3 x SIZE of free disk (input file, agent buffer, server WAL + table), or of
# /dev/shm with --tmpfs.
# Usage: RN_BIN=build-release bench/backlog_drain.sh [--tmpfs] [size, e.g. 10G; default 2G]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
BIN=${RN_BIN:-build-release}
ROOT=/tmp
if [ "${1:-}" = --tmpfs ]; then
	ROOT=/dev/shm
	shift
fi
SIZE=${1:-2G}
W=$(mktemp -d "$ROOT/runnel-bench-bl.XXXXXX")
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$W"' EXIT
mkdir -p "$W/data" "$W/agent" "$W/logs"
TABLE=bench.default.backlog

bytes_of() { numfmt --from=iec "$1"; }
# user and system CPU seconds of PID, "U S" (fields 14 and 15 of /proc/PID/stat)
cpu_us() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f %.2f", $14 / hz, $15 / hz }' "/proc/$1/stat"; }
# "name cpu-seconds" per thread of PID (threads of the same name summed), busiest first
thread_cpu() {
	local hz t
	hz=$(getconf CLK_TCK)
	for t in /proc/"$1"/task/*/stat; do
		# comm may hold spaces: the fields after its closing parenthesis
		sed 's/^[0-9]* (\(.*\)) /\1\t/' "$t" 2>/dev/null || true
	done | awk -F'\t' -v hz="$hz" '{ split($2, f, " "); cpu[$1] += (f[12] + f[13]) / hz }
		END { for (n in cpu) printf "%s %.2f\n", n, cpu[n] }' | sort -k2 -rn
}
# bytes PID has written through write(2)-family calls (/proc/PID/io wchar)
wchar() { awk '/^wchar/ { print $2 }' "/proc/$1/io"; }
# bytes PID has caused to be sent to the storage layer (/proc/PID/io write_bytes)
wbytes() { awk '/^write_bytes/ { print $2 }' "/proc/$1/io"; }
# "flush compaction log": the bytes of the Parquet files the Delta logs under DIR added with
# new data (flushes) and without (compaction rewrites), and the bytes of the logs themselves
delta_bytes() {
	python3 - "$1" <<'PY'
import glob, json, os, sys
flush = comp = log = 0
for d in glob.glob(os.path.join(sys.argv[1], "**", "_delta_log"), recursive=True):
    for f in os.listdir(d):
        p = os.path.join(d, f)
        if os.path.isfile(p):
            log += os.path.getsize(p)
        if not f.endswith(".json"):
            continue
        for line in open(p):
            a = json.loads(line).get("add")
            if a:
                if a.get("dataChange", True):
                    flush += a["size"]
                else:
                    comp += a["size"]
print(flush, comp, log)
PY
}
# a counter of the server's /metrics, empty when the port or the metric is not there
metric() { curl -s "http://127.0.0.1:$mport/metrics" 2>/dev/null | awk -v m="runnel_server_$1" '$1 == m { print $2 }'; }
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
mport=$(free_port)
cat >"$W/server.conf" <<CONF
listen = "127.0.0.1:$port";
metrics_listen = "127.0.0.1:$mport";
data_root = "$W/data";
tables = [ "$TABLE" ];
CONF
start_server "$W/server.conf" "$W/server.log"
spid=$SERVER_PID
sw0=$(wchar "$spid")
sb0=$(wbytes "$spid")
walw0=$(metric wal_written_bytes_total)
sync0=$(metric wal_sync_seconds_total)
t0=$(now)
"$BIN/agent/runnel-agent" -c "$W/agent.conf" 2>"$W/agent2.log" &
apid=$!
# One poller for the whole drain (status_poll: not a python start per sample, whose CPU the
# drain would share), every 20 ms on the agent's status socket: when every chunk is acknowledged
# (durable in the server's WAL) and when the buffer is empty (released: the table has the
# rows, a flush later with committed acks). At the first of the two it also takes each
# thread's time on the CPU, waiting for one (run queue) and blocked, from
# /proc/PID/task/TID/schedstat, over the drain (the server's since the agent started).
read -r t_acked t_drain max_rss max_anon < <(status_poll "$W/agent/agent.sock" 20 $apid |
	python3 /dev/fd/3 "$t0" "$apid" "$spid" "$W/sched.txt" 3<<'PY'
import json, os, sys, time
t0, apid, spid, out = float(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
def sched(pid):
    r = {}
    for tid in os.listdir("/proc/%s/task" % pid):
        try:
            comm = open("/proc/%s/task/%s/comm" % (pid, tid)).read().strip()
            run, wait, _ = map(int, open("/proc/%s/task/%s/schedstat" % (pid, tid)).read().split())
            a = r.get(comm, (0, 0))
            r[comm] = (a[0] + run / 1e9, a[1] + wait / 1e9)
        except (OSError, ValueError):
            pass
    return r
def kb(field):
    try:
        for l in open("/proc/%s/status" % apid):
            if l.startswith(field + ":"):
                return int(l.split()[1])
    except OSError:
        pass
    return 0
s0, ts0 = sched(spid), time.time()
t_acked = None
rss = anon = 0
for line in sys.stdin:  # a status every 20 ms (status_poll); it ends when the agent exits
    rss, anon = max(rss, kb("VmRSS")), max(anon, kb("RssAnon"))
    j = json.loads(line)
    now = time.time()
    st = j["streams"]
    if st and t_acked is None and all(x["acked"] >= x["next_offset"] - 1 for x in st):
        t_acked = now - t0
        sa, aa, tsa = sched(spid), sched(apid), now
        with open(out, "w") as f:
            for who, snap, base, el in (("server", sa, s0, tsa - ts0), ("agent", aa, {}, tsa - t0)):
                for k, v in sorted(snap.items(), key=lambda kv: -kv[1][0]):
                    b = base.get(k, (0, 0))
                    run, wait = v[0] - b[0], v[1] - b[1]
                    if run >= 0.01:
                        f.write("    %-6s %-14s %6.2f s on a CPU, %6.2f s runnable, %6.2f s blocked\n"
                                % (who, k, run, wait, max(0.0, el - run - wait)))
    if st and j["buffer_bytes"] == 0:
        print("%.3f %.3f %d %d" % (t_acked if t_acked is not None else now - t0, now - t0, rss, anon))
        sys.exit(0)
print("-1 -1 0 0")  # the agent exited (or is gone) before its buffer was empty
PY
)
if [ -z "${t_drain:-}" ] || [ "$t_drain" = -1 ]; then
	echo "agent died during the drain, or its status could not be read"
	tail "$W/agent2.log"
	exit 1
fi
arss=$(hwm_mb $apid); srss=$(hwm_mb "$spid")
read -r autime astime <<<"$(cpu_us $apid)"
read -r sutime sstime <<<"$(cpu_us "$spid")"
swritten=$(($(wchar "$spid") - sw0))
sblock=$(($(wbytes "$spid") - sb0))
walw1=$(metric wal_written_bytes_total)
tbytes=$(find "$W/data" -path '*/_wal' -prune -o -name '*.parquet' -printf '%s\n' | awk '{ n += $1 } END { print n + 0 }')
sync1=$(metric wal_sync_seconds_total)
syncs=$(metric wal_syncs_total)
swait=$(metric wal_sync_wait_seconds_total)
# windows the server withheld during the drain (stream_inflight_bytes), passes it cut short
holds=$(metric stream_window_holds_total)
yields=$(metric front_yields_total)
athreads=$(thread_cpu $apid | tr '\n' ' ')
sthreads=$(thread_cpu "$spid" | tr '\n' ' ')
# where the written bytes went, at the same moment (the flush at the server's exit is not
# counted in either)
read -r pflush pcomp dlog <<<"$(delta_bytes "$W/data")"
walw=$((${walw1:-0} - ${walw0:-0}))
kill -TERM $apid "$spid"; wait $apid "$spid" 2>/dev/null || true

# The disk baseline: the bytes the server wrote during the drain, written and fdatasync'd
# once on the same filesystem (its best case: one sequential file).
mb=$(((swritten + 1048575) / 1048576))
t1=$(now)
dd if=/dev/zero of="$W/dd.bin" bs=1M count="$mb" conv=fdatasync status=none
t_dd=$(since "$t1")
rm -f "$W/dd.bin"

awk -v l="$lines" -v ib="$in_bytes" -v bb="$buffered" -v tf="$t_fill" -v td="$t_drain" -v ta="$t_acked" \
    -v ar="$arss" -v mr="$max_rss" -v ma="$max_anon" -v sr="$srss" \
    -v au="$autime" -v as="$astime" 'BEGIN {
	printf "runnel bench: backlog drain, %d lines of 1000 bytes (%.2f GB of input)\n", l, ib / 1e9;
	printf "  buffered offline:  %8.1f s   %.2f GB in the agent buffer\n", tf, bb / 1e9;
	printf "  drained (acked):   %8.2f s   %7.1f MB/s of buffer: every chunk durable in the server'"'"'s WAL\n", ta, bb / 1e6 / ta;
	printf "  released:          %8.2f s   %7.1f MB/s of buffer: the buffer empty (the table has the rows)\n", td, bb / 1e6 / td;
	printf "  agent CPU (drain): %8.2f s per GB of buffer (%.0f %% in the kernel) = %.0f MB/s per agent core\n",
		(au + as) / (bb / 1e9), 100 * as / (au + as + 1e-9), bb / 1e6 / (au + as + 1e-9);
	printf "  agent peak RSS during the drain: %.1f MB (VmHWM; sampled VmRSS max %.1f MB)   target <= 16 MB\n", ar, mr / 1024;
	printf "    of which private (RssAnon, sampled max): %.1f MB; the rest are shared library pages\n", ma / 1024;
	printf "  server peak RSS:                 %.1f MB\n", sr;
}'
awk -v bb="$buffered" -v td="$t_drain" -v sw="$swritten" -v tdd="$t_dd" -v su="$sutime" \
    -v ss="$sstime" -v s0="${sync0:-}" -v s1="${sync1:-}" -v n="${syncs:-}" -v wt="${swait:-}" \
    -v root="$ROOT" -v tb="$tbytes" -v ww="$walw" -v pf="$pflush" -v pc="$pcomp" -v dl="$dlog" \
    -v sbl="$sblock" 'BEGIN {
	printf "  server CPU (drain): %7.2f s per GB of buffer (%.0f %% in the kernel), %.2f cores busy\n",
		(su + ss) / (bb / 1e9), 100 * ss / (su + ss + 1e-9), (su + ss) / td;
	printf "  server wrote %.2f GB per GB drained (WAL + Parquet + log; Parquet files in the table by then: %.2f)\n",
		sw / bb, tb / bb;
	printf "    per GB drained: WAL %s, Parquet by flushes %.2f, by compaction %.2f, Delta logs %.3f, rest %s;\n",
		(ww > 0 ? sprintf("%.2f", ww / bb) : "(no metric)"), pf / bb, pc / bb, dl / bb,
		(ww > 0 ? sprintf("%.2f", (sw - ww - pf - pc - dl) / bb) : sprintf("%.2f (WAL included)", (sw - pf - pc - dl) / bb));
	printf "    to the block layer (write_bytes, counted during the drain): %.2f GB per GB drained\n", sbl / bb;
	printf "  disk baseline (%s): dd of those %.0f MB with conv=fdatasync: %.1f s = %.0f MB/s,\n",
		root, sw / 1e6, tdd, sw / 1e6 / (tdd + 1e-9);
	printf "    a bound of %.0f MB/s of buffer drained if the disk were the only limit\n",
		bb / 1e6 / (tdd + 1e-9);
	if (s1 != "")
		printf "  WAL: %d group commits, %.1f s in write + fdatasync (%.0f %% of the drain), loop blocked on it %.2f s\n",
			n, s1 - s0, 100 * (s1 - s0) / td, wt;
}'
[ -n "${holds:-}" ] && echo "  flow control: stream windows withheld (stream_inflight_bytes) ${holds}x, loop passes yielded ${yields:-?}x"
echo "  each thread from the agent's start until every chunk was acked (/proc schedstat):"
cat "$W/sched.txt"
echo "  agent threads (CPU-s): $athreads"
echo "  server threads (CPU-s, whole run): $sthreads"
