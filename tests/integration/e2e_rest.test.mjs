// The REST front doors (docs/protocol.md "REST"), driven by curl: POST
// /zerobus/v1/tables/{t}/insert over HTTP/1.1 (the metrics_listen port) and HTTP/2 (the main
// port, prior knowledge) while a grpcio client streams on the same main port; the rows are
// then in the table exactly once (DuckDB and arrow-rs read it). Every error status the server
// can produce today is produced and its JSON body checked, and refused requests write
// nothing. A 200 is never sent before the rows are durable: the server is SIGKILLed right
// after its last 200 (with flushes far apart, so the rows are only in the WAL) and the rows
// are there after the restart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Server, freePort, run, tmpDir, waitFor, zbClient } from './lib/harness.mjs';
import { duckFrom, query, replayLog, verifyTable } from './lib/table.mjs';

const T = 'main.rest.events';
const TOKEN = 'rest-secret';
const SCHEMA = `schemas = ( { table = "${T}"; columns = (
  { name = "id"; type = "long"; nullable = false; },
  { name = "src"; type = "string"; }
); } );`;

function rows(server, t = T) {
  try {
    return replayLog(server.tableDir(t)).live.reduce((n, f) => n + f.numRecords, 0);
  } catch {
    return 0;
  }
}

const runCurl = (args) => run('curl', args); // resolves once all output is read

// One request with curl; resolves {status, headers (lower-case names), body, json}.
async function curl(url, { h2 = false, method = 'POST', body, bodyFile, token = TOKEN, ctype = 'application/json', extraHeaders = [] } = {}) {
  const args = ['-sS', '-i', '-X', method, h2 ? '--http2-prior-knowledge' : '--http1.1', '-H', 'Expect:'];
  if (token) args.push('-H', `Authorization: Bearer ${token}`);
  if (ctype) args.push('-H', `Content-Type: ${ctype}`);
  for (const x of extraHeaders) args.push('-H', x);
  if (bodyFile) args.push('--data-binary', `@${bodyFile}`);
  else if (body !== undefined) args.push('--data-binary', body);
  args.push(url);
  const r = await runCurl(args);
  if (r.code !== 0) throw new Error(`curl ${args.join(' ')}: exit ${r.code} ${r.stderr}`);
  const cut = r.stdout.indexOf('\r\n\r\n');
  const head = r.stdout.slice(0, cut).split('\r\n');
  const status = Number(head[0].split(' ')[1]);
  const headers = {};
  for (const l of head.slice(1)) {
    const i = l.indexOf(':');
    headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
  }
  const text = r.stdout.slice(cut + 4);
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status, headers, body: text, json };
}

const insertUrl = (port, table = T) => `http://127.0.0.1:${port}/zerobus/v1/tables/${table}/insert`;
const batch = (from, n, src) => JSON.stringify(Array.from({ length: n }, (_, i) => ({ id: from + i, src })));

