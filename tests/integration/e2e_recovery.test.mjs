// Recovery never deletes what it has not committed. Acknowledged batches of two tables sit
// in the WAL when the server is killed (-9); table A's Delta log is then made unreadable.
// The restarted server keeps the WAL segment holding A's records, reports A in its log,
// /healthz and /metrics, and keeps serving table B. Once A's log is repaired, the periodic
// retry lands every acknowledged record of A exactly once (read back by stream and offset
// with DuckDB and parquet-wasm), the segment goes, and a further restart adds nothing.
// The second test does the same to a configured table under a running agent, whose resume
// is refused while the table is broken and, once repaired, triggers the retry itself: the
// kept lines and the ones read meanwhile land exactly once and in order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, Server, freePort, run, tmpDir, waitFor } from './lib/harness.mjs';
import { duckFrom, query, replayLog, verifyTable, wasmRead } from './lib/table.mjs';

const PY = '/usr/bin/python3';
const CLIENT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'zerobus_client.py');
const A = 'main.default.rec_a';
const B = 'main.default.rec_b';

// Segment files of the WAL that hold the bytes of `needle` (a stream id).
function segmentsWith(server, needle) {
  const wal = path.join(server.dataRoot, '_wal');
  return fs.readdirSync(wal).filter((n) => /^wal-\d+\.log$/.test(n))
    .filter((n) => fs.readFileSync(path.join(wal, n)).includes(Buffer.from(needle)));
}

// Rows of table `dir` for one stream, read by DuckDB and by parquet-wasm: [seq...] sorted.
async function seqsOf(dir, streamId) {
  const snap = await verifyTable(dir);
  const duck = (await query(`SELECT seq FROM ${duckFrom(snap.files)} WHERE stream_id = '${streamId}'
      ORDER BY seq`)).map((r) => Number(r.seq));
  const wasm = [];
  for (const f of snap.files) {
    const t = wasmRead(f);
    const sid = t.getChild('stream_id');
    const seq = t.getChild('seq');
    for (let i = 0; i < t.numRows; i++) if (sid.get(i) === streamId) wasm.push(Number(seq.get(i)));
  }
  wasm.sort((x, y) => x - y);
  assert.deepEqual(wasm, duck, 'DuckDB and parquet-wasm read the same rows');
  return { seqs: duck, txns: snap.txns };
}

const range = (n) => Array.from({ length: n }, (_, i) => i);

test('a table whose log is unreadable at recovery keeps its WAL segments until it is repaired', { timeout: 180000 }, async () => {
  const dir = tmpDir('e2e-recovery');
  // a flush interval of an hour: what the clients send stays in the WAL until the kill
  const server = new Server({ dir, tables: [B], flushMs: 3600000,
    metrics: true, extra: 'auto_create = true;' });
  await server.start();
  const py = async (...args) => {
    const r = await run(PY, [CLIENT, `127.0.0.1:${server.port}`, ...args]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout.trim().split('\n').pop());
  };
  const healthz = async () => {
    const r = await fetch(`${server.metricsUrl}/healthz`);
    return { status: r.status, text: await r.text() };
  };
  try {
    const a = await py('ingest', '--table', A, '--records', '10', '--batches', '3');
    assert.deepEqual(a.acks, [0, 1, 2]);
    const b = await py('ingest', '--table', B, '--records', '4', '--batches', '2');
    assert.deepEqual(b.acks, [0, 1]);
    assert.equal(segmentsWith(server, a.stream_id).length, 1, 'A is in the WAL');
    await server.kill('SIGKILL');

    // break A's log: its only version becomes garbage
    const v0 = path.join(server.tableDir(A), '_delta_log', '00000000000000000000.json');
    const good = fs.readFileSync(v0);
    fs.writeFileSync(v0, 'this is not a delta log\n');

    server.flushMs = 200;
    await server.start();
    const seg = segmentsWith(server, a.stream_id);
    assert.equal(seg.length, 1, 'the segment with A\'s acknowledged records is kept');
    assert.ok(server.proc.log.some((l) => l.includes(A) && /recover/.test(l)),
      `A named in the log:\n${server.proc.log.join('\n')}`);
    const h = await healthz();
    assert.equal(h.status, 200, 'degraded, not down: other tables are served');
    assert.match(h.text, /degraded/);
    assert.ok(h.text.includes(A), h.text);
    const m = await server.metrics();
    assert.equal(m('tables_failing_recovery'), 1);
    assert.ok(m('wal_retained_bytes') > 0, 'the kept bytes are counted');
    assert.equal(m('table_failing_recovery', `table="${A}"`), 1);

    // B is recovered and still takes data; flushes go on and A's segment stays
    const b2 = await py('ingest', '--table', B, '--records', '4', '--batches', '2');
    assert.deepEqual(b2.acks, [0, 1]);
    await waitFor(() => replayLog(server.tableDir(B)).txns[b2.stream_id] === 1,
      { what: 'B\'s new batches committed' });
    assert.deepEqual(segmentsWith(server, a.stream_id), seg, 'still kept after flushes');
    // a new stream on A is refused while A cannot be read, naming why
    const refused = await py('status', '--table', A);
    assert.equal(refused.code, 'UNAVAILABLE', JSON.stringify(refused));

    // repair A: the periodic retry lands its records and lets the segment go
    fs.writeFileSync(v0, good);
    await waitFor(async () => (await server.metric('tables_failing_recovery')) === 0,
      { timeoutMs: 30000, what: 'A recovered' });
    await waitFor(() => segmentsWith(server, a.stream_id).length === 0, { what: 'A\'s segment dropped' });
    assert.equal((await healthz()).status, 200);
    assert.match((await healthz()).text, /^ok/);
    await server.stop();

    const ra = await seqsOf(server.tableDir(A), a.stream_id);
    assert.deepEqual(ra.seqs, range(30), 'every acked record of A exactly once');
    assert.equal(ra.txns[a.stream_id], 2);
    const rb = await seqsOf(server.tableDir(B), b.stream_id);
    assert.deepEqual(rb.seqs, range(8));
    assert.deepEqual((await seqsOf(server.tableDir(B), b2.stream_id)).seqs, range(8));

    // one more restart replays nothing twice
    await server.start();
    await server.stop();
    assert.deepEqual((await seqsOf(server.tableDir(A), a.stream_id)).seqs, range(30));
  } finally {
    await server.kill();
  }
});

