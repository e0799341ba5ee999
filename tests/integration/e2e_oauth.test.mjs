// The Zerobus token flow end to end against the real server's token endpoint
// (POST /oidc/v1/token, docs/security.md), over TLS with certificates made by the openssl CLI:
// Debian's python3-grpcio gets a token as the Zerobus SDKs do (HTTP Basic, authorization_details
// naming the table) and streams with it → acks, rows; curl gets tokens over HTTP/1.1 (the HTTP
// port) and HTTP/2 (the main port) and inserts over REST with them on both; runnel-agent with
// client_id + client_secret_file fetches its tokens from the real endpoint, and with a
// token_lifetime of a few seconds refreshes them and goes through the server's
// close_stream_signal / expiry handling while delivering: every row exactly once; the
// official Databricks Zerobus SDK (its native module) does the flow itself and streams JSON.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Agent, Server, repoRoot, run, tmpDir, waitFor } from './lib/harness.mjs';
import { hashSecret, makeCa, makeLeaf, serverTls } from './lib/pki.mjs';
import { duckFrom, query, replayLog, verifyTable } from './lib/table.mjs';

const CLIENT = path.join(repoRoot, 'tests', 'integration', 'zerobus_client.py');
const GPS = 'main.fleet.gps'; // an envelope table (runnel.v1.Record)
const EVENTS = 'main.fleet.events'; // a typed table, for REST
const ID = 'dev-7';
const SECRET = 'dev-7 secret, never logged';
const SCHEMA = `schemas = ( { table = "${EVENTS}"; columns = (
  { name = "id"; type = "long"; nullable = false; },
  { name = "src"; type = "string"; }
); } );`;
let pki;

before(() => {
  const dir = tmpDir('e2e-oauth-pki');
  makeCa(dir, 'ca');
  makeLeaf(dir, 'server', 'ca', 'DNS:localhost,IP:127.0.0.1');
  pki = { dir, ca: path.join(dir, 'ca.pem'), hash: hashSecret(SECRET) };
});

const principals = () => `principals = (
  { name = "${ID}"; client_id = "${ID}"; secret_hash = "${pki.hash}"; tables = [ "main.fleet.*" ]; }
);`;

function rows(server, t) {
  try {
    return replayLog(server.tableDir(t)).live.reduce((n, f) => n + f.numRecords, 0);
  } catch {
    return 0;
  }
}


// One curl request over TLS; resolves {status, version, json, body}.
async function curl(url, { h2, args = [] }) {
  const r = await run('curl', ['-sS', '--cacert', pki.ca, h2 ? '--http2' : '--http1.1',
    '-w', '\n%{http_code} %{http_version}', ...args, url]);
  assert.equal(r.code, 0, `curl ${url}: ${r.stderr}`);
  const cut = r.stdout.lastIndexOf('\n');
  const [status, version] = r.stdout.slice(cut + 1).split(' ');
  const body = r.stdout.slice(0, cut);
  let json;
  try {
    json = JSON.parse(body);
  } catch {
    json = undefined;
  }
  return { status: Number(status), version, body, json };
}

// The client-credentials request of the Zerobus SDKs, by curl.
const details = (t) => JSON.stringify([
  { type: 'unity_catalog_privileges', privileges: ['USE CATALOG'], object_type: 'CATALOG', object_full_path: t.split('.')[0] },
  { type: 'unity_catalog_privileges', privileges: ['USE SCHEMA'], object_type: 'SCHEMA', object_full_path: t.split('.').slice(0, 2).join('.') },
  { type: 'unity_catalog_privileges', privileges: ['SELECT', 'MODIFY'], object_type: 'TABLE', object_full_path: t },
]);
const tokenRequest = (url, h2, table, secret = SECRET) => curl(url, {
  h2,
  args: ['-u', `${ID}:${secret}`, '--data-urlencode', 'grant_type=client_credentials',
    '--data-urlencode', 'scope=all-apis', '--data-urlencode', `authorization_details=${details(table)}`],
});

