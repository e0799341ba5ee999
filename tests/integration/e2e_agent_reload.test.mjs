// runnel-agent reloads its config on SIGHUP with records flowing into the real runnel-server:
// three file sources being appended to and an MQTT source fed through the real mosquitto
// while the agent is SIGHUPped five times: a config with an error (refused with file:line,
// the running config kept), a source added, a source removed, a source's settings changed,
// and the removed source added back; on the way the uplink's window changes (applied at
// once: a new uplink) and two restart-only settings (kept, with a warning). Afterwards every
// line and message is in the Delta table exactly once and in order per stream (DuckDB), and
// `runnel-agent status` answered after every reload. Also: status.json is 0640 and the status
// socket 0660.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Agent, Server, agentBin, agentConfig, run, sleep, tmpDir, waitFor } from './lib/harness.mjs';
import { Broker, pub } from './lib/mqtt.mjs';
import { duckFrom, query, replayLog, verifyTable } from './lib/table.mjs';

const TABLE = 'main.default.telemetry';

function rows(server) {
  try {
    return replayLog(server.tableDir(TABLE)).live.reduce((n, f) => n + f.numRecords, 0);
  } catch {
    return 0;
  }
}

// agentConfig puts uplinkExtra into the uplink group itself
const ReloadAgent = Agent;

const fileSource = (name, file, extra = '') => ({
  conf: `type = "file"; name = "${name}"; table = "${TABLE}"; paths = [ "${file}" ];
    read_from = "beginning"; ${extra}`,
});
const mqttSource = (port) => ({
  conf: `type = "mqtt"; name = "m"; table = "${TABLE}"; port = ${port}; topics = [ "dev/#" ];
    qos = 1; client_id = "runnel-test-reload";`,
});

// Appends "<name> <i>" lines to each file every few ms until stopped; counts what it wrote.
function writers(files) {
  const n = Object.fromEntries(Object.keys(files).map((k) => [k, 0]));
  let stop = false;
  const done = (async () => {
    while (!stop) {
      for (const [name, file] of Object.entries(files)) {
        let s = '';
        for (let k = 0; k < 5; k++) s += `${name} ${n[name]++}\n`;
        fs.appendFileSync(file, s);
      }
      await sleep(15);
    }
  })();
  return { n, stop: async () => { stop = true; await done; } };
}

// Publishes "n=<k>" messages in small batches (QoS 1) until stopped; counts them.
function publisher(broker) {
  let k = 0;
  let stop = false;
  const done = (async () => {
    while (!stop) {
      const lines = Array.from({ length: 10 }, () => `n=${k++}`);
      await pub(broker, { topic: 'dev/1', lines, qos: 1 });
      await sleep(20);
    }
  })();
  return { count: () => k, stop: async () => { stop = true; await done; } };
}

const streamOf = (agent, name) => (agent.status()?.streams || []).find((s) => s.name === name);

async function statusCli(agent) {
  const r = await run(agentBin, ['status', '-c', agent.conf]);
  assert.equal(r.code, 0, `runnel-agent status failed: ${r.stderr}`);
  return r.stdout;
}

