// Abuse limits of runnel-server (issue 12), each attack run against the real server while a
// well-behaved python3-grpcio client (lib/goodclient.mjs) keeps streaming; every test prints
// that client's p99 ack latency and fails if the client stops being served. Attackers are
// hand-made sockets (node's net module, HTTP/2 frames built by hand) so they can do what no
// real client does. See server/README.md "Limits" for each limit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { Server, serverBin, tmpDir, waitFor, zbClient } from './lib/harness.mjs';
import { GoodClient } from './lib/goodclient.mjs';
import { END_HEADERS, END_STREAM, PREFACE, T, frame, literal, requestBlock } from './lib/h2raw.mjs';

const TABLE = 'main.default.telemetry';
const P99_SANE_MS = 3000; // a loaded 2-core CI machine; an unserved client never acks at all

// A TCP connection that records when the server closed it.
function rawConn(port, { host = '127.0.0.1', localAddress } = {}) {
  const s = net.connect({ port, host, localAddress });
  s.on('error', () => {});
  s.on('data', () => {});
  s.closedP = new Promise((resolve) => s.on('close', () => {
    s.closedAt = Date.now();
    resolve();
  }));
  s.connected = new Promise((resolve) => s.on('connect', resolve));
  return s;
}

// Log lines of the server after line number `from` that match re.
function linesSince(server, from, re = /./) {
  return server.proc.since(from).filter((l) => re.test(l));
}

test('max_connections: connections beyond it are closed at once, the good client goes on', async () => {
  const dir = tmpDir('abuse-maxconn');
  const server = await new Server({ dir, metrics: true, extra: 'max_connections = 20;' }).start();
  const good = new GoodClient(server);
  try {
    await good.progress(5);
    const from = server.proc.lines;
    const socks = [];
    for (let i = 0; i < 100; i++) socks.push(rawConn(server.port));
    // 19 fit beside the good client's connection; the other 81 are closed by the server
    await waitFor(async () => (await server.metric('connections_rejected_total', 'reason="max_connections"')) >= 81,
      { what: '81 connections rejected' });
    await waitFor(() => socks.filter((s) => s.closedAt).length >= 81, { what: 'rejected sockets closed' });
    await good.progress(20);
    assert.equal(await server.metric('connections_open'), 20);
    // one line for the episode, not one per connection
    assert.ok(linesSince(server, from, /max_connections/).length <= 2, server.proc.tail());
    for (const s of socks) s.destroy();
    await waitFor(async () => (await server.metric('connections_open')) === 1, { what: 'attackers gone' });
    // a new connection is served again
    const r = await zbClient(server, 'ingest', '--batches', '2');
    assert.equal(r.acks.length, 2);
    const g = await good.stop();
    assert.ok(g.latency_ms.p99 < P99_SANE_MS, `p99 ${g.latency_ms.p99} ms`);
  } finally {
    good.proc.kill();
    await server.stop();
  }
});

test('accept failing (open-file limit reached) pauses the listener: few log lines, then recovery', async () => {
  const dir = tmpDir('abuse-emfile');
  // the real server under a low open-file limit, the way an operator's LimitNOFILE would be
  const wrapper = path.join(dir, 'server-nofile.sh');
  fs.writeFileSync(wrapper, `#!/bin/sh\nulimit -n 64\nexec "${serverBin}" "$@"\n`, { mode: 0o755 });
  const server = await new Server({ dir, bin: wrapper, flushMs: 1000 }).start();
  const good = new GoodClient(server);
  const socks = [];
  try {
    await good.progress(5);
    const from = server.proc.lines;
    for (let i = 0; i < 120; i++) socks.push(rawConn(server.port));
    await waitFor(() => linesSince(server, from, /accept failed/).length > 0,
      { what: 'the accept failure line', timeoutMs: 20000 });
    // the listener keeps failing for as long as the attack holds the descriptors; the good
    // client's stream (already connected) is served meanwhile
    await good.progress(30);
    const during = server.proc.since(from);
    assert.equal(during.filter((l) => /accept/.test(l)).length, 1, during.join('\n'));
    assert.ok(during.join('\n').length < 20000, `log grew: ${during.length} lines`);
    for (const s of socks) s.destroy();
    await waitFor(() => linesSince(server, from, /accepting connections again after \d+ failed accepts/).length === 1,
      { what: 'the recovery line' });
    const r = await zbClient(server, 'ingest', '--batches', '2');
    assert.equal(r.acks.length, 2);
    const g = await good.stop();
    assert.ok(g.latency_ms.p99 < P99_SANE_MS, `p99 ${g.latency_ms.p99} ms`);
  } finally {
    for (const s of socks) s.destroy();
    good.proc.kill();
    await server.stop();
  }
});

