// The memory budget (memory_max_bytes, server/limits.h, docs/operations.md "Memory"): rows
// held in memory until they are in their tables are bounded by configuration, not by
// traffic. A server with a small budget and a flush interval far longer than the run takes
// incompressible batches on three tables at once, far more bytes than the budget. While it
// loads, /metrics is sampled: the builders and flush jobs stay under the cap (plus what one
// batch can add past the check that admitted it); flushes start early (early_flushes_total)
// since the interval never comes; new batches are refused with RESOURCE_EXHAUSTED and a
// pushback (pressure_refusals_total{reason="memory"}), which the clients honour before they
// go on on a new stream. At the end every acknowledged record is in its table exactly once,
// none twice. Without the budget (memory_max_bytes = 0) the builders would hold everything
// until the interval: the checks below would fail.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Server, faultServerBin, run, tmpDir } from './lib/harness.mjs';
import { duckFrom, query, verifyTable } from './lib/table.mjs';

const PY = '/usr/bin/python3';
const CLIENT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'zerobus_client.py');
const TABLES = ['main.default.mem_a', 'main.default.mem_b', 'main.default.mem_c'];
const CAP = 8 << 20;
const RECORDS = 250; // per batch
const PAYLOAD = 2000; // random hex: ~2x compression, so a batch is ~0.25 MB in the builders
const BATCHES = 30; // per table: ~15 MB of rows per table, ~5x the budget over the three
// One batch's rows can go in past the check that admitted it, and a buffer that doubles
// counts its whole new capacity at once (rn_pq_mem): the bound allows one such step.
const SLACK = 4 << 20;

function fill(server, table, batches) {
  return run(PY, [CLIENT, `127.0.0.1:${server.port}`, 'fill', '--table', table,
    '--records', String(RECORDS), '--batches', String(batches),
    '--payload-bytes', String(PAYLOAD), '--random-payload'])
    .then((r) => {
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout.trim().split('\n').pop());
    });
}

// Sends BATCHES acknowledged batches to `table`, honouring the server's pushback: a call the
// server ends with RESOURCE_EXHAUSTED is followed, after the pushback it asked for, by a new
// stream for the rest. Returns [[stream_id, acknowledged records], ...] and the refusals.
async function load(server, table) {
  const streams = [];
  let acked = 0;
  let refused = 0;
  while (acked < BATCHES) {
    const f = await fill(server, table, BATCHES - acked);
    streams.push([f.stream_id, f.acks.length * RECORDS]);
    acked += f.acks.length;
    if (f.code === 'OK') continue;
    assert.equal(f.code, 'RESOURCE_EXHAUSTED', JSON.stringify(f));
    assert.ok(f.pushback_ms > 0, `a refusal without pushback: ${JSON.stringify(f)}`);
    refused++;
    await new Promise((r) => setTimeout(r, f.pushback_ms)); // the client's pushback, as asked
  }
  return { streams, refused };
}

async function exactlyOnce(dir, expect) {
  const snap = await verifyTable(dir);
  const dup = await query(`SELECT stream_id, seq, count(*) AS n FROM ${duckFrom(snap.files)}
      GROUP BY 1, 2 HAVING count(*) > 1 LIMIT 5`);
  assert.deepEqual(dup, [], `rows twice in ${dir}`);
  let total = 0;
  for (const [stream, n] of expect) {
    const [{ c }] = await query(`SELECT count(*) AS c FROM ${duckFrom(snap.files)}
        WHERE stream_id = '${stream}'`);
    assert.equal(Number(c), n, `stream ${stream}: ${n} acknowledged records`);
    total += n;
  }
  const [{ c }] = await query(`SELECT count(*) AS c FROM ${duckFrom(snap.files)}`);
  assert.equal(Number(c), total, `${dir}: only acknowledged records`);
}

test('memory budget: builders and flush jobs stay under memory_max_bytes, early flushes, pushback, every record once', { timeout: 600000 }, async () => {
  const dir = tmpDir('e2e-memory-budget');
  // Flush jobs on a slow disk (runnel-server-faults, RN_FAULT_FLUSH_DELAY_MS): a job stays
  // in flight while new batches refill the builders, so the cap is reached whatever the
  // machine's speed, and pushback is what keeps memory under it.
  const server = await new Server({
    dir, tables: TABLES, metrics: true, flushMs: 600000, // the interval never comes
    extra: `memory_max_bytes = "${CAP}";\nflush_threads = 1;`,
    bin: faultServerBin, env: { RN_FAULT_FLUSH_DELAY_MS: '400' },
  }).start();
  let results;
  let maxHeld = 0;
  let samples = 0;
  let loading = true;
  try {
    const m0 = await server.metrics();
    assert.equal(m0.must('memory_max_bytes'), CAP);
    assert.equal(m0.must('early_flushes_total'), 0);
    // sampled while loading, every 10 ms or as often as /metrics answers (a sampling
    // period, not a wait for a state)
    const sampler = (async () => {
      while (loading) {
        await new Promise((r) => setTimeout(r, 10));
        const m = await server.metrics();
        const held = m.must('memory_bytes', 'part="builders"') + m.must('memory_bytes', 'part="flush"');
        maxHeld = Math.max(maxHeld, held);
        samples++;
      }
    })();
    try {
      results = await Promise.all(TABLES.map((t) => load(server, t)));
    } finally {
      loading = false;
      await sampler;
    }
    const m = await server.metrics();
    const early = m.must('early_flushes_total');
    const refusals = m.must('pressure_refusals_total', 'reason="memory"');
    const refused = results.reduce((a, r) => a + r.refused, 0);
    console.log(`# ${samples} samples: builders + flush at most ${(maxHeld / 1048576).toFixed(1)} MiB ` +
      `(cap ${CAP / 1048576} MiB); ${early} early flushes of ${m.must('flushes_total')}; ` +
      `${refusals} batches refused for memory (${refused} calls ended), ` +
      `${m.must('pressure_episodes_total')} pressure episodes`);
    assert.ok(samples >= 5, `only ${samples} samples of /metrics while loading`);
    assert.ok(maxHeld > 0, 'no memory counted while loading');
    assert.ok(maxHeld <= CAP + SLACK, `builders + flush jobs held ${maxHeld} bytes, cap ${CAP}`);
    // every flush of the run was early: the interval (600 s) never came
    assert.ok(early >= 3, `early flushes: ${early}`);
    assert.equal(m.must('flushes_total'), early);
    // the same pushback as WAL pressure: refused, asked to wait, then accepted again
    assert.ok(refusals >= 1, 'no batch refused for memory');
    assert.ok(refused >= 1, 'no client saw RESOURCE_EXHAUSTED');
    assert.equal(m.must('pressure_refusals_total', 'reason="global"'), 0, 'refused for the WAL, not memory');
  } finally {
    await server.stop(); // flushes what is left
  }
  for (let i = 0; i < TABLES.length; i++) await exactlyOnce(server.tableDir(TABLES[i]), results[i].streams);
});
