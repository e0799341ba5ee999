// The agent's health reports (docs/protocol.md, "Health reports"). Against a server that
// does not take them (fleet_health = false: it does not answer `runnel-health: 1`, as an
// older runnel-server or Databricks Zerobus), the agent sends none: its status says so and
// the server counts none. Against one that does, two agents (a file source each, one also
// an MQTT source on a real mosquitto broker): the newest report the server keeps for each
// device (GET /api/v1/devices/{device}) has the numbers `runnel-agent status` shows
// (buffer, drops, source states); stopping the broker makes the MQTT source "down" in the
// server's view within about 5 s although that agent's health_interval is 60 s (a state
// change is sent at most 5 s after the last report); the config digest is the SHA-256 of
// the agent's config file, and of the new one after a reload.
// On the wire (through a relay that answers `runnel-health: 1` and takes the reports out of
// the call): each report is one zstd-compressed PersistentStreamRequest{1001: JSON} message
// between two chunk messages, the first one right after the open is answered, then one per
// interval while chunks flow. Every data line lands exactly once (verifyTable, DuckDB).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Agent, Server, agentBin, run, tmpDir, waitFor } from './lib/harness.mjs';
import { duckFrom, query, replayLog, verifyTable } from './lib/table.mjs';
import { Broker, pub } from './lib/mqtt.mjs';
import { H2Fake } from './lib/h2fake.mjs';

const T = 'main.default.telemetry';

function rows(server) {
  try {
    return replayLog(server.tableDir(T)).live.reduce((n, f) => n + f.numRecords, 0);
  } catch {
    return 0;
  }
}

function lines(file, prefix, n) {
  fs.appendFileSync(file, Array.from({ length: n }, (_, i) => `${prefix} ${i}\n`).join(''));
}

// Each (source, payload) once, and `want` rows per source.
async function exactlyOnce(server, want) {
  const snap = await verifyTable(server.tableDir(T));
  const got = await query(`SELECT source, count(*) AS n, count(DISTINCT payload) AS d
      FROM ${duckFrom(snap.files)} GROUP BY source ORDER BY source`);
  assert.deepEqual(got.map((r) => [r.source, Number(r.n), Number(r.d)]),
    Object.entries(want).sort().map(([s, n]) => [s, n, n]));
}

async function device(server, id) {
  const r = await fetch(`${server.metricsUrl}/api/v1/devices/${encodeURIComponent(id)}`);
  if (r.status !== 200) return null;
  return r.json();
}

// The report's numbers against the agent's status, as [report, status] pairs to compare.
function pairs(rep, st) {
  return {
    device: [rep.device, st.device_id],
    bytes: [rep.buffer.bytes, st.buffer_bytes],
    records: [rep.buffer.records, st.buffer_records],
    max: [rep.buffer.max_bytes, st.buffer_max_bytes],
    drops: [rep.drops.buffer_full, st.dropped_records],
    expired: [rep.expired, st.expired_records],
    deadLetters: [rep.dead_letters, st.dead_letters],
    sources: [rep.sources.map((s) => [s.name, s.type, s.state, s.records]),
      st.sources.map((s) => [s.name, s.type, s.state, s.records])],
  };
}

function same(rep, st) {
  return Object.values(pairs(rep, st)).every(([a, b]) => JSON.stringify(a) === JSON.stringify(b));
}

test('a server without health reports gets none; data flows as before', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-health-off');
  const server = await new Server({ dir, tables: [T], metrics: true, extra: 'fleet_health = false;' }).start();
  const log = path.join(dir, 'in.log');
  lines(log, 'off', 300);
  const agent = new Agent({ dir, url: server.url, deviceId: 'dev-off', uplinkExtra: 'health_interval = 1;',
    sources: [{ name: 'logs', paths: [log] }] });
  try {
    await agent.start();
    await waitFor(() => rows(server) === 300, { what: '300 rows' });
    // three intervals with the call open: a report would have gone at the open and twice since
    let st;
    await waitFor(() => {
      st = agent.status();
      return st && st.streams[0].connected && st.uptime_s >= 3;
    }, { what: 'the agent up 3 s with its call open' });
    assert.equal(st.health.interval_s, 1);
    assert.equal(st.health.reports, 0, 'no report handed to the uplink');
    assert.equal(st.health.skipped, 0);
    assert.equal(st.streams[0].uplink.health, false, 'the server did not answer runnel-health');
    assert.equal(st.streams[0].uplink.health_sent, 0);
    assert.equal(st.streams[0].uplink.failures, 0);
    assert.equal(st.streams[0].reconnects, 0);
    const cli = await run(agentBin, ['status', '-c', agent.conf]);
    assert.match(cli.stdout, /\nsource logs \(file\): up, 300 records\nhealth reports every 1 s: 0 sent, 0 skipped\n/);
    assert.equal(await server.metric('agent_health_reports_total'), 0);
    assert.equal((await server.metric('agent_health_rejected_total', 'reason="json"')) ?? 0, 0);
    assert.equal((await fetch(`${server.metricsUrl}/api/v1/devices/dev-off`)).status, 404);
    await agent.stop();
    await server.stop();
    await exactlyOnce(server, { logs: 300 });
  } finally {
    await agent.kill();
    await server.kill();
  }
});