test('runnel-agent: SIGHUP reloads the config with records flowing, exactly once', { timeout: 240000 }, async () => {
  const dir = tmpDir('e2e-agent-reload');
  const logs = path.join(dir, 'logs');
  fs.mkdirSync(logs);
  const f = Object.fromEntries(['a', 'b', 'c'].map((n) => [n, path.join(logs, `${n}.log`)]));
  for (const file of Object.values(f)) fs.writeFileSync(file, '');
  const broker = await new Broker({ dir }).start();
  const server = await new Server({ dir, tables: [TABLE] }).start();
  const m = mqttSource(broker.port);
  const agent = new ReloadAgent({
    dir, url: server.url, lingerMs: 1500, // a stopping source's open chunk holds records
    sources: [fileSource('a', f.a), fileSource('b', f.b), m],
  });
  const w = writers(f);
  let p;
  try {
    await agent.start();
    await waitFor(() => streamOf(agent, 'm'), { what: 'the mqtt stream' });
    p = publisher(broker);
    await waitFor(() => streamOf(agent, 'a')?.records > 50 && streamOf(agent, 'm')?.records > 20,
      { what: 'records from a and m' });
    const hup = async (sources, what, { extra = {}, until }) => {
      const before = streamOf(agent, 'a').records;
      Object.assign(agent.cfg, { sources, chunkExtra: '', ...extra });
      agent.writeConfig();
      agent.kill('SIGHUP');
      await waitFor(until, { timeoutMs: 30000, what });
      // records keep flowing after it
      await waitFor(() => streamOf(agent, 'a')?.records > before + 50, { what: `a flowing after ${what}` });
      assert.equal(agent.proc.exited, null, agent.proc.tail());
      return statusCli(agent);
    };

    // 1. an error: refused with file:line, nothing changes
    await hup([fileSource('a', f.a), fileSource('c', f.c), m], 'the refusal', {
      extra: { chunkExtra: 'zstd_level = 99;' },
      until: () => agent.proc.log.some((l) => /reload refused: .*agent\.conf:\d+: chunk\.zstd_level = 99 is out of range/.test(l)),
    });
    assert.equal(agent.status().reloads, 0);
    assert.equal(streamOf(agent, 'c'), undefined, 'nothing of the refused config applied');
    assert.ok(streamOf(agent, 'b'), 'b still running');

    // 2. c added; the uplink's window changed (a new uplink resumes every stream); device_id
    // and buffer.max_bytes changed too, which apply at restart only
    const logged = (re) => agent.proc.log.some((l) => re.test(l));
    let out = await hup([fileSource('a', f.a), fileSource('b', f.b), fileSource('c', f.c), m], 'c added', {
      extra: { uplinkExtra: 'window = 8;', deviceId: 'renamed', bufferMaxBytes: 64 << 20 },
      until: () => agent.status()?.reloads === 1 && streamOf(agent, 'c')?.records > 0,
    });
    assert.match(out, /\bc\b/);
    assert.ok(logged(/reload: uplink settings changed; reconnecting/), 'uplink recreated');
    assert.ok(logged(/warn agent: reload: agent\.device_id changes at restart; keeping "test-device"/), 'device_id kept');
    assert.ok(logged(/warn agent: reload: buffer\.max_bytes changes at restart; keeping \d+/), 'max_bytes kept');
    assert.equal(agent.status().device_id, 'test-device');
    // 3. b removed (its file is still being written: it is read again when b comes back)
    await hup([fileSource('a', f.a), fileSource('c', f.c), m], 'b removed', {
      until: () => agent.status()?.reloads === 2 && agent.proc.log.some((l) => /source b stopped/.test(l)),
    });
    // 4. a changed: stopped, started again from its stored position
    await hup([fileSource('a', f.a, 'attributes = [ "gen=2" ];'), fileSource('c', f.c), m], 'a changed', {
      until: () => agent.status()?.reloads === 3 && agent.proc.log.some((l) => /reload: source a started/.test(l)),
    });
    // 5. b back
    out = await hup([fileSource('a', f.a, 'attributes = [ "gen=2" ];'), fileSource('b', f.b), fileSource('c', f.c), m], 'b back', {
      until: () => agent.status()?.reloads === 4 && agent.proc.log.some((l) => /reload: source b started/.test(l)),
    });
    assert.match(out, /\bb\b/);

    // modes: status.json for the group to read, the socket for the group to use
    agent.kill('SIGUSR1');
    const sj = path.join(agent.dataDir, 'status.json');
    await waitFor(() => fs.existsSync(sj) && agent.statusFile()?.reloads === 4, { what: 'status.json after SIGUSR1' });
    assert.equal(fs.statSync(sj).mode & 0o777, 0o640);
    assert.equal(fs.statSync(path.join(agent.dataDir, 'agent.sock')).mode & 0o777, 0o660);

    await w.stop();
    await p.stop();
    const total = w.n.a + w.n.b + w.n.c + p.count();
    await waitFor(() => rows(server) >= total, { timeoutMs: 60000, what: `${total} rows` });
    assert.deepEqual(await agent.stop(), { code: 0, signal: null }, agent.proc.tail());

    const snap = await verifyTable(server.tableDir(TABLE));
    const from = duckFrom(snap.files);
    const per = await query(`SELECT source, count(*) AS n, count(DISTINCT seq) AS d, min(seq) AS lo,
        max(seq) AS hi, count(DISTINCT payload) AS dp,
        count(*) FILTER (WHERE source <> 'm' AND TRY_CAST(split_part(payload, ' ', 2) AS BIGINT) IS DISTINCT FROM seq) AS misordered
        FROM ${from} GROUP BY ALL ORDER BY source`);
    const want = { a: w.n.a, b: w.n.b, c: w.n.c, m: p.count() };
    assert.deepEqual(per.map((r) => r.source), ['a', 'b', 'c', 'm']);
    for (const r of per) {
      const n = want[r.source];
      assert.deepEqual({ n: Number(r.n), d: Number(r.d), dp: Number(r.dp), lo: Number(r.lo), hi: Number(r.hi), mis: Number(r.misordered) },
        { n, d: n, dp: n, lo: 0, hi: n - 1, mis: 0 }, `source ${r.source}: every record once, seq = line number`);
    }
    // MQTT: the publish order is the seq order
    const [mq] = await query(`SELECT count(*) FILTER (WHERE n <> r - 1) AS out_of_order FROM (
        SELECT CAST(regexp_extract(payload, '^n=(\\d+)', 1) AS BIGINT) AS n,
          row_number() OVER (ORDER BY seq) AS r FROM ${from} WHERE source = 'm')`);
    assert.equal(Number(mq.out_of_order), 0);
    const [dev] = await query(`SELECT list(DISTINCT device_id) AS d FROM ${from}`);
    assert.deepEqual([...dev.d], ['test-device'], 'device_id changes at restart only');
    // a's records after the change carry the new attribute, those before do not
    const [at] = await query(`SELECT count(*) FILTER (WHERE attributes LIKE '%gen%') AS tagged FROM ${from} WHERE source = 'a'`);
    assert.ok(Number(at.tagged) > 0 && Number(at.tagged) < w.n.a, `a: some records tagged gen=2 (${at.tagged})`);
  } finally {
    await w.stop();
    if (p) await p.stop().catch(() => {});
    await agent.kill();
    await server.kill();
    await broker.kill();
  }
});
