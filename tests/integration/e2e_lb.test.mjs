// Several runnel-servers behind HAProxy (Debian's 2.6, HTTP/2 on both sides, round robin,
// health checks on /healthz: lib/haproxy.mjs), the way a fleet reaches them: python3-grpcio
// Zerobus clients (persistent, ephemeral, several calls on one connection) and a runnel-agent
// connect to HAProxy only. Every call lands whole on one server, both servers get calls, and
// every record is in exactly one server's table once, in order. A killed server is taken out
// by its health check; a reload (a new backend list) keeps a running stream and sends new calls
// to the new server. Resuming a stream on another server: e2e_lb_resume.test.mjs. ctest label
// `s3`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Agent, Proc, Server, repoRoot, tmpDir, waitFor, zbClient } from './lib/harness.mjs';
import { Haproxy } from './lib/haproxy.mjs';
import { duckFrom, query, replayLog, verifyTable } from './lib/table.mjs';

const TABLE = 'main.default.telemetry';
const CLIENT = path.join(repoRoot, 'tests', 'integration', 'zerobus_client.py');
const LINES = 3000;

function rows(server) {
  try {
    return replayLog(server.tableDir(TABLE)).live.reduce((n, f) => n + f.numRecords, 0);
  } catch {
    return 0;
  }
}

// A `concurrent` call that ended well with every batch acked (acks are cumulative and may be
// coalesced: increasing, the last one the last batch's offset).
function okCall(c, last) {
  assert.equal(c.code, 'OK', JSON.stringify(c));
  assert.equal(c.acks.at(-1), last, JSON.stringify(c));
  assert.ok(c.acks.every((a, i) => i === 0 || a > c.acks[i - 1]), JSON.stringify(c));
}

// One row per stream_id across the servers' tables: which servers hold it, its count,
// distinct seq, min and max seq.
async function perStream(servers) {
  const out = new Map();
  for (const [i, s] of servers.entries()) {
    const snap = await verifyTable(s.tableDir(TABLE));
    if (!snap.files.length) continue;
    const r = await query(`SELECT stream_id, source, count(*) AS n, count(DISTINCT seq) AS d,
        min(seq) AS lo, max(seq) AS hi, count(DISTINCT payload) AS p FROM ${duckFrom(snap.files)} GROUP BY ALL`);
    for (const x of r) {
      const prev = out.get(x.stream_id);
      const row = { servers: [...(prev ? prev.servers : []), i], source: x.source, n: Number(x.n), d: Number(x.d), lo: Number(x.lo), hi: Number(x.hi), p: Number(x.p) };
      out.set(x.stream_id, row);
    }
  }
  return out;
}

test('grpcio streams and an agent through HAProxy: each call on one server, both servers used, every record once', { timeout: 300000 }, async () => {
  const dir = tmpDir('e2e-lb');
  const servers = [0, 1].map((i) => new Server({ dir: path.join(dir, `s${i}`), tables: [TABLE], metrics: true }));
  let lb;
  let agent;
  try {
    for (const s of servers) await s.start();
    lb = await new Haproxy({ dir, backends: servers.map((s) => ({ port: s.port, metricsPort: s.metricsPort })) }).start();
    await lb.waitUp(2);
    const via = { port: lb.port }; // zbClient connects to 127.0.0.1:<port>

    // a persistent stream (no resume: that would need the other server to know it)
    const fill = await zbClient(via, 'fill', '--batches', '6', '--records', '10');
    assert.equal(fill.code, 'OK', JSON.stringify(fill));
    assert.deepEqual(fill.acks, [0, 1, 2, 3, 4, 5]);
    // ephemeral streams, one connection each
    const eph = [];
    for (let k = 0; k < 3; k++) eph.push(await zbClient(via, 'ephemeral', '--records', '7', '--batches', '2'));
    for (const e of eph) assert.deepEqual(e.acks, [0, 1]);
    // four persistent calls at once on one HTTP/2 connection to HAProxy: balanced one by one
    const conc = await zbClient(via, 'concurrent', '--calls', '4', '--batches', '3', '--records', '5');
    for (const c of conc.calls) okCall(c, 2);

    // an agent shipping a file through HAProxy
    const logFile = path.join(dir, 'lines.log');
    fs.writeFileSync(logFile, Array.from({ length: LINES }, (_, i) => `line ${i}\n`).join(''));
    agent = await new Agent({ dir: path.join(dir, 'agent'), url: lb.url, sources: [{ name: 'lines', paths: [logFile] }] }).start();

    // 60 (fill) + 3 x 14 (ephemeral) + 4 x 15 (concurrent) + LINES (agent)
    const want = 60 + 42 + 60 + LINES;
    await waitFor(() => rows(servers[0]) + rows(servers[1]) >= want,
      { timeoutMs: 60000, what: `${want} rows over both tables` });
    await agent.stop();
    for (const s of servers) await s.stop();

    const st = await perStream(servers);
    // 1 fill + 3 ephemeral + 4 concurrent grpcio streams, 1 agent stream
    assert.equal(st.size, 9, JSON.stringify([...st]));
    for (const [id, r] of st) {
      assert.equal(r.servers.length, 1, `stream ${id} is in one server's table only: ${JSON.stringify(r)}`);
      assert.equal(r.n, r.d, `stream ${id}: every seq once`);
      assert.equal(r.lo, 0, `stream ${id}: from seq 0`);
      assert.equal(r.hi, r.n - 1, `stream ${id}: no gap`);
    }
    const counts = [...st.values()].map((r) => r.n).sort((a, b) => a - b);
    assert.deepEqual(counts, [14, 14, 14, 15, 15, 15, 15, 60, LINES].sort((a, b) => a - b));
    const agentStream = [...st.values()].find((r) => r.source === 'lines');
    assert.equal(agentStream.p, LINES, 'every line once');
    // both servers took calls, each has rows, and HAProxy counted sessions on both
    for (const i of [0, 1]) {
      assert.ok([...st.values()].some((r) => r.servers[0] === i), `server ${i} got no stream`);
    }
    const stats = await lb.stats();
    assert.ok(stats.every((s) => s.sessions > 0), JSON.stringify(stats));
  } finally {
    if (agent) await agent.kill();
    if (lb) await lb.stop();
    for (const s of servers) await s.kill();
  }
});

