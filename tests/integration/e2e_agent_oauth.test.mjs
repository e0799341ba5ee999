// The agent's OAuth client-credentials flow (uplink/token.c, uplink.c) against a token
// endpoint written here (node http, speaking exactly the contract: POST /oidc/v1/token,
// HTTP Basic client id and secret, form grant_type=client_credentials, JSON answers per
// RFC 6749 5.1/5.2) in front of the real runnel-server, configured with the static tokens
// the endpoint hands out. Checked: the first fetch, refreshes before expiry (never after
// half-life is not reached), a 401 from the endpoint reported in `runnel-agent status`
// and retried with backoff (no tight loop) until the secret is fixed, a token the server
// refuses (UNAUTHENTICATED) replaced once at once, the secret and tokens never in the log,
// and every record in the table exactly once throughout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { Agent, Server, tmpDir, waitFor } from './lib/harness.mjs';
import { duckFrom, query, replayLog, verifyTable } from './lib/table.mjs';

const TABLE = 'main.default.oauth';
const CLIENT_ID = 'device-7';
const SECRET = 'S3cr3t-value-never-logged';

// The token endpoint: `tokens` are handed out in turn; `secret` is what it accepts.
function tokenServer({ tokens, expiresIn, secret = SECRET }) {
  const ts = { tokens, expiresIn, secret, requests: [], n: 0 };
  ts.srv = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const auth = req.headers.authorization || '';
      const m = /^Basic (.+)$/.exec(auth);
      const cred = m ? Buffer.from(m[1], 'base64').toString() : '';
      const form = new URLSearchParams(body);
      const r = { at: Date.now(), method: req.method, url: req.url, ct: req.headers['content-type'], cred, form: body };
      ts.requests.push(r);
      const answer = (code, obj, hdrs = {}) => {
        r.code = code;
        res.writeHead(code, { 'content-type': 'application/json', 'cache-control': 'no-store', ...hdrs });
        res.end(JSON.stringify(obj));
      };
      if (req.method !== 'POST' || req.url !== '/oidc/v1/token') return answer(404, { error: 'invalid_request' });
      if (!/^application\/x-www-form-urlencoded/.test(r.ct || '')) return answer(400, { error: 'invalid_request', error_description: 'form expected' });
      if (form.get('grant_type') !== 'client_credentials') return answer(400, { error: 'unsupported_grant_type', error_description: 'client_credentials only' });
      if (cred !== `${CLIENT_ID}:${ts.secret}`) {
        return answer(401, { error: 'invalid_client', error_description: 'client authentication failed' },
          { 'www-authenticate': 'Basic realm="runnel"' });
      }
      const token = ts.tokens[Math.min(ts.n++, ts.tokens.length - 1)];
      r.token = token;
      answer(200, { access_token: token, token_type: 'Bearer', expires_in: ts.expiresIn, scope: 'all-apis' });
    });
  });
  return new Promise((resolve) => ts.srv.listen(0, '127.0.0.1', () => {
    ts.url = `http://127.0.0.1:${ts.srv.address().port}/oidc/v1/token`;
    resolve(ts);
  }));
}

function rows(server) {
  try {
    return replayLog(server.tableDir(TABLE)).live.reduce((n, f) => n + f.numRecords, 0);
  } catch {
    return 0;
  }
}

function setup(dir, ts, lines) {
  const secretFile = path.join(dir, 'client.secret');
  fs.writeFileSync(secretFile, `${SECRET}\n`, { mode: 0o600 });
  const input = path.join(dir, 'in.log');
  fs.writeFileSync(input, lines.map((l) => `${l}\n`).join(''));
  return { secretFile, input };
}

async function exactlyOnce(server, n) {
  const snap = await verifyTable(server.tableDir(TABLE));
  const [r] = await query(`SELECT count(*) AS n, count(DISTINCT payload) AS d FROM ${duckFrom(snap.files)}`);
  assert.deepEqual([Number(r.n), Number(r.d)], [n, n]);
}

const lines = (from, n) => Array.from({ length: n }, (_, i) => `line ${from + i}`);

