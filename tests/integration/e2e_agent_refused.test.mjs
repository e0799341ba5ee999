// runnel-agent against a real runnel-server that refuses its calls at open with a
// trailers-only answer (UNAUTHENTICATED for a wrong static token, NOT_FOUND for a table the
// server does not have and may not create). The agent's upload is paused while it waits for
// the create answer; libcurl 7.88 used to lose that answer when the server reset the stream
// in the same write, and the call hung until ack_timeout_ms (60 s here) with no log line.
// Checked: the status is in `runnel-agent status` (last_error, last_status) within 10 s, the
// log has a line naming it (one per refused call: the slow retry, not a flood), nothing is
// written, and once the cause is fixed (the agent's token by SIGHUP, the table by the
// server's SIGHUP) every record is in the table exactly once. And on the wire: the server
// sends no RST_STREAM with a trailers-only answer, only a second later to a client that
// keeps its side open.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Agent, Server, tmpDir, waitFor } from './lib/harness.mjs';
import { duckFrom, query, replayLog, verifyTable } from './lib/table.mjs';
import { END_HEADERS, END_STREAM, PREFACE, T, frame, readFrames, requestBlock } from './lib/h2raw.mjs';

const TABLE = 'main.default.refused';
const ACK_TIMEOUT_MS = 60000;
const SEEN_WITHIN_MS = 10000;

function rows(server) {
  try {
    return replayLog(server.tableDir(TABLE)).live.reduce((n, f) => n + f.numRecords, 0);
  } catch {
    return 0;
  }
}

async function exactlyOnce(server, n) {
  const snap = await verifyTable(server.tableDir(TABLE));
  const [r] = await query(`SELECT count(*) AS n, count(DISTINCT payload) AS d FROM ${duckFrom(snap.files)}`);
  assert.deepEqual([Number(r.n), Number(r.d)], [n, n]);
}

const lines = (from, n) => Array.from({ length: n }, (_, i) => `line ${from + i}\n`).join('');

// Waits until the agent's stream reports `status` (a gRPC status name and number), and
// checks it came well before the ack timeout, with a log line naming it per refused call.
async function refusedAtOnce(agent, t0, name, code) {
  const st = await waitFor(() => {
    const u = agent.status()?.streams?.[0]?.uplink;
    return u && u.last_status === code && new RegExp(name).test(u.last_error) && u;
  }, { timeoutMs: SEEN_WITHIN_MS, what: `${name} in runnel-agent status` })
    .catch((e) => { throw new Error(`${e.message}\n${agent.proc.tail()}`); });
  const took = Date.now() - t0;
  assert.ok(took < SEEN_WITHIN_MS, `seen after ${took} ms (ack_timeout_ms ${ACK_TIMEOUT_MS})`);
  assert.match(st.last_error, new RegExp(`server ended the call: ${name}`));
  const named = () => agent.proc.log.filter((l) => new RegExp(`uplink: stream 1 \\(${TABLE}\\): server ended the call: ${name}.*needs an operator`).test(l));
  await waitFor(() => named().length >= 1, { timeoutMs: 5000, what: `a log line naming ${name}` });
  // the slow retry (backoff_max_ms = 1000 in the harness): one line per refused call
  const secs = (Date.now() - t0) / 1000;
  assert.ok(named().length <= secs + 2, `${named().length} lines in ${secs.toFixed(1)} s: one per call expected`);
  assert.ok(!agent.proc.log.some((l) => /timeout: no answer/.test(l)), agent.proc.tail());
  return st;
}

test('a wrong token: UNAUTHENTICATED reported at once; fixed by SIGHUP, rows exactly once', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-refused-token');
  const input = path.join(dir, 'in.log');
  fs.writeFileSync(input, lines(0, 200));
  const server = await new Server({ dir, tables: [TABLE], token: 'right-token' }).start();
  const agent = new Agent({ dir, url: server.url, token: 'wrong-token',
    uplinkExtra: `ack_timeout_ms = ${ACK_TIMEOUT_MS};`,
    sources: [{ name: 'f', paths: [input], table: TABLE }] });
  try {
    const t0 = Date.now();
    await agent.start();
    await refusedAtOnce(agent, t0, 'UNAUTHENTICATED', 16);
    assert.equal(rows(server), 0);
    assert.ok(!agent.proc.log.some((l) => l.includes('wrong-token')), 'the token is never logged');

    agent.cfg.token = 'right-token';
    agent.writeConfig();
    agent.proc.child.kill('SIGHUP');
    await waitFor(() => rows(server) >= 200, { what: '200 rows after the token is fixed' })
      .catch((e) => { throw new Error(`${e.message}\n${agent.proc.tail()}`); });
    fs.appendFileSync(input, lines(200, 100));
    await waitFor(() => rows(server) >= 300, { what: '300 rows' });
    await waitFor(() => {
      const s = agent.status()?.streams?.[0];
      return s && s.acked === s.next_offset - 1 && s;
    }, { what: 'everything acked' });
    await agent.stop();
    await server.stop();
    await exactlyOnce(server, 300);
  } finally {
    await agent.kill();
    await server.kill();
  }
});

