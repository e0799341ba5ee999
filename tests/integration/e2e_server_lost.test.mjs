// No acknowledged record lost when a server is lost for good: two servers share a data root
// (each its own wal_dir) behind HAProxy; the agent (file source) sends N lines to server A,
// whose flush interval is an hour, so everything A acks sits in its WAL only. Once A acked
// every line, A is killed (SIGKILL) and its WAL directory deleted: its disk is gone. The
// agent, which kept every chunk until the table had it (runnel-committed-acks), resumes on
// B at the table's watermark (none) and sends everything again: every line is in the table
// exactly once, in order. The same with A configured `committed_acks = false` (a server
// without the feature, as older ones) proves the test can fail: the agent freed its chunks
// on A's durability acks, B cannot resume the stream past the gap, and the lines are lost.
// ctest label s3 (HAProxy), as e2e_lb.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ServerPair } from './lib/failover.mjs';
import { Server, tmpDir, waitFor } from './lib/harness.mjs';
import { duckFrom, query, replayLog, verifyTable } from './lib/table.mjs';

const TABLE = 'main.default.telemetry';
const N = 300;

async function scenario(t, { keep }) {
  const dir = tmpDir(`e2e-server-lost-${keep ? 'on' : 'off'}`);
  const dataRoot = path.join(dir, 'shared-data');
  fs.mkdirSync(dataRoot, { recursive: true });
  const mk = (name, opts, extra = '') => {
    const d = path.join(dir, name);
    fs.mkdirSync(d);
    const s = new Server({ dir: d, tables: [TABLE], metrics: true, extra: `wal_dir = "${d}/wal";\n${extra}`, ...opts });
    s.dataRoot = dataRoot;
    return s;
  };
  const a = mk('a', { flushMs: 3600000 }, keep ? '' : 'committed_acks = false;');
  const b = mk('b', { flushMs: 100 });
  const tdir = a.tableDir(TABLE);
  const pair = new ServerPair({ dir, a, b, n: N });
  const stream = () => pair.stream();
  let id;
  let st;
  try {
    // only A at first: the stream is created there and everything goes to A
    st = await pair.start();
    id = st.server_stream_id;
    t.diagnostic(`A acked offsets 0..${st.acked}; committed ${st.committed}, retained ${st.retained_bytes} bytes`);
    assert.equal(st.committed_acks, keep, 'the server answered runnel-committed-acks');
    if (keep) {
      assert.equal(st.committed, -1, 'nothing is in the table yet: nothing freed');
      assert.ok(st.retained_bytes > 0 && st.buffered_bytes >= st.retained_bytes, JSON.stringify(st));
      assert.equal(await a.metric('committed_acks_sent_total'), 0);
    } else {
      await waitFor(() => stream().committed === st.acked && stream().buffered_bytes === 0,
        { what: 'the agent freed its chunks on the durability acks' });
    }
    assert.equal(replayLog(tdir).txns[id], undefined, 'nothing of the stream committed');

    // A and its disk are lost for good
    await pair.loseA();
    fs.rmSync(path.join(dir, 'a', 'wal'), { recursive: true, force: true });

    if (keep) {
      // the agent resumes on B at the table's watermark (none) and sends everything again
      await waitFor(() => replayLog(tdir).txns[id] === st.acked,
        { timeoutMs: 60000, what: `B committed offsets 0..${st.acked}` });
      await waitFor(() => {
        const s = stream();
        return s.committed === st.acked && s.retained_bytes === 0 && s.buffered_bytes === 0;
      }, { timeoutMs: 30000, what: 'the agent freed its chunks once B told it the table has them' });
      assert.ok(await b.metric('committed_acks_sent_total') >= 1);
    } else {
      // B takes the stream over at the table's watermark (none); the agent freed
      // everything up to its next offset, so its next line leaves a gap B refuses
      await waitFor(async () => (await b.metric('streams_taken_over_total')) === 1 && stream().connected,
        { timeoutMs: 60000, what: 'the agent resumed on B' });
      fs.appendFileSync(pair.file, `app ${N}\n`);
      await waitFor(() => b.proc.log.some((l) => /offset gap: expected 0, got 30/.test(l)),
        { timeoutMs: 60000, what: 'B refusing the gap the lost WAL left' });
    }
  } finally {
    await pair.stop();
  }
  const snap = await verifyTable(tdir);
  const from = snap.files.length ? duckFrom(snap.files) : null;
  const rows = from ? await query(`SELECT count(*) AS n, count(DISTINCT seq) AS d, min(seq) AS lo,
      max(seq) AS hi, count(*) FILTER (WHERE CAST(split_part(payload, ' ', 2) AS BIGINT) <> seq) AS bad
      FROM ${from} WHERE stream_id = '${id}'`) : [{ n: 0, d: 0, lo: null, hi: null, bad: 0 }];
  return { rows: rows.map((r) => [Number(r.n), Number(r.d), r.lo === null ? null : Number(r.lo),
    r.hi === null ? null : Number(r.hi), Number(r.bad)])[0], txn: snap.txns[id] };
}

test('a server lost with its disk: the agent kept every acked chunk until the table had it; every line arrives exactly once, in order', { timeout: 240000 }, async (t) => {
  const r = await scenario(t, { keep: true });
  assert.deepEqual(r.rows, [N, N, 0, N - 1, 0], 'every line exactly once, in order');
});

test('the same without committed acks (a server without them): the lines A acked are lost', { timeout: 240000 }, async (t) => {
  const r = await scenario(t, { keep: false });
  assert.equal(r.txn, undefined, 'nothing of the stream reached the table');
  assert.equal(r.rows[0], 0, `the ${N} lines acked by A are lost`);
});
