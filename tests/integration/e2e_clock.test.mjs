// End to end: an agent whose wall clock says 1970 (libfaketime on the agent only; the server
// runs on the real clock). Its records carry boot_time_us + boot_id, its calls send
// x-runnel-clock, and the server puts them on its own clock: receive_time within seconds of
// the real time, clock_corrected = true. A normal agent's rows have clock_corrected = false.
// Also: after a server SIGKILL, the WAL replay corrects the same way (_streams/<id>.clock).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Agent, Server, freePort, sleep, tmpDir, waitFor } from './lib/harness.mjs';
import { duckFrom, query, replayLog, verifyTable } from './lib/table.mjs';

const TABLE = 'main.default.telemetry';
const N = 300;
const LIBFAKETIME = ['/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1',
  '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1'].find((p) => fs.existsSync(p));
// A device without an RTC: booted, its clock reads 1970-01-02 and runs on from there. An
// ASan build wants its runtime first in the preload list; libfaketime comes first here.
const FAKE_1970 = {
  LD_PRELOAD: LIBFAKETIME, FAKETIME: '@1970-01-02 00:00:00',
  ASAN_OPTIONS: [process.env.ASAN_OPTIONS, 'verify_asan_link_order=0'].filter(Boolean).join(':'),
};

function tableRows(server) {
  try {
    return replayLog(server.tableDir(TABLE)).live.reduce((n, f) => n + f.numRecords, 0);
  } catch {
    return 0;
  }
}

function writeLines(file, name, n) {
  let s = '';
  for (let i = 0; i < n; i++) s += `${name} ${i}\n`;
  fs.appendFileSync(file, s);
}

function agentIn(dir, sub, port, source, env) {
  const d = path.join(dir, sub);
  fs.mkdirSync(d, { recursive: true });
  const log = path.join(d, `${source}.log`);
  fs.writeFileSync(log, '');
  const agent = new Agent({
    dir: d, env, deviceId: sub, url: `http://127.0.0.1:${port}`,
    sources: [{ name: source, paths: [log] }],
  });
  return { agent, log };
}

// Per source: rows, corrected rows, and receive/event time relative to [t0, t1] (real ms).
async function perSource(server) {
  const snap = await verifyTable(server.tableDir(TABLE));
  return query(`SELECT source, count(*) AS n,
      count(*) FILTER (WHERE clock_corrected) AS corrected,
      count(*) FILTER (WHERE clock_corrected IS NULL) AS nulls,
      epoch_ms(min(receive_time)) AS rlo, epoch_ms(max(receive_time)) AS rhi,
      epoch_ms(min(event_time)) AS elo, epoch_ms(max(event_time)) AS ehi
      FROM ${duckFrom(snap.files)} GROUP BY ALL ORDER BY source`);
}

function assertNear(row, t0, t1, what) {
  const slack = 5000; // a few seconds: call latency, the agent's linger, the test's pace
  for (const k of ['rlo', 'rhi', 'elo', 'ehi']) {
    const v = Number(row[k]);
    assert.ok(v >= t0 - slack && v <= t1 + slack,
      `${what} ${k} = ${new Date(v).toISOString()} not within [${new Date(t0).toISOString()}, ${new Date(t1).toISOString()}]`);
  }
}

test('an agent whose clock says 1970 lands rows on the server clock, clock_corrected', {
  timeout: 120000, skip: !LIBFAKETIME && 'libfaketime not installed (Debian package faketime)',
}, async () => {
  const dir = tmpDir('e2e-clock');
  const port = await freePort();
  const server = new Server({ dir, port, tables: [TABLE] });
  const fake = agentIn(dir, 'rtc-less', port, 'fake', FAKE_1970);
  const real = agentIn(dir, 'normal', port, 'real');
  await server.start();
  await fake.agent.start();
  await real.agent.start();
  const t0 = Date.now();
  try {
    for (let k = 0; k < 3; k++) { // a few bursts, seconds apart
      writeLines(fake.log, 'fake', N / 3);
      writeLines(real.log, 'real', N / 3);
      await sleep(1000);
    }
    await waitFor(() => tableRows(server) >= 2 * N, { timeoutMs: 60000, what: 'all rows' })
      .catch((e) => { throw new Error(`${e.message}\nagent:\n${fake.agent.proc.tail()}\nserver:\n${server.proc.tail()}`); });
    const t1 = Date.now();
    await fake.agent.stop();
    await real.agent.stop();
    await server.stop();
    const rows = await perSource(server);
    assert.deepEqual(rows.map((r) => r.source), ['fake', 'real']);
    const [f, r] = rows;
    assert.equal(Number(f.n), N);
    assert.equal(Number(f.corrected), N, 'every 1970 record corrected');
    assertNear(f, t0, t1, 'corrected rows');
    assert.equal(Number(r.n), N);
    assert.equal(Number(r.corrected), 0, 'a normal agent: clock_corrected = false');
    assert.equal(Number(r.nulls), 0);
    assertNear(r, t0, t1, 'normal rows');
    const clocks = fs.readdirSync(path.join(server.dataRoot, '_streams')).filter((n) => n.endsWith('.clock'));
    // every agent sends x-runnel-clock: both streams keep a reference; only 1970 records use it
    assert.equal(clocks.length, 2, 'a clock reference kept per stream');
  } finally {
    await Promise.all([fake.agent.proc?.kill(), real.agent.proc?.kill(), server.proc?.kill()]);
  }
});

test('after a server SIGKILL, the WAL replay corrects with the kept reference', {
  timeout: 120000, skip: !LIBFAKETIME && 'libfaketime not installed (Debian package faketime)',
}, async () => {
  const dir = tmpDir('e2e-clock-replay');
  const port = await freePort();
  // no flush before the kill: the rows reach the table only by the WAL replay
  const server = new Server({ dir, port, tables: [TABLE], flushMs: 600000 });
  const fake = agentIn(dir, 'rtc-less', port, 'fake', FAKE_1970);
  await server.start();
  await fake.agent.start();
  const t0 = Date.now();
  try {
    writeLines(fake.log, 'fake', N);
    await waitFor(() => {
      const s = fake.agent.status()?.streams?.[0];
      return s && s.records === N && s.acked === s.next_offset - 1;
    }, { timeoutMs: 60000, what: 'all records acked (durable in the WAL)' })
      .catch((e) => { throw new Error(`${e.message}\nagent:\n${fake.agent.proc.tail()}\nserver:\n${server.proc.tail()}`); });
    const t1 = Date.now();
    await fake.agent.stop();
    assert.equal(tableRows(server), 0, 'nothing committed before the kill');
    await server.kill('SIGKILL');
    server.flushMs = 200;
    await server.start(); // no agent: the reference comes from _streams/<id>.clock
    await waitFor(() => tableRows(server) >= N, { timeoutMs: 30000, what: 'replayed rows' });
    await server.stop();
    const [f] = await perSource(server);
    assert.equal(Number(f.n), N);
    assert.equal(Number(f.corrected), N, 'replayed 1970 records corrected');
    assertNear(f, t0, t1, 'replayed rows');
  } finally {
    await Promise.all([fake.agent.proc?.kill(), server.proc?.kill()]);
  }
});
