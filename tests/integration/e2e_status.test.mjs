// `runnel-agent status` asks the running agent over data_dir/agent.sock: a table for people,
// the JSON with --json, and a clear exit 1 when no agent answers; a corrupt buffer at start
// is reported there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Agent, Server, agentBin, run, tmpDir, waitFor } from './lib/harness.mjs';
import { replayLog } from './lib/table.mjs';

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
    // stream, table, records, rec/s, unacked, buffered, retained (acked, kept until the
    // table has it: 0 once the server committed it), oldest, link, paused, dead letters, dropped
    const row = /\nveh\s+main\.default\.telemetry\s+500\s+\d+\s+0\s+\S+ \S+\s+0 B\s+\d+s\s+up\s+no\s+0\s+0\n/;
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

// A buffer file that is not a database (a torn write, a bad flash block) is set aside at
// start, the agent starts anew and says so: in its log, in status.json and in the status
// table; the new buffer works (the records reach the table).
test('a corrupt buffer is set aside, reported, and the agent carries on', { timeout: 60000 }, async () => {
  const dir = tmpDir('e2e-corrupt');
  const T = 'main.default.telemetry';
  const server = await new Server({ dir, tables: [T] }).start();
  const agent = new Agent({ dir, url: server.url, deviceId: 'truck-7',
    sources: [{ conf: `type = "sim"; name = "veh"; table = "${T}"; rate = 1000; count = 300; seed = 2;` }] });
  const garbage = Buffer.alloc(64 * 1024, 'not a database, a flash block gone bad. ');
  fs.writeFileSync(path.join(agent.dataDir, 'buffer.db'), garbage);
  try {
    await agent.start();
    await waitFor(() => agent.status()?.streams?.[0]?.acked === 299 || agent.status()?.streams?.[0]?.records === 300,
      { what: 'records through the new buffer' });
    const moved = fs.readdirSync(agent.dataDir).filter((f) => /^buffer\.db\.corrupt-\d+$/.test(f));
    assert.equal(moved.length, 1, fs.readdirSync(agent.dataDir).join(' '));
    assert.deepEqual(fs.readFileSync(path.join(agent.dataDir, moved[0])), garbage, 'kept as it was');
    assert.ok(agent.proc.log.some((l) => /error agent: the buffer was corrupt and has been set aside/.test(l)));
    assert.ok(agent.proc.log.some((l) => /buffer .*buffer\.db is corrupt .*moving it to .*buffer\.db\.corrupt-/.test(l)));
    const j = JSON.parse((await run(agentBin, ['status', '-c', agent.conf, '--json'])).stdout);
    assert.equal(j.buffer_recovered, true);
    const t = await run(agentBin, ['status', '-c', agent.conf]);
    assert.match(t.stdout, /\nBUFFER WAS CORRUPT at start: set aside as buffer\.db\.corrupt-\*, started anew\n/);
    const rows = () => replayLog(server.tableDir(T)).live.reduce((n, f) => n + f.numRecords, 0);
    await waitFor(() => rows() === 300, { what: '300 rows in the table' });
    // a clean restart is not a recovery
    await agent.stop();
    await agent.start();
    await waitFor(() => agent.status()?.uptime_s !== undefined && agent.status().buffer_recovered === false,
      { what: 'status after a clean restart' });
  } finally {
    await agent.kill();
    await server.kill();
  }
});
