// End to end for the file source beyond plain tailing: logrotate's two rotation styles under
// continuous writes, multi-line records through agent SIGKILLs, a glob directory where
// files appear after the start, and a glob whose directories are made (and made again) after
// the start, found by inotify alone (the rescan 10 minutes away), also when they are removed
// and made again (twice) while the agent is SIGSTOPped. Every check ends with DuckDB reading the Delta table the real
// runnel-server wrote: each record exactly once (or, for copytruncate, what that style can
// guarantee) and in order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { Agent, Server, freePort, sleep, tmpDir, waitFor } from './lib/harness.mjs';
import { duckFrom, query, replayLog, verifyTable } from './lib/table.mjs';

const TABLE = 'main.default.telemetry';

function tableRows(server) {
  try {
    return replayLog(server.tableDir(TABLE)).live.reduce((n, f) => n + f.numRecords, 0);
  } catch {
    return 0;
  }
}

// A file source given as libconfig text (for keys the harness has no field for).
function fileSource(name, paths, extra = '') {
  return {
    conf: `type = "file"; name = "${name}"; table = "${TABLE}";
      paths = [ ${paths.map((p) => `"${p}"`).join(', ')} ]; ${/read_from/.test(extra) ? '' : 'read_from = "beginning";'} ${extra}`,
  };
}

async function start(name, sources) {
  const dir = tmpDir(name);
  const logDir = path.join(dir, 'logs');
  fs.mkdirSync(logDir);
  const port = await freePort();
  const server = new Server({ dir, port, tables: [TABLE] });
  const agent = new Agent({ dir, url: `http://127.0.0.1:${port}`, sources: sources(logDir) });
  return { dir, logDir, server, agent };
}

async function waitRows(server, agent, n, what) {
  await waitFor(() => tableRows(server) >= n, { timeoutMs: 120000, intervalMs: 200, what })
    .catch((e) => {
      throw new Error(`${e.message}\nagent:\n${agent.proc.tail()}\nserver:\n${server.proc.tail()}`);
    });
}

// Waits until the row count has not changed for `quietMs` (late rows, duplicates included,
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

// Rows of one source in stream order.
async function rowsOf(from, source) {
  return query(`SELECT seq, payload, flags FROM ${from} WHERE source = '${source}' ORDER BY seq`);
}

// A writer appending numbered lines through its own O_APPEND descriptor every few ms, as an
// application does; reopen() switches to the path's current file (logrotate's postrotate
// signal). `at(ms)` tells how many lines had been written that long ago.
class Writer {
  constructor(file, tag, { perTick = 10, tickMs = 5 } = {}) {
    this.file = file;
    this.tag = tag;
    this.perTick = perTick;
    this.tickMs = tickMs;
    this.n = 0;
    this.fd = fs.openSync(file, 'a');
    this.history = []; // [time, lines written so far]
    this.pad = 'y'.repeat(40);
  }
  async run(total) {
    while (this.n < total) {
      let s = '';
      for (let k = 0; k < this.perTick && this.n < total; k++) s += `${this.tag} ${this.n++} ${this.pad}\n`;
      fs.writeSync(this.fd, s);
      this.history.push([Date.now(), this.n]);
      await sleep(this.tickMs);
    }
    fs.closeSync(this.fd);
    this.closed = true;
  }
  reopen() {
    assert.ok(!this.closed, 'the writer is still running at the rotation (test pacing)');
    fs.closeSync(this.fd);
    this.fd = fs.openSync(this.file, 'a');
  }
  // Lines written at or before time t.
  linesAt(t) {
    let n = 0;
    for (const [ts, k] of this.history) if (ts <= t) n = k;
    return n;
  }
}

