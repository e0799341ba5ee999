// Typed tables declared in the server config: JSON records from a gRPC client we did not
// write (python3-grpcio), and agent envelopes whose payload is a JSON object, are decoded
// into every kind of column (nested too); records that do not fit land in
// <table>_dead_letters with the reason. DuckDB and parquet-wasm read the exact values; the
// Delta schema is what Spark expects.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, Server, run, tmpDir, waitFor } from './lib/harness.mjs';
import { duckFrom, query, replayLog, verifyTable, wasmRead } from './lib/table.mjs';

const PY = '/usr/bin/python3';
const CLIENT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'zerobus_client.py');
const T = 'main.fleet.readings';
const DLQ = `${T}_dead_letters`;

const SCHEMA = `schemas = ( { table = "${T}"; columns = (
  { name = "vehicle"; type = "string"; nullable = false; },
  { name = "ts"; type = "timestamp"; nullable = false; },
  { name = "speed"; type = "float"; },
  { name = "rpm"; type = "short"; },
  { name = "odo"; type = "long"; },
  { name = "fuel"; type = "decimal(5,2)"; },
  { name = "day"; type = "date"; },
  { name = "ok"; type = "boolean"; },
  { name = "raw"; type = "binary"; },
  { name = "tags"; type = "array<string>"; },
  { name = "pos"; type = "struct<lat:double,lon:double>"; },
  { name = "counters"; type = "map<string,long>"; },
  { name = "device_id"; type = "string"; },
  { name = "seq"; type = "long"; },
  { name = "stream_id"; type = "string"; }
); } );`;

function rows(server, t) {
  try {
    return replayLog(server.tableDir(t)).live.reduce((n, f) => n + f.numRecords, 0);
  } catch {
    return 0;
  }
}

const good = (i) => ({
  vehicle: `veh-${i % 3}`, ts: 1795600800000000 + i * 1000000, speed: i / 2, rpm: 800 + i,
  // BIGINT beyond 2^53 travels as a string (Zerobus JSON rule)
  odo: (9007199254740993n + BigInt(i)).toString(), fuel: `${(i % 100) + 0.25}`, day: '2026-11-25', ok: i % 2 === 0,
  raw: Buffer.from(`r${i}`).toString('base64'), tags: i % 5 ? ['a', `t${i}`] : [],
  pos: { lat: 52.5 + i / 1000, lon: 13.4 }, counters: { trips: i, stops: 2 * i },
});

