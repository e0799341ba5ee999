// The authorization matrix of issue 12 (docs/security.md "What each refusal gets"), one
// subtest per cell, against one real server over TLS (certificates from the openssl CLI,
// client certificates optional and verified against the CA): {no credentials, wrong secret,
// expired token, token for another table, revoked principal, certificate from another CA,
// expired certificate, cleartext to the TLS port, another principal's persistent stream,
// and the `cert =` principal: a certificate that is no principal, its principal's table and
// another table} × {gRPC ephemeral, gRPC persistent, REST}. A refused cell gets its
// documented status, its kind of refusal exactly one log line (the refusal logs write the
// first of a kind and count repeats), and nothing is written: every table under data_root is
// read after each cell and again after the server has drained. Tokens come from the real
// token endpoint (POST /oidc/v1/token) or `runnel-server token issue`; the gRPC client is
// Debian's python3-grpcio, REST is curl over HTTP/2 (main port) and HTTP/1.1 (HTTP port).
// Cells that make no sense (another principal's persistent stream over an ephemeral call or
// REST, which have no streams to resume) are not cells: docs/security.md lists them.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Server, repoRoot, run, serverBin, tmpDir, waitFor } from './lib/harness.mjs';
import { hashSecret, makeCa, makeLeaf, serverTls } from './lib/pki.mjs';
import { replayLog } from './lib/table.mjs';

const CLIENT = path.join(repoRoot, 'tests', 'integration', 'zerobus_client.py');
const GPS = 'main.fleet.gps'; // envelope tables, for gRPC
const CAN = 'main.fleet.can';
const EVENTS = 'main.fleet.events'; // a typed table, for REST
const SCHEMA = `schemas = ( { table = "${EVENTS}"; columns = (
  { name = "id"; type = "long"; nullable = false; },
  { name = "src"; type = "string"; }
); } );`;
const SECRET = { 'truck-1': 'truck-1 secret', 'truck-2': 'truck-2 secret', gone: 'gone secret' };
let pki;

before(() => {
  const dir = tmpDir('e2e-authz-pki');
  makeCa(dir, 'ca');
  makeCa(dir, 'otherca');
  makeLeaf(dir, 'server', 'ca', 'DNS:localhost,IP:127.0.0.1');
  makeLeaf(dir, 'dev1', 'ca', 'URI:spiffe://fleet/dev1');
  makeLeaf(dir, 'nobody', 'ca', 'URI:spiffe://fleet/nobody');
  makeLeaf(dir, 'stranger', 'otherca', 'URI:spiffe://fleet/dev1'); // a principal's name, wrong CA
  makeLeaf(dir, 'expired', 'ca', 'URI:spiffe://fleet/dev1', { days: 1, faketime: '-3d' });
  const hash = Object.fromEntries(Object.entries(SECRET).map(([k, v]) => [k, hashSecret(v)]));
  pki = { dir, p: (f) => path.join(dir, f), hash };
});

const principals = (withGone) => `principals = (
  { name = "truck-1"; client_id = "truck-1"; secret_hash = "${pki.hash['truck-1']}"; tables = [ "main.fleet.*" ]; },
  { name = "truck-2"; client_id = "truck-2"; secret_hash = "${pki.hash['truck-2']}"; tables = [ "main.fleet.*" ]; },
  ${withGone ? `{ name = "gone"; client_id = "gone"; secret_hash = "${pki.hash.gone}"; tables = [ "main.fleet.*" ]; },` : ''}
  { name = "dev1"; cert = "spiffe://fleet/dev1"; tables = [ "${GPS}", "${EVENTS}" ]; }
);`;

// Every table under data_root (a directory holding _delta_log) and its rows.
function allRows(dataRoot) {
  const out = {};
  const walk = (d, depth) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (!e.isDirectory() || e.name.startsWith('_')) continue;
      const p = path.join(d, e.name);
      if (fs.existsSync(path.join(p, '_delta_log')))
        out[path.relative(dataRoot, p).split(path.sep).join('.')] = replayLog(p).live.reduce((n, f) => n + f.numRecords, 0);
      else if (depth < 3) walk(p, depth + 1);
    }
  };
  walk(dataRoot, 0);
  return out;
}