test('logrotate rename (create, compress) and copytruncate under continuous writes', { timeout: 300000 }, async () => {
  const ROT = 20000;
  const CT = 20000;
  const { logDir, server, agent } = await start('e2e-rotate', (d) => [
    // The glob matches app.log.1 and app.log.2.gz too: the rotated file must not be read
    // twice, the compressed one never. Rescans are 10 min apart, longer than any wait here:
    // inotify drives everything.
    fileSource('rot', [path.join(d, 'app.log*')], 'rotate_wait_ms = 1000; rescan_interval = "10m";'),
    // copytruncate: the copy (ct.log.1) is not matched.
    fileSource('ct', [path.join(d, 'ct.log')], 'rescan_interval = "10m";'),
  ]);
  const app = path.join(logDir, 'app.log');
  const ct = path.join(logDir, 'ct.log');
  fs.writeFileSync(app, '');
  fs.writeFileSync(ct, '');
  await server.start();
  await agent.start();
  try {
    const wa = new Writer(app, 'r');
    const wc = new Writer(ct, 'c');
    const writing = Promise.all([wa.run(ROT), wc.run(CT)]);
    const rotate = async () => {
      // logrotate "create": rename, create the new file, the app keeps writing to the old
      // one until it is told to reopen
      fs.renameSync(app, `${app}.1`);
      fs.writeFileSync(app, '');
      await sleep(300);
      wa.reopen();
    };
    await waitFor(() => wa.n >= ROT / 4, { what: 'a quarter written' });
    await rotate();
    // compress: app.log.1 -> app.log.2.gz (the glob matches it: it must be ignored)
    await waitFor(() => wa.n >= ROT / 2, { what: 'half written' });
    await sleep(1500); // app.log.1 is quiet for rotate_wait: finished before it goes away
    fs.writeFileSync(`${app}.2.gz`, zlib.gzipSync(fs.readFileSync(`${app}.1`)));
    fs.unlinkSync(`${app}.1`);
    await rotate();

    // copytruncate while the writer keeps appending: the copy runs in the thread pool, so
    // lines land between the copy and the truncate — logrotate's own race loses them.
    await waitFor(() => wc.n >= CT / 2, { what: 'half of ct written' });
    const tCopy = Date.now();
    await fs.promises.copyFile(ct, `${ct}.1`);
    await sleep(30);
    fs.truncateSync(ct, 0);
    const tTrunc = Date.now();
    await writing;

    // rot: every line; ct: everything except part of the copytruncate window
    const lo = wc.linesAt(tCopy - 1000);
    const hi = wc.linesAt(tTrunc + 50);
    await waitRows(server, agent, ROT + CT - (hi - lo), 'all lines but the window in the table');
    await waitStable(server);
    await agent.stop();
    await server.stop();
    const snap = await verifyTable(server.tableDir(TABLE));
    const from = duckFrom(snap.files);

    const rot = await rowsOf(from, 'rot');
    assert.equal(rot.length, ROT, 'rename rotation: every line exactly once');
    rot.forEach((r, i) => {
      assert.equal(r.payload.split(' ')[0], 'r', 'only app.log lines (nothing from the .gz)');
      assert.equal(Number(r.payload.split(' ')[1]), i, `rename rotation: line ${i} at seq position ${i}`);
    });

    // copytruncate: no duplicates, in order, and every missing line lies in the window from
    // (copy start - 1 s of agent lag) to the truncate.
    const c = (await rowsOf(from, 'ct')).map((r) => Number(r.payload.split(' ')[1]));
    for (let k = 1; k < c.length; k++) assert.ok(c[k] > c[k - 1], `ct in order, no duplicates (${c[k - 1]}, ${c[k]})`);
    const got = new Set(c);
    const missing = [];
    for (let i = 0; i < CT; i++) if (!got.has(i)) missing.push(i);
    console.log(`# copytruncate: ${missing.length} lines lost, window [${lo}, ${hi}), ${CT} written`);
    for (const m of missing) assert.ok(m >= lo && m < hi, `ct line ${m} lost outside the copytruncate window [${lo}, ${hi})`);
    assert.equal(c[c.length - 1], CT - 1, 'ct: the last line arrived');
  } finally {
    await agent.kill();
    await server.kill();
  }
});

// A Java-style log: event i has i % 5 continuation lines (a stack trace).
function event(i) {
  const lines = [`2024-05-01 12:00:${String(i % 60).padStart(2, '0')} ERROR [main] event ${i} failed`];
  const k = i % 5;
  if (k) lines.push(`java.lang.IllegalStateException: state ${i}`);
  for (let j = 1; j < k; j++) lines.push(`\tat com.example.Svc.step${j}(Svc.java:${100 + j})`);
  return lines.join('\n');
}

