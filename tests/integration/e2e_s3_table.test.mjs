// One runnel-server whose tables live on S3 (table_root = "s3://bucket/tables") on a
// throw-away Ceph RGW (tests/s3/rgw.sh), fed by an agent (file source) and a grpcio Zerobus
// client. Waits on the server's metrics (wal_bytes, pending_bytes, maintenance counters),
// never on sleeps; the table is copied out with boto3 (a client we did not write) and read
// back by DuckDB and parquet-wasm (lib/table.mjs): every record exactly once per stream.
// Also: checkpoints, compactions and vacuums run on the store (the objects are listed), a
// SIGKILLed server replays its WAL into the S3 table with no duplicate, and the gateway
// stopped while the agent sends: acks go on (the WAL holds the data), flushes fail and are
// retried (/metrics), a small WAL cap pushes back, and once the gateway is back every record
// lands exactly once. ctest label `s3`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, Server, run, serverBin, tmpDir, waitFor } from './lib/harness.mjs';
import { rgwForFile } from './lib/rgw.mjs';
import { duckFrom, query, verifyTable } from './lib/table.mjs';

const PY = '/usr/bin/python3';
const CLIENT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'zerobus_client.py');
const BUCKET = 'runnel-tables';
const TABLE = 'main.default.telemetry';
const TKEY = `tables/${TABLE.split('.').join('/')}`; // the table's prefix in the bucket

let rgw;

const { check } = rgwForFile([BUCKET], (r) => {
  rgw = r;
});

// The server's config for a table root on the store; credentials from the environment
// (AWS_*) unless keys are given, as an operator would.
function s3Server(dir, { root, extra = '', keys = false, flushMs = 100 }) {
  const conf = [
    `table_root = "s3://${BUCKET}/${root}";`,
    `s3_endpoint = "${rgw.endpoint}";`,
    `s3_region = "${rgw.region}";`,
    keys ? `s3_access_key = "${rgw.accessKey}";\ns3_secret_key = "${rgw.secretKey}";` : '',
    's3_max_attempts = 2;',
    extra,
  ].join('\n');
  const env = keys ? undefined : rgw.awsEnv();
  return new Server({ dir, tables: [TABLE], metrics: true, flushMs, extra: conf, env });
}

