// A large backlog after an outage must not starve live data (backlog_split): once the link is
// back and the backlog is old, new records go to a new stream of the source (<name>~1) that
// is sent alongside the draining backlog. The link is a throttled proxy, so the backlog takes
// many seconds to drain; live lines written meanwhile must reach the table before it is done,
// and at the end every line is in the table exactly once with seq continuing across streams.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Agent, Server, prng, sleep, tmpDir, waitFor } from './lib/harness.mjs';
import { Proxy } from './lib/proxy.mjs';
import { duckFrom, query, replayLog, verifyTable } from './lib/table.mjs';

const TABLE = 'main.default.telemetry';

function lines(from, to, rnd) {
  let s = '';
  for (let i = from; i < to; i++) {
    let hex = '';
    while (hex.length < 200) hex += Math.floor(rnd() * 0x100000000).toString(16).padStart(8, '0');
    s += `${i} ${hex.slice(0, 200)}\n`;
  }
  return s;
}

async function rowsWhere(server, where) {
  let snap;
  try {
    snap = replayLog(server.tableDir(TABLE));
  } catch {
    return 0;
  }
  if (!snap.live.length) return 0;
  const [r] = await query(`SELECT count(*) AS n FROM ${duckFrom(snap.live.map((f) => f.path))} WHERE ${where}`);
  return Number(r.n);
}

test('live records overtake a draining backlog on a stream of their own', { timeout: 180000 }, async () => {
  const dir = tmpDir('e2e-backlog');
  const log = path.join(dir, 'in.log');
  fs.writeFileSync(log, '');
  const server = new Server({ dir, tables: [TABLE] });
  await server.start();
  const proxy = new Proxy({ target: server.port, seed: 3 });
  await proxy.start();
  const agent = new Agent({
    dir, url: `http://127.0.0.1:${proxy.port}`,
    sources: [{ conf: `type = "file"; name = "in"; table = "${TABLE}"; paths = ["${log}"]; read_from = "beginning"; backlog_split = "1s";` }],
    chunkExtra: 'max_bytes = "64K";',
  });
  const rnd = prng(5);
  const BACKLOG = 30000; // ~3.5 MB compressed: about 12 s through a 300 KB/s link
  try {
    proxy.cut(); // the outage
    await agent.start();
    fs.appendFileSync(log, lines(0, BACKLOG, rnd));
    await waitFor(() => agent.status()?.streams[0].records === BACKLOG, { what: 'backlog buffered' });
    await sleep(1200); // older than backlog_split
    proxy.set({ bytesPerSec: 300 * 1024 });
    proxy.heal();
    // live data, a line every 20 ms
    let n = BACKLOG;
    const live = (async () => {
      for (let k = 0; k < 150; k++) {
        fs.appendFileSync(log, lines(n, n + 1, rnd));
        n++;
        await sleep(20);
      }
    })();
    await waitFor(() => agent.proc.log.some((l) => /new records go to stream in~1/.test(l)), {
      timeoutMs: 20000, what: 'the backlog split',
    }).catch((e) => { throw new Error(`${e.message}\n${agent.proc.tail()}`); });
    // status shows the intake rate of the live lines (~50/s)
    await waitFor(() => (agent.status()?.streams[0].records_per_s ?? 0) >= 10, { timeoutMs: 5000, what: 'records_per_s in status' });
    // live lines land while the backlog is still draining
    await waitFor(async () => (await rowsWhere(server, `CAST(split_part(payload, ' ', 1) AS BIGINT) >= ${BACKLOG}`)) >= 50, {
      timeoutMs: 20000, intervalMs: 200, what: 'live rows in the table',
    });
    const backlogDone = await rowsWhere(server, `CAST(split_part(payload, ' ', 1) AS BIGINT) < ${BACKLOG}`);
    assert.ok(backlogDone < BACKLOG, `live data arrived before the backlog was done (${backlogDone} of ${BACKLOG} delivered)`);
    await live;
    const total = n;
    await waitFor(async () => (await rowsWhere(server, 'true')) >= total, {
      timeoutMs: 90000, intervalMs: 500, what: 'everything delivered',
    });
    await agent.stop();
    await server.stop();
    const snap = await verifyTable(server.tableDir(TABLE));
    const from = duckFrom(snap.files);
    const [t] = await query(`SELECT count(*) AS n, count(DISTINCT seq) AS d, min(seq) AS lo, max(seq) AS hi,
        count(*) FILTER (WHERE CAST(split_part(payload, ' ', 1) AS BIGINT) <> seq) AS shifted,
        count(DISTINCT stream_id) AS streams FROM ${from}`);
    assert.equal(Number(t.n), total, 'every line once');
    assert.equal(Number(t.d), total, 'no seq twice');
    assert.equal(Number(t.lo), 0);
    assert.equal(Number(t.hi), total - 1, 'seq continues across the streams');
    assert.equal(Number(t.shifted), 0, 'line i is seq i');
    assert.equal(Number(t.streams), 2, 'the backlog stream and the live one');
    // each stream holds one contiguous seq range: the backlog, then the live data
    const per = await query(`SELECT stream_id, min(seq) AS lo, max(seq) AS hi, count(*) AS n FROM ${from} GROUP BY ALL ORDER BY lo`);
    assert.equal(Number(per[0].lo), 0);
    assert.equal(Number(per[1].lo), Number(per[0].hi) + 1);
    for (const p of per) assert.equal(Number(p.n), Number(p.hi) - Number(p.lo) + 1);
    // a restart continues in the newest stream
    await server.start();
    await agent.start();
    fs.appendFileSync(log, lines(total, total + 10, rnd));
    await waitFor(async () => (await rowsWhere(server, 'true')) >= total + 10, { what: 'rows after restart' });
    await agent.stop();
    const again = await verifyTable(server.tableDir(TABLE));
    const [u] = await query(`SELECT count(DISTINCT stream_id) AS s, max(seq) AS hi, count(*) AS n FROM ${duckFrom(again.files)}`);
    assert.equal(Number(u.s), 2, 'no third stream after a restart');
    assert.equal(Number(u.hi), total + 9);
    assert.equal(Number(u.n), total + 10);
  } finally {
    await agent.kill();
    await server.kill();
    await proxy.stop();
  }
});
