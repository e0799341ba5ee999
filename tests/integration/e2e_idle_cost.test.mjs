// Work proportional to activity (issue 13): an idle stream costs memory, not work. Thousands
// of PersistentStream calls are opened and left idle (node:http2, 100 calls per connection
// as max_streams_per_connection allows, like a fleet of devices each holding a stream) next
// to one busy stream (python3-grpcio's steady client: a batch after each ack). The server's
// own counters tell how much work each group commit did: commit_stream_visits_total (streams
// a commit looked at) and flush_conn_visits_total (connections rn_front_flush looked at) must
// grow with the commits, not with commits x open streams.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { Server, tmpDir, waitFor } from './lib/harness.mjs';
import { GoodClient } from './lib/goodclient.mjs';

const TABLE = 'main.default.telemetry';
const IDLE = 2000;
const PER_CONN = 100;

const varint = (v) => {
  const out = [];
  do {
    let b = v & 0x7f;
    v = Math.floor(v / 128);
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return Buffer.from(out);
};
const len = (num, payload) => Buffer.concat([varint(num * 8 + 2), varint(payload.length), Buffer.from(payload)]);
const vint = (num, v) => Buffer.concat([varint(num * 8), varint(v)]);
const grpcFrame = (msg) => { const h = Buffer.alloc(5); h.writeUInt32BE(msg.length, 1); return Buffer.concat([h, msg]); };
// PersistentStreamRequest{create_stream{create_stream{table_name, record_type PROTO}}}
const CREATE = grpcFrame(len(1, len(1, Buffer.concat([len(1, Buffer.from(TABLE)), vint(4, 1)]))));

// The counters this test reads, from one read of /metrics; each must be there.
async function counters(server) {
  const m = await server.metrics();
  return {
    syncs: m.must('wal_syncs_total'), visits: m.must('commit_stream_visits_total'),
    flushes: m.must('flush_conn_visits_total'), open: m.must('streams_open'), acks: m.must('acks_total'),
  };
}

// Opens n PersistentStream calls on sessions of PER_CONN each; resolves once every create
// was answered (the stream exists and its call stays open, idle).
async function openIdle(server, n) {
  const sessions = [];
  let created = 0;
  const failures = [];
  for (let i = 0; i < n; i += PER_CONN) {
    const session = http2.connect(`http://127.0.0.1:${server.port}`);
    session.on('error', () => {});
    sessions.push(session);
    for (let k = i; k < Math.min(n, i + PER_CONN); k++) {
      const st = session.request({ ':method': 'POST', ':path': '/databricks.zerobus.Zerobus/PersistentStream',
        'content-type': 'application/grpc', te: 'trailers', 'x-databricks-zerobus-table-name': TABLE },
      { endStream: false });
      st.on('error', () => {});
      st.once('data', () => created++);
      st.on('trailers', (h) => failures.push(h['grpc-status']));
      st.on('close', () => { if (st.rstCode) failures.push(`reset ${st.rstCode}`); });
      st.on('response', (h) => { if (h['grpc-status']) failures.push(h['grpc-status']); });
      st.write(CREATE);
    }
  }
  const t0 = Date.now();
  await waitFor(() => {
    assert.deepEqual(failures, [], 'idle streams refused');
    return created === n;
  }, { timeoutMs: 240000, what: `${n} idle streams created` }).catch((e) => {
    throw new Error(`${e.message}: ${created} created, refusals ${failures.slice(0, 5)}\n${server.proc.tail()}`);
  });
  console.log(`# ${n} idle streams created in ${Date.now() - t0} ms`);
  return sessions;
}

test('idle streams cost no work per group commit or per flush', { timeout: 300000 }, async () => {
  const server = await new Server({ dir: tmpDir('e2e-idle-cost'), tables: [TABLE], metrics: true,
    extra: 'max_persistent_streams = 10000;' }).start();
  let sessions = [];
  let good;
  try {
    sessions = await openIdle(server, IDLE);
    const m0 = await counters(server);
    assert.ok(m0.open >= IDLE, `streams_open ${m0.open}`);
    good = new GoodClient(server, { pauseMs: 0 });
    await good.progress(200, 120000);
    const g = await good.stop();
    const m1 = await counters(server);
    const commits = m1.syncs - m0.syncs;
    const visits = m1.visits - m0.visits;
    const flushes = m1.flushes - m0.flushes;
    console.log(`# ${IDLE} idle streams + 1 busy: ${commits} group commits, ${m1.acks - m0.acks} acks, ` +
      `${visits} stream visits, ${flushes} connection visits; busy p99 ${g.latency_ms.p99} ms`);
    assert.ok(commits >= 200, `${commits} commits`);
    // the busy stream is visited once per commit that had its batch; the idle ones never:
    // a walk of every stream would be ~2000 visits per commit
    assert.ok(visits >= 200, `the busy stream was visited (${visits})`);
    assert.ok(visits <= commits + 10, `${visits} stream visits for ${commits} commits`);
    // flushes: the busy stream's connection per ack (and the odd one for the idle ones'
    // window updates); a walk of every connection would be 21 per flush
    assert.ok(flushes <= 2 * commits + 50, `${flushes} connection visits for ${commits} commits`);
    // the idle streams are still there and open
    assert.ok((await counters(server)).open >= IDLE);
  } finally {
    if (good && !good.proc.exited) await good.stop().catch(() => {});
    for (const s of sessions) s.destroy();
    await server.kill();
  }
});
