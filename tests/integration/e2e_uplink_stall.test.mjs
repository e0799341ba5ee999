// The agent stays quiet while the server withholds HTTP/2 window (uplink.c, the guard against
// libcurl 7.88's upload busy loop, curl issue 10618): with the stream window used up in the
// middle of a message, libcurl asks for POLLOUT on a writable socket and sends nothing, so an
// unguarded uplink loops ~300,000 times a second on a core. Real means: the server's WAL
// pressure (a small wal_max_bytes filled by another client on another table, no flush for an
// hour) grants no window, so the agent's first message (a chunk of 15,000 lines, at least
// 4.5 MB compressed, more than the server's 4 MiB stream window) cannot be finished. Over 5 s
// of that stall the agent's CPU time and context switches are measured from /proc; then a
// reload lifts the limit, the withheld window is granted and the backlog must reach the
// table, every record exactly once.
// (Pressure that starts while the agent sends is not used: it is seen after the agent's next
// message is mostly through, which then completes and is refused, ending the call.)
// Every wait is for a state, with deadlines far above the times measured (a loaded machine
// is several times slower); the stall is measured only once the whole stream window is
// used, so no byte can move while it is measured; chunks close by record count only (no
// linger), so the first message is a full one however slowly the agent reads.
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
// The server's initial stream window (SETTINGS_INITIAL_WINDOW_SIZE, server/net/front.c). The
// agent's first message is larger, so the stall is complete once this much is withheld.
const STREAM_WINDOW = 4 << 20;
// Lines a chunk closes at, and the random bytes in each (RAND_BYTES * CHUNK_LINES = 4.5 MB,
// above STREAM_WINDOW).
const CHUNK_LINES = 15000;
const RAND_BYTES = 300;
// Bounds for the stall. With the guard the agent waits up to 10 ms at a time for incoming
// data: measured ~1 % of a core (ASan build) and ~100 voluntary context switches a second.
// Without it (the guard's branch disabled) the same stall took 89 % of a core, but only ~1
// switch a second: a spinning poll() never sleeps. So the CPU bound catches the busy loop,
// and the switch bound a guard whose wait got too short (1 ms waits: ~1,000 a second).
const MAX_CPU_SHARE = 0.15; // CPU-seconds per second of stall
const MAX_SWITCHES_PER_S = 500;

