// Test harness for the end-to-end suite: starts the real runnel-server and runnel-agent on
// loopback in a private temp directory, waits on their own signals (the server's listening
// line, the agent's status socket), and tears everything down. No mocks: every process here
// is the real program built by CMake.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const buildDir = process.env.RN_BUILD_DIR || path.join(repoRoot, 'build');
export const serverBin = path.join(buildDir, 'server', 'runnel-server');
// the same server with test hooks (server.c RN_FAULT_HOOKS), built with the tests
export const faultServerBin = path.join(buildDir, 'server', 'runnel-server-faults');
export const agentBin = path.join(buildDir, 'agent', 'runnel-agent');
// the table CLI (server/cli/), built next to runnel-server; `runnel-server table` runs it
export const tableBin = path.join(buildDir, 'server', 'runnel-table');

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function tmpDir(prefix) {
  const base = process.env.RN_TEST_TMP || os.tmpdir();
  fs.mkdirSync(base, { recursive: true });
  return fs.mkdtempSync(path.join(base, `${prefix}-`));
}

// Polls fn() until it returns a truthy value; throws with `what` after timeoutMs.
export async function waitFor(fn, { timeoutMs = 30000, intervalMs = 50, what = 'condition' } = {}) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what} (last: ${last})`);
    await sleep(intervalMs);
  }
}

// A child process with its stderr kept (tail) for failure messages.
export class Proc {
  constructor(name, bin, args, opts = {}) {
    this.name = name;
    this.log = []; // the last 400 lines
    this.lines = 0; // lines seen in all: log[i] is line number lines - log.length + i
    this.exited = null;
    this.child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    const keep = (d) => {
      for (const line of d.toString().split('\n')) {
        if (!line) continue;
        this.log.push(line);
        this.lines++;
        if (this.log.length > 400) this.log.shift();
        if (process.env.RN_TEST_VERBOSE) process.stderr.write(`[${name}] ${line}\n`);
      }
    };
    this.child.stdout.on('data', keep);
    this.child.stderr.on('data', keep);
    this.exitPromise = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        this.exited = { code, signal };
        resolve(this.exited);
      });
    });
  }
  // The lines kept that came after line number `from` (a value of `lines` read earlier).
  since(from) {
    return this.log.slice(Math.max(0, this.log.length - (this.lines - from)));
  }
  tail(n = 40) {
    return this.log.slice(-n).join('\n');
  }
  kill(sig = 'SIGKILL') {
    if (!this.exited) this.child.kill(sig);
    return this.exitPromise;
  }
  // Graceful stop; escalates to SIGKILL after timeoutMs.
  async stop(timeoutMs = 10000) {
    if (this.exited) return this.exited;
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    const r = await this.exitPromise;
    clearTimeout(t);
    return r;
  }
}

// Server config text (libconfig). Tables listed are created at start; metrics: a cleartext
// metrics_listen port on loopback (Server.metricsPort, Server.metric). drain: drain_timeout,
// "0" (SIGTERM stops at once, as before drains) unless a test drains; null = the default.
export function serverConfig({ listen = '127.0.0.1:0', dataRoot, tables = [], token, flushMs = 200, metrics = false, drain = '0', extra = '' }) {
  return [
    `listen = "${listen}";`,
    drain === null ? '' : `drain_timeout = "${drain}";`,
    metrics ? 'metrics_listen = "127.0.0.1:0";' : '',
    `data_root = "${dataRoot}";`,
    `flush_interval_ms = ${flushMs};`,
    token ? `token = "${token}";` : '',
    `tables = [ ${tables.map((t) => `"${t}"`).join(', ')} ];`,
    extra,
  ].join('\n') + '\n';
}

// The samples of one /metrics text (read by Server.metrics(), or by any client, e.g. curl
// over TLS): get(name, labels) is the value of runnel_server_<name>{<labels>} (undefined if
// there is none), e.g. get('connections_closed_total', 'reason="idle"'); get.must(name,
// labels) the same but throws if there is none; get.text is the text.
export function metricsOf(text) {
  const esc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const get = (name, labels = '') => {
    const m = text.match(new RegExp(`^runnel_server_${esc(name)}${labels ? `\\{${esc(labels)}\\}` : ''} (\\S+)$`, 'm'));
    return m ? Number(m[1]) : undefined;
  };
  get.must = (name, labels = '') => {
    const v = get(name, labels);
    if (v === undefined) throw new Error(`no runnel_server_${name}${labels ? `{${labels}}` : ''} in /metrics`);
    return v;
  };
  get.text = text;
  return get;
}

// One read of `base`/metrics over cleartext HTTP (base: e.g. http://[::1]:9100): metricsOf.
export async function readMetrics(base) {
  return metricsOf(await (await fetch(`${base}/metrics`)).text());
}

export class Server {
  // bin: another server program (faultServerBin); env: extra environment for it; metrics:
  // a metrics_listen port (serverConfig)
  constructor({ dir, tables = ['main.default.telemetry'], port = 0, token, flushMs = 200, metrics = false, drain = '0', extra = '', bin = serverBin, env }) {
    this.dir = dir;
    this.bin = bin;
    this.env = env;
    this.dataRoot = path.join(dir, 'data');
    fs.mkdirSync(this.dataRoot, { recursive: true });
    this.conf = path.join(dir, 'server.conf');
    this.tables = tables;
    this.port = port;
    this.token = token;
    this.flushMs = flushMs;
    this.withMetrics = metrics;
    this.extra = extra;
    this.drain = drain;
    this.starts = 0;
  }
  tableDir(name = this.tables[0]) {
    return path.join(this.dataRoot, ...name.split('.'));
  }
  async start() {
    fs.writeFileSync(this.conf, serverConfig({
      listen: `127.0.0.1:${this.port}`, dataRoot: this.dataRoot, tables: this.tables,
      token: this.token, flushMs: this.flushMs, metrics: this.withMetrics, drain: this.drain, extra: this.extra,
    }));
    this.proc = new Proc(`server${this.starts++}`, this.bin, ['-c', this.conf],
      this.env ? { env: { ...process.env, ...this.env } } : {});
    const line = await waitFor(() => {
      if (this.proc.exited) throw new Error(`server exited: ${JSON.stringify(this.proc.exited)}\n${this.proc.tail()}`);
      return this.proc.log.find((l) => /listening on 127\.0\.0\.1:\d+/.test(l));
    }, { timeoutMs: 20000, what: 'server listening line' }).catch((e) => {
      throw new Error(`${e.message}\n${this.proc.tail()}`);
    });
    this.port = Number(line.match(/listening on 127\.0\.0\.1:(\d+)/)[1]);
    // the metrics_listen port (HTTP/1.1: /metrics, REST), logged before the listening line
    const m = this.proc.log.map((l) => l.match(/metrics on 127\.0\.0\.1:(\d+)/)).find(Boolean);
    this.metricsPort = m ? Number(m[1]) : undefined;
    return this;
  }
  // The base URL of the metrics_listen port (cleartext): /metrics, /healthz, REST.
  get metricsUrl() {
    return `http://127.0.0.1:${this.metricsPort}`;
  }
  // One read of /metrics (metricsOf: get(name, labels), and get.text).
  async metrics() {
    return readMetrics(this.metricsUrl);
  }
  // One sample, read now (metrics()).
  async metric(name, labels = '') {
    return (await this.metrics())(name, labels);
  }
  get url() {
    return `http://127.0.0.1:${this.port}`;
  }
  kill(sig) {
    return this.proc ? this.proc.kill(sig) : undefined;
  }
  stop() {
    return this.proc ? this.proc.stop() : undefined;
  }
}

