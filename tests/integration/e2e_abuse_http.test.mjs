// Abuse limits of the HTTP port (metrics_listen: /metrics, /healthz, REST) and of malformed
// HTTP/2 requests on the gRPC port (issue 12), against the real server: idle connections past
// http_max_connections, TLS clients that fail their handshake (plain text, a certificate of
// another CA, silence until http_timeout), and an HTTP/2 request with an upper-case header
// name. Each is counted in /metrics and logged with the peer, and a well-behaved client (curl)
// is served once the attack is over. See docs/operations.md "Limits" and "TLS".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Server, metricsOf, run, tmpDir, waitFor } from './lib/harness.mjs';
import { makeCa, makeLeaf, serverTls } from './lib/pki.mjs';
import { END_HEADERS, END_STREAM, PREFACE, T, frame, readFrames, requestBlock } from './lib/h2raw.mjs';

const TABLE = 'main.default.telemetry';
const TOKEN = 'http-abuse-secret';

// A TCP connection that records whether and when the server closed it.
function rawConn(port) {
  const s = net.connect({ port, host: '127.0.0.1' });
  s.on('error', () => {});
  s.on('data', () => {});
  s.closedP = new Promise((resolve) => s.on('close', () => {
    s.closedAt = Date.now();
    resolve();
  }));
  s.connected = new Promise((resolve) => s.on('connect', resolve));
  return s;
}

const since = (server, from, re) => server.proc.since(from).filter((l) => re.test(l));

test('http_max_connections: idle connections past it wait, the port serves again once they drop', { timeout: 120000 }, async () => {
  const dir = tmpDir('abuse-http-cap');
  const server = await new Server({ dir, token: TOKEN, metrics: true, extra: 'http_max_connections = 8;\nhttp_timeout = "60s";' }).start();
  try {
    const port = server.metricsPort;
    const from = server.proc.lines;
    const socks = [];
    for (let i = 0; i < 20; i++) socks.push(rawConn(port));
    await Promise.all(socks.map((s) => s.connected)); // the kernel completes them: backlog
    await waitFor(() => since(server, from, /http_max_connections/).length >= 1, { what: 'the cap line' });
    // a well-behaved scraper now waits in the backlog with the 12 extra attackers
    let scraped = false;
    const scrape = run('curl', ['-sS', '--max-time', '60', `http://127.0.0.1:${port}/metrics`]).then((r) => {
      scraped = true;
      return r;
    });
    // nothing is closed unread while capped, and nothing is answered
    assert.equal(socks.filter((s) => s.closedAt).length, 0);
    assert.equal(scraped, false, 'the scrape waits while the port is at its cap');
    for (const s of socks) s.destroy();
    const r = await scrape;
    assert.equal(r.code, 0, r.stderr);
    // the port accepted the 8 first, then the rest (closed by now) and the scraper as slots
    // freed: the backlog may fill it again for a moment, each time one episode
    let m;
    await waitFor(async () => {
      m = await server.metrics();
      return m('http_connections_open') === 1; // the scrape's own
    }, { what: 'the attackers counted out' });
    // how often the backlog refills the port to its cap while the 20 close depends on the
    // scheduler (1-3 on a quiet machine, 7 seen on a loaded one); at most one per connection
    // past the cap (and the first), and the log has one line per episode, not one per connection
    const episodes = m('http_max_connections_reached_total');
    assert.ok(episodes >= 1 && episodes <= 1 + (socks.length + 1 - 8), `${episodes} episodes`);
    assert.ok(m('http_connections_accepted_total') >= 22, m.text);
    assert.equal(m('http_accept_paused'), 0);
    // one line when the cap is reached, one when it is left: not one per connection
    assert.equal(since(server, from, /connections open on the HTTP port \(http_max_connections\)/).length, episodes, server.proc.tail());
    assert.equal(since(server, from, /below http_max_connections again/).length, episodes, server.proc.tail());
    // a REST insert from a well-behaved client is served
    const ins = await run('curl', ['-sS', '-w', '\n%{http_code}', '-H', `Authorization: Bearer ${TOKEN}`,
      '-H', 'Content-Type: application/json', '--data-binary', '[{"msg":"after the cap"}]',
      `http://127.0.0.1:${port}/zerobus/v1/tables/${TABLE}/insert`]);
    assert.equal(ins.stdout.trim().split('\n').pop(), '200', ins.stdout + ins.stderr);
  } finally {
    await server.stop();
  }
});

