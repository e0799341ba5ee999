// Protocol edges, each with Debian's python3-grpcio and with a raw HTTP/2 client (node:http2,
// which sends whatever headers it is given and shows every status and header): an empty
// bearer token is UNAUTHENTICATED (not an INTERNAL stream reset); a request that is not gRPC
// gets HTTP 415 (or 405), never 200; refused calls are logged, the first of a kind at once and
// the rest as a count per period, so a flood of refusals is a few lines; a PROTO stream of a
// message of its own to a table without a schema is refused at create with INVALID_ARGUMENT
// saying how to declare the table, while envelope streams (the agent's) go on working; a table
// name is never cut short to another valid one (a header over 255 bytes, a NUL in the body).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http2 from 'node:http2';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Server, run, tmpDir, waitFor } from './lib/harness.mjs';
import { replayLog } from './lib/table.mjs';

const PY = '/usr/bin/python3';
const CLIENT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'zerobus_client.py');
const TABLE = 'main.default.telemetry';
const METHOD = '/databricks.zerobus.Zerobus/PersistentStream';

async function client(server, ...args) {
  const r = await run(PY, [CLIENT, `127.0.0.1:${server.port}`, ...args]);
  assert.equal(r.code, 0, `client failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

const rows = (server) => replayLog(server.tableDir(TABLE)).live.reduce((n, f) => n + f.numRecords, 0);

// One HTTP/2 request; resolves {status, headers, trailers, body, reset} once the stream ends.
function h2request(session, headers, body) {
  return new Promise((resolve) => {
    const out = { headers: {}, trailers: {}, body: Buffer.alloc(0), reset: null };
    const req = session.request({ ':method': 'POST', ':path': METHOD, ...headers }, { endStream: !body });
    req.on('response', (h) => {
      out.headers = h;
      out.status = h[':status'];
    });
    req.on('trailers', (t) => (out.trailers = t));
    req.on('data', (d) => (out.body = Buffer.concat([out.body, d])));
    req.on('error', (e) => (out.reset = e.code || String(e)));
    req.on('close', () => {
      if (req.rstCode) out.rstCode = req.rstCode;
      resolve(out);
    });
    if (body) req.end(body);
  });
}

const grpcStatus = (r) => Number(r.trailers['grpc-status'] ?? r.headers['grpc-status']);

// --- protobuf by hand, for the raw client's CreateIngestStreamRequest ---
function varint(v) {
  const b = [];
  for (; v >= 0x80; v = Math.floor(v / 128)) b.push((v & 0x7f) | 0x80);
  b.push(v);
  return Buffer.from(b);
}
const len = (num, payload) => Buffer.concat([varint(num * 8 + 2), varint(payload.length), Buffer.from(payload)]);
const vint = (num, v) => Buffer.concat([varint(num * 8), varint(v)]);
const grpcFrame = (msg) => Buffer.concat([Buffer.from([0]), (() => { const b = Buffer.alloc(4); b.writeUInt32BE(msg.length); return b; })(), msg]);

// PersistentStreamRequest{create_stream{create_stream{table_name, descriptor_proto, PROTO}}}
function createRequest(table, descriptor) {
  const c = Buffer.concat([len(1, Buffer.from(table)), len(3, descriptor), vint(4, 1)]);
  return len(1, len(1, c));
}
// DescriptorProto of message Reading { string vehicle = 1; int64 ts = 2; }
const READING = Buffer.concat([len(1, Buffer.from('Reading')),
  len(2, Buffer.concat([len(1, Buffer.from('vehicle')), vint(3, 1), vint(4, 1), vint(5, 9)])),
  len(2, Buffer.concat([len(1, Buffer.from('ts')), vint(3, 2), vint(4, 1), vint(5, 3)]))]);

const grpcHeaders = { 'content-type': 'application/grpc', te: 'trailers', 'x-databricks-zerobus-table-name': TABLE };

test('an empty bearer token is UNAUTHENTICATED, not an INTERNAL stream reset', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-edges-token');
  const server = await new Server({ dir, tables: [TABLE], token: 's3cret' }).start();
  const session = http2.connect(`http://127.0.0.1:${server.port}`);
  try {
    for (const c of ['empty-token', 'empty-auth']) {
      const r = await client(server, 'status', '--case', c);
      assert.equal(r.code, 'UNAUTHENTICATED', `${c}: ${JSON.stringify(r)}`);
    }
    for (const auth of ['Bearer ', 'Bearer', '', ' Bearer s3cret ']) {
      const r = await h2request(session, { ...grpcHeaders, authorization: auth });
      assert.equal(r.status, 200, `"${auth}": ${JSON.stringify(r)}`);
      assert.equal(grpcStatus(r), 16, `"${auth}": ${JSON.stringify(r)}`);
      assert.equal(r.rstCode ?? 0, 0, `"${auth}": no stream reset`);
    }
    const ok = await client(server, 'ingest', '--token', 's3cret', '--records', '3', '--batches', '2');
    assert.deepEqual(ok.acks, [0, 1]);
  } finally {
    session.close();
    await server.kill();
  }
});

