// Several listen addresses (issue 12): `listen` and `metrics_listen` take a list (or a
// comma-separated string). A server on 127.0.0.1 and [::1] with port 0 gets one port for both
// (the log line lists every address) and serves gRPC (python3-grpcio) and /metrics on each;
// a port taken on one address fails the start naming it; -n refuses a list holding one
// non-loopback cleartext address and names it; -l takes a list too. The IPv6 half is skipped,
// and says so, only where ::1 cannot be bound.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Proc, readMetrics, repoRoot, run, serverBin, serverConfig, tmpDir, waitFor } from './lib/harness.mjs';

const TABLE = 'main.default.telemetry';
const CLIENT = path.join(repoRoot, 'tests', 'integration', 'zerobus_client.py');

const has6 = () => new Promise((resolve) => {
  const s = net.createServer();
  s.once('error', () => resolve(false));
  s.listen(0, '::1', () => s.close(() => resolve(true)));
});

async function ingest(addr, batches) {
  const r = await run('/usr/bin/python3', [CLIENT, addr, 'ingest', '--records', '2', '--batches', String(batches)]);
  assert.equal(r.code, 0, `${addr}: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

async function startServer(dir, listen, extra = '') {
  const conf = path.join(dir, 'server.conf');
  fs.mkdirSync(path.join(dir, 'data'), { recursive: true });
  fs.writeFileSync(conf, serverConfig({ listen: 'X', dataRoot: path.join(dir, 'data'), tables: [TABLE], extra })
    .replace('listen = "X";', `listen = ${listen};`));
  return new Proc('server', serverBin, ['-c', conf]);
}

test('listen on 127.0.0.1 and [::1] at once: one port, gRPC and /metrics served on both', { timeout: 120000 }, async (t) => {
  const v6 = await has6();
  if (!v6) t.diagnostic('this machine has no ::1 (binding [::1]:0 failed): only the IPv4 half runs');
  const dir = tmpDir('e2e-listen-both');
  const list = v6 ? '["127.0.0.1:0", "[::1]:0"]' : '["127.0.0.1:0"]';
  const proc = await startServer(dir, list, `metrics_listen = "${v6 ? '127.0.0.1:0, [::1]:0' : '127.0.0.1:0'}";`);
  try {
    const line = await waitFor(() => {
      if (proc.exited) throw new Error(proc.tail());
      return proc.log.find((l) => /listening on 127\.0\.0\.1:\d+/.test(l));
    }, { what: 'the listening line' });
    const port = Number(line.match(/listening on 127\.0\.0\.1:(\d+)/)[1]);
    const mline = proc.log.find((l) => /metrics on 127\.0\.0\.1:\d+/.test(l));
    const mport = Number(mline.match(/metrics on 127\.0\.0\.1:(\d+)/)[1]);
    if (v6) {
      // port 0 on both: the port the first got, on the second too; the line lists both
      assert.match(line, new RegExp(`listening on 127\\.0\\.0\\.1:${port}, \\[::1\\]:${port} `));
      assert.match(mline, new RegExp(`metrics on 127\\.0\\.0\\.1:${mport}, \\[::1\\]:${mport} `));
    }
    const a = await ingest(`127.0.0.1:${port}`, 2);
    assert.deepEqual(a.acks, [0, 1]);
    let m = await readMetrics(`http://127.0.0.1:${mport}`);
    assert.match(m.text, /runnel_server_/);
    if (v6) {
      const b = await ingest(`[::1]:${port}`, 3);
      assert.deepEqual(b.acks, [0, 1, 2]);
      m = await readMetrics(`http://[::1]:${mport}`);
      // both connections were accepted by one front: its counter saw both
      const accepted = m('connections_accepted_total');
      assert.ok(accepted >= 2, `connections accepted ${accepted}\n${m.text.slice(0, 400)}`);
    }
  } finally {
    await proc.stop();
  }
});

test('a port taken on one of the addresses fails the start and names it', { timeout: 60000 }, async () => {
  const blocker = net.createServer();
  const port = await new Promise((resolve) => blocker.listen(0, '127.0.0.2', () => resolve(blocker.address().port)));
  const dir = tmpDir('e2e-listen-taken');
  try {
    const proc = await startServer(dir, `["127.0.0.1:${port}", "127.0.0.2:${port}"]`);
    const r = await proc.exitPromise;
    assert.notEqual(r.code ?? r, 0);
    assert.ok(proc.log.some((l) => l.includes(`cannot listen on 127.0.0.2:${port}: Address already in use`)), proc.tail());
    // and 127.0.0.1 was let go: a socket can bind it now
    await new Promise((resolve, reject) => {
      const s = net.createServer();
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => s.close(resolve));
    });
  } finally {
    blocker.close();
  }
});

test('-n refuses a list with a cleartext non-loopback address; -l takes a list', { timeout: 60000 }, async () => {
  const dir = tmpDir('e2e-listen-check');
  const check = async (text, ...args) => {
    const f = path.join(dir, 'c.conf');
    fs.writeFileSync(f, `data_root = "${path.join(dir, 'data')}";\n${text}\n`);
    return run(serverBin, ['-n', '-c', f, ...args]);
  };
  let r = await check('listen = ["127.0.0.1:7700", "[::1]:7700"];');
  assert.equal(r.code, 0, r.stderr);
  r = await check('listen = "127.0.0.1:7700, [::1]:7700";');
  assert.equal(r.code, 0, r.stderr);
  r = await check('listen = ["127.0.0.1:7700", "0.0.0.0:7700"];');
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /listen = "127\.0\.0\.1:7700, 0\.0\.0\.0:7700": 0\.0\.0\.0:7700 is not a loopback address and would serve cleartext/);
  r = await check('listen = "[::1]:7700,[::]:7700";');
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /\[::\]:7700 is not a loopback address/);
  r = await check('metrics_listen = ["127.0.0.1:9100", "[::]:9100"];');
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /metrics_listen = .*\[::\]:9100 is not a loopback/);
  r = await check('listen = ["0.0.0.0:7700", "[::]:7700"]; allow_cleartext = true;');
  assert.equal(r.code, 0, r.stderr);
  // malformed lists name their line and the reason
  r = await check('listen = ["127.0.0.1:7700", "127.0.0.1:7700"];');
  assert.match(r.stderr, /c\.conf:2: listen = .*the same address is given twice/);
  r = await check('listen = "127.0.0.1:7700,";');
  assert.match(r.stderr, /empty address in the list/);
  // -l: a list, checked the same way
  r = await check('', '-l', '127.0.0.1:0,[::1]:0');
  assert.equal(r.code, 0, r.stderr);
  r = await check('', '-l', '127.0.0.1:0,0.0.0.0:0');
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /0\.0\.0\.0:0 is not a loopback address/);
});
