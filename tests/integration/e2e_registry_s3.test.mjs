// The stream registry on the table store: two runnel-servers that share nothing but the S3
// bucket (each its own data_root, so its own `_streams/` registry and WAL; one table_root on
// a throw-away Ceph RGW), behind HAProxy. The agent's persistent stream is created on server
// A, whose flush interval is an hour, so what A acks sits in its WAL only. A is SIGKILLed
// and its whole data_root deleted: the agent resumes its stream through the balancer on B,
// which has never heard of it locally, reads its registry entry from the store and answers
// the resume at the table's watermark (none); the agent sends everything again and every
// line is in the table exactly once, in order, under the stream id A made (the table's txn
// appId). A Zerobus client then checks the failure answers: an unknown id is NOT_FOUND, a
// known id resumed under another table's header is NOT_FOUND, and with the store stopped a
// resume of an id B does not know is UNAVAILABLE (retry, never "start over") and a create is
// UNAVAILABLE, leaving no entry locally nor in the bucket; RetireStream deletes the entry
// from the bucket, and one whose delete fails (the store refuses it) still retires the stream
// on B (a resume is NOT_FOUND, the entry left in the bucket is not read back) and counts the
// error; B's next start deletes the entry. ctest label `s3`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ServerPair } from './lib/failover.mjs';
import { Server, run, tmpDir, waitFor } from './lib/harness.mjs';
import { rgwForFile } from './lib/rgw.mjs';
import { refuseRequests } from './lib/s3proxy.mjs';
import { duckFrom, query, verifyTable } from './lib/table.mjs';

const PY = '/usr/bin/python3';
const CLIENT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'zerobus_client.py');
const BUCKET = 'runnel-registry';
const TABLE = 'main.default.telemetry';
const OTHER = 'main.default.other';
const N = 300;

let rgw;
const { check } = rgwForFile([BUCKET], (r) => {
  rgw = r;
});

async function client(port, ...args) {
  const r = await run(PY, [CLIENT, `127.0.0.1:${port}`, ...args]);
  const last = r.stdout.trim().split('\n').pop();
  return { exit: r.code, stderr: r.stderr, ...(last && last.startsWith('{') ? JSON.parse(last) : {}) };
}

