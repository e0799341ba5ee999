// End to end: lines appended to files → runnel-agent (file source, SQLite buffer, uplink) →
// runnel-server (gRPC, WAL, materializer) → Delta table, read back by DuckDB and parquet-wasm.
// The same run is repeated with the agent and the server SIGKILLed at random moments.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Agent, Server, freePort, prng, sleep, tmpDir, waitFor } from './lib/harness.mjs';
import { duckFrom, query, replayLog, verifyTable } from './lib/table.mjs';

const TABLE = 'main.default.telemetry';
const PER_FILE = 100000;

// Appends PER_FILE numbered lines to each file in bursts; rotates a.log by rename halfway.
async function writeLines(logDir, { bursts = 40, pauseMs = 150 } = {}) {
  const a = path.join(logDir, 'a.log');
  const b = path.join(logDir, 'b.log');
  const per = PER_FILE / bursts;
  const pad = 'x'.repeat(60);
  for (let k = 0; k < bursts; k++) {
    for (const [name, file] of [['a', a], ['b', b]]) {
      let s = '';
      for (let i = k * per; i < (k + 1) * per; i++) s += `${name} ${i} ${pad}\n`;
      fs.appendFileSync(file, s);
    }
    if (k === bursts / 2 - 1) {
      await sleep(pauseMs); // let the agent see part of the file before the rename
      fs.renameSync(a, `${a}.1`);
    }
    await sleep(pauseMs);
  }
}

function tableRows(server) {
  try {
    return replayLog(server.tableDir(TABLE)).live.reduce((n, f) => n + f.numRecords, 0);
  } catch {
    return 0;
  }
}

async function checkTable(server) {
  const snap = await verifyTable(server.tableDir(TABLE));
  const from = duckFrom(snap.files);
  const [tot] = await query(`SELECT count(*) AS n, count(DISTINCT payload) AS d,
      count(DISTINCT stream_id) AS s, count(payload_raw) AS raw FROM ${from}`);
  assert.equal(Number(tot.n), 2 * PER_FILE, 'row count');
  assert.equal(Number(tot.d), 2 * PER_FILE, 'every line exactly once');
  assert.equal(Number(tot.s), 2, 'one stream per source');
  assert.equal(Number(tot.raw), 0, 'all payloads are text');
  // Per stream: seq contiguous from 0 and unique, and line i of the source is record seq i.
  const per = await query(`SELECT source, stream_id, count(*) AS n, count(DISTINCT seq) AS d,
      min(seq) AS lo, max(seq) AS hi,
      count(*) FILTER (WHERE CAST(split_part(payload, ' ', 2) AS BIGINT) <> seq) AS misordered,
      count(*) FILTER (WHERE split_part(payload, ' ', 1) <> source) AS wrong_source
      FROM ${from} GROUP BY ALL ORDER BY source`);
  assert.deepEqual(per.map((r) => r.source), ['a', 'b']);
  for (const r of per) {
    assert.equal(Number(r.n), PER_FILE, `${r.source}: rows`);
    assert.equal(Number(r.d), PER_FILE, `${r.source}: distinct seq`);
    assert.equal(Number(r.lo), 0);
    assert.equal(Number(r.hi), PER_FILE - 1);
    assert.equal(Number(r.misordered), 0, `${r.source}: line number == seq`);
    assert.equal(Number(r.wrong_source), 0);
  }
  const [ts] = await query(`SELECT count(*) FILTER (WHERE receive_time IS NULL OR event_time IS NULL) AS nulls,
      min(receive_time) > TIMESTAMPTZ '2020-01-01' AS sane, count(DISTINCT device_id) AS dev FROM ${from}`);
  assert.equal(Number(ts.nulls), 0);
  assert.equal(ts.sane, true);
  assert.equal(Number(ts.dev), 1);
  // Each stream's txn in the log covers what was delivered.
  assert.equal(Object.keys(snap.txns).length, 2);
  return snap;
}

async function setup(name, serverExtra = '') {
  const dir = tmpDir(name);
  const logDir = path.join(dir, 'logs');
  fs.mkdirSync(logDir);
  fs.writeFileSync(path.join(logDir, 'a.log'), '');
  fs.writeFileSync(path.join(logDir, 'b.log'), '');
  const port = await freePort();
  const server = new Server({ dir, port, tables: [TABLE], extra: serverExtra });
  const agent = new Agent({
    dir,
    url: `http://127.0.0.1:${port}`,
    sources: [
      { name: 'a', paths: [path.join(logDir, 'a.log')] },
      { name: 'b', paths: [path.join(logDir, 'b.log')] },
    ],
  });
  return { dir, logDir, server, agent };
}

test('200,000 lines across two files with a rotation land exactly once, in order', { timeout: 300000 }, async () => {
  const { logDir, server, agent } = await setup('e2e-file');
  await server.start();
  await agent.start();
  try {
    await writeLines(logDir, { pauseMs: 50 });
    await waitFor(() => tableRows(server) >= 2 * PER_FILE, {
      timeoutMs: 180000, intervalMs: 250, what: 'all rows in the table',
    }).catch((e) => { throw new Error(`${e.message}\nagent:\n${agent.proc.tail()}\nserver:\n${server.proc.tail()}`); });
    await agent.stop();
    await server.stop();
    await checkTable(server);
  } finally {
    await agent.kill();
    await server.kill();
  }
});

test('the same run survives 3 agent and 3 server SIGKILLs at random moments', { timeout: 400000 }, async () => {
  const seed = Number(process.env.RN_SEED || Date.now() % 1000000);
  const rnd = prng(seed);
  console.log(`# fault seed ${seed} (replay with RN_SEED=${seed})`);
  // The server checkpoints every 2 commits and compacts as often as it can, so the kills
  // also land in checkpoints and compactions.
  const { logDir, server, agent } = await setup('e2e-kill',
    'checkpoint_interval = 2;\ncompact_interval = "100ms";\ncompact_min_files = 2;\n');
  await server.start();
  await agent.start();
  const faults = [];
  try {
    const writing = writeLines(logDir, { pauseMs: 400 });
    // Six kills spread over the ~16 s of writing and a little after, in random order.
    const kinds = ['agent', 'agent', 'agent', 'server', 'server', 'server'].sort(() => rnd() - 0.5);
    for (const kind of kinds) {
      await sleep(1000 + rnd() * 2500);
      const p = kind === 'agent' ? agent : server;
      await p.kill('SIGKILL');
      faults.push(`${kind}@${tableRows(server)}rows`);
      await sleep(rnd() * 500);
      await p.start();
    }
    await writing;
    await waitFor(() => tableRows(server) >= 2 * PER_FILE, {
      timeoutMs: 240000, intervalMs: 250, what: 'all rows in the table after faults',
    }).catch((e) => { throw new Error(`${e.message} (seed ${seed}, faults ${faults})\nagent:\n${agent.proc.tail()}\nserver:\n${server.proc.tail()}`); });
    // Give late duplicates, if any bug produced them, time to land before counting.
    await sleep(1500);
    await agent.stop();
    await server.stop();
    await checkTable(server);
    console.log(`# faults: ${faults.join(', ')}`);
  } finally {
    await agent.kill();
    await server.kill();
  }
});