test('multi-line records: each event once, whole, in order, through agent SIGKILLs', { timeout: 300000 }, async () => {
  const N = 20000;
  const { logDir, server, agent } = await start('e2e-multiline', (d) => [
    fileSource('ml', [path.join(d, 'java.log')],
      'multiline_start = "^[0-9]{4}-[0-9]{2}-[0-9]{2} "; multiline_timeout = "300ms";'),
  ]);
  const log = path.join(logDir, 'java.log');
  fs.writeFileSync(log, '');
  await server.start();
  await agent.start();
  try {
    const fd = fs.openSync(log, 'a');
    const kills = [N / 4, N / 2, (3 * N) / 4];
    for (let i = 0; i < N;) {
      let s = '';
      // cut the batch inside an event now and then: the rest follows a little later
      for (let k = 0; k < 200 && i < N; k++) s += `${event(i++)}\n`;
      const cut = i % 3 === 0 ? s.length - 7 : s.length;
      fs.writeSync(fd, s.slice(0, cut));
      await sleep(5);
      fs.writeSync(fd, s.slice(cut));
      if (kills.length && i >= kills[0]) {
        kills.shift();
        await sleep(20);
        await agent.kill('SIGKILL');
        await agent.start();
      }
      await sleep(5);
    }
    fs.closeSync(fd);
    await waitRows(server, agent, N, 'every event in the table');
    await waitStable(server); // duplicates, if a bug made any, land before we count
    await agent.stop();
    await server.stop();
    const snap = await verifyTable(server.tableDir(TABLE));
    const rows = await rowsOf(duckFrom(snap.files), 'ml');
    assert.equal(rows.length, N, 'one row per event');
    rows.forEach((r, i) => {
      assert.equal(r.payload, event(i), `event ${i}: whole, once, in order`);
      assert.equal(Number(r.flags), 0, `event ${i}: not split`);
    });
  } finally {
    await agent.kill();
    await server.kill();
  }
});

test('a glob directory: files appearing after the start are read from their beginning', { timeout: 120000 }, async () => {
  const { logDir, server, agent } = await start('e2e-globdir', (d) => {
    fs.mkdirSync(path.join(d, 'in'));
    return [fileSource('dir', [path.join(d, 'in', '*.log')], 'read_from = "end"; rescan_interval = "10m";')];
  });
  const inDir = path.join(logDir, 'in');
  fs.writeFileSync(path.join(inDir, 'old.log'), 'old 0\nold 1\n');
  await server.start();
  await agent.start();
  try {
    // the existing file is read from its end (read_from = end at the very first start)...
    await waitFor(() => agent.proc.log.some((l) => /old\.log from byte 12\b/.test(l)), {
      what: 'old.log tailed from its end',
    }).catch((e) => { throw new Error(`${e.message}\n${agent.proc.tail()}`); });
    fs.appendFileSync(path.join(inDir, 'old.log'), 'old 2\n');
    // ...files appearing later from their beginning, whether created with their content
    // (a rename into the directory, as a log shipper drops files) or written after
    const files = ['a', 'b', 'c', 'd'];
    for (const f of files) {
      let s = '';
      for (let i = 0; i < 500; i++) s += `${f} ${i}\n`;
      const tmp = path.join(logDir, `${f}.tmp`);
      fs.writeFileSync(tmp, s);
      fs.renameSync(tmp, path.join(inDir, `${f}.log`));
      fs.appendFileSync(path.join(inDir, `${f}.log`), `${f} 500\n`);
      await sleep(100);
    }
    fs.writeFileSync(path.join(inDir, 'skip.log.gz'), zlib.gzipSync('gz 0\n'));
    const total = 1 + files.length * 501;
    await waitRows(server, agent, total, 'the new files in the table');
    await waitStable(server);
    await agent.stop();
    await server.stop();
    const snap = await verifyTable(server.tableDir(TABLE));
    const rows = await rowsOf(duckFrom(snap.files), 'dir');
    assert.equal(rows.length, total, 'each line once');
    const per = {};
    for (const r of rows) {
      const [f, i] = r.payload.split(' ');
      (per[f] ||= []).push(Number(i));
    }
    assert.deepEqual(per.old, [2], 'old.log: only what came after the start');
    for (const f of files) assert.deepEqual(per[f], [...Array(501).keys()], `${f}.log: from its start, in order`);
    assert.equal(per.gz, undefined, 'compressed file ignored');
  } finally {
    await agent.kill();
    await server.kill();
  }
});

