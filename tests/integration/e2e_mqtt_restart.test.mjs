// MQTT source across agent restarts, against the real mosquitto broker:
// - retained messages: four sources (MQTT 3.1.1 and 5, each with a persistent session and
//   with clean_session) see retained values published before the first start, a retained
//   value changed while the agent runs, one changed while it is stopped (QoS 1) and ordinary
//   messages; the agent is started four times (stopped cleanly and SIGKILLed in turn). Each
//   message must be in the table once, retained ones with the attribute mqtt.retain = "true"
//   and ordinary ones without it, read back with DuckDB and with parquet-wasm.
// - qos = 2: a TCP proxy between agent and broker SIGKILLs the agent the moment it sends
//   its first acknowledgement of a message; after a restart the message must be in the
//   table (the broker is told only once it is on disk).
// - redeliveries: with one record per chunk (the snapshot is taken inside emit) and the
//   agent SIGKILLed with its PUBACK held back, the broker's redelivery is skipped.
// Every wait is for a state (log line, row in the table), never for time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Agent, Server, tmpDir, waitFor } from './lib/harness.mjs';
import { duckFrom, query, verifyTable, wasmRead } from './lib/table.mjs';
import { Broker, pub } from './lib/mqtt.mjs';

const TABLE = 'main.default.mqtt_restart';
function source(name, port, protocol, clean) {
  return {
    conf: `type = "mqtt"; name = "${name}"; table = "${TABLE}"; port = ${port};
      topics = [ "${name}/#" ]; qos = 1; protocol = "${protocol}";
      client_id = "runnel-test-${name}"; clean_session = ${clean};`,
  };
}

// Every row as [source, topic, payload, retained], read by DuckDB and by parquet-wasm (which
// must agree), sorted.
async function tableRows(server) {
  const snap = await verifyTable(server.tableDir(TABLE));
  const retained = (attrs) => {
    if (attrs == null || attrs === '') return 'plain';
    const a = JSON.parse(attrs);
    return a['mqtt.retain'] === undefined ? 'plain' : `retain=${a['mqtt.retain']}`;
  };
  const duck = (await query(`SELECT source, topic, CAST(payload AS VARCHAR) AS payload, attributes
      FROM ${duckFrom(snap.files)}`))
    .map((r) => [r.source, r.topic, r.payload, retained(r.attributes)].join(' ')).sort();
  const wasm = [];
  for (const f of snap.files) {
    const t = wasmRead(f);
    const col = (n) => t.getChild(n);
    for (let i = 0; i < t.numRows; i++) {
      let p = col('payload').get(i);
      if (p instanceof Uint8Array) p = Buffer.from(p).toString();
      wasm.push([col('source').get(i), col('topic').get(i), p, retained(col('attributes').get(i))].join(' '));
    }
  }
  wasm.sort();
  assert.deepEqual(wasm, duck, 'DuckDB and parquet-wasm read the same rows');
  return duck;
}

async function hasPayloads(server, want) {
  let rows;
  try {
    rows = await tableRows(server);
  } catch {
    return false;
  }
  return want.every((w) => rows.some((r) => r.endsWith(` ${w} plain`)));
}

