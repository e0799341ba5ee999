// A server drained behind HAProxy (lib/haproxy.mjs, two servers sharing nothing): its
// /healthz 503 takes it out, a Zerobus client that reopens on close_stream_signal (as the
// SDKs do; zerobus_client.py `reopen`) goes on on the other server, the drained one exits 0,
// and the union of both tables holds every record once, each stream in order. ctest label
// `s3` (HAProxy: make deps-s3), as e2e_lb.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { Proc, Server, repoRoot, tmpDir, waitFor } from './lib/harness.mjs';
import { Haproxy } from './lib/haproxy.mjs';
import { duckFrom, query, verifyTable } from './lib/table.mjs';

const TABLE = 'main.default.telemetry';
const CLIENT = path.join(repoRoot, 'tests', 'integration', 'zerobus_client.py');
const jsonLines = (p) => p.log.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));

// Rows per stream_id in the table: n, distinct seq, min and max seq.
async function perStream(server) {
  const snap = await verifyTable(server.tableDir(TABLE));
  if (!snap.files.length) return [];
  const r = await query(`SELECT stream_id, count(*) AS n, count(DISTINCT seq) AS d,
      min(seq) AS lo, max(seq) AS hi FROM ${duckFrom(snap.files)} GROUP BY ALL`);
  return r.map((x) => [x.stream_id, { n: Number(x.n), d: Number(x.d), lo: Number(x.lo), hi: Number(x.hi) }]);
}

test('through HAProxy: drain the server a stream is on; the client reopens on the other, every record once, in order', { timeout: 180000 }, async () => {
  const dir = tmpDir('e2e-drain-lb');
  const servers = [0, 1].map((i) => new Server({ dir: path.join(dir, `s${i}`), tables: [TABLE], metrics: true, drain: '30s' }));
  const BATCHES = 400;
  const RECORDS = 5;
  let lb;
  let client;
  try {
    for (const s of servers) await s.start();
    lb = await new Haproxy({ dir, backends: servers.map((s) => ({ port: s.port, metricsPort: s.metricsPort })), checkMs: 200 }).start();
    await lb.waitUp(2);
    // an SDK-like client: on close_stream_signal it ends its call and opens a new stream
    client = new Proc('reopen', '/usr/bin/python3', [CLIENT, `127.0.0.1:${lb.port}`, 'reopen',
      '--batches', String(BATCHES), '--records', String(RECORDS), '--pause-ms', '10']);
    await waitFor(() => jsonLines(client).some((j) => 'stream_id' in j), { what: 'the first stream' });
    // the server it landed on: the one receiving records
    const [a, b] = await waitFor(async () => {
      const r = await Promise.all(servers.map((s) => s.metric('records_total')));
      if (r[0] > 0) return [servers[0], servers[1]];
      if (r[1] > 0) return [servers[1], servers[0]];
      return null;
    }, { what: 'records on one server' });
    await waitFor(async () => (await a.metric('records_total')) >= 50 * RECORDS, { what: '50 batches on the first server' });
    assert.equal(await b.metric('records_total'), 0);

    a.proc.child.kill('SIGTERM');
    // the balancer takes it out; the client closes and goes on on the other server
    await waitFor(async () => (await lb.stats()).find((s) => s.status.startsWith('DOWN')), { timeoutMs: 20000, what: 'the drained server DOWN in HAProxy' });
    assert.deepEqual(await a.proc.exitPromise, { code: 0, signal: null }, a.proc.tail());
    await waitFor(async () => (await b.metric('records_total')) > 0, { what: 'records on the other server' });
    await client.exitPromise;
    const res = jsonLines(client).at(-1);
    assert.equal(res.code, 'OK', JSON.stringify(res) + client.tail());
    assert.equal(res.batches_acked, BATCHES);
    assert.ok(res.close_signals >= 1 && res.streams.length >= 2, JSON.stringify(res));
    assert.equal(res.streams[0].end, 'OK', 'the first call ended by the client, not the server');
    await b.stop();

    // the union of both tables: every record once; per stream in order from its first seq
    const st = [...(await perStream(a)), ...(await perStream(b))];
    const total = st.reduce((n, [, r]) => n + r.n, 0);
    assert.equal(total, BATCHES * RECORDS, JSON.stringify(st));
    for (const s of res.streams) {
      const rows = st.filter(([id]) => id === s.stream_id);
      assert.equal(rows.length, 1, `stream ${s.stream_id} in one table: ${JSON.stringify(st)}`);
      const [, r] = rows[0];
      assert.deepEqual([r.n, r.d, r.lo, r.hi], [s.batches * RECORDS, s.batches * RECORDS, s.first_seq, s.first_seq + s.batches * RECORDS - 1], JSON.stringify(s));
    }
    const all = await query(`SELECT count(DISTINCT seq) AS d, min(seq) AS lo, max(seq) AS hi FROM ${duckFrom([
      ...(await verifyTable(a.tableDir(TABLE))).files, ...(await verifyTable(b.tableDir(TABLE))).files])}`);
    assert.deepEqual([Number(all[0].d), Number(all[0].lo), Number(all[0].hi)], [BATCHES * RECORDS, 0, BATCHES * RECORDS - 1]);
  } finally {
    if (client) await client.kill();
    if (lb) await lb.stop();
    for (const s of servers) await s.kill();
  }
});