// curl over TLS (or cleartext with tls: false); resolves {exit, status, json, body, headers}.
async function curl(url, { h2 = true, tls = true, who, token, basic, form, body, stderr } = {}) {
  const args = ['-sS', '-i', '--max-time', '10'];
  if (tls) args.push('--cacert', pki.p('ca.pem'), h2 ? '--http2' : '--http1.1');
  else args.push(h2 ? '--http2-prior-knowledge' : '--http1.1');
  if (who) args.push('--cert', pki.p(`${who}.pem`), '--key', pki.p(`${who}.key`));
  if (token) args.push('-H', `Authorization: Bearer ${token}`);
  if (basic) args.push('-u', basic);
  if (form) for (const [k, v] of Object.entries(form)) args.push('--data-urlencode', `${k}=${v}`);
  if (body !== undefined) args.push('-H', 'Content-Type: application/json', '--data-binary', body);
  const r = await run('curl', [...args, url]);
  if (stderr) stderr.push(r.stderr);
  const cut = r.stdout.indexOf('\r\n\r\n');
  if (r.code !== 0 || cut < 0) return { exit: r.code, stderr: r.stderr };
  const head = r.stdout.slice(0, cut).split('\r\n');
  const headers = {};
  for (const l of head.slice(1)) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
  const text = r.stdout.slice(cut + 4);
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { exit: 0, status: Number(head[0].split(' ')[1]), headers, body: text, json };
}

const details = (t) => JSON.stringify([{ type: 'unity_catalog_privileges', privileges: ['SELECT', 'MODIFY'], object_type: 'TABLE', object_full_path: t }]);

// python3-grpcio: `status --case write` (create + one batch) or the case in extra.
async function grpc(server, { eph, who, tls = true, token, table = GPS, extra = [] }) {
  const args = [CLIENT, `127.0.0.1:${server.port}`, 'status', '--case', 'write', '--table', table, '--connect-timeout', '5'];
  if (tls) args.push('--ca', pki.p('ca.pem'), '--server-name', 'localhost');
  if (who) args.push('--cert', pki.p(`${who}.pem`), '--key', pki.p(`${who}.key`));
  if (token) args.push('--token', token);
  if (eph) args.push('--ephemeral');
  const r = await run('/usr/bin/python3', [...args, ...extra]);
  const last = r.stdout.trim().split('\n').pop();
  return { exit: r.code, ...(last ? JSON.parse(last) : {}), stderr: r.stderr };
}

