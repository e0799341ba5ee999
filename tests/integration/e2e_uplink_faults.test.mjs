// The uplink against servers that fail or misbehave. Each scenario: the agent creates its
// stream on the real runnel-server through a scripted fake endpoint (lib/h2fake.mjs) in
// pass-through mode; then the fake switches to a fault while more records are buffered; the
// agent must log the fault clearly (once per episode, not per retry), retry with backoff,
// and take nothing as acknowledged; then the fake passes through again (or the agent is
// restarted against the real server with the same data_dir) and DuckDB must find every
// record in the table exactly once. Also: pushback timing, slow loud auth retries, and the
// bandwidth cap measured.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { Agent, Server, run, sleep, tmpDir, waitFor } from './lib/harness.mjs';
import { H2Fake } from './lib/h2fake.mjs';
import { duckFrom, query, verifyTable } from './lib/table.mjs';

const TABLE = 'main.default.telemetry';

// An agent whose uplink group can take extra settings (e.g. max_bytes_per_sec).
// (uplinkExtra goes into the uplink group through the harness's agentConfig)
class UplinkAgent extends Agent {
  set url(u) {
    this.cfg.url = u;
  }
}

function appendLines(file, from, to, pad = 40) {
  let s = '';
  for (let i = from; i < to; i++) s += `rec ${i} ${'y'.repeat(pad)}\n`;
  fs.appendFileSync(file, s);
}

const stream0 = (agent) => agent.status()?.streams?.[0];
// acked, and in the table (committed: the agent released it), so that a later resume
// answered lower by a fake server (below) moves nothing the test compares
const allAcked = (agent, n) => {
  const s = stream0(agent);
  return s && s.records >= n && s.next_offset > 0 && s.acked === s.next_offset - 1 &&
    s.committed === s.acked && s;
};

// Lines of the agent's log at warn or error level that match re.
function loud(agent, re) {
  return agent.proc.log.filter((l) => / (warn|error) /.test(l) && re.test(l));
}

async function setup(name, { uplinkExtra, debug } = {}) {
  const dir = tmpDir(`e2e-upf-${name}`);
  const server = await new Server({ dir, tables: [TABLE] }).start();
  const fake = await new H2Fake({ target: server.port }).start();
  const file = path.join(dir, 'in.log');
  fs.writeFileSync(file, '');
  const agent = new UplinkAgent({
    dir, url: fake.url, uplinkExtra, sources: [{ name: 'f', paths: [file] }],
    agentExtra: debug ? 'log_level = "debug";' : '',
  });
  return { dir, server, fake, file, agent };
}

// Phase 1: the stream is created on the real server and the first records acked.
async function phase1(ctx, n = 100) {
  appendLines(ctx.file, 0, n);
  await ctx.agent.start();
  const wait = () => waitFor(() => allAcked(ctx.agent, n), { timeoutMs: 30000, what: 'phase 1 acked' })
    .catch((e) => { throw new Error(`${e.message}\n${ctx.agent.proc.tail()}`); });
  await wait();
  await sleep(600); // past linger_ms and a status write: no chunk of phase 1 still open
  return wait();
}

// Phase 3: every record in the table exactly once, rows per seq contiguous.
async function finalCheck(ctx, n) {
  await waitFor(() => allAcked(ctx.agent, n), { timeoutMs: 60000, what: `all ${n} records acked` })
    .catch((e) => { throw new Error(`${e.message}\n${ctx.agent.proc.tail()}`); });
  await ctx.agent.stop();
  await ctx.server.stop();
  const snap = await verifyTable(ctx.server.tableDir(TABLE));
  const [r] = await query(`SELECT count(*) AS n, count(DISTINCT payload) AS d, count(DISTINCT seq) AS s,
      min(seq) AS lo, max(seq) AS hi,
      count(*) FILTER (WHERE CAST(split_part(payload, ' ', 2) AS BIGINT) <> seq) AS misordered
      FROM ${duckFrom(snap.files)}`);
  assert.deepEqual([Number(r.n), Number(r.d), Number(r.s), Number(r.lo), Number(r.hi), Number(r.misordered)],
    [n, n, n, 0, n - 1, 0], 'every record exactly once, in order');
}

async function teardown(ctx) {
  await ctx.agent.kill();
  await ctx.fake.stop();
  await ctx.server.kill();
}

