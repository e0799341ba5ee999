// The WAL's write + fdatasync run off the event loop (server/README.md "Threads"): while one
// group syncs on the sync thread, the loop goes on reading and appending the next group, and
// acks a batch only once a sync that covers it has returned. The test build of the server
// (runnel-server-faults, RN_FAULT_WAL_SYNC="N:MS") holds the Nth group on the sync thread for
// MS ms, then fails its fdatasync. The test checks, from /metrics, that batches were accepted
// behind the held group before it failed (the loop was not waiting for it), that nothing of
// it was acked (acks_total does not move until the failure), and that after the agent's
// resend every line is in the table exactly once and in order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Agent, Server, faultServerBin, freePort, tmpDir, waitFor } from './lib/harness.mjs';
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