async function client(server, ...args) {
  const r = await run(PY, [CLIENT, `127.0.0.1:${server.port}`, ...args]);
  assert.equal(r.code, 0, `client failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

// Everything the server acked is in its table: no WAL bytes and no pending rows left.
async function settled(server, what) {
  await waitFor(async () => (await server.metric('wal_bytes')) === 0 &&
    (await server.metric('pending_bytes')) === 0, { timeoutMs: 90000, what });
}

async function keys(prefix) {
  return (await rgw.s3('list', BUCKET, prefix, 1000)).keys;
}

// Copies the table out of the bucket and checks it with both readers; per stream: rows,
// distinct seq, min, max and rows whose seq is not where it belongs.
async function readBack(root, dir) {
  const dest = tmpDir(`${path.basename(dir)}-copy`);
  const n = await rgw.copyOut(BUCKET, `${root}/`, dest);
  assert.ok(n > 0, 'objects copied out');
  const tdir = path.join(dest, root, ...TABLE.split('.'));
  const snap = await verifyTable(tdir);
  const rows = await query(`SELECT stream_id AS s, count(*) AS n, count(DISTINCT seq) AS d,
      min(seq) AS lo, max(seq) AS hi FROM ${duckFrom(snap.files)} GROUP BY 1 ORDER BY 1`);
  return { snap, tdir, per: Object.fromEntries(rows.map((r) => [r.s, [Number(r.n), Number(r.d), Number(r.lo), Number(r.hi)]])) };
}

const lines = (from, n) => Array.from({ length: n }, (_, i) => `app ${from + i}\n`).join('');

test('tables on RGW: agent and Zerobus client, checkpoint, compaction and vacuum on the store, SIGKILL replay', { timeout: 400000 }, check(async (t) => {
  const dir = tmpDir('e2e-s3-table');
  const root = 'tables';
  const extra = ['checkpoint_interval = 4;', 'compact_interval = "1s";', 'compact_min_files = 4;',
    'vacuum_retention = "1s";', 'vacuum_interval = "1s";', 'log_retention = "1h";'].join('\n');
  const server = s3Server(dir, { root, extra });
  await server.start();
  assert.ok(server.proc.log.some((l) => l.includes(`tables on s3://${BUCKET}/${root}`)), 'logs where the tables are');
  for (const l of server.proc.log) assert.ok(!l.includes(rgw.secretKey), 'no secret in the log');
  const m = await server.metrics();
  assert.ok(!m.text.includes(rgw.secretKey) && !m.text.includes(rgw.accessKey), 'no credential in /metrics');
  // the table was made on the store at start, nothing of it on the local disk
  assert.ok((await keys(`${TKEY}/_delta_log/`)).includes(`${TKEY}/_delta_log/00000000000000000000.json`));
  assert.ok(!fs.existsSync(path.join(server.dataRoot, 'main')), 'no local table directory');
  assert.ok(fs.statSync(path.join(server.dataRoot, '_spool')).isDirectory(), 'the spool dir is made');

  const logs = path.join(dir, 'logs');
  fs.mkdirSync(logs);
  const file = path.join(logs, 'app.log');
  let sent = 0;
  fs.writeFileSync(file, '');
  const agent = new Agent({ dir, url: `http://127.0.0.1:${server.port}`, lingerMs: 20,
    chunkExtra: 'max_records = 10;', sources: [{ name: 'app', paths: [file] }] });
  await agent.start();
  let zb = 0; // Zerobus client streams made, each of 2 batches of 5 records
  let killed = 0;
  try {
    // rounds of data until the server has checkpointed, compacted and vacuumed on the store
    // (each runs after a flush, once its interval passed)
    const done = async () => (await server.metric('checkpoints_total')) >= 1 &&
      (await server.metric('compactions_total')) >= 1 && (await server.metric('vacuumed_files_total')) >= 1;
    await waitFor(async () => {
      fs.appendFileSync(file, lines(sent, 20));
      sent += 20;
      await client(server, 'ingest', '--table', TABLE, '--records', '5', '--batches', '2');
      zb++;
      await settled(server, `round ${zb} committed`);
      return done();
    }, { timeoutMs: 240000, intervalMs: 300, what: 'a checkpoint, a compaction and a vacuum' });
    t.diagnostic(`${zb} rounds: checkpoints ${await server.metric('checkpoints_total')}, compactions ` +
      `${await server.metric('compactions_total')}, vacuumed ${await server.metric('vacuumed_files_total')}`);
    assert.equal(await server.metric('flush_errors_total'), 0);
    const objs = await keys(`${TKEY}/`);
    assert.ok(objs.includes(`${TKEY}/_delta_log/_last_checkpoint`), 'the _last_checkpoint object');
    assert.ok(objs.some((k) => /_delta_log\/\d{20}\.checkpoint\.parquet$/.test(k)), 'a checkpoint object');
    assert.ok(!objs.some((k) => k.includes('/_spool') || /\/\.[^/]*$/.test(k)), 'no scratch objects');

    // SIGKILL with acked lines only in the WAL: a restart with an hour's flush interval,
    // lines acked, then the kill; the next start replays them into the S3 table
    await server.stop();
    server.flushMs = 3600000;
    await server.start();
    fs.appendFileSync(file, lines(sent, 40));
    sent += 40;
    const st = await waitFor(() => {
      const s = (agent.status()?.streams || [])[0];
      return s && s.records === sent && s.acked === s.next_offset - 1 ? s : null;
    }, { timeoutMs: 60000, what: 'the agent acked every line' });
    assert.ok((await server.metric('wal_bytes')) > 0, 'acked lines wait in the WAL');
    assert.ok(st.committed < st.acked, `the table lacks acked lines: ${JSON.stringify(st)}`);
    await server.kill('SIGKILL');
    await server.proc.exitPromise;
    killed++;
    server.flushMs = 100;
    await server.start();
    await settled(server, 'the WAL replayed into the S3 table');
    await waitFor(() => {
      const s = (agent.status()?.streams || [])[0];
      return s && s.records === sent && s.committed === s.next_offset - 1 && s.retained_bytes === 0;
    }, { timeoutMs: 90000, what: 'the agent told that the table has every line' });
  } finally {
    await agent.stop();
    await server.stop();
  }
  assert.equal(killed, 1);
  const { snap, tdir, per } = await readBack(root, dir);
  // every record exactly once per stream: the agent's lines 0..sent-1, each client stream's
  // 10 records (seq 0..9)
  const streams = Object.keys(per);
  assert.equal(streams.length, zb + 1, JSON.stringify(per));
  const agentStream = streams.filter((s) => per[s][0] === sent);
  assert.equal(agentStream.length, 1, `one stream holds the ${sent} lines: ${JSON.stringify(per)}`);
  assert.deepEqual(per[agentStream[0]], [sent, sent, 0, sent - 1]);
  for (const s of streams.filter((x) => x !== agentStream[0])) assert.deepEqual(per[s], [10, 10, 0, 9], s);
  const [{ bad }] = await query(`SELECT count(*) AS bad FROM ${duckFrom(snap.files)}
      WHERE stream_id = '${agentStream[0]}' AND CAST(split_part(payload, ' ', 2) AS BIGINT) <> seq`);
  assert.equal(Number(bad), 0, 'each line at its own seq');
  // the log on the store shows the maintenance: a compaction commit (dataChange false adds and
  // removes), and the removed files gone from the bucket (vacuum)
  const logDir = path.join(tdir, '_delta_log');
  const removed = new Set();
  let compactCommits = 0;
  for (const n of fs.readdirSync(logDir).filter((x) => /^\d{20}\.json$/.test(x))) {
    const acts = fs.readFileSync(path.join(logDir, n), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
    if (acts.some((a) => a.remove && a.remove.dataChange === false) && acts.some((a) => a.add && a.add.dataChange === false)) compactCommits++;
    for (const a of acts) if (a.remove) removed.add(a.remove.path);
  }
  assert.ok(compactCommits >= 1, 'a compaction commit in the log');
  const objs = new Set(await keys(`${TKEY}/`));
  const gone = [...removed].filter((p) => !objs.has(`${TKEY}/${decodeURIComponent(p)}`));
  assert.ok(gone.length >= 1, `vacuum deleted removed files from the bucket (${removed.size} removed)`);
}));

