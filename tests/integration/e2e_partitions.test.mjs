// Partitioned typed tables: JSON records from a gRPC client we did not write
// (python3-grpcio) into a table partitioned by a date derived from its timestamp column and
// a string column with awkward values (spaces, '/', ':', '=', '%', non-ASCII, null); agent
// envelopes into a table partitioned by the day of the envelope's event time. Checked from
// outside: the Hive directories on disk, the log (partitionColumns, partitionValues,
// URI-encoded paths that resolve), DuckDB with hive_partitioning and parquet-wasm reading
// every file, and `runnel-server table verify`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, Server, run, serverBin, tmpDir, waitFor } from './lib/harness.mjs';
import { query, replayLog, verifyTable, wasmRead } from './lib/table.mjs';

const PY = '/usr/bin/python3';
const CLIENT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'zerobus_client.py');
const T = 'main.part.events';
const A = 'main.part.agent';

const SCHEMA = `schemas = (
 { table = "${T}"; partition_by = [ "day", "site" ]; columns = (
   { name = "ts"; type = "timestamp"; nullable = false; },
   { name = "site"; type = "string"; },
   { name = "v"; type = "long"; },
   { name = "day"; type = "date"; from = "ts"; nullable = false; }
 ); },
 { table = "${A}"; partition_by = [ "day" ]; columns = (
   { name = "at"; type = "string"; },
   { name = "v"; type = "long"; },
   { name = "device_id"; type = "string"; },
   { name = "day"; type = "date"; from = "event_time"; }
 ); } );`;

const SITES = ['plain', 'a b', 'x/y', 'c:d', 'e=f', '100%', 'café ü', null, 'q?#[x]'];
const DAY0 = Date.UTC(2026, 10, 24) * 1000; // us
// 0..2 days after DAY0, with hours that cross midnight UTC
const tsOf = (i) => DAY0 + Math.floor(i / 3) * 3600 * 1000000 * 7 + (i % 3) * 1000000;
const dayOf = (us) => new Date(us / 1000).toISOString().slice(0, 10);

// Hive's escaping, as Spark/Kernel (reference A9)
function escapeBytes(s) {
  const out = [];
  for (const b of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(b);
    if (b < 0x20 || b === 0x7f || '"#%\'*/:=?\\{[]^'.includes(c)) out.push(Buffer.from(`%${b.toString(16).toUpperCase().padStart(2, '0')}`));
    else out.push(Buffer.from([b]));
  }
  return Buffer.concat(out).toString('utf8');
}

function rows(server, t) {
  try {
    return replayLog(server.tableDir(t)).live.reduce((n, f) => n + f.numRecords, 0);
  } catch {
    return 0;
  }
}

// The add actions of the log, in order (the JS replay keeps only what it needs).
function adds(tableDir) {
  const logDir = path.join(tableDir, '_delta_log');
  const out = [];
  for (const n of fs.readdirSync(logDir).filter((x) => /^\d{20}\.json$/.test(x)).sort())
    for (const line of fs.readFileSync(path.join(logDir, n), 'utf8').split('\n').filter(Boolean)) {
      const a = JSON.parse(line);
      if (a.add) out.push({ ...a.add, version: Number(n.slice(0, 20)) });
    }
  return out;
}

async function verifyCli(dir) {
  const r = await run(serverBin, ['table', 'verify', '--json', dir]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.ok, true, JSON.stringify(j.problems));
  return j;
}

