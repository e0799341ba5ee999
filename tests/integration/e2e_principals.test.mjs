// Principals and authorization (issue 12, docs/security.md), against the real server and
// Debian's python3-grpcio client: the refusal matrix for gRPC ephemeral and persistent calls
// (no credentials, wrong token, a token for another table, a revoked principal after SIGHUP,
// another principal's persistent stream, a dead-letter table even with "*"): each gets its
// documented status, one log line, and no row is written to any table; signed tokens from
// `runnel-server token issue` are accepted for their table, refused for another and once
// expired, and a stream on one gets close_stream_signal before the expiry; the persistent
// stream cap per principal and the expiry of unused streams.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Proc, Server, run, serverBin, tmpDir, waitFor, zbClient as client } from './lib/harness.mjs';

const PY = '/usr/bin/python3';
const CLIENT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'zerobus_client.py');
const GPS = 'main.fleet.gps';
const OTHER = 'main.other.t';
const TYPED = 'main.fleet.typed';
const DLQ = `${TYPED}_dead_letters`;
const ALL = [GPS, OTHER, TYPED, DLQ];

const principals = (withTruck2 = true) => `principals = (
  { name = "truck-1"; tokens = [ "tok-truck-1" ]; tables = [ "main.fleet.*" ]; },
  ${withTruck2 ? '{ name = "truck-2"; tokens = [ "tok-truck-2" ]; tables = [ "main.fleet.*" ]; },' : ''}
  { name = "other"; tokens = [ "tok-other" ]; tables = [ "main.other.*" ]; },
  { name = "admin"; tokens = [ "tok-admin" ]; tables = [ "*" ]; }
);
schemas = ( { table = "${TYPED}"; columns = ( { name = "v"; type = "string"; } ); } );
token_clock_skew = 0;
`;

async function rows(server, table) {
  const r = await run(serverBin, ['table', 'describe', server.tableDir(table), '--json']);
  assert.equal(r.code, 0, `${table}: ${r.stderr}`);
  return JSON.parse(r.stdout).rows;
}

async function allRows(server) {
  const out = {};
  for (const t of ALL) out[t] = await rows(server, t);
  return out;
}

// The front logs the first refusal of a kind (peer, status, reason) at once and counts
// later ones of the same kind into one summary line per 10 s (refuselog.c): a refusal of a
// new kind gets exactly one line; one of a kind seen before adds no line of its own.
const firstLines = (server, status, re) => {
  const want = new RegExp(`call refused: ${status} .*${re.source}`);
  return server.proc.log.filter((l) => want.test(l)).length;
};

async function refused(server, status, re, ...args) {
  const seen = firstLines(server, status, re);
  const r = await client(server, 'status', '--case', 'write', ...args);
  assert.equal(r.code, status, `${args.join(' ')}: ${JSON.stringify(r)}`);
  assert.match(r.details, re);
  if (!seen)
    await waitFor(() => firstLines(server, status, re) === 1, { timeoutMs: 10000, what: `a line for ${re}` });
  assert.equal(firstLines(server, status, re), 1, server.proc.tail());
}

const lastAck = (proc) => {
  for (let i = proc.log.length - 1; i >= 0; i--) {
    const m = proc.log[i].match(/^\{"ack": (\d+)\}$/);
    if (m) return Number(m[1]);
  }
  return -1;
};

