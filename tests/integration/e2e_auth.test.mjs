// Server authentication and file modes (issue 12): a 2,000-character bearer token is accepted
// (from the Python client and from runnel-agent)
// and one that differs in its last byte (or is a prefix, or longer) is refused; a token over
// 4096 bytes is refused by `runnel-server -n` naming its file and line; the scheme `Bearer`
// matches in any case and an empty or missing token is UNAUTHENTICATED; a negative offset on
// a new stream is INVALID_ARGUMENT with a message (not an OK call with no ack); the "bad
// client magic" log line names the peer; every file the server writes under data_root and the
// WAL is not readable by others, and every directory it creates is 0750.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Agent, Server, run, serverBin, serverConfig, tmpDir, waitFor, zbClient as client } from './lib/harness.mjs';

const TABLE = 'main.default.telemetry';

// 2,000 characters that are not all alike, so a truncated compare cannot pass by accident
const LONG = Array.from({ length: 2000 }, (_, i) => 'abcdefghijklmnopqrstuvwxyz0123456789'[(i * 7) % 36]).join('');

test('a 2,000-character token is accepted; a near miss, a prefix or a longer one is refused', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-auth-long');
  const server = await new Server({ dir, tables: [TABLE], token: LONG }).start();
  try {
    const ok = await client(server, 'ingest', '--token', LONG, '--records', '2', '--batches', '2');
    assert.deepEqual(ok.acks, [0, 1]);
    const last = LONG.slice(0, -1) + (LONG.at(-1) === 'a' ? 'b' : 'a');
    for (const [what, tok] of [['last byte differs', last], ['prefix', LONG.slice(0, 1500)],
      ['longer', LONG + 'x'], ['much longer', LONG.repeat(3)], ['first byte differs', 'X' + LONG.slice(1)]]) {
      const r = await client(server, 'status', '--token', tok);
      assert.equal(r.code, 'UNAUTHENTICATED', `${what}: ${JSON.stringify(r)}`);
    }
  } finally {
    await server.kill();
  }
});

test('runnel-agent delivers with a 2,000-character token (its header is not cut short)', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-auth-agent');
  const log = path.join(dir, 'in.log');
  fs.writeFileSync(log, Array.from({ length: 20 }, (_, i) => `line ${i}`).join('\n') + '\n');
  const server = await new Server({ dir, tables: [TABLE], token: LONG }).start();
  const agent = new Agent({ dir, url: server.url, token: LONG, sources: [{ name: 'in', paths: [log] }] });
  try {
    await agent.start();
    await waitFor(() => {
      const st = agent.status()?.streams?.[0];
      return st && st.records === 20 && st.next_offset > 0 && st.acked === st.next_offset - 1;
    }, { what: '20 records, all acked' });
  } finally {
    await agent.stop();
    await server.kill();
  }
});

test('runnel-server -n refuses a token over 4096 bytes with file and line, takes 4096', { timeout: 60000 }, async () => {
  const dir = tmpDir('e2e-auth-conf');
  const conf = (tok) => serverConfig({ dataRoot: path.join(dir, 'data'), tables: [TABLE] }) + `token = [ "short", "${tok}" ];\n`;
  const okFile = path.join(dir, 'ok.conf');
  fs.writeFileSync(okFile, conf('t'.repeat(4096)));
  const ok = await run(serverBin, ['-n', '-c', okFile]);
  assert.equal(ok.code, 0, ok.stderr);
  const badFile = path.join(dir, 'long.conf');
  fs.writeFileSync(badFile, conf('t'.repeat(4097)));
  const bad = await run(serverBin, ['-n', '-c', badFile]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /long\.conf:\d+: token\[1\] is longer than 4096 bytes/);
});