// The common shape: phase 1, fault with more data, checks, pass-through, exactly once.
// `expect` matches the one loud (warn/error) line of the episode; `detail`, if given, must be
// in the log (debug level included) on at least two retries.
async function faultScenario(name, mode, opts, { expect, detail, level = 'error', minCalls = 3, during } = {}) {
  const ctx = await setup(name, { debug: !!detail });
  try {
    const p1 = await phase1(ctx);
    ctx.fake.mode(mode, opts);
    for (let k = 0; k < 4; k++) {
      appendLines(ctx.file, 100 + k * 100, 200 + k * 100);
      await sleep(150);
    }
    await waitFor(() => ctx.fake.callsIn(mode).length >= minCalls && loud(ctx.agent, expect).length,
      { timeoutMs: 30000, what: `${minCalls} calls in mode ${mode} and a log line ${expect}` })
      .catch((e) => { throw new Error(`${e.message}\n${ctx.agent.proc.tail()}`); });
    if (detail) {
      await waitFor(() => ctx.agent.proc.log.filter((l) => detail.test(l)).length >= 2,
        { timeoutMs: 20000, what: `${detail} twice` });
    }
    const lines = loud(ctx.agent, expect);
    assert.equal(lines.length, 1, `logged once per episode, not per retry:\n${lines.join('\n')}`);
    assert.match(lines[0], new RegExp(` ${level} `), lines[0]);
    assert.match(lines[0], /retry in \d+ ms/);
    // the status may still describe an earlier moment than the log line just seen: wait
    // until it shows the failed calls before judging it.
    const st = await waitFor(() => {
      const s = stream0(ctx.agent);
      return s && s.uplink.failures >= minCalls - 1 && s.next_offset > p1.next_offset && s;
    }, { timeoutMs: 20000, what: `the status to show ${minCalls - 1} failed calls` })
      .catch((e) => { throw new Error(`${e.message}: ${JSON.stringify(stream0(ctx.agent))}`); });
    assert.equal(st.acked, p1.acked, 'nothing taken as acked during the fault');
    assert.equal(st.committed, p1.committed, 'nothing released during the fault');
    assert.ok(st.next_offset > p1.next_offset, 'more chunks buffered meanwhile');
    assert.ok(st.buffered_bytes > 0);
    assert.ok(st.uplink.failures >= minCalls - 1, JSON.stringify(st.uplink));
    if (during) await during(ctx, st);
    ctx.fake.mode('pass');
    await finalCheck(ctx, 500);
  } finally {
    await teardown(ctx);
  }
}

test('UNAVAILABLE: retried with backoff, warned once, nothing lost', { timeout: 120000 }, () =>
  faultScenario('unavail', 'status', { grpcStatus: 14, message: 'server is draining' }, {
    expect: /server ended the call: UNAVAILABLE: server is draining/, level: 'warn',
  }));

test('RESOURCE_EXHAUSTED with grpc-retry-pushback-ms: waits at least that long', { timeout: 120000 }, () =>
  faultScenario('pushback', 'status', { grpcStatus: 8, message: 'WAL queue full', pushbackMs: 1500 }, {
    expect: /RESOURCE_EXHAUSTED: WAL queue full \(server asks to wait 1500 ms\)/, level: 'warn',
    during: async (ctx, st) => {
      const t = ctx.fake.callsIn('status').map((c) => c.t);
      for (let i = 1; i < t.length; i++) assert.ok(t[i] - t[i - 1] >= 1450, `gap ${t[i] - t[i - 1]} ms < 1500`);
      assert.ok(st.uplink.pushbacks >= 2, JSON.stringify(st.uplink));
      // the live status (socket) may catch the brief moment of a retry's call: the stream
      // must be seen waiting out the pushback, with the status that asked for it
      await waitFor(() => stream0(ctx.agent)?.uplink.state === 'waiting', { what: 'state waiting' });
      assert.equal(stream0(ctx.agent).uplink.last_status, 8);
    },
  }));

test('RESOURCE_EXHAUSTED without pushback: normal backoff', { timeout: 120000 }, () =>
  faultScenario('pushback0', 'status', { grpcStatus: 8, message: 'busy' }, {
    expect: /RESOURCE_EXHAUSTED: busy; retry/, level: 'warn', minCalls: 5,
    during: async (ctx) => {
      const t = ctx.fake.callsIn('status').map((c) => c.t);
      // backoff_max_ms is 1000 in the test config: no gap near 1500
      for (let i = 1; i < t.length; i++) assert.ok(t[i] - t[i - 1] < 1400, `gap ${t[i] - t[i - 1]} ms`);
    },
  }));

