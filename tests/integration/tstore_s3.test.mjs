// The table store (server/store/tstore.h) on s3:// roots against a real store, a throw-away
// Ceph RGW (lib/rgw.mjs), driven by the tstore_probe program: every operation of the contract
// on a root with a prefix and on a whole bucket, then the backend-neutral contract every store
// passes (tests/unit/store/tstore_contract.c, two objects racing put_new in two threads); put_new raced by two store objects; listings
// of more than one ListObjectsV2 page; a multipart object mapped; the spool file's failures
// and every allocation failing; an unreachable store. Faults: the gateway killed under a put
// and a put_new (RN_ECONNECT for the put, RN_EIO "unknown" for the put_new, both succeed
// after a restart), a put_new whose answer is lost (settled by reading back: ours, or
// another's, never twice), and one whose read-back is lost too (RN_EIO, the object ours).
// ctest label `s3`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import path from 'node:path';
import { buildDir, run } from './lib/harness.mjs';
import { rgwForFile } from './lib/rgw.mjs';
import { holdRequest, loseResponse } from './lib/s3proxy.mjs';

const probeBin = path.join(buildDir, 'server', 'store', 'tstore_probe');
const BUCKET = 'tables';
const RN_ECONNECT = -302;
const RN_EEXIST = -11;
const RN_EIO = -3;
const RN_ENOTFOUND = -10;
let rgw;
let runs = 0;

const { check } = rgwForFile([BUCKET], (r) => {
  rgw = r;
});

// A fresh table root for one test: nothing of another test is under it.
const freshRoot = () => `s3://${BUCKET}/run-${process.pid}-${++runs}/tables/t`;

// One probe run; resolves its JSON answer. endpoint/env override the store's.
async function probe(root, args, { endpoint = rgw.endpoint, env = {} } = {}) {
  const r = await run(probeBin, [endpoint, root, ...args.map(String)], {
    env: { PATH: process.env.PATH, ...rgw.awsEnv(), AWS_ENDPOINT_URL: '', ...env },
  });
  assert.equal(r.code, 0, `tstore_probe ${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
  const res = JSON.parse(r.stdout.trim());
  Object.defineProperty(res, 'stderr', { value: r.stderr }); // not in JSON.stringify(res)
  return res;
}

// A battery of checks: all passed, and there were some.
async function battery(root, args, opts) {
  const res = await probe(root, args, opts);
  assert.equal(res.ok, true, `${JSON.stringify(res)}\n${res.stderr}`);
  assert.ok(res.checks > 0, JSON.stringify(res));
  return res;
}

const ok = (res) => assert.equal(res.rc, 0, JSON.stringify(res));

// The bytes tstore_probe's putgen makes (xorshift64 of the seed), to compare hashes.
function gen(len, seed) {
  const out = Buffer.alloc(len);
  const M = (1n << 64n) - 1n;
  let x = (BigInt(seed) * 0x9E3779B97F4A7C15n + 1n) & M;
  for (let i = 0; i < len; i++) {
    x ^= (x << 13n) & M;
    x ^= x >> 7n;
    x ^= (x << 17n) & M;
    out[i] = Number((x >> 24n) & 0xffn);
  }
  return out;
}
const sha = (b) => crypto.createHash('sha256').update(b).digest('hex');

test('the contract (S3 checks, then the shared one) on a root with a prefix and on a whole bucket', check(async () => {
  await battery(freshRoot(), ['contract']);
  const whole = await rgw.bucket(`whole-${process.pid}`);
  await battery(`s3://${whole}`, ['contract']);
}));

test('put_new raced by two store objects: one wins each round, the other gets RN_EEXIST', check(async () => {
  const res = await battery(freshRoot(), ['race', 40]);
  assert.equal(res.wins[0] + res.wins[1], 40);
}));

test('listings past one ListObjectsV2 page (1,100 keys): all, in byte order, one level or all', check(async () => {
  await battery(freshRoot(), ['many', 1100]);
}));

test('a multipart object (over the threshold, 5 MiB parts) stats, reads across a part and maps', check(async () => {
  const env = { TSTORE_PROBE_PART_MB: '5', TSTORE_PROBE_THRESHOLD_MB: '6' };
  const res = await battery(freshRoot(), ['big', 12], { env });
  assert.equal(res.parts, 3); // 12 MiB + 12,345 bytes in 5 MiB parts
}));

test('map: the spool file failing to open, write or truncate, and a missing spool directory', check(async () => {
  await battery(freshRoot(), ['mapfault']);
}));

test('every allocation of open and of each operation failing in turn', check(async () => {
  const env = { TSTORE_PROBE_PART_MB: '5', TSTORE_PROBE_THRESHOLD_MB: '5' };
  const res = await battery(freshRoot(), ['allocsweep'], { env });
  assert.ok(res.steps > 50, JSON.stringify(res));
}));

test('an unreachable store: RN_ECONNECT from every operation, no secret in the message', check(async () => {
  await battery(freshRoot(), ['unreachable'], { endpoint: 'http://127.0.0.1:1', env: { TSTORE_PROBE_ATTEMPTS: '2' } });
}));