test('an agent resumes on a repaired configured table: kept and new lines once, in order', { timeout: 180000 }, async () => {
  const C = 'main.default.rec_c';
  const dir = tmpDir('e2e-recovery-agent');
  const logDir = path.join(dir, 'logs');
  fs.mkdirSync(logDir);
  const log = path.join(logDir, 'c.log');
  fs.writeFileSync(log, '');
  const port = await freePort();
  const server = new Server({ dir, port, tables: [C], flushMs: 3600000 });
  const agent = new Agent({ dir, url: `http://127.0.0.1:${port}`, sources: [{ name: 'c', table: C, paths: [log] }] });
  const lines = (from, to) => Array.from({ length: to - from }, (_, k) => `c ${from + k} ${'y'.repeat(40)}\n`).join('');
  const acked = (n) => {
    const st = agent.status()?.streams?.[0];
    return st && st.records === n && st.acked === st.next_offset - 1;
  };
  await server.start();
  await agent.start();
  try {
    fs.appendFileSync(log, lines(0, 500));
    await waitFor(() => acked(500), { what: '500 lines acked (in the WAL only)' });
    await server.kill('SIGKILL');
    const v0 = path.join(server.tableDir(C), '_delta_log', '00000000000000000000.json');
    const good = fs.readFileSync(v0);
    fs.rmSync(v0);
    fs.mkdirSync(v0); // a directory where the commit was: unreadable

    server.flushMs = 200;
    await server.start();
    assert.ok(server.proc.log.some((l) => l.includes(C) && /cannot be opened/.test(l)), server.proc.tail());
    fs.appendFileSync(log, lines(500, 800));
    await waitFor(() => server.proc.log.some((l) => /cannot be recovered yet/.test(l)) ||
      agent.proc.log.some((l) => /cannot be recovered yet/.test(l)), { what: 'the agent\'s resume refused' });
    await waitFor(() => agent.status()?.streams?.[0]?.records === 800, { what: 'the new lines read' });
    assert.equal(fs.readdirSync(path.join(server.tableDir(C), '_delta_log')).filter((n) => n.endsWith('.json')).length, 1,
      'nothing committed to the broken table');

    fs.rmdirSync(v0);
    fs.writeFileSync(v0, good);
    fs.appendFileSync(log, lines(800, 1000));
    await waitFor(() => acked(1000), { what: 'all 1000 lines acked after the repair' });
    await waitFor(() => {
      try {
        return replayLog(server.tableDir(C)).live.reduce((n, f) => n + f.numRecords, 0) >= 1000;
      } catch {
        return false;
      }
    }, { what: '1000 rows in C' });
    await agent.stop();
    await server.stop();
    const snap = await verifyTable(server.tableDir(C));
    assert.equal(snap.rows, 1000);
    const sid = Object.keys(snap.txns)[0];
    const { seqs } = await seqsOf(server.tableDir(C), sid);
    assert.deepEqual(seqs, range(1000), 'every line once');
    const [r] = await query(`SELECT count(*) FILTER (WHERE CAST(split_part(payload, ' ', 2) AS BIGINT) <> seq) AS misordered,
        count(DISTINCT payload) AS d FROM ${duckFrom(snap.files)}`);
    assert.equal(Number(r.misordered), 0, 'line i is record seq i');
    assert.equal(Number(r.d), 1000);
  } finally {
    await agent.kill();
    await server.kill();
  }
});
