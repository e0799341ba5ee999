// A live batch that fails part way in the materializer. The test build of the server
// (runnel-server-faults, RN_FAULT_MAT_ADD) fails an allocation inside rn_mat_add of a batch
// sent while earlier batches of the same table are pending (the flush interval is an hour).
// The materializer keeps no copy of pending batches: it drops the table's pending rows and
// the server reads the table's batches back from its WAL; the failed batch is refused, the
// agent sends it again, and at the drain's flush every line is in the table exactly once and
// in order (read back by stream and offset with DuckDB and parquet-wasm).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Agent, Server, faultServerBin, freePort, tmpDir, waitFor } from './lib/harness.mjs';
import { duckFrom, query, verifyTable, wasmRead } from './lib/table.mjs';

const T = 'main.default.refill';
const range = (n) => Array.from({ length: n }, (_, i) => i);

test('a batch failing part way is undone from the WAL and lands once after the resend', { timeout: 180000 }, async () => {
  const dir = tmpDir('e2e-mat-refill');
  const logDir = path.join(dir, 'logs');
  fs.mkdirSync(logDir);
  const log = path.join(logDir, 'r.log');
  fs.writeFileSync(log, '');
  const port = await freePort();
  // from the 3rd live add of a client's batch on, the first allocation of each add fails,
  // until one add failed (the server's own fleet rows, written meanwhile, are not counted:
  // they have their own hook)
  const server = new Server({ dir, port, tables: [T], flushMs: 3600000, bin: faultServerBin,
    env: { RN_FAULT_MAT_ADD: '3:1' }, extra: 'fleet_table_interval = "1s";' });
  const agent = new Agent({ dir, url: `http://127.0.0.1:${port}`, sources: [{ name: 'r', table: T, paths: [log] }] });
  const lines = (from, to) => Array.from({ length: to - from }, (_, k) => `r ${from + k} ${'z'.repeat(30 + (from + k) % 50)}\n`).join('');
  const acked = (n) => {
    const st = agent.status()?.streams?.[0];
    return st && st.records === n && st.acked === st.next_offset - 1;
  };
  const failed = () => server.proc.log.some((l) => /fault hook: live client add \d+ failed part way/.test(l));
  await server.start();
  await agent.start();
  let n = 0;
  try {
    // bursts of lines, each acked before the next (one batch or more each), until an add
    // has failed part way with batches of the table pending. An add allocates only when the
    // table's column builders grow, so each burst doubles the rows pending: the builders must
    // grow inside a later add, whatever sizes the agent's batches happen to have.
    let burst = 100;
    while (!failed()) {
      assert.ok(n < 50000, `no add failed after ${n} lines\n${server.proc.tail()}`);
      fs.appendFileSync(log, lines(n, n + burst));
      n += burst;
      burst = n;
      await waitFor(() => acked(n) || failed(), { what: `${n} lines acked` });
    }
    const refill = await waitFor(() => server.proc.log.map((l) => l.match(
      /table main\.default\.refill: pending rows dropped after a failure, (\d+) batch\(es\) read back from the WAL/))
      .find(Boolean), { what: 'the table refilled from the WAL' });
    assert.ok(Number(refill[1]) >= 2, `earlier batches were pending: ${refill[0]}`);
    fs.appendFileSync(log, lines(n, n + 200));
    n += 200;
    await waitFor(() => acked(n), { what: `all ${n} lines acked after the resend` });
    assert.equal(fs.readdirSync(path.join(server.tableDir(T), '_delta_log')).filter((f) => f.endsWith('.json')).length, 1,
      'nothing committed before the drain');
    await agent.stop();
    await server.stop(); // drains: one flush commits every pending row
    const snap = await verifyTable(server.tableDir(T));
    assert.equal(snap.rows, n);
    const sid = Object.keys(snap.txns)[0];
    const duck = (await query(`SELECT seq FROM ${duckFrom(snap.files)} WHERE stream_id = '${sid}' ORDER BY seq`))
      .map((r) => Number(r.seq));
    assert.deepEqual(duck, range(n), 'every line once (DuckDB)');
    const wasm = [];
    for (const f of snap.files) {
      const t = wasmRead(f);
      const seq = t.getChild('seq');
      for (let i = 0; i < t.numRows; i++) wasm.push(Number(seq.get(i)));
    }
    wasm.sort((x, y) => x - y);
    assert.deepEqual(wasm, range(n), 'every line once (parquet-wasm)');
    const [r] = await query(`SELECT count(*) FILTER (WHERE CAST(split_part(payload, ' ', 2) AS BIGINT) <> seq) AS misordered,
        count(DISTINCT payload) AS d FROM ${duckFrom(snap.files)}`);
    assert.equal(Number(r.misordered), 0, 'line i is record seq i');
    assert.equal(Number(r.d), n);
  } finally {
    await agent.kill();
    await server.kill();
  }
});
