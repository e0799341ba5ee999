// A server drains (issue 14 "Drain"): on SIGTERM or POST /admin/drain on its HTTP port it
// answers /healthz 503 "draining", refuses new streams UNAVAILABLE, sends every open stream
// close_stream_signal{drain_timeout}, keeps acking until the clients end their calls (or
// drain_timeout passes: UNAVAILABLE), flushes into the tables and exits 0. Real parts only:
// the server, a runnel-agent, python3-grpcio (zerobus_client.py), DuckDB over the table.
// Through HAProxy: e2e_drain_lb.test.mjs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Agent, Proc, Server, repoRoot, tmpDir, waitFor, zbClient } from './lib/harness.mjs';
import { duckFrom, query, verifyTable } from './lib/table.mjs';

const TABLE = 'main.default.telemetry';
const CLIENT = path.join(repoRoot, 'tests', 'integration', 'zerobus_client.py');

// A steady grpcio stream (one batch of `records` at a time, each after the last one's ack)
// until stopFile exists; its JSON lines: {"stream_id"}, {"ack"}, {"close_signal"}, then the
// result ({"code", "acks", "close_signal"?}).
function steady(server, stopFile, records = 3) {
  return new Proc('steady', '/usr/bin/python3', [CLIENT, `127.0.0.1:${server.port}`, 'steady',
    '--records', String(records), '--pause-ms', '10', '--stop-file', stopFile]);
}
const jsonLines = (p) => p.log.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
const acksOf = (p) => jsonLines(p).filter((j) => 'ack' in j).length;

// Rows per stream_id in the table: n, distinct seq, min and max seq, distinct payloads.
async function perStream(server) {
  const snap = await verifyTable(server.tableDir(TABLE));
  if (!snap.files.length) return new Map();
  const r = await query(`SELECT stream_id, source, count(*) AS n, count(DISTINCT seq) AS d,
      min(seq) AS lo, max(seq) AS hi, count(DISTINCT payload) AS p FROM ${duckFrom(snap.files)} GROUP BY ALL`);
  return new Map(r.map((x) => [x.stream_id, { source: x.source, n: Number(x.n), d: Number(x.d), lo: Number(x.lo), hi: Number(x.hi), p: Number(x.p) }]));
}

// A unix datagram socket as systemd's NOTIFY_SOCKET: prints each message ("\n" as "|").
const NOTIFY_LISTENER = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("listening", flush=True)
while True:
    print(s.recv(4096).decode().replace("\\n", "|"), flush=True)
