// A persistent stream resumed on another server (issue 14, "Drain"): two runnel-servers share
// one data_root (its tables and its stream registry _streams/), each with its own WAL, both
// started before the stream exists. A python3-grpcio client creates the stream on A and sends
// batches; A is stopped with SIGTERM after their acks (its drain commits them to the table);
// the client resumes on B, which has never seen the stream: B reads its registry entry, takes
// it over and answers last_committed_offset = the table's txn watermark for the stream. The
// client goes on from there on B; every record is in the table exactly once, in order
// (DuckDB). Unknown ids and ephemeral streams are still NOT_FOUND on B.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Server, tmpDir, waitFor, zbClient } from './lib/harness.mjs';
import { duckFrom, query, replayLog, verifyTable } from './lib/table.mjs';

const TABLE = 'main.default.telemetry';
const RECORDS = 4;

// Two servers on one data root, each with its own WAL.
function pair(dir, opts = {}) {
  const dataRoot = path.join(dir, 'shared-data');
  fs.mkdirSync(dataRoot, { recursive: true });
  return ['a', 'b'].map((name) => {
    const d = path.join(dir, name);
    fs.mkdirSync(d);
    const s = new Server({ dir: d, tables: [TABLE], metrics: true, extra: `wal_dir = "${d}/wal";`, ...opts });
    s.dataRoot = dataRoot;
    return s;
  });
}

const rows = (tdir) => replayLog(tdir).live.reduce((n, f) => n + f.numRecords, 0);

test('a persistent stream stopped on one server resumes on another at the table watermark; every record once', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-resume');
  const [a, b] = pair(dir);
  await a.start(); // creates the table
  await b.start(); // reads the registry now: the stream below is made after this
  const tdir = a.tableDir(TABLE);
  let id;
  let eph;
  try {
    const fill = await zbClient(a, 'fill', '--batches', '5', '--records', String(RECORDS));
    assert.equal(fill.code, 'OK', JSON.stringify(fill));
    assert.deepEqual(fill.acks, [0, 1, 2, 3, 4]);
    id = fill.stream_id;
    eph = await zbClient(a, 'ephemeral', '--batches', '1', '--records', '2');
    assert.deepEqual(eph.acks, [0]);

    // SIGTERM: A drains (its WAL committed to the table) and exits
    const ex = await a.stop();
    assert.equal(ex.code, 0, a.proc.tail());
    assert.equal(replayLog(tdir).txns[id], 4, 'A committed its acked batches on SIGTERM');

    const before = await b.metric('streams_taken_over_total');
    assert.equal(before, 0);
    const cont = await zbClient(b, 'continue', '--stream-id', id, '--batches', '12', '--records', String(RECORDS));
    assert.equal(cont.code, 'OK', JSON.stringify(cont));
    assert.equal(cont.resumed_at, 4, 'B answers the table watermark');
    assert.deepEqual(cont.acks, [5, 6, 7, 8, 9, 10, 11]);
    assert.equal(await b.metric('streams_taken_over_total'), 1);
    assert.ok(b.proc.log.some((l) => l.includes(`stream ${id} of table ${TABLE} taken over`)), b.proc.tail());
    // a second resume on B: the stream is held now (not taken over again), at its durable offset
    const again = await zbClient(b, 'continue', '--stream-id', id, '--batches', '12', '--records', String(RECORDS));
    assert.equal(again.code, 'OK', JSON.stringify(again));
    assert.equal(again.resumed_at, 11);
    assert.deepEqual(again.acks, []);
    assert.equal(await b.metric('streams_taken_over_total'), 1);

    // nothing to resume: an id no server made, an ephemeral stream of A's
    const unknown = await zbClient(b, 'status', '--case', 'unknown-resume');
    assert.equal(unknown.code, 'NOT_FOUND');
    const ephResume = await zbClient(b, 'status', '--case', 'resume', '--stream-id', eph.stream_id, '--batches', '1');
    assert.equal(ephResume.code, 'NOT_FOUND', JSON.stringify(ephResume));
    for (const bad of ['../_streams', '.x.tmp', `${id}.desc`]) {
      const r = await zbClient(b, 'status', '--case', 'resume', '--stream-id', bad, '--batches', '0');
      assert.equal(r.code, 'NOT_FOUND', `${bad}: ${JSON.stringify(r)}`);
    }
    assert.equal(await b.metric('streams_taken_over_total'), 1);

    const want = 12 * RECORDS + 2;
    await waitFor(() => rows(tdir) >= want, { timeoutMs: 30000, what: `${want} rows` });
  } finally {
    await a.kill();
    await b.stop();
  }
  const snap = await verifyTable(tdir);
  assert.equal(snap.txns[id], 11);
  const per = await query(`SELECT count(*) AS n, count(DISTINCT seq) AS d, min(seq) AS lo, max(seq) AS hi
      FROM ${duckFrom(snap.files)} WHERE stream_id = '${id}'`);
  assert.deepEqual(per.map((r) => [Number(r.n), Number(r.d), Number(r.lo), Number(r.hi)]),
    [[12 * RECORDS, 12 * RECORDS, 0, 12 * RECORDS - 1]]);
});