test('authorization matrix: each refusal has its status, one log line, and writes nothing', { timeout: 240000 }, async () => {
  const dir = tmpDir('e2e-principals');
  const server = await new Server({ dir, tables: [GPS, OTHER], metrics: true, extra: principals() }).start();
  const stop = path.join(dir, 'stop');
  let steady;
  try {
    // truck-1 owns a persistent stream (created and acked; nothing written after this)
    const own = await client(server, 'ingest', '--token', 'tok-truck-1', '--table', GPS, '--records', '2', '--batches', '1');
    assert.deepEqual(own.acks, [0]);
    await waitFor(async () => (await rows(server, GPS)) === 2, { what: 'the owner\'s 2 rows' });
    const before = await allRows(server);
    for (const eph of [[], ['--ephemeral']]) {
      const kind = eph.length ? 'ephemeral' : 'persistent';
      await refused(server, 'UNAUTHENTICATED', /missing or wrong bearer token/, '--table', GPS, ...eph);
      await refused(server, 'UNAUTHENTICATED', /missing or wrong bearer token/, '--table', GPS, '--token', `wrong-${kind}`, ...eph);
      await refused(server, 'PERMISSION_DENIED', new RegExp(`principal other may not write table ${GPS}`), '--table', GPS, '--token', 'tok-other', ...eph);
      await refused(server, 'PERMISSION_DENIED', new RegExp(`table ${DLQ} is a dead-letter table`), '--table', DLQ, '--token', 'tok-admin', ...eph);
    }
    // another principal's persistent stream: refused, nothing acked, the owner unaffected
    steady = new Proc('steady', PY, [CLIENT, `127.0.0.1:${server.port}`, 'steady', '--token', 'tok-truck-1',
      '--table', GPS, '--records', '1', '--pause-ms', '50', '--stop-file', stop]);
    await waitFor(() => steady.exited || lastAck(steady) >= 2, { what: 'the owner\'s steady stream acked' });
    const live = JSON.parse(steady.log.find((l) => l.startsWith('{"stream_id"'))).stream_id;
    for (const sid of [live, own.stream_id]) // attached to the owner's call, and idle
      await refused(server, 'PERMISSION_DENIED', /stream belongs to another principal/, '--case', 'resume',
        '--stream-id', sid, '--token', 'tok-truck-2', '--table', GPS);
    const ack = lastAck(steady);
    await waitFor(() => lastAck(steady) >= ack + 2, { what: 'the owner\'s stream still acked' });
    assert.equal(steady.exited, null, steady.tail());
    // the owner may resume its own idle stream (its batch at offset 1 is new: one row)
    const mine = await client(server, 'status', '--case', 'resume', '--stream-id', own.stream_id,
      '--token', 'tok-truck-1', '--table', GPS, '--batches', '1', '--records', '1');
    assert.equal(mine.code, 'OK', JSON.stringify(mine));
    fs.writeFileSync(stop, '');
    await steady.exitPromise;
    const steadyRows = JSON.parse(steady.log.at(-1)).acks.length;

    // revoked principal: truck-2's open call ends at the reload; its new calls are refused
    const stop2 = path.join(dir, 'stop2');
    const t2 = new Proc('truck2', PY, [CLIENT, `127.0.0.1:${server.port}`, 'steady', '--token', 'tok-truck-2',
      '--table', GPS, '--records', '1', '--pause-ms', '50', '--stop-file', stop2]);
    await waitFor(() => t2.exited || lastAck(t2) >= 1, { what: 'truck-2 streaming' });
    fs.writeFileSync(server.conf, fs.readFileSync(server.conf, 'utf8').replace(principals(), principals(false)));
    const from = server.proc.lines;
    server.proc.child.kill('SIGHUP');
    await waitFor(() => server.proc.since(from).some((l) => /config reloaded/.test(l)), { what: 'the reload' });
    const res = await waitFor(() => t2.exited && JSON.parse(t2.log.at(-1)), { what: 'truck-2 ended' });
    assert.equal(res.code, 'UNAUTHENTICATED', JSON.stringify(res));
    assert.match(server.proc.since(from).join('\n'), /reload: stream \S+ of principal truck-2 ended/);
    for (const eph of [[], ['--ephemeral']])
      await refused(server, 'UNAUTHENTICATED', /missing or wrong bearer token/, '--table', GPS, '--token', 'tok-truck-2', ...eph);
    // truck-2 streamed until the reload ended its call: its rows are every batch acked by
    // then, and maybe the one batch it had in flight (the client sends the next batch only
    // after the ack of the one before), which the server may have logged without acking.
    const t2acked = lastAck(t2) + 1;

    // 0 rows written by any refused call: only the accepted streams' rows are there (read
    // once every durable byte is in its table)
    const accepted = before[GPS] + steadyRows + 1 + t2acked;
    await waitFor(async () => (await server.metric('pending_bytes')) === 0 && (await rows(server, GPS)) >= accepted,
      { what: 'the accepted rows in the table' });
    const got = await rows(server, GPS);
    assert.ok(got === accepted || got === accepted + 1, `${got} rows, accepted ${accepted} (+1 in flight at most)`);
    const after = await allRows(server);
    for (const t of [OTHER, TYPED, DLQ]) assert.equal(after[t], before[t], t);
    assert.equal(after[DLQ], 0);
    // the repeats of a kind are counted in its summary line
    await waitFor(() => server.proc.log.some((l) => /\d+ more calls refused in the last 10 s: UNAUTHENTICATED missing or wrong bearer token/.test(l)),
      { timeoutMs: 20000, what: 'the summary line of the repeated refusals' });
  } finally {
    steady?.kill();
    await server.kill();
  }
});

