// Committed acks on time: a flush round in which one table fails still tells the streams of
// the tables that did commit in it. Two tables, one agent stream each (runnel-committed-acks);
// table A's directory is replaced by a plain file, so every round's flush of A fails (its rows
// stay pending, the WAL holds them) while B keeps committing. B's stream must learn its
// committed offsets from those failed rounds (the agent's status shows the table's watermark
// and frees its chunks), not from a later round that succeeds everywhere: a server that tells
// committed offsets only after fully successful rounds leaves B at its old watermark for as
// long as A fails, and this test times out. Then A's directory comes back, A catches up, and
// every line of both is in its table exactly once, in order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Agent, Server, tmpDir, waitFor } from './lib/harness.mjs';
import { duckFrom, query, verifyTable } from './lib/table.mjs';

const TA = 'main.default.round_a';
const TB = 'main.default.round_b';
const N = 20;

const lines = (from, n) => Array.from({ length: n }, (_, i) => `app ${from + i}\n`).join('');

test('committed acks reach the streams of the tables that committed in a round where another table failed', { timeout: 240000 }, async (t) => {
  const dir = tmpDir('e2e-committed-round');
  const logs = path.join(dir, 'logs');
  fs.mkdirSync(logs);
  const fa = path.join(logs, 'a.log');
  const fb = path.join(logs, 'b.log');
  fs.writeFileSync(fa, lines(0, N));
  fs.writeFileSync(fb, lines(0, N));
  const server = new Server({ dir, tables: [TA, TB], flushMs: 100, metrics: true });
  let agent;
  const stream = (name) => (agent.status()?.streams || []).find((s) => s.name === name);
  const settled = (name, records) => {
    const s = stream(name);
    return s && s.records === records && s.next_offset > 0 && s.acked === s.next_offset - 1 &&
      s.committed === s.acked ? s : null;
  };
  const adir = server.tableDir(TA);
  const aside = `${adir}.aside`;
  let ids;
  try {
    await server.start();
    agent = new Agent({ dir, url: server.url, lingerMs: 20, chunkExtra: 'max_records = 5;',
      sources: [{ name: 'a', paths: [fa], table: TA }, { name: 'b', paths: [fb], table: TB }] });
    await agent.start();
    const a0 = await waitFor(() => settled('a', N), { timeoutMs: 60000, what: 'a committed' });
    await waitFor(() => settled('b', N), { timeoutMs: 60000, what: 'b committed' });
    assert.equal(stream('a').committed_acks, true, 'the server answered runnel-committed-acks');
    ids = { a: a0.server_stream_id, b: stream('b').server_stream_id };

    // A cannot be written any more: its flush fails in every round from now on
    fs.renameSync(adir, aside);
    fs.writeFileSync(adir, 'not a table\n');
    const errors0 = await server.metric('flush_errors_total');
    fs.appendFileSync(fa, lines(N, N));
    await waitFor(async () => stream('a').acked > a0.acked &&
      (await server.metric('flush_errors_total')) > errors0,
    { timeoutMs: 60000, what: "A's new lines acked and a round failing on A" });

    // B's new lines arrive during A's failure: every round fails on A, and B's committed
    // acks come from them
    fs.appendFileSync(fb, lines(N, N));
    const b1 = await waitFor(() => settled('b', 2 * N), { timeoutMs: 30000,
      what: "B's committed offset told while A's flushes fail" });
    t.diagnostic(`B committed ${b1.committed}; A acked ${stream('a').acked}, committed ${stream('a').committed}`);
    assert.equal(stream('a').committed, a0.committed, "A's new lines are not in its table");
    assert.ok((await server.metric('flush_errors_total')) > errors0);
    assert.ok(b1.retained_bytes === 0, 'the agent freed B\'s chunks on the committed ack');

    // A comes back and catches up from the WAL
    fs.rmSync(adir);
    fs.renameSync(aside, adir);
    await waitFor(() => settled('a', 2 * N), { timeoutMs: 60000, what: 'A committed after its directory came back' });
  } finally {
    if (agent) await agent.stop();
    await server.stop();
  }
  for (const [table, id] of [[TA, ids.a], [TB, ids.b]]) {
    const snap = await verifyTable(server.tableDir(table));
    const rows = await query(`SELECT count(*) AS n, count(DISTINCT seq) AS d, min(seq) AS lo, max(seq) AS hi,
        count(*) FILTER (WHERE CAST(split_part(payload, ' ', 2) AS BIGINT) <> seq) AS bad
        FROM ${duckFrom(snap.files)} WHERE stream_id = '${id}'`);
    assert.deepEqual(rows.map((r) => [Number(r.n), Number(r.d), Number(r.lo), Number(r.hi), Number(r.bad)])[0],
      [2 * N, 2 * N, 0, 2 * N - 1, 0], `${table}: every line exactly once, in order`);
  }
});