// --- HTTP/2 by hand: frames and HPACK literals (without indexing, no Huffman) ---
// Opens a raw h2c connection that has sent the preface and an empty SETTINGS.
async function h2conn(port, opts) {
  const s = rawConn(port, opts);
  await s.connected;
  s.write(Buffer.concat([PREFACE, frame(T.SETTINGS, 0, 0)]));
  return s;
}

function ping(n) {
  const p = Buffer.alloc(8);
  p.writeUInt32BE(n, 4);
  return frame(T.PING, 0, 0, p);
}

test('idle_timeout is not defeated by PINGs; header_timeout closes half-sent preface and header blocks', async () => {
  const dir = tmpDir('abuse-hdr');
  const server = await new Server({ dir, metrics: true, extra: 'idle_timeout = "2s";\nheader_timeout = "1s";' }).start();
  const good = new GoodClient(server);
  const timers = [];
  try {
    await good.progress(5);
    const from = server.proc.lines;
    // 1. the PING keeper: a PING every 500 ms, nothing else (before, it was never closed)
    const pinger = await h2conn(server.port);
    let pings = 0;
    timers.push(setInterval(() => pinger.write(ping(++pings)), 500));
    // 2. a HEADERS frame without END_HEADERS, then nothing
    const half = await h2conn(server.port);
    const block = requestBlock();
    half.write(frame(T.HEADERS, END_STREAM, 1, block.subarray(0, 20)));
    // 3. a header block kept open with a small CONTINUATION every 300 ms
    const dribble = await h2conn(server.port);
    dribble.write(frame(T.HEADERS, END_STREAM, 1, requestBlock()));
    let n = 0;
    timers.push(setInterval(() => dribble.write(frame(T.CONTINUATION, 0, 1, literal(`x-pad-${n++}`, 'y'))), 300));
    // 4. a TCP connection that never sends the preface
    const mute = rawConn(server.port);
    await mute.connected;
    const t0 = Date.now();

    await waitFor(() => half.closedAt && dribble.closedAt && mute.closedAt,
      { what: 'half-open header block, dribbled block and preface-less connection closed', timeoutMs: 15000 });
    assert.equal(await server.metric('connections_closed_total', 'reason="header_timeout"'), 3);
    assert.ok(n >= 2, 'the dribbler sent CONTINUATIONs before it was closed');
    await waitFor(() => pinger.closedAt, { what: 'the PING keeper closed as idle', timeoutMs: 15000 });
    assert.ok(pings >= 3, `it had sent ${pings} PINGs`);
    assert.ok(pinger.closedAt - t0 >= 1500, 'closed by idle_timeout, not before');
    assert.ok((await server.metric('connections_closed_total', 'reason="idle"')) >= 1);
    assert.ok(linesSince(server, from, /header block not complete within header_timeout/).length >= 1, server.proc.tail());
    assert.ok(linesSince(server, from, /HTTP\/2 preface not complete within header_timeout/).length >= 1, server.proc.tail());
    // the good client's connection has a call open all along: neither limit touches it
    await good.progress(5);
    const g = await good.stop();
    assert.ok(g.latency_ms.p99 < P99_SANE_MS, `p99 ${g.latency_ms.p99} ms`);
  } finally {
    for (const t of timers) clearInterval(t);
    good.proc.kill();
    await server.stop();
  }
});