test('signed tokens from `runnel-server token issue`: their table, another, expired, close_stream_signal', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-principals-jwt');
  const extra = `${principals()}token_close_before = "2s";\n`;
  const server = await new Server({ dir, tables: [GPS, OTHER], extra }).start();
  try {
    const issue = async (tables, ttl) => {
      const r = await run(serverBin, ['token', 'issue', '-c', server.conf, '--principal', 'truck-1', '--tables', tables, '--ttl', String(ttl)]);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout.trim();
    };
    const tok = await issue(GPS, 60);
    const ok = await client(server, 'ingest', '--token', tok, '--table', GPS, '--records', '1', '--batches', '2');
    assert.deepEqual(ok.acks, [0, 1]);
    await refused(server, 'PERMISSION_DENIED', /the token does not grant table main\.fleet\.other/, '--table', 'main.fleet.other', '--token', tok);
    const bad = await run(serverBin, ['token', 'issue', '-c', server.conf, '--principal', 'truck-1', '--tables', OTHER]);
    assert.equal(bad.code, 1, 'a table outside the principal\'s patterns is not issued');
    // a short token: close_stream_signal 2 s before the end, then UNAUTHENTICATED
    const short = await issue(GPS, 4);
    const p = new Proc('short', PY, [CLIENT, `127.0.0.1:${server.port}`, 'steady', '--token', short,
      '--table', GPS, '--records', '1', '--pause-ms', '100', '--stop-file', path.join(dir, 'never')]);
    const end = await waitFor(() => p.exited && JSON.parse(p.log.at(-1)), { timeoutMs: 30000, what: 'the short token\'s stream ended' });
    assert.ok(p.log.some((l) => /^\{"close_signal": [0-9]+\}$/.test(l)), p.tail());
    assert.equal(end.code, 'UNAUTHENTICATED', JSON.stringify(end));
    assert.match(end.details, /the token has expired/);
    const late = await client(server, 'status', '--token', short, '--table', GPS);
    assert.equal(late.code, 'UNAUTHENTICATED');
    assert.match(late.details, /the token has expired/);
  } finally {
    await server.kill();
  }
});

test('persistent streams: a cap per principal, and unused ones expire', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-principals-cap');
  const extra = `${principals()}max_persistent_streams = 2;\nstream_expiry = "3s";\n`;
  const server = await new Server({ dir, tables: [GPS, OTHER], extra }).start();
  try {
    const a = await client(server, 'ingest', '--token', 'tok-truck-1', '--table', GPS, '--records', '1', '--batches', '1');
    await client(server, 'ingest', '--token', 'tok-truck-1', '--table', GPS, '--records', '1', '--batches', '1');
    const third = await client(server, 'status', '--token', 'tok-truck-1', '--table', GPS);
    assert.equal(third.code, 'RESOURCE_EXHAUSTED', JSON.stringify(third));
    assert.match(third.details, /principal truck-1 has 2 persistent streams/);
    const other = await client(server, 'status', '--token', 'tok-truck-2', '--table', GPS);
    assert.equal(other.code, 'OK', 'the cap is per principal');
    // after 3 s without a call they are retired (their records committed): files gone
    await waitFor(() => !fs.existsSync(path.join(server.dataRoot, '_streams', a.stream_id)), { timeoutMs: 20000, what: 'stream expired' });
    const gone = await client(server, 'status', '--case', 'resume', '--stream-id', a.stream_id, '--token', 'tok-truck-1', '--table', GPS);
    assert.equal(gone.code, 'NOT_FOUND');
    const again = await client(server, 'status', '--token', 'tok-truck-1', '--table', GPS);
    assert.equal(again.code, 'OK', 'below the cap again');
    assert.equal(await rows(server, GPS), 2);
  } finally {
    await server.kill();
  }
});