test('the scheme Bearer matches in any case; empty or missing tokens are UNAUTHENTICATED', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-auth-scheme');
  const server = await new Server({ dir, tables: [TABLE], token: 's3cret' }).start();
  try {
    for (const scheme of ['Bearer', 'bearer', 'BEARER', 'bEaReR']) {
      const r = await client(server, 'ingest', '--token', 's3cret', '--scheme', scheme, '--records', '1', '--batches', '1');
      assert.deepEqual(r.acks, [0], `${scheme}: ${JSON.stringify(r)}`);
    }
    for (const args of [['--case', 'empty-token'], ['--case', 'empty-auth'], [], ['--token', 's3cret', '--scheme', 'Basic'],
      ['--token', 's3cret', '--scheme', 'Bearers']]) {
      const r = await client(server, 'status', ...args);
      assert.equal(r.code, 'UNAUTHENTICATED', `${args.join(' ')}: ${JSON.stringify(r)}`);
    }
  } finally {
    await server.kill();
  }
});

test('a negative offset on a new stream is INVALID_ARGUMENT with a message', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-auth-negoff');
  const server = await new Server({ dir, tables: [TABLE] }).start();
  try {
    const r = await client(server, 'status', '--case', 'negative-offset');
    assert.equal(r.code, 'INVALID_ARGUMENT', JSON.stringify(r));
    assert.match(r.details, /offset_id must not be negative/);
    const ok = await client(server, 'ingest', '--records', '1', '--batches', '1');
    assert.deepEqual(ok.acks, [0]);
  } finally {
    await server.kill();
  }
});

test('the bad client magic log line names the peer address', { timeout: 60000 }, async () => {
  const dir = tmpDir('e2e-auth-magic');
  const server = await new Server({ dir, tables: [TABLE] }).start();
  try {
    const sock = net.connect(server.port, '127.0.0.1');
    await new Promise((resolve, reject) => sock.once('connect', resolve).once('error', reject));
    const port = sock.localPort;
    sock.on('error', () => {});
    sock.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    const line = await waitFor(() => server.proc.log.find((l) => /bad client magic/i.test(l)), { what: 'bad client magic line' });
    assert.match(line, new RegExp(`127\\.0\\.0\\.1:${port}\\b`), line);
    sock.destroy();
  } finally {
    await server.kill();
  }
});

// Every file under root not readable by others (mode & 0o007 == 0), every directory 0750.
function walk(root, out = []) {
  for (const e of fs.readdirSync(root, { withFileTypes: true })) {
    const p = path.join(root, e.name);
    out.push({ p, dir: e.isDirectory(), mode: fs.lstatSync(p).mode & 0o777 });
    if (e.isDirectory()) walk(p, out);
  }
  return out;
}

test('files the server writes are 0640 at most and its directories 0750', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-auth-modes');
  const walDir = path.join(dir, 'wal');
  const server = new Server({ dir, tables: [TABLE], flushMs: 100, extra: `wal_dir = "${walDir}";` });
  fs.rmdirSync(server.dataRoot); // the server creates it
  // whatever umask the server is started with, it keeps to its own modes
  await server.start();
  try {
    const r = await client(server, 'ingest', '--records', '5', '--batches', '3');
    assert.deepEqual(r.acks, [0, 1, 2]);
    await waitFor(() => walk(server.tableDir(TABLE)).some((e) => e.p.endsWith('.parquet')), { what: 'a Parquet file' });
    const all = [{ p: server.dataRoot, dir: true, mode: fs.statSync(server.dataRoot).mode & 0o777 },
      { p: walDir, dir: true, mode: fs.statSync(walDir).mode & 0o777 },
      ...walk(server.dataRoot), ...walk(walDir)];
    assert.ok(all.filter((e) => !e.dir).length >= 4, JSON.stringify(all));
    for (const e of all) {
      if (e.dir) assert.equal(e.mode, 0o750, `${e.p}: ${e.mode.toString(8)}`);
      else assert.equal(e.mode & 0o137, 0, `${e.p}: ${e.mode.toString(8)}`);
    }
  } finally {
    await server.kill();
  }
});
