// Bad input on the agent side lands in the table, flagged, never dropped: an empty line is a
// record, bytes that are not UTF-8 are kept in payload_raw, an overlong line is split into
// flagged pieces that concatenate back to the original, CRLF endings are stripped, and a
// last line without a newline is emitted after a timeout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Agent, Server, tmpDir, waitFor } from './lib/harness.mjs';
import { duckFrom, query, replayLog, verifyTable } from './lib/table.mjs';

const TABLE = 'main.default.badinput';

test('empty, non-UTF-8, overlong, CRLF and unterminated lines are all kept', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-bad');
  const log = path.join(dir, 'bad.log');
  const long = 'L'.repeat(150 * 1024) + 'END';
  const bin = Buffer.from([0x62, 0x69, 0x6e, 0xff, 0xfe, 0x00, 0x80, 0x41]);
  fs.writeFileSync(log, Buffer.concat([
    Buffer.from('first\n\n'), bin, Buffer.from('\n'), Buffer.from(long + '\n'),
    Buffer.from('crlf line\r\n'), Buffer.from('no newline at end'),
  ]));
  const server = await new Server({ dir, tables: [TABLE] }).start();
  const agent = await new Agent({
    dir, url: server.url, sync: 'full', sources: [{ name: 'bad', table: TABLE, paths: [log] }],
  }).start();
  try {
    const rows = () => {
      try {
        return replayLog(server.tableDir(TABLE)).live.reduce((n, f) => n + f.numRecords, 0);
      } catch {
        return 0;
      }
    };
    // 1 + 1 + 1 + 3 pieces of the 150 KiB line (64 KiB max) + 1 + 1
    await waitFor(() => rows() >= 8, { timeoutMs: 60000, what: '8 rows' })
      .catch((e) => { throw new Error(`${e.message}\n${agent.proc.tail()}\n${server.proc.tail()}`); });
    await agent.stop();
    await server.stop();
    const snap = await verifyTable(server.tableDir(TABLE));
    assert.equal(snap.rows, 8);
    const from = duckFrom(snap.files);
    const all = await query(`SELECT seq, payload, payload_raw, flags, attributes FROM ${from} ORDER BY seq`);
    assert.deepEqual(all.map((r) => Number(r.seq)), [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.equal(all[0].payload, 'first');
    assert.equal(all[1].payload, '', 'an empty line is a record with an empty payload');
    assert.equal(all[2].payload, null, 'non-UTF-8 is not forced into the STRING column');
    assert.deepEqual(Buffer.from(all[2].payload_raw), bin, 'non-UTF-8 bytes kept exactly');
    const pieces = all.slice(3, 6);
    for (const p of pieces) assert.notEqual(Number(p.flags), 0, 'split pieces are flagged');
    assert.equal(pieces.map((p) => p.payload).join(''), long, 'pieces concatenate to the line');
    assert.equal(all[6].payload, 'crlf line');
    assert.equal(Number(all[6].flags), 0);
    assert.equal(all[7].payload, 'no newline at end');
  } finally {
    await agent.kill();
    await server.kill();
  }
});