test('UNAUTHENTICATED and PERMISSION_DENIED: retried slowly, an error every time', { timeout: 120000 }, async () => {
  const ctx = await setup('auth');
  try {
    const p1 = await phase1(ctx);
    for (const [code, name] of [[16, 'UNAUTHENTICATED'], [7, 'PERMISSION_DENIED']]) {
      ctx.fake.mode('status', { grpcStatus: code, message: 'token expired', trailersOnly: code === 7 });
      appendLines(ctx.file, code === 16 ? 100 : 300, code === 16 ? 300 : 500);
      const re = new RegExp(`${name}: token expired.*retry in (\\d+) ms \\(slow`);
      await waitFor(() => loud(ctx.agent, re).length >= 3, { timeoutMs: 30000, what: `3 ${name} errors` })
        .catch((e) => { throw new Error(`${e.message}\n${ctx.agent.proc.tail()}`); });
      const lines = loud(ctx.agent, re);
      assert.ok(lines.every((l) => / error /.test(l)), lines.join('\n'));
      assert.ok(lines.every((l) => Number(l.match(re)[1]) === 1000), 'slow retry = backoff_max_ms');
      const t = ctx.fake.callsIn('status').slice(-3).map((c) => c.t);
      assert.ok(t[2] - t[1] >= 950 && t[1] - t[0] >= 950, `gaps ${t[1] - t[0]}, ${t[2] - t[1]}`);
      assert.equal(stream0(ctx.agent).acked, p1.acked);
    }
    ctx.fake.mode('pass');
    await finalCheck(ctx, 500);
  } finally {
    await teardown(ctx);
  }
});

// libcurl 7.88 drops the headers of a stream whose trailers-only answer and RST_STREAM it
// reads at once, and never ends the transfer while the upload is paused: the uplink sees
// that libcurl stopped reading the call's socket and ends the call at once (a fault without
// a status), instead of after ack_timeout_ms.
test('a trailers-only answer reset in the same write: the call ends at once, nothing lost', { timeout: 120000 }, () =>
  faultScenario('status-rst', 'refuse-rst', { grpcStatus: 16, message: 'token expired' }, {
    expect: /server ended the call before any response header without a status libcurl could read/,
  }));

test('close_stream_signal: drains, reconnects, resumes; nothing lost or repeated', { timeout: 120000 }, async () => {
  const ctx = await setup('close');
  try {
    await phase1(ctx);
    ctx.fake.mode('relay', { closeSecs: 3 });
    appendLines(ctx.file, 100, 300);
    await waitFor(() => ctx.agent.proc.log.some((l) => /drained, reconnecting/.test(l)),
      { timeoutMs: 30000, what: 'drain and reconnect' })
      .catch((e) => { throw new Error(`${e.message}\n${ctx.agent.proc.tail()}`); });
    assert.ok(ctx.agent.proc.log.some((l) => / info uplink: stream \d+: server asks to close within 3s; draining/.test(l)));
    // the drained call's reconnect also met the relay (signal again), then pass-through
    await waitFor(() => ctx.fake.callsIn('relay').length >= 2, { what: 'reconnect after drain' });
    ctx.fake.mode('pass');
    appendLines(ctx.file, 300, 500);
    await finalCheck(ctx, 500);
    assert.equal(loud(ctx.agent, /uplink/).filter((l) => !/connection lost|reset/.test(l)).length, 0,
      'a close signal is no fault');
  } finally {
    await teardown(ctx);
  }
});

// The switch to the fault drops the open connection ("connection lost"); a GOAWAY followed
// by the connection's close is the same kind of failure, so it belongs to that episode and
// its retries are logged at debug level.
test('HTTP/2 GOAWAY mid-call: retried with backoff, nothing lost', { timeout: 180000 }, async () => {
  await faultScenario('goaway', 'goaway', { lastStreamId: 'current' }, {
    expect: /connection lost/, detail: /HTTP\/2 stream \d+ was not closed cleanly/, level: 'warn',
  });
  // last_stream_id 0 (the call was refused) with PROTOCOL_ERROR: libcurl 7.88 also waits
  // for the connection to close
  await faultScenario('goaway0', 'goaway', { lastStreamId: 'none', code: 2 }, {
    expect: /connection lost/, detail: /uplink: stream 1: again.*(GOAWAY|REFUSED|not closed cleanly|connection lost)/,
    level: 'warn',
  });
});

test('RST_STREAM in the middle of a chunk: retried, nothing lost', { timeout: 120000 }, () =>
  faultScenario('rst', 'rst', {}, {
    expect: /HTTP\/2: the call's stream was reset \(.*INTERNAL_ERROR/, level: 'warn',
  }));

