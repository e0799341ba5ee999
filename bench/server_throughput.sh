#!/usr/bin/env bash
# Benchmark: runnel-server end to end throughput. bench/zb_load (C, nghttp2, one thread)
# sends runnel.v1.Record envelopes (1064 bytes each: a 1000-byte JSON-like payload, every
# record unique) over S PersistentStream calls, W batches unacknowledged per stream, until
# MB megabytes of record bytes are acknowledged (WAL fdatasync'd by the server's group
# commit) and then visible in the Delta table (zb_load watches _delta_log with inotify and
# reads each version's txn actions). Prints MB/s to acked and to table, server CPU-seconds
# per GB and MB/s per core (= bytes / server CPU seconds), and zb_load's own CPU so a client
# bottleneck would show. Baselines in the same run, on the same bytes and the same disk:
# dd bs=1M + one fdatasync, dd with O_DSYNC per batch-sized write, and zstd -3 on one core.
# --workers 1,2 (or RN_BENCH_WORKERS="1 2") runs the server once per worker count (its
# `workers` key: 1 = everything on the loop's thread) on the same bytes, one fresh data
# directory each, and prints each run, its CPU seconds per thread (/proc/PID/task) and the
# ratios of MB/s acked and to table against the first count. --tmpfs (or RN_BENCH_TMP=DIR)
# puts the work directory (data and baselines) on /dev/shm (or DIR): with the disk's
# fdatasync out of the way the runs show the server's CPU scaling.
# Usage: RN_BIN=build-release bench/server_throughput.sh [--workers N,M] [--tmpfs] [MB] [streams]
#        [records/batch] [window]
# RN_SERVER_CONF: more server config lines (e.g. 'memory_max_bytes = "0";' for the
# run without the memory budget).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
WORKERS=${RN_BENCH_WORKERS:-}
while [ $# -gt 0 ]; do
	case $1 in
	--workers) WORKERS=${2//,/ }; shift 2 ;;
	--tmpfs) RN_BENCH_TMP=/dev/shm; shift ;;
	*) break ;;
	esac
done
BIN=${RN_BIN:-build-release}
MB=${1:-1000}
S=${2:-4}
B=${3:-1000}
WIN=${4:-4}
[ -x "$BIN/server/runnel-server" ] || { echo "no $BIN/server/runnel-server (RN_BIN=build dir)"; exit 1; }
LOAD=$(zb_load_bin "$BIN")
W=$(mktemp -d "${RN_BENCH_TMP:-/tmp}/runnel-bench.XXXXXX")
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$W"' EXIT
mkdir -p "$W/data"
TABLE=bench.default.records

# The exact record bytes the run will send, for the baselines.
eval "$("$LOAD" -b "$B" -n "${MB}e6" --dump "$W/records.bin")" # sets dump_bytes, batch_bytes
bytes=$(stat -c %s "$W/records.bin")
sync "$W/records.bin"            # its writeback must not overlap the baselines
cat "$W/records.bin" >/dev/null # in the page cache for every baseline

t0=$(now); dd if="$W/records.bin" of="$W/data/dd.out" bs=1M conv=fdatasync status=none
t_dd=$(since "$t0"); rm -f "$W/data/dd.out"
t0=$(now); dd if="$W/records.bin" of="$W/data/dd.out" bs="$batch_bytes" oflag=dsync status=none
t_dsync=$(since "$t0"); rm -f "$W/data/dd.out"
t0=$(now); zstd -3 -T1 -q -c "$W/records.bin" >"$W/records.zst"
t_zstd=$(since "$t0"); zbytes=$(stat -c %s "$W/records.zst"); rm -f "$W/records.zst" "$W/records.bin"

