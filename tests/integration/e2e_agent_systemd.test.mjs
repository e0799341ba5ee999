// runnel-agent speaks systemd's notify protocol (common/rn_sd.c, no libsystemd): with
// NOTIFY_SOCKET pointing at a datagram socket this test listens on (as systemd does for
// Type=notify), it sends READY=1 once running, RELOADING=1 (with MONOTONIC_USEC) then
// READY=1 around a SIGHUP reload, WATCHDOG=1 at least twice per WATCHDOG_USEC, and
// STOPPING=1 on SIGTERM before it drains and exits 0. Also `--version` / `-V`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Agent, Proc, Server, agentBin, run, tmpDir, waitFor } from './lib/harness.mjs';

const TABLE = 'main.default.telemetry';
const PY = '/usr/bin/python3';
// Binds a unix datagram socket and prints "<ms since start> <message with \n as |>" per
// datagram; "listening" once bound.
const LISTENER = `
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("listening", flush=True)
t0 = time.monotonic()
while True:
    d = s.recv(4096).decode()
    print("%d %s" % ((time.monotonic() - t0) * 1000, d.replace("\\n", "|")), flush=True)
`;

test('runnel-agent --version and -V: version, git revision, built-in plugins', async () => {
  for (const opt of ['--version', '-V']) {
    const r = await run(agentBin, [opt]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^runnel-agent \d+\.\d+\.\d+\S* \(git ([0-9a-f]+|unknown)\)\n/);
    assert.match(r.stdout, /\nplugins: .*\bfile\b/);
  }
});

test('runnel-agent: READY, WATCHDOG, RELOADING/READY on SIGHUP, STOPPING on SIGTERM', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-agent-sd');
  const sock = path.join(dir, 'notify.sock');
  const listener = new Proc('notify', PY, ['-c', LISTENER, sock]);
  const server = await new Server({ dir, tables: [TABLE] }).start();
  const log = path.join(dir, 'in.log');
  fs.writeFileSync(log, 'one\n');
  const WD_US = 600000;
  const agent = new Agent({
    dir, url: server.url, sources: [{ name: 'f', paths: [log] }],
    env: { NOTIFY_SOCKET: sock, WATCHDOG_USEC: String(WD_US) },
  });
  const msgs = () => listener.log.filter((l) => l !== 'listening').map((l) => {
    const i = l.indexOf(' ');
    return { ms: Number(l.slice(0, i)), m: l.slice(i + 1) };
  });
  const idx = (re, from = 0) => msgs().findIndex((x, i) => i >= from && re.test(x.m));
  try {
    await waitFor(() => listener.log.includes('listening'), { what: 'the notify socket' });
    await agent.start();
    await waitFor(() => idx(/^READY=1/) >= 0, { what: 'READY=1' });
    // the watchdog: pings at least twice per interval
    await waitFor(() => msgs().filter((x) => x.m === 'WATCHDOG=1').length >= 6, { what: '6 watchdog pings' });
    const wd = msgs().filter((x) => x.m === 'WATCHDOG=1').map((x) => x.ms);
    for (let i = 1; i < wd.length; i++)
      assert.ok(wd[i] - wd[i - 1] <= WD_US / 2000, `watchdog gap ${wd[i] - wd[i - 1]} ms > half the interval`);
    const ready = idx(/^READY=1/);
    agent.kill('SIGHUP');
    await waitFor(() => idx(/^RELOADING=1\|MONOTONIC_USEC=\d+$/, ready + 1) > ready, { what: 'RELOADING=1' });
    const rel = idx(/^RELOADING=1/);
    await waitFor(() => idx(/^READY=1/, rel + 1) > rel, { what: 'READY=1 after the reload' });
    assert.equal(idx(/^STOPPING=1/), -1, 'no STOPPING before SIGTERM');
    const ex = await agent.stop();
    assert.deepEqual(ex, { code: 0, signal: null }, agent.proc.tail());
    await waitFor(() => idx(/^STOPPING=1/) > rel, { what: 'STOPPING=1' });
  } finally {
    await agent.kill();
    await server.kill();
    await listener.kill();
  }
});

test('runnel-agent without NOTIFY_SOCKET and WATCHDOG_USEC set: runs as before', { timeout: 60000 }, async () => {
  const dir = tmpDir('e2e-agent-nosd');
  const server = await new Server({ dir, tables: [TABLE] }).start();
  const log = path.join(dir, 'in.log');
  fs.writeFileSync(log, 'one\ntwo\n');
  const agent = new Agent({ dir, url: server.url, sources: [{ name: 'f', paths: [log] }], env: { WATCHDOG_USEC: '100000' } });
  try {
    await agent.start();
    await waitFor(() => agent.status()?.streams?.[0]?.acked >= 0, { what: 'the chunk acked' });
    assert.deepEqual(await agent.stop(), { code: 0, signal: null }, agent.proc.tail());
  } finally {
    await agent.kill();
    await server.kill();
  }
});