test('RetireStream: the owner frees a slot under the cap; another principal cannot; twice is NOT_FOUND', { timeout: 120000 }, async (t) => {
  const dir = tmpDir('e2e-principals-retire');
  // stream_expiry off: only RetireStream lets a stream go here
  const extra = `${principals()}max_persistent_streams = 2;\n`;
  // a flush every 4 s: a retire right after a write waits for the flush that commits it
  const server = await new Server({ dir, tables: [GPS, OTHER], extra, flushMs: 4000 }).start();
  const retire = (id, tok, ...args) => client(server, 'retire', '--stream-id', id, '--token', tok, '--table', GPS, ...args);
  try {
    // records just acked (durable, not yet committed): the retire waits for the flush
    const a = await client(server, 'ingest', '--token', 'tok-truck-1', '--table', GPS, '--records', '3', '--batches', '2');
    const b = await client(server, 'ingest', '--token', 'tok-truck-1', '--table', GPS, '--records', '1', '--batches', '1');
    const full = await client(server, 'status', '--token', 'tok-truck-1', '--table', GPS);
    assert.equal(full.code, 'RESOURCE_EXHAUSTED', JSON.stringify(full));
    // the owner retires b at once (without table_name: the header names the table): OK only
    // once its records are committed, so they are in the table when the answer comes
    const okb = await retire(b.stream_id, 'tok-truck-1', '--no-table-name');
    assert.equal(okb.code, 'OK', JSON.stringify(okb));
    assert.ok(await rows(server, GPS) >= 1, 'b\'s record is committed when RetireStream answers');
    t.diagnostic(`RetireStream waited for a flush: ${server.proc.log.some((l) => l.includes(`stream ${b.stream_id}: RetireStream by principal truck-1 waits`))}`);
    // not the owner: PERMISSION_DENIED (truck-2 may write the table), and the stream stays
    const theft = await retire(a.stream_id, 'tok-truck-2');
    assert.equal(theft.code, 'PERMISSION_DENIED', JSON.stringify(theft));
    assert.match(theft.details, /stream belongs to another principal/);
    // a principal not allowed the table at all is refused before anything is looked up
    const stranger = await retire(a.stream_id, 'tok-other');
    assert.equal(stranger.code, 'PERMISSION_DENIED', JSON.stringify(stranger));
    assert.ok(fs.existsSync(path.join(server.dataRoot, '_streams', a.stream_id)));
    // unknown id, wrong table name, no credentials
    assert.equal((await retire('no-such-stream', 'tok-truck-1')).code, 'NOT_FOUND');
    const wrongTable = await client(server, 'retire', '--stream-id', a.stream_id, '--token', 'tok-truck-1', '--table', 'main.fleet.typed');
    assert.equal(wrongTable.code, 'NOT_FOUND', JSON.stringify(wrongTable));
    assert.equal((await client(server, 'retire', '--stream-id', a.stream_id, '--table', GPS)).code, 'UNAUTHENTICATED');
    // the owner: OK once its records are committed; its files are gone, its rows stay
    const ok = await retire(a.stream_id, 'tok-truck-1');
    assert.equal(ok.code, 'OK', JSON.stringify(ok));
    assert.ok(!fs.existsSync(path.join(server.dataRoot, '_streams', a.stream_id)));
    assert.equal(await rows(server, GPS), 7);
    // idempotent in effect: a second retire is NOT_FOUND, as is a resume
    assert.equal((await retire(a.stream_id, 'tok-truck-1')).code, 'NOT_FOUND');
    const gone = await client(server, 'status', '--case', 'resume', '--stream-id', a.stream_id, '--token', 'tok-truck-1', '--table', GPS);
    assert.equal(gone.code, 'NOT_FOUND');
    // the slots are free: new streams are created
    const again = await client(server, 'status', '--token', 'tok-truck-1', '--table', GPS);
    assert.equal(again.code, 'OK', JSON.stringify(again));
    const again2 = await client(server, 'status', '--token', 'tok-truck-1', '--table', GPS);
    assert.equal(again2.code, 'OK', JSON.stringify(again2));
    assert.ok(server.proc.log.some((l) => l.includes(`stream ${a.stream_id} of principal truck-1 retired (RetireStream)`)));
  } finally {
    await server.kill();
  }
});