test('a gRPC message that is not protobuf is a fault', { timeout: 120000 }, () =>
  faultScenario('garbage', 'garbage-msg', {}, {
    expect: /bad answer from the server: a 6-byte response message is not a valid PersistentStreamResponse/,
  }));

test('a body that is not gRPC framing is a fault', { timeout: 120000 }, () =>
  faultScenario('framing', 'not-framing', {}, {
    expect: /bad answer from the server: response body is not gRPC framing \(a compressed-flag byte other than 0 or 1; the body starts "<html><body>502/,
  }));

test('an HTTP/1.1 server is a fault named as such', { timeout: 120000 }, () =>
  faultScenario('http1', 'http1', {}, {
    expect: /no HTTP\/2 answer: the server closed the connection .*is the URL's server an HTTP\/2 server/, level: 'warn',
  }));

test('a non-200 :status is a fault', { timeout: 120000 }, () =>
  faultScenario('http503', 'http-status', { status: 503 }, {
    expect: /bad answer from the server: HTTP status 503, content-type text\/html, not a gRPC answer/,
  }));

test('a wrong content-type is a fault', { timeout: 120000 }, () =>
  faultScenario('ctype', 'content-type', {}, {
    expect: /bad answer from the server: content-type "application\/json" is not application\/grpc/,
  }));

test('a resume answer above anything sent is a fault; nothing is deleted', { timeout: 120000 }, () =>
  faultScenario('resume', 'resume-above', { offset: 1e9 }, {
    expect: /resume answer claims offset 1000000000 is committed, but the newest chunk this agent has is \d+/,
  }));

test('an ack for an offset never sent is a fault; nothing is deleted', { timeout: 120000 }, () =>
  faultScenario('ack', 'ack-unsent', { offset: 1e9 }, {
    expect: /ack for offset 1000000000 that was never sent/,
  }));

// Transport faults that need a different URL: the agent is restarted with it (same
// data_dir), then restarted with the real URL again.
async function urlScenario(name, badUrl, expect, level, extraSetup) {
  const ctx = await setup(name);
  let extra;
  try {
    const p1 = await phase1(ctx);
    await ctx.agent.stop();
    extra = extraSetup ? await extraSetup(ctx) : null;
    ctx.agent.url = badUrl(ctx, extra);
    appendLines(ctx.file, 100, 500);
    await ctx.agent.start();
    await waitFor(() => {
      const s = stream0(ctx.agent);
      return s && s.records >= 500 && s.uplink.failures >= 3 && loud(ctx.agent, expect).length;
    }, { timeoutMs: 30000, what: `3 failures and ${expect}` })
      .catch((e) => { throw new Error(`${e.message}\n${ctx.agent.proc.tail()}`); });
    const lines = loud(ctx.agent, expect);
    assert.equal(lines.length, 1, `once per episode:\n${lines.join('\n')}`);
    assert.match(lines[0], new RegExp(` ${level} `));
    assert.match(lines[0], /retry in \d+ ms with backoff/);
    const st = stream0(ctx.agent);
    assert.equal(st.acked, p1.acked);
    assert.equal(st.uplink.state, st.uplink.state === 'connecting' ? 'connecting' : 'waiting');
    await ctx.agent.stop();
    ctx.agent.url = ctx.fake.url;
    await ctx.agent.start();
    await finalCheck(ctx, 500);
  } finally {
    if (extra && extra.close) extra.close();
    await teardown(ctx);
  }
}

test('DNS failure: retried with backoff, warned once', { timeout: 120000 }, () =>
  urlScenario('dns', (ctx) => `http://nonexistent.invalid:${ctx.fake.port}`,
    /DNS: cannot resolve the server's host name \(Could not resolve host: nonexistent\.invalid\)/, 'warn'));

test('TLS to a plain-text server: retried with backoff, one clear error', { timeout: 120000 }, () =>
  urlScenario('tls', (ctx) => `https://127.0.0.1:${ctx.fake.port}`,
    /TLS: handshake failed .*the server does not speak TLS: use http:\/\//, 'error'));

test('TLS with an untrusted certificate: retried with backoff, one clear error', { timeout: 120000 }, async (t) => {
  const ssl = await run('openssl', ['version']).catch(() => ({ code: 1 }));
  if (ssl.code !== 0) {
    t.skip('no openssl CLI');
    return;
  }
  await urlScenario('cert', (ctx, srv) => `https://localhost:${srv.address().port}`,
    /TLS: handshake failed \(SSL certificate problem: self.signed certificate/, 'error', async (ctx) => {
      const key = path.join(ctx.dir, 'key.pem');
      const cert = path.join(ctx.dir, 'cert.pem');
      const r = await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key,
        '-out', cert, '-days', '1', '-subj', '/CN=localhost']);
      assert.equal(r.code, 0, r.stderr);
      const srv = tls.createServer({ key: fs.readFileSync(key), cert: fs.readFileSync(cert), ALPNProtocols: ['h2'] },
        (s) => s.on('error', () => {}));
      srv.on('tlsClientError', () => {});
      await new Promise((res) => srv.listen(0, '127.0.0.1', res));
      return srv;
    });
});

test('bandwidth cap: the upload takes at least bytes / max_bytes_per_sec', { timeout: 180000 }, async () => {
  const CAP = 100000; // bytes per second
  const ctx = await setup('rate', { uplinkExtra: `max_bytes_per_sec = ${CAP};` });
  try {
    // Incompressible payloads so the compressed chunks are large: ~600 KB to send.
    let s = '';
    for (let i = 0; i < 4000; i++) {
      let hex = '';
      for (let k = 0; k < 40; k++) hex += Math.floor(Math.random() * 0x100000000).toString(16).padStart(8, '0');
      s += `rec ${i} ${hex.slice(0, 150)}\n`;
    }
    fs.writeFileSync(ctx.file, s);
    const t0 = Date.now();
    await ctx.agent.start();
    const st = await waitFor(() => allAcked(ctx.agent, 4000), { timeoutMs: 120000, what: 'all acked' })
      .catch((e) => { throw new Error(`${e.message}\n${ctx.agent.proc.tail()}`); });
    const secs = (Date.now() - t0) / 1000;
    const bytes = st.uplink.bytes_sent;
    const floor = (0.8 * bytes) / CAP;
    console.log(`# ${bytes} bytes in ${secs.toFixed(2)} s = ${(bytes / secs).toFixed(0)} B/s with a cap of ${CAP} B/s; ${st.uplink.rate_waits} waits`);
    assert.ok(bytes > 300000, `enough bytes to measure (${bytes})`);
    assert.ok(secs >= floor, `${secs} s < ${floor} s: the cap was not honoured`);
    assert.ok(secs <= (3 * bytes) / CAP + 10, `${secs} s: far slower than the cap`);
    assert.ok(st.uplink.rate_waits > 0);
    await finalCheck(ctx, 4000);
  } finally {
    await teardown(ctx);
  }
});

// The real thing: runnel-server over its WAL limit ends calls with RESOURCE_EXHAUSTED and a
// pushback until a flush truncates the WAL; the agent waits, is loud once, loses nothing.
test('runnel-server pushback (wal_max_bytes): honoured, warned once, exactly once', { timeout: 180000 }, async (t) => {
  const dir = tmpDir('e2e-upf-realpb');
  const server = new Server({ dir, tables: [TABLE], flushMs: 2000, extra: 'wal_max_bytes = "64K";' });
  try {
    await server.start();
  } catch (e) {
    if (/wal_max_bytes/.test(e.message)) {
      t.skip('this runnel-server has no wal_max_bytes');
      return;
    }
    throw e;
  }
  const file = path.join(dir, 'in.log');
  const N = 20000;
  let s = '';
  for (let i = 0; i < N; i++) s += `rec ${i} ${Math.random().toString(36).repeat(3)}\n`;
  fs.writeFileSync(file, s);
  const agent = new UplinkAgent({ dir, url: server.url, sources: [{ name: 'f', paths: [file] }], lingerMs: 50 });
  const ctx = { agent, server, fake: { stop: () => {} } };
  try {
    await agent.start();
    const st = await waitFor(() => allAcked(agent, N), { timeoutMs: 120000, what: 'all acked' })
      .catch((e) => { throw new Error(`${e.message}\n${agent.proc.tail()}`); });
    assert.ok(st.uplink.pushbacks >= 1, JSON.stringify(st.uplink));
    // once per episode: again only after the stream had recovered (10 s without failing)
    const lines = loud(agent, /RESOURCE_EXHAUSTED/);
    const recovered = agent.proc.log.filter((l) => /recovered after/.test(l)).length;
    assert.ok(lines.length >= 1 && lines.length <= recovered + 1, lines.join('\n'));
    assert.match(lines[0], / warn .*server asks to wait \d+ ms/);
    await finalCheck(ctx, N);
  } finally {
    await teardown(ctx);
  }
});