// Lines "<i> <base64>": RAND_BYTES random bytes as 400 characters, which no compressor shrinks
// below the randomness, so a chunk of CHUNK_LINES stays above the server's stream window once
// compressed. Its records (~6.1 MB of lines, ~7.6 MB with their envelopes, ~100 bytes each)
// stay under the agent's 8 MiB chunk limit, so the chunk closes by record count, not by size.
function lines(from, to, rnd) {
  const raw = Buffer.alloc(RAND_BYTES);
  let s = '';
  for (let i = from; i < to; i++) {
    for (let k = 0; k < raw.length; k += 4) raw.writeUInt32LE(Math.floor(rnd() * 0x100000000), k);
    s += `${i} ${raw.toString('base64')}\n`;
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

test('the agent does not spin while the server withholds HTTP/2 window, and drains once it is granted', { timeout: 600000 }, async () => {
  const dir = tmpDir('e2e-stall');
  const log = path.join(dir, 'in.log');
  const N = 4 * CHUNK_LINES; // ~24 MB of lines: four chunks
  fs.writeFileSync(log, lines(0, N, prng(13)));
  const held = 'wal_max_bytes = "1M"; wal_soft_percent = 0;';
  const server = new Server({ dir, tables: [TABLE, FILL], metrics: true, flushMs: 3600000, extra: held });
  await server.start();
  // another client fills the WAL to its limit: the server is under pressure before the agent
  // connects, and stays so until the reload below (no flush before)
  const fill = await zbClient(server, 'fill', '--table', FILL, '--records', '10', '--payload-bytes', '1000', '--batches', '1000');
  assert.equal(fill.code, 'RESOURCE_EXHAUSTED', `the filler was refused at the limit: ${JSON.stringify(fill)}`);
  const refusedBefore = (await server.metrics()).must('pressure_refusals_total', 'reason="global"');
  // A chunk closes at CHUNK_LINES records, never by time: with the default linger (100 ms)
  // an agent that reads slowly (a loaded machine) closes a first chunk smaller than the
  // window, which the server then takes whole and refuses (RESOURCE_EXHAUSTED, retry in
  // 60 s) instead of stalling on it. N is a multiple of CHUNK_LINES, so every line is in a
  // closed chunk without waiting for a linger.
  const agent = new Agent({
    dir, url: server.url, sources: [{ name: 'in', paths: [log] }], lingerMs: 600000,
    chunkExtra: `max_bytes = "8M"; max_records = ${CHUNK_LINES};`,
  });
  let seen; // the last look at the stall, for the failure message
  const fail = (e) => {
    throw new Error(`${e.message}\nlast look: ${JSON.stringify(seen)}\nagent:\n${agent.proc.tail(20)}\nserver:\n${server.proc.tail(20)}`);
  };
  try {
    await agent.start();
    // the stall: every line buffered, the stream created, the whole stream window used by
    // the agent's first message and withheld (nothing acked, nothing refused), the call open.
    // Not just some window withheld: while the rest of the window is still coming in, bytes
    // move and the agent works (slowly on a loaded machine), which the measure below would
    // count as a stall that is not quiet.
    const stalled = async () => {
      const m = await server.metrics();
      const st = agent.status()?.streams?.[0];
      seen = { pressure: m('pressure', 'limit="wal_max_bytes"'), withheld: m('window_withheld_bytes'),
        refused: m('pressure_refusals_total', 'reason="global"'), records: st?.records, acked: st?.acked,
        next: st?.next_offset, connected: st?.connected, uplink: st?.uplink?.state };
      return seen.pressure === 1 && seen.withheld >= STREAM_WINDOW && seen.refused === refusedBefore &&
        st?.records === N && st.acked === -1 && st.next_offset > 1 && st.connected && { m, st };
    };
    const tStart = Date.now();
    const before = await waitFor(stalled, { timeoutMs: 180000, intervalMs: 200, what: 'the upload stalled on the whole stream window withheld' }).catch(fail);
    const stallAfterMs = Date.now() - tStart;
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
    console.log(`stalled ${(stallAfterMs / 1000).toFixed(1)} s after the agent's start; stall of ${secs.toFixed(1)} s: agent CPU ${(cpuShare * 100).toFixed(1)} % of a core, ${switches.toFixed(0)} voluntary context switches/s, window withheld ${before.m('window_withheld_bytes')} bytes`);
    assert.ok(cpuShare < MAX_CPU_SHARE, `agent CPU during the stall: ${(cpuShare * 100).toFixed(1)} % of a core (bound ${MAX_CPU_SHARE * 100} %)`);
    assert.ok(switches < MAX_SWITCHES_PER_S, `agent voluntary context switches during the stall: ${switches.toFixed(0)}/s (bound ${MAX_SWITCHES_PER_S})`);

    // lift the limit and flush often: the withheld window is granted and the backlog drains on
    // the same call. A guard that missed the WINDOW_UPDATE would leave the call silent until
    // the agent's 60 s no-answer timeout ends it: a failed call and a reconnect, both checked
    // below (the deadline is not the check, so it can leave room for a slow machine)
    server.extra = 'wal_max_bytes = "1G";';
    server.flushMs = 200;
    fs.writeFileSync(server.conf, fs.readFileSync(server.conf, 'utf8')
      .replace(held, server.extra).replace('flush_interval_ms = 3600000;', 'flush_interval_ms = 200;'));
    server.proc.child.kill('SIGHUP');
    const tGrant = Date.now();
    const done = await waitFor(() => {
      const st = agent.status()?.streams?.[0];
      return st && st.records === N && st.acked === N / CHUNK_LINES - 1 && st.acked === st.next_offset - 1 &&
        st.buffered_bytes === 0 && st;
    }, { timeoutMs: 180000, intervalMs: 200, what: `the backlog acknowledged, ${N / CHUNK_LINES} messages (chunks closed by record count)` }).catch(fail);
    console.log(`backlog acknowledged ${((Date.now() - tGrant) / 1000).toFixed(1)} s after the reload`);
    assert.equal(done.uplink.failures, 0, `no failed call: ${JSON.stringify(done.uplink)}`);
    assert.equal(done.reconnects, before.st.reconnects, 'no reconnect');
    await waitFor(() => tableRows(server, TABLE) >= N, { timeoutMs: 180000, intervalMs: 200, what: 'every record in the table' }).catch(fail);
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
