// Signals and start-up: SIGHUP (which asks a daemon to reload) must not kill either program:
// the server reloads its config (e2e_server_reload.test.mjs has the details) and goes on
// serving, the agent goes on delivering, and both still drain on SIGTERM. A listen address in IPv6 brackets
// binds and serves.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, Proc, Server, run, serverBin, serverConfig, tmpDir, waitFor } from './lib/harness.mjs';
import { replayLog } from './lib/table.mjs';

const PY = '/usr/bin/python3';
const CLIENT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'zerobus_client.py');
const TABLE = 'main.default.telemetry';

async function client(addr, ...args) {
  const r = await run(PY, [CLIENT, addr, ...args]);
  assert.equal(r.code, 0, `client failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

const rows = (server) => replayLog(server.tableDir(TABLE)).live.reduce((n, f) => n + f.numRecords, 0);

test('runnel-server: SIGHUP reloads, the server keeps serving, SIGTERM drains', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-sighup-server');
  const server = await new Server({ dir, tables: [TABLE] }).start();
  try {
    const before = await client(`127.0.0.1:${server.port}`, 'ingest', '--records', '5', '--batches', '2');
    assert.deepEqual(before.acks, [0, 1]);
    server.proc.child.kill('SIGHUP');
    await waitFor(() => server.proc.exited || server.proc.log.some((l) => /config reloaded/.test(l)),
      { timeoutMs: 10000, what: 'the reload log line' });
    assert.equal(server.proc.exited, null, `server died on SIGHUP: ${server.proc.tail()}`);
    const after = await client(`127.0.0.1:${server.port}`, 'ingest', '--records', '5', '--batches', '2');
    assert.deepEqual(after.acks, [0, 1], 'still serving after SIGHUP');
    await waitFor(() => rows(server) >= 20, { timeoutMs: 20000, what: '20 rows' });
    const ex = await server.stop();
    assert.deepEqual(ex, { code: 0, signal: null }, server.proc.tail());
    assert.ok(server.proc.log.some((l) => /draining/.test(l)), 'SIGTERM still drains');
  } finally {
    await server.kill();
  }
});

test('runnel-agent: SIGHUP does not stop delivery', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-sighup-agent');
  const server = await new Server({ dir, tables: [TABLE] }).start();
  const log = path.join(dir, 'in.log');
  fs.writeFileSync(log, Array.from({ length: 5 }, (_, i) => `line ${i}\n`).join(''));
  const agent = await new Agent({ dir, url: server.url, sources: [{ name: 'f', paths: [log] }] }).start();
  try {
    await waitFor(() => rows(server) >= 5, { timeoutMs: 30000, what: '5 rows' });
    agent.proc.child.kill('SIGHUP');
    fs.appendFileSync(log, Array.from({ length: 5 }, (_, i) => `line ${5 + i}\n`).join(''));
    await waitFor(() => agent.proc.exited || rows(server) >= 10, { timeoutMs: 30000, what: '10 rows' });
    assert.equal(agent.proc.exited, null, `agent died on SIGHUP: ${agent.proc.tail()}`);
    assert.equal(rows(server), 10);
    const ex = await agent.stop();
    assert.deepEqual(ex, { code: 0, signal: null }, agent.proc.tail());
  } finally {
    await agent.kill();
    await server.kill();
  }
});

test('runnel-server: listen = "[::1]:0" binds IPv6 loopback and serves', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-listen-v6');
  const conf = path.join(dir, 'server.conf');
  fs.writeFileSync(conf, serverConfig({ listen: '[::1]:0', dataRoot: path.join(dir, 'data'), tables: [TABLE] }));
  const proc = new Proc('server-v6', serverBin, ['-c', conf]);
  try {
    const line = await waitFor(() => {
      if (proc.exited) throw new Error(`server exited: ${proc.tail()}`);
      return proc.log.find((l) => /listening on \[::1\]:\d+/.test(l));
    }, { timeoutMs: 20000, what: 'listening on [::1]' });
    const port = Number(line.match(/listening on \[::1\]:(\d+)/)[1]);
    assert.ok(port > 0);
    const res = await client(`[::1]:${port}`, 'ingest', '--records', '3', '--batches', '2');
    assert.deepEqual(res.acks, [0, 1]);
  } finally {
    await proc.kill();
  }
});
