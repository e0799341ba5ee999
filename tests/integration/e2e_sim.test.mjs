// End to end with the simulator source: two sim sources (count = 20000 each) → runnel-agent →
// runnel-server → Delta table, read back by DuckDB. Every record lands exactly once, its
// payload seq equals the envelope seq (contiguous 0..19999 per source), topic, vehicle and
// event time agree with the payload. Then the same fleets twice at once, against two tables:
// one agent runs undisturbed, the other is SIGKILLed twice mid-way and restarted; the killed
// run's records must be byte for byte the undisturbed run's (the "ts" field aside: it is
// wall-clock time), which only holds if resume continued the exact simulation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, Server, prng, sleep, tmpDir, waitFor } from './lib/harness.mjs';
import { duckFrom, query, replayLog, verifyTable } from './lib/table.mjs';

const COUNT = 20000;
const FLEETS = [
  { name: 'fleet-a', vehicles: 3, seed: 1 },
  { name: 'fleet-b', vehicles: 7, seed: 2 },
];

function simSources(table, rate) {
  return FLEETS.map((f) => ({
    conf: `type = "sim"; name = "${f.name}"; table = "${table}";
      vehicles = ${f.vehicles}; seed = ${f.seed}; rate = ${rate}; count = ${COUNT};`,
  }));
}

function rows(server, table) {
  try {
    return replayLog(server.tableDir(table)).live.reduce((n, f) => n + f.numRecords, 0);
  } catch {
    return 0;
  }
}

// The per-source checks; returns {source: digest of the payloads without "ts", in seq order}.
async function checkTable(server, table) {
  const snap = await verifyTable(server.tableDir(table));
  const from = duckFrom(snap.files);
  const vehiclesOf = `CASE source ${FLEETS.map((f) => `WHEN '${f.name}' THEN ${f.vehicles}`).join(' ')} END`;
  const per = await query(`WITH t AS (SELECT source, seq, topic, event_time, payload,
        CAST(json_extract(payload, '$.seq') AS BIGINT) AS pseq,
        CAST(json_extract(payload, '$.ts') AS BIGINT) AS ts,
        json_extract_string(payload, '$.vehicle') AS vehicle FROM ${from})
      SELECT source, count(*) AS n, count(DISTINCT seq) AS dseq, min(seq) AS lo, max(seq) AS hi,
        count(DISTINCT pseq) AS dpseq,
        count(*) FILTER (WHERE pseq IS DISTINCT FROM seq) AS seq_mismatch,
        count(*) FILTER (WHERE topic IS DISTINCT FROM 'sim/' || vehicle) AS bad_topic,
        count(*) FILTER (WHERE vehicle IS DISTINCT FROM
          'veh-' || lpad(CAST(seq % ${vehiclesOf} + 1 AS VARCHAR), 3, '0')) AS bad_vehicle,
        count(*) FILTER (WHERE epoch_ms(event_time) IS DISTINCT FROM ts) AS bad_time,
        min(ts) > 1577836800000 AS sane_ts,
        md5(string_agg(regexp_replace(payload, ',"ts":[0-9]+', ''), chr(10) ORDER BY seq)) AS digest
      FROM t GROUP BY source ORDER BY source`);
  assert.deepEqual(per.map((r) => r.source), FLEETS.map((f) => f.name));
  const digests = {};
  for (const r of per) {
    assert.deepEqual(
      { n: Number(r.n), dseq: Number(r.dseq), lo: Number(r.lo), hi: Number(r.hi), dpseq: Number(r.dpseq),
        seqMismatch: Number(r.seq_mismatch), badTopic: Number(r.bad_topic),
        badVehicle: Number(r.bad_vehicle), badTime: Number(r.bad_time), saneTs: r.sane_ts },
      { n: COUNT, dseq: COUNT, lo: 0, hi: COUNT - 1, dpseq: COUNT, seqMismatch: 0, badTopic: 0,
        badVehicle: 0, badTime: 0, saneTs: true },
      `${table} ${r.source}`);
    digests[r.source] = r.digest;
  }
  // Plausible values throughout (the unit tests check the model in detail).
  const [v] = await query(`SELECT
      count(*) FILTER (WHERE NOT (CAST(payload->>'speed_kmh' AS DOUBLE) BETWEEN 0 AND 160
        AND CAST(payload->>'fuel_pct' AS DOUBLE) BETWEEN 0 AND 100
        AND CAST(payload->>'heading' AS DOUBLE) >= 0 AND CAST(payload->>'heading' AS DOUBLE) < 360
        AND CAST(payload->>'lat' AS DOUBLE) BETWEEN 47 AND 49.5)) AS bad FROM ${from}`);
  assert.equal(Number(v.bad), 0, 'values in range');
  return digests;
}

