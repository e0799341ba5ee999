// The agent's buffer under pressure, end to end: policy drop_oldest (tombstones that count the
// loss, newest data kept), a source ttl, and a full disk (ENOSPC) on the agent's data_dir, a
// small tmpfs: the agent stops reading, keeps forwarding, and recovers by itself when space
// returns — both when another file filled the disk and when its own backlog did.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Agent, Server, agentBin, freePort, prng, run, sleep, tmpDir, waitFor } from './lib/harness.mjs';
import { duckFrom, query, replayLog, verifyTable } from './lib/table.mjs';

const TABLE = 'main.default.telemetry';

// Lines "<i> <hex>" of ~lineBytes that zstd cannot shrink much, so byte caps are reached.
function lines(from, to, rnd, lineBytes = 200) {
  let s = '';
  for (let i = from; i < to; i++) {
    let hex = '';
    while (hex.length < lineBytes) hex += Math.floor(rnd() * 0x100000000).toString(16).padStart(8, '0');
    s += `${i} ${hex.slice(0, lineBytes)}\n`;
  }
  return s;
}

function tableRows(server) {
  try {
    return replayLog(server.tableDir(TABLE)).live.reduce((n, f) => n + f.numRecords, 0);
  } catch {
    return 0;
  }
}

// Everything the agent buffered has been acknowledged (asked over the status socket:
// status.json cannot be rewritten while the disk is full).
async function drained(agent, records) {
  const st = await statusNow(agent);
  if (!st) return false;
  const s = st.streams[0];
  return s.records >= records && s.acked === s.next_offset - 1 && JSON.stringify(s);
}

async function statusNow(agent) {
  const r = await run(agentBin, ['status', '--json', '-c', agent.conf], { timeout: 5000 });
  return r.code === 0 ? JSON.parse(r.stdout) : null;
}

// waitFor that shows the agent's log when it gives up.
function waitAgent(agent, fn, opts) {
  return waitFor(fn, opts).catch((e) => {
    throw new Error(`${e.message}\nagent:\n${agent.proc.tail()}`);
  });
}

// Rows of the table: the data rows (flags 0) and the tombstones (flags 4) with their counts.
async function tableContent(server) {
  const snap = await verifyTable(server.tableDir(TABLE));
  const from = duckFrom(snap.files);
  const data = await query(`SELECT seq, CAST(split_part(payload, ' ', 1) AS BIGINT) AS line
      FROM ${from} WHERE flags = 0 ORDER BY seq`);
  const tombs = await query(`SELECT seq, payload,
      json_extract_string(attributes, '$."runnel.error"') AS why,
      CAST(json_extract_string(attributes, '$."runnel.dropped_records"') AS BIGINT) AS n,
      json_extract_string(attributes, '$."runnel.dropped_seq"') AS range
      FROM ${from} WHERE flags = 4 ORDER BY seq`);
  const [other] = await query(`SELECT count(*) AS n FROM ${from} WHERE flags NOT IN (0, 4)`);
  assert.equal(Number(other.n), 0, 'only data rows and tombstones');
  return { data: data.map((r) => [Number(r.seq), Number(r.line)]), tombs };
}

// Data rows and tombstone ranges together cover seq 0..total-1 exactly once, and every data
// row is the line with its own number (nothing reordered or shifted).
function assertCoverage({ data, tombs }, total) {
  const seen = new Uint8Array(total);
  for (const [seq, line] of data) {
    assert.equal(line, seq, `row seq ${seq} holds line ${line}`);
    assert.equal(seen[seq], 0, `seq ${seq} twice`);
    seen[seq] = 1;
  }
  for (const t of tombs) {
    const [lo, hi] = t.range.split('-').map(Number);
    assert.equal(Number(t.seq), lo, 'a tombstone carries the first dropped seq');
    assert.equal(hi - lo + 1, Number(t.n), 'range and count agree');
    assert.equal(t.payload, '', 'a tombstone has no payload');
    for (let s = lo; s <= hi; s++) {
      assert.equal(seen[s], 0, `seq ${s} both dropped and delivered (or dropped twice)`);
      seen[s] = 1;
    }
  }
  const missing = seen.indexOf(0);
  assert.equal(missing, -1, `seq ${missing} neither delivered nor counted as dropped`);
}