// Unauthenticated calls as fast as one socket takes them, from localAddress, reconnecting
// whenever the server closes the connection, until `total` calls were sent.
async function flood(port, total, localAddress, deadlineMs = 40000) {
  let sent = 0;
  let conns = 0;
  const end = Date.now() + deadlineMs;
  const hdr = requestBlock({ 'x-databricks-zerobus-table-name': TABLE });
  while (sent < total && Date.now() < end) {
    const s = rawConn(port, { localAddress });
    conns++;
    if (!(await Promise.race([s.connected.then(() => true), s.closedP.then(() => false)]))) continue;
    s.write(Buffer.concat([PREFACE, frame(T.SETTINGS, 0, 0)]));
    for (let sid = 1; !s.closedAt && sent < total && sid < 2 ** 30;) {
      const frames = [];
      for (let i = 0; i < 100; i++, sid += 2) frames.push(frame(T.HEADERS, END_STREAM | END_HEADERS, sid, hdr));
      sent += frames.length;
      if (!s.write(Buffer.concat(frames))) await Promise.race([new Promise((r) => s.once('drain', r)), s.closedP]);
      await new Promise((r) => setImmediate(r));
    }
    s.destroy();
  }
  return { sent, conns };
}

test('refuse_throttle: 50,000 unauthenticated calls from one address are throttled, few log lines', async () => {
  const dir = tmpDir('abuse-throttle');
  const server = await new Server({ dir, metrics: true, token: 'good-token', extra: 'refuse_cooldown = "2s";' }).start();
  const good = new GoodClient(server, { token: 'good-token' });
  try {
    await good.progress(5);
    const from = server.proc.lines;
    const t0 = Date.now();
    const r = await flood(server.port, 50000, '127.0.0.2');
    console.log(`# flood: ${r.sent} calls on ${r.conns} connections in ${Date.now() - t0} ms`);
    assert.equal(r.sent, 50000);
    assert.ok(await server.metric('throttle_episodes_total') >= 1);
    assert.ok(await server.metric('connections_rejected_total', 'reason="throttled"') > 0);
    await good.progress(10);
    const during = server.proc.since(from);
    assert.ok(during.length < 40, `${during.length} log lines:\n${during.join('\n')}`);
    assert.ok(during.some((l) => /127\.0\.0\.2: more than 50 refused calls in a second/.test(l)), during.join('\n'));
    assert.ok(!during.some((l) => /127\.0\.0\.1/.test(l)), 'the good client was never refused');
    await waitFor(() => linesSince(server, from, /127\.0\.0\.2: no longer throttled; \d+ connection/).length >= 1,
      { what: 'the end of the throttle' });
    await waitFor(async () => (await server.metric('peers_throttled')) === 0, { what: 'no address throttled' });
    const g = await good.stop();
    assert.ok(g.latency_ms.p99 < P99_SANE_MS, `p99 ${g.latency_ms.p99} ms`);
  } finally {
    good.proc.kill();
    await server.stop();
  }
});

// One HTTP/1.1 request from localAddress; resolves {status, headers, body}.
function httpReq(port, path, { localAddress, headers = {}, body = '' } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', localAddress, headers, agent: false },
      (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: text }));
      });
    req.on('error', reject);
    req.end(body);
  });
}

