// `runnel-table describe|history|verify` on a table the real server wrote from
// python3-grpcio streams. Every figure the tool prints is compared with the independent
// readers of lib/table.mjs (JS and DuckDB log replays, DuckDB and parquet-wasm reading every
// file). Then copies of the table are damaged one way at a time and verify must say what is
// wrong with exit 1, and a log cleaned up behind a checkpoint must give exit 2.
// `runnel-server table ...` runs the same program: the one next to it, else the one on PATH,
// else exit 127.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Server, run, serverBin, tableBin, tmpDir, waitFor } from './lib/harness.mjs';
import { duckFrom, query, replayLog, verifyTable } from './lib/table.mjs';

const PY = '/usr/bin/python3';
const CLIENT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'zerobus_client.py');
const TABLE = 'main.default.telemetry';

async function client(server, ...args) {
  const r = await run(PY, [CLIENT, `127.0.0.1:${server.port}`, ...args]);
  assert.equal(r.code, 0, `client failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

const table = (...args) => run(tableBin, args);

async function tableJson(...args) {
  const r = await table(...args, '--json');
  try {
    return { code: r.code, stderr: r.stderr, json: JSON.parse(r.stdout) };
  } catch (e) {
    throw new Error(`table ${args.join(' ')}: not JSON (${e.message}): ${r.stdout}\n${r.stderr}`);
  }
}

function copyTable(src, name) {
  const dst = path.join(path.dirname(path.dirname(src)), name);
  fs.cpSync(src, dst, { recursive: true });
  return dst;
}

test('describe, history and verify agree with DuckDB and parquet-wasm; damage is found', { timeout: 180000 }, async () => {
  const dir = tmpDir('e2e-table-cli');
  const server = await new Server({ dir, tables: [TABLE], flushMs: 50 }).start();
  let s1, s2;
  try {
    s1 = await client(server, 'ingest', '--records', '25', '--batches', '4');
    s2 = await client(server, 'ingest', '--records', '10', '--batches', '3');
    const rows = () => replayLog(server.tableDir(TABLE)).live.reduce((n, f) => n + f.numRecords, 0);
    await waitFor(() => rows() >= 130, { timeoutMs: 20000, what: '130 rows' });
  } finally {
    await server.stop();
  }
  const tdir = server.tableDir(TABLE);
  const snap = await verifyTable(tdir);
  assert.equal(snap.rows, 130);

  // describe: same version, files, bytes, rows, watermarks and columns as the readers see
  const d = await tableJson('describe', tdir);
  assert.equal(d.code, 0, d.stderr);
  // the daemon's spelling runs the same program: same answer
  const viaServer = await run(serverBin, ['table', 'describe', '--json', tdir]);
  assert.equal(viaServer.code, 0, viaServer.stderr);
  assert.deepEqual(JSON.parse(viaServer.stdout), d.json);
  assert.equal(d.json.version, snap.version);
  assert.equal(d.json.files, snap.live.length);
  assert.equal(d.json.bytes, snap.live.reduce((n, f) => n + f.size, 0));
  assert.equal(d.json.rows, 130);
  assert.equal(d.json.filesWithoutStats, 0);
  assert.deepEqual(d.json.streams, { [s1.stream_id]: 3, [s2.stream_id]: 2 });
  assert.deepEqual(d.json.streams, snap.txns);
  assert.equal(d.json.id, snap.metaData.id);
  assert.equal(d.json.createdTime, snap.metaData.createdTime);
  assert.deepEqual(d.json.protocol, { minReaderVersion: 1, minWriterVersion: 2 });
  assert.deepEqual(d.json.partitionColumns, []);
  assert.deepEqual(d.json.warnings, []);
  const schema = JSON.parse(snap.metaData.schemaString).fields;
  assert.deepEqual(d.json.schema.map((c) => c.name), schema.map((f) => f.name));
  assert.deepEqual(d.json.schema.map((c) => c.nullable), schema.map((f) => f.nullable));
  const duckCols = await query(`DESCRIBE SELECT * FROM ${duckFrom(snap.files)}`);
  assert.deepEqual(d.json.schema.map((c) => c.name), duckCols.map((c) => c.column_name));
  const seqType = d.json.schema.find((c) => c.name === 'seq').type;
  assert.equal(seqType, 'long');

  // the same table by name under the data root, human output
  const byName = await table('describe', '-d', server.dataRoot, TABLE);
  assert.equal(byName.code, 0, byName.stderr);
  assert.match(byName.stdout, new RegExp(`^version +${snap.version}$`, 'm'));
  assert.match(byName.stdout, /^rows +130$/m);
  assert.match(byName.stdout, new RegExp(`^  ${s1.stream_id}  3  `, 'm'));

  // history: one entry per version, rows added sum to the table's rows
  const h = await tableJson('history', tdir);
  assert.equal(h.code, 0);
  assert.equal(h.json.history.length, snap.version + 1);
  assert.deepEqual(h.json.history.map((e) => e.version), [...Array(snap.version + 1).keys()].reverse());
  assert.equal(h.json.history.reduce((n, e) => n + e.rowsAdded, 0), 130);
  assert.equal(h.json.history.at(-1).operation, 'CREATE TABLE');
  assert.ok(h.json.history.slice(0, -1).every((e) => e.operation === 'STREAMING UPDATE' && e.filesAdded === 1 && e.filesRemoved === 0));
  const h2 = await tableJson('history', tdir, '-n', '2');
  assert.deepEqual(h2.json.history.map((e) => e.version), [snap.version, snap.version - 1]);
  const hh = await table('history', tdir);
  assert.equal(hh.stdout.trim().split('\n').length, snap.version + 2, 'header + one line per version');

  // verify: healthy
  const v = await table('verify', tdir);
  assert.equal(v.code, 0, v.stdout + v.stderr);
  assert.match(v.stdout, new RegExp(`${snap.live.length} files checked against their Parquet footer: OK`));
  const vj = await tableJson('verify', tdir);
  assert.equal(vj.json.ok, true);
  assert.equal(vj.json.rows, 130);
  assert.equal(vj.json.filesRowChecked, snap.live.length);

  // damage 1: a data file cut short (torn copy)
  const victim = path.basename(snap.live[0].path);
  const t1 = copyTable(tdir, 'cut');
  fs.truncateSync(path.join(t1, victim), snap.live[0].size - 10);
  const r1 = await table('verify', t1);
  assert.equal(r1.code, 1);
  assert.match(r1.stdout, new RegExp(`problem: ${victim}: size mismatch: the log says ${snap.live[0].size} bytes, the file has ${snap.live[0].size - 10}`));

  // damage 2: the same length but the footer overwritten
  const t2 = copyTable(tdir, 'garbled');
  const fd = fs.openSync(path.join(t2, victim), 'r+');
  fs.writeSync(fd, Buffer.from('JUNK'), 0, 4, snap.live[0].size - 4);
  fs.closeSync(fd);
  const r2 = await tableJson('verify', t2);
  assert.equal(r2.code, 1);
  assert.deepEqual(r2.json.problems, [`${victim}: bad Parquet footer: no PAR1 magic at the end`]);

  // damage 3: stats that lie about the row count; DuckDB agrees with the footer, not the log
  const t3 = copyTable(tdir, 'lying');
  const logDir = path.join(t3, '_delta_log');
  const first = path.join(logDir, '00000000000000000001.json');
  const lines = fs.readFileSync(first, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const add = lines.find((a) => a.add).add;
  const stats = JSON.parse(add.stats);
  const truth = Number((await query(`SELECT count(*) AS n FROM read_parquet('${path.join(t3, add.path)}')`))[0].n);
  assert.equal(stats.numRecords, truth);
  add.stats = JSON.stringify({ ...stats, numRecords: truth + 1 });
  fs.writeFileSync(first, lines.map((a) => JSON.stringify(a)).join('\n') + '\n');
  const r3 = await table('verify', t3);
  assert.equal(r3.code, 1);
  assert.match(r3.stdout, new RegExp(`${add.path}: stats say numRecords ${truth + 1}, the Parquet footer says ${truth} rows`));

  // damage 4: a missing data file and a missing commit
  const t4 = copyTable(tdir, 'holes');
  fs.unlinkSync(path.join(t4, victim));
  const r4 = await table('verify', t4);
  assert.equal(r4.code, 1);
  assert.match(r4.stdout, new RegExp(`${victim}: data file is missing`));
  fs.unlinkSync(path.join(t4, '_delta_log', '00000000000000000001.json'));
  const r5 = await table('verify', t4);
  assert.equal(r5.code, 1);
  assert.match(r5.stderr, /version 1 is missing from the log/);

  // a garbage checkpoint is reported by verify (other readers would start from it); with
  // the early JSON commits gone it is the only way in, so the log is unreadable (exit 1)
  const t5 = copyTable(tdir, 'checkpointed');
  fs.writeFileSync(path.join(t5, '_delta_log', '_last_checkpoint'), JSON.stringify({ version: 1, size: 4 }) + '\n');
  fs.writeFileSync(path.join(t5, '_delta_log', '00000000000000000001.checkpoint.parquet'), 'PAR1');
  const bad = await table('verify', t5);
  assert.equal(bad.code, 1);
  assert.match(bad.stdout, /problem: checkpoint: checkpoint 1: not a Parquet file/);
  fs.unlinkSync(path.join(t5, '_delta_log', '00000000000000000000.json'));
  fs.unlinkSync(path.join(t5, '_delta_log', '00000000000000000001.json'));
  for (const sub of ['describe', 'history', 'verify']) {
    const r = await table(sub, t5);
    assert.equal(r.code, 1, `${sub}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /checkpoint 1: not a Parquet file/);
    assert.equal(r.stdout, '');
  }
});

