// Creates answered as they come (issue 13): many creates that arrive at once are handled a
// bounded number per loop pass (RN_STREAM_CREATES_PER_PASS, core/stream.h); each pass ends,
// its registry group is made durable and its answers go out before the next creates are
// read. To have them arrive at once whatever the machine's speed, the server is stopped
// (SIGSTOP) while bench/zb_load connects 20 connections and sends 3,000 creates into the
// kernel's socket buffers, then continued: the states it exposes in /metrics show that no
// pass took more than its share, that answers went out while read creates still waited
// (registry_entries_answered_ahead_total), and every create was answered once its entry was
// durable (all 3,000 registered after a restart).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Server, buildDir, run, tmpDir, waitFor } from './lib/harness.mjs';

const LOAD = path.join(buildDir, 'bench', 'zb_load');
const TABLE = 'bench.default.creates';
const PER_PASS = 256; // RN_STREAM_CREATES_PER_PASS
const CONNS = 20;
const PER_CONN = 150;
const N = CONNS * PER_CONN;

// Bytes the server has not read yet on each of its connections to `port` (ss Recv-Q).
async function unread(port) {
  const r = await run('ss', ['-Htn', 'state', 'established', `( sport = :${port} )`]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.split('\n').filter((l) => l.trim()).map((l) => Number(l.trim().split(/\s+/)[0]));
}

test('3,000 creates arriving at once are answered group by group, not all after the last is read', { timeout: 180000 }, async (t) => {
  const dir = tmpDir('e2e-creates');
  const server = await new Server({
    dir, tables: [TABLE], metrics: true,
    extra: `max_streams_per_connection = ${PER_CONN};\nmax_persistent_streams = ${N + 10};\nrefuse_throttle = 0;`,
  }).start();
  const pid = server.proc.child.pid;
  let stopped = false;
  try {
    process.kill(pid, 'SIGSTOP');
    stopped = true;
    // closed loop, one 1-record batch per stream once created, then half-close
    const load = run(LOAD, ['--json', '-s', String(N), '-C', String(PER_CONN), '-b', '1',
      '--record-bytes', '100', '-n', String(N * 164), '-w', '1', '--drain', '60',
      `127.0.0.1:${server.port}`, TABLE]);
    // every connection has well over a share's worth of creates waiting in the kernel: at
    // least 40 creates' frame headers each (2 frames x 9 bytes), 800 > PER_PASS in all
    await waitFor(async () => {
      const q = await unread(server.port);
      return q.length === CONNS && q.every((b) => b >= 40 * 18);
    }, { timeoutMs: 60000, what: `${CONNS} connections with creates unread` });
    process.kill(pid, 'SIGCONT');
    stopped = false;
    const r = await load;
    assert.equal(r.code, 0, `zb_load failed: ${r.stderr}`);
    const j = JSON.parse(r.stdout);
    assert.equal(j.streams_created, N, 'every create answered');
    assert.equal(j.errors_total, 0, JSON.stringify(j.errors));
    assert.equal(j.unacked, 0);
    assert.equal(j.create_ms.n, N);
    assert.ok(j.create_ms.first > 0 && j.create_ms.p50 <= j.create_ms.max + 1, JSON.stringify(j.create_ms));

    const m = await server.metrics();
    t.diagnostic(`creates ms: first ${j.create_ms.first}, p50 ${j.create_ms.p50}, max ${j.create_ms.max}; ` +
      `commits ${m('registry_commits_total')}, yields ${m('front_yields_total')}, ` +
      `deferred ${m('front_conns_deferred_total')}, answered ahead ${m('registry_entries_answered_ahead_total')}`);
    // the first pass had them all to read; it took exactly its share, and so did every pass
    assert.equal(m('creates_pass_max'), PER_PASS, 'a pass handles at most its share');
    assert.equal(m('registry_entries_total'), N);
    assert.ok(m('registry_commits_total') >= Math.ceil(N / PER_PASS),
      `${m('registry_commits_total')} group commits`);
    assert.ok(m('front_yields_total') >= Math.floor((800 - 1) / PER_PASS),
      `${m('front_yields_total')} passes ended early`);
    assert.ok(m('front_conns_deferred_total') >= CONNS - 1, 'the other connections waited their turn');
    // answered while creates already read still waited: at least every group but the
    // last of the ~800 the first pass found
    assert.ok(m('registry_entries_answered_ahead_total') >= PER_PASS * 2,
      `${m('registry_entries_answered_ahead_total')} answered ahead`);

    // every answered create was durable: all are registered after a restart
    await server.stop();
    const entries = fs.readdirSync(path.join(server.dataRoot, '_streams')).filter((f) => !f.includes('.'));
    assert.equal(entries.length, N, 'one registry entry per answered create');
  } finally {
    if (stopped)
      process.kill(pid, 'SIGCONT');
    await server.stop();
  }
});
