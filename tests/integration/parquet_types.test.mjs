// Every Delta type, nulls, nested struct/list/map, dictionary and PLAIN columns and several
// row groups, written by our Parquet writer (tests/unit/parquet/pq_write_types.c) and read
// back in full by DuckDB and by parquet-wasm (arrow-rs). The expected values are regenerated
// here from the row number with the same rules as the C helper and compared exactly; the
// footer (types, encodings, dictionary offsets, statistics) is checked with
// parquet_schema/parquet_metadata, and the Delta statistics the writer reports against
// DuckDB aggregates.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { buildDir, run, tmpDir } from './lib/harness.mjs';
import { query, wasmRead } from './lib/table.mjs';

const TYPES_ROWS = 5000;
const NESTED_ROWS = 3000;
const p10 = (n) => 10n ** BigInt(n);
const words = ['', 'alpha', 'ünïcødé ✓', '日本語', 'a\'b"c\\d', 'x'.repeat(74)];

// Decimal text as DuckDB prints it: all `scale` digits, at least one before the point.
function decText(v, scale) {
  const neg = v < 0n;
  let s = (neg ? -v : v).toString().padStart(scale + 1, '0');
  if (scale) s = `${s.slice(0, -scale)}.${s.slice(-scale)}`;
  return (neg ? '-' : '') + s;
}

function typesRow(i) {
  const I = BigInt(i);
  const f32 = (x) => Math.fround(x);
  return {
    id: I,
    s: i % 7 === 3 ? null : words[i % 6],
    s_plain: i % 10 === 9 ? null : `row-${i}-é`,
    s_fallback: i % 1000 < 600 ? `v${i % 250}` : `w${i % 1000}`,
    bin: i % 5 === 0 ? null : [i & 255, 0, 255, (i >> 8) & 255],
    l: i === 0 ? -(2n ** 63n) : i === 1 ? 2n ** 63n - 1n : i % 11 === 0 ? null : I * 1000003n - 2000000000n,
    n: i === 2 ? -2147483648 : i === 3 ? 2147483647 : ((i * 7919) % 100000) - 50000,
    sh: ((i * 31) % 65536) - 32768,
    by: (i % 256) - 128,
    f: i % 13 === 0 ? null : i === 4 ? NaN : i === 5 ? Infinity : i === 6 ? -Infinity : i === 7 ? -0 : f32((i - 2500) * 0.25),
    d: i === 8 ? NaN : i === 9 ? Infinity : i === 10 ? -Infinity : i === 11 ? -0 : i === 12 ? 5e-324
      : i === 13 ? 1.7976931348623157e308 : i / 8 - 300,
    b: i % 3 === 0 ? null : i % 2 === 1,
    dt: (i - 2500) * 13,
    ts: (I - 2500n) * 3600000000123n,
    tsn: (I - 2500n) * 3600000000123n + 1n,
    d9: i === 15 ? 999999999n : i === 16 ? -999999999n : BigInt(((i * 123457) % 1999999999) - 999999999),
    d18: i === 17 ? p10(18) - 1n : i === 18 ? 1n - p10(18) : (I - 2500n) * 123456789012345n,
    d25: (I - 2500n) * p10(20) + 7n,
    d38: i % 17 === 0 ? null : i === 19 ? p10(38) - 1n : i === 20 ? 1n - p10(38) : (I - 2500n) * p10(30) + I,
  };
}

// nested.parquet; see nested_row() in pq_write_types.c. Maps are lists of [key, value].
function nestedRow(i) {
  const st = i % 10 === 0 ? null : {
    a: i % 4 === 0 ? null : i,
    b: i % 5 === 1 ? null : `b${i}`,
    inner: i % 6 === 0 ? null : {
      x: i * 0.5,
      y: i % 7 === 0 ? null : Array.from({ length: i % 4 }, (_, k) => (k === 2 ? null : String(i * 10 + k))),
    },
  };
  const tags = i % 9 === 0 ? null : i % 9 === 1 ? []
    : Array.from({ length: (i % 4) + 1 }, (_, k) => (k === 1 && i % 3 === 0 ? null : `t${(i + k) % 5}`));
  const m = i % 8 === 0 ? null : i % 8 === 1 ? []
    : Array.from({ length: (i % 3) + 1 }, (_, k) => [`k${k}`, k === 1 ? null : String(i * 100 + k)]);
  const lol = i % 11 === 0 ? null : i % 11 === 1 ? []
    : Array.from({ length: (i % 3) + 1 }, (_, j) => (j === 1 && i % 2 === 0 ? null
      : j === 2 ? [] : Array.from({ length: (i % 3) + 1 }, (_, e) => (e === 1 ? null : i + j * 10 + e))));
  const ms = i % 12 === 0 ? null : Array.from({ length: i % 3 }, (_, k) => [`m${k}`, k === 0 ? null
    : Array.from({ length: (Math.floor(i / 3) + k) % 3 }, (_, e) => (e === 1 && i % 2 === 1 ? null
      : { p: (i + k + e) % 4 === 0 ? null : e, q: `q${e}` }))]);
  return { id: String(i), st, tags, m, lol, ms };
}