test('JSON records into a table partitioned by a derived day and an awkward string', { timeout: 180000 }, async () => {
  const dir = tmpDir('e2e-part-json');
  const server = await new Server({ dir, tables: [], extra: SCHEMA }).start();
  const N = 360;
  const want = [];
  const lines = [];
  for (let i = 0; i < N; i++) {
    const rec = { ts: tsOf(i), site: SITES[i % SITES.length], v: i };
    if (i % 10 === 0) rec.day = '1999-01-01'; // a given value is overwritten by the derivation
    if (rec.site === null && i % 2) delete rec.site; // missing and explicit null alike
    lines.push(JSON.stringify(rec));
    want.push({ v: i, ts: tsOf(i), site: SITES[i % SITES.length], day: dayOf(tsOf(i)) });
  }
  const f = path.join(dir, 'records.jsonl');
  fs.writeFileSync(f, lines.join('\n') + '\n');
  try {
    const r = await run(PY, [CLIENT, `127.0.0.1:${server.port}`, 'ingest', '--table', T,
      '--json-file', f, '--records', '40']);
    assert.equal(r.code, 0, r.stderr);
    const res = JSON.parse(r.stdout.trim().split('\n').pop());
    assert.equal(res.acks.length, N / 40);
    await waitFor(() => rows(server, T) >= N, { what: 'rows' });
    await server.stop();

    const tdir = server.tableDir(T);
    const snap = await verifyTable(tdir); // both replays; every file read by both readers
    assert.equal(snap.rows, N);
    assert.deepEqual(snap.metaData.partitionColumns, ['day', 'site']);
    assert.deepEqual(snap.txns, { [res.stream_id]: N / 40 - 1 });
    assert.equal(rows(server, `${T}_dead_letters`), 0);

    const as = adds(tdir);
    const days = [...new Set(want.map((w) => w.day))];
    assert.ok(days.length >= 3, `records span ${days}`);
    // one file per partition per commit, and every commit's files are one version
    const perVersion = new Map();
    for (const a of as) {
      const key = JSON.stringify(a.partitionValues);
      const s = perVersion.get(a.version) ?? new Set();
      assert.ok(!s.has(key), `two files for ${key} in version ${a.version}`);
      s.add(key);
      perVersion.set(a.version, s);
    }
    const seen = new Map(); // v -> partition values
    for (const a of as) {
      const pv = a.partitionValues;
      assert.deepEqual(Object.keys(pv), ['day', 'site']);
      assert.match(pv.day, /^\d{4}-\d{2}-\d{2}$/);
      // the directory: Hive-escaped values, null as __HIVE_DEFAULT_PARTITION__
      const hdir = `day=${pv.day}/site=${pv.site === null ? '__HIVE_DEFAULT_PARTITION__' : escapeBytes(pv.site)}`;
      const rel = decodeURIComponent(a.path);
      assert.equal(path.dirname(rel), hdir, a.path);
      assert.ok(fs.statSync(path.join(tdir, hdir)).isDirectory(), `directory ${hdir} on disk`);
      // the path is a URI: no raw space or non-ASCII, and Hive's '%' is escaped again
      assert.doesNotMatch(a.path, /[ \u0080-\uffff]/, a.path);
      if (rel.includes('%')) assert.ok(a.path.includes('%25'), a.path);
      assert.equal(new URL(a.path, 'file:///t/').pathname.startsWith('/t/day='), true);
      // stats leave the partition columns out; the file holds only ts and v
      const stats = JSON.parse(a.stats);
      assert.deepEqual(Object.keys(stats.nullCount).sort(), ['ts', 'v']);
      const t = wasmRead(path.join(tdir, rel));
      assert.deepEqual(t.schema.fields.map((x) => x.name), ['ts', 'v']);
      const vs = t.getChild('v').toArray();
      for (const v of vs) {
        assert.ok(!seen.has(Number(v)), `record ${v} twice`);
        seen.set(Number(v), pv);
      }
    }
    assert.equal(seen.size, N);
    for (const w of want) assert.deepEqual(seen.get(w.v), { day: w.day, site: w.site }, `record ${w.v}`);
    // the awkward values really made awkward directories
    const siteDirs = fs.readdirSync(path.join(tdir, `day=${days[0]}`)).sort();
    for (const d of ['site=a b', 'site=x%2Fy', 'site=c%3Ad', 'site=e%3Df', 'site=100%25', 'site=café ü',
      'site=__HIVE_DEFAULT_PARTITION__', 'site=q%3F%23%5Bx%5D'])
      assert.ok(siteDirs.includes(d), `${d} in ${siteDirs}`);

    // DuckDB reads every file with hive_partitioning: each record once, right values
    const files = snap.files.map((p) => `'${p.replaceAll("'", "''")}'`).join(', ');
    const got = await query(`SELECT v, epoch_us(ts) AS ts, CAST(day AS VARCHAR) AS day, site
      FROM read_parquet([${files}], hive_partitioning = true, hive_types = {'day': DATE, 'site': VARCHAR})
      ORDER BY v`);
    assert.equal(got.length, N);
    for (const [i, g] of got.entries()) {
      assert.equal(Number(g.v), i);
      assert.equal(Number(g.ts), want[i].ts);
      assert.equal(g.day, want[i].day, `record ${i} day`);
      assert.equal(g.site, want[i].site, `record ${i} site`);
    }

    const j = await verifyCli(tdir);
    assert.equal(j.rows, N);
    assert.equal(j.files, snap.live.length);

  } finally {
    await server.kill();
  }
});