test('JSON records from grpcio into a typed table; misfits to dead letters', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-typed-json');
  const server = await new Server({ dir, tables: [], extra: SCHEMA }).start();
  const lines = [];
  for (let i = 0; i < 300; i++) {
    if (i === 10) lines.push(JSON.stringify({ ...good(i), colour: 'red' }));        // unknown field
    else if (i === 20) lines.push(JSON.stringify({ ...good(i), rpm: 70000 }));       // short overflow
    else if (i === 30) { const g = good(i); delete g.ts; lines.push(JSON.stringify(g)); } // NOT NULL
    else if (i === 40) lines.push(JSON.stringify({ ...good(i), ts: '2026-11-25T10:00:00' })); // no zone
    else if (i === 50) lines.push(JSON.stringify({ ...good(i), fuel: '1.234' }));     // scale
    else if (i === 60) lines.push('{"vehicle": "v", "ts": 1,');                      // broken JSON
    else lines.push(JSON.stringify(good(i)));
  }
  const f = path.join(dir, 'records.jsonl');
  fs.writeFileSync(f, lines.join('\n') + '\n');
  try {
    const r = await run(PY, [CLIENT, `127.0.0.1:${server.port}`, 'ingest', '--table', T,
      '--json-file', f, '--records', '50']);
    assert.equal(r.code, 0, r.stderr);
    const res = JSON.parse(r.stdout.trim().split('\n').pop());
    assert.deepEqual(res.acks, [0, 1, 2, 3, 4, 5]);
    await waitFor(() => rows(server, T) >= 294 && rows(server, DLQ) >= 6, { what: 'rows in both tables' });
    await server.stop();

    const snap = await verifyTable(server.tableDir(T));
    assert.equal(snap.rows, 294);
    const fields = JSON.parse(snap.metaData.schemaString).fields;
    assert.deepEqual(fields.map((x) => [x.name, typeof x.type === 'string' ? x.type : x.type.type, x.nullable]), [
      ['vehicle', 'string', false], ['ts', 'timestamp', false], ['speed', 'float', true],
      ['rpm', 'short', true], ['odo', 'long', true], ['fuel', 'decimal(5,2)', true],
      ['day', 'date', true], ['ok', 'boolean', true], ['raw', 'binary', true], ['tags', 'array', true],
      ['pos', 'struct', true], ['counters', 'map', true], ['device_id', 'string', true],
      ['seq', 'long', true], ['stream_id', 'string', true]]);
    const from = duckFrom(snap.files);
    const got = await query(`SELECT vehicle, epoch_us(ts) AS ts, speed, rpm, odo, CAST(fuel AS VARCHAR) AS fuel,
        CAST(day AS VARCHAR) AS day, ok, CAST(raw AS VARCHAR) AS raw, tags, pos.lat AS lat, counters['trips'] AS trips,
        device_id, seq, stream_id FROM ${from} ORDER BY ts`);
    const want = [];
    for (let i = 0; i < 300; i++) if (![10, 20, 30, 40, 50, 60].includes(i)) want.push(i);
    assert.equal(got.length, want.length);
    for (const [k, i] of want.entries()) {
      const g = good(i);
      const row = got[k];
      assert.equal(row.vehicle, g.vehicle);
      assert.equal(Number(row.ts), g.ts);
      assert.equal(row.speed, Math.fround(g.speed));
      assert.equal(row.rpm, g.rpm);
      assert.equal(BigInt(row.odo), 9007199254740993n + BigInt(i));
      assert.equal(row.fuel, ((i % 100) + 0.25).toFixed(2));
      assert.equal(row.day, '2026-11-25');
      assert.equal(row.ok, g.ok);
      assert.equal(row.raw, `r${i}`);
      assert.deepEqual(row.tags.items ?? row.tags, g.tags);
      assert.equal(row.lat, g.pos.lat);
      assert.equal(Number(row.trips), i);
      assert.equal(row.device_id, null, 'JSON records have no envelope');
      assert.equal(row.seq, null);
      assert.equal(row.stream_id, res.stream_id, 'stream_id is filled from the stream');
    }
    // arrow-rs reads every file in full, with the same row count and column set
    let n = 0;
    for (const file of snap.files) {
      const t = wasmRead(file);
      n += t.numRows;
      assert.deepEqual(t.schema.fields.map((x) => x.name), fields.map((x) => x.name));
    }
    assert.equal(n, 294);

    const dsnap = await verifyTable(server.tableDir(DLQ));
    const dead = await query(`SELECT json_extract_string(attributes, '$."runnel.error"') AS why, payload,
        json_extract_string(attributes, '$."runnel.offset"') AS off,
        json_extract_string(attributes, '$."runnel.record"') AS idx, stream_id
        FROM ${duckFrom(dsnap.files)} ORDER BY receive_time, payload`);
    // each dead letter says where it came from: stream, batch offset, index in the batch
    assert.deepEqual(dead.map((d) => `${d.off}/${d.idx}`).sort(),
      ['0/10', '0/20', '0/30', '0/40', '1/0', '1/10'].sort());
    assert.ok(dead.every((d) => d.stream_id === res.stream_id));
    const whys = dead.map((d) => d.why);
    assert.equal(whys.length, 6, JSON.stringify(whys));
    for (const re of [/unknown field 'colour'/, /rpm: integer out of range/, /ts: missing NOT NULL column/,
      /ts: a timestamp text needs a zone/, /fuel: more fractional digits/, /not valid JSON/])
      assert.ok(whys.some((w) => re.test(w)), `a dead letter for ${re}: ${JSON.stringify(whys)}`);
    assert.ok(dead.every((d) => typeof d.payload === 'string' && d.payload.length > 0), 'the record as received is kept');
  } finally {
    await server.kill();
  }
});

test('agent envelopes with JSON payloads fill a typed table; envelope fields fill the rest', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-typed-agent');
  const server = await new Server({ dir, tables: [], extra: SCHEMA }).start();
  const logs = path.join(dir, 'logs');
  fs.mkdirSync(logs);
  const lines = [];
  for (let i = 0; i < 1000; i++)
    lines.push(i === 500 ? 'not json' : JSON.stringify(good(i)));
  fs.writeFileSync(path.join(logs, 'v.log'), lines.join('\n') + '\n');
  const agent = new Agent({ dir, url: server.url, deviceId: 'truck-9',
    sources: [{ conf: `type = "file"; name = "veh"; table = "${T}"; paths = ["${logs}/v.log"]; read_from = "beginning";` }] });
  try {
    await agent.start();
    await waitFor(() => rows(server, T) >= 999 && rows(server, DLQ) >= 1, { what: 'rows' });
    await agent.stop();
    await server.stop();
    const snap = await verifyTable(server.tableDir(T));
    const from = duckFrom(snap.files);
    const [r] = await query(`SELECT count(*) AS n, count(DISTINCT seq) AS seqs, min(seq) AS lo, max(seq) AS hi,
        count(*) FILTER (WHERE device_id = 'truck-9') AS dev, count(DISTINCT stream_id) AS streams FROM ${from}`);
    assert.deepEqual([r.n, r.seqs, r.lo, r.hi, r.dev, r.streams].map(Number), [999, 999, 0, 999, 999, 1]);
    const [d] = await query(`SELECT seq, payload, json_extract_string(attributes, '$."runnel.error"') AS why
        FROM ${duckFrom((await verifyTable(server.tableDir(DLQ))).files)}`);
    assert.deepEqual([Number(d.seq), d.payload], [500, 'not json']);
    assert.match(d.why, /must be an object/);
  } finally {
    await agent.kill();
    await server.kill();
  }
});