test('retained messages once per value across 4 starts (stop, SIGKILL), marked; MQTT 3.1.1 and 5, persistent and clean sessions', { timeout: 300000 }, async () => {
  const dir = tmpDir('e2e-mqtt-retained');
  const broker = await new Broker({ dir }).start();
  const server = await new Server({ dir, tables: [TABLE] }).start();
  const srcs = [
    ['v311', '3.1.1', false], ['v311c', '3.1.1', true], ['v5', '5', false], ['v5c', '5', true],
  ];
  const agent = new Agent({ dir, url: server.url,
    sources: srcs.map(([n, p, c]) => source(n, broker.port, p, c)) });
  const pubAll = async (suffix, payload, { retain = false } = {}) => {
    for (const [n] of srcs) {
      await pub(broker, { topic: `${n}/${suffix}`, lines: [`${n} ${payload}`], qos: 1,
        args: retain ? ['-r'] : [] });
    }
  };
  // Ready: every source has either its SUBACK or a resumed session holding its subscription.
  const ready = () => waitFor(() => srcs.every(([n]) => agent.proc.log.some((l) =>
    l.includes(`${n}: subscribed to ${n}/#`) || l.includes(`${n}: session resumed with its`))),
  { timeoutMs: 30000, what: 'subscriptions in place' });
  const marker = async (i) => {
    await pubAll('live', `live-${i}`);
    await waitFor(() => hasPayloads(server, srcs.map(([n]) => `${n} live-${i}`)),
      { timeoutMs: 60000, intervalMs: 300, what: `live-${i} in the table` });
  };
  try {
    await pubAll('ret/a', 'a1', { retain: true });
    await pubAll('ret/b', 'b1', { retain: true });
    // run 1: the retained values arrive with the subscription; b changes while we run
    await agent.start();
    await ready();
    await pubAll('ret/b', 'b2', { retain: true });
    await marker(1);
    await agent.stop();
    await pubAll('ret/a', 'a2', { retain: true }); // changed while stopped
    // run 2, SIGKILLed
    await agent.start();
    await ready();
    await marker(2);
    await agent.kill();
    await pubAll('ret/c', 'c1', { retain: true }); // a new retained topic while stopped
    // run 3, stopped
    await agent.start();
    await ready();
    await marker(3);
    await agent.stop();
    // run 4, SIGKILLed
    await agent.start();
    await ready();
    await marker(4);
    await agent.kill();
    await server.stop();

    const rows = await tableRows(server);
    for (const [n, , clean] of srcs) {
      const mine = rows.filter((r) => r.startsWith(`${n} `));
      // Persistent session: what changed while the agent was away was queued for it and
      // arrives as an ordinary message. Clean session: it arrives as retained, with the
      // subscription made at start.
      const away = clean ? 'retain=true' : 'plain';
      const want = [
        `${n} ${n}/ret/a ${n} a1 retain=true`,
        `${n} ${n}/ret/b ${n} b1 retain=true`,
        `${n} ${n}/ret/b ${n} b2 plain`,
        `${n} ${n}/ret/a ${n} a2 ${away}`,
        `${n} ${n}/ret/c ${n} c1 ${away}`,
        ...[1, 2, 3, 4].map((i) => `${n} ${n}/live ${n} live-${i} plain`),
      ].sort();
      assert.deepEqual(mine, want, `source ${n}`);
    }
  } finally {
    await agent.kill();
    await server.kill();
    await broker.kill();
  }
});

// A TCP proxy from a free port to the broker that parses the client's MQTT packets (fixed
// header: type nibble, remaining length varint) and calls onAck the moment it forwards the
// first PUBACK (4) or PUBREC (5) while armed; with w.swallow set, that packet is not forwarded
// (the agent dies before its acknowledgement reaches the broker).
async function ackWatcher(brokerPort, onAck) {
  const w = { armed: false, swallow: false, acks: 0, socks: new Set() };
  w.server = net.createServer((c) => {
    const up = net.connect(brokerPort, '127.0.0.1');
    w.socks.add(c);
    w.socks.add(up);
    let buf = Buffer.alloc(0);
    c.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        if (buf.length < 2) break;
        let len = 0;
        let mul = 1;
        let i = 1;
        for (; i < buf.length && i < 5; i++) {
          len += (buf[i] & 127) * mul;
          mul *= 128;
          if (!(buf[i] & 128)) break;
        }
        if (i >= buf.length || buf.length < i + 1 + len) break;
        const pkt = buf.subarray(0, i + 1 + len);
        buf = buf.subarray(i + 1 + len);
        const type = pkt[0] >> 4;
        const ack = (type === 4 || type === 5) && w.armed;
        if (!ack || !w.swallow) up.write(pkt);
        if (ack) {
          w.armed = false;
          w.acks++;
          onAck(type);
        }
      }
    });
    up.on('data', (d) => c.write(d));
    // the client's last packets (the acknowledgement) still reach the broker after a kill
    const end = () => { c.destroy(); up.destroy(); };
    c.on('error', end);
    up.on('error', end);
    c.on('close', () => up.end());
    up.on('close', end);
  });
  await new Promise((r) => w.server.listen(0, '127.0.0.1', r));
  w.port = w.server.address().port;
  w.close = () => {
    for (const s of w.socks) s.destroy();
    return new Promise((r) => w.server.close(r));
  };
  return w;
}