test('refuse_throttle covers REST and token requests: a throttled address gets 429 at once, others are served', async () => {
  const dir = tmpDir('abuse-rest-throttle');
  const server = await new Server({ dir, metrics: true, token: 'good-token', extra: 'refuse_cooldown = "2s"; refuse_throttle = 20;' }).start();
  const good = new GoodClient(server, { token: 'good-token' });
  try {
    await good.progress(5);
    const form = { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from('nobody:wrong').toString('base64')}` };
    const bad = { 'content-type': 'application/json', authorization: 'Bearer wrong' };
    // wrong-token inserts, in waves of 40 at once, until the address is throttled (more
    // than 20 refusals within one second)
    let refused = 0;
    let r;
    for (let wave = 0; !r; wave++) {
      assert.ok(wave < 100, 'never throttled');
      const rs = await Promise.all(Array.from({ length: 40 }, () => httpReq(server.metricsPort,
        `/zerobus/v1/tables/${TABLE}/insert`, { localAddress: '127.0.0.2', headers: bad, body: '[{"a":1}]' })));
      refused += rs.filter((x) => x.status === 401).length;
      r = rs.find((x) => x.status !== 401);
    }
    console.log(`# ${refused} refused inserts, then ${r.status}`);
    assert.ok(refused >= 20, `throttled after ${refused} refusals`);
    assert.equal(r.status, 429, r.body);
    assert.equal(JSON.parse(r.body).error_code, 'TOO_MANY_REQUESTS');
    assert.ok(Number(r.headers['retry-after']) >= 1, JSON.stringify(r.headers));
    // while throttled a token request costs nothing: 429 at once, no secret checked
    const t = await httpReq(server.metricsPort, '/oidc/v1/token', { localAddress: '127.0.0.2', headers: form, body: 'grant_type=client_credentials' });
    assert.equal(t.status, 429, t.body);
    assert.ok(await server.metric('rest_throttled_total') >= 2);
    // another address is served meanwhile, on the HTTP port and with gRPC
    const ok = await httpReq(server.metricsPort, `/zerobus/v1/tables/${TABLE}/insert`,
      { localAddress: '127.0.0.1', headers: { 'content-type': 'application/json', authorization: 'Bearer good-token' }, body: '[{"a":1}]' });
    assert.equal(ok.status, 200, ok.body);
    await good.progress(10);
    const g = await good.stop();
    assert.ok(g.latency_ms.p99 < P99_SANE_MS, `p99 ${g.latency_ms.p99} ms`);
    // after the cool-down the address is heard again (and refused for its credentials)
    await waitFor(async () => (await server.metric('peers_throttled')) === 0, { what: 'no address throttled' });
    const again = await httpReq(server.metricsPort, '/oidc/v1/token', { localAddress: '127.0.0.2', headers: form, body: 'grant_type=client_credentials' });
    assert.equal(again.status, 401);
  } finally {
    good.proc.kill();
    await server.stop();
  }
});

function rssMiB(pid) {
  const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB/m);
  return Number(m[1]) / 1024;
}