test('two agents report their health; a source going down is seen within 5 s', { timeout: 180000 }, async () => {
  const dir = tmpDir('e2e-health');
  const broker = await new Broker({ dir }).start();
  const server = await new Server({ dir, tables: [T], metrics: true }).start();
  const logA = path.join(dir, 'a.log');
  const logB = path.join(dir, 'b.log');
  lines(logA, 'a', 400);
  lines(logB, 'b', 250);
  const dirA = path.join(dir, 'a');
  const dirB = path.join(dir, 'b');
  fs.mkdirSync(dirA);
  fs.mkdirSync(dirB);
  // A: a state change must go out at once, not at its 60 s interval
  const DEV_A = 'dev-a "quoted"'; // a device id that JSON and the URL must escape
  const a = new Agent({ dir: dirA, url: server.url, deviceId: DEV_A.replace(/"/g, '\\"'), uplinkExtra: 'health_interval = 60;',
    sources: [
      { name: 'logs', paths: [logA] },
      { conf: `type = "mqtt"; name = "mq"; table = "${T}"; port = ${broker.port};
        topics = [ "h/#" ]; qos = 1; client_id = "runnel-test-health";` },
    ] });
  const b = new Agent({ dir: dirB, url: server.url, deviceId: 'dev-b', uplinkExtra: 'health_interval = 1;',
    sources: [{ name: 'blog', paths: [logB] }] });
  try {
    await a.start();
    await b.start();
    await waitFor(() => a.proc.log.some((l) => /mq: subscribed to h\/#/.test(l)), { what: 'mq subscribed' })
      .catch((e) => { throw new Error(`${e.message}\n${a.proc.tail()}`); });
    await pub(broker, { topic: 'h/x', lines: Array.from({ length: 100 }, (_, i) => `m ${i}`), qos: 1 });
    await waitFor(() => rows(server) === 750, { what: '750 rows' });

    // B reports every second: its newest report equals its status once both are quiet
    let devB;
    let stB;
    await waitFor(async () => {
      stB = b.status();
      devB = await device(server, 'dev-b');
      return stB && devB && devB.report && stB.streams[0].acked === stB.streams[0].next_offset - 1 &&
        same(devB.report, stB);
    }, { what: "dev-b's newest report equal to its status" })
      .catch((e) => { throw new Error(`${e.message}\n${JSON.stringify(devB && pairs(devB.report, stB))}`); });
    assert.equal(devB.device, 'dev-b');
    assert.deepEqual(devB.invalid, []);
    assert.equal(devB.report.v, 1);
    assert.equal(devB.report.config_sha256,
      crypto.createHash('sha256').update(fs.readFileSync(b.conf)).digest('hex'));
    assert.match(devB.report.version, /^\d+\.\d+/);
    assert.equal(devB.report.clock.synced, true);
    assert.deepEqual(devB.report.sources.map((s) => [s.name, s.type, s.state, s.error, s.records]),
      [['blog', 'file', 'up', null, 250]]);
    assert.equal(devB.streams.length, 1);
    await waitFor(() => b.status().health.reports >= 3, { what: 'more reports from dev-b, one a second' });
    // a reload (SIGHUP) of an edited config: the next report names the new file's digest
    fs.appendFileSync(b.conf, '# edited\n');
    const edited = crypto.createHash('sha256').update(fs.readFileSync(b.conf)).digest('hex');
    assert.notEqual(edited, devB.report.config_sha256);
    b.kill('SIGHUP');
    await waitFor(async () => (await device(server, 'dev-b'))?.report.config_sha256 === edited,
      { what: "dev-b's report with the reloaded config's digest" });
    assert.equal(stB.streams[0].uplink.health, true);

    // A: the report sent at its call's open; its MQTT source up with 100 records
    const devA = await waitFor(async () => {
      const d = await device(server, DEV_A);
      return d && d.report && d.report.sources.length === 2 && d;
    }, { what: "dev-a's report" });
    assert.equal(devA.report.device, DEV_A);
    assert.deepEqual(devA.invalid, []);

    // A quiet (everything released) before the broker goes, so that its numbers hold still
    await waitFor(() => {
      const st = a.status();
      return st && st.buffer_bytes === 0 && st.buffer_records === 0;
    }, { what: "dev-a's buffer empty" });
    // the broker goes away: "down" in the server's view within ~5 s, with the error
    const before = a.status().health.reports;
    const t0 = Date.now();
    await broker.stop();
    let mq;
    const devA2 = await waitFor(async () => {
      const d = await device(server, DEV_A);
      mq = d && d.report.sources.find((s) => s.name === 'mq');
      return mq && mq.state === 'down' && d;
    }, { timeoutMs: 9000, intervalMs: 100, what: 'mq down in the server\'s view' })
      .catch((e) => {
        throw new Error(`${e.message}\nagent: ${JSON.stringify(a.status()?.sources)} ${JSON.stringify(a.status()?.health)}\nserver: ${JSON.stringify(mq)}\n${a.proc.tail()}`);
      });
    const took = Date.now() - t0;
    // at most 5 s after the last report (the rate limit of changes) plus one check (1 s)
    assert.ok(took < 7000, `seen after ${took} ms`);
    assert.equal(typeof mq.error, 'string');
    assert.ok(mq.error.length > 0);
    assert.equal(mq.records, 100);
    // that report was the change (its interval is a minute), and it equals A's status
    const stA = a.status();
    assert.ok(stA.health.reports > before);
    assert.deepEqual(
      Object.fromEntries(Object.entries(pairs(devA2.report, stA)).map(([k, [x]]) => [k, x])),
      Object.fromEntries(Object.entries(pairs(devA2.report, stA)).map(([k, [, y]]) => [k, y])));
    assert.equal(stA.sources.find((s) => s.name === 'mq').state, 'down');
    const cli = await run(agentBin, ['status', '-c', a.conf]);
    assert.match(cli.stdout, /\nsource logs \(file\): up, 400 records\nsource mq \(mqtt\): DOWN: .+, 100 records\nhealth reports every 60 s: \d+ sent, 0 skipped\n/);
    assert.ok((await server.metric('agent_health_reports_total')) >= 3);
    assert.equal((await server.metric('agent_health_rejected_total', 'reason="json"')) ?? 0, 0);

    await a.stop();
    await b.stop();
    await server.stop();
    await exactlyOnce(server, { logs: 400, blog: 250, mq: 100 });
  } finally {
    await a.kill();
    await b.kill();
    await server.kill();
    await broker.kill();
  }
});

// PersistentStreamRequest{runnel_agent_health (1001): json}: the JSON of one report.
function reportJson(body) {
  assert.equal(body[0], 0xca, 'field 1001, length-delimited');
  assert.equal(body[1], 0x3e);
  let len = 0;
  let shift = 0;
  let i = 2;
  for (;; i++) {
    len += (body[i] & 0x7f) * 2 ** shift;
    shift += 7;
    if (!(body[i] & 0x80)) break;
  }
  assert.equal(body.length, i + 1 + len, 'nothing but field 1001');
  assert.ok(len <= 16384);
  return JSON.parse(body.subarray(i + 1).toString('utf8'));
}

test('on the wire: compressed field-1001 messages between chunks, first after the open', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-health-wire');
  const server = await new Server({ dir, tables: [T] }).start();
  const fake = await new H2Fake({ target: server.port }).start();
  fake.mode('relay', { health: true });
  const log = path.join(dir, 'in.log');
  fs.writeFileSync(log, '');
  const agent = new Agent({ dir, url: fake.url, deviceId: 'dev-wire', uplinkExtra: 'health_interval = 1;',
    lingerMs: 20, sources: [{ name: 'logs', paths: [log] }] });
  try {
    await agent.start();
    // chunks while reports go out: a batch of lines whenever the last one is in the table
    let total = 0;
    for (let k = 0; fake.reports.length < 4; k++) {
      assert.ok(k < 40, `${fake.reports.length} reports after ${total} lines`);
      lines(log, `w${k}`, 500);
      total += 500;
      await waitFor(() => rows(server) === total, { what: `${total} rows` });
    }
    const st = agent.status();
    assert.equal(st.streams[0].uplink.health, true);
    assert.equal(st.streams[0].uplink.failures, 0);
    assert.ok(st.health.reports >= fake.reports.length);
    const reps = fake.reports.map((r) => ({ ...r, json: reportJson(r.body) }));
    for (const r of reps) {
      assert.equal(r.frame[0], 1, 'compressed like the chunks');
      assert.ok(r.afterOpen, 'never before the open is answered');
      assert.equal(r.json.v, 1);
      assert.equal(r.json.device, 'dev-wire');
      assert.deepEqual(r.json.sources.map((x) => [x.name, x.type, x.state]), [['logs', 'file', 'up']]);
    }
    // the first report right after the open: before the first interval had passed
    assert.ok(reps[0].json.uptime_s <= 1, `first report at uptime ${reps[0].json.uptime_s}`);
    // then about one a second (sent_at_ms moves on)
    for (let i = 1; i < reps.length; i++) assert.ok(reps[i].json.sent_at_ms > reps[i - 1].json.sent_at_ms);
    await agent.stop();
    await server.stop();
    await exactlyOnce(server, { logs: total });
  } finally {
    await agent.kill();
    await fake.stop();
    await server.kill();
  }
});
