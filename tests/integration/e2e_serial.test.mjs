// End to end: bytes written into one end of a socat pty pair → runnel-agent (serial source
// on the other end, SQLite buffer, uplink) → runnel-server → Delta table, read back by
// DuckDB and parquet-wasm. NMEA lines at a non-standard rate (250000 baud, through termios2)
// with bad and missing checksums, one valid sentence that is not UTF-8, and an unplug (socat
// killed) and replug (socat restarted on the same links) in the middle: every line written
// while the port was open lands exactly once, in order, the bad ones as dead letters with
// their reason. A second run frames COBS (with a bad frame) and 2-byte length-prefixed
// records (with one over max_frame) from two more ports at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Agent, Server, tmpDir, waitFor } from './lib/harness.mjs';
import { duckFrom, query, verifyTable } from './lib/table.mjs';

const TABLE = 'main.default.serial';

// A socat pty pair: the agent opens `dev` (link to one slave), the test writes into `peer`.
class PtyPair {
  constructor(dir, name) {
    this.dev = path.join(dir, `${name}0`);
    this.peer = path.join(dir, `${name}1`);
    this.fd = null;
  }

  async start() {
    let log = '';
    this.proc = spawn('socat', ['-d', '-d', `pty,raw,echo=0,link=${this.dev}`,
      `pty,raw,echo=0,link=${this.peer}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.proc.stderr.on('data', (d) => (log += d));
    this.exited = new Promise((resolve) => this.proc.on('exit', resolve));
    await waitFor(() => log.includes('starting data transfer loop') && fs.existsSync(this.dev)
      && fs.existsSync(this.peer), { timeoutMs: 10000, what: `socat pty pair ${this.dev}` })
      .catch((e) => { throw new Error(`${e.message}\n${log}`); });
    // Held open until the unplug: socat ends its transfer when this side is closed.
    this.fd = fs.openSync(this.peer, fs.constants.O_WRONLY | fs.constants.O_NOCTTY);
    return this;
  }

  write(buf) {
    for (let off = 0; off < buf.length;) off += fs.writeSync(this.fd, buf, off);
  }

  // Unplug: the pty pair goes away (the agent's read gets EIO / hang-up) and the links with it.
  async stop() {
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill('SIGTERM');
      await this.exited;
    }
    if (this.fd !== null) {
      fs.closeSync(this.fd);
      this.fd = null;
    }
  }
}

const nmeaSum = (body) => {
  let x = 0;
  for (const b of body) x ^= b;
  return x;
};
const hex2 = (n) => n.toString(16).toUpperCase().padStart(2, '0');
// "$" + body + "*HH" with the right checksum (body may hold any bytes).
const sentence = (body) => Buffer.concat([Buffer.from('$'), body, Buffer.from(`*${hex2(nmeaSum(body))}`)]);

// Numbered lines from `from` to `to` (exclusive), with bad checksums, missing checksums and
// one non-UTF-8 sentence mixed in. Returns what was written and what each line must become.
function nmeaLines(from, to) {
  const out = [];
  for (let i = from; i < to; i++) {
    if (i % 97 === 13) {
      const body = Buffer.from(`RNBAD,${i}`);
      const good = nmeaSum(body);
      const given = good === 0x3b ? 0x3c : 0x3b;
      out.push({ bytes: Buffer.concat([Buffer.from('$'), body, Buffer.from(`*${hex2(given)}`)]),
        error: `nmea checksum mismatch: want ${hex2(good)} got ${hex2(given)}` });
    }
    if (i % 211 === 7) out.push({ bytes: Buffer.from(`$RNBAD,${i},nosum`), error: 'nmea checksum missing' });
    if (i === from + 5) {
      // valid sentence, not UTF-8: an ordinary record (the server keeps it as bytes)
      out.push({ bytes: sentence(Buffer.from([0x52, 0x4e, 0x42, 0x49, 0x4e, 0x2c, 0xff, 0xfe, 0x80])), error: null });
    }
    out.push({ bytes: sentence(Buffer.from(`RNTST,${i},${'x'.repeat(i % 40)}`)), error: null });
  }
  return out;
}

const streamOf = (agent, name) => (agent.status()?.streams || []).find((s) => s.name === name);
const recordsOf = (agent, name) => streamOf(agent, name)?.records ?? 0;
const logged = (agent, re) => agent.proc.log.some((l) => re.test(l));

// Every record of `source` in seq order, compared one by one with `want` ({bytes, error}).
async function checkStream(from, source, want, topic) {
  const rows = await query(`SELECT seq, flags, topic, attributes,
      hex(coalesce(payload_raw, encode(payload))) AS h FROM ${from}
      WHERE source = '${source}' ORDER BY seq`);
  assert.equal(rows.length, want.length, `${source}: row count`);
  rows.forEach((r, i) => {
    const w = want[i];
    assert.equal(Number(r.seq), i, `${source}: seq contiguous from 0`);
    assert.equal(r.h, w.bytes.toString('hex').toUpperCase(), `${source}: record ${i} bytes`);
    assert.equal(r.topic, topic, `${source}: topic is the device`);
    if (w.error) {
      assert.notEqual(Number(r.flags) & 2, 0, `${source}: record ${i} is a dead letter`);
      assert.equal(JSON.parse(r.attributes)['runnel.error'], w.error, `${source}: record ${i} reason`);
    } else {
      assert.equal(Number(r.flags) & 2, 0, `${source}: record ${i} is not a dead letter`);
      assert.equal(r.attributes, null);
    }
  });
}

test('NMEA at 250000 baud across an unplug: good lines once and in order, bad ones dead letters', { timeout: 90000 }, async () => {
  const dir = tmpDir('e2e-serial');
  const port = new PtyPair(dir, 'gps');
  const server = await new Server({ dir, tables: [TABLE] }).start();
  const agent = new Agent({
    dir, url: server.url,
    sources: [{ conf: `type = "serial"; name = "gps"; table = "${TABLE}"; device = "${port.dev}";
      baud = 250000; framing = "line"; nmea_checksum = true;` }],
  });
  const fail = (e) => { throw new Error(`${e.message}\nagent:\n${agent.proc.tail()}\nserver:\n${server.proc.tail()}`); };
  try {
    await port.start();
    await agent.start();
    await waitFor(() => logged(agent, /in_serial: .*gps0 open: 250000 baud 8N1/), { what: 'port open' }).catch(fail);

    // Before the unplug, in bursts, until the agent has taken every line.
    const before = nmeaLines(0, 1500);
    for (let k = 0; k < before.length; k += 100) {
      port.write(Buffer.concat(before.slice(k, k + 100).flatMap((l) => [l.bytes, Buffer.from('\r\n')])));
    }
    await waitFor(() => recordsOf(agent, 'gps') >= before.length, { what: 'records before the unplug' }).catch(fail);

    // Unplug while the writer pauses; a partial line in flight is not part of this test.
    await port.stop();
    await waitFor(() => logged(agent, /gps0 went away/), { what: 'unplug noticed' }).catch(fail);
    // Replug: the same links, a new pty pair; write only once the agent reads again.
    await port.start();
    await waitFor(() => logged(agent, /gps0 is back after/), { what: 'port back' }).catch(fail);
    const after = nmeaLines(1500, 3000);
    for (let k = 0; k < after.length; k += 100) {
      port.write(Buffer.concat(after.slice(k, k + 100).flatMap((l) => [l.bytes, Buffer.from('\r\n')])));
    }
    const want = before.concat(after);
    await waitFor(() => recordsOf(agent, 'gps') >= want.length, { what: 'all records' }).catch(fail);
    await waitFor(() => streamOf(agent, 'gps').acked === streamOf(agent, 'gps').next_offset - 1,
      { what: 'all chunks acknowledged' }).catch(fail);
    const st = streamOf(agent, 'gps');
    assert.equal(st.records, want.length, 'no record more than written');
    assert.equal(st.dead_letters, want.filter((w) => w.error).length, 'dead letters counted');
    await agent.stop();
    await server.stop();

    const snap = await verifyTable(server.tableDir(TABLE));
    const from = duckFrom(snap.files);
    await checkStream(from, 'gps', want, port.dev);
    assert.equal(snap.rows, want.length);
    // the sentence that is not UTF-8 is a good record kept as bytes
    const [bin] = await query(`SELECT count(*) AS n FROM ${from} WHERE payload_raw IS NOT NULL AND flags & 2 = 0`);
    assert.equal(Number(bin.n), 2);
  } finally {
    if (agent.proc) await agent.kill();
    await server.kill();
    await port.stop();
  }
});

// COBS encoding (0x00-free blocks of up to 254 bytes), without the trailing delimiter.
function cobs(buf) {
  const out = [];
  let block = [];
  const flush = (code) => {
    out.push(code, ...block);
    block = [];
  };
  for (const b of buf) {
    if (b === 0) {
      flush(block.length + 1);
    } else {
      block.push(b);
      if (block.length === 254) flush(255);
    }
  }
  flush(block.length + 1);
  return Buffer.from(out);
}

test('COBS and length-prefixed framing from two ports at once, with bad and oversize frames', { timeout: 90000 }, async () => {
  const dir = tmpDir('e2e-serial-bin');
  const cp = new PtyPair(dir, 'cobs');
  const lp = new PtyPair(dir, 'len');
  const server = await new Server({ dir, tables: [TABLE] }).start();
  const agent = new Agent({
    dir, url: server.url,
    sources: [
      { conf: `type = "serial"; name = "cobs"; table = "${TABLE}"; device = "${cp.dev}";
        baud = 921600; framing = "cobs";` },
      { conf: `type = "serial"; name = "len"; table = "${TABLE}"; device = "${lp.dev}";
        baud = 921600; framing = "length"; length_bytes = 2; max_frame = 64;` },
    ],
  });
  const fail = (e) => { throw new Error(`${e.message}\nagent:\n${agent.proc.tail()}\nserver:\n${server.proc.tail()}`); };
  try {
    await cp.start();
    await lp.start();
    await agent.start();
    await waitFor(() => logged(agent, /cobs0 open/) && logged(agent, /len0 open/), { what: 'ports open' }).catch(fail);

    const cw = [];
    const lw = [];
    const cbytes = [Buffer.from([0])]; // a leading delimiter (an empty frame) is skipped
    const lbytes = [];
    for (let i = 0; i < 400; i++) {
      if (i === 150) {
        const bad = Buffer.from([0x05, 0x41, 0x42]); // code 5 with two bytes after it
        cw.push({ bytes: bad, error: 'bad cobs frame: code 0x05 at 0 runs 2 bytes past the end' });
        cbytes.push(bad, Buffer.from([0]));
      }
      const p = Buffer.concat([Buffer.from([i & 0xff, 0, 0xff]), Buffer.from(`cobs ${i}`), Buffer.alloc(i % 3)]);
      cw.push({ bytes: p, error: null });
      cbytes.push(cobs(p), Buffer.from([0]));

      if (i === 100) {
        const big = Buffer.alloc(100, 0x42);
        lw.push({ bytes: big.subarray(0, 64), error: 'length 100 over max_frame 64: piece 1 of 2' });
        lw.push({ bytes: big.subarray(64), error: 'length 100 over max_frame 64: piece 2 of 2' });
        lbytes.push(Buffer.from([0, 100]), big);
      }
      const q = Buffer.concat([Buffer.from(`len ${i} `), Buffer.from([0xc3, i & 0xff, 0])]);
      lw.push({ bytes: q, error: null });
      lbytes.push(Buffer.from([q.length >> 8, q.length & 0xff]), q);
    }
    // written in odd-sized pieces so frames straddle writes
    const cAll = Buffer.concat(cbytes);
    const lAll = Buffer.concat(lbytes);
    for (let off = 0; off < Math.max(cAll.length, lAll.length); off += 777) {
      if (off < cAll.length) cp.write(cAll.subarray(off, off + 777));
      if (off < lAll.length) lp.write(lAll.subarray(off, off + 777));
    }
    await waitFor(() => recordsOf(agent, 'cobs') >= cw.length && recordsOf(agent, 'len') >= lw.length,
      { what: 'all records' }).catch(fail);
    await waitFor(() => ['cobs', 'len'].every((n) => streamOf(agent, n).acked === streamOf(agent, n).next_offset - 1),
      { what: 'all chunks acknowledged' }).catch(fail);
    assert.equal(recordsOf(agent, 'cobs'), cw.length);
    assert.equal(recordsOf(agent, 'len'), lw.length);
    await agent.stop();
    await server.stop();

    const snap = await verifyTable(server.tableDir(TABLE));
    const from = duckFrom(snap.files);
    await checkStream(from, 'cobs', cw, cp.dev);
    await checkStream(from, 'len', lw, lp.dev);
  } finally {
    if (agent.proc) await agent.kill();
    await server.kill();
    await cp.stop();
    await lp.stop();
  }
});
