#!/usr/bin/env bash
# Benchmark: several writers committing to one Delta table on S3, as several runnel-servers
# sharing a table do, against the same on a local directory, in one invocation. The program
# is tests/integration/delta_race (built with the tests): K writer processes, each with its
# own store object and Delta handle on one table, commit for SEC seconds (one small Parquet
# file and one txn a version, put-if-absent; a writer that finds its version taken reads the
# winner's commit and tries the next one), then the table is read back and checked (every
# commit once, versions contiguous, txn watermarks, every row once). The store is a
# throw-away Ceph RGW started here (tests/s3/rgw.sh, its OSD a file under the work
# directory; stopped on exit), and the local directory is on the same disk.
# Prints per store and K: commits/s for the table, conflicts per commit (versions a writer
# found taken and walked past), commit latency p50/p99/max (one commit call until its
# version is known ours, retries included), the commits, and whether the read-back held;
# with the load average before and after.
# Usage: RN_BIN=build-release bench/s3_commit.sh [seconds] [writers...]   (default 20; 1 2 3)
# BENCH_DIR: where the work directory goes (default /tmp; the RGW's data and the local table).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
BIN=${RN_BIN:-build-release}
SEC=${1:-20}
if [ $# -gt 0 ]; then shift; fi
WRITERS=${*:-1 2 3}
RACE=$BIN/tests/integration/delta_race
[ -x "$RACE" ] || { echo "no $RACE (RN_BIN=a build dir with the tests)"; exit 1; }
W=$(mktemp -d "${BENCH_DIR:-/tmp}/runnel-bench.XXXXXX")
trap 'tests/s3/rgw.sh stop "$W/rgw" >/dev/null 2>&1 || true; rm -rf "$W"' EXIT

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
rgw_start "$W/rgw" bench
# the first objects of a fresh gateway make its data pool: not part of any figure
"$RACE" -k 1 -m 3 -e "$ENDPOINT" "s3://bench/warmup/t" >/dev/null

for k in $WRITERS; do
	"$RACE" -k "$k" -t "$SEC" -e "$ENDPOINT" "s3://bench/k$k/t" >"$W/s3-$k.json"
	"$RACE" -k "$k" -t "$SEC" "$W/local-k$k/t" >"$W/local-$k.json"
done
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)

echo "one Delta table, K writer processes, ${SEC} s each; $(nproc) cores; load before $LOAD0, after $LOAD1"
python3 - "$W" "$WRITERS" <<'EOF'
import json, sys
w, writers = sys.argv[1], sys.argv[2].split()
print("  %-6s %2s %10s %10s %8s %8s %8s %8s  %s" % ("store", "K", "commits/s", "conflicts", "p50 ms",
      "p99 ms", "max ms", "commits", "read back"))
for store in ("s3", "local"):
    for k in writers:
        r = json.load(open("%s/%s-%s.json" % (w, store, k)))
        print("  %-6s %2s %10.1f %10.2f %8.1f %8.1f %8.1f %8d  %s" % (
            "RGW" if store == "s3" else "local", k, r["commits_per_s"], r["retries_per_commit"],
            r["lat_ms"]["p50"], r["lat_ms"]["p99"], r["lat_ms"]["max"], r["commits"],
            "ok" if r["ok"] else "FAILED: " + r["failed"]))
EOF