test('a table the server does not have (auto_create off): NOT_FOUND at once; declared by the server\'s SIGHUP, rows exactly once', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-refused-table');
  const input = path.join(dir, 'in.log');
  fs.writeFileSync(input, lines(0, 200));
  const server = await new Server({ dir, tables: ['main.default.other'], extra: 'auto_create = false;' }).start();
  const agent = new Agent({ dir, url: server.url,
    uplinkExtra: `ack_timeout_ms = ${ACK_TIMEOUT_MS};`,
    sources: [{ name: 'f', paths: [input], table: TABLE }] });
  try {
    const t0 = Date.now();
    await agent.start();
    await refusedAtOnce(agent, t0, 'NOT_FOUND', 5);
    assert.equal(fs.existsSync(server.tableDir(TABLE)), false, 'no table made');

    server.tables = ['main.default.other', TABLE];
    fs.writeFileSync(server.conf, fs.readFileSync(server.conf, 'utf8')
      .replace(/tables = \[[^\]]*\];/, `tables = [ "main.default.other", "${TABLE}" ];`));
    server.proc.child.kill('SIGHUP');
    await waitFor(() => rows(server) >= 200, { what: '200 rows after the table is declared' })
      .catch((e) => { throw new Error(`${e.message}\n${agent.proc.tail()}\n${server.proc.tail()}`); });
    fs.appendFileSync(input, lines(200, 100));
    await waitFor(() => rows(server) >= 300, { what: '300 rows' });
    await agent.stop();
    await server.stop();
    await exactlyOnce(server, 300);
  } finally {
    await agent.kill();
    await server.kill();
  }
});

// A raw HTTP/2 client (HPACK literals, no Huffman): the refusal's HEADERS (END_STREAM) must
// not come with a RST_STREAM (libcurl 7.88 would lose the headers); a client that keeps its
// side open is reset with NO_ERROR about a second later, one that closes it is not.
test('on the wire: no RST_STREAM with a trailers-only refusal; a late one if the client keeps sending', { timeout: 60000 }, async () => {
  const dir = tmpDir('e2e-refused-wire');
  const server = await new Server({ dir, tables: [TABLE], token: 'right-token' }).start();
  const request = (sid) => frame(T.HEADERS, END_HEADERS, sid, requestBlock({
    ':path': '/databricks.zerobus.Zerobus/PersistentStream', 'x-databricks-zerobus-table-name': TABLE,
    authorization: 'Bearer wrong-token' }));
  const sock = net.connect(server.port, '127.0.0.1');
  sock.on('error', () => {});
  const frames = readFrames(sock);
  try {
    await new Promise((resolve) => sock.once('connect', resolve));
    sock.write(Buffer.concat([PREFACE, frame(T.SETTINGS, 0, 0), frame(T.SETTINGS, 1, 0)]));
    // stream 1 keeps its side open; stream 3 closes it (empty DATA with END_STREAM) once answered
    sock.write(Buffer.concat([request(1), request(3)]));
    const answer = (sid) => waitFor(() => frames.find((f) => f.type === T.HEADERS && f.sid === sid), { what: `the answer on stream ${sid}` });
    const [h1, h3] = [await answer(1), await answer(3)];
    assert.ok(h1.flags & END_STREAM, 'the refusal ends the stream (END_STREAM)');
    assert.ok(h3.flags & END_STREAM);
    sock.write(frame(T.DATA, END_STREAM, 3));
    const rst1 = await waitFor(() => frames.find((f) => f.type === T.RST_STREAM && f.sid === 1), { timeoutMs: 5000, what: 'a late RST_STREAM on stream 1' });
    assert.ok(rst1.read > h1.read, 'not in the read that brought the answer');
    assert.ok(rst1.at - h1.at >= 800, `reset ${rst1.at - h1.at} ms after the answer`);
    assert.equal(rst1.payload.readUInt32BE(0), 0, 'NO_ERROR');
    assert.deepEqual(frames.filter((f) => f.type === T.RST_STREAM && f.sid === 3), [], 'no reset for a stream the client closed');
    assert.deepEqual(frames.filter((f) => f.type === T.GOAWAY), [], 'no GOAWAY');
  } finally {
    sock.destroy();
    await server.kill();
  }
});