test('curl inserts over HTTP/1.1 and HTTP/2 land exactly once, beside a gRPC stream', { timeout: 180000 }, async () => {
  const dir = tmpDir('e2e-rest');
  const server = await new Server({ dir, tables: [], token: TOKEN, metrics: true, extra: SCHEMA }).start();
  try {
    const h1 = server.metricsPort;
    // a gRPC client streams JSON records into the same table on the main port meanwhile
    const f = path.join(dir, 'grpc.jsonl');
    fs.writeFileSync(f, Array.from({ length: 200 }, (_, i) => JSON.stringify({ id: 100000 + i, src: 'grpc' })).join('\n') + '\n');
    const grpc = run('/usr/bin/python3', [path.join(path.dirname(new URL(import.meta.url).pathname), 'zerobus_client.py'),
      `127.0.0.1:${server.port}`, 'ingest', '--table', T, '--json-file', f, '--records', '20', '--token', TOKEN]);
    const reqs = [];
    for (let k = 0; k < 20; k++) {
      reqs.push(curl(insertUrl(server.port), { h2: true, body: batch(k * 10, 10, 'h2') }));
      reqs.push(curl(insertUrl(h1), { body: batch(10000 + k * 10, 10, 'h1') }));
    }
    // the older single-record form, on both ports
    reqs.push(curl(`http://127.0.0.1:${server.port}/ingest-record?table_name=${T}`, { h2: true, body: JSON.stringify({ id: 50000, src: 'legacy' }) }));
    reqs.push(curl(`http://127.0.0.1:${h1}/ingest-record?table_name=${encodeURIComponent(T)}`, { body: JSON.stringify({ id: 50001, src: 'legacy' }) }));
    // an empty array writes nothing and succeeds
    reqs.push(curl(insertUrl(h1), { body: '[]' }));
    for (const r of await Promise.all(reqs)) {
      assert.equal(r.status, 200, JSON.stringify(r));
      assert.deepEqual(r.json, {});
      assert.match(r.headers['content-type'], /^application\/json/);
    }
    const g = await grpc;
    assert.equal(g.code, 0, g.stderr);
    assert.deepEqual(JSON.parse(g.stdout.trim().split('\n').pop()).acks.length, 10);

    await waitFor(() => rows(server) >= 602, { what: '602 rows in the table' });
    const metrics = await curl(`http://127.0.0.1:${h1}/metrics`, { method: 'GET', token: null, ctype: null });
    assert.match(metrics.body, /runnel_server_rest_requests_total\{route="insert",code="200"\} 41/);
    assert.match(metrics.body, /runnel_server_rest_requests_total\{route="ingest_record",code="200"\} 2/);
    await server.stop();

    const snap = await verifyTable(server.tableDir(T));
    assert.equal(snap.rows, 602);
    const got = await query(`SELECT id, src FROM ${duckFrom(snap.files)} ORDER BY id`);
    const want = [];
    for (let i = 0; i < 200; i++) want.push([i, 'h2']);
    for (let i = 0; i < 200; i++) want.push([10000 + i, 'h1']);
    want.push([50000, 'legacy'], [50001, 'legacy']);
    for (let i = 0; i < 200; i++) want.push([100000 + i, 'grpc']);
    assert.deepEqual(got.map((r) => [Number(r.id), r.src]), want);
    assert.equal(rows(server, `${T}_dead_letters`), 0);
  } finally {
    await server.stop();
  }
});

test('every REST error status, with its JSON body; refused requests write nothing', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-rest-errors');
  const server = await new Server({
    dir, tables: ['main.rest.plain'], token: TOKEN,
    metrics: true, extra: `${SCHEMA}\nmax_message_bytes = "64K";`,
  }).start();
  try {
    const h1 = server.metricsPort;
    const err = async (want, code, p, opts) => {
      const r = await curl(p, opts);
      assert.equal(r.status, want, `${p}: ${r.status} ${r.body}`);
      assert.equal(r.json.error_code, code, r.body);
      assert.equal(typeof r.json.message, 'string');
      return r;
    };
    for (const [port, h2] of [[server.port, true], [h1, false]]) {
      const url = insertUrl(port);
      let r = await err(400, 'INVALID_PARAMETER_VALUE', url, { h2, body: '[{"id":1},' });
      assert.match(r.json.message, /not valid JSON/);
      r = await err(400, 'INVALID_PARAMETER_VALUE', url, { h2, body: '{"id":1}' });
      assert.match(r.json.message, /not a JSON array/);
      r = await err(400, 'INVALID_PARAMETER_VALUE', url, { h2, body: '[{"id":1},{"id":2},7]' });
      assert.match(r.json.message, /^row 2: not a JSON object/);
      r = await err(400, 'INVALID_PARAMETER_VALUE', insertUrl(port, 'main.rest.'), { h2, body: '[{"id":1}]' });
      assert.match(r.json.message, /invalid table name/);
      r = await err(400, 'INVALID_PARAMETER_VALUE', insertUrl(port, `a.b.${'x'.repeat(260)}`), { h2, body: '[{"id":1}]' });
      assert.match(r.json.message, /longer than 255 bytes/);
      r = await err(400, 'INVALID_PARAMETER_VALUE', insertUrl(port, 'main.rest.events%00x'), { h2, body: '[{"id":1}]' });
      assert.match(r.json.message, /NUL/);
      r = await err(401, 'UNAUTHENTICATED', url, { h2, token: null, body: '[{"id":1}]' });
      assert.match(r.headers['www-authenticate'], /^Bearer/);
      r = await err(401, 'UNAUTHENTICATED', url, { h2, token: 'wrong', body: '[{"id":1}]' });
      assert.match(r.headers['www-authenticate'], /^Bearer/);
      await err(404, 'NOT_FOUND', insertUrl(port, 'main.rest.nosuch'), { h2, body: '[{"id":1}]' });
      await err(404, 'NOT_FOUND', `http://127.0.0.1:${port}/zerobus/v1/nothing`, { h2, body: '[]' });
      r = await err(405, 'METHOD_NOT_ALLOWED', url, { h2, method: 'PUT', body: '[{"id":1}]' });
      assert.equal(r.headers.allow, 'POST');
      await err(501, 'NOT_IMPLEMENTED', url, { h2, ctype: 'text/csv', body: 'id\n1\n' });
      await err(400, 'INVALID_PARAMETER_VALUE', `http://127.0.0.1:${port}/ingest-record`, { h2, body: '{"id":1}' });
      // the token endpoint is routed on both ports: no client credentials is invalid_client
      r = await curl(`http://127.0.0.1:${port}/oidc/v1/token`, { h2, token: null, ctype: 'application/x-www-form-urlencoded', body: 'grant_type=client_credentials' });
      assert.equal(r.status, 401);
      assert.equal(r.json.error, 'invalid_client');
      assert.match(r.headers['www-authenticate'], /^Basic/);
    }
    // 413: over HTTP/2 the server answers with JSON; over HTTP/1.1 the HTTP layer refuses it
    const big = path.join(dir, 'big.json');
    fs.writeFileSync(big, batch(0, 6000, 'x'.repeat(10)));
    assert.ok(fs.statSync(big).size > 64 * 1024);
    const r413 = await err(413, 'RESOURCE_EXHAUSTED', insertUrl(server.port), { h2: true, bodyFile: big });
    assert.match(r413.json.message, /max_message_bytes/);
    assert.equal((await curl(insertUrl(h1), { bodyFile: big })).status, 413);
    // gRPC still answers on the main port after all of that
    const g = await zbClient(server, 'ingest', '--table', 'main.rest.plain', '--token', TOKEN, '--batches', '1', '--records', '3');
    assert.deepEqual(g.acks, [0]);
    // one refusal line per kind, not one per request
    await waitFor(() => server.proc.log.some((l) => /rest: .* refused: 401 missing or wrong bearer token/.test(l)), { what: 'refusal log line' });
    // nothing of any refused request was written anywhere
    await server.stop();
    assert.equal(rows(server), 0);
    assert.equal(rows(server, `${T}_dead_letters`), 0);
    assert.equal(rows(server, 'main.rest.plain'), 3);
  } finally {
    await server.stop();
  }
});

