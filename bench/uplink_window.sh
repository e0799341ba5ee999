#!/usr/bin/env bash
# Benchmark: does the uplink's in-flight window matter, and how big must it be? A backlog of
# LINES telemetry lines (about 200 bytes of JSON each, every line unique, compressing about
# like real telemetry) is in a file before the agent starts; the agent sends it to
# runnel-server through the latency proxy of the test suite (tests/integration/lib/
# proxy.mjs: user-space TCP relay, one-way delay = RTT/2, a 1 MiB window per direction
# standing in for TCP's) with uplink.window = 1, 4, 8, 16, 32 at RTT 0, 50, 150 and 300 ms.
# Each cell starts a fresh server and agent and measures from agent start until the last
# chunk is acknowledged (durable in the server's WAL). Prints records/s per cell and, as the
# baseline of each row, the same backlog at window 32 without the proxy (RTT 0 direct) —
# the ceiling the link delay keeps us from.
# Usage: RN_BIN=build-release bench/uplink_window.sh [lines] [windows] [rtts]
#        e.g. bench/uplink_window.sh 500000 "1 4 8 16 32" "0 50 150 300"
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${RN_BIN:-build-release}
LINES=${1:-500000}
WINDOWS=${2:-1 4 8 16 32}
RTTS=${3:-0 50 150 300}
[ -x "$BIN/agent/runnel-agent" ] || { echo "no $BIN/agent/runnel-agent (RN_BIN=build dir)"; exit 1; }
[ -f tests/integration/lib/proxy.mjs ] || { echo "no tests/integration/lib/proxy.mjs"; exit 1; }
W=$(mktemp -d /tmp/runnel-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT

RN_BUILD_DIR=$(cd "$BIN" && pwd) RN_TEST_TMP="$W" REPO=$PWD LINES=$LINES WINDOWS=$WINDOWS RTTS=$RTTS \
	node --input-type=module <<'JS'
import fs from 'node:fs';
import path from 'node:path';
const { Agent, Server, agentConfig, sleep, tmpDir, waitFor } =
  await import(`${process.env.REPO}/tests/integration/lib/harness.mjs`);
const { Proxy } = await import(`${process.env.REPO}/tests/integration/lib/proxy.mjs`);
const N = Number(process.env.LINES);
const windows = process.env.WINDOWS.split(/\s+/).filter(Boolean).map(Number);
const rtts = process.env.RTTS.split(/\s+/).filter(Boolean).map(Number);
const TABLE = 'bench.default.window';

// The backlog: JSON telemetry with a little randomness per line (xorshift, fixed seed).
const file = path.join(process.env.RN_TEST_TMP, 'backlog.log');
let x = 2463534242;
const rnd = () => ((x ^= x << 13, x ^= x >>> 17, x ^= x << 5) >>> 0);
const out = fs.openSync(file, 'w');
for (let i = 0; i < N; i += 10000) {
  let s = '';
  for (let k = i; k < Math.min(N, i + 10000); k++) {
    s += JSON.stringify({ seq: k, device: 'truck-0042', t: 1767225600000 + k * 10,
      speed: (rnd() % 12000) / 100, rpm: 800 + (rnd() % 5200), temp: (rnd() % 1000) / 10,
      lat: 48.1 + (rnd() % 100000) / 1e6, lon: 11.5 + (rnd() % 100000) / 1e6,
      status: ['ok', 'ok', 'ok', 'warn'][rnd() % 4], pad: 'x'.repeat(20) }) + '\n';
  }
  fs.writeSync(out, s);
}
fs.closeSync(out);
const bytes = fs.statSync(file).size;

class BenchAgent extends Agent {
  writeConfig() {
    fs.writeFileSync(this.conf, agentConfig({ dataDir: this.dataDir, ...this.cfg })
      .replace(/(backoff_max_ms = \d+;)/, `$1\n  window = ${this.cfg.window};`));
  }
}

async function cell(rtt, window, direct = false) {
  const dir = tmpDir(`w${window}-r${rtt}`);
  const server = await new Server({ dir, tables: [TABLE], flushMs: 1000 }).start();
  let proxy = null;
  if (!direct) {
    proxy = await new Proxy({ target: server.port, seed: 1 }).start();
    proxy.set({ delayMs: rtt / 2 });
  }
  const agent = new BenchAgent({ dir, window, url: `http://127.0.0.1:${direct ? server.port : proxy.port}`,
    sources: [{ name: 'bench', table: TABLE, paths: [file] }], lingerMs: 200 });
  const t0 = Date.now();
  try {
    await agent.start();
    const st = await waitFor(() => {
      agent.proc.child.kill('SIGUSR1'); // status.json now, not at the next half second
      const s = agent.status()?.streams?.[0];
      return s && s.records >= N && s.next_offset > 0 && s.acked === s.next_offset - 1 && s;
    }, { timeoutMs: 600000, intervalMs: 20, what: `window ${window} rtt ${rtt}` });
    const secs = (Date.now() - t0) / 1000;
    return { secs, chunks: st.next_offset, sent: st.uplink ? st.uplink.bytes_sent : 0 };
  } finally {
    await agent.kill();
    if (proxy) await proxy.stop();
    await server.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const base = await cell(0, 32, true);
console.log(`runnel bench: uplink window x RTT, ${N} lines (${(bytes / 1e6).toFixed(0)} MB as text, ` +
  `${base.chunks} chunks, ${(base.sent / 1e6).toFixed(1)} MB compressed on the wire)`);
console.log(`  baseline, no proxy, window 32: ${(N / base.secs).toFixed(0)} records/s (${base.secs.toFixed(2)} s)`);
console.log(`  records/s until the last chunk is acked (agent start included):`);
console.log(`  ${'RTT ms'.padStart(8)} ${windows.map((w) => `w=${w}`.padStart(9)).join(' ')}`);
for (const rtt of rtts) {
  const row = [];
  for (const w of windows) {
    const r = await cell(rtt, w);
    row.push(`${(N / r.secs).toFixed(0)}`.padStart(9));
  }
  console.log(`  ${String(rtt).padStart(8)} ${row.join(' ')}`);
}
JS