// Canonical JSON-able form of a value from either reader: BigInt as string, maps as
// [key, value] lists, arrow vectors and rows as arrays and objects.
function canon(v, isMap = false) {
  if (v === null || v === undefined) return null;
  if (typeof v === 'bigint') return v.toString();
  if (typeof v !== 'object') return v;
  if (Array.isArray(v)) {
    return v.map((x) => (isMap && x && 'key' in x ? [canon(x.key), canon(x.value)] : canon(x)));
  }
  if (typeof v.toArray === 'function' && typeof v.get === 'function' && 'length' in v) return canon([...v]);
  if (v instanceof Map) return [...v.entries()].map(([k, x]) => [canon(k), canon(x)]);
  const o = typeof v.toJSON === 'function' ? v.toJSON() : v;
  return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, canon(x)]));
}

// All values of an arrow column as BigInt (integers, timestamps, decimals of any width),
// read from the raw buffers so nothing goes through a JS number.
function rawBig(vec) {
  const out = [];
  for (const d of vec.data) {
    const bw = d.type.bitWidth ?? 64;
    const vals = d.values;
    for (let i = 0; i < d.length; i++) {
      if (!d.getValid(i)) { out.push(null); continue; }
      const k = d.offset + i;
      if (bw <= 64 && vals instanceof BigInt64Array) out.push(vals[k]);
      else if (bw === 32) out.push(BigInt(vals[k] | 0));
      else {
        const words = bw / 32;
        let x = 0n;
        for (let w = words - 1; w >= 0; w--) x = (x << 32n) | BigInt(vals[k * words + w] >>> 0);
        out.push(BigInt.asIntN(bw, x));
      }
    }
  }
  return out;
}

