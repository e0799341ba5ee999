// End to end for the file source's rotation guarantees: any number of rename rotations
// between two reads — while the agent runs, is SIGSTOPped, stopped or SIGKILLed — loses no
// line and reads each rotated file to its end, oldest first; copytruncate under a fast writer
// finishes the copy before the truncated file; a line cut by line_timeout_ms comes out as two
// records both marked as pieces. Each test reads the Delta table the real runnel-server wrote
// with DuckDB and parquet-wasm (verifyTable) and checks every line exactly once, in order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Agent, Server, freePort, prng, sleep, tmpDir, waitFor } from './lib/harness.mjs';
import { duckFrom, query, replayLog, verifyTable } from './lib/table.mjs';

const TABLE = 'main.default.telemetry';
const pad = 'p'.repeat(30);
const line = (tag, i) => `${tag} ${i} ${pad}`;

function tableRows(server) {
  try {
    return replayLog(server.tableDir(TABLE)).live.reduce((n, f) => n + f.numRecords, 0);
  } catch {
    return 0;
  }
}

async function start(name, extra = '') {
  const dir = tmpDir(name);
  const logDir = path.join(dir, 'logs');
  fs.mkdirSync(logDir);
  const log = path.join(logDir, 'app.log');
  fs.writeFileSync(log, '');
  const port = await freePort();
  const server = new Server({ dir, port, tables: [TABLE] });
  const agent = new Agent({
    dir,
    url: `http://127.0.0.1:${port}`,
    sources: [{
      conf: `type = "file"; name = "f"; table = "${TABLE}"; paths = [ "${log}" ];
        read_from = "beginning"; rotate_wait_ms = 500; ${extra}`,
    }],
  });
  await server.start();
  await agent.start();
  return { dir, log, server, agent };
}

async function waitRows(server, agent, n, what, timeoutMs = 60000) {
  await waitFor(() => tableRows(server) >= n, { timeoutMs, intervalMs: 100, what })
    .catch((e) => {
      throw new Error(`${e.message}; ${tableRows(server)} rows\nagent:\n${agent.proc.tail()}\nserver:\n${server.proc.tail()}`);
    });
}

// Waits until the row count has not changed for quietMs (late rows, duplicates included,
// have landed), bounded by timeoutMs.
async function waitStable(server, { quietMs = 1500, timeoutMs = 60000 } = {}) {
  let last = -1;
  let since = Date.now();
  await waitFor(() => {
    const n = tableRows(server);
    if (n !== last) {
      last = n;
      since = Date.now();
    }
    return Date.now() - since >= quietMs;
  }, { timeoutMs, intervalMs: 100, what: 'a stable row count' });
}

// Appends lines [from, to) of `tag` to the file at `file` (opened by name each time, as an
// application that logs through the path does).
function append(file, tag, from, to) {
  let s = '';
  for (let i = from; i < to; i++) s += `${line(tag, i)}\n`;
  fs.appendFileSync(file, s);
  return to;
}

// logrotate's numbered rename: app.log.k -> app.log.k+1 (oldest first), app.log ->
// app.log.1, a new empty app.log.
function rotateNumbered(log) {
  const dir = path.dirname(log);
  const base = path.basename(log);
  const nums = fs.readdirSync(dir).map((n) => n.match(new RegExp(`^${base.replace('.', '\\.')}\\.(\\d+)$`)))
    .filter(Boolean).map((m) => Number(m[1])).sort((a, b) => b - a);
  for (const k of nums) fs.renameSync(`${log}.${k}`, `${log}.${k + 1}`);
  fs.renameSync(log, `${log}.1`);
  fs.writeFileSync(log, '');
}

