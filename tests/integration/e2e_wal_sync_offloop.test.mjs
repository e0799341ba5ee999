// The WAL's write + fdatasync run off the event loop (server/README.md "Threads"): while one
// group syncs on the sync thread, the loop goes on reading and appending the next group, and
// acks a batch only once a sync that covers it has returned. The test build of the server
// (runnel-server-faults, RN_FAULT_WAL_SYNC="N:MS") holds the Nth group on the sync thread for
// MS ms, then fails its fdatasync. The test checks, from /metrics, that batches were accepted
// behind the held group before it failed (the loop was not waiting for it), that nothing of
// it was acked (acks_total does not move until the failure), and that after the agent's
// resend every line is in the table exactly once and in order. A second test fails the
// allocation of some groups' jobs (RN_FAULT_WAL_JOB): those are synced on the loop instead.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Agent, Server, faultServerBin, freePort, serverBin, tmpDir, waitFor } from './lib/harness.mjs';
import { duckFrom, query, verifyTable } from './lib/table.mjs';

const T = 'main.default.walsync';
const range = (n) => Array.from({ length: n }, (_, i) => i);

test('a WAL group failing on the sync thread while the next is appended: no ack, every line once after the resend', { timeout: 180000 }, async () => {
  const dir = tmpDir('e2e-wal-sync');
  const logDir = path.join(dir, 'logs');
  fs.mkdirSync(logDir);
  const log = path.join(logDir, 'w.log');
  fs.writeFileSync(log, '');
  const port = await freePort();
  const server = new Server({ dir, port, tables: [T], flushMs: 3600000, metrics: true, bin: faultServerBin,
    env: { RN_FAULT_WAL_SYNC: '4:2000' } });
  // small chunks, so that many batches are in flight while the group is held
  const agent = new Agent({ dir, url: `http://127.0.0.1:${port}`, lingerMs: 20,
    chunkExtra: 'max_bytes = "4K";', sources: [{ name: 'w', table: T, paths: [log] }] });
  const lines = (from, to) => Array.from({ length: to - from }, (_, k) => `w ${from + k} ${'q'.repeat(40 + (from + k) % 60)}\n`).join('');
  const acked = (n) => {
    const st = agent.status()?.streams?.[0];
    return st && st.records === n && st.acked === st.next_offset - 1;
  };
  const held = () => server.proc.log.some((l) => /fault hook: WAL group 4 held/.test(l));
  await server.start();
  await agent.start();
  let n = 0;
  try {
    // lines keep coming until the 4th group is held on the sync thread
    while (!held()) {
      assert.ok(n < 200000, `the 4th group was never synced\n${server.proc.tail()}`);
      fs.appendFileSync(log, lines(n, n + 50));
      n += 50;
      await waitFor(() => acked(n) || held(), { what: `${n} lines acked` });
    }
    const m0 = await server.metrics();
    assert.equal(m0('wal_sync_errors_total'), 0);
    // more lines while it is held: the loop appends them behind it, and acks none of them
    fs.appendFileSync(log, lines(n, n + 300));
    n += 300;
    const behind = await waitFor(async () => {
      const m = await server.metrics();
      return m('wal_sync_errors_total') === 0 &&
        m('batches_total') > m0('batches_total') ? m : null;
    }, { what: 'batches appended behind the held group' });
    assert.equal(behind('acks_total'), m0('acks_total'),
      'nothing acked while the group is held (acks follow their sync)');
    assert.equal(behind('wal_syncs_total'), m0('wal_syncs_total'),
      'one group in flight at a time');
    await waitFor(() => server.proc.log.some((l) => /WAL sync failed, nothing acked: .*fdatasync/.test(l)),
      { what: 'the held group failed' });
    fs.appendFileSync(log, lines(n, n + 200));
    n += 200;
    await waitFor(() => acked(n), { what: `all ${n} lines acked after the resend` });
    const m1 = await server.metrics();
    assert.equal(m1('wal_sync_errors_total'), 1);
    assert.ok(m1('wal_sync_seconds_total') >= 2, 'the held group counts as sync time');
    assert.ok(m1('wal_sync_wait_seconds_total') < 1.5, 'the loop did not wait for it');
    await agent.stop();
    await server.stop(); // drains: one flush commits every pending row
    const snap = await verifyTable(server.tableDir(T));
    assert.equal(snap.rows, n);
    const sid = Object.keys(snap.txns)[0];
    const seq = (await query(`SELECT seq FROM ${duckFrom(snap.files)} WHERE stream_id = '${sid}' ORDER BY seq`))
      .map((r) => Number(r.seq));
    assert.deepEqual(seq, range(n), 'every line once');
    const [r] = await query(`SELECT count(*) FILTER (WHERE CAST(split_part(payload, ' ', 2) AS BIGINT) <> seq) AS misordered
        FROM ${duckFrom(snap.files)}`);
    assert.equal(Number(r.misordered), 0, 'line i is record seq i');
  } finally {
    await agent.kill();
    await server.kill();
  }
});

