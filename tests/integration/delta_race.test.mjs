// Several writers on one Delta table: tests/integration/delta_race.c forks K writer processes
// (as K runnel-servers sharing a table), each with its own store object and Delta handle,
// committing M versions each (one data file and one txn per version, a failed commit retried
// with the same file and txn as the materializer does), then reads the table back: versions
// 0..K*M contiguous, every writer's commits once with its txn watermark at its last, no data
// file added twice, every row once. On a throw-away Ceph RGW (lib/rgw.mjs) and on a local
// directory; through a slow store (every answer late: more writers race each version); and
// with answers to commit PUTs lost (single ones settled by the S3 client's read-back, and
// every attempt at some versions: the outcome unknown to the Delta code, settled by reading
// the version back, then the retry finds its txn in the table); and with one writer left
// more versions behind than one commit call races through. The verdict itself is shown to
// catch a doubled and a lost commit. ctest label `s3`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { buildDir, run, tmpDir } from './lib/harness.mjs';
import { rgwForFile } from './lib/rgw.mjs';
import { loseResponse, slowStore } from './lib/s3proxy.mjs';

const raceBin = path.join(buildDir, 'tests', 'integration', 'delta_race');
const BUCKET = 'tables';
const K = 3;
const M = 30;
let rgw;
let runs = 0;
const { check } = rgwForFile([BUCKET], (r) => {
  rgw = r;
});

const freshRoot = () => `s3://${BUCKET}/race-${process.pid}-${++runs}/tables/t`;

// One delta_race run; resolves its JSON verdict (stderr kept, not enumerable, for messages).
// endpoint: the writers' (a proxy's); the verdict reads the store directly.
async function race(root, args = [], { endpoint = rgw?.endpoint } = {}) {
  const ends = endpoint ? ['-e', endpoint, '-v', rgw.endpoint] : [];
  const r = await run(raceBin, [...args.map(String), ...ends, root], {
    env: { PATH: process.env.PATH, ...(rgw ? rgw.awsEnv() : {}), AWS_ENDPOINT_URL: '' },
  });
  assert.equal(r.code, 0, `delta_race ${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
  const res = JSON.parse(r.stdout.trim());
  Object.defineProperty(res, 'stderr', { value: r.stderr });
  return res;
}

// The verdict of a run of K writers × M commits: all checks held, every commit in.
function allIn(res, k = K, m = M) {
  assert.equal(res.ok, true, `${JSON.stringify(res)}\n${res.stderr}`);
  assert.deepEqual(res.per_writer, Array(k).fill(m), JSON.stringify(res));
  assert.equal(res.versions, k * m, JSON.stringify(res));
  assert.ok(res.checks > k * m * 4, JSON.stringify(res));
}

test(`${K} writers × ${M} commits on RGW: no commit lost or doubled`, check(async () => {
  const res = await race(freshRoot(), ['-k', K, '-m', M]);
  allIn(res);
  // the writers did race: versions were found taken and walked past
  assert.ok(res.races > 0, JSON.stringify(res));
  console.log(`# RGW: ${res.commits_per_s} commits/s, ${res.retries_per_commit} conflicts a commit, p50 ${res.lat_ms.p50} ms, p99 ${res.lat_ms.p99} ms`);
}));

test(`${K} writers × ${M} commits on a local directory, and the verdict catches a doubled and a lost commit`, check(async () => {
  const dir = path.join(tmpDir('race'), 't');
  const res = await race(dir, ['-k', K, '-m', M], { endpoint: null });
  allIn(res);
  assert.ok(res.races > 0, JSON.stringify(res));
  assert.equal(res.orphans, 0, JSON.stringify(res));
  allIn(await race(dir, ['-V', '-k', K, '-m', M], { endpoint: null }));

  const log = path.join(dir, '_delta_log');
  const v = (n) => path.join(log, `${String(n).padStart(20, '0')}.json`);
  // a commit doubled: version 7's text again as the next version
  fs.copyFileSync(v(7), v(K * M + 1));
  let bad = await race(dir, ['-V', '-k', K, '-m', M], { endpoint: null });
  assert.equal(bad.ok, false);
  assert.match(bad.stderr, /committed again/);
  fs.rmSync(v(K * M + 1));
  // a commit lost: the last version gone
  fs.renameSync(v(K * M), `${v(K * M)}.away`);
  bad = await race(dir, ['-V', '-k', K, '-m', M], { endpoint: null });
  assert.equal(bad.ok, false);
  assert.match(bad.stderr, /0 of its \d+ rows/);
  fs.renameSync(`${v(K * M)}.away`, v(K * M));
  allIn(await race(dir, ['-V', '-k', K, '-m', M], { endpoint: null }));
}));

test('a writer 1,100 versions behind (more than one commit call races through): refused, retried, in once', check(async () => {
  // writer 0 waits after its first commit until the others made 1,100 versions (a server
  // paused, or idle on this table while the others wrote); its next commit loses a race for
  // each of them: the call gives up after 1,000 (RN_EAGAIN) with nothing written, and its
  // retry lands. A commit call that reported success there lost the commit.
  const dir = path.join(tmpDir('race'), 't');
  const res = await race(dir, ['-k', K, '-m', 600, '-b', 1100], { endpoint: null });
  allIn(res, K, 600);
  assert.ok(res.failed_tries >= 1, JSON.stringify(res));
}));

test('a slow store (every answer 25 ms late): no commit lost or doubled', check(async () => {
  const p = await slowStore(rgw.endpoint, 25);
  try {
    const res = await race(freshRoot(), ['-k', K, '-m', M], { endpoint: p.endpoint });
    allIn(res);
    assert.ok(res.races > 0, JSON.stringify(res));
    // every commit is at least a PUT answered 25 ms late
    assert.ok(res.lat_ms.p50 >= 25, JSON.stringify(res));
  } finally {
    p.close();
  }
}));

// "PUT /tables/race-.../t/_delta_log/00000000000000000042.json?... HTTP/1.1": the version
const commitPut = (head) => /^PUT \S*\/_delta_log\/(\d{20})\.json/.exec(head);

test('answers to commit PUTs lost: settled by reading back, no commit lost or doubled', check(async () => {
  let n = 0;
  let single = 0;
  let whole = 0;
  const p = await loseResponse(rgw.endpoint, (head) => {
    const m = commitPut(head);
    if (!m) return false;
    // every attempt at versions 5, 15, 25...: no answer at all, the outcome stays unknown
    // to the S3 client and the Delta code reads the version back
    if (Number(m[1]) % 10 === 5) return ++whole > 0;
    // and every 4th other answer: the S3 client's retry meets the object and compares
    return ++n % 4 === 0 && ++single > 0;
  }, { all: true });
  try {
    const res = await race(freshRoot(), ['-k', K, '-m', M, '-a', 3], { endpoint: p.endpoint });
    allIn(res);
    assert.ok(single > 0 && whole > 0 && p.lost() === single + whole, `${single} ${whole} ${p.lost()}`);
    // versions 5, 15 ... 85 were each taken by a writer that never heard so: each such
    // commit failed (outcome unknown), and its retry found the txn in the table
    assert.ok(res.unknown >= Math.floor((K * M - 5) / 10) + 1, JSON.stringify(res));
    assert.ok(res.failed_tries >= res.unknown, JSON.stringify(res));
  } finally {
    p.close();
  }
}));
