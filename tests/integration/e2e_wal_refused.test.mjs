// A batch the materializer took but the WAL queue then refused is taken back, never
// committed behind its refusal (server.c rn_mat_drop_pending; runnel-server-faults with
// RN_FAULT_CLIENT_WAL=N refuses the Nth client WAL append as a full queue refuses it):
// - REST: the insert answered 429 and sent again lands once, beside the inserts around it;
// - gRPC (a PersistentStream, as the Zerobus SDK opens one): the call ends
//   RESOURCE_EXHAUSTED after the acked batch; the refused batch is not in the table once
//   everything pending is flushed, and after the client resumes and sends it again, every
//   record is there once, in order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Server, faultServerBin, tmpDir, waitFor, zbClient } from './lib/harness.mjs';
import { duckFrom, query, verifyTable } from './lib/table.mjs';

const T = 'main.walref.rest';
const G = 'main.walref.grpc';
const SCHEMA = `schemas = ( { table = "${T}"; columns = ( { name = "id"; type = "long"; } ); } );`;
const RECORDS = 10;

// The table once nothing is pending in the server (every batch it took flushed).
async function settled(server, table) {
  await waitFor(async () => (await server.metric('pending_bytes')) === 0, { what: 'nothing pending' });
  let snap;
  await waitFor(async () => {
    try {
      snap = await verifyTable(server.tableDir(table));
      return true;
    } catch {
      return false; // a commit landed while it was read: read again
    }
  }, { what: `a consistent read of ${table}` });
  return snap;
}

async function insert(server, from, n) {
  const body = JSON.stringify(Array.from({ length: n }, (_, i) => ({ id: from + i })));
  const r = await fetch(`${server.metricsUrl}/zerobus/v1/tables/${T}/insert`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body,
  });
  return { status: r.status, body: await r.text() };
}

test('REST: an insert the WAL queue refused (429) and sent again lands once', { timeout: 60000 }, async () => {
  const server = await new Server({
    dir: tmpDir('e2e-walref-rest'), tables: [], metrics: true, bin: faultServerBin,
    env: { RN_FAULT_CLIENT_WAL: '2' }, extra: SCHEMA,
  }).start();
  try {
    assert.equal((await insert(server, 0, 5)).status, 200);
    const refused = await insert(server, 5, 5);
    assert.equal(refused.status, 429, refused.body);
    assert.match(refused.body, /WAL queue full/);
    await waitFor(() => server.proc.log.some((l) => /fault hook: client WAL append 2 refused/.test(l)), { what: 'the fault hook\'s line' });
    // the refused rows are not committed behind the 429: flushed, the table has the first 5
    let snap = await settled(server, T);
    assert.equal(snap.rows, 5);
    assert.equal((await insert(server, 5, 5)).status, 200, 'sent again');
    assert.equal((await insert(server, 10, 5)).status, 200);
    snap = await settled(server, T);
    const ids = (await query(`SELECT id FROM ${duckFrom(snap.files)} ORDER BY id`)).map((r) => Number(r.id));
    assert.deepEqual(ids, Array.from({ length: 15 }, (_, i) => i), 'every row once');
    assert.equal(await server.metric('records_total'), 15);
  } finally {
    await server.stop();
  }
});

test('gRPC: a batch the WAL queue refused is not committed; resent, every record lands once', { timeout: 60000 }, async () => {
  const server = await new Server({
    dir: tmpDir('e2e-walref-grpc'), tables: [G], metrics: true, bin: faultServerBin,
    env: { RN_FAULT_CLIENT_WAL: '2' },
  }).start();
  try {
    const fill = await zbClient(server, 'fill', '--table', G, '--batches', '5', '--records', String(RECORDS));
    assert.equal(fill.code, 'RESOURCE_EXHAUSTED', JSON.stringify(fill));
    assert.deepEqual(fill.acks, [0]);
    await waitFor(() => server.proc.log.some((l) => /fault hook: client WAL append 2 refused/.test(l)), { what: 'the fault hook\'s line' });
    let snap = await settled(server, G);
    assert.equal(snap.rows, RECORDS, 'only the acked batch is in the table');
    const cont = await zbClient(server, 'continue', '--table', G, '--stream-id', fill.stream_id,
      '--batches', '5', '--records', String(RECORDS));
    assert.equal(cont.code, 'OK', JSON.stringify(cont));
    assert.equal(cont.resumed_at, 0);
    assert.deepEqual(cont.acks, [1, 2, 3, 4]);
    snap = await settled(server, G);
    const seqs = (await query(`SELECT seq FROM ${duckFrom(snap.files)} ORDER BY seq`)).map((r) => Number(r.seq));
    assert.deepEqual(seqs, Array.from({ length: 5 * RECORDS }, (_, i) => i), 'every record once');
  } finally {
    await server.stop();
  }
});
