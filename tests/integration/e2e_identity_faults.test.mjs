// Failure paths of the identity work (issue 12), produced with real means, against the real
// server: a stream's principal file (data_root/_streams/<id>.owner) or registry entry that
// cannot be written (a full tmpfs mounted on _streams) refuses the stream cleanly while the
// server keeps serving the streams it has, and works again once space is back; a token key
// that cannot be read or made (its directory missing or read-only, the file too short, a
// directory in its place) stops the start naming the file, and on SIGHUP refuses the reload
// with the key in use kept; RetireStream on a stream still open on a call is
// FAILED_PRECONDITION, and one whose records are in the WAL but not yet in the table waits
// for the flush that commits them. Every test checks by reading the table that no
// acknowledged record is lost or doubled. Tests run as root (mount).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Proc, Server, repoRoot, run, serverBin, serverConfig, tmpDir, waitFor, zbClient as client } from './lib/harness.mjs';
import { replayLog } from './lib/table.mjs';
import { GoodClient } from './lib/goodclient.mjs';

const GPS = 'main.fleet.gps';
const TYPED = 'main.fleet.typed';
const principals = `principals = (
  { name = "truck-1"; tokens = [ "tok-truck-1" ]; tables = [ "main.fleet.*" ]; }
);
schemas = ( { table = "${TYPED}"; columns = ( { name = "v"; type = "string"; } ); } );
`;

// Records in a table's committed files (the Delta log replayed), 0 before its first commit.
function rows(server, table) {
  try {
    return replayLog(server.tableDir(table)).live.reduce((n, f) => n + f.numRecords, 0);
  } catch {
    return 0;
  }
}

const mount = async (...args) => {
  const r = await run('mount', args);
  assert.equal(r.code, 0, `mount ${args.join(' ')}: ${r.stderr}`);
};
const umount = (where) => run('umount', ['-l', where]);

const restInsert = (server, table, values) =>
  fetch(`http://127.0.0.1:${server.metricsPort}/zerobus/v1/tables/${table}/insert`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer tok-truck-1' },
    body: JSON.stringify(values.map((v) => ({ v }))),
  });