test('a request that is not gRPC gets HTTP 415 or 405, never 200, and writes nothing', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-edges-ctype');
  const server = await new Server({ dir, tables: [TABLE] }).start();
  const session = http2.connect(`http://127.0.0.1:${server.port}`);
  try {
    // a REST client posting JSON to the method's path
    const json = await h2request(session, { 'content-type': 'application/json', 'x-databricks-zerobus-table-name': TABLE },
      Buffer.from(JSON.stringify({ records: [{ a: 1 }] })));
    assert.equal(json.status, 415, JSON.stringify(json));
    assert.equal(grpcStatus(json), 3);
    assert.match(json.headers['grpc-message'], /content-type must be application\/grpc/);
    const none = await h2request(session, { 'x-databricks-zerobus-table-name': TABLE }, Buffer.from('hello'));
    assert.equal(none.status, 415, JSON.stringify(none));
    const form = await h2request(session, { 'content-type': 'application/grpc-web', 'x-databricks-zerobus-table-name': TABLE });
    assert.equal(form.status, 415, JSON.stringify(form));
    const get = await h2request(session, { ':method': 'GET', 'content-type': 'application/grpc' });
    assert.equal(get.status, 405, JSON.stringify(get));
    // a well-formed gRPC request with a subtype is a gRPC call (refused by its meaning: no create)
    const sub = await h2request(session, { ...grpcHeaders, 'content-type': 'application/grpc+proto',
      'x-databricks-zerobus-table-name': 'main.default.nope' },
      grpcFrame(createRequest('main.default.nope', Buffer.alloc(0))));
    assert.equal(sub.status, 200);
    assert.equal(grpcStatus(sub), 5, JSON.stringify(sub)); // NOT_FOUND: the table does not exist
    // python3-grpcio (content-type application/grpc) is served as before
    const ok = await client(server, 'ingest', '--records', '4', '--batches', '2');
    assert.deepEqual(ok.acks, [0, 1]);
    await waitFor(() => rows(server) >= 8, { what: '8 rows' });
    assert.equal(rows(server), 8, 'nothing but the gRPC client\'s records');
    assert.equal(server.proc.log.filter((l) => /stream .* created/.test(l)).length, 1);
  } finally {
    session.close();
    await server.kill();
  }
});

test('refused calls are logged: the first of a kind at once, the rest as counts', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-edges-log');
  // the per-address throttle (e2e_abuse) would end this connection long before 3,000
  // refusals: off here, where the log lines are under test
  const server = await new Server({ dir, tables: [TABLE], token: 's3cret', extra: 'refuse_throttle = 0;' }).start();
  const session = http2.connect(`http://127.0.0.1:${server.port}`);
  const N = 3000;
  try {
    const py = await client(server, 'status', '--token', 'wrong');
    assert.equal(py.code, 'UNAUTHENTICATED');
    const first = /127\.0\.0\.1:\d+: call refused: UNAUTHENTICATED missing or wrong bearer token/;
    await waitFor(() => server.proc.log.some((l) => first.test(l)), { what: 'the first refusal line' });
    for (let i = 0; i < N; i += 50) {
      const wave = [];
      for (let k = i; k < Math.min(N, i + 50); k++) wave.push(h2request(session, { ...grpcHeaders, authorization: 'Bearer nope' }));
      for (const r of await Promise.all(wave)) assert.equal(grpcStatus(r), 16);
    }
    // the N refusals after the first are reported as counts, one line per period
    const summary = /127\.0\.0\.1: (\d+) more calls refused in the last 10 s: UNAUTHENTICATED missing or wrong bearer token/;
    const counted = () => server.proc.log.map((l) => l.match(summary)).filter(Boolean).reduce((n, m) => n + Number(m[1]), 0);
    await waitFor(() => counted() === N, { timeoutMs: 45000, what: `${N} refusals counted (got ${counted()})` });
    const lines = server.proc.log.filter((l) => /refused/.test(l));
    assert.equal(lines.filter((l) => first.test(l)).length, 1, 'one first line');
    assert.ok(lines.length <= 4, `${N + 1} refusals took ${lines.length} lines:\n${lines.join('\n')}`);
    // another kind from the same client gets its own first line
    const nf = await client(server, 'status', '--token', 's3cret', '--table', 'main.default.nope');
    assert.equal(nf.code, 'NOT_FOUND');
    await waitFor(() => server.proc.log.some((l) => /call refused: NOT_FOUND table does not exist/.test(l)),
      { what: 'the NOT_FOUND line' });
  } finally {
    session.close();
    await server.kill();
  }
});

