// `runnel-server fleet` (server/cli/fleet_cli.c) against HTTP servers: what it asks (path,
// query, Authorization) and how it reports what it gets. Here with node HTTP servers that
// play a server (an old one without the fleet API: 404; one that wants a token: 401) and
// with nobody listening (connection refused); -c reads metrics_listen from a config.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { freePort, run, serverBin, tmpDir } from './lib/harness.mjs';

const fleet = (...args) => run(serverBin, ['fleet', ...args]);

// A node HTTP server on loopback answering with answer(req) -> {status, body, headers};
// resolves {url, port, requests, close}.
async function fakeServer(answer) {
  const requests = [];
  const srv = http.createServer((req, res) => {
    requests.push({ url: req.url, auth: req.headers.authorization });
    const a = answer(req);
    res.writeHead(a.status, { 'content-type': 'application/json', ...(a.headers || {}) });
    res.end(a.body);
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address();
  return { url: `http://127.0.0.1:${port}`, port, requests, close: () => new Promise((r) => srv.close(r)) };
}

test('nobody listening: exit 1, connection refused', async () => {
  const port = await freePort();
  const r = await fleet('--url', `http://127.0.0.1:${port}`);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cannot connect to 127\.0\.0\.1 port \d+: Connection refused/);
  assert.equal(r.stdout, '');
});

test('a server without the fleet API (404): exit 1, says so', async () => {
  const old = await fakeServer(() => ({ status: 404, body: 'not found\n', headers: { 'content-type': 'text/plain' } }));
  try {
    for (const extra of [[], ['--streams']]) {
      const r = await fleet('--url', old.url, ...extra);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /has no \/api\/v1\/(devices|streams) \(404\): a runnel-server older than the fleet API/);
    }
    assert.deepEqual(old.requests.map((q) => q.url), ['/api/v1/devices', '/api/v1/streams']);
  } finally {
    await old.close();
  }
});

test('401 without a token says it needs one; the token goes as a bearer', async () => {
  const srv = await fakeServer((req) => (req.headers.authorization === 'Bearer tok-1'
    ? { status: 200, body: '{"now_ms": 1000, "total": 0, "devices": []}' }
    : { status: 401, body: '{"error_code":"UNAUTHENTICATED","message":"no token"}', headers: { 'www-authenticate': 'Bearer' } }));
  const dir = tmpDir('e2e-fleet-cli-token');
  try {
    let r = await fleet('--url', srv.url);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /needs a token \(401\): give --token or --token-file/);
    r = await fleet('--url', srv.url, '--token', 'wrong');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /the token was not accepted \(401\)/);
    const tf = path.join(dir, 'token');
    fs.writeFileSync(tf, 'tok-1\n');
    r = await fleet('--url', srv.url, '--token-file', tf, '--state', 'silent', '--q', 'truck 7/ä', '--limit', '3');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^DEVICE +STATES +LAST SEEN/);
    assert.match(r.stdout, /\n0 devices\n$/);
    assert.equal(srv.requests.at(-1).url, '/api/v1/devices?state=silent&q=truck%207%2F%C3%A4&limit=3');
    assert.deepEqual(srv.requests.map((q) => q.auth), [undefined, 'Bearer wrong', 'Bearer tok-1']);
  } finally {
    await srv.close();
  }
});

test('-c: the URL is the config\'s metrics_listen; usage errors exit 2', async () => {
  const srv = await fakeServer(() => ({ status: 200, body: '{"now_ms":5,"total":0,"streams":[]}' }));
  const dir = tmpDir('e2e-fleet-cli-conf');
  try {
    const conf = path.join(dir, 'server.conf');
    fs.writeFileSync(conf, `listen = "127.0.0.1:0";\nmetrics_listen = "0.0.0.0:${srv.port}";\ndata_root = "${dir}";\n`);
    let r = await fleet('-c', conf, '--streams', '--json');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '{"now_ms":5,"total":0,"streams":[]}\n');
    assert.equal(srv.requests.at(-1).url, '/api/v1/streams');
    const noMetrics = path.join(dir, 'nometrics.conf');
    fs.writeFileSync(noMetrics, `listen = "127.0.0.1:0";\ndata_root = "${dir}";\n`);
    r = await fleet('-c', noMetrics);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /metrics_listen is not set/);
    r = await fleet('-c', path.join(dir, 'nope.conf'));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /nope\.conf/);
    for (const args of [['--url', srv.url, '--bogus'], ['--url', srv.url, '--order', 'up'],
      ['--url', srv.url, '--limit', '0'], ['--url', srv.url, '-c', conf],
      ['--url', srv.url, '--token', 'a', '--token-file', 'b']]) {
      r = await fleet(...args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    }
    r = await fleet('--help');
    assert.equal(r.code, 0);
    assert.match(r.stdout, /usage: runnel-server fleet/);
  } finally {
    await srv.close();
  }
});
