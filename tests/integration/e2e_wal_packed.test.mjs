// The WAL keeps a batch that came zstd-compressed (the agent's chunks, grpc-encoding zstd) as
// the client's frame (format 2 entries, server/wal/DESIGN.md): acknowledged lines from an
// agent sit in the WAL (a flush interval of an hour), its segments hold only packed entries
// and fewer bytes than the records (wal_written_bytes_total < record_bytes_total); the server
// is killed (-9) and restarted, its replay decompresses them, and every line lands in the
// table exactly once and in order (the agent, still running, resends what was not acked).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Agent, Server, freePort, tmpDir, waitFor } from './lib/harness.mjs';
import { duckFrom, query, replayLog, verifyTable } from './lib/table.mjs';

const TABLE = 'main.default.packed';
const N = 20000;

// {format: count} of the entries in the WAL's segment files (magic "RNW1", u32 body length,
// u32 CRC, then the body, whose first byte is the entry format); a torn tail is not counted.
function walFormats(server) {
  const wal = path.join(server.dataRoot, '_wal');
  const n = {};
  for (const f of fs.readdirSync(wal).filter((x) => /^wal-\d+\.log$/.test(x))) {
    const b = fs.readFileSync(path.join(wal, f));
    for (let off = 0; off + 13 <= b.length;) {
      assert.equal(b.toString('latin1', off, off + 4), 'RNW1', `${f}: an entry at byte ${off}`);
      const len = b.readUInt32LE(off + 4);
      if (off + 12 + len > b.length) break;
      n[b[off + 12]] = (n[b[off + 12]] || 0) + 1;
      off += 12 + len;
    }
  }
  return n;
}

function tableRows(server) {
  try {
    return replayLog(server.tableDir(TABLE)).live.reduce((k, f) => k + f.numRecords, 0);
  } catch {
    return 0;
  }
}

test('compressed batches stored as sent replay after a kill -9, every line once and in order', { timeout: 240000 }, async () => {
  const dir = tmpDir('e2e-wal-packed');
  const logDir = path.join(dir, 'logs');
  fs.mkdirSync(logDir);
  const pad = 'abcdefghij'.repeat(10);
  let text = '';
  for (let i = 0; i < N; i++) text += `${i} ${pad}\n`;
  fs.writeFileSync(path.join(logDir, 'a.log'), text);
  const port = await freePort();
  // fleet_table_interval = 0: the server's own fleet rows (plain JSON entries) stay out of the
  // WAL, so every entry in it is one of the agent's batches
  const server = new Server({ dir, port, tables: [TABLE], flushMs: 3600000, metrics: true,
    extra: 'fleet_table_interval = 0;' });
  const agent = new Agent({
    dir, url: `http://127.0.0.1:${port}`,
    sources: [{ name: 'a', table: TABLE, paths: [path.join(logDir, 'a.log')], readFrom: 'beginning' }],
  });
  await server.start();
  await agent.start();
  try {
    await waitFor(async () => (await server.metric('records_total')) >= N,
      { timeoutMs: 120000, intervalMs: 200, what: 'every line in the WAL' });
    const m = await server.metrics();
    assert.ok(m.must('wal_written_bytes_total') > 0);
    assert.ok(m.must('wal_written_bytes_total') < m.must('record_bytes_total') / 2,
      `the WAL wrote ${m('wal_written_bytes_total')} bytes for ${m('record_bytes_total')} of records`);
    assert.equal(tableRows(server), 0, 'nothing flushed yet: replay must bring every line');
    await server.kill('SIGKILL');
    const formats = walFormats(server);
    assert.ok(formats[2] > 0, `packed entries in the WAL: ${JSON.stringify(formats)}`);
    assert.equal(formats[1], undefined, `the agent's batches are all packed: ${JSON.stringify(formats)}`);

    server.flushMs = 200;
    await server.start();
    await waitFor(() => tableRows(server) >= N, { timeoutMs: 120000, intervalMs: 250, what: 'all rows in the table' })
      .catch((e) => { throw new Error(`${e.message}\nserver:\n${server.proc.tail()}`); });
    await agent.stop();
    await server.stop();
    const snap = await verifyTable(server.tableDir(TABLE));
    const [r] = await query(`SELECT count(*) AS n, count(DISTINCT seq) AS d, min(seq) AS lo, max(seq) AS hi,
        count(*) FILTER (WHERE CAST(split_part(payload, ' ', 1) AS BIGINT) <> seq) AS misordered
        FROM ${duckFrom(snap.files)}`);
    assert.equal(Number(r.n), N, 'row count');
    assert.equal(Number(r.d), N, 'every line exactly once');
    assert.equal(Number(r.lo), 0);
    assert.equal(Number(r.hi), N - 1);
    assert.equal(Number(r.misordered), 0, 'line i is record seq i');
  } finally {
    await agent.kill();
    await server.kill();
  }
});