test('directories of a glob created after the start are followed by inotify alone', { timeout: 180000 }, async () => {
  const { logDir, server, agent } = await start('e2e-latedirs', (d) =>
    [fileSource('late', [path.join(d, 'late', 'a', 'b', '*.log'), path.join(d, 'late', 'up.log')],
      'read_from = "end"; rescan_interval = "10m";')]);
  // logs/late exists, late/a and late/a/b do not: the agent waits in logs/late. up.log says
  // when the first scan is done (tailed from its end: it adds no rows)
  fs.mkdirSync(path.join(logDir, 'late'));
  fs.writeFileSync(path.join(logDir, 'late', 'up.log'), 'up\n');
  const b = path.join(logDir, 'late', 'a', 'b');
  const lines = (tag, n) => [...Array(n).keys()].map((i) => `${tag} ${i}\n`).join('');
  await server.start();
  await agent.start();
  try {
    await waitFor(() => agent.proc.log.some((l) => /up\.log from byte 3\b/.test(l)), {
      what: 'the first scan',
    }).catch((e) => { throw new Error(`${e.message}\n${agent.proc.tail()}`); });
    // the rescan is 10 minutes away: only the watches can find these
    fs.mkdirSync(b, { recursive: true });
    fs.writeFileSync(path.join(b, 'x.log'), lines('x', 100));
    await waitRows(server, agent, 100, 'x.log, under directories made after the start');
    // the directories removed and made again: the watch went back up and comes down again
    fs.rmSync(path.join(logDir, 'late', 'a'), { recursive: true });
    fs.mkdirSync(b, { recursive: true });
    fs.writeFileSync(path.join(b, 'y.log'), lines('y', 100));
    await waitRows(server, agent, 200, 'y.log, after the directories were made again');
    await waitStable(server);
    await agent.stop();
    await server.stop();
    const snap = await verifyTable(server.tableDir(TABLE));
    const rows = await rowsOf(duckFrom(snap.files), 'late');
    assert.equal(rows.length, 200, 'each line once');
    assert.deepEqual(rows.map((r) => r.payload), [lines('x', 100), lines('y', 100)].join('').trimEnd().split('\n'),
      'in order');
  } finally {
    await agent.kill();
    await server.kill();
  }
});

// The race of the test above made deterministic: the agent is SIGSTOPped while the directories
// are removed and made again (once, then twice in a row), so the removal's events (x.log and
// the directories deleted, their watches ignored) are handled together after the new
// directories and their file exist. The source must end up watching what exists now: each
// new file read, whole and once, by inotify alone (the rescan is 10 minutes away).
test('glob directories removed and made again while the agent is stopped: followed on waking', { timeout: 240000 }, async () => {
  const { logDir, server, agent } = await start('e2e-latedirs-stop', (d) =>
    [fileSource('late', [path.join(d, 'late', 'a', 'b', '*.log'), path.join(d, 'late', 'up.log')],
      'read_from = "end"; rescan_interval = "10m"; rotate_wait_ms = 200;')]);
  fs.mkdirSync(path.join(logDir, 'late'));
  fs.writeFileSync(path.join(logDir, 'late', 'up.log'), 'up\n');
  const a = path.join(logDir, 'late', 'a');
  const b = path.join(a, 'b');
  const lines = (tag, n) => [...Array(n).keys()].map((i) => `${tag} ${i}\n`).join('');
  const stopped = (fn) => {
    agent.proc.child.kill('SIGSTOP'); // (Proc.kill would wait for an exit)
    try {
      fn();
    } finally {
      agent.proc.child.kill('SIGCONT');
    }
  };
  await server.start();
  await agent.start();
  try {
    await waitFor(() => agent.proc.log.some((l) => /up\.log from byte 3\b/.test(l)), {
      what: 'the first scan',
    }).catch((e) => { throw new Error(`${e.message}\n${agent.proc.tail()}`); });
    fs.mkdirSync(b, { recursive: true });
    fs.writeFileSync(path.join(b, 'x.log'), lines('x', 100));
    await waitRows(server, agent, 100, 'x.log, under directories made after the start');
    // once: removed and made again, y.log written, all before the agent runs again
    stopped(() => {
      fs.rmSync(a, { recursive: true });
      fs.mkdirSync(b, { recursive: true });
      fs.writeFileSync(path.join(b, 'y.log'), lines('y', 100));
    });
    await waitRows(server, agent, 200, 'y.log, after the directories were made again (agent stopped)');
    // twice in a row, then z.log; the agent wakes to the events of both removals
    stopped(() => {
      fs.rmSync(a, { recursive: true });
      fs.mkdirSync(b, { recursive: true });
      fs.rmSync(a, { recursive: true });
      fs.mkdirSync(b, { recursive: true });
      fs.writeFileSync(path.join(b, 'z.log'), lines('z', 100));
    });
    await waitRows(server, agent, 300, 'z.log, after the directories were made again twice (agent stopped)');
    // and still watched: a file written after the wake-up, with the agent running
    fs.writeFileSync(path.join(b, 'w.log'), lines('w', 100));
    await waitRows(server, agent, 400, 'w.log, written after the agent woke');
    await waitStable(server);
    await agent.stop();
    await server.stop();
    const snap = await verifyTable(server.tableDir(TABLE));
    const rows = await rowsOf(duckFrom(snap.files), 'late');
    assert.equal(rows.length, 400, 'each line once');
    assert.deepEqual(rows.map((r) => r.payload),
      ['x', 'y', 'z', 'w'].map((t) => lines(t, 100)).join('').trimEnd().split('\n'), 'in order');
  } finally {
    await agent.kill();
    await server.kill();
  }
});
