// Delta maintenance runs off the event loop (server/README.md "Threads"): a bulk table gets
// hundreds of small files (flush every 20 ms) and compactions, checkpoints and vacuums run
// on the maintenance thread while a well-behaved client streams into another table: its
// ack latency stays low (p99 and max printed and bounded: a compaction on the loop held
// every ack for as long as it ran), the compactions really ran (log lines and metrics), and
// every acknowledged record is in its table exactly once. Then the server is killed (-9)
// while a maintenance job runs: the table is still valid with no row twice, and after a
// restart (the WAL replay commits what was acknowledged but not yet in the table; then it
// compacts again) every record is there exactly once. Last, SIGTERM while a job runs:
// the server exits 0 (the job stops after its current step; a sanitizer build also checks
// that the worker thread left nothing behind).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Server, run, serverBin, tmpDir, waitFor } from './lib/harness.mjs';
import { GoodClient } from './lib/goodclient.mjs';
import { duckFrom, query, verifyTable } from './lib/table.mjs';

const PY = '/usr/bin/python3';
const CLIENT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'zerobus_client.py');
const TEL = 'main.default.telemetry';
const BULK = 'main.default.bulk';
const EXTRA = [
  'metrics_listen = "127.0.0.1:0";',
  'checkpoint_interval = 10;',
  'compact_interval = "1s";',
  'compact_min_files = 10;',
  'vacuum_interval = "2s";',
  'vacuum_retention = 0;',
].join('\n');
// What must hold: the event loop never stalls for a maintenance job. The loop's own lag
// (a 50 ms timer's lateness, max over the run) stays under LAG_MS and under the longest job
// (a job on the loop would stall it at least that long). With compaction on the loop
// (before), this run measured the good client's ack p99 = max = 300-380 ms; after, ~25-70
// ms, but up to ~250 ms on a loaded machine: the WAL's fsync then queues behind the
// maintenance thread's writes on the same disk. So the ack bounds are only sanity bounds.
const LAG_MS = Number(process.env.RN_MAINT_LAG_MS || 250);
const P99_MS = Number(process.env.RN_MAINT_P99_MS || 600);
const MAX_MS = Number(process.env.RN_MAINT_MAX_MS || 2000);

// loop_lag_max_seconds restarts at each scrape: the most any scrape saw
let lagMax = 0;
async function scrape(server) {
  const get = await server.metrics(); // harness: one read of this run's /metrics
  lagMax = Math.max(lagMax, get('loop_lag_max_seconds') ?? Infinity);
  return get;
}

const compactions = (server, table) => server.proc.log
  .filter((l) => l.includes(`/${table.split('.').join('/')}: compacted `)).length;

function fill(server, table, batches, records, payload) {
  return run(PY, [CLIENT, `127.0.0.1:${server.port}`, 'fill', '--table', table,
    '--records', String(records), '--batches', String(batches), '--payload-bytes', String(payload)])
    .then((r) => {
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout.trim().split('\n').pop());
    });
}

// Data files on disk that no add or remove of the log names (a compaction's output whose
// commit never happened).
function orphans(dir) {
  const named = new Set();
  const logDir = path.join(dir, '_delta_log');
  for (const n of fs.readdirSync(logDir).filter((x) => /^\d{20}\.json$/.test(x))) {
    for (const l of fs.readFileSync(path.join(logDir, n), 'utf8').split('\n').filter(Boolean)) {
      const a = JSON.parse(l);
      if (a.add) named.add(decodeURIComponent(a.add.path));
      if (a.remove) named.add(decodeURIComponent(a.remove.path));
    }
  }
  return fs.readdirSync(dir).filter((n) => n.endsWith('.parquet') && !named.has(n)).length;
}

// Right after a SIGKILL: the table is readable, no row is in it twice and no stream has more
// rows than were acknowledged. Acknowledged records may still be in the WAL only (acked once
// durable there, committed to the table by a later flush): they are counted after the
// restart's replay (exactlyOnce), not here.
async function atMostOnce(dir, expect) {
  const snap = await verifyTable(dir);
  const dup = await query(`SELECT stream_id, seq, count(*) AS n FROM ${duckFrom(snap.files)}
      GROUP BY 1, 2 HAVING count(*) > 1 LIMIT 5`);
  assert.deepEqual(dup, [], `rows twice in ${dir}`);
  for (const [stream, seqs] of expect) {
    const [{ n }] = await query(`SELECT count(*) AS n FROM ${duckFrom(snap.files)}
        WHERE stream_id = '${stream}' AND seq >= ${seqs}`);
    assert.equal(Number(n), 0, `stream ${stream}: rows past its ${seqs} acknowledged records`);
  }
}

// Every (stream, seq) of the acknowledged batches exactly once, and no row twice.
async function exactlyOnce(dir, expect) {
  const snap = await verifyTable(dir);
  const dup = await query(`SELECT stream_id, seq, count(*) AS n FROM ${duckFrom(snap.files)}
      GROUP BY 1, 2 HAVING count(*) > 1 LIMIT 5`);
  assert.deepEqual(dup, [], `rows twice in ${dir}`);
  for (const [stream, seqs] of expect) {
    const [{ n }] = await query(`SELECT count(*) AS n FROM ${duckFrom(snap.files)}
        WHERE stream_id = '${stream}' AND seq < ${seqs}`);
    assert.equal(Number(n), seqs, `stream ${stream}: ${seqs} acknowledged records`);
  }
  return snap;
}

