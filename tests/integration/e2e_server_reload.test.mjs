// runnel-server reload on SIGHUP, its log file, --version and the systemd notifications, all
// against the real server and Debian's python3-grpcio client (zerobus_client.py). While one
// persistent stream sends batch after batch (`steady`), the config is changed and SIGHUP sent
// several times: a new token takes effect for new calls while the running stream keeps being
// acked, a newly declared table becomes writable, an invalid config is refused with its
// file:line and changes nothing, the log file moves to a new file after a rename, and every
// acked record is in the table exactly once (read with DuckDB).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Proc, Server, run, serverBin, serverConfig, tmpDir, waitFor } from './lib/harness.mjs';
import { duckFrom, query, verifyTable } from './lib/table.mjs';

const PY = '/usr/bin/python3';
const CLIENT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'zerobus_client.py');
const T1 = 'main.default.telemetry';
const T2 = 'main.default.added';
const TYPED = 'main.default.typed';

async function client(addr, ...args) {
  const r = await run(PY, [CLIENT, addr, ...args]);
  assert.equal(r.code, 0, `client failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

const lastAck = (proc) => {
  for (let i = proc.log.length - 1; i >= 0; i--) {
    const m = proc.log[i].match(/^\{"ack": (\d+)\}$/);
    if (m) return Number(m[1]);
  }
  return -1;
};

const readLog = (f) => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '');
const countIn = (f, re) => readLog(f).split('\n').filter((l) => re.test(l)).length;

test('runnel-server: SIGHUP reloads tokens, tables and the log file while a stream keeps flowing', { timeout: 240000 }, async () => {
  const dir = tmpDir('e2e-reload');
  const logFile = path.join(dir, 'server.log');
  const stop = path.join(dir, 'stop');
  const server = await new Server({ dir, tables: [T1], token: 'old', metrics: true }).start();
  const addr = `127.0.0.1:${server.port}`;
  const conf = (o) => serverConfig({ listen: '127.0.0.1:0', dataRoot: server.dataRoot, flushMs: 200, metrics: true, ...o });
  // each SIGHUP is waited for by its "config reloaded" / "reload refused" line in the log file
  const hup = async (re) => {
    const before = countIn(logFile, re);
    server.proc.child.kill('SIGHUP');
    await waitFor(() => server.proc.exited || countIn(logFile, re) > before,
      { timeoutMs: 15000, what: `${re} in the log file` });
    assert.equal(server.proc.exited, null, `server died on SIGHUP: ${server.proc.tail()}`);
  };
  const steady = new Proc('steady', PY, [CLIENT, addr, 'steady', '--token', 'old', '--records', '5',
    '--pause-ms', '20', '--device', 'steady', '--stop-file', stop]);
  try {
    await waitFor(() => steady.exited || lastAck(steady) >= 3, { timeoutMs: 30000, what: 'the steady stream acked' });
    assert.equal(steady.exited, null, steady.tail());

    const big = await client(addr, 'status', '--token', 'old', '--case', 'oversize');
    assert.equal(big.code, 'RESOURCE_EXHAUSTED', 'an 11 MiB message is over the default 10M');

    // 1. a new token, a new table, a limit and a log file
    fs.writeFileSync(server.conf, conf({ tables: [T1, T2], token: 'new', extra: `log_file = "${logFile}";\nmax_message_bytes = "16M";` }));
    await hup(/config reloaded/);
    assert.match(readLog(logFile), /reload: token changed/);
    assert.match(readLog(logFile), /reload: table main\.default\.added created/);
    let ack = lastAck(steady);
    await waitFor(() => lastAck(steady) >= ack + 5, { timeoutMs: 20000, what: 'the running stream acked after the reload' });
    const refused = await client(addr, 'status', '--token', 'old');
    assert.equal(refused.code, 'UNAUTHENTICATED', 'the old token is refused for new calls');
    const ok = await client(addr, 'ingest', '--token', 'new', '--records', '4', '--batches', '2');
    assert.deepEqual(ok.acks, [0, 1], 'the new token is accepted');
    const added = await client(addr, 'ingest', '--token', 'new', '--table', T2, '--records', '3', '--batches', '2');
    assert.deepEqual(added.acks, [0, 1], 'the table added by the reload takes records');
    const big2 = await client(addr, 'status', '--token', 'new', '--case', 'oversize');
    assert.equal(big2.code, 'OK', `max_message_bytes 16M applies to new calls: ${JSON.stringify(big2)}`);

    // 2. an invalid config: refused with file:line, nothing changes (its token is not taken)
    const bad = conf({ tables: [T1, T2], token: 'third', extra: `log_file = "${logFile}";\nflush_interval_ms = "soon";` });
    fs.writeFileSync(server.conf, bad);
    const badLine = bad.split('\n').findIndex((l) => l.startsWith('flush_interval_ms = "soon"')) + 1;
    await hup(/reload refused/);
    const why = readLog(logFile).split('\n').find((l) => /reload refused/.test(l));
    assert.ok(why.includes(`${server.conf}:${badLine}:`), `file:line in ${why}`);
    assert.equal((await client(addr, 'status', '--token', 'third')).code, 'UNAUTHENTICATED');
    const still = await client(addr, 'ingest', '--token', 'new', '--records', '2', '--batches', '1');
    assert.deepEqual(still.acks, [0], 'the running token still works after a refused reload');

    // 3. logrotate: the file is renamed, SIGHUP reopens the configured name; a token list
    // (a rotation under way) accepts each of its tokens
    fs.writeFileSync(server.conf, conf({
      tables: [T1, T2], extra: `token = [ "new", "newer" ];\nlog_file = "${logFile}";\nschemas = ( { table = "${TYPED}"; columns = ( { name = "v"; type = "long"; } ); } );`,
    }));
    fs.renameSync(logFile, `${logFile}.1`);
    const oldSize = fs.statSync(`${logFile}.1`).size;
    await hup(/config reloaded/);
    assert.match(readLog(logFile), /SIGHUP: log reopened/, 'new lines go to the new file');
    assert.match(readLog(logFile), /reload: table main\.default\.typed declared and created/);
    fs.writeFileSync(path.join(dir, 'typed.json'), '{"v": 1}\n{"v": 2}\n');
    const typed = await client(addr, 'ingest', '--token', 'new', '--table', TYPED, '--json-file', path.join(dir, 'typed.json'), '--records', '2');
    assert.deepEqual(typed.acks, [0], 'the table declared by the reload takes records');
    const newer = await client(addr, 'ingest', '--token', 'newer', '--records', '2', '--batches', '1');
    assert.deepEqual(newer.acks, [0], 'either token of the list is accepted');

    // 4. a changed declaration is refused naming the table (the old one stays in force); a
    // restart-only setting keeps its value; then the declaration is removed: the table stays
    const typedConf = (decl, extra = '') => conf({ tables: [T1, T2], token: 'new', extra: `log_file = "${logFile}";\n${decl}\n${extra}` });
    fs.writeFileSync(server.conf, typedConf(`schemas = ( { table = "${TYPED}"; columns = ( { name = "v"; type = "long"; }, { name = "w"; type = "string"; } ); } );`,
      `wal_dir = "${path.join(dir, 'elsewhere')}";`));
    await hup(/config reloaded/);
    assert.match(readLog(logFile), /schemas: table main\.default\.typed: its declaration changed/);
    assert.match(readLog(logFile), /reload: wal_dir changes at restart/);
    assert.ok(!fs.existsSync(path.join(dir, 'elsewhere')), 'the WAL stays where it is');
    fs.writeFileSync(server.conf, typedConf(''));
    await hup(/config reloaded/);
    assert.match(readLog(logFile), /table main\.default\.typed is no longer declared/);
    assert.equal((await client(addr, 'status', '--token', 'newer')).code, 'UNAUTHENTICATED',
      'a token removed from the list is refused');
    const typed2 = await client(addr, 'ingest', '--token', 'new', '--table', TYPED, '--json-file', path.join(dir, 'typed.json'), '--records', '2');
    assert.deepEqual(typed2.acks, [0], 'a table whose declaration was removed is still written, as declared');

    // 5. more reloads with the stream running; the renamed file gets nothing more
    for (let i = 0; i < 3; i++) await hup(/config reloaded/);
    assert.equal(fs.statSync(`${logFile}.1`).size, oldSize, 'nothing more in the renamed file');
    ack = lastAck(steady);
    await waitFor(() => lastAck(steady) >= ack + 5, { timeoutMs: 20000, what: 'the stream acked after more reloads' });
    const mx = await server.metrics();
    assert.equal(mx('config_reloads_total', 'result="ok"'), 7);
    assert.equal(mx('config_reloads_total', 'result="error"'), 1);
    const loaded = mx('config_last_reload_success_timestamp_seconds');
    assert.ok(Math.abs(loaded - Date.now() / 1000) < 120, `last reload at ${loaded}`);
    // the checksum of the file in force: FNV-1a 64, as the server computes it
    let h = 0xcbf29ce484222325n;
    for (const byte of fs.readFileSync(server.conf)) h = ((h ^ BigInt(byte)) * 0x100000001b3n) & 0xffffffffffffffffn;
    assert.equal(mx('config_info', `checksum="${h.toString(16).padStart(16, '0')}"`), 1);
    const m = await (async () => {
      fs.writeFileSync(stop, '');
      await steady.exitPromise;
      return JSON.parse(steady.log.findLast((l) => l.includes('"code"')));
    })();
    assert.equal(m.code, 'OK', `the stream ran through every reload: ${JSON.stringify(m.details)}`);
    m.last_ack = m.acks.at(-1);
    assert.deepEqual(m.acks, m.acks.map((_, i) => i), 'one ack per batch, in order');
    assert.ok(m.last_ack >= 10, `acks: ${m.last_ack}`);

    const ex = await server.stop();
    assert.deepEqual(ex, { code: 0, signal: null }, readLog(logFile));
    const typedSnap = await verifyTable(server.tableDir(TYPED));
    const [t] = await query(`SELECT count(*) AS n, sum(v) AS s FROM ${duckFrom(typedSnap.files)}`);
    assert.deepEqual([Number(t.n), Number(t.s)], [4, 6], 'both typed batches decoded into v');
    const snap = await verifyTable(server.tableDir(T1));
    const [r] = await query(`SELECT count(*) AS n, count(DISTINCT seq) AS d, min(seq) AS lo, max(seq) AS hi
      FROM ${duckFrom(snap.files)} WHERE device_id = 'steady'`);
    const acked = (m.last_ack + 1) * 5;
    assert.deepEqual([Number(r.n), Number(r.d), Number(r.lo), Number(r.hi)], [acked, acked, 0, acked - 1],
      'every acked record of the running stream once');
  } finally {
    fs.writeFileSync(stop, '');
    await steady.kill();
    await server.kill();
  }
});

// A unix datagram socket standing in for systemd's NOTIFY_SOCKET: each datagram is printed
// as one line, its newlines as '|'.
const LISTENER = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print('bound', flush=True)
while True:
    print(s.recv(4096).decode().replace('\\n', '|'), flush=True)
`;

// Runs fn(server, got) with a server started with NOTIFY_SOCKET (and env) set to a listener;
// got() is what the server has sent so far, one datagram per entry.
async function withNotify(prefix, env, fn) {
  const dir = tmpDir(prefix);
  const sock = path.join(dir, 'notify.sock');
  const listener = new Proc('notify', PY, ['-c', LISTENER, sock]);
  let server;
  try {
    await waitFor(() => listener.exited || listener.log.includes('bound'), { timeoutMs: 10000, what: 'the notify socket' });
    assert.equal(listener.exited, null, listener.tail());
    server = await new Server({ dir, env: { NOTIFY_SOCKET: sock, ...env } }).start();
    await fn(server, () => listener.log.filter((l) => l !== 'bound'));
  } finally {
    if (server) await server.kill();
    await listener.kill();
  }
}

test('runnel-server: READY, WATCHDOG, RELOADING + READY on SIGHUP, STOPPING on SIGTERM to NOTIFY_SOCKET', { timeout: 120000 }, async () => {
  await withNotify('e2e-notify', { WATCHDOG_USEC: '400000' }, async (server, got) => {
    await waitFor(() => got().includes('READY=1'), { timeoutMs: 10000, what: 'READY=1' });
    await waitFor(() => got().filter((l) => l === 'WATCHDOG=1').length >= 3, { timeoutMs: 10000, what: 'three WATCHDOG=1' });
    const n = got().length;
    server.proc.child.kill('SIGHUP');
    await waitFor(() => got().slice(n).some((l) => l.startsWith('RELOADING=1|MONOTONIC_USEC=')) &&
      got().slice(n).findLastIndex((l) => l === 'READY=1') > got().slice(n).findIndex((l) => l.startsWith('RELOADING=1')),
    { timeoutMs: 10000, what: 'RELOADING=1 then READY=1' });
    const ex = await server.stop();
    assert.deepEqual(ex, { code: 0, signal: null }, server.proc.tail());
    await waitFor(() => got().includes('STOPPING=1'), { timeoutMs: 5000, what: 'STOPPING=1' });
  });
});

test('runnel-server: no WATCHDOG pings when WATCHDOG_PID names another process', { timeout: 60000 }, async () => {
  await withNotify('e2e-notify-pid', { WATCHDOG_USEC: '100000', WATCHDOG_PID: '1' }, async (server, got) => {
    await waitFor(() => got().includes('READY=1'), { timeoutMs: 10000, what: 'READY=1' });
    // three client round trips (each well over the 50 ms a wrong ping interval would be)
    for (let i = 0; i < 3; i++) {
      const r = await client(`127.0.0.1:${server.port}`, 'ingest', '--records', '1', '--batches', '1');
      assert.deepEqual(r.acks, [0]);
    }
    assert.ok(!got().includes('WATCHDOG=1'), got().join('\n'));
    assert.equal((await server.stop()).code, 0);
  });
});

test('runnel-server: --version and -V print the version and the front doors built in', async () => {
  for (const flag of ['--version', '-V']) {
    const r = await run(serverBin, [flag]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^runnel-server \d+\.\d+\.\d+ \(git ([0-9a-f]+|unknown)\)\n/);
    assert.match(r.stdout, /front doors: gRPC/);
  }
});