test('the gateway stopped while the agent sends: acks go on, flushes fail and are retried, the WAL cap pushes back, a restart meanwhile is degraded; back up, every line exactly once', { timeout: 400000 }, check(async (t) => {
  const dir = tmpDir('e2e-s3-table-down');
  const root = 'down';
  // keys in the config this time (and none in the environment); a small WAL cap
  const server = s3Server(dir, { root, keys: true, extra: 'wal_max_bytes = "256K";\nwal_min_free = 0;' });
  await server.start();
  const logs = path.join(dir, 'logs');
  fs.mkdirSync(logs);
  const file = path.join(logs, 'app.log');
  // 150 random bytes as 200 base64 characters a line: the agent's zstd frames, which the WAL
  // keeps as they came, shrink them to ~3/4 only, so the WAL cap is reached
  const pad = () => crypto.randomBytes(150).toString('base64');
  const big = (from, n) => Array.from({ length: n }, (_, i) => `app ${from + i} ${pad()}\n`).join('');
  let sent = 100;
  fs.writeFileSync(file, big(0, sent));
  const agent = new Agent({ dir, url: `http://127.0.0.1:${server.port}`, lingerMs: 20,
    chunkExtra: 'max_records = 20;', sources: [{ name: 'app', paths: [file] }] });
  await agent.start();
  const stream = () => (agent.status()?.streams || [])[0];
  try {
    // the stream made and its first lines in the table (a WAL that is empty because the
    // create has not happened yet is not "settled")
    await waitFor(() => {
      const s = stream();
      return s && s.records === sent && s.next_offset > 0 && s.committed === s.next_offset - 1;
    }, { timeoutMs: 60000, what: 'the first lines in the table' });
    await settled(server, 'the first lines in the table');
    await rgw.kill('rgw');
    const errs0 = await server.metric('flush_errors_total');
    // acks continue while the store is down: the WAL holds the lines
    fs.appendFileSync(file, big(sent, 100));
    sent += 100;
    await waitFor(() => {
      const s = stream();
      return s && s.records === sent && s.acked === s.next_offset - 1;
    }, { timeoutMs: 60000, what: 'lines acked with the store down' });
    await waitFor(async () => (await server.metric('flush_errors_total')) > errs0,
      { timeoutMs: 60000, what: 'failed flushes counted' });
    assert.ok((await server.metric('wal_bytes')) > 0, 'the WAL holds what the table does not have');
    // a stream for a table the server has not opened cannot be checked: UNAVAILABLE (retry),
    // not NOT_FOUND
    const other = await client(server, 'status', '--table', 'main.default.other');
    assert.equal(other.code, 'UNAVAILABLE', JSON.stringify(other));
    assert.ok(stream().committed < stream().acked, 'the agent keeps what is only in the WAL');
    // more than the WAL cap: the server pushes back, nothing is lost
    fs.appendFileSync(file, big(sent, 1500));
    sent += 1500;
    await waitFor(async () => (await server.metric('pressure_refusals_total', 'reason="global"')) > 0,
      { timeoutMs: 90000, what: 'pushback at wal_max_bytes' });
    t.diagnostic(`store down: flush errors ${(await server.metric('flush_errors_total')) - errs0}, ` +
      `WAL ${await server.metric('wal_bytes')} bytes, refusals ${await server.metric('pressure_refusals_total', 'reason="global"')}`);
    // the server SIGKILLed and started while the store is still down: it starts, the table
    // it cannot open is reported (degraded) and its WAL records kept until the store is back
    await server.kill('SIGKILL');
    await server.proc.exitPromise;
    await server.start();
    const h = await fetch(`${server.metricsUrl}/healthz`);
    const htext = await h.text();
    assert.equal(h.status, 200, htext);
    assert.match(htext, /degraded/);
    // the first failing table is named (the fleet system tables are on the store too and may
    // come first: "and more tables"); the metric below names this one
    assert.ok(htext.includes(TABLE) || /and more tables/.test(htext), htext);
    assert.equal(await server.metric('table_failing_recovery', `table="${TABLE}"`), 1);
    assert.ok((await server.metric('wal_retained_bytes')) > 0, 'the WAL keeps the table\'s records');
    await rgw.start();
    await waitFor(async () => (await server.metric('tables_failing_recovery')) === 0,
      { timeoutMs: 60000, what: 'the table opened once the store is back' });
    await waitFor(() => {
      const s = stream();
      return s && s.records === sent && s.committed === s.next_offset - 1 && s.buffered_bytes === 0;
    }, { timeoutMs: 180000, what: 'every line in the table once the store is back' });
    await settled(server, 'the WAL empty');
  } finally {
    await agent.stop();
    await server.stop();
  }
  const { per } = await readBack(root, dir);
  assert.deepEqual(Object.values(per), [[sent, sent, 0, sent - 1]], 'every line exactly once');
}));