# one run with `workers = $1` (empty: the default); prints its block and sets ack_mbs,
# table_mbs, core_mbs
run_one() {
	rm -rf "$W/data" && mkdir -p "$W/data"
	cat >"$W/server.conf" <<CONF
listen = "127.0.0.1:0";
data_root = "$W/data";
tables = [ "$TABLE" ];
${1:+workers = $1;}
${RN_SERVER_CONF:-}
CONF
	start_server "$W/server.conf" "$W/server.log"
	spid=$SERVER_PID port=$SERVER_PORT
	tdir="$W/data/bench/default/records"
	"$LOAD" --kv -s "$S" -b "$B" -w "$WIN" -n "${MB}e6" -p "$spid" -d "$tdir/_delta_log" \
		"127.0.0.1:$port" "$TABLE" >"$W/load.out"
	srss=$(hwm_mb "$spid")
	# CPU seconds per thread (threads are named: runnel-server, flush-N, maintenance-N, ...)
	threads=$(for f in /proc/"$spid"/task/*/stat; do cat "$f" 2>/dev/null; echo; done |
		awk -v hz="$(getconf CLK_TCK)" 'NF { c = $0; sub(/^[^(]*\(/, "", c); name = c; sub(/\).*/, "", name);
			sub(/^[^)]*\) /, "", c); split(c, f, " "); t[name] += (f[12] + f[13]) / hz }
			END { for (n in t) if (t[n] >= 0.01) printf "%s %.2f s, ", n, t[n] }')
	kill -TERM "$spid"; wait "$spid" 2>/dev/null || true
	rows=$(live_rows "$tdir") # live adds only: compaction must not count a row twice
	pq=$(cat "$tdir"/*.parquet | wc -c)

	eval "$(grep -E '^[a-z_0-9]+=[0-9.]+$' "$W/load.out")"
	[ "$rows" -eq "$records" ] || { echo "table has $rows rows, sent $records"; exit 1; }
	[ -z "$1" ] || echo "runnel bench: workers = $1"
	awk -v rb="$record_bytes" -v n="$records" -v s="$S" -v b="$B" -v w="$WIN" -v each="$record_bytes_each" \
	    -v ta="$t_ack_s" -v tt="$t_table_s" -v sca="$server_cpu_ack_s" -v sct="$server_cpu_table_s" \
	    -v cc="$client_cpu_table_s" -v ap50="$ack_p50_ms" -v ap99="$ack_p99_ms" -v srss="$srss" \
	    -v tdd="$t_dd" -v tds="$t_dsync" -v tz="$t_zstd" -v zb="$zbytes" -v pq="$pq" -v db="$bytes" \
	    -v bb="$batch_bytes" 'BEGIN {
	mb = rb / 1e6; gb = rb / 1e9; per_core = mb / sct; zmb = db / 1e6 / tz;
	printf "runnel bench: server throughput, %d streams x %d batches in flight, %d records of %d B per batch, %.0f MB\n", s, w, b, each, mb;
	printf "  acked (WAL fdatasync):   %7.2f s  %7.1f MB/s  %9.0f records/s  (batch ack p50 %.0f ms, p99 %.0f ms)\n", ta, mb / ta, n / ta, ap50, ap99;
	printf "  in the Delta table:      %7.2f s  %7.1f MB/s  (flush_interval_ms 1000: up to 1 s after the last ack)\n", tt, mb / tt;
	printf "  server CPU:              %7.2f s  %7.2f s/GB  = %6.1f MB/s per core   peak RSS %.1f MB\n", sct, sct / gb, per_core, srss;
	printf "  client CPU (zb_load):    %7.2f s  %7.2f s/GB  (%.0f%% of the server'\''s)\n", cc, cc / gb, 100 * cc / sct;
	printf "  target >= 200 MB/s per core: %s (%.2fx of it)\n", (per_core >= 200 ? "met" : "NOT met"), per_core / 200;
	printf "  baseline dd bs=1M + fdatasync:        %6.2f s  %7.1f MB/s  (same bytes, same disk)\n", tdd, db / 1e6 / tdd;
	printf "  baseline dd bs=%d oflag=dsync:    %6.2f s  %7.1f MB/s  (a sync per batch)\n", bb, tds, db / 1e6 / tds;
	printf "  baseline zstd -3 -T1:                 %6.2f s  %7.1f MB/s  (ratio %.2f; Parquet ratio %.2f)\n", tz, zmb, zb / db, pq / rb;
	printf "  server MB/s per core / zstd -3 MB/s: %.2f\n", per_core / zmb;
}'
	echo "  server CPU per thread:   ${threads%, }"
	ack_mbs=$(echo "$record_bytes / 1000000 / $t_ack_s" | bc -l)
	table_mbs=$(echo "$record_bytes / 1000000 / $t_table_s" | bc -l)
	core_mbs=$(echo "$record_bytes / 1000000 / $server_cpu_table_s" | bc -l)
}

if [ -z "$WORKERS" ]; then
	run_one ""
	exit 0
fi
summary=""
first_ack="" first_table=""
for n in $WORKERS; do
	run_one "$n"
	[ -n "$first_ack" ] || { first_ack=$ack_mbs first_table=$table_mbs first_n=$n; }
	summary+=$(awk -v n="$n" -v a="$ack_mbs" -v t="$table_mbs" -v c="$core_mbs" -v fa="$first_ack" \
		-v ft="$first_table" -v fn="$first_n" 'BEGIN { printf "  workers %2d: %7.1f MB/s acked (%.2fx of %d), %7.1f MB/s to table (%.2fx), %6.1f MB/s per core\n", n, a, a / fa, fn, t, t / ft, c }')$'\n'
done
echo "runnel bench: workers compared (data on ${RN_BENCH_TMP:-/tmp}; load $(cut -d' ' -f1-3 /proc/loadavg))"
printf '%s' "$summary"
