// Tables written through the materializer's allocation-failure sweeps (mat_alloc_sample:
// for every N, the Nth allocation of an add or a flush fails, then the retry, one more batch
// and a restart that replays every batch), read back by readers none of us wrote: every
// table passes verifyTable (two log replays, every live file read in full by DuckDB and
// parquet-wasm), and DuckDB and parquet-wasm each find every record exactly once by stream
// and seq (a typed table together with its dead-letter table).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { buildDir, run, tmpDir } from './lib/harness.mjs';
import { duckFrom, query, verifyTable, wasmRead } from './lib/table.mjs';

const NAME = 'allocation-failure sweeps leave every record exactly once, for DuckDB and parquet-wasm';

test(NAME, { timeout: 600000 }, async () => {
  const dir = tmpDir('matsweep');
  const bin = path.join(buildDir, 'tests', 'unit', 'mat', 'mat_alloc_sample');
  const r = await run(bin, [dir]);
  assert.equal(r.code, 0, r.stderr);
  const tables = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  const ops = new Set(tables.map((t) => t.table.replace(/_\d+$/, '')));
  assert.deepEqual([...ops].sort(), ['main/sweep/add_env', 'main/sweep/flush_env', 'main/sweep/flush_typed']);
  for (const t of tables) {
    const dirs = [t.table];
    const dlq = path.join(dir, `${t.table}_dead_letters`);
    if (t.typed) {
      assert.ok(fs.existsSync(dlq), `${t.table}: no dead-letter table`);
      dirs.push(`${t.table}_dead_letters`);
    }
    const duck = new Map();
    const wasm = new Map();
    const bump = (m, k) => m.set(k, (m.get(k) ?? 0) + 1);
    for (const d of dirs) {
      const snap = await verifyTable(path.join(dir, d));
      if (!snap.files.length) continue;
      const rows = await query(`SELECT stream_id, seq FROM ${duckFrom(snap.files)}`);
      for (const row of rows) bump(duck, `${row.stream_id}/${Number(row.seq)}`);
      for (const f of snap.files) {
        const a = wasmRead(f);
        const sid = a.getChild('stream_id');
        const seq = a.getChild('seq');
        for (let i = 0; i < a.numRows; i++) bump(wasm, `${sid.get(i)}/${Number(seq.get(i))}`);
      }
    }
    for (const [name, counts] of [['DuckDB', duck], ['parquet-wasm', wasm]]) {
      const want = new Map();
      for (const s of ['s0', 's1']) for (let q = 0; q < t[s]; q++) want.set(`${s}/${q}`, 1);
      const extra = [...counts].filter(([k, n]) => want.get(k) !== n);
      assert.deepEqual(extra, [], `${t.table} (${name}): records not exactly once`);
      const missing = [...want.keys()].filter((k) => !counts.has(k));
      assert.deepEqual(missing, [], `${t.table} (${name}): records missing`);
    }
  }
  console.log(`mat_alloc_sweep: ${tables.length} tables over ${ops.size} operations x N`);
});
