// The object store the project tests against (a throw-away Ceph RGW from Debian's packages,
// tests/s3/rgw.sh) behaves as a Delta commit protocol on S3 needs, checked with a client we
// did not write (python3-boto3): put-if-absent (If-None-Match: *) refuses an existing key
// with 412 and leaves it unchanged, of N writers racing for one key exactly one wins,
// ListObjectsV2 pages with continuation tokens, multipart uploads read back whole, and a
// restart keeps every object and the put-if-absent refusal. ctest label `s3`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import fs from 'node:fs';
import { Proc, run, tmpDir, waitFor } from './lib/harness.mjs';
import { rgwForFile, rgwScript } from './lib/rgw.mjs';

const BUCKET = 'delta-checks';
let rgw;
const { check } = rgwForFile([BUCKET], (r) => {
  rgw = r;
});

test('put-if-absent: a second PUT with If-None-Match: * gets 412 and leaves the object', check(async () => {
  const first = await rgw.s3('put', BUCKET, '_delta_log/00000000000000000000.json', 'commit A', '--if-none-match');
  assert.equal(first.status, 200);
  const second = await rgw.s3('put', BUCKET, '_delta_log/00000000000000000000.json', 'commit B', '--if-none-match');
  assert.equal(second.status, 412, JSON.stringify(second));
  assert.equal((await rgw.s3('get', BUCKET, '_delta_log/00000000000000000000.json')).body, 'commit A');
  // the header is what refuses: the same PUT without it overwrites (so the 412 above is not
  // some other refusal)
  const plain = await rgw.s3('put', BUCKET, 'scratch/overwrite', 'one');
  assert.equal(plain.status, 200);
  assert.equal((await rgw.s3('put', BUCKET, 'scratch/overwrite', 'two')).status, 200);
  assert.equal((await rgw.s3('get', BUCKET, 'scratch/overwrite')).body, 'two');
}));

test('concurrent put-if-absent on one key: exactly one writer wins each round', check(async () => {
  const WRITERS = 8;
  const ROUNDS = 15;
  const r = await rgw.s3('race', BUCKET, '_delta_log/race', WRITERS, ROUNDS);
  assert.equal(r.rounds.length, ROUNDS);
  for (const round of r.rounds) {
    assert.equal(round.winners.length, 1, `${round.key}: ${JSON.stringify(round.statuses)}`);
    for (const s of round.statuses) assert.ok(s === 200 || s === 412, `${round.key}: ${JSON.stringify(round.statuses)}`);
    // the object holds the winner's body: no loser overwrote it
    assert.equal(round.body, `writer ${round.winners[0]}`, round.key);
  }
}));

test('ListObjectsV2 pages with a continuation token and keeps to the prefix', check(async () => {
  await rgw.s3('fill', BUCKET, 'paged/_delta_log/', 23);
  await rgw.s3('put', BUCKET, 'paged/other', 'not under the prefix');
  const r = await rgw.s3('list', BUCKET, 'paged/_delta_log/', 5);
  const want = Array.from({ length: 23 }, (_, i) => `paged/_delta_log/${String(i).padStart(4, '0')}`);
  assert.deepEqual(r.keys, want);
  assert.deepEqual(r.pages.map((p) => p.n), [5, 5, 5, 5, 3]);
  assert.deepEqual(r.pages.map((p) => p.truncated), [true, true, true, true, false]);
  // copied out whole (how the tests hand a table on the store to DuckDB)
  const dest = tmpDir('rgw-copy');
  assert.equal(await rgw.copyOut(BUCKET, 'paged/', dest), 24);
  assert.equal(fs.readFileSync(path.join(dest, 'paged/_delta_log/0022'), 'utf8'), 'paged/_delta_log/0022');
  assert.equal(fs.readFileSync(path.join(dest, 'paged/other'), 'utf8'), 'not under the prefix');
  fs.rmSync(dest, { recursive: true });
}));