test('a put_new whose answer is lost is settled by reading back: ours once, or theirs', check(async () => {
  const root = freshRoot();
  const key = '_delta_log/00000000000000000007.json';
  const p = await loseResponse(rgw.endpoint, (head) => head.startsWith('PUT '));
  try {
    const res = await probe(root, ['put_new', key, '{"commitInfo":{"writer":"us"}}'], { endpoint: p.endpoint });
    ok(res);
    assert.equal(p.lost(), 1); // the store took the first PUT; its answer never came
  } finally {
    p.close();
  }
  assert.equal((await probe(root, ['get', key])).text, '{"commitInfo":{"writer":"us"}}');
  // taken once: another writer of that version is refused, and the object is unchanged
  assert.equal((await probe(root, ['put_new', key, '{"commitInfo":{"writer":"them"}}'])).rc, RN_EEXIST);
  assert.equal((await probe(root, ['get', key])).text, '{"commitInfo":{"writer":"us"}}');

  // another writer's version: our lost first answer (a 412) and the retry's 412 read back
  const key2 = '_delta_log/00000000000000000008.json';
  ok(await probe(root, ['put_new', key2, 'theirs']));
  const q = await loseResponse(rgw.endpoint, (head) => head.startsWith('PUT '));
  try {
    const res = await probe(root, ['put_new', key2, 'ours'], { endpoint: q.endpoint });
    assert.equal(res.rc, RN_EEXIST, JSON.stringify(res));
    assert.equal(q.lost(), 1);
  } finally {
    q.close();
  }
  assert.equal((await probe(root, ['get', key2])).text, 'theirs');

  // every answer lost, the read-back's too: the outcome stays unknown, RN_EIO (never 0 or
  // RN_EEXIST), and the object is there: it was ours, as a caller re-reading the log finds
  const key3 = '_delta_log/00000000000000000009.json';
  const r = await loseResponse(rgw.endpoint, () => true, { all: true });
  try {
    const res = await probe(root, ['put_new', key3, 'ours, unknown'],
      { endpoint: r.endpoint, env: { TSTORE_PROBE_ATTEMPTS: '3' } });
    assert.equal(res.rc, RN_EIO, JSON.stringify(res));
    assert.match(res.msg, /outcome unknown/);
    assert.ok(r.lost() >= 2, String(r.lost()));
  } finally {
    r.close();
  }
  assert.equal((await probe(root, ['get', key3])).text, 'ours, unknown');
}));

test('the gateway killed under a put and a put_new: RN_ECONNECT and RN_EIO, then both succeed once', check(async () => {
  const root = freshRoot();
  const len = 4 << 20; // several TCP windows: the requests are held mid-body
  const want = sha(gen(len, 11));
  const data = 'data/part-00000.parquet';
  const commit = '_delta_log/00000000000000000003.json';
  const env = { TSTORE_PROBE_ATTEMPTS: '3' };
  const h = await holdRequest(rgw.endpoint, (head) => head.startsWith('PUT '), { count: 2 });
  try {
    const put = probe(root, ['putgen', data, len, 11], { endpoint: h.endpoint, env });
    const putNew = probe(root, ['put_newgen', commit, len, 12], { endpoint: h.endpoint, env });
    await h.held; // both PUTs are in flight, the store has their heads and no more
    await rgw.kill('rgw');
    h.release();
    const [a, b] = await Promise.all([put, putNew]);
    // a put is repeatable: unreachable after its retries
    assert.equal(a.rc, RN_ECONNECT, JSON.stringify(a));
    assert.ok(a.msg.length > 0 && !a.msg.includes(rgw.secretKey), a.msg);
    // a put_new cut after sending may have been applied as far as the client knows
    assert.equal(b.rc, RN_EIO, JSON.stringify(b));
    assert.match(b.msg, /outcome unknown/);
  } finally {
    h.close();
  }
  // while the gateway is down a put_new is refused before anything is sent: known not applied
  const down = await probe(root, ['put_new', '_delta_log/00000000000000000004.json', 'v4'], { env });
  assert.equal(down.rc, RN_ECONNECT, JSON.stringify(down));

  await rgw.start(); // the gateway alone comes back, with its data
  const again = await probe(root, ['putgen', data, len, 11]);
  ok(again);
  assert.equal(again.sha256, want);
  const back = await probe(root, ['hash', data]);
  ok(back);
  assert.equal(back.len, len);
  assert.equal(back.sha256, want);
  // the half-sent commit was never stored: the version is free and is taken exactly once
  assert.equal((await probe(root, ['stat', commit])).rc, RN_ENOTFOUND);
  const c = await probe(root, ['put_newgen', commit, len, 12]);
  ok(c);
  assert.equal((await probe(root, ['put_newgen', commit, len, 12])).rc, RN_EEXIST);
  assert.equal((await probe(root, ['hash', commit])).sha256, c.sha256);
  ok(await probe(root, ['put_new', '_delta_log/00000000000000000004.json', 'v4']));
}));
