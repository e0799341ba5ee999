// The real mosquitto broker on a free loopback port, with its own config and persistence
// directory, for tests and benches. Publishing goes through Debian's mosquitto_pub (and
// python3-paho-mqtt where a client library is wanted).
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { Proc, freePort, sleep, waitFor } from './harness.mjs';

export class Broker {
  // tls: {ca, cert, key} files for the listener (clients must present a certificate);
  // passwordFile: a mosquitto_passwd file (anonymous clients are then refused).
  constructor({ dir, port = 0, extra = '', tls = null, passwordFile = null }) {
    this.tls = tls;
    this.passwordFile = passwordFile;
    this.dir = path.join(dir, 'broker');
    fs.mkdirSync(this.dir, { recursive: true });
    this.conf = path.join(this.dir, 'mosquitto.conf');
    this.port = port;
    this.extra = extra;
    this.starts = 0;
  }
  async start() {
    if (!this.port) this.port = await freePort();
    // Sessions and queues persist across broker restarts; queues are unbounded so a long
    // agent outage in a test loses nothing on the broker side.
    fs.writeFileSync(this.conf, [
      `listener ${this.port} 127.0.0.1`,
      ...(this.tls ? [`cafile ${this.tls.ca}`, `certfile ${this.tls.cert}`, `keyfile ${this.tls.key}`,
        'require_certificate true'] : []),
      this.passwordFile ? `password_file ${this.passwordFile}` : '',
      `allow_anonymous ${this.passwordFile ? 'false' : 'true'}`,
      'persistence true',
      `persistence_location ${this.dir}/`,
      'max_queued_messages 0',
      'max_inflight_messages 1000',
      // as root, mosquitto would drop to its own user, which cannot read the test's files
      process.getuid && process.getuid() === 0 ? 'user root' : '',
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      this.extra,
    ].join('\n') + '\n');
    this.proc = new Proc(`broker${this.starts++}`, '/usr/sbin/mosquitto', ['-c', this.conf]);
    await waitFor(async () => {
      if (this.proc.exited) throw new Error(`broker exited\n${this.proc.tail()}`);
      return (await pub(this, { topic: 'probe/up', lines: ['up'], qos: 0, args: this.probeArgs || [] })
        .catch(() => 1)) === 0;
    }, { timeoutMs: 10000, what: 'broker up' });
    return this;
  }
  kill(sig) {
    return this.proc.kill(sig);
  }
  stop() {
    return this.proc ? this.proc.stop() : undefined;
  }
}

// Publishes each of `lines` as one message with mosquitto_pub -l (one connection).
// Resolves with the exit code.
export function pub(broker, { topic, lines, qos = 1, v5 = false, props = [], args: extra = [] }) {
  return new Promise((resolve, reject) => {
    const args = ['-h', '127.0.0.1', '-p', String(broker.port), '-t', topic, '-q', String(qos), '-l'];
    if (v5) args.push('-V', '5');
    args.push(...extra);
    for (const p of props) args.push('-D', 'publish', ...p);
    const c = spawn('mosquitto_pub', args, { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.on('data', (d) => (err += d));
    c.on('error', reject);
    c.stdin.on('error', () => {}); // EPIPE when it exits early (broker not up yet): the exit code says it
    c.on('exit', (code) => (code === 0 ? resolve(0) : reject(new Error(`mosquitto_pub ${code}: ${err}`))));
    c.stdin.end(lines.join('\n') + '\n');
  });
}

export { sleep };
