// Independent readers of a Delta table written by runnel-server. Nothing here uses our C
// code: the log is replayed twice (plain JS and SQL in DuckDB), every live data file is read
// in full by DuckDB and by parquet-wasm (arrow-rs), and the results must agree.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { DuckDBInstance } from '@duckdb/node-api';
import { tableFromIPC } from 'apache-arrow';

const require = createRequire(import.meta.url);
const { readParquet } = require('parquet-wasm/node');

let instance;
export async function duck() {
  if (!instance) instance = await DuckDBInstance.create(':memory:');
  return instance.connect();
}

export async function query(sql) {
  const conn = await duck();
  try {
    const r = await conn.runAndReadAll(sql);
    return r.getRowObjectsJS();
  } finally {
    conn.closeSync();
  }
}

const sqlStr = (s) => `'${String(s).replaceAll("'", "''")}'`;

// Replays _delta_log in JS per the protocol: versions contiguous from 0, one action per line,
// newest action per path wins. Returns the snapshot and every check failure in `problems`.
export function replayLog(tableDir) {
  const logDir = path.join(tableDir, '_delta_log');
  const names = fs.readdirSync(logDir).filter((n) => /^\d{20}\.json$/.test(n)).sort();
  const problems = [];
  const files = new Map();
  const txns = {};
  let protocol = null;
  let metaData = null;
  names.forEach((n, i) => {
    if (Number(n.slice(0, 20)) !== i) problems.push(`version gap at ${n}`);
    const text = fs.readFileSync(path.join(logDir, n), 'utf8');
    if (!text.endsWith('\n')) problems.push(`${n}: no final newline`);
    const seenTxn = new Set();
    for (const line of text.split('\n').filter(Boolean)) {
      const a = JSON.parse(line);
      const keys = Object.keys(a);
      if (keys.length !== 1) problems.push(`${n}: action with keys ${keys}`);
      if (a.protocol) protocol = a.protocol;
      if (a.metaData) metaData = a.metaData;
      if (a.add) files.set(a.add.path, { ...a.add, version: i });
      if (a.remove) files.delete(a.remove.path);
      if (a.txn) {
        if (seenTxn.has(a.txn.appId)) problems.push(`${n}: two txn for ${a.txn.appId}`);
        seenTxn.add(a.txn.appId);
        txns[a.txn.appId] = Math.max(txns[a.txn.appId] ?? -1, a.txn.version);
      }
    }
  });
  if (!protocol || protocol.minReaderVersion !== 1 || protocol.minWriterVersion !== 2) problems.push('protocol is not (1,2)');
  if (!metaData) problems.push('no metaData');
  const live = [...files.values()].map((f) => {
    const abs = path.join(tableDir, decodeURIComponent(f.path));
    const st = fs.existsSync(abs) ? fs.statSync(abs) : null;
    if (!st) problems.push(`missing data file ${f.path}`);
    else if (st.size !== f.size) problems.push(`size mismatch ${f.path}: log ${f.size}, disk ${st.size}`);
    const stats = f.stats ? JSON.parse(f.stats) : {};
    return { path: abs, size: f.size, numRecords: stats.numRecords, stats };
  });
  return { version: names.length - 1, live, txns, metaData, protocol, problems };
}

// The same replay in SQL (reference digest D3), as a second opinion.
export async function duckReplay(tableDir) {
  const glob = path.join(tableDir, '_delta_log', '*.json');
  const log = `(SELECT CAST(regexp_extract(filename, '(\\d{20})\\.json$', 1) AS BIGINT) AS version, *
    FROM read_json(${sqlStr(glob)}, format='newline_delimited', filename=true, columns={
      'commitInfo':'JSON',
      'protocol':'STRUCT(minReaderVersion INT, minWriterVersion INT)',
      'metaData':'STRUCT(id VARCHAR, schemaString VARCHAR, partitionColumns VARCHAR[])',
      'add':'STRUCT(path VARCHAR, size BIGINT, dataChange BOOLEAN, stats VARCHAR)',
      'remove':'STRUCT(path VARCHAR, deletionTimestamp BIGINT, dataChange BOOLEAN)',
      'txn':'STRUCT(appId VARCHAR, version BIGINT, lastUpdated BIGINT)'}))`;
  const live = await query(`SELECT path FROM (
      SELECT coalesce(add.path, remove.path) AS path, add IS NOT NULL AS is_add,
             row_number() OVER (PARTITION BY coalesce(add.path, remove.path) ORDER BY version DESC) rn
      FROM ${log} WHERE add IS NOT NULL OR remove IS NOT NULL) WHERE rn = 1 AND is_add ORDER BY path`);
  const txns = await query(`SELECT txn.appId AS app, max(txn.version) AS v FROM ${log}
      WHERE txn IS NOT NULL GROUP BY 1`);
  // records in the live files only: a compaction removes files whose rows it re-adds
  const recs = await query(`SELECT sum(n) AS n FROM (
      SELECT (add.stats::JSON->>'numRecords')::BIGINT AS n, add IS NOT NULL AS is_add,
             row_number() OVER (PARTITION BY coalesce(add.path, remove.path) ORDER BY version DESC) rn
      FROM ${log} WHERE add IS NOT NULL OR remove IS NOT NULL) WHERE rn = 1 AND is_add`);
  return {
    live: live.map((r) => path.join(tableDir, decodeURIComponent(r.path))).sort(),
    txns: Object.fromEntries(txns.map((r) => [r.app, Number(r.v)])),
    statsRecords: Number(recs[0].n ?? 0),
  };
}

// A SQL expression reading every live file with DuckDB.
export function duckFrom(files) {
  return `read_parquet([${files.map(sqlStr).join(', ')}])`;
}

// Reads one file fully with parquet-wasm (arrow-rs) and returns the arrow table.
export function wasmRead(file) {
  const u8 = new Uint8Array(fs.readFileSync(file));
  return tableFromIPC(readParquet(u8).intoIPCStream());
}

// Full check of a table: both replays agree, sizes and record counts match, and every live
// file is read in full by both readers with equal row counts. Returns the snapshot.
export async function verifyTable(tableDir) {
  const snap = replayLog(tableDir);
  if (snap.problems.length) throw new Error(`log problems: ${snap.problems.join('; ')}`);
  const sq = await duckReplay(tableDir);
  const jsLive = snap.live.map((f) => f.path).sort();
  if (JSON.stringify(jsLive) !== JSON.stringify(sq.live)) throw new Error('JS and DuckDB log replays disagree on live files');
  if (JSON.stringify(Object.entries(snap.txns).sort()) !== JSON.stringify(Object.entries(sq.txns).sort())) {
    throw new Error('JS and DuckDB log replays disagree on txn versions');
  }
  let total = 0;
  for (const f of snap.live) {
    const [{ n }] = await query(`SELECT count(*) AS n FROM read_parquet(${sqlStr(f.path)})`);
    const t = wasmRead(f.path);
    if (Number(n) !== f.numRecords) throw new Error(`${f.path}: DuckDB reads ${n} rows, stats say ${f.numRecords}`);
    if (t.numRows !== f.numRecords) throw new Error(`${f.path}: parquet-wasm reads ${t.numRows} rows, stats say ${f.numRecords}`);
    // Touch every column of every row in arrow-rs's output so decoding errors surface.
    for (const field of t.schema.fields) {
      const col = t.getChild(field.name);
      for (let i = 0; i < col.length; i++) col.get(i);
    }
    total += f.numRecords;
  }
  if (total !== sq.statsRecords) throw new Error(`stats sum ${sq.statsRecords} != ${total}`);
  return { ...snap, rows: total, files: jsLive };
}