test('grpcio gets a token as the Zerobus SDKs do and streams over TLS; curl gets tokens over HTTP/1.1 and HTTP/2 and inserts over REST with them', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-oauth-flow');
  const server = await new Server({ dir, tables: [GPS],
    metrics: true, extra: `${serverTls(pki.dir)}\n${SCHEMA}\n${principals()}` }).start();
  try {
    const h1 = server.metricsPort;
    const tokenUrl = `https://localhost:${h1}/oidc/v1/token`;
    // python: the token from the HTTP port (urllib speaks HTTP/1.1), then gRPC on the TLS port
    const py = await run('/usr/bin/python3', [CLIENT, `127.0.0.1:${server.port}`, 'ingest', '--ca', pki.ca,
      '--server-name', 'localhost', '--table', GPS, '--records', '10', '--batches', '3',
      '--token-url', tokenUrl, '--client-id', ID, '--client-secret', SECRET]);
    assert.equal(py.code, 0, py.stdout + py.stderr);
    const out = JSON.parse(py.stdout.trim().split('\n').pop());
    assert.deepEqual(out.acks, [0, 1, 2]);
    assert.equal(out.last_committed_offset, 2);
    assert.ok(server.proc.log.some((l) => new RegExp(`token \\S+ issued to principal ${ID}`).test(l)), server.proc.tail());
    assert.ok(server.proc.log.some((l) => new RegExp(`stream \\S+ created .*${ID}`).test(l)) ||
      server.proc.log.some((l) => l.includes(ID)), 'the stream is the principal\'s');

    // a wrong secret gets no token (and the python client stops there)
    const bad = await run('/usr/bin/python3', [CLIENT, `127.0.0.1:${server.port}`, 'ingest', '--ca', pki.ca,
      '--server-name', 'localhost', '--table', GPS, '--token-url', tokenUrl, '--client-id', ID, '--client-secret', 'nope']);
    assert.equal(bad.code, 4, bad.stdout + bad.stderr);
    assert.deepEqual(JSON.parse(bad.stdout.trim().split('\n').pop()), { token_status: 401, token_error: 'invalid_client' });

    // curl: a token over HTTP/1.1 on the HTTP port and over HTTP/2 on the main port
    const t1 = await tokenRequest(tokenUrl, false, EVENTS);
    const t2 = await tokenRequest(`https://localhost:${server.port}/oidc/v1/token`, true, EVENTS);
    for (const [t, v] of [[t1, '1.1'], [t2, '2']]) {
      assert.equal(t.status, 200, t.body);
      assert.equal(t.version, v);
      assert.equal(t.json.token_type, 'Bearer');
      assert.equal(t.json.scope, 'all-apis');
      assert.ok(t.json.expires_in > 0 && t.json.expires_in <= 3600, t.body);
      assert.match(t.json.access_token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
    }
    // REST inserts with them, each over the other HTTP version
    const insert = (port, h2, tok, from) => curl(`https://localhost:${port}/zerobus/v1/tables/${EVENTS}/insert`, {
      h2, args: ['-X', 'POST', '-H', `Authorization: Bearer ${tok}`, '-H', 'Content-Type: application/json',
        '--data-binary', JSON.stringify([0, 1, 2, 3, 4].map((i) => ({ id: from + i, src: h2 ? 'h2' : 'h1' })))],
    });
    const r1 = await insert(h1, false, t2.json.access_token, 0);
    const r2 = await insert(server.port, true, t1.json.access_token, 100);
    for (const [r, v] of [[r1, '1.1'], [r2, '2']]) {
      assert.equal(r.status, 200, r.body);
      assert.equal(r.version, v);
      assert.deepEqual(r.json, {});
    }
    // the token names EVENTS only: GPS over REST is refused with 403, nothing written
    const r3 = await curl(`https://localhost:${server.port}/zerobus/v1/tables/${GPS}/insert`, {
      h2: true, args: ['-X', 'POST', '-H', `Authorization: Bearer ${t1.json.access_token}`,
        '-H', 'Content-Type: application/json', '--data-binary', '[{"id":1}]'],
    });
    assert.equal(r3.status, 403, r3.body);
    assert.equal(r3.json.error_code, 'PERMISSION_DENIED');

    await server.stop();
    assert.equal(rows(server, GPS), 30);
    const snap = await verifyTable(server.tableDir(EVENTS));
    const got = await query(`SELECT id, src FROM ${duckFrom(snap.files)} ORDER BY id`);
    assert.deepEqual(got.map((r) => [Number(r.id), r.src]),
      [0, 1, 2, 3, 4].map((i) => [i, 'h1']).concat([0, 1, 2, 3, 4].map((i) => [100 + i, 'h2'])));
    assert.ok(!server.proc.log.join('\n').includes(SECRET), 'the secret is never logged');
  } finally {
    await server.kill();
  }
});

