// Delta checkpoints written by the real server (checkpoint_interval = 2): they appear every
// two commits, _last_checkpoint names the newest with its row count, DuckDB and parquet-wasm
// read the checkpoint Parquet with the columns and rows a JS replay of the JSON log predicts.
// Then the JSON commits up to the checkpoint are deleted: `table describe|verify` read the
// checkpoint, and a restarted server carries on from it (no lost or duplicated rows, txn
// watermarks intact).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Server, run, serverBin, tmpDir, waitFor } from './lib/harness.mjs';
import { duckFrom, query, replayLog, wasmRead } from './lib/table.mjs';

const PY = '/usr/bin/python3';
const CLIENT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'zerobus_client.py');
const TABLE = 'main.default.telemetry';
const sqlStr = (s) => `'${String(s).replaceAll("'", "''")}'`;

async function client(server, ...args) {
  const r = await run(PY, [CLIENT, `127.0.0.1:${server.port}`, ...args]);
  assert.equal(r.code, 0, `client failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

async function tableJson(...args) {
  const r = await run(serverBin, ['table', ...args, '--json']);
  return { code: r.code, stderr: r.stderr, json: JSON.parse(r.stdout) };
}

test('checkpoints: written, readable by DuckDB and parquet-wasm, and a restart starts from one', { timeout: 240000 }, async () => {
  const dir = tmpDir('e2e-checkpoint');
  const extra = 'checkpoint_interval = 2;\ncompact_interval = 0;\n';
  const server = await new Server({ dir, tables: [TABLE], flushMs: 30, extra }).start();
  const tdir = server.tableDir(TABLE);
  const logDir = path.join(tdir, '_delta_log');
  try {
    const rows = () => replayLog(tdir).live.reduce((n, f) => n + f.numRecords, 0);
    for (let i = 1; i <= 8; i++) { // one commit (at least) per client run
      await client(server, 'ingest', '--records', '6', '--batches', '2');
      await waitFor(() => rows() >= 12 * i, { timeoutMs: 30000, what: `${12 * i} rows` });
    }
  } finally {
    await server.stop();
  }
  const snap = replayLog(tdir);
  assert.deepEqual(snap.problems, []);
  const ckpts = fs.readdirSync(logDir).filter((n) => /^\d{20}\.checkpoint\.parquet$/.test(n)).sort();
  assert.ok(ckpts.length >= 2, `checkpoints: ${ckpts}`);
  for (const c of ckpts) assert.equal(Number(c.slice(0, 20)) % 2, 0, `${c} is not on the interval`);
  const last = JSON.parse(fs.readFileSync(path.join(logDir, '_last_checkpoint'), 'utf8'));
  const newest = Number(ckpts.at(-1).slice(0, 20));
  assert.equal(last.version, newest);
  const cfile = path.join(logDir, ckpts.at(-1));

  // what the JSON log says the table was at that version
  const files = new Map();
  const txns = {};
  for (let v = 0; v <= newest; v++) {
    const text = fs.readFileSync(path.join(logDir, `${String(v).padStart(20, '0')}.json`), 'utf8');
    for (const line of text.split('\n').filter(Boolean)) {
      const a = JSON.parse(line);
      if (a.add) files.set(a.add.path, a.add);
      if (a.remove) files.delete(a.remove.path);
      if (a.txn) txns[a.txn.appId] = a.txn.version;
    }
  }

  // DuckDB: schema and rows
  const schema = await query(`SELECT name FROM parquet_schema(${sqlStr(cfile)})`);
  for (const col of ['txn', 'add', 'remove', 'metaData', 'protocol', 'appId', 'partitionValues',
    'deletionTimestamp', 'extendedFileMetadata', 'schemaString', 'partitionColumns', 'configuration',
    'minReaderVersion', 'lastUpdated', 'modificationTime', 'dataChange', 'stats', 'tags', 'provider']) {
    assert.ok(schema.some((r) => r.name === col), `checkpoint schema lacks ${col}`);
  }
  const all = await query(`SELECT count(*) AS n FROM read_parquet(${sqlStr(cfile)})`);
  assert.equal(Number(all[0].n), last.size, '_last_checkpoint size = rows');
  const adds = await query(`SELECT add.path AS path, add.size AS size, add.dataChange AS dc,
      add.stats AS stats FROM read_parquet(${sqlStr(cfile)}) WHERE add IS NOT NULL ORDER BY 1`);
  assert.deepEqual(adds.map((r) => r.path), [...files.keys()].sort());
  for (const a of adds) {
    assert.equal(Number(a.size), files.get(a.path).size);
    assert.equal(a.stats, files.get(a.path).stats);
  }
  const tx = await query(`SELECT txn.appId AS app, txn.version AS v FROM read_parquet(${sqlStr(cfile)})
      WHERE txn IS NOT NULL`);
  assert.deepEqual(Object.fromEntries(tx.map((r) => [r.app, Number(r.v)])), txns);
  const one = await query(`SELECT
      (SELECT count(*) FROM read_parquet(${sqlStr(cfile)}) WHERE protocol IS NOT NULL) AS p,
      (SELECT count(*) FROM read_parquet(${sqlStr(cfile)}) WHERE metaData IS NOT NULL) AS m,
      (SELECT any_value(protocol.minWriterVersion) FROM read_parquet(${sqlStr(cfile)})) AS w,
      (SELECT any_value(metaData.format.provider) FROM read_parquet(${sqlStr(cfile)})) AS prov`);
  assert.equal(Number(one[0].p), 1);
  assert.equal(Number(one[0].m), 1);
  assert.equal(Number(one[0].w), 2);
  assert.equal(one[0].prov, 'parquet');

  // parquet-wasm (arrow-rs): every row, every column
  const t = wasmRead(cfile);
  assert.equal(t.numRows, last.size);
  for (const f of t.schema.fields) {
    const col = t.getChild(f.name);
    for (let i = 0; i < col.length; i++) col.get(i);
  }
  const wasmAdds = [];
  const addCol = t.getChild('add');
  for (let i = 0; i < t.numRows; i++) {
    const a = addCol.get(i);
    if (a) wasmAdds.push(a.path);
  }
  assert.deepEqual(wasmAdds.sort(), [...files.keys()].sort());

  // the early JSON commits go: table describe/verify read the checkpoint
  const before = await tableJson('describe', tdir);
  assert.equal(before.code, 0, before.stderr);
  for (let v = 0; v < newest; v++) fs.unlinkSync(path.join(logDir, `${String(v).padStart(20, '0')}.json`));
  const d = await tableJson('describe', tdir);
  assert.equal(d.code, 0, d.stderr);
  assert.equal(d.json.version, before.json.version);
  assert.equal(d.json.rows, 96);
  assert.deepEqual(d.json.streams, before.json.streams);
  assert.equal(d.json.checkpoint.replayedFrom, newest);
  const v = await run(serverBin, ['table', 'verify', tdir]);
  assert.equal(v.code, 0, v.stdout + v.stderr);

  // a restarted server opens the table from the checkpoint and keeps appending
  const server2 = await new Server({ dir, tables: [TABLE], flushMs: 30, extra }).start();
  try {
    await client(server2, 'ingest', '--records', '5', '--batches', '2');
    await waitFor(async () => (await tableJson('describe', tdir)).json.rows >= 106, { timeoutMs: 30000, what: '106 rows' });
  } finally {
    await server2.stop();
  }
  const after = await tableJson('describe', tdir);
  assert.equal(after.json.rows, 106, 'no row lost or duplicated');
  for (const [app, ver] of Object.entries(before.json.streams)) assert.equal(after.json.streams[app], ver);
  const v2 = await run(serverBin, ['table', 'verify', tdir]);
  assert.equal(v2.code, 0, v2.stdout + v2.stderr);
  // every live file read with DuckDB: the rows the log claims
  const live = await run(serverBin, ['table', 'describe', '--json', tdir]);
  assert.equal(live.code, 0);
  const ck2 = fs.readdirSync(logDir).filter((n) => /checkpoint\.parquet$/.test(n)).sort().at(-1);
  const liveFiles = (await query(`SELECT add.path AS p FROM read_parquet(${sqlStr(path.join(logDir, ck2))}) WHERE add IS NOT NULL`))
    .map((r) => path.join(tdir, decodeURIComponent(r.p)));
  const ckv = Number(ck2.slice(0, 20));
  for (const n of fs.readdirSync(logDir).filter((x) => /^\d{20}\.json$/.test(x) && Number(x.slice(0, 20)) > ckv)) {
    for (const line of fs.readFileSync(path.join(logDir, n), 'utf8').split('\n').filter(Boolean)) {
      const a = JSON.parse(line);
      if (a.add) liveFiles.push(path.join(tdir, decodeURIComponent(a.add.path)));
    }
  }
  const [{ n }] = await query(`SELECT count(*) AS n FROM ${duckFrom(liveFiles)}`);
  assert.equal(Number(n), 106);
});
