// Two runnel-server processes append to one Delta table at once (same data_root, the table
// created first), each fed by its own python3-grpcio clients, with a 10 ms flush interval so
// their commits race for the same versions all the time. Afterwards: every record of every
// stream is in the table exactly once (DuckDB), the log has no gap and every version file is
// one complete JSON commit, the txn watermarks match the last offsets, both writers really
// interleaved, and `runnel-server table verify` finds the table healthy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Server, run, serverBin, tmpDir, waitFor } from './lib/harness.mjs';
import { duckFrom, query, replayLog, verifyTable } from './lib/table.mjs';

const PY = '/usr/bin/python3';
const CLIENT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'zerobus_client.py');
const TABLE = 'main.default.telemetry';
const CLIENTS_PER_SERVER = 2;
const BATCHES = 150;
const RECORDS = 4;

async function client(server, ...args) {
  const r = await run(PY, [CLIENT, `127.0.0.1:${server.port}`, ...args]);
  assert.equal(r.code, 0, `client failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

test('two servers appending to one table lose no commit and duplicate nothing', { timeout: 300000 }, async (t) => {
  const dir = tmpDir('e2e-two-writers');
  const dataRoot = path.join(dir, 'shared-data');
  fs.mkdirSync(dataRoot, { recursive: true });
  const mk = (name) => {
    const d = path.join(dir, name);
    fs.mkdirSync(d);
    // both write the same tables; each has its own WAL (one process per WAL, locked)
    const s = new Server({ dir: d, tables: [TABLE], flushMs: 10, extra: `wal_dir = "${d}/wal";` });
    s.dataRoot = dataRoot;
    return s;
  };
  const a = mk('a');
  const b = mk('b');
  await a.start(); // creates the table
  await b.start();
  const tdir = a.tableDir(TABLE);
  assert.equal(tdir, b.tableDir(TABLE));
  let results;
  try {
    const jobs = [];
    for (const s of [a, b]) {
      for (let i = 0; i < CLIENTS_PER_SERVER; i++) {
        jobs.push(client(s, 'ingest', '--records', String(RECORDS), '--batches', String(BATCHES)).then((r) => ({ ...r, server: s === a ? 'a' : 'b' })));
      }
    }
    results = await Promise.all(jobs);
    const total = results.length * RECORDS * BATCHES;
    const rows = () => replayLog(tdir).live.reduce((n, f) => n + f.numRecords, 0);
    await waitFor(() => rows() >= total, { timeoutMs: 60000, what: `${total} rows` });
    assert.equal(a.proc.exited, null, `server a died\n${a.proc.tail()}`);
    assert.equal(b.proc.exited, null, `server b died\n${b.proc.tail()}`);
  } finally {
    await a.stop();
    await b.stop();
  }
  for (const s of [a, b]) {
    const bad = s.proc.log.filter((l) => /commit failed|materializer:|conflict|orphan/i.test(l));
    assert.deepEqual(bad, [], `server log of ${s.dataRoot}`);
  }

  // The log: contiguous versions, each file one complete commit (JSON lines, final newline).
  const logDir = path.join(tdir, '_delta_log');
  const names = fs.readdirSync(logDir).filter((n) => /^\d{20}\.json$/.test(n)).sort();
  names.forEach((n, i) => assert.equal(Number(n.slice(0, 20)), i, `gap before ${n}`));
  const owner = new Map(results.map((r) => [r.stream_id, r.server]));
  const writers = [];
  for (const n of names.slice(1)) {
    const text = fs.readFileSync(path.join(logDir, n), 'utf8');
    assert.ok(text.endsWith('\n'), `${n} ends with a newline`);
    const acts = text.trimEnd().split('\n').map((l) => JSON.parse(l));
    assert.equal(acts.filter((x) => x.commitInfo).length, 1, `${n}: one commitInfo`);
    assert.equal(acts.filter((x) => x.add).length, 1, `${n}: one add`);
    const ws = new Set(acts.filter((x) => x.txn).map((x) => owner.get(x.txn.appId)));
    assert.equal(ws.size, 1, `${n}: txns of exactly one writer's streams`);
    writers.push([...ws][0]);
  }
  const switches = writers.filter((w, i) => i && w !== writers[i - 1]).length;
  const counts = { a: writers.filter((w) => w === 'a').length, b: writers.filter((w) => w === 'b').length };
  // Many commits from each, taking turns: the two really wrote at the same time.
  assert.ok(counts.a >= 10 && counts.b >= 10, `commits per writer ${JSON.stringify(counts)}`);
  assert.ok(switches >= 10, `the writers took turns only ${switches} times`);
  t.diagnostic(`${names.length} versions, commits per writer ${JSON.stringify(counts)}, ${switches} turns`);

  // Independent readers: both log replays agree, every file read in full by two readers.
  const snap = await verifyTable(tdir);
  const total = results.length * RECORDS * BATCHES;
  assert.equal(snap.rows, total);
  for (const r of results) {
    assert.deepEqual(r.acks, [...Array(BATCHES).keys()]);
    assert.equal(snap.txns[r.stream_id], BATCHES - 1, `txn watermark of ${r.stream_id}`);
  }
  const from = duckFrom(snap.files);
  const per = await query(`SELECT stream_id, count(*) AS n, count(DISTINCT seq) AS d, min(seq) AS lo, max(seq) AS hi
      FROM ${from} GROUP BY stream_id ORDER BY stream_id`);
  assert.deepEqual(per.map((r) => [r.stream_id, Number(r.n), Number(r.d), Number(r.lo), Number(r.hi)]),
    results.map((r) => [r.stream_id, RECORDS * BATCHES, RECORDS * BATCHES, 0, RECORDS * BATCHES - 1])
      .sort((x, y) => (x[0] < y[0] ? -1 : 1)));
  const dups = await query(`SELECT stream_id, seq, count(*) AS c FROM ${from} GROUP BY ALL HAVING count(*) > 1`);
  assert.deepEqual(dups, []);
  const [p] = await query(`SELECT payload FROM ${from} WHERE stream_id = '${results[3].stream_id}' AND seq = 321`);
  assert.equal(p.payload, 'python record 321');

  // Our own tool agrees and finds nothing wrong.
  const v = await run(serverBin, ['table', 'verify', '--json', tdir]);
  assert.equal(v.code, 0, v.stdout + v.stderr);
  const vj = JSON.parse(v.stdout);
  assert.equal(vj.ok, true);
  assert.equal(vj.rows, total);
  assert.equal(vj.version, names.length - 1);
  const d = JSON.parse((await run(serverBin, ['table', 'describe', '--json', tdir])).stdout);
  assert.deepEqual(d.streams, snap.txns);
});