async function waitRows(server, table, agents) {
  await waitFor(() => rows(server, table) >= COUNT * FLEETS.length, {
    timeoutMs: 180000, intervalMs: 250, what: `${COUNT * FLEETS.length} rows in ${table}`,
  }).catch((e) => {
    throw new Error(`${e.message}\n${agents.map((a) => `agent:\n${a.proc.tail()}`).join('\n')}`);
  });
}

test('two sim sources, 20,000 records each at a high rate: each record once, seq contiguous', { timeout: 300000 }, async () => {
  const dir = tmpDir('e2e-sim');
  const TABLE = 'main.default.sim';
  const server = await new Server({ dir, tables: [TABLE] }).start();
  const agent = new Agent({ dir, url: server.url, sources: simSources(TABLE, 200000) });
  try {
    await agent.start();
    await waitRows(server, TABLE, [agent]);
    await sleep(1000); // anything extra, if a bug produced it, lands before the count
    await agent.stop();
    await server.stop();
    await checkTable(server, TABLE);
  } finally {
    await agent.kill();
    await server.kill();
  }
});

test('SIGKILLed twice mid-way: the same records as an undisturbed run, each once', { timeout: 400000 }, async () => {
  const seed = Number(process.env.RN_SEED || Date.now() % 1000000);
  const rnd = prng(seed);
  console.log(`# fault seed ${seed} (replay with RN_SEED=${seed})`);
  const dir = tmpDir('e2e-sim-kill');
  const REF = 'main.default.sim_ref';
  const KILLED = 'main.default.sim_killed';
  const RATE = 4000; // 5 s per source: room for two kills mid-way
  const server = await new Server({ dir: `${dir}`, tables: [REF, KILLED] }).start();
  const refDir = tmpDir('e2e-sim-ref');
  const ref = new Agent({ dir: refDir, url: server.url, sources: simSources(REF, RATE) });
  const agent = new Agent({ dir, url: server.url, sources: simSources(KILLED, RATE) });
  const resumedAt = [];
  try {
    await ref.start();
    await agent.start();
    for (let k = 0; k < 2; k++) {
      await sleep(1200 + rnd() * 800);
      await agent.kill('SIGKILL');
      await sleep(rnd() * 300);
      await agent.start();
      // The restarted plugin says where it resumes, per source.
      const lines = await waitFor(() => {
        const l = agent.proc.log.filter((x) => /resuming at record \d+/.test(x));
        return l.length === FLEETS.length && l;
      }, { timeoutMs: 20000, what: 'both sources resumed' });
      resumedAt.push(lines.map((x) => Number(x.match(/resuming at record (\d+)/)[1])));
    }
    console.log(`# resumed at ${JSON.stringify(resumedAt)}`);
    // Both kills really were mid-way: something committed before, something left after.
    for (const at of resumedAt) for (const n of at) assert.ok(n > 0 && n < COUNT, `resumed at ${n}`);
    await waitRows(server, REF, [ref]);
    await waitRows(server, KILLED, [agent]);
    await sleep(1000);
    await ref.stop();
    await agent.stop();
    await server.stop();
    const want = await checkTable(server, REF);
    const got = await checkTable(server, KILLED);
    assert.deepEqual(got, want, 'the killed run generated exactly the undisturbed run\'s records');
  } finally {
    await ref.kill();
    await agent.kill();
    await server.kill();
  }
});
