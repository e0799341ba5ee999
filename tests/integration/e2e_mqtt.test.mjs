// MQTT source against the real mosquitto broker: subscriptions with wildcards, MQTT 3.1.1 and
// 5 (user properties, content type), QoS 0/1; the agent SIGKILLed while messages flow (the
// persistent session plus commit-before-PUBACK lose nothing, redeliveries are skipped);
// and a full buffer under the block policy (the plugin disconnects, the broker queues, and
// everything arrives once there is room). Every test ends with the table read by DuckDB.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Agent, Server, freePort, prng, run, sleep, tmpDir, waitFor } from './lib/harness.mjs';
import { duckFrom, query, replayLog, verifyTable } from './lib/table.mjs';
import { Broker, pub } from './lib/mqtt.mjs';

const TABLE = 'main.default.mqtt';

function rows(server) {
  try {
    return replayLog(server.tableDir(TABLE)).live.reduce((n, f) => n + f.numRecords, 0);
  } catch {
    return 0;
  }
}

function mqttSource({ name = 'mqtt', port, topics, qos = 1, protocol = '3.1.1', extra = '' }) {
  return {
    conf: `type = "mqtt"; name = "${name}"; table = "${TABLE}"; port = ${port};
      topics = [ ${topics.map((t) => `"${t}"`).join(', ')} ]; qos = ${qos};
      protocol = "${protocol}"; client_id = "runnel-test-${name}"; ${extra}`,
  };
}

// Every message numbered n (payload "n=<n> ...") is in the table exactly once, and the
// source's seq order is the publish order.
async function checkNumbered(server, total) {
  const snap = await verifyTable(server.tableDir(TABLE));
  const from = duckFrom(snap.files);
  const [r] = await query(`WITH t AS (SELECT seq,
        CAST(regexp_extract(payload, '^n=(\\d+)', 1) AS BIGINT) AS n FROM ${from})
      SELECT count(*) AS rows, count(DISTINCT n) AS distinct_n, min(n) AS lo, max(n) AS hi,
        count(DISTINCT seq) AS distinct_seq,
        count(*) FILTER (WHERE n <> rank_n - 1) AS out_of_order
      FROM (SELECT n, seq, row_number() OVER (ORDER BY seq) AS rank_n FROM t)`);
  assert.deepEqual(
    { rows: Number(r.rows), distinct: Number(r.distinct_n), lo: Number(r.lo), hi: Number(r.hi),
      seqs: Number(r.distinct_seq), outOfOrder: Number(r.out_of_order) },
    { rows: total, distinct: total, lo: 0, hi: total - 1, seqs: total, outOfOrder: 0 });
}

test('mqtt 5 and 3.1.1: wildcards, QoS 0/1, user properties and content type kept', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-mqtt');
  const broker = await new Broker({ dir }).start();
  const server = await new Server({ dir, tables: [TABLE] }).start();
  const agent = new Agent({
    dir, url: server.url,
    sources: [
      mqttSource({ name: 'v5', port: broker.port, topics: ['plant/+/temp', 'fleet/#'], protocol: '5' }),
      mqttSource({ name: 'v311', port: broker.port, topics: ['legacy/#'], qos: 0 }),
    ],
  });
  try {
    await agent.start();
    await waitFor(() => agent.proc.log.filter((l) => /connected to/.test(l)).length === 2,
      { what: 'both sources connected' });
    await sleep(200); // SUBACKs
    const nums = (p, n) => Array.from({ length: n }, (_, i) => `${p} ${i}`);
    await pub(broker, { topic: 'plant/a/temp', lines: nums('temp', 100), qos: 1 });
    await pub(broker, { topic: 'fleet/truck-7/gps', lines: nums('gps', 50), qos: 1, v5: true,
      props: [['user-property', 'vin', 'WVW123'], ['content-type', 'text/plain']] });
    await pub(broker, { topic: 'plant/a/humidity', lines: nums('not-subscribed', 10), qos: 1 });
    await pub(broker, { topic: 'legacy/x', lines: nums('legacy', 30), qos: 0 });
    await waitFor(() => rows(server) >= 180, { timeoutMs: 30000, what: '180 rows' });
    await agent.stop();
    await server.stop();
    const snap = await verifyTable(server.tableDir(TABLE));
    const from = duckFrom(snap.files);
    const got = await query(`SELECT source, topic, count(*) AS n, count(DISTINCT payload) AS d
        FROM ${from} GROUP BY ALL ORDER BY topic`);
    assert.deepEqual(got.map((r) => [r.source, r.topic, Number(r.n), Number(r.d)]), [
      ['v5', 'fleet/truck-7/gps', 50, 50],
      ['v311', 'legacy/x', 30, 30],
      ['v5', 'plant/a/temp', 100, 100],
    ]);
    const [a] = await query(`SELECT attributes FROM ${from} WHERE topic = 'fleet/truck-7/gps' LIMIT 1`);
    assert.deepEqual(JSON.parse(a.attributes), { vin: 'WVW123', 'mqtt.content_type': 'text/plain' });
    // per topic, publish order is seq order
    const [o] = await query(`SELECT count(*) AS bad FROM (SELECT topic,
        CAST(split_part(payload, ' ', 2) AS INT) AS i,
        row_number() OVER (PARTITION BY topic ORDER BY seq) - 1 AS k FROM ${from}) WHERE i <> k`);
    assert.equal(Number(o.bad), 0, 'in order per topic');
  } finally {
    await agent.kill();
    await server.kill();
    await broker.kill();
  }
});