test('a stream whose principal or registry entry cannot be written is refused; the others go on; space back, it works', { timeout: 180000 }, async (t) => {
  const dir = tmpDir('e2e-idfaults-owner');
  const streams = path.join(dir, 'data', '_streams');
  fs.mkdirSync(streams, { recursive: true });
  // _streams on a tmpfs of its own, filled up below: every new file in it fails (ENOSPC)
  await mount('-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', streams);
  let server;
  let good;
  try {
    // two persistent streams each at most: the good client holds one; a refused create must
    // not hold the other
    server = await new Server({ dir, tables: [GPS], flushMs: 200,
      metrics: true, extra: `${principals}max_persistent_streams = 2;\n` }).start();
    good = new GoodClient(server, { table: GPS, token: 'tok-truck-1' });
    await good.progress(3);
    const filler = path.join(streams, 'filler');
    assert.throws(() => fs.writeFileSync(filler, Buffer.alloc(1 << 20)), { code: 'ENOSPC' });

    // JSON records (no descriptor to keep): 3 and 8 of them
    const j3 = path.join(dir, 'j3.json');
    const j8 = path.join(dir, 'j8.json');
    fs.writeFileSync(j3, ['{"v":"a"}', '{"v":"b"}', '{"v":"c"}'].join('\n') + '\n');
    fs.writeFileSync(j8, Array.from({ length: 8 }, (_, i) => `{"v":"e${i}"}`).join('\n') + '\n');
    const as = (r, why) => {
      assert.equal(r.code, 'UNAVAILABLE', JSON.stringify(r));
      assert.match(r.details, why);
    };
    // an ephemeral stream: its principal cannot be kept, so it is not made; nothing acked
    as(await client(server, 'status', '--case', 'write', '--ephemeral', '--token', 'tok-truck-1', '--table', TYPED, '--json-file', j3),
      /cannot keep the stream's principal durably/);
    // with a descriptor (PROTO records), that is the first file that cannot be written
    as(await client(server, 'status', '--case', 'write', '--ephemeral', '--token', 'tok-truck-1', '--table', GPS),
      /cannot keep the stream's descriptor durably/);
    // a persistent one: its registry entry cannot be written
    as(await client(server, 'status', '--case', 'write', '--token', 'tok-truck-1', '--table', TYPED, '--json-file', j3),
      /cannot register the stream durably/);
    // the first REST insert of (table, principal) of this run: 503, nothing written
    const rest = await restInsert(server, TYPED, ['x', 'y']);
    assert.equal(rest.status, 503);
    const rj = await rest.json();
    assert.equal(rj.error_code, 'TEMPORARILY_UNAVAILABLE');
    assert.match(rj.message, /cannot keep the stream's principal durably/);
    // each refusal has its line, naming the cause
    const lines = () => server.proc.log.filter((l) => / refused: cannot .* durably \(No space left on device\)/.test(l)).length;
    const refusedLines = (table, why) => server.proc.log.filter((l) => l.includes(`for table ${table} refused: ${why} (No space left on device)`)).length;
    await waitFor(() => refusedLines(TYPED, 'cannot keep the stream\'s principal durably') === 2 &&
      refusedLines(GPS, 'cannot keep the stream\'s descriptor durably') === 1 &&
      refusedLines(TYPED, 'cannot register the stream durably') === 1 && lines() === 4,
    { what: 'one line per refusal' });
    // the server goes on serving the stream it has
    await good.progress(5);

    // space back: the same calls work, and the refused persistent create held no slot
    fs.unlinkSync(filler);
    const e1 = await client(server, 'ephemeral', '--token', 'tok-truck-1', '--table', TYPED, '--json-file', j8, '--records', '4');
    assert.deepEqual(e1.acks, [0, 1], JSON.stringify(e1));
    const e2 = await client(server, 'ephemeral', '--token', 'tok-truck-1', '--table', GPS, '--records', '4', '--batches', '2');
    assert.deepEqual(e2.acks, [0, 1], JSON.stringify(e2));
    const p2 = await client(server, 'ingest', '--token', 'tok-truck-1', '--table', TYPED, '--json-file', j3, '--records', '3');
    assert.deepEqual(p2.acks, [0], JSON.stringify(p2));
    const r2 = await restInsert(server, TYPED, ['a', 'b', 'c']);
    assert.equal(r2.status, 200, await r2.text());
    const g = await good.stop();
    good = null;
    // every acked record is in its table once, and nothing of the refused calls is
    const want = g.acks.length * 5 + 8;
    await waitFor(() => rows(server, GPS) === want && rows(server, TYPED) === 8 + 3 + 3,
      { what: `${want} rows in ${GPS} (have ${rows(server, GPS)}), 14 in ${TYPED} (have ${rows(server, TYPED)})` });
    t.diagnostic(`the good client: ${g.acks.length} batches acked, before, during and after the failure`);
  } finally {
    if (good) await good.stop().catch(() => {});
    if (server) await server.kill();
    await umount(streams);
  }
});

// `runnel-server -c conf` with token_key_file = key: its exit code and output.
async function startWith(dir, key) {
  const conf = path.join(dir, 'server.conf');
  fs.writeFileSync(conf, serverConfig({ dataRoot: path.join(dir, 'data'), tables: [GPS],
    extra: `${principals}token_key_file = "${key}";\n` }));
  return run(serverBin, ['-c', conf]);
}

test('a token key that cannot be read or made stops the start, naming the file', { timeout: 60000 }, async () => {
  const dir = tmpDir('e2e-idfaults-key');
  const cases = [];
  // its directory missing
  cases.push([path.join(dir, 'nodir', 'key'), /cannot create it: No such file or directory/]);
  // a regular file where its directory should be
  fs.writeFileSync(path.join(dir, 'file'), 'x');
  cases.push([path.join(dir, 'file', 'key'), /Not a directory/]);
  // too short (truncated)
  fs.writeFileSync(path.join(dir, 'short'), Buffer.alloc(31, 7), { mode: 0o600 });
  cases.push([path.join(dir, 'short'), /shorter than 32 bytes/]);
  // a directory in its place
  fs.mkdirSync(path.join(dir, 'adir'));
  cases.push([path.join(dir, 'adir'), /Is a directory/]);
  // its directory read-only (root ignores mode bits: a read-only bind mount)
  const ro = path.join(dir, 'ro');
  fs.mkdirSync(ro);
  await mount('--bind', ro, ro);
  try {
    await mount('-o', 'remount,bind,ro', ro);
    cases.push([path.join(ro, 'key'), /cannot create it: Read-only file system/]);
    for (const [key, why] of cases) {
      const r = await startWith(dir, key);
      assert.notEqual(r.code, 0, `${key}: started\n${r.stderr}`);
      const out = r.stdout + r.stderr;
      assert.ok(out.includes(`token key ${key}`), `${key}: ${out}`);
      assert.match(out, why);
      assert.match(out, /\(token_key_file\): cannot start/);
      assert.ok(!/listening on/.test(out));
    }
    assert.ok(!fs.existsSync(path.join(ro, 'key')));
  } finally {
    await umount(ro);
  }
});

test('SIGHUP with a token key that cannot be read refuses the reload; the key in use stays', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-idfaults-rekey');
  const key = path.join(dir, 'token.key');
  const server = await new Server({ dir, tables: [GPS],
    metrics: true, extra: `${principals}token_key_file = "${key}";\n` }).start();
  const issue = async () => {
    const r = await run(serverBin, ['token', 'issue', '-c', server.conf, '--principal', 'truck-1', '--tables', GPS, '--ttl', '600']);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim();
  };
  const hup = async (result, n) => {
    server.proc.child.kill('SIGHUP');
    await waitFor(async () => (await server.metric('config_reloads_total', `result="${result}"`)) === n,
      { what: `${n} reload(s) ${result}` });
  };
  const write = (tok) => client(server, 'status', '--case', 'write', '--token', tok, '--table', GPS, '--records', '1');
  let acked = 0;
  try {
    // the server made the key (0600) and a token signed with it is taken
    assert.equal(fs.statSync(key).mode & 0o777, 0o600);
    const made = fs.readFileSync(key);
    assert.equal(made.length, 32);
    const tok = await issue();
    assert.equal((await write(tok)).code, 'OK');
    acked++;
    // the key file truncated: the reload is refused, naming the file; the token still works
    fs.writeFileSync(key, made.subarray(0, 10));
    await hup('error', 1);
    assert.ok(server.proc.log.some((l) => l.includes(`reload refused, the running config and token key stay: token key ${key}: shorter than 32 bytes`)),
      server.proc.tail());
    assert.equal((await write(tok)).code, 'OK');
    acked++;
    // a directory in its place: the same
    fs.unlinkSync(key);
    fs.mkdirSync(key);
    await hup('error', 2);
    assert.ok(server.proc.log.some((l) => l.includes(`token key ${key}: Is a directory`)), server.proc.tail());
    assert.equal((await write(tok)).code, 'OK');
    acked++;
    // the key back: the reload is taken
    fs.rmdirSync(key);
    fs.writeFileSync(key, made, { mode: 0o600 });
    await hup('ok', 1);
    assert.equal((await write(tok)).code, 'OK');
    acked++;
    // another key: it is read on SIGHUP, and the token signed with the old one is refused
    fs.writeFileSync(key, Buffer.alloc(32, 1), { mode: 0o600 });
    await hup('ok', 2);
    const old = await write(tok);
    assert.equal(old.code, 'UNAUTHENTICATED', JSON.stringify(old));
    assert.equal((await write(await issue())).code, 'OK');
    acked++;
    await waitFor(() => rows(server, GPS) === acked, { what: `${acked} rows` });
  } finally {
    await server.kill();
  }
});

test('RetireStream: FAILED_PRECONDITION while the stream is on a call; with records not yet in the table it waits for their flush', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-idfaults-retire');
  // no flush for an hour: acked records stay in the WAL until a SIGHUP brings the interval down
  const server = await new Server({ dir, tables: [GPS], flushMs: 3600000, extra: principals }).start();
  const retire = (id) => client(server, 'retire', '--stream-id', id, '--token', 'tok-truck-1', '--table', GPS);
  const stop = path.join(dir, 'stop');
  try {
    const steady = new Proc('steady', '/usr/bin/python3', [path.join(repoRoot, 'tests', 'integration', 'zerobus_client.py'),
      `127.0.0.1:${server.port}`, 'steady', '--token', 'tok-truck-1', '--table', GPS, '--records', '2',
      '--pause-ms', '20', '--stop-file', stop]);
    const idLine = await waitFor(() => steady.log.find((l) => l.startsWith('{"stream_id"')), { what: 'the stream id' });
    const id = JSON.parse(idLine).stream_id;
    await waitFor(() => steady.log.filter((l) => l.startsWith('{"ack"')).length >= 3, { what: 'acks' });
    // the stream is open on the steady client's call
    const busy = await retire(id);
    assert.equal(busy.code, 'FAILED_PRECONDITION', JSON.stringify(busy));
    assert.match(busy.details, /the stream is open on a call; end it first/);
    fs.writeFileSync(stop, '');
    await steady.exitPromise;
    const done = JSON.parse(steady.log.filter((l) => l.startsWith('{"acks"')).pop());
    assert.equal(done.code, 'OK');
    const acked = done.acks.length * 2;
    // acked, durable in the WAL, not yet in the table
    assert.equal(rows(server, GPS), 0);
    assert.ok(fs.existsSync(path.join(server.dataRoot, '_streams', id)));
    // the retire waits for the flush that commits them
    const waiting = retire(id);
    await waitFor(() => server.proc.log.some((l) => l.includes(`stream ${id}: RetireStream by principal truck-1 waits for its records to be committed`)),
      { what: 'the retire waiting' });
    // meanwhile the stream is going: resume and a second retire are NOT_FOUND
    const resume = await client(server, 'status', '--case', 'resume', '--stream-id', id, '--token', 'tok-truck-1', '--table', GPS);
    assert.equal(resume.code, 'NOT_FOUND', JSON.stringify(resume));
    assert.equal((await retire(id)).code, 'NOT_FOUND');
    assert.equal(rows(server, GPS), 0, 'nothing flushed yet: the retire is still waiting');
    // a flush soon: the retire is answered OK, with every acked record in the table once
    fs.writeFileSync(server.conf, fs.readFileSync(server.conf, 'utf8').replace('flush_interval_ms = 3600000;', 'flush_interval_ms = 200;'));
    server.proc.child.kill('SIGHUP');
    const ok = await waiting;
    assert.equal(ok.code, 'OK', JSON.stringify(ok));
    assert.equal(rows(server, GPS), acked);
    assert.ok(!fs.existsSync(path.join(server.dataRoot, '_streams', id)));
    const gone = await client(server, 'status', '--case', 'resume', '--stream-id', id, '--token', 'tok-truck-1', '--table', GPS);
    assert.equal(gone.code, 'NOT_FOUND', JSON.stringify(gone));
  } finally {
    await server.kill();
  }
});
