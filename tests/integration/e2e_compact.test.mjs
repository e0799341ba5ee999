// Compaction and vacuum on a table the real server wrote as 50 small files: `table compact`
// rewrites them into one file (remove + add with dataChange false), DuckDB and parquet-wasm
// read the same rows before and after, txn watermarks are untouched; `table vacuum` keeps
// the removed files within the retention, a dry run only lists them, and retention 0 (the
// test-only --unsafe-retention) deletes exactly them; the table still verifies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Server, run, serverBin, tmpDir, waitFor } from './lib/harness.mjs';
import { duckFrom, query, replayLog, verifyTable, wasmRead } from './lib/table.mjs';

const PY = '/usr/bin/python3';
const CLIENT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'zerobus_client.py');
const TABLE = 'main.default.telemetry';

async function client(server, ...args) {
  const r = await run(PY, [CLIENT, `127.0.0.1:${server.port}`, ...args]);
  assert.equal(r.code, 0, `client failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

const table = (...args) => run(serverBin, ['table', ...args]);
const big = (_k, v) => (typeof v === 'bigint' ? v.toString() : v);

async function allRows(files) {
  const rows = await query(`SELECT * FROM ${duckFrom(files)} ORDER BY stream_id, seq, payload`);
  return JSON.stringify(rows, big);
}

function wasmRows(files) {
  const out = [];
  for (const f of files) {
    const t = wasmRead(f);
    for (let i = 0; i < t.numRows; i++) {
      const r = t.get(i).toJSON();
      out.push(JSON.stringify([r.stream_id, String(r.seq), r.payload, String(r.event_time)]));
    }
  }
  return out.sort();
}

test('compact 50 small files into one; vacuum deletes them after the retention', { timeout: 300000 }, async () => {
  const dir = tmpDir('e2e-compact');
  const extra = 'checkpoint_interval = 0;\ncompact_interval = 0;\n';
  const server = await new Server({ dir, tables: [TABLE], flushMs: 20, extra }).start();
  const tdir = server.tableDir(TABLE);
  try {
    const rows = () => replayLog(tdir).live.reduce((n, f) => n + f.numRecords, 0);
    for (let i = 1; i <= 50; i++) {
      await client(server, 'ingest', '--records', '2', '--batches', '1');
      await waitFor(() => rows() >= 2 * i, { timeoutMs: 30000, what: `${2 * i} rows` });
    }
  } finally {
    await server.stop();
  }
  const snap = await verifyTable(tdir);
  assert.equal(snap.rows, 100);
  assert.equal(snap.live.length, 50);
  const before = await allRows(snap.files);
  const beforeWasm = wasmRows(snap.files);
  const d0 = JSON.parse((await table('describe', '--json', tdir)).stdout);

  const c = await table('compact', '--json', tdir);
  assert.equal(c.code, 0, c.stdout + c.stderr);
  const cj = JSON.parse(c.stdout);
  assert.equal(cj.filesRemoved, 50);
  assert.equal(cj.rows, 100);
  assert.equal(cj.steps.length, 1);

  const snap2 = await verifyTable(tdir);
  assert.equal(snap2.live.length, 1);
  assert.equal(snap2.rows, 100);
  assert.equal(await allRows(snap2.files), before, 'DuckDB reads the same rows');
  assert.deepEqual(wasmRows(snap2.files), beforeWasm, 'parquet-wasm reads the same rows');
  // the commit: 50 removes and one add, all dataChange false
  const last = fs.readFileSync(path.join(tdir, '_delta_log', `${String(snap2.version).padStart(20, '0')}.json`), 'utf8')
    .split('\n').filter(Boolean).map((l) => JSON.parse(l));
  assert.equal(last.filter((a) => a.remove && a.remove.dataChange === false).length, 50);
  assert.equal(last.filter((a) => a.add && a.add.dataChange === false).length, 1);
  assert.equal(JSON.parse(last.find((a) => a.add).add.stats).numRecords, 100);
  const d1 = JSON.parse((await table('describe', '--json', tdir)).stdout);
  assert.deepEqual(d1.streams, d0.streams, 'txn watermarks intact');
  assert.equal(d1.tombstones, 50);
  // nothing left to compact
  const again = await table('compact', tdir);
  assert.equal(again.code, 0);
  assert.match(again.stdout, /nothing to compact/);

  // vacuum: the default retention keeps everything; a dry run lists; retention 0 deletes
  const removed = snap.files;
  const keep = await table('vacuum', '--json', tdir);
  assert.equal(keep.code, 0, keep.stderr);
  assert.equal(JSON.parse(keep.stdout).count, 0);
  const refused = await table('vacuum', '--retention', '0', tdir);
  assert.equal(refused.code, 2);
  const dry = await table('vacuum', '--json', '--retention', '0', '--unsafe-retention', '--dry-run', tdir);
  assert.equal(JSON.parse(dry.stdout).count, 50);
  for (const f of removed) assert.ok(fs.existsSync(f), 'dry run deletes nothing');
  const vac = await table('vacuum', '--json', '--retention', '0', '--unsafe-retention', tdir);
  assert.equal(vac.code, 0, vac.stderr);
  assert.equal(JSON.parse(vac.stdout).count, 50);
  for (const f of removed) assert.ok(!fs.existsSync(f), `${f} still there`);
  for (const f of snap2.files) assert.ok(fs.existsSync(f), 'the live file stays');
  const v = await table('verify', tdir);
  assert.equal(v.code, 0, v.stdout + v.stderr);
  assert.equal(await allRows((await verifyTable(tdir)).files), before);
  // a checkpoint after vacuum drops the expired tombstones; verify still agrees
  const ck = await table('checkpoint', tdir);
  assert.equal(ck.code, 0, ck.stderr);
  const v2 = await table('verify', tdir);
  assert.equal(v2.code, 0, v2.stdout + v2.stderr);
});