test('agent envelopes into a table partitioned by the day of their event time', { timeout: 180000 }, async () => {
  const dir = tmpDir('e2e-part-agent');
  const server = await new Server({ dir, tables: [], extra: SCHEMA }).start();
  const logs = path.join(dir, 'logs');
  fs.mkdirSync(logs);
  const N = 300;
  const lines = [];
  for (let i = 0; i < N; i++) {
    const at = i === 7 ? null : new Date(Date.UTC(2026, 10, 24, 20) + i * 60000 * 3).toISOString();
    lines.push(JSON.stringify(at === null ? { v: i } : { at, v: i }));
  }
  fs.writeFileSync(path.join(logs, 'a.log'), lines.join('\n') + '\n');
  const agent = new Agent({ dir, url: server.url, deviceId: 'dev-1',
    sources: [{ conf: `type = "file"; name = "a"; table = "${A}"; paths = ["${logs}/a.log"]; read_from = "beginning"; event_time_field = "at";` }] });
  const before = Date.now();
  try {
    await agent.start();
    await waitFor(() => rows(server, A) >= N, { what: 'rows' });
    await agent.stop();
    await server.stop();
    const after = Date.now();
    const tdir = server.tableDir(A);
    const snap = await verifyTable(tdir);
    assert.equal(snap.rows, N);
    assert.deepEqual(snap.metaData.partitionColumns, ['day']);
    const byV = new Map();
    for (const a of adds(tdir)) {
      assert.deepEqual(Object.keys(a.partitionValues), ['day']);
      assert.equal(path.dirname(decodeURIComponent(a.path)), `day=${a.partitionValues.day}`);
      const t = wasmRead(path.join(tdir, decodeURIComponent(a.path)));
      assert.deepEqual(t.schema.fields.map((x) => x.name), ['at', 'v', 'device_id']);
      for (const v of t.getChild('v').toArray()) byV.set(Number(v), a.partitionValues.day);
    }
    assert.equal(byV.size, N);
    for (let i = 0; i < N; i++) {
      if (i === 7) {
        // no event time: the receive time's day
        const ok = [dayOf(before * 1000), dayOf(after * 1000)];
        assert.ok(ok.includes(byV.get(i)), `record 7: ${byV.get(i)} not in ${ok}`);
      } else {
        assert.equal(byV.get(i), dayOf(Date.UTC(2026, 10, 24, 20) * 1000 + i * 180 * 1000000), `record ${i}`);
      }
    }
    const [r] = await query(`SELECT count(*) AS n, count(DISTINCT day) AS days,
        count(*) FILTER (WHERE device_id = 'dev-1') AS dev
      FROM read_parquet([${snap.files.map((p) => `'${p}'`).join(', ')}], hive_partitioning = true)`);
    assert.equal(Number(r.n), N);
    assert.equal(Number(r.dev), N);
    assert.ok(Number(r.days) >= 2);
    await verifyCli(tdir);
  } finally {
    await agent.kill();
    await server.kill();
  }
});