test('runnel-agent with client_id + client_secret_file against the real token endpoint over TLS: tokens refreshed, streams closed and reopened, every row exactly once', { timeout: 150000 }, async () => {
  const dir = tmpDir('e2e-oauth-agent');
  const TABLE = 'main.fleet.agent';
  // tokens live 6 s; streams are sent close_stream_signal 2 s before the end
  const server = await new Server({ dir, tables: [TABLE],
    extra: `${serverTls(pki.dir)}\n${principals()}\ntoken_lifetime = "6s";\ntoken_close_before = "2s";\ntoken_clock_skew = "0";` }).start();
  const secretFile = path.join(dir, 'client.secret');
  fs.writeFileSync(secretFile, `${SECRET}\n`, { mode: 0o600 });
  const input = path.join(dir, 'in.log');
  fs.writeFileSync(input, '');
  const agent = new Agent({ dir, url: `https://localhost:${server.port}`,
    uplinkExtra: `ca_file = "${pki.ca}"; client_id = "${ID}"; client_secret_file = "${secretFile}";`,
    sources: [{ name: 'f', paths: [input], table: TABLE }] });
  const issued = () => server.proc.log.filter((l) => new RegExp(`token \\S+ issued to principal ${ID}`).test(l)).length;
  const closes = () => server.proc.log.filter((l) => /close_stream_signal sent/.test(l)).length;
  try {
    await agent.start();
    // 50 lines per round; each round waits for its rows, then for the next token: the rows
    // are spread over 4 tokens and the streams that carry them live through their ends
    let n = 0;
    for (let round = 0; round < 5 || closes() < 1; round++) {
      assert.ok(round < 12, `no close_stream_signal after ${round} rounds\n${server.proc.tail()}`);
      const tokens = issued();
      fs.appendFileSync(input, Array.from({ length: 50 }, (_, i) => `line ${n + i}\n`).join(''));
      n += 50;
      await waitFor(() => rows(server, TABLE) >= n, { timeoutMs: 30000, what: `${n} rows` })
        .catch((e) => { throw new Error(`${e.message}\n${agent.proc.tail()}\n${server.proc.tail()}`); });
      await waitFor(() => issued() > tokens, { timeoutMs: 20000, what: 'a refreshed token' });
    }
    const st = agent.status();
    assert.equal(st.token.valid, true, JSON.stringify(st.token));
    assert.ok(st.token.valid_until * 1000 > Date.now(), 'valid_until is in the future');
    assert.ok(issued() >= 5, `${issued()} tokens issued`);
    await agent.stop();
    await server.stop();
    assert.equal(rows(server, TABLE), n, 'no row lost or doubled');
    const snap = await verifyTable(server.tableDir(TABLE));
    const [r] = await query(`SELECT count(*) AS n, count(DISTINCT payload) AS d FROM ${duckFrom(snap.files)}`);
    assert.deepEqual([Number(r.n), Number(r.d)], [n, n]);
    const log = agent.proc.log.join('\n') + server.proc.log.join('\n');
    assert.ok(!log.includes(SECRET), 'the secret is never logged');
  } finally {
    await agent.kill();
    await server.kill();
  }
});

// The official SDK: npm @databricks/zerobus-ingest-sdk 0.1.1 ships no index.js and asks for
// native packages 0.1.1 that were never published, so its native module
// (@databricks/zerobus-ingest-sdk-linux-x64-gnu 1.3.0, an optional dependency here) is used
// directly: ZerobusSdk and createStream are its own exports. Its token request is HTTP/1.1
// only (reqwest), so its UC URL is the HTTP port; it streams over TLS to the main port.
test('the official Zerobus SDK (native module) gets its token itself and streams JSON over TLS', { timeout: 120000 }, async (t) => {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    t.skip('the SDK\'s native module is installed on linux-x64 only');
    return;
  }
  const dir = tmpDir('e2e-oauth-sdk');
  const server = await new Server({ dir, tables: [],
    metrics: true, extra: `${serverTls(pki.dir)}\n${SCHEMA}\n${principals()}` }).start();
  const sdk = (secret) => run(process.execPath, [path.join(repoRoot, 'tests', 'integration', 'lib', 'zerobus_sdk.cjs'),
    `https://127.0.0.1:${server.port}`, `https://127.0.0.1:${server.metricsPort}`, EVENTS, ID, secret, '50'],
  { env: { ...process.env, SSL_CERT_FILE: pki.ca } });
  try {
    const r = await sdk(SECRET);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual(JSON.parse(r.stdout.trim().split('\n').pop()), { last_offset: 49, distinct: 50 });
    assert.ok(server.proc.log.some((l) => new RegExp(`stream \\S+ created for table ${EVENTS} .*by principal ${ID}`).test(l)), server.proc.tail());
    const bad = await sdk('wrong');
    assert.equal(bad.code, 2, bad.stdout + bad.stderr);
    assert.match(JSON.parse(bad.stdout.trim().split('\n').pop()).error, /token/i);
    await server.stop();
    const snap = await verifyTable(server.tableDir(EVENTS));
    const [row] = await query(`SELECT count(*) AS n, count(DISTINCT id) AS d, max(id) AS hi FROM ${duckFrom(snap.files)} WHERE src = 'sdk'`);
    assert.deepEqual([Number(row.n), Number(row.d), Number(row.hi)], [50, 50, 49]);
  } finally {
    await server.kill();
  }
});
