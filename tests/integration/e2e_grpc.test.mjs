// Protocol compatibility with a gRPC stack none of us wrote: Debian's python3-grpcio with
// the public Zerobus proto opens streams on the real runnel-server, gets its acks, resumes,
// and the rows are in the table. Bad requests get the right status while the server keeps
// serving everyone else; a malformed gRPC frame is sent with the curl CLI.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Server, run, tmpDir, waitFor } from './lib/harness.mjs';
import { duckFrom, query, replayLog, verifyTable } from './lib/table.mjs';

const PY = '/usr/bin/python3';
const CLIENT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'zerobus_client.py');
const TABLE = 'main.default.telemetry';

async function client(server, ...args) {
  const r = await run(PY, [CLIENT, `127.0.0.1:${server.port}`, ...args]);
  assert.equal(r.code, 0, `client failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

test('python3-grpcio: PersistentStream create, batches, acks, resume; rows land', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-grpc');
  const server = await new Server({ dir, tables: [TABLE] }).start();
  try {
    const res = await client(server, 'ingest', '--records', '25', '--batches', '4');
    assert.deepEqual(res.acks, [0, 1, 2, 3], 'one cumulative ack per batch');
    assert.match(res.stream_id, /^[0-9a-f-]{36}$/);
    assert.equal(res.last_committed_offset, 3, 'resume reports the last durable offset');
    const eph = await client(server, 'ephemeral', '--records', '5', '--batches', '2');
    assert.deepEqual(eph.acks, [0, 1]);

    const rows = () => replayLog(server.tableDir(TABLE)).live.reduce((n, f) => n + f.numRecords, 0);
    await waitFor(() => rows() >= 110, { timeoutMs: 20000, what: '110 rows' });
    await server.stop();
    const snap = await verifyTable(server.tableDir(TABLE));
    assert.equal(snap.rows, 110);
    assert.equal(snap.txns[res.stream_id], 3);
    const from = duckFrom(snap.files);
    const r = await query(`SELECT count(*) AS n, count(DISTINCT seq) AS d, min(seq) AS lo, max(seq) AS hi
        FROM ${from} WHERE stream_id = '${res.stream_id}'`);
    assert.deepEqual([Number(r[0].n), Number(r[0].d), Number(r[0].lo), Number(r[0].hi)], [100, 100, 0, 99]);
    const [p] = await query(`SELECT payload, device_id, source FROM ${from} WHERE stream_id = '${res.stream_id}' AND seq = 42`);
    assert.deepEqual(p, { payload: 'python record 42', device_id: 'py-client', source: 'grpcio' });
  } finally {
    await server.kill();
  }
});

test('bad requests get the right status and the server keeps serving', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-grpc-bad');
  const server = await new Server({ dir, tables: [TABLE], token: 's3cret' }).start();
  try {
    const cases = [
      [['status', '--token', 's3cret', '--case', 'garbage'], 'INVALID_ARGUMENT'],
      [['status', '--token', 's3cret', '--case', 'unknown-resume'], 'NOT_FOUND'],
      [['status', '--token', 's3cret', '--case', 'gap'], 'INVALID_ARGUMENT'],
      [['status', '--token', 's3cret', '--table', 'main.default.nope'], 'NOT_FOUND'],
      [['status', '--token', 's3cret', '--table', '../../etc'], 'INVALID_ARGUMENT'],
      [['status', '--token', 's3cret', '--table', 'a/b'], 'INVALID_ARGUMENT'],
      [['status', '--token', 'wrong'], 'UNAUTHENTICATED'],
      [['status'], 'UNAUTHENTICATED'],
      [['status', '--token', 's3cret', '--case', 'unknown-method'], 'UNIMPLEMENTED'],
    ];
    for (const [args, code] of cases) {
      const r = await client(server, ...args);
      assert.equal(r.code, code, `${args.join(' ')} -> ${JSON.stringify(r)}`);
    }
    // A malformed gRPC frame (compressed flag 7) over raw h2 with the curl CLI.
    const fs = await import('node:fs');
    const f = path.join(dir, 'bad.bin');
    fs.writeFileSync(f, Buffer.from([7, 0, 0, 0, 2, 1, 2]));
    const r2 = await run('curl', ['--max-time', '15', '-s', '-o', '/dev/null', '--http2-prior-knowledge', '-D', '-',
      '-H', 'content-type: application/grpc', '-H', 'te: trailers', '-H', 'authorization: Bearer s3cret',
      '-H', `x-databricks-zerobus-table-name: ${TABLE}`, '--data-binary', `@${f}`,
      `http://127.0.0.1:${server.port}/databricks.zerobus.Zerobus/PersistentStream`]);
    assert.match(r2.stdout, /grpc-status: 3/, r2.stdout);
    // and a good client still works afterwards
    const ok = await client(server, 'ingest', '--token', 's3cret', '--records', '3', '--batches', '2');
    assert.deepEqual(ok.acks, [0, 1]);
  } finally {
    await server.kill();
  }
});

test('garbage on the wire and oversized messages do not hurt other clients', { timeout: 120000 }, async () => {
  const net = await import('node:net');
  const dir = tmpDir('e2e-grpc-garbage');
  const server = await new Server({ dir, tables: [TABLE] }).start();
  const send = (bytes) => new Promise((resolve) => {
    const s = net.connect(server.port, '127.0.0.1', () => s.end(bytes));
    s.resume(); // read (and drop) whatever the server answers, so 'close' can fire
    s.on('error', () => resolve());
    s.on('close', () => resolve());
    s.setTimeout(5000, () => s.destroy());
  });
  try {
    const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
    let seed = 12345;
    const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    for (let i = 0; i < 40; i++) {
      const junk = Buffer.alloc(1 + Math.floor(rnd() * 4000));
      for (let k = 0; k < junk.length; k++) junk[k] = Math.floor(rnd() * 256);
      // half the connections speak h2 first, then garbage frames
      await send(i % 2 ? Buffer.concat([preface, junk]) : junk);
    }
    assert.equal(server.proc.exited, null, 'server survived the garbage');
    const big = await client(server, 'status', '--case', 'oversize');
    assert.equal(big.code, 'RESOURCE_EXHAUSTED', JSON.stringify(big));
    const ok = await client(server, 'ingest', '--records', '4', '--batches', '3');
    assert.deepEqual(ok.acks, [0, 1, 2]);
  } finally {
    await server.kill();
  }
});