// Both servers hold uncommitted batches of the stream at once: the client left A (its call
// ended) with offsets 0..5 acked and in A's WAL only, and resumed on B, which answered the
// table's watermark (none) and took 0..9 again. Whichever commits second must not add the
// offsets the first one committed: A drains first (offsets 0..5 in the table), then B.
test('two servers holding overlapping uncommitted batches of one stream commit each record once', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-resume-overlap');
  const [a, b] = pair(dir, { flushMs: 3600000 });
  await a.start();
  await b.start();
  const tdir = a.tableDir(TABLE);
  let id;
  try {
    const fill = await zbClient(a, 'fill', '--batches', '6', '--records', String(RECORDS));
    assert.deepEqual(fill.acks, [0, 1, 2, 3, 4, 5]);
    id = fill.stream_id;
    const cont = await zbClient(b, 'continue', '--stream-id', id, '--batches', '10', '--records', String(RECORDS));
    assert.equal(cont.code, 'OK', JSON.stringify(cont));
    assert.equal(cont.resumed_at, -1, 'nothing in the table yet: B vouches for nothing of A\'s');
    assert.deepEqual(cont.acks, [...Array(10).keys()]);
    assert.equal(replayLog(tdir).txns[id], undefined);
    assert.equal((await a.stop()).code, 0, a.proc.tail());
    assert.equal(replayLog(tdir).txns[id], 5, 'A drained offsets 0..5 into the table');
    await b.stop();
    assert.ok(b.proc.log.some((l) => l.includes('another writer committed some of these streams\' offsets; rebuilding')),
      `B found the overlap\n${b.proc.tail()}`);
    // B's drain may leave its rebuilt rows to its next run: a restart replays its WAL
    b.flushMs = 100;
    await b.start();
    await waitFor(() => replayLog(tdir).txns[id] === 9, { timeoutMs: 30000, what: 'offsets 6..9 committed' });
  } finally {
    await a.kill();
    await b.stop();
  }
  const snap = await verifyTable(tdir);
  const per = await query(`SELECT count(*) AS n, count(DISTINCT seq) AS d, min(seq) AS lo, max(seq) AS hi
      FROM ${duckFrom(snap.files)} WHERE stream_id = '${id}'`);
  assert.deepEqual(per.map((r) => [Number(r.n), Number(r.d), Number(r.lo), Number(r.hi)]),
    [[10 * RECORDS, 10 * RECORDS, 0, 10 * RECORDS - 1]], 'every record of the stream exactly once');
});

// A server starting beside a running one leaves the files of streams it does not know: they
// are the other's live ephemeral streams (their principal, descriptor and clock, which that
// server's WAL replay needs after a crash). Alone, a server still sweeps them.
test('a server starting beside another keeps the other\'s ephemeral stream files', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-resume-sweep');
  const [a, b] = pair(dir, { flushMs: 3600000 });
  await a.start();
  const streams = path.join(a.dataRoot, '_streams');
  try {
    const eph = await zbClient(a, 'ephemeral', '--batches', '1', '--records', '2');
    assert.deepEqual(eph.acks, [0]);
    const owner = path.join(streams, `${eph.stream_id}.owner`);
    assert.ok(fs.existsSync(owner));
    await b.start();
    assert.ok(b.proc.log.some((l) => l.includes('another server shares the stream registry')), b.proc.tail());
    assert.ok(fs.existsSync(owner), 'B left A\'s ephemeral stream file');
    await b.stop();
    // A killed and back: its WAL replay had the file; once the stream is committed A
    // forgets its files itself
    await a.kill();
    a.flushMs = 100;
    await a.start();
    await waitFor(() => !fs.existsSync(owner), { timeoutMs: 30000, what: 'A forgot its ended ephemeral stream' });
    const tdir = a.tableDir(TABLE);
    assert.equal(rows(tdir), 2);
    // a file of no stream any server knows: swept by a server starting alone
    const stray = path.join(streams, 'no-such-stream.owner');
    fs.writeFileSync(stray, 'nobody\n');
    await a.stop();
    await b.start();
    await waitFor(() => !fs.existsSync(stray), { timeoutMs: 30000, what: 'the stray file swept by B alone' });
  } finally {
    await a.kill();
    await b.stop();
  }
});
