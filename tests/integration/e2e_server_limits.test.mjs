// The server's limits, end to end against the real runnel-server: when the WAL holds more
// than wal_max_bytes not yet in tables, python3-grpcio gets RESOURCE_EXHAUSTED with the
// grpc-retry-pushback-ms trailer, a raw HTTP/2 client that ignores the status gets no
// flow-control window back, and after the flush both recover by themselves; every acked
// record is in the table exactly once (DuckDB), also for a runnel-agent pushed through the
// pressure. Then the per-connection limits: max_streams_per_connection, max_message_bytes,
// idle_timeout, slow clients, and stream_inflight_bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Agent, Server, prng, run, tmpDir, waitFor } from './lib/harness.mjs';
import { duckFrom, query, replayLog, verifyTable } from './lib/table.mjs';
import { END_HEADERS, PREFACE, T, frame, readFrames, requestBlock } from './lib/h2raw.mjs';

const PY = '/usr/bin/python3';
const CLIENT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'zerobus_client.py');
const TABLE = 'main.default.telemetry';
const METHOD = '/databricks.zerobus.Zerobus/PersistentStream';

async function client(server, ...args) {
  const r = await run(PY, [CLIENT, `127.0.0.1:${server.port}`, ...args]);
  assert.equal(r.code, 0, `client failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

// --- a raw HTTP/2 client (lib/h2raw.mjs), so it can do what well-behaved clients never do
// (ignore statuses and settings, never read) ---
class RawH2 {
  constructor(port) {
    this.port = port;
  }
  async connect() {
    this.sock = net.connect(this.port, '127.0.0.1');
    this.sock.on('error', () => {});
    this.closed = new Promise((resolve) => this.sock.on('close', () => {
      this.closedAt = Date.now();
      resolve();
    }));
    this.frames = readFrames(this.sock);
    await once(this.sock, 'connect');
    this.openedAt = Date.now();
    this.sock.write(Buffer.concat([PREFACE, frame(T.SETTINGS, 0, 0)]));
    // the server's SETTINGS, then its connection WINDOW_UPDATE (16 MiB)
    await waitFor(() => this.frames.find((f) => f.type === T.WINDOW_UPDATE && f.sid === 0),
      { what: 'server SETTINGS and window' });
    return this;
  }
  ackSettings() {
    this.sock.write(frame(T.SETTINGS, 1, 0));
  }
  headers(sid) {
    return frame(T.HEADERS, END_HEADERS, sid, requestBlock({ ':path': METHOD, 'x-databricks-zerobus-table-name': TABLE }));
  }
  data(sid, bytes) {
    const out = [];
    for (let o = 0; o < bytes.length; o += 16384) out.push(frame(T.DATA, 0, sid, bytes.subarray(o, o + 16384)));
    return Buffer.concat(out);
  }
  write(b) {
    this.sock.write(b);
  }
  since(n, pred) {
    return this.frames.slice(n).filter(pred);
  }
  close() {
    this.sock.destroy();
  }
}

const windowUpdate = (f) => f.type === T.WINDOW_UPDATE && f.sid === 0;

test('over wal_max_bytes: RESOURCE_EXHAUSTED with pushback, no window, recovery, exactly once', { timeout: 180000 }, async () => {
  const dir = tmpDir('e2e-limits-wal');
  const FLUSH = 8000;
  const server = await new Server({ dir, metrics: true, tables: [TABLE], flushMs: FLUSH, extra: 'wal_max_bytes = "64K";' }).start();
  let raw;
  try {
    // Learn the flush phase: one batch, then wait for its flush. The next is FLUSH ms away.
    const first = await client(server, 'ingest', '--records', '5', '--batches', '1');
    assert.deepEqual(first.acks, [0]);
    await waitFor(async () => (await server.metric('flushes_total')) >= 1, { timeoutMs: 20000, what: 'first flush' });

    // ~10 KB batches, each sent after the ack of the one before, until the server refuses.
    const fill = await client(server, 'fill', '--records', '10', '--payload-bytes', '1000', '--batches', '60');
    assert.equal(fill.code, 'RESOURCE_EXHAUSTED', JSON.stringify(fill));
    assert.match(fill.details, /wal_max_bytes/);
    assert.match(fill.details, /\(limit 65536\)/);
    assert.ok(fill.pushback_ms > 0 && fill.pushback_ms <= FLUSH + 1000, `pushback ${fill.pushback_ms}`);
    assert.ok(fill.acks.length >= 6, `acks before the limit: ${fill.acks}`);
    assert.deepEqual(fill.acks, fill.acks.map((_, i) => i), 'every batch before the refusal acked, in order');
    // A new stream is still created (create and resume store nothing), but its first
    // batch is refused with the same contract.
    const refused = await client(server, 'fill', '--records', '10', '--batches', '5');
    assert.equal(refused.code, 'RESOURCE_EXHAUSTED', JSON.stringify(refused));
    assert.match(refused.stream_id, /^[0-9a-f-]{36}$/);
    assert.deepEqual(refused.acks, []);
    assert.match(refused.details, /wal_max_bytes/);
    assert.ok(refused.pushback_ms > 0, JSON.stringify(refused));

    let m = await server.metrics();
    assert.equal(m('pressure', 'limit="wal_max_bytes"'), 1);
    assert.ok(m('resource_exhausted_total') >= 2, 'RESOURCE_EXHAUSTED answers counted');
    assert.ok(m('pressure_refusals_total', 'reason="global"') >= 2);
    assert.ok(m('wal_bytes') >= 65536, `wal_bytes ${m('wal_bytes')}`);
    assert.equal(m('wal_max_bytes'), 65536);
    assert.ok(m('materializer_lag_seconds') > 0);

    // A client in the middle of big messages: three streams, each with the first 3.5 MiB of
    // a 10 MB gRPC message, in one go. The server takes the bytes but grants no window for
    // them while under pressure, so such a client stalls instead of sending on.
    raw = await new RawH2(server.port).connect();
    raw.ackSettings();
    const mark = raw.frames.length;
    const chunk = Buffer.alloc(5 + 3.5 * 1024 * 1024, 0x5a);
    chunk[0] = 0;
    chunk.writeUInt32BE(10000000, 1); // the message's length prefix; the rest never comes
    raw.write(Buffer.concat([raw.headers(1), raw.headers(3), raw.headers(5),
      raw.data(1, chunk), raw.data(3, chunk), raw.data(5, chunk)]));
    const held = 3 * chunk.length;
    await waitFor(async () => (await server.metric('window_withheld_bytes')) === held,
      { timeoutMs: 20000, what: `${held} bytes withheld` });
    assert.equal((await server.metric('pressure', 'limit="wal_max_bytes"')), 1, 'still under pressure');
    assert.deepEqual(raw.since(mark, (f) => f.type === T.WINDOW_UPDATE), [], 'no window granted under pressure');
    assert.deepEqual(raw.since(mark, (f) => f.type === T.RST_STREAM || f.type === T.GOAWAY), []);

    // The flush truncates the WAL: the window comes back by itself, and writes succeed.
    const wu = await waitFor(() => raw.since(mark, windowUpdate)[0], { timeoutMs: FLUSH + 20000, what: 'WINDOW_UPDATE after the flush' });
    assert.equal(wu.payload.readUInt32BE(0), held, 'everything withheld is granted back');
    await waitFor(() => raw.since(mark, (f) => f.type === T.WINDOW_UPDATE && f.sid !== 0).length === 3,
      { what: 'the three streams\' windows' });
    for (const f of raw.since(mark, (x) => x.type === T.WINDOW_UPDATE && x.sid !== 0))
      assert.equal(f.payload.readUInt32BE(0), chunk.length);
    m = await server.metrics();
    assert.equal(m('pressure', 'limit="wal_max_bytes"'), 0);
    assert.equal(m('window_withheld_bytes'), 0);
    assert.ok(m('wal_bytes') < 65536);
    const after = await client(server, 'ingest', '--records', '10', '--batches', '3');
    assert.deepEqual(after.acks, [0, 1, 2]);
    assert.ok(server.proc.log.some((l) => /refusing new data, withholding HTTP\/2 window: server over wal_max_bytes/.test(l)));
    assert.ok(server.proc.log.some((l) => /accepting data again/.test(l)));
    raw.close();

    await server.stop();
    // Every acked record exactly once; the refused batch is not there.
    const snap = await verifyTable(server.tableDir(TABLE));
    const from = duckFrom(snap.files);
    const acked = fill.acks.length * 10;
    const [r] = await query(`SELECT count(*) AS n, count(DISTINCT seq) AS d, min(seq) AS lo, max(seq) AS hi
        FROM ${from} WHERE stream_id = '${fill.stream_id}'`);
    assert.deepEqual([Number(r.n), Number(r.d), Number(r.lo), Number(r.hi)], [acked, acked, 0, acked - 1]);
    assert.equal(snap.txns[fill.stream_id], fill.acks.length - 1);
    assert.equal(snap.rows, 5 + acked + 30);
  } finally {
    if (raw) raw.close();
    await server.kill();
  }
});

test('an agent pushed through the pressure: every line in the table exactly once', { timeout: 300000 }, async () => {
  const dir = tmpDir('e2e-limits-agent');
  const logDir = path.join(dir, 'logs');
  fs.mkdirSync(logDir);
  const N = 30000;
  // each line padded with 60 random bytes as 80 base64 characters, which zstd shrinks to ~3/4
  // only: the WAL keeps the agent's compressed batches as they came, so compressible lines
  // would hold it far below the limit
  const rnd = prng(7);
  const raw = Buffer.alloc(60);
  let text = '';
  for (let i = 0; i < N; i++) {
    for (let k = 0; k < raw.length; k += 4) raw.writeUInt32LE(Math.floor(rnd() * 0x100000000), k);
    text += `line ${i} ${raw.toString('base64')}\n`;
  }
  fs.writeFileSync(path.join(logDir, 'a.log'), text);
  // ~2.7 MB of lines (~2 MB in the WAL) against a 256 KiB WAL limit flushed every 400 ms:
  // the agent must be refused, back off and resume several times.
  const server = await new Server({ dir, metrics: true, tables: [TABLE], flushMs: 400, extra: 'wal_max_bytes = "256K";' }).start();
  const agent = new Agent({ dir, url: server.url, sources: [{ name: 'a', paths: [path.join(logDir, 'a.log')] }] });
  try {
    await agent.start();
    const rows = () => {
      try {
        return replayLog(server.tableDir(TABLE)).live.reduce((n, f) => n + f.numRecords, 0);
      } catch {
        return 0;
      }
    };
    await waitFor(() => rows() >= N, { timeoutMs: 240000, intervalMs: 250, what: `${N} rows` });
    const m = await server.metrics();
    assert.ok(m('pressure_refusals_total', 'reason="global"') > 0, 'the agent met the limit');
    assert.ok(m('resource_exhausted_total') > 0);
    await agent.stop();
    await server.stop();
    const snap = await verifyTable(server.tableDir(TABLE));
    const from = duckFrom(snap.files);
    const [r] = await query(`SELECT count(*) AS n, count(DISTINCT payload) AS d, count(DISTINCT seq) AS s,
        min(seq) AS lo, max(seq) AS hi,
        count(*) FILTER (WHERE CAST(split_part(payload, ' ', 2) AS BIGINT) <> seq) AS misordered
        FROM ${from}`);
    assert.deepEqual([Number(r.n), Number(r.d), Number(r.s), Number(r.lo), Number(r.hi), Number(r.misordered)],
      [N, N, N, 0, N - 1, 0], 'every line exactly once, in order');
  } finally {
    await agent.kill();
    await server.kill();
  }
});

test('max_streams_per_connection: compliant clients queue, a violator is refused or closed', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-limits-streams');
  const server = await new Server({ dir, metrics: true, tables: [TABLE], extra: 'max_streams_per_connection = 2;' }).start();
  try {
    // grpcio honours SETTINGS_MAX_CONCURRENT_STREAMS: four calls on one channel all succeed.
    const many = await client(server, 'concurrent', '--calls', '4', '--records', '5', '--batches', '3');
    assert.deepEqual(many.calls.map((c) => c.code), ['OK', 'OK', 'OK', 'OK'], JSON.stringify(many));

    // A client opening a third stream before acknowledging the setting: REFUSED_STREAM for it.
    const a = await new RawH2(server.port).connect();
    let mark = a.frames.length;
    a.write(Buffer.concat([a.headers(1), a.headers(3), a.headers(5)]));
    const rst = await waitFor(() => a.since(mark, (f) => f.type === T.RST_STREAM)[0], { what: 'RST_STREAM' });
    assert.equal(rst.sid, 5);
    assert.equal(rst.payload.readUInt32BE(0), 7, 'REFUSED_STREAM');
    await waitFor(() => a.since(mark, (f) => f.type === T.HEADERS).length === 2, { what: 'two streams answered' });
    assert.equal(await server.metric('streams_refused_total'), 1);
    a.close();

    // After acknowledging it, the same is a protocol violation: GOAWAY, connection closed.
    const b = await new RawH2(server.port).connect();
    b.ackSettings();
    mark = b.frames.length;
    b.write(Buffer.concat([b.headers(1), b.headers(3), b.headers(5)]));
    await b.closed;
    const ga = b.since(mark, (f) => f.type === T.GOAWAY)[0];
    assert.ok(ga, 'GOAWAY before the close');
    assert.equal(ga.payload.readUInt32BE(4), 1, 'PROTOCOL_ERROR');
    assert.match(ga.payload.subarray(8).toString(), /max concurrent streams exceeded/);
    assert.equal(await server.metric('connections_closed_total', 'reason="too_many_streams"'), 1);
    assert.ok(server.proc.log.some((l) => /closing connection from .* beyond the 2 concurrent streams/.test(l)));

    const ok = await client(server, 'ingest', '--records', '3', '--batches', '2');
    assert.deepEqual(ok.acks, [0, 1], 'the server keeps serving');
  } finally {
    await server.kill();
  }
});

test('max_message_bytes: an oversized message gets a clear error, the server keeps serving', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-limits-msg');
  const server = await new Server({ dir, metrics: true, tables: [TABLE] }).start();
  try {
    const big = await client(server, 'status', '--case', 'oversize'); // 11 MiB, default limit 10M
    assert.equal(big.code, 'RESOURCE_EXHAUSTED', JSON.stringify(big));
    assert.match(big.details, /request message larger than max_message_bytes \(10485760 bytes\)/);
    assert.equal(big.pushback_ms, undefined, 'no pushback: waiting does not help');
    assert.equal(await server.metric('resource_exhausted_total'), 1);
    const ok = await client(server, 'ingest', '--records', '4', '--batches', '3');
    assert.deepEqual(ok.acks, [0, 1, 2]);
  } finally {
    await server.kill();
  }
});

test('idle_timeout closes connections without streams; an open stream keeps its connection', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-limits-idle');
  const server = await new Server({ dir, metrics: true, tables: [TABLE], extra: 'idle_timeout = "1s";' }).start();
  try {
    const c = await new RawH2(server.port).connect();
    c.ackSettings();
    await c.closed;
    assert.ok(c.closedAt - c.openedAt >= 1000, `closed after ${c.closedAt - c.openedAt} ms`);
    const ga = c.frames.find((f) => f.type === T.GOAWAY);
    assert.ok(ga, 'a GOAWAY before the close');
    assert.equal(ga.payload.readUInt32BE(4), 0, 'NO_ERROR');
    assert.equal(await server.metric('connections_closed_total', 'reason="idle"'), 1);
    assert.ok(server.proc.log.some((l) => /closing idle connection from 127\.0\.0\.1:\d+ \(no stream, no request received for 1000 ms\)/.test(l)));

    // A stream that stays silent for 2.5 idle periods after its creation still gets its acks.
    const res = await client(server, 'ingest', '--records', '3', '--batches', '2', '--pause-ms', '2500');
    assert.deepEqual(res.acks, [0, 1]);
    assert.equal(await server.metric('connections_closed_total', 'reason="idle"'), 1, 'that connection was not closed');
  } finally {
    await server.kill();
  }
});

test('a client that does not read its responses is disconnected', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-limits-slow');
  const server = await new Server({ dir, metrics: true, tables: [TABLE],
    extra: 'slow_client_bytes = "64K";\nslow_client_timeout = "1s";\nidle_timeout = "1s";' }).start();
  try {
    const r = await client(server, 'slow-reader', '--pause-ms', '60000');
    assert.equal(r.closed, true, JSON.stringify(r));
    assert.ok(r.after_ms >= 1000, JSON.stringify(r));
    const m = await server.metrics();
    assert.equal(m('connections_closed_total', 'reason="slow_client"'), 1);
    assert.equal(m('connections_closed_total', 'reason="idle"'), 0, 'not taken for idle while not read');
    assert.ok(server.proc.log.some((l) => /disconnecting slow client 127\.0\.0\.1:\d+: \d+ bytes of responses unread for more than 1000 ms/.test(l)));
    const ok = await client(server, 'ingest', '--records', '3', '--batches', '2');
    assert.deepEqual(ok.acks, [0, 1]);
  } finally {
    await server.kill();
  }
});

test('stream_inflight_bytes holds a stream\'s window until its batch is durable', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-limits-inflight');
  const server = await new Server({ dir, metrics: true, tables: [TABLE], extra: 'stream_inflight_bytes = "64K";' }).start();
  try {
    // 30 batches of ~200 KB on one stream: 6 MB, more than its 4 MiB window, so the
    // stream would stall for good if a held window were not granted back after the sync.
    const res = await client(server, 'ingest', '--records', '2', '--payload-bytes', '100000', '--batches', '30');
    assert.deepEqual(res.acks, [...Array(30).keys()]);
    assert.equal(await server.metric('stream_window_holds_total'), 30, 'each batch held its stream');
    assert.equal(await server.metric('window_withheld_bytes'), 0);
  } finally {
    await server.kill();
  }
});
