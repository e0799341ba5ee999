// Two runnel-servers behind HAProxy and an agent sending n numbered lines ("app <i>", one
// file source, 10 records a chunk) through the balancer: the setup of the tests in which
// server A is lost with its disk while B serves (e2e_server_lost, e2e_registry_s3). The
// servers are the caller's (their configs differ); A alone is the balancer's backend at
// first, so the agent's stream is created on A. loseA() puts B behind the balancer too, waits
// until both are up and SIGKILLs A; what A's disk is, and deleting it, is the caller's.
// stop() stops whatever was started, also after a failure half way through start().
import fs from 'node:fs';
import path from 'node:path';
import { Agent, waitFor } from './harness.mjs';
import { Haproxy } from './haproxy.mjs';

export class ServerPair {
  constructor({ dir, a, b, n }) {
    Object.assign(this, { dir, a, b, n, lb: null, agent: null });
    const logs = path.join(dir, 'logs');
    fs.mkdirSync(logs, { recursive: true });
    this.file = path.join(logs, 'app.log');
  }

  // Starts A, B, the balancer (A only) and the agent; resolves with the agent's stream once
  // A has acknowledged every line.
  async start() {
    fs.writeFileSync(this.file, Array.from({ length: this.n }, (_, i) => `app ${i}\n`).join(''));
    await this.a.start();
    await this.b.start();
    this.lb = await new Haproxy({ dir: this.dir, backends: [{ port: this.a.port }], checkMs: 200 }).start();
    await this.lb.waitUp(1);
    this.agent = new Agent({ dir: this.dir, url: `http://127.0.0.1:${this.lb.port}`, lingerMs: 20,
      chunkExtra: 'max_records = 10;', sources: [{ name: 'app', paths: [this.file] }] });
    await this.agent.start();
    return waitFor(() => {
      const s = this.stream();
      return s && s.records === this.n && s.next_offset > 1 && s.acked === s.next_offset - 1 ? s : null;
    }, { timeoutMs: 60000, what: `A acked all ${this.n} lines` });
  }

  // The agent's (one) stream in its status, or undefined.
  stream() {
    return (this.agent.status()?.streams || [])[0];
  }

  // B joins the balancer; once both are up, A is SIGKILLed.
  async loseA() {
    await this.lb.reload({ backends: [{ port: this.a.port }, { port: this.b.port }] });
    await this.lb.waitUp(2);
    await this.a.kill('SIGKILL');
  }

  async stopAgent() {
    const agent = this.agent;
    this.agent = null;
    if (agent) await agent.stop();
  }

  async stop() {
    await this.stopAgent();
    if (this.lb) await this.lb.stop();
    this.lb = null;
    await this.a.stop();
    await this.b.stop();
  }
}
