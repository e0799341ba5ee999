// The well-behaved client of the abuse tests: python3-grpcio's zerobus_client.py in `steady`
// mode (one persistent stream, one batch after the ack of the one before) kept running while
// an attack goes on. stop() ends it and resolves its result, with the ack latency of every
// batch summed up as latency_ms {n, p50, p99, max}, which it prints: the number the abuse
// tests report for "the good client kept working".
import fs from 'node:fs';
import path from 'node:path';
import { Proc, repoRoot, tmpDir, waitFor } from './harness.mjs';

export class GoodClient {
  constructor(server, { table = 'main.default.telemetry', token, pauseMs = 20, name = 'good' } = {}) {
    this.dir = tmpDir('good');
    this.stopFile = path.join(this.dir, 'stop');
    this.name = name;
    const args = [path.join(repoRoot, 'tests', 'integration', 'zerobus_client.py'),
      `127.0.0.1:${server.port}`, 'steady', '--table', table, '--records', '5',
      '--pause-ms', String(pauseMs), '--stop-file', this.stopFile];
    if (token) args.push('--token', token);
    this.proc = new Proc(name, '/usr/bin/python3', args);
    this.closed = new Promise((resolve) => this.proc.child.on('close', resolve));
    this.nacks = 0;
    this.last = '';
    let part = '';
    this.proc.child.stdout.on('data', (d) => {
      const lines = (part + d).split('\n');
      part = lines.pop();
      for (const l of lines) {
        if (l.startsWith('{"ack"')) this.nacks++;
        else if (l.startsWith('{"acks"')) this.last = l;
      }
    });
  }
  // Acks seen so far.
  acks() {
    return this.nacks;
  }
  // Waits until n more acks than now have come (the client is being served).
  async progress(n = 5, timeoutMs = 30000) {
    const from = this.acks();
    await waitFor(() => {
      if (this.proc.exited) throw new Error(`${this.name} exited: ${this.proc.tail()}`);
      return this.acks() >= from + n;
    }, { timeoutMs, what: `${n} more acks for ${this.name}` });
  }
  async stop() {
    fs.writeFileSync(this.stopFile, '');
    const ex = await this.proc.exitPromise;
    await this.closed; // stdout read to its end
    if (ex.code !== 0 || !this.last) throw new Error(`${this.name} failed: ${this.proc.tail()}`);
    const r = JSON.parse(this.last);
    console.log(`# ${this.name}: ${r.acks.length} acks, ack latency ms ${JSON.stringify(r.latency_ms)}`);
    return r;
  }
}
