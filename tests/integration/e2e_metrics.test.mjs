// The server's operator endpoint: GET /metrics in Prometheus text (counters that move with
// the traffic) and GET /healthz, over plain HTTP/1.1 on metrics_listen.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Server, run, tmpDir, waitFor } from './lib/harness.mjs';

const PY = '/usr/bin/python3';
const CLIENT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'zerobus_client.py');

function metric(text, name) {
  const m = text.match(new RegExp(`^runnel_server_${name} (\\S+)$`, 'm'));
  return m ? Number(m[1]) : undefined;
}

test('/metrics counts what was ingested; /healthz says ok', { timeout: 60000 }, async () => {
  const dir = tmpDir('e2e-metrics');
  const server = await new Server({ dir, extra: 'metrics_listen = "127.0.0.1:0";' }).start();
  try {
    const line = await waitFor(() => server.proc.log.find((l) => /metrics on 127\.0\.0\.1:\d+/.test(l)),
      { what: 'metrics line' });
    const base = `http://127.0.0.1:${line.match(/metrics on 127\.0\.0\.1:(\d+)/)[1]}`;
    const before = await (await fetch(`${base}/metrics`)).text();
    assert.match(before, /# TYPE runnel_server_records_total counter/);
    assert.equal(metric(before, 'records_total'), 0);
    const r = await run(PY, [CLIENT, `127.0.0.1:${server.port}`, 'ingest', '--records', '25', '--batches', '4']);
    assert.equal(r.code, 0, r.stderr);
    await waitFor(async () => metric(await (await fetch(`${base}/metrics`)).text(), 'flushes_total') >= 1,
      { what: 'a flush' });
    const after = await (await fetch(`${base}/metrics`)).text();
    assert.equal(metric(after, 'records_total'), 100);
    assert.equal(metric(after, 'batches_total'), 4);
    assert.ok(metric(after, 'acks_total') >= 4);
    assert.ok(metric(after, 'wal_syncs_total') >= 1);
    assert.equal(metric(after, 'streams_known'), 1);
    const h = await fetch(`${base}/healthz`);
    assert.equal(h.status, 200);
    assert.equal(await h.text(), 'ok\n');
    assert.equal((await fetch(`${base}/nope`)).status, 404);
  } finally {
    await server.kill();
  }
});