// Agent config text (libconfig). Each entry of `sources` is a file source ({name, paths,
// table?, readFrom?}) or, with `conf`, any plugin: its libconfig settings as text
// ({conf: 'type = "mqtt"; name = "m"; table = "..."; topics = ["a/#"];'}).
export function agentConfig({ dataDir, url, token, deviceId = 'test-device', sources, sync = 'normal', lingerMs = 100, bufferMaxBytes, bufferExtra = '', agentExtra = '', chunkExtra = '', uplinkExtra = '', extra = '' }) {
  const src = sources.map((s) => s.conf ? `  { ${s.conf} }` : `  {
    type = "file";
    name = "${s.name}";
    table = "${s.table || 'main.default.telemetry'}";
    paths = [ ${s.paths.map((p) => `"${p}"`).join(', ')} ];
    read_from = "${s.readFrom || 'beginning'}";
  }`).join(',\n');
  return `agent: {
  device_id = "${deviceId}";
  data_dir = "${dataDir}";
  ${agentExtra}
};
buffer: {
  sync = "${sync}";
  ${bufferMaxBytes ? `max_bytes = ${bufferMaxBytes};` : ''}
  ${bufferExtra}
};
uplink: {
  url = "${url}";
  ${token ? `token = "${token}";` : ''}
  backoff_min_ms = 50;
  backoff_max_ms = 1000;
  ${uplinkExtra}
};
chunk: {
  linger_ms = ${lingerMs};
  ${chunkExtra}
};
sources = (
${src}
);
${extra}
`;
}