test('runnel-server table runs runnel-table: next to it first, then PATH, else 127', { timeout: 60000 }, async () => {
  const dir = tmpDir('e2e-table-exec');
  const alone = path.join(dir, 'alone');
  const paired = path.join(dir, 'paired');
  const onPath = path.join(dir, 'path');
  for (const d of [alone, paired, onPath]) fs.mkdirSync(d);
  // copies, not links: /proc/self/exe names the file a link points to
  fs.copyFileSync(serverBin, path.join(alone, 'runnel-server'));
  fs.copyFileSync(serverBin, path.join(paired, 'runnel-server'));
  fs.copyFileSync(tableBin, path.join(paired, 'runnel-table'));
  for (const f of [path.join(alone, 'runnel-server'), path.join(paired, 'runnel-server'), path.join(paired, 'runnel-table')])
    fs.chmodSync(f, 0o755);
  // a stand-in on PATH that says who it is and what it was given
  fs.writeFileSync(path.join(onPath, 'runnel-table'), '#!/bin/sh\necho "from PATH: $0 $*"\nexit 3\n', { mode: 0o755 });
  const env = (p) => ({ env: { ...process.env, PATH: p } });
  const help = await run(tableBin, ['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^usage: runnel-table describe/);

  // next to it: the real one, although another is on PATH
  let r = await run(path.join(paired, 'runnel-server'), ['table', '--help'], env(`${onPath}:/usr/bin:/bin`));
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, help.stdout);
  // a usage error keeps its exit status (2) and message through the exec
  const bad = await run(tableBin, ['frobnicate']);
  r = await run(path.join(paired, 'runnel-server'), ['table', 'frobnicate']);
  assert.equal(bad.code, 2);
  assert.deepEqual([r.code, r.stderr], [bad.code, bad.stderr]);

  // none next to it: the one on PATH, with the arguments after `table`
  r = await run(path.join(alone, 'runnel-server'), ['table', 'describe', '/x y'], env(`${onPath}:/usr/bin:/bin`));
  assert.equal(r.code, 3, r.stderr);
  assert.equal(r.stdout.trim(), 'from PATH: ' + path.join(onPath, 'runnel-table') + ' describe /x y');

  // neither: 127 and a message saying what is missing
  r = await run(path.join(alone, 'runnel-server'), ['table', 'describe', dir], env('/usr/bin:/bin'));
  assert.equal(r.code, 127);
  assert.match(r.stderr, /runnel-server table: cannot run runnel-table \(next to runnel-server or on PATH\): No such file/);
  fs.rmSync(dir, { recursive: true, force: true });
});
