// The workers key (issue 13, "every core used"): the same closed-loop load (bench/zb_load,
// 1 KB unique payloads, several MB per flush so each file's payload column has several
// Parquet pages, compressed by page jobs) against a server with workers = 2 (pages and flush
// jobs on two worker threads) and one with workers = 1 (everything on the loop). Both tables
// pass the full reader check (both log replays, DuckDB and parquet-wasm read every file) and
// hold the same rows: the same count, every payload (a counter and random digits) once, no
// counter missing, every payload of the form zb_load sends.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { Server, buildDir, run, tmpDir } from './lib/harness.mjs';
import { duckFrom, query, verifyTable } from './lib/table.mjs';

const LOAD = path.join(buildDir, 'bench', 'zb_load');
const TABLE = 'bench.default.pages';

async function loadInto(workers) {
  const dir = tmpDir(`e2e-workers-${workers}`);
  const server = await new Server({ dir, tables: [TABLE], flushMs: 1000, extra: `workers = ${workers};` }).start();
  try {
    const r = await run(LOAD, ['--kv', '-s', '2', '-b', '200', '-w', '2', '-n', '24e6', '-p', String(server.proc.child.pid),
      `127.0.0.1:${server.port}`, TABLE]);
    assert.equal(r.code, 0, `zb_load failed: ${r.stderr}`);
    const kv = Object.fromEntries(r.stdout.trim().split('\n').map((l) => l.split('=')));
    assert.equal(kv.unacked, '0');
    await server.stop();
    const snap = await verifyTable(server.tableDir(TABLE));
    assert.equal(snap.rows, Number(kv.records), 'every record acknowledged is in the table');
    const from = duckFrom(snap.files);
    // zb_load's payload: {"n":"<20-digit counter>","v":[random digits]}, 1000 bytes
    const [c] = await query(`SELECT count(*) AS n, count(DISTINCT payload) AS d,
      count(DISTINCT regexp_extract(payload, '^.{6}(\\d{20})', 1)) AS counters,
      min(regexp_extract(payload, '^.{6}(\\d{20})', 1)::BIGINT) AS lo, max(regexp_extract(payload, '^.{6}(\\d{20})', 1)::BIGINT) AS hi,
      min(strlen(payload)) AS minlen, max(strlen(payload)) AS len,
      count(*) FILTER (WHERE NOT regexp_full_match(payload, '\\{"n":"\\d{20}","v":\\[(\\d{3}\\.\\d{3},)*\\d*\\.?\\d*\\]\\}')) AS bad FROM ${from}`);
    const [big] = await query(`SELECT max(total_compressed_size) AS b FROM parquet_metadata(${JSON.stringify(snap.files)})
      WHERE path_in_schema = 'payload'`);
    return { rows: Number(c.n), distinct: Number(c.d), counters: Number(c.counters), lo: Number(c.lo), hi: Number(c.hi),
      minlen: Number(c.minlen), len: Number(c.len), bad: Number(c.bad), chunk: Number(big.b) };
  } finally {
    await server.stop();
  }
}

test('workers = 2 writes the same rows as workers = 1, read back by DuckDB and parquet-wasm', { timeout: 240000 }, async () => {
  const two = await loadInto(2);
  const one = await loadInto(1);
  assert.ok(two.rows >= 22000, `rows ${two.rows}`);
  assert.equal(two.distinct, two.rows, 'every payload once');
  assert.equal(two.counters, two.rows, 'every counter once');
  assert.equal(two.hi - two.lo + 1, two.rows, 'no counter missing');
  assert.equal(two.minlen, 1000);
  assert.equal(two.bad, 0, 'every payload of its form');
  assert.ok(two.chunk > 2 * 1024 * 1024 / 8, `a payload chunk of several pages (${two.chunk} B compressed)`);
  assert.equal(two.len, 1000);
  assert.deepEqual(two, { ...one, chunk: two.chunk }, 'the same rows');
});