// The table read back by DuckDB and parquet-wasm: lines 0..n-1 of `tag`, each exactly once,
// in stream order (seq contiguous from 0), none marked as a piece.
async function checkLines(server, tag, n) {
  const snap = await verifyTable(server.tableDir(TABLE));
  const from = duckFrom(snap.files);
  const rows = await query(`SELECT seq, payload, flags, attributes FROM ${from} ORDER BY seq`);
  const [agg] = await query(`SELECT count(*) AS n, count(DISTINCT seq) AS ds, count(DISTINCT payload) AS dp,
      min(seq) AS lo, max(seq) AS hi, count(DISTINCT stream_id) AS s FROM ${from}`);
  const got = rows.map((r) => r.payload);
  const missing = [];
  for (let i = 0; i < n && missing.length < 10; i++) if (!got.includes(line(tag, i))) missing.push(i);
  assert.deepEqual(missing, [], 'no line lost');
  assert.equal(Number(agg.n), n, 'one row per line');
  assert.equal(Number(agg.dp), n, 'every line exactly once');
  assert.equal(Number(agg.ds), n, 'seq unique');
  assert.equal(Number(agg.lo), 0);
  assert.equal(Number(agg.hi), n - 1, 'seq contiguous');
  assert.equal(Number(agg.s), 1, 'one stream');
  rows.forEach((r, i) => {
    assert.equal(r.payload, line(tag, i), `line ${i} at stream position ${i}`);
    assert.equal(Number(r.flags), 0, `line ${i}: whole, not a piece`);
    assert.equal(r.attributes, null, `line ${i}: no piece attributes`);
  });
  return rows;
}

function stopProc(agent) {
  agent.proc.child.kill('SIGSTOP');
}

function contProc(agent) {
  agent.proc.child.kill('SIGCONT');
}

test('three rename rotations while the agent is SIGSTOPped: nothing lost, in order', { timeout: 180000 }, async () => {
  const { log, server, agent } = await start('e2e-rot-sigstop');
  try {
    let n = append(log, 'a', 0, 1000);
    await waitRows(server, agent, n, 'the first lines in the table');
    stopProc(agent);
    // app.log gets more lines, then three rotations, each new file written before the next
    n = append(log, 'a', n, n + 500);
    for (let r = 0; r < 3; r++) {
      rotateNumbered(log);
      n = append(log, 'a', n, n + 500);
    }
    contProc(agent);
    await waitRows(server, agent, n, 'every line after SIGCONT');
    await waitStable(server);
    await agent.stop();
    await server.stop();
    await checkLines(server, 'a', n);
    assert.ok(agent.proc.log.some((l) => /rotated in between/.test(l)), 'the files in between were found');
  } finally {
    contProc(agent);
    await agent.kill();
    await server.kill();
  }
});

test('two dated rotations while the agent is stopped: finished in order at restart', { timeout: 180000 }, async () => {
  const { log, server, agent } = await start('e2e-rot-stopped');
  try {
    let n = append(log, 'b', 0, 800);
    await waitRows(server, agent, n, 'the first lines in the table');
    await agent.stop();
    // logrotate dateext over two days: app.log-20261205, app.log-20261206
    n = append(log, 'b', n, n + 300);
    fs.renameSync(log, `${log}-20261205`);
    fs.writeFileSync(log, '');
    n = append(log, 'b', n, n + 300);
    fs.renameSync(log, `${log}-20261206`);
    fs.writeFileSync(log, '');
    n = append(log, 'b', n, n + 300);
    await agent.start();
    n = append(log, 'b', n, n + 100);
    await waitRows(server, agent, n, 'every line after the restart');
    await waitStable(server);
    await agent.stop();
    await server.stop();
    await checkLines(server, 'b', n);
  } finally {
    await agent.kill();
    await server.kill();
  }
});

test('rename rotations around agent SIGKILLs under continuous writes', { timeout: 240000 }, async () => {
  const seed = Number(process.env.RN_SEED || Date.now() % 1000000);
  const rnd = prng(seed);
  console.log(`# seed ${seed} (replay with RN_SEED=${seed})`);
  const { log, server, agent } = await start('e2e-rot-kill');
  const events = [];
  try {
    let n = 0;
    let writing = true;
    const writer = (async () => {
      while (writing) {
        n = append(log, 'c', n, n + 20);
        await sleep(3);
      }
    })();
    for (let round = 0; round < 4; round++) {
      await sleep(300 + rnd() * 500);
      rotateNumbered(log);
      events.push(`rotate@${n}`);
      await sleep(rnd() * 300);
      await agent.kill('SIGKILL');
      events.push(`kill@${n}`);
      // one or two rotations while it is dead
      const k = 1 + Math.floor(rnd() * 2);
      for (let j = 0; j < k; j++) {
        await sleep(100 + rnd() * 200);
        rotateNumbered(log);
        events.push(`rotate@${n}`);
      }
      await sleep(rnd() * 200);
      await agent.start();
    }
    writing = false;
    await writer;
    await waitRows(server, agent, n, `all ${n} lines (seed ${seed}: ${events.join(' ')})`, 120000);
    await waitStable(server);
    await agent.stop();
    await server.stop();
    await checkLines(server, 'c', n);
    console.log(`# ${n} lines, ${events.join(' ')}`);
  } finally {
    await agent.kill();
    await server.kill();
  }
});

