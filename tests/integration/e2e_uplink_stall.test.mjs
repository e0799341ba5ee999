// The agent stays quiet while the server withholds HTTP/2 window (uplink.c, the guard against
// libcurl 7.88's upload busy loop, curl issue 10618): with the stream window used up in the
// middle of a message, libcurl asks for POLLOUT on a writable socket and sends nothing, so an
// unguarded uplink loops ~300,000 times a second on a core. Real means: the server's WAL
// pressure (a small wal_max_bytes filled by another client on another table, no flush for an
// hour) grants no window, so the agent's first message (~6.4 MB compressed, more than the
// server's 4 MB stream window) cannot be finished. Over 5 s of that stall the agent's CPU
// time and context switches are measured from /proc; then a reload lifts the limit, the
// withheld window is granted and the backlog must reach the table, every record exactly once.
// (Pressure that starts while the agent sends is not used: it is seen after the agent's next
// message is mostly through, which then completes and is refused, ending the call.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Agent, Server, prng, sleep, tmpDir, waitFor, zbClient } from './lib/harness.mjs';
import { duckFrom, query, replayLog, verifyTable } from './lib/table.mjs';

const TABLE = 'main.default.telemetry';
const FILL = 'main.default.filler';
const HZ = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
const STALL_MS = 5000;
// Bounds for the stall. With the guard the agent waits up to 10 ms at a time for incoming
// data: measured ~1 % of a core (ASan build) and ~100 voluntary context switches a second.
// Without it (the guard's branch disabled) the same stall took 89 % of a core, but only ~1
// switch a second: a spinning poll() never sleeps. So the CPU bound catches the busy loop,
// and the switch bound a guard whose wait got too short (1 ms waits: ~1,000 a second).
const MAX_CPU_SHARE = 0.15; // CPU-seconds per second of stall
const MAX_SWITCHES_PER_S = 500;

// Lines "<i> <base64>": 150 random bytes as 200 characters, which zstd shrinks to ~3/4 only,
// so an 8 MB chunk stays above the server's 4 MB stream window once compressed.
function lines(from, to, rnd) {
  const raw = Buffer.alloc(152);
  let s = '';
  for (let i = from; i < to; i++) {
    for (let k = 0; k < raw.length; k += 4) raw.writeUInt32LE(Math.floor(rnd() * 0x100000000), k);
    s += `${i} ${raw.toString('base64', 0, 150)}\n`;
  }
  return s;
}

// CPU time (all threads, seconds) and voluntary context switches (all threads) of pid.
function usage(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // f[0] is field 3 (state)
  const cpu = (Number(f[11]) + Number(f[12])) / HZ; // utime, stime
  let vcs = 0;
  for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      vcs += Number(fs.readFileSync(`/proc/${pid}/task/${t}/status`, 'utf8').match(/^voluntary_ctxt_switches:\s+(\d+)/m)[1]);
    } catch {
      // a thread that ended between readdir and read
    }
  }
  return { cpu, vcs };
}

function tableRows(server, table) {
  try {
    return replayLog(server.tableDir(table)).live.reduce((n, f) => n + f.numRecords, 0);
  } catch {
    return 0;
  }
}