test('partial_budget_bytes: 100 streams stalling inside 10 MB messages do not grow the server', async () => {
  const http2 = await import('node:http2');
  const dir = tmpDir('abuse-partial');
  const server = await new Server({ dir, metrics: true, extra: 'partial_budget_bytes = "32M";' }).start();
  const good = new GoodClient(server);
  // (node's own cap on what a session may buffer is lifted: the attacker queues 900 MB)
  const session = http2.connect(`http://127.0.0.1:${server.port}`, { maxSessionMemory: 4096 });
  session.on('error', () => {});
  try {
    await good.progress(5);
    const rss0 = rssMiB(server.proc.child.pid);
    // a gRPC message header announcing 10 MB, then 9 MB of it, then nothing
    const head = Buffer.from([0, 0, 0xa0, 0, 0]);
    const body = Buffer.alloc(9 << 20, 0x61);
    const ended = [];
    for (let i = 0; i < 100; i++) {
      const st = session.request({ ':method': 'POST', ':path': '/databricks.zerobus.Zerobus/EphemeralStream',
        'content-type': 'application/grpc', te: 'trailers', 'x-databricks-zerobus-table-name': TABLE },
      { endStream: false });
      st.on('error', () => {});
      st.on('trailers', (h) => ended.push(h['grpc-status']));
      st.on('response', (h) => { if (h['grpc-status']) ended.push(h['grpc-status']); });
      st.write(head);
      st.write(body);
    }
    let maxPartial = 0;
    let maxRss = rss0;
    await waitFor(async () => {
      maxPartial = Math.max(maxPartial, await server.metric('partial_bytes'));
      maxRss = Math.max(maxRss, rssMiB(server.proc.child.pid));
      return (await server.metric('partial_budget_refusals_total')) >= 50;
    }, { what: 'half the streams refused for the budget' });
    await good.progress(20);
    maxRss = Math.max(maxRss, rssMiB(server.proc.child.pid));
    console.log(`# partial: max ${(maxPartial / 1048576).toFixed(1)} MiB, server RSS ${rss0.toFixed(0)} -> max ${maxRss.toFixed(0)} MiB; ${ended.length} streams ended`);
    // without the budget the server would hold ~900 MiB; 2 x budget + growth of the last
    // buffers is the bound (ASan's quarantine adds freed memory to RSS in sanitizer builds)
    assert.ok(maxPartial <= 2 * 32 * 1048576 + (16 << 20), `partial bytes ${maxPartial}`);
    assert.ok(maxRss - rss0 < 500, `RSS grew by ${maxRss - rss0} MiB`);
    assert.ok(ended.every((s) => s === '8'), `statuses ${[...new Set(ended)]}`); // RESOURCE_EXHAUSTED
    assert.ok(linesSince(server, 0, /partial_budget_bytes/).length <= 2, server.proc.tail());
    const g = await good.stop();
    assert.ok(g.latency_ms.p99 < P99_SANE_MS, `p99 ${g.latency_ms.p99} ms`);
  } finally {
    session.destroy();
    good.proc.kill();
    await server.stop();
  }
});

test('HTTP port: an endless header stream is cut, a stalled request times out, /metrics keeps answering', async () => {
  const dir = tmpDir('abuse-http');
  const server = await new Server({ dir, metrics: true, extra: 'http_timeout = "2s";' }).start();
  const good = new GoodClient(server);
  try {
    await good.progress(5);
    const rss0 = rssMiB(server.proc.child.pid);
    // 1. headers without end, as fast as the socket takes them
    const endless = rawConn(server.metricsPort);
    await endless.connected;
    endless.write('GET /metrics HTTP/1.1\r\nHost: x\r\n');
    const line = `X-Pad: ${'a'.repeat(1000)}\r\n`;
    let sent = 0;
    while (!endless.closedAt && sent < (512 << 20)) {
      const chunk = line.repeat(64);
      sent += chunk.length;
      if (!endless.write(chunk)) await Promise.race([new Promise((r) => endless.once('drain', r)), endless.closedP]);
    }
    await endless.closedP;
    console.log(`# endless headers: closed after ${(sent / 1048576).toFixed(1)} MiB sent`);
    assert.ok(sent < (64 << 20), `the server took ${sent} bytes of headers`);
    // 2. a request that stops in the middle of its headers (libevent 2.1's timeout counts
    // from the last byte read: a client trickling a byte now and then is bounded by
    // http_max_header_bytes only, see docs/operations.md)
    const slow = rawConn(server.metricsPort);
    await slow.connected;
    slow.write('GET /metrics HTTP/1.1\r\nX-A: b\r\n');
    const t0 = Date.now();
    await waitFor(() => slow.closedAt, { what: 'the silent request closed by http_timeout', timeoutMs: 15000 });
    assert.ok(slow.closedAt - t0 >= 1500, 'closed by the timeout, not before');
    // the operator's curl still gets its answer
    const r = await fetch(`http://127.0.0.1:${server.metricsPort}/metrics`);
    assert.equal(r.status, 200);
    assert.match(await r.text(), /runnel_server_connections_open/);
    const rss = rssMiB(server.proc.child.pid);
    assert.ok(rss - rss0 < 100, `RSS grew by ${rss - rss0} MiB`);
    await good.progress(5);
    const g = await good.stop();
    assert.ok(g.latency_ms.p99 < P99_SANE_MS, `p99 ${g.latency_ms.p99} ms`);
  } finally {
    good.proc.kill();
    await server.stop();
  }
});