test('HAProxy: a killed server is taken out by its health check; a reload keeps a running stream and adds a server', { timeout: 300000 }, async () => {
  const dir = tmpDir('e2e-lb-reload');
  const servers = [0, 1, 2].map((i) => new Server({ dir: path.join(dir, `s${i}`), tables: [TABLE], metrics: true }));
  const backend = (s) => ({ port: s.port, metricsPort: s.metricsPort });
  let lb;
  let steady;
  const stop = path.join(dir, 'stop');
  try {
    await servers[0].start();
    await servers[1].start();
    lb = await new Haproxy({ dir, backends: [backend(servers[0]), backend(servers[1])], checkMs: 200 }).start();
    await lb.waitUp(2);
    // the checks are HTTP: GET /healthz on each server's metrics port answered 200
    assert.deepEqual((await lb.stats()).map((s) => s.check), ['L7OK', 'L7OK']);
    const via = { port: lb.port };

    // s1 killed: its checks fail, it goes DOWN, and every new call lands on s0
    await servers[1].kill();
    await waitFor(async () => (await lb.stats()).find((s) => s.name === 's1').status.startsWith('DOWN'),
      { timeoutMs: 20000, what: 's1 DOWN' });
    for (let k = 0; k < 4; k++) assert.deepEqual((await zbClient(via, 'ephemeral', '--records', '5', '--batches', '1')).acks, [0]);
    await waitFor(() => rows(servers[0]) >= 20, { what: '20 rows on s0' });

    // a stream that runs across the reload
    steady = new Proc('steady', '/usr/bin/python3', [CLIENT, `127.0.0.1:${lb.port}`, 'steady', '--records', '2',
      '--pause-ms', '20', '--stop-file', stop]);
    await waitFor(() => steady.log.filter((l) => l.startsWith('{"ack"')).length >= 3, { what: 'steady acks' });

    // reload: s1 out, s2 in
    await servers[2].start();
    await lb.reload({ backends: [backend(servers[0]), backend(servers[2])] });
    await lb.waitUp(2);
    const acksAtReload = steady.log.filter((l) => l.startsWith('{"ack"')).length;
    await waitFor(() => steady.log.filter((l) => l.startsWith('{"ack"')).length >= acksAtReload + 5,
      { what: 'steady acks after the reload' });
    // new calls are balanced over s0 and s2
    const conc = await zbClient(via, 'concurrent', '--calls', '4', '--batches', '2', '--records', '5');
    for (const c of conc.calls) okCall(c, 1);
    await waitFor(() => rows(servers[2]) > 0, { what: 'rows on the new server s2' });

    fs.writeFileSync(stop, '');
    await steady.exitPromise;
    const done = JSON.parse(steady.log.filter((l) => l.startsWith('{"acks"')).pop());
    assert.equal(done.code, 'OK', 'the stream opened before the reload ended well');
    assert.deepEqual(done.acks, done.acks.map((_, i) => i));
  } finally {
    if (steady) {
      fs.writeFileSync(stop, '');
      await steady.kill();
    }
    if (lb) await lb.stop();
    for (const s of servers) await s.kill();
  }
});