test('the agent does not spin while the server withholds HTTP/2 window, and drains once it is granted', { timeout: 240000 }, async () => {
  const dir = tmpDir('e2e-stall');
  const log = path.join(dir, 'in.log');
  const N = 120000; // ~24 MB of lines: three 8 MB chunks
  fs.writeFileSync(log, lines(0, N, prng(13)));
  const held = 'wal_max_bytes = "1M"; wal_soft_percent = 0;';
  const server = new Server({ dir, tables: [TABLE, FILL], metrics: true, flushMs: 3600000, extra: held });
  await server.start();
  // another client fills the WAL to its limit: the server is under pressure before the agent
  // connects, and stays so until the reload below (no flush before)
  const fill = await zbClient(server, 'fill', '--table', FILL, '--records', '10', '--payload-bytes', '1000', '--batches', '1000');
  assert.equal(fill.code, 'RESOURCE_EXHAUSTED', `the filler was refused at the limit: ${JSON.stringify(fill)}`);
  const refusedBefore = (await server.metrics()).must('pressure_refusals_total', 'reason="global"');
  const agent = new Agent({
    dir, url: server.url, sources: [{ name: 'in', paths: [log] }],
    chunkExtra: 'max_bytes = "8M"; max_records = 1000000;',
  });
  let seen; // the last look at the stall, for the failure message
  const fail = (e) => {
    throw new Error(`${e.message}\nlast look: ${JSON.stringify(seen)}\nagent:\n${agent.proc.tail(20)}\nserver:\n${server.proc.tail(20)}`);
  };
  try {
    await agent.start();
    // the stall: every line buffered, the stream created, window withheld on the agent's
    // first message (nothing acked, nothing refused), the call open
    const stalled = async () => {
      const m = await server.metrics();
      const st = agent.status()?.streams?.[0];
      seen = { pressure: m('pressure', 'limit="wal_max_bytes"'), withheld: m('window_withheld_bytes'),
        refused: m('pressure_refusals_total', 'reason="global"'), records: st?.records, acked: st?.acked,
        next: st?.next_offset, connected: st?.connected, uplink: st?.uplink?.state };
      return seen.pressure === 1 && seen.withheld > 0 && seen.refused === refusedBefore &&
        st?.records === N && st.acked === -1 && st.next_offset > 1 && st.connected && { m, st };
    };
    const before = await waitFor(stalled, { timeoutMs: 30000, intervalMs: 200, what: 'the upload stalled on withheld window' }).catch(fail);
    const u0 = usage(agent.proc.child.pid);
    const t0 = process.hrtime.bigint();
    await sleep(STALL_MS); // the measured interval, not a wait for a state
    const u1 = usage(agent.proc.child.pid);
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const after = await stalled();
    assert.ok(after, 'still stalled at the end of the measured interval');
    assert.equal(after.st.acked, before.st.acked, 'nothing acked during the stall');
    assert.equal(after.m('window_withheld_bytes'), before.m('window_withheld_bytes'), 'no byte moved during the stall');
    const cpuShare = (u1.cpu - u0.cpu) / secs;
    const switches = (u1.vcs - u0.vcs) / secs;
    console.log(`stall of ${secs.toFixed(1)} s: agent CPU ${(cpuShare * 100).toFixed(1)} % of a core, ${switches.toFixed(0)} voluntary context switches/s, window withheld ${before.m('window_withheld_bytes')} bytes`);
    assert.ok(cpuShare < MAX_CPU_SHARE, `agent CPU during the stall: ${(cpuShare * 100).toFixed(1)} % of a core (bound ${MAX_CPU_SHARE * 100} %)`);
    assert.ok(switches < MAX_SWITCHES_PER_S, `agent voluntary context switches during the stall: ${switches.toFixed(0)}/s (bound ${MAX_SWITCHES_PER_S})`);

    // lift the limit and flush often: the withheld window is granted and the backlog drains on
    // the same call, well before the agent's 60 s no-answer timeout would reconnect it (so a
    // guard that missed the WINDOW_UPDATE fails here)
    server.extra = 'wal_max_bytes = "1G";';
    server.flushMs = 200;
    fs.writeFileSync(server.conf, fs.readFileSync(server.conf, 'utf8')
      .replace(held, server.extra).replace('flush_interval_ms = 3600000;', 'flush_interval_ms = 200;'));
    server.proc.child.kill('SIGHUP');
    const done = await waitFor(() => {
      const st = agent.status()?.streams?.[0];
      return st && st.records === N && st.acked === st.next_offset - 1 && st.buffered_bytes === 0 && st;
    }, { timeoutMs: 30000, intervalMs: 200, what: 'the backlog acknowledged' }).catch(fail);
    assert.equal(done.uplink.failures, 0, `no failed call: ${JSON.stringify(done.uplink)}`);
    assert.equal(done.reconnects, before.st.reconnects, 'no reconnect');
    await waitFor(() => tableRows(server, TABLE) >= N, { timeoutMs: 60000, intervalMs: 200, what: 'every record in the table' }).catch(fail);
    assert.equal((await server.metrics()).must('pressure_refusals_total', 'reason="global"'), refusedBefore,
      'the stalled message was taken, not refused');
    await agent.stop();
    await server.stop();
    const snap = await verifyTable(server.tableDir(TABLE));
    const [t] = await query(`SELECT count(*) AS n, count(DISTINCT seq) AS d, min(seq) AS lo, max(seq) AS hi,
        count(*) FILTER (WHERE CAST(split_part(payload, ' ', 1) AS BIGINT) <> seq) AS shifted
        FROM ${duckFrom(snap.files)}`);
    assert.equal(Number(t.n), N, 'every record once');
    assert.equal(Number(t.d), N, 'no seq twice');
    assert.equal(Number(t.lo), 0);
    assert.equal(Number(t.hi), N - 1);
    assert.equal(Number(t.shifted), 0, 'line i is seq i');
  } finally {
    await agent.kill();
    await server.kill();
  }
});