test('a stream created on one server is resumed on another that shares only the bucket: its registry entry is on the store; every line exactly once, in order', { timeout: 480000 }, check(async (t) => {
  const dir = tmpDir('e2e-registry-s3');
  // B reaches the store through a proxy that can refuse the deletes of registry entries
  const proxy = await refuseRequests(rgw.endpoint);
  const mk = (name, flushMs, endpoint = rgw.endpoint) => {
    const d = path.join(dir, name);
    fs.mkdirSync(d);
    return new Server({ dir: d, tables: [TABLE, OTHER], flushMs, metrics: true, env: rgw.awsEnv(), extra: [
      `table_root = "s3://${BUCKET}/tables";`,
      `s3_endpoint = "${endpoint}";`,
      `s3_region = "${rgw.region}";`,
      's3_max_attempts = 2;',
    ].join('\n') });
  };
  const a = mk('a', 3600000);
  const b = mk('b', 100, proxy.endpoint);
  assert.notEqual(a.dataRoot, b.dataRoot, 'each server its own data_root');
  const pair = new ServerPair({ dir, a, b, n: N });
  const stream = () => pair.stream();
  let id;
  try {
    const st = await pair.start();
    id = st.server_stream_id;
    assert.equal(st.committed, -1, 'nothing in the table yet: A holds it all in its WAL');
    // the entry is on the store before the create was answered
    const objs = (await rgw.s3('list', BUCKET, 'tables/_runnel/streams/', 100)).keys;
    assert.deepEqual(objs, [`tables/_runnel/streams/${id}`]);

    // A and its whole disk are lost; only B serves
    await pair.loseA();
    fs.rmSync(a.dataRoot, { recursive: true, force: true });
    const bLogged = (re) => b.proc.log.some((l) => re.test(l));
    await waitFor(() => bLogged(new RegExp(`stream ${id} of table ${TABLE} read from the table store`)),
      { timeoutMs: 60000, what: 'B reading the stream from the store' });
    await waitFor(() => {
      const s = stream();
      return s.connected && s.committed === st.acked && s.retained_bytes === 0 && s.server_stream_id === id;
    }, { timeoutMs: 90000, what: 'B committed every line under the same stream id' });
    assert.equal(await b.metric('registry_store_reads_total'), 1);
    assert.equal(await b.metric('registry_store_errors_total'), 0);
    assert.ok(bLogged(new RegExp(`stream ${id} resumed at -1`)), 'B resumed it at the table\'s watermark');
    await pair.stopAgent();

    // the failure answers, straight to B
    let r = await client(b.port, 'status', '--case', 'unknown-resume', '--table', TABLE);
    assert.equal(r.code, 'NOT_FOUND', JSON.stringify(r));
    // an id B has never seen, registered on the store for TABLE by a create on B's port...
    const made = await client(b.port, 'ingest', '--table', TABLE, '--records', '2', '--batches', '2');
    assert.equal(made.exit, 0, made.stderr);
    assert.deepEqual(made.acks, [0, 1]);
    // B forgets it (restarted with its local entry gone): only the store knows it now
    await b.stop();
    for (const f of fs.readdirSync(path.join(b.dataRoot, '_streams')).filter((x) => x.startsWith(made.stream_id))) {
      fs.rmSync(path.join(b.dataRoot, '_streams', f));
    }
    await b.start();
    // under another table's header: NOT_FOUND, as for a local entry of another table
    r = await client(b.port, 'status', '--case', 'resume', '--stream-id', made.stream_id, '--table', OTHER, '--batches', '2');
    assert.equal(r.code, 'NOT_FOUND', JSON.stringify(r));
    assert.equal(await b.metric('registry_store_reads_total'), 0, 'not taken from the store');
    // store down: a resume of an id B does not hold locally is UNAVAILABLE, a create too
    await rgw.kill('rgw');
    r = await client(b.port, 'status', '--case', 'resume', '--stream-id', made.stream_id, '--table', TABLE, '--batches', '2');
    assert.equal(r.code, 'UNAVAILABLE', JSON.stringify(r));
    const entries = () => fs.readdirSync(path.join(b.dataRoot, '_streams')).filter((f) => !f.includes('.')).sort();
    const entriesBefore = entries();
    r = await client(b.port, 'status', '--case', 'write', '--table', TABLE);
    assert.equal(r.code, 'UNAVAILABLE', JSON.stringify(r));
    assert.deepEqual(entries(), entriesBefore, 'the refused create left no registry entry');
    assert.ok(await b.metric('registry_store_errors_total') >= 2);
    await rgw.start();
    // back up: the same resume succeeds, at the table's watermark of that stream
    const seen = new Set();
    await waitFor(async () => {
      const x = await client(b.port, 'status', '--case', 'resume', '--stream-id', made.stream_id, '--table', TABLE, '--batches', '2');
      seen.add(x.code);
      return x.code === 'OK';
    }, { timeoutMs: 60000, intervalMs: 500, what: 'the resume once the store is back' });
    assert.deepEqual([...seen].filter((c) => c !== 'OK' && c !== 'UNAVAILABLE'), [], 'only retries until then');
    assert.equal(await b.metric('registry_store_reads_total'), 1, 'read from the store this time');
    const stored = async () => (await rgw.s3('list', BUCKET, 'tables/_runnel/streams/', 100)).keys.sort();
    // nothing of the refused create on the store either: the two streams made
    assert.deepEqual(await stored(), [id, made.stream_id].map((x) => `tables/_runnel/streams/${x}`).sort());
    // RetireStream removes the entry from the store too
    r = await client(b.port, 'retire', '--stream-id', made.stream_id, '--table', TABLE);
    assert.equal(r.code, 'OK', JSON.stringify(r));
    await waitFor(async () => (await stored()).length === 1, { timeoutMs: 30000, what: 'the entry deleted from the store' });
    assert.deepEqual(await stored(), [`tables/_runnel/streams/${id}`]);

    // a RetireStream whose delete on the store fails (the store refuses it, 503): answered,
    // logged and counted, and the stream is retired here all the same: a resume is
    // NOT_FOUND, the entry that stayed in the bucket is not read back; B's next start
    // deletes the entry
    const third = await client(b.port, 'ingest', '--table', TABLE, '--records', '2', '--batches', '2');
    assert.equal(third.exit, 0, third.stderr);
    assert.deepEqual(await stored(), [id, third.stream_id].map((x) => `tables/_runnel/streams/${x}`).sort());
    const errorsBefore = await b.metric('registry_store_errors_total');
    const readsBefore = await b.metric('registry_store_reads_total');
    const mark = path.join(b.dataRoot, '_streams', `${third.stream_id}.retired`);
    proxy.refuse((head) => head.startsWith(`DELETE /${BUCKET}/tables/_runnel/streams/${third.stream_id}`));
    r = await client(b.port, 'retire', '--stream-id', third.stream_id, '--table', TABLE);
    assert.equal(r.code, 'OK', JSON.stringify(r));
    await waitFor(() => bLogged(new RegExp(`stream ${third.stream_id} retired: its registry entry on the table store stays`)),
      { timeoutMs: 60000, what: 'the failed delete logged' });
    assert.ok(proxy.refused() >= 1);
    assert.equal(await b.metric('registry_store_errors_total'), errorsBefore + 1);
    assert.ok(fs.existsSync(mark), 'marked retired');
    assert.deepEqual(await stored(), [id, third.stream_id].map((x) => `tables/_runnel/streams/${x}`).sort(), 'the entry stayed on the store');
    const resumeThird = () => client(b.port, 'status', '--case', 'resume', '--stream-id', third.stream_id, '--table', TABLE, '--batches', '2');
    r = await resumeThird();
    assert.equal(r.code, 'NOT_FOUND', JSON.stringify(r));
    assert.equal(await b.metric('registry_store_reads_total'), readsBefore, 'not read back from the store');
    proxy.refuse(null);
    await b.stop();
    await b.start();
    await waitFor(async () => (await stored()).length === 1, { timeoutMs: 30000, what: 'the entry deleted at the next start' });
    assert.deepEqual(await stored(), [`tables/_runnel/streams/${id}`]);
    await waitFor(() => !fs.existsSync(mark), { what: 'the mark lifted' });
    r = await resumeThird();
    assert.equal(r.code, 'NOT_FOUND', JSON.stringify(r));
  } finally {
    await pair.stop();
    proxy.close();
  }
  const dest = tmpDir('e2e-registry-s3-copy');
  assert.ok(await rgw.copyOut(BUCKET, 'tables/', dest) > 0);
  const snap = await verifyTable(path.join(dest, 'tables', ...TABLE.split('.')));
  assert.equal(snap.txns[id], N / 10 - 1, 'the txn of the stream id A made: every offset committed');
  const rows = await query(`SELECT count(*) AS n, count(DISTINCT seq) AS d, min(seq) AS lo, max(seq) AS hi,
      count(*) FILTER (WHERE CAST(split_part(payload, ' ', 2) AS BIGINT) <> seq) AS bad
      FROM ${duckFrom(snap.files)} WHERE stream_id = '${id}'`);
  assert.deepEqual(rows.map((x) => [Number(x.n), Number(x.d), Number(x.lo), Number(x.hi), Number(x.bad)])[0],
    [N, N, 0, N - 1, 0], 'every line exactly once, in order');
}));
