// A typed table's column declared `from = "principal"` (docs/security.md "The principal in
// a table"): two principals with static tokens write the same table over gRPC (persistent
// and ephemeral streams, Debian's python3-grpcio) and over REST (curl, HTTP/2); DuckDB reads
// each row with its writer's name, whatever the record claimed. Then, with flushes an hour
// apart, the same writes stay in the WAL only, the server is SIGKILLed and restarted: the
// replayed rows get the same principals (ephemeral and REST streams keep theirs in
// _streams/<id>.owner, persistent ones in their registry entry).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Server, run, tmpDir, waitFor, zbClient } from './lib/harness.mjs';
import { duckFrom, query, replayLog, verifyTable } from './lib/table.mjs';

const T = 'main.fleet.readings';
const EXTRA = `principals = (
  { name = "alice"; tokens = [ "tok-alice" ]; tables = [ "main.fleet.*" ]; },
  { name = "bob"; tokens = [ "tok-bob" ]; tables = [ "main.fleet.*" ]; }
);
schemas = ( { table = "${T}"; columns = (
  { name = "v"; type = "long"; nullable = false; },
  { name = "who"; type = "string"; from = "principal"; }
); } );`;

function rows(server) {
  try {
    return replayLog(server.tableDir(T)).live.reduce((n, f) => n + f.numRecords, 0);
  } catch {
    return 0;
  }
}

const curl = (args) => run('curl', args);

// One REST insert over HTTP/2; a 200 means durable (in the WAL).
async function rest(server, token, values) {
  const body = JSON.stringify(values.map((v) => ({ v, who: 'mallory' })));
  const r = await curl(['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--http2-prior-knowledge',
    '-H', `Authorization: Bearer ${token}`, '-H', 'Content-Type: application/json',
    '--data-binary', body, `http://127.0.0.1:${server.port}/zerobus/v1/tables/${T}/insert`]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '200');
}

// gRPC JSON records v0.. (each claiming to be "mallory"), one batch; acked = durable.
async function grpc(server, dir, token, v0, n, ephemeral) {
  const f = path.join(dir, `g${v0}.jsonl`);
  fs.writeFileSync(f, Array.from({ length: n }, (_, i) => JSON.stringify({ v: v0 + i, who: 'mallory' })).join('\n') + '\n');
  const r = await zbClient(server, 'ingest', '--token', token, '--table', T, '--json-file', f,
    '--records', String(n), ...(ephemeral ? ['--ephemeral'] : []));
  assert.deepEqual(r.acks, [0]);
}

// Every write of one round: value ranges by writer.
async function round(server, dir, base) {
  await grpc(server, dir, 'tok-alice', base, 10, false);       // alice, persistent
  await grpc(server, dir, 'tok-bob', base + 100, 10, true);    // bob, ephemeral
  await grpc(server, dir, 'tok-alice', base + 200, 5, true);   // alice, ephemeral
  await rest(server, 'tok-bob', [base + 300, base + 301, base + 302]);
  await rest(server, 'tok-alice', [base + 400, base + 401]);
  await rest(server, 'tok-bob', [base + 303]);                 // bob's REST stream again
}
const ROUND = 10 + 10 + 5 + 3 + 2 + 1;
const writer = (v) => (Math.floor((v % 1000) / 100) % 2 === 0 ? 'alice' : 'bob');

async function check(server, want) {
  const snap = await verifyTable(server.tableDir(T));
  assert.equal(snap.rows, want);
  const got = await query(`SELECT v, who FROM ${duckFrom(snap.files)} ORDER BY v`);
  assert.equal(got.length, want);
  for (const r of got) assert.equal(r.who, writer(Number(r.v)), `row v=${r.v}`);
  return got;
}

test('each row names its principal, also after a kill -9 replays the WAL', { timeout: 240000 }, async () => {
  const dir = tmpDir('e2e-pcol');
  const server = new Server({ dir, tables: [], extra: EXTRA });
  await server.start();
  try {
    await round(server, dir, 0);
    await waitFor(() => rows(server) === ROUND, { what: 'the first round committed' });
    await server.stop();
    const first = await check(server, ROUND);
    assert.ok(first.some((r) => r.who === 'alice') && first.some((r) => r.who === 'bob'));

    // the same writes, flushed only after the crash: from the WAL
    server.flushMs = 3600000;
    await server.start();
    await round(server, dir, 1000);
    assert.equal(rows(server), ROUND, 'nothing of the second round is in the table yet');
    const owners = fs.readdirSync(path.join(server.dataRoot, '_streams')).filter((n) => n.endsWith('.owner'));
    assert.ok(owners.length >= 4, `ephemeral and REST streams keep their principal: ${owners}`);
    await server.kill('SIGKILL');

    server.flushMs = 200;
    await server.start();
    await waitFor(() => rows(server) === 2 * ROUND, { what: 'the replayed round committed' });
    await server.stop();
    const all = await check(server, 2 * ROUND);
    assert.equal(all.filter((r) => Number(r.v) >= 1000).length, ROUND);
  } finally {
    await server.stop();
  }
});