test('first fetch, refresh before expiry, a 401 reported and retried with backoff, recovery; rows exactly once', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-oauth');
  const ts = await tokenServer({ tokens: ['tokA', 'tokB', 'tokA', 'tokB', 'tokA', 'tokB', 'tokA'], expiresIn: 4 });
  const server = await new Server({ dir, tables: [TABLE], extra: 'token = ["tokA", "tokB"];' }).start();
  const { secretFile, input } = setup(dir, ts, lines(0, 500));
  const agent = new Agent({ dir, url: server.url,
    uplinkExtra: `client_id = "${CLIENT_ID}"; client_secret_file = "${secretFile}"; token_url = "${ts.url}";`,
    sources: [{ name: 'f', paths: [input], table: TABLE }] });
  try {
    await agent.start();
    // the first fetch, exactly as the contract says
    await waitFor(() => ts.requests.some((r) => r.code === 200), { what: 'a first token' });
    const first = ts.requests[0];
    assert.equal(first.method, 'POST');
    assert.equal(first.cred, `${CLIENT_ID}:${SECRET}`);
    assert.equal(new URLSearchParams(first.form).get('grant_type'), 'client_credentials');
    await waitFor(() => rows(server) >= 500, { what: '500 rows' });
    const st = agent.status();
    assert.equal(st.token.valid, true);
    assert.ok(st.token.valid_until * 1000 > Date.now(), 'valid_until is in the future');

    // refreshes: each before the previous token expired (4 s), none before half-life (2 s)
    await waitFor(() => ts.requests.filter((r) => r.code === 200).length >= 3, { timeoutMs: 20000, what: '3 tokens' });
    const ok = ts.requests.filter((r) => r.code === 200);
    for (let i = 1; i < ok.length; i++) {
      const gap = ok[i].at - ok[i - 1].at;
      assert.ok(gap >= 1800 && gap < 4000, `refresh ${i} came ${gap} ms after the previous token`);
    }
    fs.appendFileSync(input, lines(500, 500).map((l) => `${l}\n`).join(''));
    await waitFor(() => rows(server) >= 1000, { what: '1000 rows' });

    // the endpoint refuses the client: reported, retried slowly, never in a tight loop
    ts.secret = 'rotated';
    const failFrom = ts.requests.length;
    await waitFor(() => {
      const t = agent.status()?.token;
      return t && t.failures >= 1 && /invalid_client/.test(t.last_error) && t;
    }, { timeoutMs: 20000, what: 'the 401 in status' });
    await waitFor(() => agent.status()?.token?.valid === false, { timeoutMs: 20000, what: 'the token expired' });
    const t0 = Date.now();
    const n0 = ts.requests.length;
    await waitFor(() => Date.now() - t0 > 3000, { what: '3 s of failures' });
    const perSec = (ts.requests.length - n0) / ((Date.now() - t0) / 1000);
    assert.ok(perSec <= 3, `${perSec.toFixed(1)} token requests/s while refused: backoff expected`);
    assert.ok(ts.requests.length - failFrom >= 2, 'it kept retrying');
    assert.ok(agent.proc.log.some((l) => /token endpoint .*invalid_client/.test(l)), 'the refusal is logged');

    // fixed: a new token, delivery goes on
    ts.secret = SECRET;
    await waitFor(() => agent.status()?.token?.valid === true, { timeoutMs: 20000, what: 'a token again' });
    fs.appendFileSync(input, lines(1000, 500).map((l) => `${l}\n`).join(''));
    await waitFor(() => rows(server) >= 1500, { what: '1500 rows' });
    await agent.stop();
    await server.stop();
    const log = agent.proc.log.join('\n');
    assert.ok(!log.includes(SECRET) && !/tok[AB]/.test(log), 'no secret or token in the log');
    await exactlyOnce(server, 1500);
  } finally {
    await agent.kill();
    await server.kill();
    ts.srv.close();
  }
});

// The server refuses the first token with a trailers-only UNAUTHENTICATED while the agent's
// upload is paused (it waits for the create answer): the agent sees it at once, fetches one
// fresh token and delivers, without the slow retry of a status that needs an operator.
test('a token the server refuses (UNAUTHENTICATED) is replaced at once by a fresh one', {
  timeout: 60000,
}, async () => {
  const dir = tmpDir('e2e-oauth-unauth');
  const ts = await tokenServer({ tokens: ['revoked', 'tokA'], expiresIn: 3600 });
  const server = await new Server({ dir, tables: [TABLE], token: 'tokA' }).start();
  const { secretFile, input } = setup(dir, ts, lines(0, 300));
  const agent = new Agent({ dir, url: server.url,
    uplinkExtra: `client_id = "${CLIENT_ID}"; client_secret_file = "${secretFile}"; token_url = "${ts.url}";`,
    sources: [{ name: 'f', paths: [input], table: TABLE }] });
  try {
    await agent.start();
    await waitFor(() => rows(server) >= 300, { what: '300 rows' })
      .catch((e) => { throw new Error(`${e.message}\n${agent.proc.tail()}\n${server.proc.tail()}`); });
    assert.deepEqual(ts.requests.map((r) => r.token), ['revoked', 'tokA']);
    assert.ok(agent.proc.log.some((l) => /UNAUTHENTICATED.*fetching a fresh access token/.test(l)));
    // not the slow retry of a status that needs an operator
    assert.ok(!agent.proc.log.some((l) => /needs an operator/.test(l)), agent.proc.tail());
    await agent.stop();
    await server.stop();
    await exactlyOnce(server, 300);
  } finally {
    await agent.kill();
    await server.kill();
    ts.srv.close();
  }
});
