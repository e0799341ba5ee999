// HAProxy (Debian's 2.6) in front of several runnel-servers for the end-to-end tests, as a
// fleet runs them: HTTP/2 on both sides (the frontend `bind ... proto h2`, every backend
// `server ... proto h2`), so each gRPC call (a Zerobus stream) or agent request is balanced
// on its own, round robin, and a bidi stream lives as long as it needs (long timeouts).
// Health checks: GET /healthz on a backend's metrics port when given, else a TCP connect.
//
//   const lb = await new Haproxy({ dir, backends: [{ port: s0.port, metricsPort: s0.metricsPort }, ...] }).start();
//   lb.port, lb.url            // where clients connect (h2c)
//   await lb.waitUp(2)          // until 2 backends pass their checks
//   await lb.stats()            // [{name, status, sessions}] per backend server
//   await lb.reload({ backends })  // new config, same port, SIGUSR2 to the master
//   await lb.stop()
//
// It runs in master-worker mode in the foreground (-W -db): the process the harness holds is
// the master; its admin socket (DIR/haproxy.sock) answers `show stat`.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Proc, freePort, run, waitFor } from './harness.mjs';

export const haproxyBin = '/usr/sbin/haproxy';

// The config text. backends: [{port, metricsPort?, host?}]; port: the frontend's port.
export function haproxyConfig({ port, backends, sock, checkMs = 500 }) {
  const servers = backends.map((b, i) => {
    const check = b.metricsPort ? `check port ${b.metricsPort} check-proto h1` : 'check';
    return `  server s${i} ${b.host || '127.0.0.1'}:${b.port} proto h2 ${check} inter ${checkMs} fall 2 rise 1`;
  });
  const httpchk = backends.some((b) => b.metricsPort)
    ? ['  option httpchk', '  http-check send meth GET uri /healthz', '  http-check expect status 200']
    : [];
  return [
    'global',
    '  log stderr format raw local0 info',
    `  stats socket ${sock} mode 600 level admin expose-fd listeners`,
    '  maxconn 4096',
    'defaults',
    '  mode http',
    '  log global',
    '  option httplog',
    '  timeout connect 5s',
    // a Zerobus stream or an agent connection can be quiet for long: long inactivity timeouts
    '  timeout client 10m',
    '  timeout server 10m',
    '  timeout tunnel 1h',
    'frontend zerobus',
    `  bind 127.0.0.1:${port} proto h2`,
    '  default_backend runnel',
    'backend runnel',
    '  balance roundrobin',
    ...httpchk,
    ...servers,
    '',
  ].join('\n');
}

export class Haproxy {
  // dir: where the config, socket and nothing else go; backends: see haproxyConfig; port: the
  // frontend's port (default a free one, kept across reloads)
  constructor({ dir, backends, port, checkMs }) {
    this.dir = dir;
    this.backends = backends;
    this.port = port;
    this.checkMs = checkMs;
    this.cfg = path.join(dir, 'haproxy.cfg');
    this.sock = path.join(dir, 'haproxy.sock');
    this.reloads = 0;
  }
  get url() {
    return `http://127.0.0.1:${this.port}`;
  }
  writeConfig() {
    fs.writeFileSync(this.cfg, haproxyConfig({ port: this.port, backends: this.backends, sock: this.sock, checkMs: this.checkMs }));
  }
  // Starts haproxy; resolves once its frontend accepts connections and the admin socket
  // answers (backends may still be down: waitUp).
  async start() {
    if (!fs.existsSync(haproxyBin)) throw new Error(`${haproxyBin} not installed (make deps-s3)`);
    if (!this.port) this.port = await freePort();
    this.writeConfig();
    const check = await run(haproxyBin, ['-c', '-q', '-f', this.cfg]);
    if (check.code !== 0) throw new Error(`haproxy -c refused the config:\n${check.stderr}${check.stdout}\n${fs.readFileSync(this.cfg, 'utf8')}`);
    this.proc = new Proc('haproxy', haproxyBin, ['-W', '-db', '-f', this.cfg]);
    await waitFor(async () => {
      if (this.proc.exited) throw new Error(`haproxy exited: ${JSON.stringify(this.proc.exited)}\n${this.proc.tail()}`);
      return (await this.connects()) && (await this.stats().then(() => true, () => false));
    }, { timeoutMs: 20000, what: 'haproxy listening' });
    return this;
  }
  connects() {
    return new Promise((resolve) => {
      const s = net.connect(this.port, '127.0.0.1');
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
  }
  // One admin socket command; resolves its answer.
  command(cmd) {
    return new Promise((resolve, reject) => {
      let out = '';
      const s = net.connect(this.sock);
      s.setTimeout(5000, () => s.destroy(new Error('admin socket timeout')));
      s.on('connect', () => s.write(`${cmd}\n`));
      s.on('data', (d) => (out += d));
      s.on('end', () => resolve(out));
      s.on('error', reject);
    });
  }
  // Each backend server's row of `show stat`: {name, status (UP/DOWN/...), sessions (stot),
  // check (last check status)}.
  async stats() {
    const text = await this.command('show stat');
    const lines = text.trim().split('\n');
    const head = lines[0].replace(/^# /, '').split(',');
    const col = (row, name) => row[head.indexOf(name)];
    return lines.slice(1).map((l) => l.split(',')).filter((r) => col(r, 'pxname') === 'runnel' && /^s\d+$/.test(col(r, 'svname')))
      .map((r) => ({ name: col(r, 'svname'), status: col(r, 'status'), sessions: Number(col(r, 'stot')), check: col(r, 'check_status') }));
  }
  // Until `n` backend servers are UP (their health checks pass).
  waitUp(n = this.backends.length, timeoutMs = 20000) {
    return waitFor(async () => (await this.stats()).filter((s) => s.status === 'UP').length >= n,
      { timeoutMs, what: `${n} haproxy backends UP` });
  }
  // A new config (backends, when given) on the same port: SIGUSR2 to the master, which starts
  // a new worker with it (the old one finishes its connections). Resolves once the admin socket
  // lists the new backends.
  async reload({ backends } = {}) {
    if (backends) this.backends = backends;
    this.writeConfig();
    const want = this.backends.map((_, i) => `s${i}`).join(',');
    const from = this.proc.lines;
    this.proc.child.kill('SIGUSR2');
    this.reloads++;
    await waitFor(async () => {
      if (this.proc.exited) throw new Error(`haproxy exited on reload\n${this.proc.tail()}`);
      // the master logs the new worker; its admin socket then answers with the new set
      return this.proc.since(from).some((l) => /Loading success|Reexecuting Master/i.test(l)) &&
        (await this.stats()).map((s) => s.name).join(',') === want;
    }, { timeoutMs: 20000, what: 'haproxy reloaded' });
  }
  stop() {
    return this.proc ? this.proc.stop() : undefined;
  }
}