test('drop_oldest keeps the newest data and leaves tombstones that count every dropped record', { timeout: 180000 }, async () => {
  const dir = tmpDir('e2e-drop');
  const log = path.join(dir, 'in.log');
  fs.writeFileSync(log, '');
  const port = await freePort(); // no server yet: everything stays buffered
  const server = new Server({ dir, port, tables: [TABLE] });
  const agent = new Agent({
    dir, url: `http://127.0.0.1:${port}`, sources: [{ name: 'in', paths: [log] }],
    bufferMaxBytes: '"1M"', bufferExtra: 'policy = "drop_oldest";', chunkExtra: 'max_bytes = "32K";',
  });
  const N = 30000; // ~6 MB of text, ~3.5 MB compressed: over three times the cap
  const rnd = prng(7);
  await agent.start();
  try {
    for (let k = 0; k < 10; k++) {
      fs.appendFileSync(log, lines((k * N) / 10, ((k + 1) * N) / 10, rnd));
      await sleep(100);
    }
    await waitFor(() => agent.status()?.streams[0].records >= N, { timeoutMs: 60000, what: 'all lines read' });
    const st = agent.status();
    assert.ok(st.dropped_records > 0, 'something was dropped');
    assert.ok(st.buffer_bytes <= 1 << 20, `buffer stays under its cap (${st.buffer_bytes})`);
    assert.equal(st.buffer_policy, 'drop_oldest');
    await server.start();
    await waitFor(() => drained(agent, N), { timeoutMs: 90000, intervalMs: 200, what: 'backlog delivered' });
    await agent.stop();
    await server.stop();
    const final = agent.status();
    const content = await tableContent(server);
    assertCoverage(content, N);
    const dropped = content.tombs.reduce((n, t) => n + Number(t.n), 0);
    assert.equal(dropped, final.dropped_records, 'the table counts what the agent reports');
    assert.equal(dropped, final.streams[0].dropped_records);
    assert.ok(content.tombs.every((t) => /buffer full \(policy drop_oldest\)/.test(t.why)));
    // the oldest went: the newest line is data, the first is a tombstone
    assert.equal(content.data.at(-1)[0], N - 1, 'the newest line is delivered');
    assert.equal(Number(content.tombs[0].seq), 0, 'the oldest lines were dropped');
    assert.ok(content.data.length > 1000, 'a cap\'s worth of data is delivered');
    assert.ok(agent.proc.log.some((l) => /dropped the oldest records \(policy drop_oldest\)/.test(l)));
  } finally {
    await agent.kill();
    await server.kill();
  }
});