test('a PROTO stream of another message to a table without a schema is refused at create', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-edges-proto');
  const server = await new Server({ dir, tables: [TABLE] }).start();
  const session = http2.connect(`http://127.0.0.1:${server.port}`);
  try {
    const py = await client(server, 'status', '--reading');
    assert.equal(py.code, 'INVALID_ARGUMENT', JSON.stringify(py));
    assert.match(py.details, /table main\.default\.telemetry has no schema/);
    assert.match(py.details, /message Reading/);
    assert.match(py.details, /schemas = \( \{ table = "main\.default\.telemetry"; columns = /);
    const raw = await h2request(session, grpcHeaders, grpcFrame(createRequest(TABLE, READING)));
    assert.equal(raw.status, 200);
    assert.equal(grpcStatus(raw), 3, JSON.stringify(raw));
    assert.match(decodeURIComponent(raw.trailers['grpc-message'] || ''), /has no schema/);
    // the envelope (runnel.v1.Record, as the agent and the default client send) still works
    const ok = await client(server, 'ingest', '--records', '5', '--batches', '2');
    assert.deepEqual(ok.acks, [0, 1]);
    await waitFor(() => rows(server) >= 10, { what: '10 rows' });
    assert.equal(server.proc.log.filter((l) => /undecodable/.test(l)).length, 0, 'no undecodable rows');
  } finally {
    session.close();
    await server.kill();
  }
});

test('a table name is refused, never truncated: header over 255 bytes, NUL or over 255 bytes in the body', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-edges-names');
  const server = await new Server({ dir, tables: [TABLE], extra: 'auto_create = true;' }).start();
  const session = http2.connect(`http://127.0.0.1:${server.port}`);
  const { 'x-databricks-zerobus-table-name': _, ...noTable } = grpcHeaders;
  // CreateIngestStreamRequest with the given table_name, or none (the header's name is used)
  const create = (table) => grpcFrame(len(1, len(1, table === undefined ? Buffer.alloc(0) : len(1, Buffer.from(table)))));
  const message = (r) => decodeURIComponent(r.trailers['grpc-message'] || r.headers['grpc-message'] || '');
  const exists = (name) => fs.existsSync(server.tableDir(name));
  try {
    // 279 bytes, valid; cut at 255 it would be another valid name (100 + 1 + 100 + 1 + 53)
    const long = `${'a'.repeat(100)}.${'b'.repeat(100)}.${'c'.repeat(77)}`;
    const cut = long.slice(0, 255);
    let r = await h2request(session, { ...grpcHeaders, 'x-databricks-zerobus-table-name': long }, create());
    assert.equal(grpcStatus(r), 3, JSON.stringify(r));
    assert.match(message(r), /x-databricks-zerobus-table-name is longer than 255 bytes/);
    r = await h2request(session, noTable, create(long));
    assert.equal(grpcStatus(r), 3, JSON.stringify(r));
    assert.match(message(r), /table_name is longer than 255 bytes/);
    // a NUL would leave main.default.fresh
    r = await h2request(session, noTable, create('main.default.fresh\0x'));
    assert.equal(grpcStatus(r), 3, JSON.stringify(r));
    assert.match(message(r), /table_name contains a NUL byte/);
    assert.equal(exists(cut), false, 'no table made of the truncated header');
    assert.equal(exists('main.default.fresh'), false, 'no table made of the name before the NUL');
    // 255 bytes is still a name: created under its own name
    r = await h2request(session, { ...grpcHeaders, 'x-databricks-zerobus-table-name': cut }, create());
    assert.equal(grpcStatus(r), 0, JSON.stringify(r));
    assert.equal(exists(cut), true);
    assert.ok(server.proc.log.some((l) => /longer than 255 bytes/.test(l)), 'the refusal is logged');
  } finally {
    session.close();
    await server.kill();
  }
});
