// `runnel-agent status` asks the running agent over data_dir/agent.sock: a table for people,
// the JSON with --json, and a clear exit 1 when no agent answers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, Server, agentBin, run, tmpDir, waitFor } from './lib/harness.mjs';

test('runnel-agent status shows each stream of the running agent', { timeout: 60000 }, async () => {
  const dir = tmpDir('e2e-status');
  const T = 'main.default.telemetry';
  const server = await new Server({ dir, tables: [T] }).start();
  const agent = new Agent({ dir, url: server.url, deviceId: 'truck-42',
    sources: [{ conf: `type = "sim"; name = "veh"; table = "${T}"; rate = 1000; count = 500; seed = 1;` }] });
  try {
    await agent.start();
    let json;
    await waitFor(async () => {
      const r = await run(agentBin, ['status', '-c', agent.conf, '--json']);
      if (r.code !== 0) return false;
      json = JSON.parse(r.stdout);
      return json.streams[0].records === 500 && json.streams[0].acked === json.streams[0].next_offset - 1;
    }, { what: '500 records, all acked, per the status socket' });
    assert.equal(json.device_id, 'truck-42');
    assert.equal(json.streams[0].table, T);
    // The table view. The last chunk may still be open (records count when read, chunks
    // when they close), so poll until it shows everything acked.
    // stream, table, records, rec/s, unacked, buffered, oldest, link, paused, dead letters, dropped
    const row = /\nveh\s+main\.default\.telemetry\s+500\s+\d+\s+0\s+\S+ \S+\s+\d+s\s+up\s+no\s+0\s+0\n/;
    let r;
    await waitFor(async () => {
      r = await run(agentBin, ['status', '-c', agent.conf]);
      return r.code === 0 && row.test(r.stdout);
    }, { timeoutMs: 10000, what: 'the table view with every chunk acked' })
      .catch((e) => { throw new Error(`${e.message}\n${r && r.stdout}${r && r.stderr}`); });
    assert.match(r.stdout, /^device truck-42, up \d+ s, buffer \S+ \S+ of 1\.0 GiB \(policy block\), dropped 0, expired 0\n/);
    assert.equal(typeof json.streams[0].records_per_s, 'number');
    assert.equal(json.disk_full, false);
    assert.equal(json.buffer_policy, 'block');
    assert.equal(json.streams[0].dropped_records, 0);
    await agent.stop();
    const gone = await run(agentBin, ['status', '-c', agent.conf]);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /no agent answers on .*agent\.sock/);
  } finally {
    await agent.kill();
    await server.kill();
  }
});