test('429 with Retry-After under WAL pressure, and the rows sent before it are kept', { timeout: 60000 }, async () => {
  const dir = tmpDir('e2e-rest-429');
  const server = await new Server({
    dir, tables: [], token: TOKEN, flushMs: 3600000,
    extra: `${SCHEMA}\nwal_max_bytes = "2K";\nmax_lag = "0";`,
  }).start();
  try {
    const first = await curl(insertUrl(server.port), { h2: true, body: batch(0, 100, 'x') });
    assert.equal(first.status, 200, first.body);
    const r = await curl(insertUrl(server.port), { h2: true, body: batch(100, 10, 'x') });
    assert.equal(r.status, 429, r.body);
    assert.equal(r.json.error_code, 'RESOURCE_EXHAUSTED');
    assert.match(r.json.message, /wal_max_bytes/);
    assert.ok(Number(r.headers['retry-after']) >= 1, JSON.stringify(r.headers));
    await server.stop(); // the drain flushes what was acked
    assert.equal(rows(server), 100);
  } finally {
    await server.stop();
  }
});

test('a 200 is never sent before durability: SIGKILL right after the last 200, the rows are there', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-rest-kill');
  const port = await freePort();
  // flushes an hour apart: at the kill the rows are only in the WAL
  const server = new Server({ dir, port, tables: [], token: TOKEN, flushMs: 3600000, extra: `${SCHEMA}\nmax_lag = "0";` });
  await server.start();
  let n = 0;
  for (let k = 0; k < 30; k++) {
    const r = await curl(insertUrl(server.port), { h2: true, body: batch(k * 7, 7, 'k') });
    assert.equal(r.status, 200, r.body);
    n += 7;
  }
  await server.kill('SIGKILL');
  assert.equal(rows(server), 0, 'nothing was flushed before the kill');
  await server.start(); // recovery replays the WAL into the table
  try {
    await waitFor(() => rows(server) === n, { what: `${n} rows after the restart` });
    await server.stop();
    const snap = await verifyTable(server.tableDir(T));
    const got = await query(`SELECT count(*) AS n, count(DISTINCT id) AS d, min(id) AS lo, max(id) AS hi FROM ${duckFrom(snap.files)}`);
    assert.deepEqual([Number(got[0].n), Number(got[0].d), Number(got[0].lo), Number(got[0].hi)], [n, n, 0, n - 1]);
  } finally {
    await server.stop();
  }
});
