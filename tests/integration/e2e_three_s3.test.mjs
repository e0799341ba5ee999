// Three runnel-servers, one table on S3, behind HAProxy, as a fleet runs them: one throw-away
// Ceph RGW (lib/rgw.mjs); three servers, each with its own wal_dir, sharing one data_root
// (the `_streams/` registry) and one table_root on the bucket; HAProxy in front (HTTP/2 to
// the backends, health checks on /healthz). Two agents (file sources) and a grpcio Zerobus
// client (one persistent stream, resumed call after call through the balancer with
// zerobus_client.py `continue`) send all along. Server A flushes once an hour at first, so
// what it acks is in its WAL only when it is SIGKILLed; its WAL directory is deleted and A
// started again (empty WAL, a short flush interval): the client's calls cut by it end
// CANCELLED or UNAVAILABLE and the client goes on; then server B drains (SIGTERM)
// and exits 0. Once every agent line and every client batch is committed (agent status,
// the client's resume watermark, the servers' metrics: no WAL bytes, nothing pending), the
// table is copied out with boto3 and read by DuckDB and parquet-wasm: every record exactly
// once per stream, each line at its own seq. Prints per server: commits,
// flush_overlaps_total, streams_taken_over_total. ctest label `s3`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, Server, freePort, run, tmpDir, waitFor } from './lib/harness.mjs';
import { Haproxy } from './lib/haproxy.mjs';
import { rgwForFile } from './lib/rgw.mjs';
import { duckFrom, query, verifyTable } from './lib/table.mjs';

const PY = '/usr/bin/python3';
const CLIENT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'zerobus_client.py');
const BUCKET = 'runnel-three';
const TABLE = 'main.default.telemetry';
const RECORDS = 5; // records per client batch
const STEP = 50; // client batches per call

let rgw;
const { check } = rgwForFile([BUCKET], (r) => {
  rgw = r;
});

const lines = (tag, from, n) => Array.from({ length: n }, (_, i) => `${tag} ${from + i}\n`).join('');

async function client(addr, ...args) {
  const r = await run(PY, [CLIENT, addr, ...args]);
  const last = r.stdout.trim().split('\n').pop();
  return { exit: r.code, stderr: r.stderr, ...(last && last.startsWith('{') ? JSON.parse(last) : {}) };
}