export class Agent {
  // env: extra environment for the agent process (e.g. LD_PRELOAD of libfaketime)
  constructor({ dir, env, ...cfg }) {
    this.dir = dir;
    this.env = env;
    this.dataDir = path.join(dir, 'agent-data');
    fs.mkdirSync(this.dataDir, { recursive: true });
    this.conf = path.join(dir, 'agent.conf');
    this.cfg = cfg;
    this.starts = 0;
  }
  writeConfig() {
    fs.writeFileSync(this.conf, agentConfig({ dataDir: this.dataDir, ...this.cfg }));
  }
  async start() {
    this.writeConfig();
    this.proc = new Proc(`agent${this.starts++}`, agentBin, ['-c', this.conf],
      this.env ? { env: { ...process.env, ...this.env } } : {});
    await sleep(50);
    if (this.proc.exited) throw new Error(`agent exited at start\n${this.proc.tail()}`);
    return this;
  }
  // The live status: from the agent's socket (`runnel-agent status --json`) while it runs,
  // else the status.json it wrote last (at exit, or at most every 5 s while running).
  status() {
    if (this.proc && !this.proc.exited) {
      try {
        return JSON.parse(execFileSync(agentBin, ['status', '-c', this.conf, '--json'],
          { encoding: 'utf8', timeout: 10000, stdio: ['ignore', 'pipe', 'ignore'] }));
      } catch {
        // not answering yet (starting) or gone: fall back to the file
      }
    }
    return this.statusFile();
  }
  statusFile() {
    try {
      return JSON.parse(fs.readFileSync(path.join(this.dataDir, 'status.json'), 'utf8'));
    } catch {
      return null;
    }
  }
  kill(sig) {
    return this.proc.kill(sig);
  }
  stop() {
    return this.proc ? this.proc.stop() : undefined;
  }
}

// Runs a command to completion; resolves {code, stdout, stderr}.
export function run(bin, args, opts = {}) {
  return new Promise((resolve, reject) => {
    const c = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d) => (stdout += d));
    c.stderr.on('data', (d) => (stderr += d));
    c.on('error', reject);
    // 'close', not 'exit': 'exit' can come before the last output was read from the pipes
    c.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

// Runs zerobus_client.py (Debian's python3-grpcio, a gRPC stack we did not write) against
// `server` with `args`; resolves the JSON object it printed last. Throws if the client failed.
export async function zbClient(server, ...args) {
  const client = path.join(repoRoot, 'tests', 'integration', 'zerobus_client.py');
  const r = await run('/usr/bin/python3', [client, `127.0.0.1:${server.port}`, ...args]);
  if (r.code !== 0) throw new Error(`zerobus_client.py ${args.join(' ')} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

// A free TCP port on loopback (bind to 0, read, close). Used when a server must come back on
// the same port after a kill.
export async function freePort() {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// Small deterministic PRNG (mulberry32) so a failing fault schedule can be replayed by seed.
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