test('copytruncate under a fast writer: the copy is finished first, nothing lost', { timeout: 180000 }, async () => {
  const { log, server, agent } = await start('e2e-copytrunc');
  try {
    // the application's own O_APPEND descriptor: after a truncate it writes at the new end
    const fd = fs.openSync(log, 'a');
    let n = 0;
    const write = (k) => {
      let s = '';
      for (let i = n; i < n + k; i++) s += `${line('d', i)}\n`;
      fs.writeSync(fd, s);
      n += k;
    };
    const copytruncate = () => {
      // logrotate copytruncate with rotate 3: shift the old copies, copy, truncate
      for (const k of [2, 1]) if (fs.existsSync(`${log}.${k}`)) fs.renameSync(`${log}.${k}`, `${log}.${k + 1}`);
      fs.copyFileSync(log, `${log}.1`);
      fs.truncateSync(log, 0);
    };
    for (let round = 0; round < 6; round++) {
      for (let t = 0; t < 20; t++) {
        write(50);
        await sleep(2);
      }
      // every other round the agent lags (SIGSTOP): it has lines still to read in the
      // copy, and the writer refills the file past the agent's position or not
      const lag = round % 2 === 1;
      if (lag) stopProc(agent);
      write(300);
      copytruncate();
      write([3000, 50, 3000, 8000, 3000, 3000][round]);
      if (lag) contProc(agent);
    }
    fs.closeSync(fd);
    await waitRows(server, agent, n, 'every line of every copy and file');
    await waitStable(server);
    await agent.stop();
    await server.stop();
    await checkLines(server, 'd', n);
  } finally {
    contProc(agent);
    await agent.kill();
    await server.kill();
  }
});

test('a line cut by line_timeout_ms: both records are marked pieces', { timeout: 120000 }, async () => {
  const { log, server, agent } = await start('e2e-linetimeout', 'line_timeout_ms = 300;');
  try {
    append(log, 'e', 0, 3);
    fs.appendFileSync(log, 'e 3 the first part');
    await waitRows(server, agent, 4, 'the first part out after the timeout');
    fs.appendFileSync(log, ' and the rest\n');
    append(log, 'e', 4, 6);
    await waitRows(server, agent, 7, 'the rest and the lines after it');
    await waitStable(server);
    await agent.stop();
    await server.stop();
    const snap = await verifyTable(server.tableDir(TABLE));
    const rows = await query(`SELECT seq, payload, flags,
        json_extract_string(attributes, '$."runnel.piece"') AS piece,
        json_extract_string(attributes, '$."runnel.split"') AS part
        FROM ${duckFrom(snap.files)} ORDER BY seq`);
    assert.deepEqual(rows.map((r) => r.payload), [line('e', 0), line('e', 1), line('e', 2),
      'e 3 the first part', ' and the rest', line('e', 4), line('e', 5)]);
    assert.deepEqual(rows.map((r) => Number(r.seq)), [0, 1, 2, 3, 4, 5, 6]);
    for (const i of [0, 1, 2, 5, 6]) {
      assert.equal(Number(rows[i].flags), 0);
      assert.equal(rows[i].piece, null);
    }
    assert.deepEqual([rows[3].piece, rows[3].part, Number(rows[3].flags)], ['timeout', '1', 1]);
    assert.deepEqual([rows[4].piece, rows[4].part, Number(rows[4].flags)], ['timeout', '2/2', 1]);
    // a reader puts the line back together from the marks
    const [whole] = await query(`SELECT string_agg(payload, '' ORDER BY seq) AS line FROM ${duckFrom(snap.files)}
        WHERE json_extract_string(attributes, '$."runnel.piece"') IS NOT NULL`);
    assert.equal(whole.line, 'e 3 the first part and the rest');
  } finally {
    await agent.kill();
    await server.kill();
  }
});