test('compaction off the loop: acks stay fast, every record once, SIGKILL mid-job is safe', { timeout: 600000 }, async () => {
  const dir = tmpDir('e2e-maint-offloop');
  const server = await new Server({ dir, tables: [TEL, BULK], flushMs: 20, extra: EXTRA }).start();
  let good;
  const expectBulk = [];
  const expectTel = [];
  try {
    good = new GoodClient(server, { table: TEL });
    await good.progress(5);
    // ~300 small files in the bulk table, while compactions rewrite them
    const fills = await Promise.all([fill(server, BULK, 150, 300, 200), fill(server, BULK, 150, 300, 200)]);
    for (const f of fills) {
      assert.equal(f.acks.length, 150);
      expectBulk.push([f.stream_id, 150 * 300]);
    }
    // if the fills ended before a second compaction was due, more small files (the fills'
    // and the good client's flushes keep the maintenance decisions going)
    await waitFor(async () => {
      if (compactions(server, BULK) >= 2 && (await scrape(server))('compactions_total') >= 2) return true;
      await fill(server, BULK, 12, 20, 0);
      return false;
    }, { timeoutMs: 120000, what: 'two compactions of the bulk table' });
    await good.progress(20);
    const r = await good.stop();
    good = null;
    expectTel.push([r.stream_id, r.acks.length * 5]);
    const m = await scrape(server);
    const jobs = m('maintenance_jobs_total');
    console.log(`# maintenance: ${jobs} jobs, ${m('compactions_total')} compactions ` +
      `(${m('compacted_files_total')} files), ${m('checkpoints_total')} checkpoints, ` +
      `${m('vacuumed_files_total')} vacuumed, ${m('maintenance_seconds_total')} s, ` +
      `longest ${m('maintenance_job_max_seconds')} s; loop lag max ${m('loop_lag_max_seconds')} s`);
    assert.ok(jobs >= 2);
    assert.ok(m('compactions_total') >= 2);
    assert.ok(m('checkpoints_total') >= 1);
    assert.equal(m('maintenance_jobs_failed_total'), 0);
    const jobMax = m('maintenance_job_max_seconds');
    console.log(`# loop lag max over the run ${lagMax} s, longest job ${jobMax} s`);
    assert.ok(lagMax < LAG_MS / 1000, `the loop stalled ${lagMax} s`);
    assert.ok(lagMax < jobMax, `the loop stalled ${lagMax} s, as long as a job (${jobMax} s)`);
    assert.ok(r.latency_ms.p99 < P99_MS, `good client ack p99 ${r.latency_ms.p99} ms during compactions`);
    assert.ok(r.latency_ms.max < MAX_MS, `good client ack max ${r.latency_ms.max} ms during compactions`);
  } finally {
    if (good) await good.stop().catch(() => {});
    await server.stop();
  }
  await exactlyOnce(server.tableDir(BULK), expectBulk);
  await exactlyOnce(server.tableDir(TEL), expectTel);

  // SIGKILL while a maintenance job runs: more small files, then kill once one is running
  await server.start();
  const more = await fill(server, BULK, 120, 300, 200);
  expectBulk.push([more.stream_id, 120 * 300]);
  let running = 0;
  await waitFor(async () => {
    running = (await scrape(server))('maintenance_jobs_running');
    if (running >= 1) return true;
    await fill(server, BULK, 2, 10, 0); // a flush, so maintenance is considered
    return false;
  }, { timeoutMs: 120000, intervalMs: 10, what: 'a maintenance job running' });
  await server.kill('SIGKILL');
  await atMostOnce(server.tableDir(BULK), expectBulk);
  const verify = await run(serverBin, ['table', 'verify', server.tableDir(BULK)]);
  assert.equal(verify.code, 0, verify.stdout + verify.stderr);
  console.log(`# killed with a job running; ${orphans(server.tableDir(BULK))} data file(s) no log entry names`);

  // the restart replays the WAL into the table: once nothing is pending, every acknowledged
  // record is there exactly once (read with the server stopped: vacuum_retention = 0 would
  // delete a compacted file under the reader)
  await server.start();
  try {
    await waitFor(async () => (await scrape(server))('pending_bytes') === 0,
      { timeoutMs: 60000, what: 'the WAL replayed into the tables' });
  } finally {
    await server.stop();
  }
  await exactlyOnce(server.tableDir(BULK), expectBulk);

  await server.start();
  try {
    const before = compactions(server, BULK);
    const again = await fill(server, BULK, 30, 100, 0);
    expectBulk.push([again.stream_id, 30 * 100]);
    await waitFor(async () => compactions(server, BULK) > before || (await fill(server, BULK, 1, 1, 0)) && false,
      { timeoutMs: 120000, what: 'a compaction after the restart' });
    // SIGTERM while a job runs: it stops after its current step, the server exits cleanly
    const more2 = await fill(server, BULK, 60, 300, 200);
    expectBulk.push([more2.stream_id, 60 * 300]);
    await waitFor(async () => {
      if ((await scrape(server))('maintenance_jobs_running') >= 1) return true;
      await fill(server, BULK, 2, 10, 0);
      return false;
    }, { timeoutMs: 120000, intervalMs: 10, what: 'a maintenance job running' });
    const t0 = Date.now();
    const ex = await server.proc.stop(30000);
    console.log(`# SIGTERM with a job running: exit after ${Date.now() - t0} ms`);
    assert.deepEqual(ex, { code: 0, signal: null }, server.proc.tail());
  } finally {
    await server.stop();
  }
  await exactlyOnce(server.tableDir(BULK), expectBulk);
});