test('every type and nested shape reads back exactly in DuckDB and arrow-rs', { timeout: 180000 }, async () => {
  const dir = tmpDir('pqtypes');
  const bin = path.join(buildDir, 'tests', 'unit', 'parquet', 'pq_write_types');
  const r = await run(bin, [dir]);
  assert.equal(r.code, 0, r.stderr);
  const tf = path.join(dir, 'types.parquet');
  const nf = path.join(dir, 'nested.parquet');
  const stats = JSON.parse(fs.readFileSync(path.join(dir, 'stats.json'), 'utf8'));
  const expect = Array.from({ length: TYPES_ROWS }, (_, i) => typesRow(i));

  // --- schema: physical + logical types as Delta/Spark write them
  const schema = Object.fromEntries((await query(`SELECT name, type, type_length, repetition_type,
      converted_type, scale, precision, logical_type, duckdb_type FROM parquet_schema('${tf}')`)).map((s) => [s.name, s]));
  const want = {
    id: ['INT64', 'BIGINT'], s: ['BYTE_ARRAY', 'VARCHAR'], bin: ['BYTE_ARRAY', 'BLOB'], l: ['INT64', 'BIGINT'],
    n: ['INT32', 'INTEGER'], sh: ['INT32', 'SMALLINT'], by: ['INT32', 'TINYINT'], f: ['FLOAT', 'FLOAT'],
    d: ['DOUBLE', 'DOUBLE'], b: ['BOOLEAN', 'BOOLEAN'], dt: ['INT32', 'DATE'],
    ts: ['INT64', 'TIMESTAMP WITH TIME ZONE'], tsn: ['INT64', 'TIMESTAMP'], d9: ['INT32', 'DECIMAL(9,2)'],
    d18: ['INT64', 'DECIMAL(18,6)'], d25: ['FIXED_LEN_BYTE_ARRAY', 'DECIMAL(25,3)'],
    d38: ['FIXED_LEN_BYTE_ARRAY', 'DECIMAL(38,10)'],
  };
  for (const [name, [pt, dt]] of Object.entries(want)) {
    assert.equal(schema[name].type, pt, name);
    assert.equal(schema[name].duckdb_type, dt, name);
  }
  assert.equal(schema.d25.type_length, '11');
  assert.equal(schema.d38.type_length, '16');
  assert.equal(schema.sh.converted_type, 'INT_16');
  assert.equal(schema.by.converted_type, 'INT_8');
  assert.equal(schema.dt.converted_type, 'DATE');
  assert.equal(schema.d38.converted_type, 'DECIMAL');
  assert.equal(Number(schema.d38.precision), 38);
  assert.equal(Number(schema.d38.scale), 10);
  assert.match(schema.ts.logical_type, /isAdjustedToUTC=1/);
  assert.match(schema.tsn.logical_type, /isAdjustedToUTC=0/);
  assert.equal(schema.tsn.converted_type, 'TIMESTAMP_MICROS');

  // --- values, DuckDB
  const rows = await query(`SELECT id, s, s_plain, s_fallback, bin, l, n, sh, "by", f, d, b,
      datediff('day', DATE '1970-01-01', dt) AS dt, epoch_us(ts) AS ts, epoch_us(tsn) AS tsn,
      d9::VARCHAR AS d9, d18::VARCHAR AS d18, d25::VARCHAR AS d25, d38::VARCHAR AS d38
      FROM read_parquet('${tf}') ORDER BY id`);
  assert.equal(rows.length, TYPES_ROWS);
  for (const [i, row] of rows.entries()) {
    const e = expect[i];
    const at = `row ${i}`;
    assert.equal(row.id, e.id, at);
    assert.equal(row.s, e.s, at);
    assert.equal(row.s_plain, e.s_plain, at);
    assert.equal(row.s_fallback, e.s_fallback, at);
    assert.deepEqual(row.bin === null ? null : [...row.bin], e.bin, at);
    assert.equal(row.l, e.l, at);
    assert.equal(row.n, e.n, at);
    assert.equal(row.sh, e.sh, at);
    assert.equal(row.by, e.by, at);
    assert.ok(Object.is(row.f, e.f), `${at}: f ${row.f} != ${e.f}`);
    assert.ok(Object.is(row.d, e.d), `${at}: d ${row.d} != ${e.d}`);
    assert.equal(row.b, e.b, at);
    assert.equal(Number(row.dt), e.dt, at);
    assert.equal(row.ts, e.ts, at);
    assert.equal(row.tsn, e.tsn, at);
    assert.equal(row.d9, decText(e.d9, 2), at);
    assert.equal(row.d18, decText(e.d18, 6), at);
    assert.equal(row.d25, decText(e.d25, 3), at);
    assert.equal(row.d38, e.d38 === null ? null : decText(e.d38, 10), at);
  }

  // --- values, arrow-rs
  const t = wasmRead(tf);
  assert.equal(t.numRows, TYPES_ROWS);
  const big = Object.fromEntries(['id', 'l', 'ts', 'tsn', 'd9', 'd18', 'd25', 'd38'].map((c) => [c, rawBig(t.getChild(c))]));
  for (let i = 0; i < TYPES_ROWS; i++) {
    const e = expect[i];
    const at = `arrow row ${i}`;
    for (const c of ['id', 'l', 'ts', 'tsn', 'd9', 'd18', 'd25', 'd38']) assert.equal(big[c][i], e[c], `${at} ${c}`);
    for (const c of ['s', 's_plain', 's_fallback', 'n', 'sh', 'by', 'b']) assert.equal(t.getChild(c).get(i), e[c], `${at} ${c}`);
    const bn = t.getChild('bin').get(i);
    assert.deepEqual(bn === null ? null : [...bn], e.bin, at);
    assert.ok(Object.is(t.getChild('f').get(i), e.f), `${at} f`);
    assert.ok(Object.is(t.getChild('d').get(i), e.d), `${at} d`);
    assert.equal(t.getChild('dt').get(i), e.dt * 86400000, `${at} dt`);
  }

  // --- footer: row groups, encodings, dictionary pages, statistics
  const md = await query(`SELECT row_group_id AS rg, row_group_num_rows AS nr, path_in_schema AS col, encodings,
      dictionary_page_offset AS dpo, data_page_offset AS dao, num_values, compression,
      stats_min, stats_max, stats_min_value AS mn, stats_max_value AS mx, stats_null_count AS nc
      FROM parquet_metadata('${tf}') ORDER BY rg, column_id`);
  const rgs = [...new Set(md.map((c) => Number(c.rg)))];
  assert.deepEqual(rgs, [0, 1, 2, 3, 4]);
  for (const c of md) {
    const lo = Number(c.rg) * 1000;
    const part = expect.slice(lo, lo + 1000);
    assert.equal(Number(c.nr), 1000);
    assert.equal(Number(c.num_values), 1000);
    assert.equal(c.compression, 'ZSTD');
    assert.equal(c.stats_min, null);
    assert.equal(c.stats_max, null);
    assert.equal(Number(c.nc), part.filter((e) => e[c.col] === null).length, `${c.col} rg ${c.rg} nulls`);
    const dict = ['s', 's_fallback', 'bin'].includes(c.col); // BYTE_ARRAY, dictionary not turned off
    assert.equal(c.encodings, dict ? 'PLAIN, RLE, RLE_DICTIONARY' : 'PLAIN, RLE', c.col);
    if (dict) assert.ok(Number(c.dpo) < Number(c.dao), `${c.col}: dictionary page first`);
    else assert.equal(c.dpo, null, `${c.col}: no dictionary_page_offset`);
    const vals = part.map((e) => e[c.col]).filter((v) => v !== null);
    if (['id', 'l', 'n', 'sh', 'by'].includes(c.col)) {
      const sorted = vals.map(BigInt).sort((a, b) => (a < b ? -1 : a > b));
      assert.equal(BigInt(c.mn), sorted[0], `${c.col} rg ${c.rg} min`);
      assert.equal(BigInt(c.mx), sorted.at(-1), `${c.col} rg ${c.rg} max`);
    }
    if ((c.col === 'f' || c.col === 'd') && Number(c.rg) > 0) { // rg 0 holds NaN and +-inf
      const fin = vals.filter((v) => !Number.isNaN(v));
      assert.equal(Number(c.mn), Math.min(...fin), `${c.col} rg ${c.rg} min`);
      assert.equal(Number(c.mx), Math.max(...fin), `${c.col} rg ${c.rg} max`);
    }
    if (c.col === 'd38') {
      const sorted = vals.sort((a, b) => (a < b ? -1 : a > b));
      assert.equal(c.mn, decText(sorted[0], 10));
      assert.equal(c.mx, decText(sorted.at(-1), 10));
    }
  }
  // s_fallback passes the 300-entry dictionary cap mid-chunk: the chunk has both kinds of
  // data page, and DuckDB and arrow-rs both read it (checked above)
  const [fm] = await query(`SELECT num_rows, num_row_groups, created_by FROM parquet_file_metadata('${tf}')`);
  assert.equal(Number(fm.num_rows), TYPES_ROWS);
  assert.equal(Number(fm.num_row_groups), 5);
  assert.match(fm.created_by, /^runnel-server version \S+ \(build \S+\)$/);

  // --- Delta statistics reported by the writer agree with DuckDB aggregates
  const agg = (await query(`SELECT min(l)::VARCHAR AS l_mn, max(l)::VARCHAR AS l_mx, min(sh) AS sh_mn, max(sh) AS sh_mx,
      min(d38)::VARCHAR AS d38_mn, max(d38)::VARCHAR AS d38_mx, min(d9)::VARCHAR AS d9_mn,
      datediff('day', DATE '1970-01-01', min(dt)) AS dt_mn, epoch_us(max(tsn)) AS tsn_mx,
      count(*) FILTER (WHERE s IS NULL) AS s_n, count(*) FILTER (WHERE f IS NULL) AS f_n,
      count(*) FILTER (WHERE isnan(f)) AS f_nan FROM read_parquet('${tf}')`))[0];
  const ts = stats.types;
  assert.equal(ts.l.min, agg.l_mn);
  assert.equal(ts.l.max, agg.l_mx);
  assert.equal(Number(ts.sh.min), agg.sh_mn);
  assert.equal(Number(ts.sh.max), agg.sh_mx);
  assert.equal(ts.d38.min, agg.d38_mn);
  assert.equal(ts.d38.max, agg.d38_mx);
  assert.equal(ts.d9.min, agg.d9_mn);
  assert.equal(Number(ts.dt.min), Number(agg.dt_mn));
  assert.equal(BigInt(ts.tsn.max), agg.tsn_mx);
  assert.equal(ts.s.nulls, Number(agg.s_n));
  assert.equal(ts.f.nulls, Number(agg.f_n));
  assert.equal(ts.f.nans, Number(agg.f_nan));
  assert.equal(ts.f.min, undefined, 'no Delta min/max for a float column with NaN');
  assert.equal(ts.b.min, undefined, 'no Delta min/max for booleans');

  // --- nested: both readers agree with the generator, row by row
  const nexp = Array.from({ length: NESTED_ROWS }, (_, i) => JSON.stringify(nestedRow(i)));
  const nrows = await query(`SELECT * FROM read_parquet('${nf}') ORDER BY id`);
  assert.equal(nrows.length, NESTED_ROWS);
  for (const [i, row] of nrows.entries()) {
    const got = { id: canon(row.id), st: canon(row.st), tags: canon(row.tags), m: canon(row.m, true), lol: canon(row.lol), ms: canon(row.ms, true) };
    if (got.ms) got.ms = got.ms.map(([k, v]) => [k, v]);
    assert.equal(JSON.stringify(got), nexp[i], `duckdb nested row ${i}`);
  }
  const nt = wasmRead(nf);
  assert.equal(nt.numRows, NESTED_ROWS);
  for (let i = 0; i < NESTED_ROWS; i++) {
    const row = nt.get(i);
    const got = { id: canon(row.id), st: canon(row.st), tags: canon(row.tags), m: canon(row.m), lol: canon(row.lol), ms: canon(row.ms) };
    if (got.m && !Array.isArray(got.m)) got.m = Object.entries(got.m);
    if (got.ms && !Array.isArray(got.ms)) got.ms = Object.entries(got.ms);
    assert.equal(JSON.stringify(got), nexp[i], `arrow nested row ${i}`);
  }
  const nschema = await query(`SELECT name, repetition_type, converted_type FROM parquet_schema('${nf}')`);
  assert.deepEqual(nschema.filter((s) => ['tags', 'list', 'element', 'm', 'key_value', 'key', 'value'].includes(s.name))
    .slice(0, 7).map((s) => `${s.name}:${s.repetition_type}:${s.converted_type}`),
  ['list:REPEATED:null', 'element:OPTIONAL:null', 'tags:OPTIONAL:LIST', 'list:REPEATED:null',
    'element:OPTIONAL:UTF8', 'm:OPTIONAL:MAP', 'key_value:REPEATED:null']);
  const nmd = await query(`SELECT row_group_id AS rg, path_in_schema AS col, num_values, stats_null_count AS nc
      FROM parquet_metadata('${nf}')`);
  assert.equal(new Set(nmd.map((c) => c.rg)).size, 5); // 3000 rows / 700
  const flat = (xs) => xs.flat(Infinity);
  const keyCount = nexp.map((s) => JSON.parse(s)).reduce((n, r) => n + (r.m && r.m.length ? r.m.length : 1), 0);
  assert.equal(nmd.filter((c) => c.col === 'm, key_value, key').reduce((n, c) => n + Number(c.num_values), 0), keyCount);
  // Delta-side null counts from the writer
  const nobj = nexp.map((s) => JSON.parse(s));
  assert.equal(stats.nested.st.nulls, nobj.filter((r) => r.st === null).length);
  assert.equal(stats.nested['st.a'].nulls, nobj.filter((r) => r.st === null || r.st.a === null).length);
  assert.equal(stats.nested['st.inner.x'].nulls, nobj.filter((r) => r.st === null || r.st.inner === null).length);
  assert.equal(stats.nested.tags.nulls, nobj.filter((r) => r.tags === null).length);
  assert.equal(stats.nested.lol.nulls, nobj.filter((r) => r.lol === null).length);
  assert.equal(Number(stats.nested['st.a'].max), Math.max(...flat(nobj.map((r) => (r.st && r.st.a !== null ? [r.st.a] : [])))));
});
