#!/usr/bin/env bash
# Benchmark: our Parquet writer (server/parquet) against DuckDB's COPY ... (FORMAT parquet,
# COMPRESSION zstd) on the same N telemetry-like rows (timestamp, low-cardinality string
# device id, long seq, two doubles, ~100 B string payload), one file each, in one run.
# Both sides generate the rows from the row number with the same formulas (C in
# tests/unit/parquet/pq_bench.c, SQL below), and the script checks that the two files hold
# identical values (a hash over every column read back by DuckDB). Times include value
# generation, encoding, compression and writing the file; neither side fsyncs. DuckDB runs
# with its default threads and again with threads=1 (our writer is single-threaded).
# Prints both times, rows/s, the speed ratio (ours / DuckDB) and both file sizes.
# Usage: bench/parquet_vs_duckdb.sh [rows]   (default 10000000; builds build-bench, Release)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000000}
BIN=${RN_BIN:-build-bench}
W=$(mktemp -d /tmp/runnel-bench-pq.XXXXXX)
trap 'rm -rf "$W"' EXIT

cmake -S . -B "$BIN" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BIN" -j"$(nproc)" --target pq_bench >/dev/null

read -r t_ours groups < <("$BIN/tests/unit/parquet/pq_bench" "$W/ours.parquet" "$N")

cat >"$W/duck.mjs" <<'JS'
import { DuckDBInstance } from '@duckdb/node-api';
const [, , dir, n] = process.argv;
const inst = await DuckDBInstance.create(':memory:');
const c = await inst.connect();
const gen = `SELECT make_timestamp(1700000000000000 + i * 1000) AS ts,
    printf('dev-%04d', (i * 2654435761) % 1000) AS device, i AS seq,
    ((i * 37) % 10007)::DOUBLE / 100.0::DOUBLE AS v1, i::DOUBLE * 0.001::DOUBLE AS v2,
    printf('seq=%010d dev=%04d temp=%d.%d status=%s lorem ipsum dolor sit amet, consectetur adipiscing elit',
           i, (i * 2654435761) % 1000, i % 50, i % 10, CASE WHEN i % 7 = 0 THEN 'WARN' ELSE 'OK' END) AS payload
    FROM range(${n}) t(i)`;
const threads = (await (await c.runAndReadAll('SELECT current_setting(\'threads\') AS t')).getRowObjectsJS())[0].t;
const times = {};
for (const [name, th] of [['duck', threads], ['duck1', 1]]) {
  await c.run(`SET threads = ${th}`);
  const t0 = performance.now();
  await c.run(`COPY (${gen}) TO '${dir}/${name}.parquet' (FORMAT parquet, COMPRESSION zstd)`);
  times[name] = (performance.now() - t0) / 1000;
}
await c.run(`SET threads = ${threads}`);
const h = async (f) => (await (await c.runAndReadAll(`SELECT count(*)::VARCHAR AS n,
    sum(hash(epoch_us(ts)))::VARCHAR || sum(hash(device))::VARCHAR || sum(hash(seq))::VARCHAR ||
    sum(hash(v1))::VARCHAR || sum(hash(v2))::VARCHAR || sum(hash(payload))::VARCHAR AS h
    FROM read_parquet('${dir}/${f}')`)).getRowObjectsJS())[0];
const [a, b] = [await h('ours.parquet'), await h('duck.parquet')];
if (a.h !== b.h) console.error('hashes per column differ:', a.h, b.h);
const rg = async (f) => (await (await c.runAndReadAll(`SELECT num_row_groups::VARCHAR AS g FROM parquet_file_metadata('${dir}/${f}')`)).getRowObjectsJS())[0].g;
console.log(times.duck.toFixed(3), times.duck1.toFixed(3), String(threads), a.n === b.n && a.h === b.h ? 'same' : `DIFFERENT(${a.n},${b.n})`, await rg('duck.parquet'));
JS
cp "$W/duck.mjs" tests/integration/.bench_duck.mjs
read -r t_duck t_duck1 threads same duck_groups < <(cd tests/integration && node .bench_duck.mjs "$W" "$N"; rm -f .bench_duck.mjs)

size() { stat -c %s "$1"; }
mb() { echo "scale=1; $1 / 1048576" | bc; }
printf 'rows                         %d (ts, device x1000, seq, v1, v2, payload ~100 B)\n' "$N"
printf 'values identical             %s\n' "$same"
printf 'runnel (1 thread)            %7.2f s  %10.0f rows/s  %8s MiB  %s row groups\n' \
	"$t_ours" "$(echo "$N / $t_ours" | bc -l)" "$(mb "$(size "$W/ours.parquet")")" "$groups"
printf 'duckdb (%2s threads)          %7.2f s  %10.0f rows/s  %8s MiB  %s row groups\n' \
	"$threads" "$t_duck" "$(echo "$N / $t_duck" | bc -l)" "$(mb "$(size "$W/duck.parquet")")" "$duck_groups"
printf 'duckdb (1 thread)            %7.2f s  %10.0f rows/s  %8s MiB\n' \
	"$t_duck1" "$(echo "$N / $t_duck1" | bc -l)" "$(mb "$(size "$W/duck1.parquet")")"
printf 'speed ratio ours/duckdb      %.2f (default threads)   %.2f (1 thread)\n' \
	"$(echo "$t_duck / $t_ours" | bc -l)" "$(echo "$t_duck1 / $t_ours" | bc -l)"
printf 'size ratio ours/duckdb       %.2f\n' \
	"$(echo "$(size "$W/ours.parquet") / $(size "$W/duck.parquet")" | bc -l)"
