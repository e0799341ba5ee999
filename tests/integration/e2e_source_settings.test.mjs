// Per-source settings every plugin gets from the agent: the target table, static attributes,
// and the event time taken from a JSON field or cut out of text by a pattern, with the
// receive time as the fallback (counted in status.json). Read back by DuckDB.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Agent, Server, tmpDir, waitFor } from './lib/harness.mjs';
import { duckFrom, query, replayLog, verifyTable } from './lib/table.mjs';

const T_JSON = 'main.plant.json_events';
const T_TEXT = 'main.plant.text_events';

function rows(server, t) {
  try {
    return replayLog(server.tableDir(t)).live.reduce((n, f) => n + f.numRecords, 0);
  } catch {
    return 0;
  }
}

test('static attributes and event time from a JSON field or a pattern, per source and table', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-settings');
  const logs = path.join(dir, 'logs');
  fs.mkdirSync(logs);
  fs.writeFileSync(path.join(logs, 'j.log'), [
    '{"ts":1795600800123,"v":1}',                  // epoch ms
    '{"v":2,"ts":"2026-11-25T12:00:00.5+02:00"}',  // RFC 3339 with offset
    '{"v":3}',                                      // no field: receive time
    'not json at all',                              // not an object: receive time
  ].join('\n') + '\n');
  fs.writeFileSync(path.join(logs, 't.log'), [
    '2026-11-25 10:00:00,250 INFO pump started',
    '2026-11-25T10:00:01Z WARN pressure high',
    'garbled line without a time',
  ].join('\n') + '\n');
  const server = await new Server({ dir, tables: [T_JSON, T_TEXT] }).start();
  const agent = new Agent({ dir, url: server.url, sources: [
    { conf: `type = "file"; name = "j"; table = "${T_JSON}"; paths = ["${logs}/j.log"]; read_from = "beginning";
        event_time_field = "ts"; attributes = ["site=plant-3", "line=A"];` },
    { conf: `type = "file"; name = "t"; table = "${T_TEXT}"; paths = ["${logs}/t.log"]; read_from = "beginning";
        event_time_pattern = "^([0-9-]+[ T][0-9:,.]+Z?) "; attributes = "site=plant-3";` },
  ] });
  const t0 = Date.now();
  try {
    await agent.start();
    await waitFor(() => rows(server, T_JSON) >= 4 && rows(server, T_TEXT) >= 3, { what: 'rows in both tables' });
    // status.json is rewritten on a timer: wait for the one that has counted every record
    const st = await waitFor(() => {
      const s = agent.status();
      return s?.streams?.length === 2 && s.streams.every((x) => x.records >= (x.name === 'j' ? 4 : 3)) && s;
    }, { what: 'status counting every record' });
    assert.deepEqual(st.streams.map((s) => [s.name, s.event_time_fallbacks]), [['j', 2], ['t', 1]]);
    await agent.stop();
    await server.stop();

    const j = await verifyTable(server.tableDir(T_JSON));
    const jr = await query(`SELECT seq, epoch_us(event_time) AS ev, epoch_us(receive_time) AS rv, attributes
        FROM ${duckFrom(j.files)} ORDER BY seq`);
    assert.equal(jr.length, 4);
    assert.equal(Number(jr[0].ev), 1795600800123000);
    assert.equal(Number(jr[1].ev), 1795600800500000);
    for (const r of jr.slice(2)) {
      assert.equal(r.ev, r.rv, 'fallback: event time = receive time');
      assert.ok(Number(r.rv) >= t0 * 1000, 'receive time is now');
    }
    for (const r of jr) assert.deepEqual(JSON.parse(r.attributes), { site: 'plant-3', line: 'A' });

    const t = await verifyTable(server.tableDir(T_TEXT));
    const tr = await query(`SELECT epoch_us(event_time) AS ev, epoch_us(receive_time) AS rv, attributes
        FROM ${duckFrom(t.files)} ORDER BY seq`);
    assert.deepEqual(tr.slice(0, 2).map((r) => Number(r.ev)), [1795600800250000, 1795600801000000]);
    assert.equal(tr[2].ev, tr[2].rv);
    assert.deepEqual(JSON.parse(tr[0].attributes), { site: 'plant-3' });
  } finally {
    await agent.kill();
    await server.kill();
  }
});
