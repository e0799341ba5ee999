// The Parquet files and the Delta log written by the materializer, read by readers none of
// us wrote: DuckDB (read_parquet, parquet_metadata, a SQL replay of the log) and arrow-rs
// (parquet-wasm). Values are compared exactly, not just counted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { buildDir, run, tmpDir } from './lib/harness.mjs';
import { duckFrom, query, verifyTable, wasmRead } from './lib/table.mjs';

const ROWS = 30000;

test('materializer output is read identically by DuckDB and parquet-wasm', { timeout: 120000 }, async () => {
  const dir = tmpDir('pq');
  const bin = path.join(buildDir, 'tests', 'unit', 'mat', 'mat_write_sample');
  const r = await run(bin, [dir, String(ROWS)]);
  assert.equal(r.code, 0, r.stderr);
  const tdir = path.join(dir, 'main', 'sample', 'events');
  const snap = await verifyTable(tdir);
  // 2 streams x ROWS/2 records + one undecodable record per stream
  assert.equal(snap.rows, ROWS + 2);
  assert.equal(snap.version, 3, 'create + one flush mid-way + final flush');
  assert.deepEqual(snap.txns, { 'stream-a': ROWS / 200 - 1, 'stream-b': ROWS / 200 - 1 });
  const meta = JSON.parse(snap.metaData.schemaString);
  assert.deepEqual(meta.fields.map((f) => `${f.name}:${f.type}:${f.nullable}`), [
    'device_id:string:true', 'source:string:true', 'topic:string:true', 'event_time:timestamp:true',
    'receive_time:timestamp:true', 'stream_id:string:false', 'seq:long:true', 'payload:string:true',
    'payload_raw:binary:true', 'attributes:string:true', 'flags:integer:true',
    'clock_corrected:boolean:true']);

  const from = duckFrom(snap.files);
  const rows = await query(`SELECT source, seq, payload, payload_raw, attributes, flags,
      epoch_us(event_time) AS ev, epoch_us(receive_time) AS rc, device_id, topic, stream_id
      FROM ${from} WHERE seq IS NOT NULL ORDER BY source, seq`);
  assert.equal(rows.length, ROWS);
  for (const [i, row] of rows.entries()) {
    const seq = i % (ROWS / 2);
    const src = i < ROWS / 2 ? 'stream-a' : 'stream-b';
    assert.equal(Number(row.seq), seq);
    assert.equal(row.source, src);
    assert.equal(row.stream_id, src);
    assert.equal(row.device_id, 'dev-1');
    assert.equal(row.topic, '/var/log/x.log');
    assert.equal(Number(row.ev), 1700000000000000 + seq * 1000);
    assert.equal(Number(row.rc), 1700000000500000 + seq * 1000);
    assert.equal(Number(row.flags), 0);
    if (seq % 1000 === 7) {
      assert.equal(row.payload, null);
      assert.deepEqual([...row.payload_raw], [0xff, 0xfe, 0x00, 0x72, 0x61, 0x77]);
    } else {
      assert.equal(row.payload, `line ${seq} of ${src}, some text é`);
      assert.equal(row.payload_raw, null);
    }
    if (seq % 2 === 0) assert.deepEqual(JSON.parse(row.attributes), { site: 'berlin "north"' });
    else assert.equal(row.attributes, null);
  }
  const bad = await query(`SELECT stream_id, attributes, payload_raw FROM ${from} WHERE seq IS NULL ORDER BY 1`);
  assert.equal(bad.length, 2);
  assert.equal(JSON.parse(bad[0].attributes)['runnel.error'], 'malformed protobuf');
  assert.deepEqual([...bad[0].payload_raw], [0x20, 0xff]);

  // Footer checks: statistics use min_value/max_value, codec ZSTD, created_by parseable.
  for (const f of snap.files) {
    const md = await query(`SELECT path_in_schema AS col, compression, stats_min, stats_max,
        stats_min_value, stats_max_value, stats_null_count, num_values FROM parquet_metadata('${f}')`);
    for (const c of md) {
      assert.equal(c.compression, 'ZSTD');
      assert.equal(c.stats_min, null, `${c.col}: deprecated min must not be written`);
      assert.equal(c.stats_max, null);
      assert.notEqual(c.stats_null_count, null);
    }
    const [fm] = await query(`SELECT created_by, format_version FROM parquet_file_metadata('${f}')`);
    assert.match(fm.created_by, /^runnel-server version \S+ \(build \S+\)$/);
    // Delta stats agree with the data.
    const st = snap.live.find((l) => l.path === f).stats;
    const [agg] = await query(`SELECT min(seq) AS lo, max(seq) AS hi, count(*) FILTER (WHERE payload IS NULL) AS pn
        FROM read_parquet('${f}')`);
    assert.equal(st.minValues.seq, Number(agg.lo));
    assert.equal(st.maxValues.seq, Number(agg.hi));
    assert.equal(st.nullCount.payload, Number(agg.pn));
    const seqStats = md.find((c) => c.col === 'seq');
    assert.equal(Number(seqStats.stats_min_value), Number(agg.lo));
    assert.equal(Number(seqStats.stats_max_value), Number(agg.hi));
  }

  // arrow-rs reads the same values.
  let wasmRows = 0;
  for (const f of snap.files) {
    const t = wasmRead(f);
    wasmRows += t.numRows;
    const seq = t.getChild('seq');
    const payload = t.getChild('payload');
    const src = t.getChild('source');
    for (let i = 0; i < t.numRows; i++) {
      const s = seq.get(i);
      if (s === null) continue;
      const n = Number(s);
      if (n % 1000 !== 7) assert.equal(payload.get(i), `line ${n} of ${src.get(i)}, some text é`);
    }
  }
  assert.equal(wasmRows, ROWS + 2);
});