`;

async function healthz(server) {
  const r = await fetch(`${server.metricsUrl}/healthz`);
  return { status: r.status, body: (await r.text()).trim() };
}

test('SIGTERM drains: close_stream_signal, /healthz 503, creates refused, exit 0 once the clients close, every acked record once', { timeout: 180000 }, async () => {
  const dir = tmpDir('e2e-drain');
  const sock = path.join(dir, 'notify.sock');
  const notify = new Proc('notify', '/usr/bin/python3', ['-c', NOTIFY_LISTENER, sock]);
  const server = new Server({ dir: path.join(dir, 's'), tables: [TABLE], metrics: true, drain: '30s', env: { NOTIFY_SOCKET: sock } });
  const stopFile = path.join(dir, 'stop');
  const logFile = path.join(dir, 'lines.log');
  const LINES = 500;
  const stopping = () => notify.log.filter((l) => l === 'STOPPING=1').length;
  let agent;
  let client;
  try {
    await waitFor(() => notify.log.includes('listening'), { what: 'the notify socket' });
    await server.start();
    await waitFor(() => notify.log.includes('READY=1'), { what: 'READY=1' });
    fs.writeFileSync(logFile, Array.from({ length: LINES }, (_, i) => `line ${i}\n`).join(''));
    agent = await new Agent({ dir: path.join(dir, 'agent'), url: server.url, sources: [{ name: 'lines', paths: [logFile] }] }).start();
    client = steady(server, stopFile);
    await waitFor(() => acksOf(client) >= 5, { what: 'steady acks' });
    await waitFor(async () => (await server.metric('records_total')) >= LINES + 15, { what: 'the agent\'s lines received' });
    assert.equal(await server.metric('draining'), 0);
    assert.deepEqual(await healthz(server), { status: 200, body: 'ok' });

    server.proc.child.kill('SIGTERM');
    // the client is told, with drain_timeout as the duration
    await waitFor(() => jsonLines(client).find((j) => 'close_signal' in j), { what: 'close_stream_signal' });
    assert.equal(jsonLines(client).find((j) => 'close_signal' in j).close_signal, 30);
    // systemd hears of it at the start of the drain, while the server still runs
    await waitFor(() => stopping() === 1, { what: 'STOPPING=1' });
    // the load balancer's check fails at once; the server is still up and acking
    assert.deepEqual(await healthz(server), { status: 503, body: 'draining' });
    const m = await server.metrics();
    assert.equal(m('draining'), 1);
    assert.equal(m('drain_phase'), 1);
    assert.ok(m('drain_signals_total') >= 1, m.text);
    const before = acksOf(client);
    await waitFor(() => acksOf(client) >= before + 3, { what: 'acks go on while draining' });
    // a new stream is refused, and retryable
    const refused = await zbClient(server, 'status');
    assert.equal(refused.code, 'UNAVAILABLE', JSON.stringify(refused));
    assert.match(refused.details, /draining/);
    // a REST insert too (503, retryable)
    const rest = await fetch(`${server.metricsUrl}/zerobus/v1/tables/${TABLE}/insert`,
      { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[{}]' });
    assert.equal(rest.status, 503);
    assert.match(await rest.text(), /server is draining/);
    assert.equal(server.proc.exited, null, 'the server waits for its client');
    // the agent closed its drained call and is refused (retryable) when it comes back
    await waitFor(() => agent.proc.log.some((l) => /UNAVAILABLE: server is draining; retry in/.test(l)), { what: 'the agent refused and retrying' });
    // a reload while draining applies, without READY=1 after STOPPING=1
    const readies = notify.log.filter((l) => l === 'READY=1').length;
    const from = server.proc.lines;
    server.proc.child.kill('SIGHUP');
    await waitFor(() => server.proc.since(from).some((l) => /SIGHUP: log reopened/.test(l)), { what: 'the reload' });
    assert.deepEqual(await healthz(server), { status: 503, body: 'draining' });

    // the client ends its call: the server flushes and exits 0
    fs.writeFileSync(stopFile, '');
    const res = await client.exitPromise.then(() => jsonLines(client).at(-1));
    assert.equal(res.code, 'OK', JSON.stringify(res));
    assert.deepEqual(await server.proc.exitPromise, { code: 0, signal: null }, server.proc.tail());
    assert.ok(server.proc.log.some((l) => /every client has closed its stream/.test(l)), server.proc.tail());
    assert.equal(stopping(), 1, 'STOPPING=1 once: ' + notify.log.join(' '));
    assert.equal(notify.log.filter((l) => l === 'READY=1').length, readies, notify.log.join(' '));
    assert.ok(!notify.log.some((l) => /^RELOADING=1/.test(l)), notify.log.join(' '));
    assert.ok(agent.proc.log.some((l) => /server asks to close within 30s/.test(l)), agent.proc.tail());

    // every acked batch of the grpcio stream is in the table, once
    const acked = res.acks.at(-1) + 1; // batches 0..last ack
    let st = await perStream(server);
    const py = st.get(res.stream_id);
    assert.ok(py, `stream ${res.stream_id} in the table: ${JSON.stringify([...st])}`);
    assert.equal(py.n, acked * 3, 'every acked record');
    assert.equal(py.d, py.n, 'each once');
    // the agent's lines: what it had acked is in; after a restart it resumes and the rest
    // arrive, each line once
    await server.start();
    await waitFor(async () => {
      st = await perStream(server);
      const a = [...st.values()].find((r) => r.source === 'lines');
      return a && a.n >= LINES;
    }, { timeoutMs: 60000, what: `${LINES} lines after the restart` });
    const a = [...st.values()].filter((r) => r.source === 'lines');
    assert.equal(a.length, 1, JSON.stringify(a));
    assert.deepEqual([a[0].n, a[0].d, a[0].p, a[0].lo, a[0].hi], [LINES, LINES, LINES, 0, LINES - 1]);
  } finally {
    if (client) await client.kill();
    if (agent) await agent.kill();
    await server.kill();
    await notify.kill();
  }
});

test('drain_timeout passes with a client that ignores close_stream_signal: its call ends UNAVAILABLE, exit 0, acked data in the table', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-drain-timeout');
  const server = new Server({ dir: path.join(dir, 's'), tables: [TABLE], metrics: true, drain: '2s' });
  let client;
  try {
    await server.start();
    client = steady(server, path.join(dir, 'never'));
    await waitFor(() => acksOf(client) >= 5, { what: 'steady acks' });
    server.proc.child.kill('SIGTERM');
    await waitFor(() => jsonLines(client).find((j) => 'close_signal' in j), { what: 'close_stream_signal' });
    const ackAtSignal = acksOf(client);
    // it goes on sending and being acked, then the call is ended
    await client.exitPromise;
    const res = jsonLines(client).at(-1);
    assert.equal(res.code, 'UNAVAILABLE', JSON.stringify(res));
    assert.ok(res.acks.length > ackAtSignal, 'acked while draining');
    assert.deepEqual(await server.proc.exitPromise, { code: 0, signal: null }, server.proc.tail());
    assert.ok(server.proc.log.some((l) => /drain_timeout passed with 1 call/.test(l)), server.proc.tail());
    const st = await perStream(server);
    const py = st.get(res.stream_id);
    assert.ok(py, JSON.stringify([...st]));
    // every acked batch is there once (a batch sent but not acked may be too: it was synced)
    assert.ok(py.n >= (res.acks.at(-1) + 1) * 3, JSON.stringify(py));
    assert.equal(py.d, py.n);
    assert.deepEqual([py.lo, py.hi], [0, py.n - 1]);
  } finally {
    if (client) await client.kill();
    await server.kill();
  }
});

test('POST /admin/drain: refused without credentials when a token is configured; with them, a drain', { timeout: 60000 }, async () => {
  const dir = tmpDir('e2e-drain-admin');
  const server = new Server({ dir: path.join(dir, 's'), tables: [TABLE], metrics: true, drain: '30s', token: 'sekret-drain-token' });
  try {
    await server.start();
    const post = (headers = {}) => fetch(`${server.metricsUrl}/admin/drain`, { method: 'POST', headers });
    let r = await post();
    assert.equal(r.status, 401);
    assert.match(r.headers.get('www-authenticate'), /Bearer/);
    r = await post({ authorization: 'Bearer wrong' });
    assert.equal(r.status, 401);
    r = await fetch(`${server.metricsUrl}/admin/drain`, { headers: { authorization: 'Bearer sekret-drain-token' } });
    assert.equal(r.status, 405);
    assert.equal(r.headers.get('allow'), 'POST');
    assert.deepEqual(await healthz(server), { status: 200, body: 'ok' });
    assert.equal(await server.metric('draining'), 0);
    assert.ok(server.proc.log.some((l) => /POST \/admin\/drain refused: 401/.test(l)), server.proc.tail());
    // refusals count as REST refusals (and against the address, as refuse_throttle does)
    const m = await server.metrics();
    assert.equal(m('rest_requests_total', 'route="other",code="401"'), 2, m.text.split('\n').filter((l) => /rest_requests/.test(l)).join('\n'));
    assert.equal(m('rest_requests_total', 'route="other",code="405"'), 1);

    // a stream open while it drains keeps the server up until it closes
    const stopFile = path.join(dir, 'stop');
    const client = new Proc('steady', '/usr/bin/python3', [CLIENT, `127.0.0.1:${server.port}`, 'steady',
      '--records', '2', '--pause-ms', '10', '--stop-file', stopFile, '--token', 'sekret-drain-token']);
    await waitFor(() => acksOf(client) >= 3, { what: 'steady acks' });
    r = await post({ authorization: 'Bearer sekret-drain-token' });
    assert.equal(r.status, 202);
    const body = await r.json();
    assert.equal(body.draining, true);
    assert.equal(body.drain_timeout_ms, 30000);
    assert.equal(body.open_calls, 1);
    assert.equal((await healthz(server)).status, 503);
    await waitFor(() => jsonLines(client).find((j) => 'close_signal' in j), { what: 'close_stream_signal' });
    fs.writeFileSync(stopFile, '');
    await client.exitPromise;
    assert.equal(jsonLines(client).at(-1).code, 'OK');
    assert.deepEqual(await server.proc.exitPromise, { code: 0, signal: null }, server.proc.tail());
    assert.ok(server.proc.log.some((l) => /POST \/admin\/drain by token/.test(l)), server.proc.tail());
  } finally {
    await server.kill();
  }
});

test('a second SIGTERM during a drain stops at once; the main port has no /admin/drain', { timeout: 60000 }, async () => {
  const dir = tmpDir('e2e-drain-twice');
  const server = new Server({ dir: path.join(dir, 's'), tables: [TABLE], metrics: true, drain: '60s' });
  let client;
  try {
    await server.start();
    const main = await fetch(`${server.url}/admin/drain`, { method: 'POST' }).catch((e) => e);
    // the main port speaks HTTP/2 only: an HTTP/1.1 request is no drain either way
    assert.equal(await server.metric('draining'), 0, String(main));
    client = steady(server, path.join(dir, 'never'));
    await waitFor(() => acksOf(client) >= 3, { what: 'steady acks' });
    server.proc.child.kill('SIGTERM');
    await waitFor(() => jsonLines(client).find((j) => 'close_signal' in j), { what: 'close_stream_signal' });
    server.proc.child.kill('SIGTERM');
    assert.deepEqual(await server.proc.exitPromise, { code: 0, signal: null }, server.proc.tail());
    await client.exitPromise;
    assert.equal(jsonLines(client).at(-1).code, 'UNAVAILABLE');
  } finally {
    if (client) await client.kill();
    await server.kill();
  }
});
