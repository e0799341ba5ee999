// The server's operator endpoint: GET /metrics in Prometheus text (counters that move with
// the traffic) and GET /healthz, over plain HTTP/1.1 on metrics_listen.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Server, run, tmpDir, waitFor } from './lib/harness.mjs';
import { verifyTable } from './lib/table.mjs';

const PY = '/usr/bin/python3';
const CLIENT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'zerobus_client.py');

test('/metrics counts what was ingested; /healthz says ok', { timeout: 60000 }, async () => {
  const dir = tmpDir('e2e-metrics');
  const server = await new Server({ dir, metrics: true }).start();
  try {
    const before = await server.metrics();
    assert.match(before.text, /# TYPE runnel_server_records_total counter/);
    assert.equal(before('records_total'), 0);
    const r = await run(PY, [CLIENT, `127.0.0.1:${server.port}`, 'ingest', '--records', '25', '--batches', '4']);
    assert.equal(r.code, 0, r.stderr);
    await waitFor(async () => (await server.metric('flushes_total')) >= 1, { what: 'a flush' });
    const after = await server.metrics();
    assert.equal(after('records_total'), 100);
    assert.equal(after('batches_total'), 4);
    assert.ok(after('acks_total') >= 4);
    assert.ok(after('wal_syncs_total') >= 1);
    assert.equal(after('streams_known'), 1);
    const h = await fetch(`${server.metricsUrl}/healthz`);
    assert.equal(h.status, 200);
    assert.equal(await h.text(), 'ok\n');
    assert.equal((await fetch(`${server.metricsUrl}/nope`)).status, 404);
  } finally {
    await server.kill();
  }
});

// Ephemeral streams cannot be resumed: once their call has ended and their records are in
// the table, the server forgets them (memory, descriptor, clock file). Files such streams
// left behind (a server killed before it could forget them) are removed at the next start;
// a persistent stream keeps its files and resumes.
test('ended ephemeral streams are forgotten; a restart sweeps what is left', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-ephemeral');
  const server = await new Server({ dir, metrics: true }).start();
  const streams = path.join(server.dataRoot, '_streams');
  const py = async (...args) => {
    const r = await run(PY, [CLIENT, `127.0.0.1:${server.port}`, ...args]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout.trim().split('\n').pop());
  };
  try {
    const p = await py('ingest', '--records', '5', '--batches', '2');
    const eph = [];
    for (let i = 0; i < 3; i++) eph.push((await py('ephemeral', '--records', '5', '--batches', '2')).stream_id);
    await waitFor(async () => (await server.metric('ephemeral_streams_forgotten_total')) === 3,
      { what: '3 ephemeral streams forgotten' });
    assert.equal(await server.metric('streams_known'), 1, 'only the persistent stream is kept');
    const files = fs.readdirSync(streams);
    for (const id of eph) assert.ok(!files.some((f) => f.startsWith(id)), `${id} left ${files}`);
    assert.ok(files.includes(p.stream_id) && files.includes(`${p.stream_id}.desc`), `${files}`);
    await server.stop();
    assert.equal((await verifyTable(server.tableDir('main.default.telemetry'))).rows, 40);

    // leftovers of an ephemeral stream (as after a SIGKILL): a descriptor and a clock file
    const ghost = '0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d';
    fs.copyFileSync(path.join(streams, `${p.stream_id}.desc`), path.join(streams, `${ghost}.desc`));
    fs.writeFileSync(path.join(streams, `${ghost}.clock`), 'boot 123\n');
    await server.start();
    assert.ok(server.proc.log.some((l) => /removed 2 files of ended ephemeral streams/.test(l)));
    const after = fs.readdirSync(streams).sort();
    // .live: the lock every server on the data root holds (rn_registry_join)
    assert.deepEqual(after, [p.stream_id, `${p.stream_id}.desc`, '.live'].sort());
    assert.equal(await server.metric('streams_known'), 1, 'the persistent stream is still known');
    const again = await py('ingest', '--records', '5', '--batches', '2');
    assert.deepEqual(again.acks, [0, 1]);
  } finally {
    await server.kill();
  }
});