// Each server has its own WAL: killing one and restarting it replays exactly its own
// acknowledged batches, whatever the other server did meanwhile.
test('a kill -9 of one of two writers loses no acknowledged record', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-two-writers-kill');
  const dataRoot = path.join(dir, 'shared-data');
  fs.mkdirSync(dataRoot, { recursive: true });
  const mk = (name) => {
    const d = path.join(dir, name);
    fs.mkdirSync(d);
    const s = new Server({ dir: d, tables: [TABLE], flushMs: 3600000, // never flush on its own
      extra: `wal_dir = "${d}/wal";` });
    s.dataRoot = dataRoot;
    return s;
  };
  const a = mk('a');
  const b = mk('b');
  await a.start();
  await b.start();
  let res;
  try {
    res = await client(a, 'ingest', '--records', '3', '--batches', '2');
    assert.deepEqual(res.acks, [0, 1]);
    await a.kill('SIGKILL');
  } finally {
    await b.stop();
  }
  await a.start(); // recovery: WAL replay, then flush
  await a.stop();
  const snap = replayLog(a.tableDir(TABLE));
  assert.equal(snap.txns[res.stream_id], 1, 'both acked batches are in the table after recovery');
});

test('a second server on the same WAL directory refuses to start', { timeout: 60000 }, async () => {
  const dir = tmpDir('e2e-two-writers-lock');
  const a = new Server({ dir, tables: [TABLE] });
  await a.start();
  try {
    // the same config again: same data_root, same (default) WAL directory
    const r = await run(serverBin, ['-c', a.conf]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /WAL directory .*_wal is in use by another runnel-server/);
  } finally {
    await a.stop();
  }
});