test('TLS on the HTTP port: plain text, a foreign certificate and silence are counted and logged with the peer', { timeout: 120000 }, async () => {
  const pdir = tmpDir('abuse-http-pki');
  makeCa(pdir, 'ca');
  makeCa(pdir, 'other');
  makeLeaf(pdir, 'server', 'ca', 'DNS:localhost,IP:127.0.0.1');
  makeLeaf(pdir, 'dev1', 'ca', 'URI:spiffe://fleet/dev1');
  makeLeaf(pdir, 'rogue', 'other', 'URI:spiffe://fleet/rogue');
  const p = (f) => `${pdir}/${f}`;
  const dir = tmpDir('abuse-http-tls');
  const server = await new Server({ dir, token: TOKEN,
    metrics: true, extra: `${serverTls(pdir, { ca: 'ca', auth: 'require' })}\nhttp_timeout = "2s";` }).start();
  // /metrics over HTTPS with a client certificate: curl, not Server.metrics()
  const scrape = async () => {
    const r = await run('curl', ['-sS', '--cacert', p('ca.pem'), '--cert', p('dev1.pem'), '--key', p('dev1.key'),
      `https://localhost:${server.metricsPort}/metrics`]);
    assert.equal(r.code, 0, r.stderr);
    return metricsOf(r.stdout);
  };
  const failures = async (port) => {
    const m = await scrape();
    return (reason) => m('tls_handshake_failures_total', `port="${port}",reason="${reason}"`);
  };
  try {
    const port = server.metricsPort;
    let f = await failures('http');
    for (const r of ['cleartext', 'bad_cert', 'timeout', 'other', 'no_h2']) assert.equal(f(r), 0, r);
    const from = server.proc.lines;
    // 1. plain HTTP to the HTTPS port
    const plain = rawConn(port);
    await plain.connected;
    plain.write('GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n');
    await plain.closedP;
    // 2. a client certificate of another CA (tls_client_auth = require)
    const rogue = await run('sh', ['-c', `openssl s_client -connect 127.0.0.1:${port} -CAfile ${p('ca.pem')} ` +
      `-cert ${p('rogue.pem')} -key ${p('rogue.key')} </dev/null`]);
    assert.doesNotMatch(rogue.stdout, /HTTP\/1\.1 200/);
    // 3. a client that connects and says nothing: closed at http_timeout
    const silent = rawConn(port);
    await silent.connected;
    const t0 = Date.now();
    await silent.closedP;
    assert.ok(silent.closedAt - t0 >= 1500, `closed after ${silent.closedAt - t0} ms`);
    await waitFor(async () => (await failures('http'))('timeout') === 1, { what: 'the timeout counted' });
    f = await failures('http');
    assert.equal(f('cleartext'), 1);
    assert.equal(f('bad_cert'), 1);
    assert.equal(f('timeout'), 1);
    // each logged once, with the peer
    for (const why of ['cleartext', 'bad_cert', 'timeout']) {
      const lines = since(server, from, new RegExp(`127\\.0\\.0\\.1:\\d+: HTTPS connection refused: TLS handshake ${why}`));
      assert.equal(lines.length, 1, `${why}\n${server.proc.tail()}`);
    }
    // the gRPC port's counters are apart
    assert.equal((await failures('grpc'))('cleartext'), 0);
  } finally {
    await server.stop();
  }
});

test('an upper-case header name is a malformed request: RST_STREAM PROTOCOL_ERROR, counted, logged; other streams go on', { timeout: 60000 }, async () => {
  const dir = tmpDir('abuse-http-upper');
  const server = await new Server({ dir, token: TOKEN, metrics: true }).start();
  try {
    const from = server.proc.lines;
    const s = net.connect({ port: server.port, host: '127.0.0.1' });
    s.on('error', () => {});
    const frames = readFrames(s);
    await new Promise((resolve) => s.on('connect', resolve));
    s.write(Buffer.concat([PREFACE, frame(T.SETTINGS, 0, 0)]));
    // stream 1: "Authorization" as HTTP/1 spells it (RFC 9113 8.2.1: malformed)
    s.write(frame(T.HEADERS, END_HEADERS | END_STREAM, 1,
      requestBlock({ 'x-databricks-zerobus-table-name': TABLE, Authorization: `Bearer ${TOKEN}` })));
    const rst = await waitFor(() => frames.find((x) => x.type === T.RST_STREAM && x.sid === 1), { what: 'RST_STREAM on stream 1' });
    assert.equal(rst.payload.readUInt32BE(0), 1, 'PROTOCOL_ERROR');
    // stream 3 on the same connection, well formed: answered
    s.write(frame(T.HEADERS, END_HEADERS | END_STREAM, 3,
      requestBlock({ 'x-databricks-zerobus-table-name': TABLE, authorization: `Bearer ${TOKEN}` })));
    await waitFor(() => frames.find((x) => x.type === T.HEADERS && x.sid === 3), { what: 'a response on stream 3' });
    assert.equal(frames.filter((x) => x.type === T.GOAWAY).length, 0, 'the connection stays up');
    assert.equal(frames.filter((x) => x.type === T.RST_STREAM && x.sid === 3 && x.payload.readUInt32BE(0) !== 0).length, 0);
    s.destroy();
    assert.equal(await server.metric('malformed_requests_total'), 1);
    const lines = since(server, from, /malformed request/);
    assert.equal(lines.length, 1, server.proc.tail());
    assert.match(lines[0], /127\.0\.0\.1:\d+: stream refused: PROTOCOL_ERROR malformed request: header names must be lower case in HTTP\/2 \(got "Authorization"\)/);
    assert.doesNotMatch(lines[0], new RegExp(TOKEN), 'the header value is not logged');
  } finally {
    await server.stop();
  }
});