test('QoS 1 with the agent SIGKILLed three times: every message exactly once, in order', { timeout: 240000 }, async () => {
  const seed = Number(process.env.RN_SEED || Date.now() % 100000);
  const rnd = prng(seed);
  const dir = tmpDir('e2e-mqtt-kill');
  const broker = await new Broker({ dir }).start();
  const server = await new Server({ dir, tables: [TABLE] }).start();
  const agent = new Agent({ dir, url: server.url,
    sources: [mqttSource({ port: broker.port, topics: ['dev/+/data'] })] });
  const TOTAL = 20000;
  const BATCHES = 40;
  try {
    await agent.start();
    await waitFor(() => agent.proc.log.some((l) => /connected to/.test(l)), { what: 'connected' });
    await sleep(200);
    const killAt = new Set();
    while (killAt.size < 3) killAt.add(2 + Math.floor(rnd() * (BATCHES - 6)));
    const per = TOTAL / BATCHES;
    const pad = 'p'.repeat(80);
    const publishing = (async () => {
      for (let b = 0; b < BATCHES; b++) {
        const lines = [];
        for (let i = b * per; i < (b + 1) * per; i++) lines.push(`n=${i} ${pad}`);
        await pub(broker, { topic: `dev/${b % 3}/data`, lines, qos: 1 });
        if (killAt.has(b)) {
          // kill while the broker is still delivering this batch to us
          await sleep(Math.floor(rnd() * 30));
          await agent.kill('SIGKILL');
          await sleep(100 + Math.floor(rnd() * 300));
          await agent.start();
        }
      }
    })();
    await publishing;
    await waitFor(() => rows(server) >= TOTAL, { timeoutMs: 60000, what: `${TOTAL} rows (seed ${seed})` });
    await sleep(500); // a duplicate would show up as an extra row
    await agent.stop();
    await server.stop();
    assert.equal(agent.starts, 4);
    await checkNumbered(server, TOTAL);
  } catch (e) {
    e.message = `seed ${seed}: ${e.message}`;
    throw e;
  } finally {
    await agent.kill();
    await server.kill();
    await broker.kill();
  }
});