// The fallback when a group's job cannot be allocated (runnel-server-faults
// RN_FAULT_WAL_JOB="N:K": the job allocations of groups N to N+K-1 fail): those groups are
// synced on the loop, acked as usual, and the groups after them go off the loop again. What
// was acked is in the WAL: the server is SIGKILLed with nothing flushed, with the agent
// stopped first (it resends nothing), and the restarted server writes every line exactly once
// and in order.
test('WAL groups whose job cannot be allocated are synced on the loop: acked, durable through a SIGKILL, and the next groups go off the loop again', { timeout: 180000 }, async () => {
  const dir = tmpDir('e2e-wal-job');
  const logDir = path.join(dir, 'logs');
  fs.mkdirSync(logDir);
  const log = path.join(logDir, 'w.log');
  fs.writeFileSync(log, '');
  const port = await freePort();
  const FIRST = 3;
  const COUNT = 4;
  const server = new Server({ dir, port, tables: [T], flushMs: 3600000, metrics: true, bin: faultServerBin,
    env: { RN_FAULT_WAL_JOB: `${FIRST}:${COUNT}` } });
  const agent = new Agent({ dir, url: `http://127.0.0.1:${port}`, lingerMs: 20,
    chunkExtra: 'max_bytes = "4K";', sources: [{ name: 'w', table: T, paths: [log] }] });
  const lines = (from, to) => Array.from({ length: to - from }, (_, k) => `w ${from + k} ${'q'.repeat(40 + (from + k) % 60)}\n`).join('');
  const acked = (n) => {
    const st = agent.status()?.streams?.[0];
    return st && st.records === n && st.acked === st.next_offset - 1;
  };
  const fallbacks = () => server.proc.log.filter((l) => /fault hook: WAL group \d+'s job not allocated/.test(l)).length;
  await server.start();
  await agent.start();
  let n = 0;
  try {
    // a round of lines at a time, each acked before the next: every round is one group or
    // more, so the hook's groups come and go while the server keeps acking
    while (fallbacks() < COUNT) {
      assert.ok(n < 200000, `the hook's groups were never reached (${fallbacks()} of ${COUNT})\n${server.proc.tail()}`);
      fs.appendFileSync(log, lines(n, n + 50));
      n += 50;
      await waitFor(() => acked(n), { what: `${n} lines acked (${fallbacks()} groups synced on the loop so far)` });
    }
    const m0 = await server.metrics();
    // groups after the hook's go off the loop again and are acked
    for (let round = 0; round < 5; round++) {
      fs.appendFileSync(log, lines(n, n + 50));
      n += 50;
      await waitFor(() => acked(n), { what: `${n} lines acked after the hook's groups` });
    }
    const m1 = await server.metrics();
    assert.equal(fallbacks(), COUNT, 'the hook failed exactly its groups\' jobs');
    assert.ok(m1.must('wal_syncs_total') > m0.must('wal_syncs_total'), 'groups after the hook\'s synced and acked');
    assert.equal(m1.must('wal_sync_errors_total'), 0, 'no group failed');
    assert.equal(m1.must('flushes_total'), 0, 'nothing flushed yet: what was acked is in the WAL only');
    // no resend can hide a loss: the agent (every line acked) stops before the server dies
    await agent.stop();
    await server.kill('SIGKILL');
    server.bin = serverBin;
    server.env = undefined;
    await server.start(); // replays the WAL
    await server.stop(); // drains: one flush commits every pending row
    const snap = await verifyTable(server.tableDir(T));
    assert.equal(snap.rows, n, 'every acked line in the table after the SIGKILL');
    const sid = Object.keys(snap.txns)[0];
    const seq = (await query(`SELECT seq FROM ${duckFrom(snap.files)} WHERE stream_id = '${sid}' ORDER BY seq`))
      .map((r) => Number(r.seq));
    assert.deepEqual(seq, range(n), 'every line once');
    const [r] = await query(`SELECT count(*) FILTER (WHERE CAST(split_part(payload, ' ', 2) AS BIGINT) <> seq) AS misordered
        FROM ${duckFrom(snap.files)}`);
    assert.equal(Number(r.misordered), 0, 'line i is record seq i');
  } finally {
    await agent.kill();
    await server.kill();
  }
});
