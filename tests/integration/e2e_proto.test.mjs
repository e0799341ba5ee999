// PROTO records through the descriptor a stream sends, as Zerobus SDK users do (a message of
// their own, built here at run time by python3-grpcio/protobuf): decoded straight into a
// typed table's columns; a descriptor that does not fit fails stream creation with
// INVALID_ARGUMENT naming the field; with auto_create a table is made from the descriptor,
// and after a restart the server knows it is typed from its own log.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Server, run, tmpDir, waitFor } from './lib/harness.mjs';
import { duckFrom, query, replayLog, verifyTable } from './lib/table.mjs';

const PY = '/usr/bin/python3';
const CLIENT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'zerobus_client.py');
const T = 'main.fleet.readings';

const SCHEMA = `schemas = ( { table = "${T}"; columns = (
  { name = "vehicle"; type = "string"; nullable = false; },
  { name = "ts"; type = "timestamp"; nullable = false; },
  { name = "speed"; type = "float"; },
  { name = "rpm"; type = "short"; },
  { name = "tags"; type = "array<string>"; },
  { name = "pos"; type = "struct<lat:double,lon:double>"; },
  { name = "fuel"; type = "decimal(5,2)"; },
  { name = "stream_id"; type = "string"; }
); } );`;

async function client(server, ...args) {
  const r = await run(PY, [CLIENT, `127.0.0.1:${server.port}`, ...args]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

function rows(server, t) {
  try {
    return replayLog(server.tableDir(t)).live.reduce((n, f) => n + f.numRecords, 0);
  } catch {
    return 0;
  }
}

async function checkReadings(server, table, n, { withFuel = true } = {}) {
  const snap = await verifyTable(server.tableDir(table));
  const from = duckFrom(snap.files);
  const got = await query(`SELECT vehicle, epoch_us(ts) AS ts, speed, rpm, tags, pos.lat AS lat
      ${withFuel ? ', fuel' : ''} FROM ${from} ORDER BY ts`);
  assert.equal(got.length, n);
  for (const [i, r] of got.entries()) {
    assert.equal(r.vehicle, `veh-${i % 3}`);
    assert.equal(Number(r.ts), 1795600800000000 + i * 1000000);
    assert.equal(r.speed, Math.fround(i / 2));
    assert.equal(r.rpm, 800 + i);
    assert.deepEqual(r.tags.items ?? r.tags, i % 5 ? ['a', `t${i}`] : []);
    assert.equal(r.lat, 52.5 + i / 1000);
    if (withFuel) assert.equal(r.fuel, null, 'a column the message does not carry is null');
  }
  return snap;
}

test('a descriptor is checked against the table; its records decode into the columns', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-proto');
  const server = await new Server({ dir, tables: [], extra: SCHEMA }).start();
  try {
    const bad = await client(server, 'status', '--table', T, '--reading', '--bad-field');
    assert.equal(bad.code, 'INVALID_ARGUMENT');
    assert.match(bad.details, /colour/);
    // hostile descriptors: 3,000 fields, a message that contains itself
    for (const c of ['big-desc', 'recursive-desc']) {
      const r = await client(server, 'status', '--table', T, '--case', c);
      assert.equal(r.code, 'INVALID_ARGUMENT', `${c}: ${JSON.stringify(r)}`);
    }
    const res = await client(server, 'ingest', '--table', T, '--reading', '--records', '50', '--batches', '4');
    assert.deepEqual(res.acks, [0, 1, 2, 3]);
    await waitFor(() => rows(server, T) >= 200, { what: '200 rows' });
    // restart: the stream's descriptor is kept, so it resumes and goes on decoding
    await server.stop();
    await server.start();
    await waitFor(() => rows(server, T) >= 200, { what: 'rows after restart' });
    await server.stop();
    const snap = await checkReadings(server, T, 200);
    const from = duckFrom(snap.files);
    const [s] = await query(`SELECT count(DISTINCT stream_id) AS n, min(stream_id) AS id FROM ${from}`);
    assert.deepEqual([Number(s.n), s.id], [1, res.stream_id]);
    assert.equal(rows(server, `${T}_dead_letters`), 0, 'no dead letters');
  } finally {
    await server.kill();
  }
});

test('auto_create makes a typed table from the first descriptor; after a restart it stays typed', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-proto-auto');
  const A = 'main.auto.readings';
  const server = await new Server({ dir, tables: [], extra: 'auto_create = true;' }).start();
  try {
    const r1 = await client(server, 'ingest', '--table', A, '--reading', '--records', '30', '--batches', '2');
    assert.deepEqual(r1.acks, [0, 1]);
    await waitFor(() => rows(server, A) >= 60, { what: '60 rows' });
    await server.stop();
    await server.start();
    // a new stream with the same message type: still checked and decoded against the table
    const bad = await client(server, 'status', '--table', A, '--reading', '--bad-field');
    assert.equal(bad.code, 'INVALID_ARGUMENT', JSON.stringify(bad));
    // hostile descriptors cannot create tables either
    for (const c of ['big-desc', 'recursive-desc']) {
      const r = await client(server, 'status', '--table', `main.auto.${c.replace('-', '_')}`, '--case', c);
      assert.equal(r.code, 'INVALID_ARGUMENT', `${c}: ${JSON.stringify(r)}`);
      assert.match(r.details, c === 'big-desc' ? /field|column/ : /itself/);
    }
    await server.stop();
    const snap = await verifyTable(server.tableDir(A));
    const fields = JSON.parse(snap.metaData.schemaString).fields;
    assert.deepEqual(fields.map((f) => [f.name, typeof f.type === 'string' ? f.type : f.type.type, f.nullable]), [
      ['vehicle', 'string', false], ['ts', 'long', false], ['speed', 'float', true], ['rpm', 'integer', true],
      ['tags', 'array', false], ['pos', 'struct', true]]);
    const [c] = await query(`SELECT count(*) AS n, min(ts) AS lo, max(rpm) AS hi FROM ${duckFrom(snap.files)}`);
    assert.deepEqual([Number(c.n), Number(c.lo), Number(c.hi)], [60, 1795600800000000, 859]);
  } finally {
    await server.kill();
  }
});
