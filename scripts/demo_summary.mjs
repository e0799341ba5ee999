// Waits until the demo table holds the expected rows, then prints a summary read by DuckDB.
// Usage: node scripts/demo_summary.mjs <data_root> <table> <rows>
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [dataRoot, table, want] = process.argv.slice(2);
const { replayLog, duckFrom, query } = await import(
  pathToFileURL(path.resolve('tests/integration/lib/table.mjs')).href);
const dir = path.join(dataRoot, ...table.split('.'));

const deadline = Date.now() + 120000;
let snap;
for (;;) {
  try {
    snap = replayLog(dir);
    const rows = snap.live.reduce((n, f) => n + f.numRecords, 0);
    if (rows >= Number(want)) break;
  } catch { /* table not created yet */ }
  if (Date.now() > deadline) {
    console.error(`timed out: table has not reached ${want} rows`);
    process.exit(1);
  }
  await new Promise((r) => setTimeout(r, 200));
}
const from = duckFrom(snap.live.map((f) => f.path));
const [c] = await query(`SELECT count(*) AS n, count(DISTINCT stream_id) AS streams,
  min(receive_time)::VARCHAR AS first, max(receive_time)::VARCHAR AS last FROM ${from}`);
const sample = await query(`SELECT seq, device_id, json_extract_string(payload, '$.vehicle') AS vehicle,
  CAST(json_extract(payload, '$.speed_kmh') AS DOUBLE) AS speed_kmh, event_time::VARCHAR AS event_time,
  attributes FROM ${from} ORDER BY seq LIMIT 5`);
const per = await query(`SELECT json_extract_string(payload, '$.vehicle') AS vehicle, count(*) AS n,
  round(avg(CAST(json_extract(payload, '$.speed_kmh') AS DOUBLE)), 1) AS avg_speed
  FROM ${from} GROUP BY 1 ORDER BY 1`);

console.log('\n=== Runnel demo: the table ===');
console.log(`table      ${table}`);
console.log(`path       ${dir}`);
console.log(`version    ${snap.version} (${snap.live.length} data files)`);
console.log(`rows       ${c.n} (streams: ${c.streams}; received ${c.first} .. ${c.last})`);
console.log('first rows:');
console.table(sample.map((r) => ({ ...r, seq: Number(r.seq) })));
console.log('per vehicle:');
console.table(per.map((r) => ({ ...r, n: Number(r.n) })));
console.log('Query it yourself, e.g. with DuckDB (all files, while nothing is compacted yet):');
console.log(`  SELECT * FROM read_parquet('${dir}/**/*.parquet') LIMIT 10;`);
console.log(`or check it: runnel-server table describe ${dir}`);
console.log('or with Spark / delta-rs: spark.read.format("delta").load("' + dir + '")');