test('runnel-server -n: an s3:// table_root is checked, the bucket listed when the store answers', { timeout: 60000 }, check(async () => {
  const dir = tmpDir('e2e-s3-table-n');
  const conf = path.join(dir, 'server.conf');
  const write = (root, endpoint = rgw.endpoint) => fs.writeFileSync(conf, `data_root = "${dir}/data";\n` +
    `table_root = "${root}";\ns3_endpoint = "${endpoint}";\ns3_access_key = "${rgw.accessKey}";\n` +
    `s3_secret_key = "${rgw.secretKey}";\n`, { mode: 0o600 });
  const n = () => run(serverBin, ['-n', '-c', conf]);
  write(`s3://${BUCKET}/tables`);
  let r = await n();
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`bucket ${BUCKET} exists \\(listed`));
  write('s3://no-such-bucket/tables');
  r = await n();
  assert.equal(r.code, 1);
  assert.match(r.stderr, /no-such-bucket/);
  write(`s3://${BUCKET}/tables/`);
  r = await n();
  assert.equal(r.code, 1);
  assert.match(r.stderr, /server\.conf: table_root s3:\/\/runnel-tables\/tables\/: .*trailing/);
  write(`s3://${BUCKET}/tables`, 'http://127.0.0.1:1');
  r = await n();
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /not reachable.*bucket not checked/);
  for (const x of [r.stdout, r.stderr]) assert.ok(!x.includes(rgw.secretKey), 'no secret printed');
  fs.chmodSync(conf, 0o644);
  r = await n();
  assert.match(r.stderr, /holds s3_secret_key and is readable .* \(mode 644\)/);
}));