test('qos = 2: the broker gets its first acknowledgement only once the message is on disk (agent SIGKILLed at that moment)', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-mqtt-qos2-ack');
  const broker = await new Broker({ dir }).start();
  const server = await new Server({ dir, tables: [TABLE] }).start();
  let agent;
  let ackType = 0;
  const watch = await ackWatcher(broker.port, (type) => {
    ackType = type;
    agent.proc.child.kill('SIGKILL');
  });
  agent = new Agent({ dir, url: server.url, sources: [{
    conf: `type = "mqtt"; name = "q2"; table = "${TABLE}"; port = ${watch.port};
      topics = [ "q2/#" ]; qos = 2; protocol = "5"; client_id = "runnel-test-q2";` }] });
  try {
    await agent.start();
    await waitFor(() => agent.proc.log.some((l) => l.includes('q2: subscribed to q2/#')),
      { what: 'subscribed' });
    watch.armed = true;
    await pub(broker, { topic: 'q2/x', lines: ['q2 first'], qos: 2 });
    await agent.proc.exitPromise; // killed by the watcher at its acknowledgement
    assert.ok(ackType === 4 || ackType === 5);
    await agent.start();
    await waitFor(() => agent.proc.log.some((l) => /q2: (subscribed to|session resumed)/.test(l)),
      { what: 'resubscribed' });
    await pub(broker, { topic: 'q2/x', lines: ['q2 second'], qos: 2 });
    await waitFor(() => hasPayloads(server, ['q2 second']),
      { timeoutMs: 60000, intervalMs: 300, what: 'the second message in the table' });
    await agent.stop();
    await server.stop();
    const rows = await tableRows(server);
    assert.deepEqual(rows, ['q2 q2/x q2 first plain', 'q2 q2/x q2 second plain'],
      `acknowledged with packet type ${ackType}`);
  } finally {
    await agent.kill();
    await server.kill();
    await watch.close();
    await broker.kill();
  }
});

test('a message whose chunk closes inside emit is remembered: its redelivery after a SIGKILL before the PUBACK is skipped', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-mqtt-ring');
  const broker = await new Broker({ dir }).start();
  const server = await new Server({ dir, tables: [TABLE] }).start();
  let agent;
  const watch = await ackWatcher(broker.port, () => agent.proc.child.kill('SIGKILL'));
  watch.swallow = true;
  // one record per chunk: every emit closes its chunk and takes the snapshot inside emit
  agent = new Agent({ dir, url: server.url, chunkExtra: 'max_records = 1;', sources: [{
    conf: `type = "mqtt"; name = "ring"; table = "${TABLE}"; port = ${watch.port};
      topics = [ "ring/#" ]; qos = 1; client_id = "runnel-test-ring";` }] });
  try {
    await agent.start();
    await waitFor(() => agent.proc.log.some((l) => l.includes('ring: subscribed to ring/#')),
      { what: 'subscribed' });
    watch.armed = true;
    await pub(broker, { topic: 'ring/x', lines: ['ring first'], qos: 1 });
    await agent.proc.exitPromise; // killed with its PUBACK swallowed: the broker redelivers
    watch.swallow = false;
    await agent.start();
    await waitFor(() => agent.proc.log.some((l) => /ring: session resumed/.test(l)),
      { what: 'session resumed' });
    await pub(broker, { topic: 'ring/x', lines: ['ring second'], qos: 1 });
    await waitFor(() => hasPayloads(server, ['ring second']),
      { timeoutMs: 60000, intervalMs: 300, what: 'the second message in the table' });
    await agent.stop();
    await server.stop();
    assert.deepEqual(await tableRows(server), ['ring ring/x ring first plain', 'ring ring/x ring second plain']);
  } finally {
    await agent.kill();
    await server.kill();
    await watch.close();
    await broker.kill();
  }
});