test('multipart upload reads back whole', check(async () => {
  // 3 parts: two of 5 MiB (S3's smallest part but the last) and a shorter last one
  const r = await rgw.s3('multipart', BUCKET, 'data/part-00000.parquet', 3, 5);
  assert.equal(r.size, 2 * (5 << 20) + (5 << 19) + 123);
  assert.equal(r.sha256, r.sha256_sent);
  assert.match(r.etag, /-3"$/, 'a multipart ETag names its part count');
}));

// Pinned so a store upgrade that changes them is noticed: a Delta commit must be one plain
// PUT with If-None-Match: * (never a copy or a multipart completion), and nothing may rely
// on If-Match with the quoted ETag (tests/README.md "S3 and load balancer tests").
test('RGW 16.2 quirks: If-Match wants the unquoted ETag; If-None-Match is ignored on copy and multipart completion', check(async () => {
  const q = await rgw.s3('quirks', BUCKET);
  assert.deepEqual(q, {
    if_match_quoted: 412, if_match_unquoted: 200, copy_if_none_match: 200, complete_if_none_match: 200, body: 'mp',
  });
}));

test('a restart keeps the objects, the endpoint and the put-if-absent refusal', check(async () => {
  const before = await rgw.s3('list', BUCKET, '', 1000);
  const port = rgw.port;
  const t0 = Date.now();
  await rgw.stop();
  // stopped: no daemon left, nothing answers on the endpoint
  assert.equal((await rgw.status()).running, false);
  await assert.rejects(fetch(rgw.endpoint), 'a stopped RGW refuses connections');
  await rgw.start();
  console.log(`# RGW stop + start with data: ${Date.now() - t0} ms (start ${rgw.startMs} ms)`);
  assert.equal(rgw.port, port);
  assert.ok((await rgw.status()).running);
  const afterList = await rgw.s3('list', BUCKET, '', 1000);
  assert.deepEqual(afterList.keys, before.keys);
  assert.equal((await rgw.s3('get', BUCKET, '_delta_log/00000000000000000000.json')).body, 'commit A');
  assert.equal((await rgw.s3('get', BUCKET, 'scratch/overwrite')).body, 'two');
  const again = await rgw.s3('put', BUCKET, '_delta_log/00000000000000000000.json', 'commit C', '--if-none-match');
  assert.equal(again.status, 412);
}));

test('rgw.sh: start refuses a running cluster, a taken port, a foreign directory; radosgw alone killed comes back, the cluster kept', check(async () => {
  const twice = await run(rgwScript, ['start', rgw.dir]);
  assert.equal(twice.code, 1);
  assert.match(twice.stderr, /already running/);
  // a port asked for that is taken: refused before anything is made
  const taken = net.createServer();
  await new Promise((r) => taken.listen(0, '127.0.0.1', r));
  const busy = await run(rgwScript, ['start', path.join(rgw.dir, 'other'), String(taken.address().port)]);
  taken.close();
  assert.equal(busy.code, 1);
  assert.match(busy.stderr, /port \d+ is in use/);
  // a directory it did not make: neither wiped nor filled
  const foreign = tmpDir('rgw-foreign');
  fs.writeFileSync(path.join(foreign, 'precious'), 'keep');
  const refused = await run(rgwScript, ['start', foreign]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /holds precious: not a directory rgw.sh made/);
  assert.deepEqual(fs.readdirSync(foreign), ['precious']);
  fs.rmSync(foreign, { recursive: true });
  const mon = rgw.pid('mon');
  await rgw.kill('rgw');
  const st = await rgw.status();
  assert.equal(st.running, false);
  assert.match(st.text, /rgw stopped/);
  assert.match(st.text, /mon running/);
  await assert.rejects(fetch(rgw.endpoint), 'no gateway, no answer');
  await rgw.start();
  console.log(`# radosgw alone back in ${rgw.startMs} ms`);
  assert.equal(rgw.pid('mon'), mon, 'the monitor was not restarted');
  assert.equal((await rgw.s3('get', BUCKET, 'scratch/overwrite')).body, 'two');
}));

test('rgw.sh: a start that fails stops what it launched and says why; the next start makes it again', check(async () => {
  const dir = tmpDir('rgw-fail');
  // a radosgw that dies at once, first on PATH
  fs.mkdirSync(path.join(dir, 'bin'));
  fs.writeFileSync(path.join(dir, 'bin', 'radosgw'), '#!/bin/sh\necho "radosgw: cannot start (test)" >&2\nexit 1\n', { mode: 0o755 });
  const r = await run(rgwScript, ['start', path.join(dir, 'c')], { env: { ...process.env, PATH: `${dir}/bin:${process.env.PATH}` } });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /rgw exited while waiting for RGW answering/);
  assert.match(r.stderr, /radosgw: cannot start \(test\)/, 'the daemon log tail is shown');
  // the monitor and the OSD it had started are stopped
  for (const d of ['mon', 'osd', 'rgw']) {
    assert.equal(fs.readFileSync(path.join(dir, 'c', 'pids', d), 'utf8').trim(), 'stopped', d);
  }
  const st = await run(rgwScript, ['status', path.join(dir, 'c')]);
  assert.equal(st.code, 3);
  assert.doesNotMatch(st.stdout, /running/);
  fs.rmSync(dir, { recursive: true, force: true });
}));

test('a test process SIGKILLed with its RGW running: the cluster is stopped anyway', check(async () => {
  const dir = tmpDir('rgw-orphan');
  const lib = new URL('./lib/rgw.mjs', import.meta.url).href;
  const child = new Proc('rgw-owner', process.execPath, ['--input-type=module', '-e',
    `import { Rgw } from '${lib}'; const r = await new Rgw({ dir: '${dir}' }).start(); console.log('up', r.endpoint); setInterval(() => {}, 1000);`]);
  await waitFor(() => child.log.some((l) => l.startsWith('up ')) || child.exited,
    { timeoutMs: 120000, what: 'the child RGW up' });
  assert.equal(child.exited, null, child.tail());
  const pids = ['mon', 'osd', 'rgw'].map((d) => Number(fs.readFileSync(path.join(dir, 'pids', d), 'utf8')));
  await child.kill('SIGKILL'); // no exit handler runs
  const gone = (p) => {
    try {
      process.kill(p, 0);
      return false;
    } catch {
      return true;
    }
  };
  // stopped by rgw.sh stop (which marks each daemon stopped once it is gone)
  const marked = () => ['mon', 'osd', 'rgw'].every((d) => fs.readFileSync(path.join(dir, 'pids', d), 'utf8').trim() === 'stopped');
  await waitFor(() => pids.every(gone) && marked(), { timeoutMs: 60000, what: 'the orphaned daemons stopped' });
  fs.rmSync(dir, { recursive: true, force: true });
}));