test('the authorization matrix: every cell its documented status, one log line, no row anywhere', { timeout: 240000 }, async (t) => {
  const dir = tmpDir('e2e-authz');
  const server = await new Server({ dir, tables: [GPS, CAN],
    metrics: true, extra: [serverTls(pki.dir, { ca: 'ca', auth: 'optional' }), SCHEMA,
      principals(true), 'token_clock_skew = "0";'].join('\n') }).start();
  try {
    const h1 = server.metricsPort;
    const h2url = (p) => `https://localhost:${server.port}${p}`;
    const h1url = (p) => `https://localhost:${h1}${p}`;
    const tokenFor = async (who, table) => {
      const r = await curl(h2url('/oidc/v1/token'), { basic: `${who}:${SECRET[who]}`,
        form: { grant_type: 'client_credentials', scope: 'all-apis', ...(table ? { authorization_details: details(table) } : {}) } });
      assert.equal(r.status, 200, JSON.stringify(r));
      return r.json.access_token;
    };
    // the credentials of the cells, while every principal is configured
    const gpsOnly = await tokenFor('truck-1', GPS);
    const eventsOnly = await tokenFor('truck-1', EVENTS);
    const truck2 = await tokenFor('truck-2');
    const goneTok = await tokenFor('gone');
    const issued = await run(serverBin, ['token', 'issue', '-c', server.conf, '--principal', 'truck-1', '--ttl', '1']);
    assert.equal(issued.code, 0, issued.stderr);
    const expiredTok = issued.stdout.trim();
    const expiredAt = Date.now() + 1000;
    // truck-1 owns a persistent stream
    const own = await run('/usr/bin/python3', [CLIENT, `127.0.0.1:${server.port}`, 'ingest', '--ca', pki.p('ca.pem'),
      '--server-name', 'localhost', '--token', gpsOnly, '--table', GPS, '--records', '2', '--batches', '1']);
    assert.equal(own.code, 0, own.stderr);
    const ownStream = JSON.parse(own.stdout.trim().split('\n').pop()).stream_id;
    // `gone` is revoked: removed from the config, reloaded
    fs.writeFileSync(server.conf, fs.readFileSync(server.conf, 'utf8').replace(principals(true), principals(false)));
    const from = server.proc.lines;
    server.kill('SIGHUP');
    await waitFor(() => server.proc.since(from).some((l) => /config reloaded/.test(l)), { what: 'the reload' });
    await waitFor(() => Date.now() > expiredAt + 1100, { what: 'the short token to expire' });
    await waitFor(() => allRows(server.dataRoot)[GPS] === 2, { what: 'the owner\'s 2 rows' });
    const baseline = allRows(server.dataRoot);
    let written = 0; // rows the accepted (control) cells wrote

    // Exactly one line for the kind of refusal `re` (the first of a kind is logged; a repeat of
    // a kind seen before adds none, so it is checked the same way).
    const oneLine = async (re, what) => {
      await waitFor(() => server.proc.log.some((l) => re.test(l)), { timeoutMs: 10000, what: `the log line of ${what}` })
        .catch((e) => { throw new Error(`${e.message}\n${server.proc.tail(20)}`); });
      assert.equal(server.proc.log.filter((l) => re.test(l)).length, 1, `one line for ${what}\n${server.proc.tail(20)}`);
    };
    const grpcLine = (status, re) => new RegExp(`front: \\S+: call refused: ${status} .*${re.source}`);
    const restLine = (http, re) => new RegExp(`rest: \\S+: POST \\S+ refused: ${http} .*${re.source}`);
    const tlsLine = (re) => new RegExp(`front: \\S+: TLS connection refused: TLS_HANDSHAKE .*${re.source}`);
    const nothingWritten = () => assert.deepEqual(allRows(server.dataRoot), { ...baseline, [GPS]: baseline[GPS] + written },
      'no row written by a refused cell');

    const insert = (table, row = { id: 1, src: 'x' }) => `/zerobus/v1/tables/${table}/insert` + '\0' + JSON.stringify([row]);
    const rest = async (p, opts) => {
      const [route, body] = p.split('\0');
      const a = await curl(h2url(route), { ...opts, body, h2: true });
      const b = await curl(h1url(route), { ...opts, body, h2: false });
      return [a, b];
    };

    // A refused gRPC cell: its status and message.
    const grpcRefused = (status, re, opts) => async () => {
      const r = await grpc(server, opts);
      assert.equal(r.code, status, JSON.stringify(r));
      assert.match(r.details, re);
      await oneLine(grpcLine(status, re), `${status} ${re.source}`);
    };
    const restRefused = (http, code, re, p, opts) => async () => {
      for (const r of await rest(p, opts)) {
        assert.equal(r.status, http, JSON.stringify(r));
        assert.equal(r.json.error_code, code, r.body);
        assert.match(r.json.message, re);
        if (http === 401) assert.match(r.headers['www-authenticate'], /^Bearer/);
      }
      await oneLine(restLine(http, re), `REST ${http} ${re.source}`);
    };
    // A handshake that fails (the call never starts): the client says so, the front logs it.
    const handshakeRefused = (re, opts) => async () => {
      const r = await grpc(server, opts);
      assert.equal(r.exit, 3, `the handshake must fail: ${JSON.stringify(r)}`);
      await oneLine(tlsLine(re), `TLS ${re.source}`);
    };
    const restHandshakeRefused = (re, opts) => async () => {
      for (const r of await rest(insert(EVENTS), opts))
        assert.notEqual(r.exit, 0, `the handshake must fail: ${JSON.stringify(r)}`);
      await oneLine(tlsLine(re), `TLS ${re.source}`);
    };

    const UNAUTH = 'UNAUTHENTICATED';
    const DENIED = 'PERMISSION_DENIED';
    const wrongBearer = /missing or wrong bearer token/;
    const matrix = [
      ['no credentials', {
        grpc: (eph) => grpcRefused(UNAUTH, wrongBearer, { eph }),
        rest: restRefused(401, UNAUTH, wrongBearer, insert(EVENTS), {}),
      }],
      ['wrong secret', {
        // the flow stops at the token endpoint: 401 invalid_client, no token, no call
        grpc: (eph) => async () => {
          const r = await run('/usr/bin/python3', [CLIENT, `127.0.0.1:${server.port}`, 'ingest', ...(eph ? ['--ephemeral'] : []),
            '--ca', pki.p('ca.pem'), '--server-name', 'localhost', '--table', GPS,
            '--token-url', h1url('/oidc/v1/token'), '--client-id', 'truck-1', '--client-secret', 'wrong']);
          assert.equal(r.code, 4, r.stdout + r.stderr);
          assert.deepEqual(JSON.parse(r.stdout.trim()), { token_status: 401, token_error: 'invalid_client' });
          await oneLine(/rest: \S+: POST \/oidc\/v1\/token refused: 401 invalid_client/, 'the token refusal');
        },
        rest: async () => {
          for (const url of [h2url('/oidc/v1/token'), h1url('/oidc/v1/token')]) {
            const r = await curl(url, { h2: url.includes(`:${server.port}/`), basic: 'truck-1:wrong', form: { grant_type: 'client_credentials' } });
            assert.equal(r.status, 401, JSON.stringify(r));
            assert.equal(r.json.error, 'invalid_client');
            assert.match(r.headers['www-authenticate'], /^Basic/);
          }
          // the secret itself is no bearer token either
          const [a, b] = await rest(insert(EVENTS), { token: 'wrong' });
          assert.deepEqual([a.status, b.status], [401, 401]);
          await oneLine(/rest: \S+: POST \/oidc\/v1\/token refused: 401 invalid_client/, 'the token refusal');
        },
      }],
      ['expired token', {
        grpc: (eph) => grpcRefused(UNAUTH, /the token has expired/, { eph, token: expiredTok }),
        rest: restRefused(401, UNAUTH, /the token has expired/, insert(EVENTS), { token: expiredTok }),
      }],
      ['token for another table', {
        grpc: (eph) => grpcRefused(DENIED, new RegExp(`the token does not grant table ${CAN}`), { eph, token: gpsOnly, table: CAN }),
        rest: restRefused(403, DENIED, new RegExp(`the token does not grant table ${EVENTS}`), insert(EVENTS), { token: gpsOnly }),
      }],
      ['revoked principal', {
        grpc: (eph) => grpcRefused(UNAUTH, /principal is no longer configured/, { eph, token: goneTok }),
        rest: restRefused(401, UNAUTH, /principal is no longer configured/, insert(EVENTS), { token: goneTok }),
      }],
      ['certificate from another CA', {
        grpc: (eph) => handshakeRefused(/bad_cert/, { eph, who: 'stranger' }),
        rest: restHandshakeRefused(/bad_cert/, { who: 'stranger' }),
      }],
      ['expired certificate', {
        grpc: (eph) => handshakeRefused(/certificate has expired/, { eph, who: 'expired' }),
        rest: restHandshakeRefused(/certificate has expired/, { who: 'expired' }),
      }],
      ['cleartext to the TLS port', {
        grpc: (eph) => handshakeRefused(/cleartext/, { eph, tls: false, token: eventsOnly }),
        rest: async () => {
          for (const h2 of [true, false]) {
            const r = await curl(`http://127.0.0.1:${server.port}/zerobus/v1/tables/${EVENTS}/insert`,
              { tls: false, h2, token: eventsOnly, body: '[{"id":1}]' });
            assert.notEqual(r.exit, 0, JSON.stringify(r));
          }
          // h2c's preface is the kind gRPC's cleartext was; an HTTP/1.1 request is one of its own
          await oneLine(tlsLine(/cleartext: .*wrong version number/), 'TLS cleartext (h2c)');
          await oneLine(tlsLine(/cleartext: .*http request/), 'TLS cleartext (HTTP/1.1)');
        },
      }],
      ["another principal's persistent stream", {
        persistent: grpcRefused(DENIED, /stream belongs to another principal/,
          { token: truck2, extra: ['--case', 'resume', '--stream-id', ownStream] }),
      }],
      // the `cert =` principal: peer identity → principal → its table patterns
      ['certificate that is no principal', {
        grpc: (eph) => grpcRefused(UNAUTH, /client certificate identity is not a configured principal/, { eph, who: 'nobody' }),
        rest: restRefused(401, UNAUTH, /client certificate identity is not a configured principal/, insert(EVENTS), { who: 'nobody' }),
      }],
      ["certificate principal, a table outside its patterns", {
        grpc: (eph) => grpcRefused(DENIED, new RegExp(`principal dev1 may not write table ${CAN}`), { eph, who: 'dev1', table: CAN }),
        rest: restRefused(403, DENIED, new RegExp(`principal dev1 may not write table ${CAN}`), insert(CAN), { who: 'dev1' }),
      }],
      // the control: the same certificate on its own table is accepted (so the cells above
      // could fail): one row per gRPC call, one per REST port
      ['certificate principal, its table (accepted)', {
        grpc: (eph) => async () => {
          const r = await grpc(server, { eph, who: 'dev1', extra: ['--records', '1'] });
          assert.equal(r.code, 'OK', JSON.stringify(r));
          written += 1;
          await waitFor(() => allRows(server.dataRoot)[GPS] === baseline[GPS] + written, { what: 'the row' });
        },
        rest: async () => {
          for (const r of await rest(insert(EVENTS, { id: 7, src: 'dev1' }), { who: 'dev1' }))
            assert.equal(r.status, 200, JSON.stringify(r));
          baseline[EVENTS] = (baseline[EVENTS] || 0) + 2;
          await waitFor(() => allRows(server.dataRoot)[EVENTS] === baseline[EVENTS], { what: 'the 2 REST rows' });
        },
      }],
    ];
    for (const [row, cells] of matrix) {
      for (const [col, fn] of [['gRPC ephemeral', cells.grpc?.(true) ?? cells.ephemeral],
        ['gRPC persistent', cells.grpc?.(false) ?? cells.persistent], ['REST', cells.rest]]) {
        if (!fn) continue; // no such cell (docs/security.md)
        await t.test(`${row} × ${col}`, async () => {
          await fn();
          nothingWritten();
        });
      }
    }
    await server.stop(); // drains: anything acked is in its table now
    assert.deepEqual(allRows(server.dataRoot), { ...baseline, [GPS]: baseline[GPS] + written }, 'after the drain');
  } finally {
    await server.kill();
  }
});