test('compaction rewrites each partition on its own, in its directory', { timeout: 180000 }, async () => {
  const dir = tmpDir('e2e-part-compact');
  const extra = `${SCHEMA}\ncheckpoint_interval = 0;\ncompact_interval = 0;\n`;
  const server = await new Server({ dir, tables: [], flushMs: 20, extra }).start();
  const tdir = server.tableDir(T);
  const sites = ['a b', 'x/y', null];
  const B = 5; // batches, each a commit that touches all 2 x 3 partitions
  let n = 0;
  try {
    for (let b = 0; b < B; b++) {
      const lines = [];
      for (let d = 0; d < 2; d++)
        for (const site of sites)
          for (let k = 0; k < 4; k++)
            lines.push(JSON.stringify({ ts: DAY0 + d * 86400e6 + n * 1000, site, v: n++ }));
      const f = path.join(dir, `b${b}.jsonl`);
      fs.writeFileSync(f, lines.join('\n') + '\n');
      const r = await run(PY, [CLIENT, `127.0.0.1:${server.port}`, 'ingest', '--table', T,
        '--json-file', f, '--records', String(lines.length)]);
      assert.equal(r.code, 0, r.stderr);
      await waitFor(() => rows(server, T) >= n, { what: `${n} rows` });
    }
  } finally {
    await server.stop();
  }
  const key = (a) => JSON.stringify(a.partitionValues);
  const live = () => {
    const paths = new Set(replayLog(tdir).live.map((l) => l.path));
    return adds(tdir).filter((a) => paths.has(path.join(tdir, decodeURIComponent(a.path))));
  };
  const count = (list) => list.reduce((m, a) => m.set(key(a), (m.get(key(a)) ?? 0) + 1), new Map());
  const before = count(live());
  assert.equal(before.size, 6);
  for (const c of before.values()) assert.equal(c, B);
  const sql = (files) => `SELECT v, epoch_us(ts) AS ts, CAST(day AS VARCHAR) AS day, site
    FROM read_parquet([${files.map((p) => `'${p.replaceAll("'", "''")}'`).join(', ')}],
    hive_partitioning = true, hive_types = {'day': DATE, 'site': VARCHAR}) ORDER BY v`;
  const snap = await verifyTable(tdir);
  const rowsBefore = await query(sql(snap.files));
  assert.equal(rowsBefore.length, n);

  const c = await run(serverBin, ['table', 'compact', '--json', tdir]);
  assert.equal(c.code, 0, c.stdout + c.stderr);
  assert.equal(JSON.parse(c.stdout).steps.length, 6, 'one step per partition');
  const after = live();
  assert.deepEqual([...count(after).entries()].sort(), [...before.keys()].sort().map((k) => [k, 1]));
  for (const a of after) {
    const pv = a.partitionValues;
    const hdir = `day=${pv.day}/site=${pv.site === null ? '__HIVE_DEFAULT_PARTITION__' : escapeBytes(pv.site)}`;
    assert.equal(path.dirname(decodeURIComponent(a.path)), hdir, a.path);
    assert.equal(a.dataChange, false);
    assert.equal(JSON.parse(a.stats).numRecords, 4 * B);
  }
  const snap2 = await verifyTable(tdir); // both replays; every file read by both readers
  assert.equal(snap2.rows, n);
  assert.deepEqual(await query(sql(snap2.files)), rowsBefore, 'DuckDB reads the same rows');
  const j = await verifyCli(tdir);
  assert.equal(j.files, 6);
  assert.equal(j.rows, n);
});