test('buffer full under block: the plugin disconnects, the broker queues, nothing is lost', { timeout: 240000 }, async () => {
  const dir = tmpDir('e2e-mqtt-full');
  const broker = await new Broker({ dir, extra: process.env.RN_BROKER_EXTRA || '' }).start();
  const port = await freePort();
  const server = new Server({ dir, tables: [TABLE], port }); // not started yet: uplink down
  const agent = new Agent({ dir, url: `http://127.0.0.1:${port}`, bufferMaxBytes: '"1M"',
    sources: [mqttSource({ port: broker.port, topics: ['bulk'] })] });
  const TOTAL = 6000;
  const rnd = prng(7);
  const noise = () => Array.from({ length: 300 }, () => 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'[Math.floor(rnd() * 62)]).join('');
  try {
    await agent.start();
    await waitFor(() => agent.proc.log.some((l) => /connected to/.test(l)), { what: 'connected' });
    await sleep(200);
    const lines = Array.from({ length: TOTAL }, (_, i) => `n=${i} ${noise()}`);
    await pub(broker, { topic: 'bulk', lines, qos: 1 });
    await waitFor(() => agent.proc.log.some((l) => /disconnecting so the broker queues/.test(l)),
      { timeoutMs: 30000, what: 'the plugin leaving because the buffer is full' });
    const st = agent.status();
    assert.ok(st.buffer_bytes <= 1 << 20, `buffer within its cap: ${st.buffer_bytes}`);
    await server.start();
    await waitFor(() => agent.proc.log.some((l) => /room again; reconnecting/.test(l)),
      { timeoutMs: 30000, what: 'reconnect when room frees' });
    await waitFor(() => rows(server) >= TOTAL, { timeoutMs: 90000, what: `${TOTAL} rows` });
    await sleep(300);
    await agent.stop();
    await server.stop();
    await checkNumbered(server, TOTAL);
  } finally {
    await agent.kill();
    await server.kill();
    await broker.kill();
  }
});

// A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl.
async function makeCerts(dir) {
  const d = path.join(dir, 'tls');
  fs.mkdirSync(d);
  const f = (n) => path.join(d, n);
  const ossl = async (...args) => {
    const r = await run('openssl', args);
    assert.equal(r.code, 0, `openssl ${args.join(' ')}: ${r.stderr}`);
  };
  await ossl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=runnel test CA',
    '-keyout', f('ca.key'), '-out', f('ca.crt'));
  for (const [name, cn, ext] of [['server', '127.0.0.1', 'subjectAltName=IP:127.0.0.1,DNS:localhost'],
    ['client', 'runnel-agent', 'extendedKeyUsage=clientAuth']]) {
    await ossl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${cn}`, '-keyout', f(`${name}.key`),
      '-out', f(`${name}.csr`));
    fs.writeFileSync(f(`${name}.ext`), ext + '\n');
    await ossl('x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.crt'), '-CAkey', f('ca.key'),
      '-CAcreateserial', '-days', '2', '-extfile', f(`${name}.ext`), '-out', f(`${name}.crt`));
  }
  return { ca: f('ca.crt'), cert: f('server.crt'), key: f('server.key'),
    clientCert: f('client.crt'), clientKey: f('client.key') };
}

test('TLS with a client certificate and username/password; a wrong password is refused loudly', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-mqtt-tls');
  const tls = await makeCerts(dir);
  const pw = path.join(dir, 'passwd');
  fs.writeFileSync(pw, '');
  const r = await run('mosquitto_passwd', ['-b', pw, 'gateway', 's3cret-pw']);
  assert.equal(r.code, 0, r.stderr);
  const broker = new Broker({ dir, tls, passwordFile: pw });
  const clientArgs = ['--cafile', tls.ca, '--cert', tls.clientCert, '--key', tls.clientKey,
    '-u', 'gateway', '-P', 's3cret-pw'];
  broker.probeArgs = clientArgs;
  await broker.start();
  const server = await new Server({ dir, tables: [TABLE] }).start();
  const tlsKeys = `tls_ca = "${tls.ca}"; tls_cert = "${tls.clientCert}"; tls_key = "${tls.clientKey}";`;
  const good = new Agent({ dir: path.join(dir, 'good'), url: server.url, sources: [mqttSource({
    name: 'secure', port: broker.port, topics: ['secure/#'],
    extra: `${tlsKeys} username = "gateway"; password = "s3cret-pw";` })] });
  const bad = new Agent({ dir: path.join(dir, 'bad'), url: server.url, sources: [mqttSource({
    name: 'intruder', port: broker.port, topics: ['secure/#'],
    extra: `${tlsKeys} username = "gateway"; password = "guess";` })] });
  try {
    await good.start();
    await bad.start();
    await waitFor(() => good.proc.log.some((l) => /connected to/.test(l)), { what: 'TLS connect' });
    await waitFor(() => bad.proc.log.some((l) => /intruder: broker refused the connection: .*(not authori[sz]ed|bad user name or password)/i.test(l)),
      { what: 'a clear refusal for the wrong password' });
    await sleep(200);
    await pub(broker, { topic: 'secure/x', lines: Array.from({ length: 40 }, (_, i) => `n=${i} tls`), qos: 1, args: clientArgs });
    await waitFor(() => rows(server) >= 40, { what: '40 rows' });
    await sleep(300);
    assert.ok(!bad.proc.log.some((l) => /intruder: connected to/.test(l)), 'the wrong password never got in');
    await good.stop();
    await bad.stop();
    await server.stop();
    await checkNumbered(server, 40);
  } finally {
    await good.kill();
    await bad.kill();
    await server.kill();
    await broker.kill();
  }
});

test('routes: topics go to their own streams and tables, exactly once through SIGKILLs', { timeout: 180000 }, async () => {
  const seed = Number(process.env.RN_SEED || Date.now() % 100000);
  const rnd = prng(seed);
  const dir = tmpDir('e2e-mqtt-routes');
  const GPS = 'main.fleet.gps';
  const CAN = 'main.fleet.can';
  const broker = await new Broker({ dir }).start();
  const server = await new Server({ dir, tables: [TABLE, GPS, CAN] }).start();
  // MQTT 5 here (the kill test above uses 3.1.1): the session must outlive each SIGKILL
  const agent = new Agent({ dir, url: server.url, sources: [mqttSource({ name: 'fleet', port: broker.port,
    topics: ['fleet/#'], protocol: '5', extra: `routes = (
      { match = "fleet/+/gps"; table = "${GPS}"; stream = "gps"; },
      { match = "fleet/+/can"; table = "${CAN}"; stream = "can"; } );` })] });
  const count = (t) => {
    try {
      return replayLog(server.tableDir(t)).live.reduce((n, f) => n + f.numRecords, 0);
    } catch {
      return 0;
    }
  };
  const PER = 3000;
  const BATCHES = 10;
  try {
    await agent.start();
    await waitFor(() => agent.proc.log.some((l) => /connected to/.test(l)), { what: 'connected' });
    await sleep(200);
    const kills = new Set([2 + Math.floor(rnd() * 3), 6 + Math.floor(rnd() * 3)]);
    const per = PER / BATCHES;
    for (let b = 0; b < BATCHES; b++) {
      for (const kind of ['gps', 'can', 'misc']) {
        const lines = Array.from({ length: per }, (_, i) => `n=${b * per + i} ${kind}`);
        await pub(broker, { topic: `fleet/truck-1/${kind}`, lines, qos: 1 });
      }
      if (kills.has(b)) {
        await agent.kill('SIGKILL');
        await sleep(100 + Math.floor(rnd() * 200));
        await agent.start();
      }
    }
    await waitFor(() => count(GPS) >= PER && count(CAN) >= PER && count(TABLE) >= PER,
      { timeoutMs: 60000, what: `${PER} rows in each table (seed ${seed})` });
    await sleep(300);
    // status.json is rewritten every 500 ms; wait for one written after the last record
    const want = [['fleet', TABLE, PER], ['fleet/gps', GPS, PER], ['fleet/can', CAN, PER]];
    const streams = () => (agent.status()?.streams ?? []).map((s) => [s.name, s.table, s.records]);
    await waitFor(() => JSON.stringify(streams()) === JSON.stringify(want), { what: 'status per stream' })
      .catch(() => {});
    assert.deepEqual(streams(), want);
    await agent.stop();
    await server.stop();
    for (const [t, kind] of [[GPS, 'gps'], [CAN, 'can'], [TABLE, 'misc']]) {
      const snap = await verifyTable(server.tableDir(t));
      const [r] = await query(`SELECT count(*) AS n, count(DISTINCT payload) AS d,
          count(*) FILTER (WHERE payload <> 'n=' || seq || ' ${kind}') AS wrong,
          count(DISTINCT stream_id) AS streams FROM ${duckFrom(snap.files)}`);
      assert.deepEqual([Number(r.n), Number(r.d), Number(r.wrong), Number(r.streams)], [PER, PER, 0, 1],
        `${t} (seed ${seed})`);
    }
  } finally {
    await agent.kill();
    await server.kill();
    await broker.kill();
  }
});

test('QoS 2 from paho-mqtt through a broker restart: every message once, in order', { timeout: 180000 }, async () => {
  const dir = tmpDir('e2e-mqtt-qos2');
  const broker = await new Broker({ dir }).start();
  const server = await new Server({ dir, tables: [TABLE] }).start();
  const agent = new Agent({ dir, url: server.url,
    sources: [mqttSource({ port: broker.port, topics: ['q2/#'], qos: 2, protocol: '5' })] });
  const PY = '/usr/bin/python3';
  const PUB = path.join(path.dirname(new URL(import.meta.url).pathname), 'mqtt_pub.py');
  const paho = async (first, count) => {
    const r = await run(PY, [PUB, String(broker.port), 'q2/data', String(first), String(count), '2', '--v5']);
    assert.equal(r.code, 0, r.stderr);
  };
  try {
    await agent.start();
    await waitFor(() => agent.proc.log.some((l) => /connected to/.test(l)), { what: 'connected' });
    await sleep(200);
    await paho(0, 2000);
    await waitFor(() => rows(server) >= 1000, { what: 'first rows' });
    // the broker goes away (its session and queue persist on disk) and comes back
    await broker.stop();
    await waitFor(() => agent.proc.log.some((l) => /disconnected from the broker|connection lost/.test(l)),
      { what: 'the agent noticing' });
    await broker.start();
    await waitFor(() => agent.proc.log.filter((l) => /connected to/.test(l)).length >= 2,
      { timeoutMs: 40000, what: 'reconnect after the broker restart' });
    await paho(2000, 2000);
    await waitFor(() => rows(server) >= 4000, { timeoutMs: 60000, what: '4000 rows' });
    await sleep(300);
    await agent.stop();
    await server.stop();
    await checkNumbered(server, 4000);
  } finally {
    await agent.kill();
    await server.kill();
    await broker.kill();
  }
});
