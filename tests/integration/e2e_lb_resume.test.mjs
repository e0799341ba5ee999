// A persistent stream resumed through HAProxy on another server after its first server was
// killed (SIGKILL) with acked batches in its WAL that were never committed to the table (a
// flush interval of an hour): the other server, sharing the data root, answers the resume
// with the table's txn watermark for the stream (none: lower than the acks the client had),
// the client sends again from there and goes on; the killed server, restarted later,
// replays its WAL, and the table skips every batch at or below the watermark another server
// committed meanwhile: every record exactly once, in order (DuckDB). This is the case
// tests/s3 found by hand (reference: "answered NOT_FOUND unknown stream_id"). ctest label s3
// (HAProxy).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Server, tmpDir, waitFor, zbClient } from './lib/harness.mjs';
import { Haproxy } from './lib/haproxy.mjs';
import { duckFrom, query, replayLog, verifyTable } from './lib/table.mjs';

const TABLE = 'main.default.telemetry';
const RECORDS = 5;

test('HAProxy: a stream whose server was killed before its flush resumes on the other at the table watermark; the restarted server duplicates nothing', { timeout: 180000 }, async (t) => {
  const dir = tmpDir('e2e-lb-resume');
  const dataRoot = path.join(dir, 'shared-data');
  fs.mkdirSync(dataRoot, { recursive: true });
  const mk = (name, opts) => {
    const d = path.join(dir, name);
    fs.mkdirSync(d);
    const s = new Server({ dir: d, tables: [TABLE], metrics: true, extra: `wal_dir = "${d}/wal";`, ...opts });
    s.dataRoot = dataRoot;
    return s;
  };
  // A commits nothing on its own for an hour: its acks are in its WAL only
  const a = mk('a', { flushMs: 3600000 });
  const b = mk('b', { flushMs: 100 });
  const tdir = a.tableDir(TABLE);
  let lb;
  let id;
  let barrier;
  try {
    await a.start();
    // B runs (it has read the registry: the stream below is made after that) but is not a
    // backend yet: HAProxy sends the create to A
    await b.start();
    lb = await new Haproxy({ dir, backends: [{ port: a.port }], checkMs: 200 }).start();
    await lb.waitUp(1);
    const via = { port: lb.port };
    const fill = await zbClient(via, 'fill', '--batches', '6', '--records', String(RECORDS));
    assert.equal(fill.code, 'OK', JSON.stringify(fill));
    assert.deepEqual(fill.acks, [0, 1, 2, 3, 4, 5]);
    id = fill.stream_id;
    assert.ok(a.proc.log.some((l) => l.includes(`stream ${id} created`)), 'the create went to A');
    assert.equal(replayLog(tdir).txns[id], undefined, 'nothing of the stream committed yet');

    await lb.reload({ backends: [{ port: a.port }, { port: b.port }] });
    await lb.waitUp(2);
    await a.kill('SIGKILL');
    // what A acked is in its WAL only, and comes back when A restarts
    const walText = fs.readdirSync(path.join(dir, 'a', 'wal'))
      .map((n) => fs.readFileSync(path.join(dir, 'a', 'wal', n)).toString('latin1')).join('');
    assert.ok(walText.includes(`python record ${6 * RECORDS - 1}`), 'the last acked record is in A\'s WAL');

    // resumed through HAProxy: calls to the dead A fail (UNAVAILABLE) and are made again
    // until B answers
    const cont = await zbClient(via, 'continue', '--stream-id', id, '--batches', '10', '--records', String(RECORDS),
      '--connect-timeout', '30');
    assert.equal(cont.code, 'OK', JSON.stringify(cont));
    t.diagnostic(`resume answered after ${cont.attempts} call(s)`);
    assert.equal(cont.resumed_at, -1, 'B answers the table watermark (none), lower than A\'s acks');
    assert.deepEqual(cont.acks, [...Array(10).keys()], 'the client sent everything again from 0');
    assert.equal(await b.metric('streams_taken_over_total'), 1);
    await waitFor(() => replayLog(tdir).txns[id] === 9, { timeoutMs: 30000, what: 'B committed offsets 0..9' });

    // A comes back (same WAL, flushing often now) and replays its WAL: offsets 0..5 again
    a.flushMs = 100;
    await a.start();
    // a new stream on A: once its batch is in the table, A's first flush round (the replayed
    // batches were added before it) has committed whatever it was going to
    const bar = await zbClient(a, 'fill', '--batches', '1', '--records', '3');
    assert.deepEqual(bar.acks, [0]);
    barrier = bar.stream_id;
    await waitFor(() => replayLog(tdir).txns[barrier] === 0, { timeoutMs: 30000, what: 'the barrier stream committed by A' });
  } finally {
    if (lb) await lb.stop();
    await a.stop();
    await b.stop();
  }
  for (const s of [a, b]) {
    const bad = s.proc.log.filter((l) => /commit failed|conflict|orphan/i.test(l));
    assert.deepEqual(bad, [], 'server log');
  }
  const snap = await verifyTable(tdir);
  assert.equal(snap.txns[id], 9);
  const from = duckFrom(snap.files);
  const per = await query(`SELECT count(*) AS n, count(DISTINCT seq) AS d, min(seq) AS lo, max(seq) AS hi
      FROM ${from} WHERE stream_id = '${id}'`);
  assert.deepEqual(per.map((r) => [Number(r.n), Number(r.d), Number(r.lo), Number(r.hi)]),
    [[10 * RECORDS, 10 * RECORDS, 0, 10 * RECORDS - 1]], 'every record of the stream exactly once');
  const [bar] = await query(`SELECT count(*) AS n FROM ${from} WHERE stream_id = '${barrier}'`);
  assert.equal(Number(bar.n), 3);
});