test('three servers on one S3 table behind HAProxy: one SIGKILLed with its WAL lost, one drained; two agents and a Zerobus client, every record exactly once per stream, in order', { timeout: 600000 }, check(async (t) => {
  const dir = tmpDir('e2e-three-s3');
  const dataRoot = path.join(dir, 'shared-data');
  fs.mkdirSync(dataRoot, { recursive: true });
  const servers = [];
  for (const name of ['a', 'b', 'c']) {
    const d = path.join(dir, name);
    fs.mkdirSync(d);
    // a fixed metrics port, so HAProxy's health check finds a restarted server again
    const mport = await freePort();
    // A's first life flushes once an hour: what A acks stays in its WAL, lost with it
    const s = new Server({ dir: d, tables: [TABLE], flushMs: name === 'a' ? 3600000 : 200, drain: '20s', env: rgw.awsEnv(), extra: [
      `metrics_listen = "127.0.0.1:${mport}";`,
      `wal_dir = "${d}/wal";`,
      `table_root = "s3://${BUCKET}/tables";`,
      `s3_endpoint = "${rgw.endpoint}";`,
      `s3_region = "${rgw.region}";`,
    ].join('\n') });
    s.dataRoot = dataRoot;
    s.name = name;
    servers.push(s);
  }
  const [a, b, c] = servers;
  const logs = path.join(dir, 'logs');
  fs.mkdirSync(logs);
  const agents = [];
  const sent = [0, 0];
  const files = [0, 1].map((i) => path.join(logs, `app${i}.log`));
  let lb;
  let zbLoop;
  let stopClient = false;
  let target = 1; // client batches (offsets 0..target-1) sent so far
  const calls = { ok: 0, failed: 0, codes: {} };
  let id;
  try {
    for (const s of servers) await s.start();
    lb = await new Haproxy({ dir, backends: servers.map((s) => ({ port: s.port, metricsPort: s.metricsPort })), checkMs: 200 }).start();
    await lb.waitUp(3);
    for (const i of [0, 1]) {
      fs.writeFileSync(files[i], '');
      const ad = path.join(dir, `agent${i}`);
      fs.mkdirSync(ad);
      const ag = new Agent({ dir: ad, url: lb.url, deviceId: `dev-${i}`, lingerMs: 20,
        chunkExtra: 'max_records = 10;', sources: [{ name: `app${i}`, paths: [files[i]] }] });
      await ag.start();
      agents.push(ag);
    }
    const feed = (n) => {
      for (const i of [0, 1]) {
        fs.appendFileSync(files[i], lines(`app${i}`, sent[i], n));
        sent[i] += n;
      }
    };
    // the client's stream: made with its first batch, then resumed call after call, each
    // call sending STEP more batches (a call cut by a kill or a drain is simply made again:
    // it resumes at the table's watermark and sends the rest)
    const made = await client(lb.url.replace('http://', ''), 'ingest', '--table', TABLE, '--batches', '1', '--records', String(RECORDS));
    assert.equal(made.exit, 0, made.stderr);
    id = made.stream_id;
    assert.ok(id, JSON.stringify(made));
    const addr = `127.0.0.1:${lb.port}`;
    const cont = async (batches) => {
      const r = await client(addr, 'continue', '--stream-id', id, '--batches', String(batches),
        '--records', String(RECORDS), '--connect-timeout', '30');
      calls.codes[r.code || `exit${r.exit}`] = (calls.codes[r.code || `exit${r.exit}`] || 0) + 1;
      if (r.exit === 0 && r.code === 'OK') calls.ok++;
      else calls.failed++;
      return r;
    };
    zbLoop = (async () => {
      while (!stopClient) {
        const r = await cont(target + STEP);
        if (r.code === 'OK') target += STEP;
      }
    })();
    // per server: commits (flushes), overlaps, streams taken over
    const report = async (what, s) => {
      const m = await s.metrics();
      t.diagnostic(`server ${what}: commits ${m('flushes_total')}, flush_overlaps_total ${m('flush_overlaps_total')}, ` +
        `streams_taken_over_total ${m('streams_taken_over_total')}, records_total ${m('records_total')}, ` +
        `flush_errors_total ${m('flush_errors_total')}`);
    };
    const records = async (s) => (await s.metric('records_total')) || 0;
    // traffic on every server before anything happens
    await waitFor(async () => {
      feed(20);
      const r = await Promise.all(servers.map(records));
      return r.every((x) => x > 0) && target > STEP;
    }, { timeoutMs: 120000, intervalMs: 300, what: 'records on all three servers' });

    // A lost with its disk while calls are attached to it: SIGKILL, its WAL deleted, started
    // again with an empty WAL. The agents' calls last; the client's come and go: the kill
    // comes when A has more calls open than the fewest seen (most likely the client's).
    feed(50);
    let polls = 0;
    let fewest = Infinity;
    await waitFor(async () => {
      feed(5);
      const open = await a.metric('streams_open');
      fewest = Math.min(fewest, open);
      return ++polls > 10 && open >= 1 && open > fewest;
    }, { timeoutMs: 60000, intervalMs: 100, what: 'a call attached to A' });
    const failedBefore = calls.failed;
    const targetBefore = target;
    await report('a (first life, just before its SIGKILL)', a);
    assert.equal(await a.metric('flushes_total'), 0, 'A committed nothing');
    assert.ok((await a.metric('wal_bytes')) > 0, 'what A acked is in its WAL only');
    await a.kill('SIGKILL');
    await a.proc.exitPromise;
    fs.rmSync(path.join(a.dir, 'wal'), { recursive: true, force: true });
    feed(50);
    a.flushMs = 200;
    await a.start();
    await lb.waitUp(3, 30000);
    t.diagnostic(`client calls ended by A's SIGKILL or after it: ${calls.failed - failedBefore} so far`);
    const before = await Promise.all([b, c].map(records));
    await waitFor(async () => {
      feed(10);
      const r = await Promise.all([b, c].map(records));
      return r[0] > before[0] && r[1] > before[1];
    }, { timeoutMs: 60000, intervalMs: 300, what: 'B and C going on after A was lost' });
    // the client's calls cut by the kill: each ended with a status a client retries (HAProxy
    // resets a dead backend's streams: CANCELLED; a call refused meanwhile: UNAVAILABLE), and
    // the client goes on past them: two calls (2 * STEP batches) end OK after the kill
    await waitFor(() => target >= targetBefore + 2 * STEP,
      { timeoutMs: 120000, intervalMs: 300, what: 'the client going on after A was lost' });
    const cutCodes = Object.keys(calls.codes).filter((k) => k !== 'OK');
    assert.deepEqual(cutCodes.filter((k) => k !== 'CANCELLED' && k !== 'UNAVAILABLE'), [],
      `client calls ended only OK, CANCELLED or UNAVAILABLE: ${JSON.stringify(calls)}`);

    // B drained while a call is attached to it: out of HAProxy, its clients move, it exits 0
    feed(50);
    await waitFor(async () => {
      feed(5);
      return (await b.metric('streams_open')) >= 1;
    }, { timeoutMs: 60000, intervalMs: 100, what: 'a call attached to B' });
    await report('b (just before its drain)', b);
    b.proc.child.kill('SIGTERM');
    await waitFor(async () => (await lb.stats()).find((s) => s.name === 's1' && s.status.startsWith('DOWN')),
      { timeoutMs: 20000, what: 'B DOWN in HAProxy' });
    feed(50);
    assert.deepEqual(await b.proc.exitPromise, { code: 0, signal: null }, b.proc.tail());
    const signalled = b.proc.log.map((l) => l.match(/close_stream_signal sent to (\d+) stream/)).find(Boolean);
    assert.ok(signalled && Number(signalled[1]) >= 1, `B signalled its streams to close: ${b.proc.tail()}`);
    const t0 = target;
    await waitFor(async () => {
      feed(10);
      return target >= t0 + 2 * STEP;
    }, { timeoutMs: 120000, intervalMs: 300, what: 'the client going on after the drain' });

    // the end: the client stops after its current call; one last call that ends OK
    stopClient = true;
    await zbLoop;
    zbLoop = null;
    const fin = await waitFor(async () => {
      const r = await cont(target);
      return r.code === 'OK' ? r : null;
    }, { timeoutMs: 60000, what: 'a last client call' });
    t.diagnostic(`client: ${target} batches, calls ${JSON.stringify(calls)}, last resumed at ${fin.resumed_at}`);
    // every agent line committed, and the agents keep nothing
    for (const i of [0, 1]) {
      await waitFor(() => {
        const s = (agents[i].status()?.streams || [])[0];
        return s && s.records === sent[i] && s.committed === s.next_offset - 1 && s.retained_bytes === 0;
      }, { timeoutMs: 180000, what: `agent ${i}: every line committed` });
    }
    // the client's batches committed: a resume answers the last offset
    await waitFor(async () => {
      const r = await cont(target);
      return r.code === 'OK' && r.resumed_at === target - 1;
    }, { timeoutMs: 60000, intervalMs: 500, what: `the client's offsets 0..${target - 1} committed` });
    for (const s of [a, c]) {
      await waitFor(async () => (await s.metric('wal_bytes')) === 0 && (await s.metric('pending_bytes')) === 0,
        { timeoutMs: 90000, what: `server ${s.name} settled` });
    }
    await report('a (since its restart)', a);
    await report('c', c);
    const bl = b.proc.log.filter((l) => /drain/.test(l));
    t.diagnostic(`server b (drained): ${bl.slice(-3).join(' | ')}`);
  } finally {
    stopClient = true;
    if (zbLoop) await zbLoop.catch(() => {});
    for (const ag of agents) await ag.stop();
    if (lb) await lb.stop();
    for (const s of servers) await s.stop();
  }

  // the table out of the bucket with boto3, read by DuckDB and parquet-wasm
  const dest = tmpDir('e2e-three-s3-copy');
  const n = await rgw.copyOut(BUCKET, 'tables/', dest);
  assert.ok(n > 0, 'objects copied out');
  const snap = await verifyTable(path.join(dest, 'tables', ...TABLE.split('.')));
  const from = duckFrom(snap.files);
  const rows = await query(`SELECT stream_id AS s, count(*) AS n, count(DISTINCT seq) AS d,
      min(seq) AS lo, max(seq) AS hi FROM ${from} GROUP BY 1 ORDER BY 1`);
  const per = Object.fromEntries(rows.map((r) => [r.s, [Number(r.n), Number(r.d), Number(r.lo), Number(r.hi)]]));
  t.diagnostic(`table: ${JSON.stringify(per)}`);
  assert.equal(rows.length, 3, `three streams: ${JSON.stringify(per)}`);
  // the client's stream: offsets 0..target-1, each batch once, each record at its own seq
  assert.deepEqual(per[id], [target * RECORDS, target * RECORDS, 0, target * RECORDS - 1], `client stream ${id}`);
  const [{ cbad }] = await query(`SELECT count(*) AS cbad FROM ${from}
      WHERE stream_id = '${id}' AND payload <> 'python record ' || CAST(seq AS VARCHAR)`);
  assert.equal(Number(cbad), 0, 'each client record at its own seq');
  // each agent's lines: one stream, every line once, each at its own seq
  for (const i of [0, 1]) {
    const got = await query(`SELECT stream_id AS s, count(*) AS n, count(DISTINCT seq) AS d, min(seq) AS lo,
        max(seq) AS hi, count(*) FILTER (WHERE CAST(split_part(payload, ' ', 2) AS BIGINT) <> seq) AS bad
        FROM ${from} WHERE payload LIKE 'app${i} %' GROUP BY 1`);
    assert.equal(got.length, 1, `agent ${i}'s lines in one stream: ${JSON.stringify(per)}`);
    assert.deepEqual([got[0].n, got[0].d, got[0].lo, got[0].hi, got[0].bad].map(Number),
      [sent[i], sent[i], 0, sent[i] - 1, 0], `agent ${i}: every line exactly once, in order`);
    assert.deepEqual(per[got[0].s], [sent[i], sent[i], 0, sent[i] - 1], 'nothing else in its stream');
  }
}));