test('a source ttl drops what waited too long and keeps what is fresh', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-ttl');
  const log = path.join(dir, 'in.log');
  fs.writeFileSync(log, '');
  const port = await freePort();
  const server = new Server({ dir, port, tables: [TABLE] });
  const agent = new Agent({
    dir, url: `http://127.0.0.1:${port}`,
    sources: [{ conf: `type = "file"; name = "in"; table = "${TABLE}"; paths = ["${log}"]; read_from = "beginning"; ttl = "1s";` }],
  });
  const rnd = prng(11);
  await agent.start();
  try {
    fs.appendFileSync(log, lines(0, 1000, rnd));
    await waitFor(() => agent.status()?.expired_records === 1000, { timeoutMs: 20000, what: '1000 records expired' });
    fs.appendFileSync(log, lines(1000, 1500, rnd));
    await waitFor(() => agent.status()?.streams[0].records === 1500, { what: 'fresh lines read' });
    await server.start();
    await waitFor(() => drained(agent, 1500), { timeoutMs: 30000, what: 'delivered' });
    await agent.stop();
    await server.stop();
    const content = await tableContent(server);
    assertCoverage(content, 1500);
    assert.deepEqual(content.data.map(([s]) => s), Array.from({ length: 500 }, (_, i) => 1000 + i));
    assert.ok(content.tombs.every((t) => /older than the source's ttl/.test(t.why)));
    assert.equal(agent.status().streams[0].expired_records, 1000);
  } finally {
    await agent.kill();
    await server.kill();
  }
});

// Mounts a tmpfs of `mb` MiB on dir (root only; CI runs as root).
function mountTmpfs(dir, mb) {
  fs.mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${mb}m`, 'tmpfs', dir]);
}
function umount(dir) {
  try { execFileSync('umount', ['-l', dir]); } catch { /* already gone */ }
}
// Fills the file system of dir with one file until ENOSPC.
function fillDisk(file) {
  const fd = fs.openSync(file, 'w');
  const block = Buffer.alloc(64 * 1024, 1);
  try {
    for (;;) fs.writeSync(fd, block);
  } catch (e) {
    if (e.code !== 'ENOSPC') throw e;
  } finally {
    fs.closeSync(fd);
  }
}

async function checkExactlyOnce(server, n) {
  const content = await tableContent(server);
  assert.equal(content.tombs.length, 0, 'nothing dropped under the block policy');
  assert.equal(content.data.length, n, 'every line once');
  content.data.forEach(([seq, line], i) => {
    assert.equal(seq, i, 'seq contiguous');
    assert.equal(line, i, 'line i is seq i');
  });
}

test('another file fills the disk: the agent stops reading, keeps sending, resumes when space returns', { timeout: 180000 }, async () => {
  assert.equal(process.getuid(), 0, 'this test mounts a tmpfs and must run as root (CI does)');
  const dir = tmpDir('e2e-enospc');
  const log = path.join(dir, 'in.log');
  fs.writeFileSync(log, '');
  const server = new Server({ dir, tables: [TABLE] });
  await server.start();
  const agent = new Agent({
    dir, url: server.url, sources: [{ name: 'in', paths: [log] }],
    bufferExtra: 'reserve = "2M";', chunkExtra: 'max_bytes = "64K";',
  });
  mountTmpfs(agent.dataDir, 24);
  const rnd = prng(13);
  let n = 0;
  try {
    await agent.start();
    fs.appendFileSync(log, lines(n, n + 5000, rnd)); n += 5000;
    await waitAgent(agent, () => drained(agent, n), { what: 'first lines delivered' });
    // the disk fills up under the agent while the server is slow to acknowledge: stop it
    server.proc.child.kill('SIGSTOP'); // (Proc.kill would wait for an exit)
    fs.appendFileSync(log, lines(n, n + 5000, rnd)); n += 5000;
    fillDisk(path.join(agent.dataDir, 'ballast'));
    fs.appendFileSync(log, lines(n, n + 20000, rnd)); n += 20000;
    await waitAgent(agent, async () => (await statusNow(agent))?.disk_full === true, { timeoutMs: 30000, what: 'disk full reported' });
    assert.ok(agent.proc.log.some((l) => /disk full: no new records are accepted/.test(l)));
    server.proc.child.kill('SIGCONT');
    // forwarding goes on while the disk is full: acks still delete chunks
    const before = tableRows(server);
    await waitAgent(agent, () => tableRows(server) > before, { timeoutMs: 30000, what: 'rows still arrive while the disk is full' });
    fs.unlinkSync(path.join(agent.dataDir, 'ballast'));
    await waitAgent(agent, async () => (await statusNow(agent))?.disk_full === false, { timeoutMs: 30000, what: 'recovered' });
    fs.appendFileSync(log, lines(n, n + 5000, rnd)); n += 5000;
    await waitAgent(agent, () => drained(agent, n), { timeoutMs: 90000, intervalMs: 200, what: 'everything delivered' });
    assert.ok(agent.proc.log.some((l) => /disk space is back/.test(l)));
    await agent.stop();
    await server.stop();
    await checkExactlyOnce(server, n);
  } finally {
    if (server.proc && !server.proc.exited) server.proc.child.kill('SIGCONT');
    await agent.kill();
    await server.kill();
    umount(agent.dataDir);
  }
});

test('the agent\'s own backlog fills the disk while offline; delivering it gives the space back', { timeout: 180000 }, async () => {
  assert.equal(process.getuid(), 0, 'this test mounts a tmpfs and must run as root (CI does)');
  const dir = tmpDir('e2e-enospc-self');
  const log = path.join(dir, 'in.log');
  fs.writeFileSync(log, '');
  const port = await freePort();
  const server = new Server({ dir, port, tables: [TABLE] });
  const agent = new Agent({
    dir, url: `http://127.0.0.1:${port}`, sources: [{ name: 'in', paths: [log] }],
    bufferExtra: 'reserve = "2M";', chunkExtra: 'max_bytes = "64K";',
  });
  mountTmpfs(agent.dataDir, 8);
  const rnd = prng(17);
  const N = 100000; // ~20 MB of text, ~11 MB compressed: far more than fits next to the reserve
  try {
    await agent.start();
    for (let k = 0; k < 10; k++) fs.appendFileSync(log, lines((k * N) / 10, ((k + 1) * N) / 10, rnd));
    await waitAgent(agent, async () => (await statusNow(agent))?.disk_full === true, { timeoutMs: 60000, what: 'disk full reported' });
    const st = await statusNow(agent);
    assert.ok(st.streams[0].records < N, 'the source paused before the end of the file');
    await server.start();
    await waitAgent(agent, () => drained(agent, N), { timeoutMs: 120000, intervalMs: 250, what: 'everything delivered after the disk freed up' });
    // The last commits may meet ENOSPC once more (the tmpfs is that small); the state ends by
    // itself at the next free-space check (once a second) once the acks have freed pages.
    await waitAgent(agent, async () => (await statusNow(agent))?.disk_full === false,
      { timeoutMs: 15000, what: 'disk_full over after the backlog went out' });
    await agent.stop();
    await server.stop();
    await checkExactlyOnce(server, N);
  } finally {
    await agent.kill();
    await server.kill();
    umount(agent.dataDir);
  }
});
