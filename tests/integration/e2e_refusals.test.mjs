// Refusal sources end to end (docs/operations.md "Fleet health", docs/protocol.md "HTTP API"):
// real clients are refused by runnel-server (grpcio with a wrong token, grpcio with a valid
// principal on a table it may not write, then resuming a stream nobody has, REST inserts with
// a bad token, an API read without credentials) and /api/v1/refusals lists each source
// (address 127.0.0.1, principal, table, counts by kind) with counts exactly equal to the calls
// refused; the overview's summary and the global counters of /metrics (refusals_total, and
// calls_rejected_total + calls_denied_total for the refusals about credentials) agree with
// the sum; and the rows of runnel.fleet.refusals, read with DuckDB, add up to the same counts
// per source. A flood from one address throttled by refuse_throttle: its refused requests are
// counted, the 429s the throttle answers are not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { Server, run, tmpDir, waitFor, zbClient } from './lib/harness.mjs';
import { duckFrom, query, verifyTable } from './lib/table.mjs';

const TOP = 'top-secret';
const CONF = `principals = (
  { name = "writer"; tokens = [ "w-secret" ]; tables = [ "main.ok.*" ]; },
  { name = "viewer"; tokens = [ "v-secret" ]; console = true; }
);
auto_create = true;
fleet_table_interval = "1s";
`;

async function getJson(url, token) {
  const args = ['-sS', '-o', '-', '-w', '\n%{http_code}'];
  if (token) args.push('-H', `Authorization: Bearer ${token}`);
  const r = await run('curl', [...args, url]);
  if (r.code !== 0) throw new Error(`curl ${url}: ${r.stderr}`);
  const cut = r.stdout.lastIndexOf('\n');
  const body = r.stdout.slice(0, cut);
  let json;
  try {
    json = JSON.parse(body);
  } catch {
    json = undefined;
  }
  return { status: Number(r.stdout.slice(cut + 1)), json, body };
}

test('refusal sources: the API, the overview, /metrics and runnel.fleet.refusals agree with the calls refused', { timeout: 120000 }, async () => {
  const server = new Server({ dir: tmpDir('refusals'), tables: ['main.ok.t'], token: TOP, metrics: true, extra: CONF });
  await server.start();
  try {
    const api = (p, token = 'v-secret') => getJson(`${server.metricsUrl}/api/v1/${p}`, token);
    const m0 = await server.metrics();
    const auth0 = m0.must('calls_rejected_total') + m0.must('calls_denied_total');
    assert.equal(m0.must('refusals_total'), 0);
    assert.equal((await api('refusals')).json.sources.length, 0);

    // three gRPC calls with a wrong token: UNAUTHENTICATED, no principal
    for (let i = 0; i < 3; i++) {
      const r = await zbClient(server, 'status', '--case', 'write', '--table', 'main.ok.t', '--token', 'nope');
      assert.equal(r.code, 'UNAUTHENTICATED');
    }
    // two by a valid principal on a table it may not write: PERMISSION_DENIED, principal writer
    for (let i = 0; i < 2; i++) {
      const r = await zbClient(server, 'status', '--case', 'write', '--table', 'main.no.t', '--token', 'w-secret');
      assert.equal(r.code, 'PERMISSION_DENIED');
    }
    // one after the call opened: a resume of a stream nobody has, NOT_FOUND, principal writer
    const unknown = await zbClient(server, 'status', '--case', 'unknown-resume', '--table', 'main.ok.t', '--token', 'w-secret');
    assert.equal(unknown.code, 'NOT_FOUND');
    // two REST inserts with a bad token: 401, no principal
    for (let i = 0; i < 2; i++) {
      const r = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'POST',
        '-H', 'Authorization: Bearer bad', '-H', 'Content-Type: application/json', '--data-binary', '[{"v":1}]',
        `${server.metricsUrl}/zerobus/v1/tables/main.ok.t/insert`]);
      assert.equal(r.stdout, '401');
    }
    // a call that is accepted is no refusal
    const ok = await zbClient(server, 'status', '--case', 'write', '--table', 'main.ok.t', '--token', 'w-secret');
    assert.equal(ok.code, 'OK');

    const list = (await api('refusals')).json;
    assert.equal(list.total, 2);
    assert.equal(list.refused, 8);
    assert.equal(list.evicted, 0);
    const anon = list.sources.find((x) => x.principal === '');
    const writer = list.sources.find((x) => x.principal === 'writer');
    assert.equal(anon.peer, '127.0.0.1');
    assert.equal(anon.count, 5);
    assert.deepEqual(anon.kinds, { UNAUTHENTICATED: 3, http_401: 2 });
    assert.equal(anon.table, 'main.ok.t');
    assert.equal(writer.peer, '127.0.0.1');
    assert.equal(writer.count, 3);
    assert.deepEqual(writer.kinds, { PERMISSION_DENIED: 2, NOT_FOUND: 1 });
    assert.equal(writer.table, 'main.ok.t'); // the last one named
    assert.match(writer.last_reason, /stream/);
    assert.ok(writer.first_ms <= writer.last_ms && writer.last_ms <= list.now_ms);
    // sorted by count (most first), then filter, sort and limit
    assert.deepEqual(list.sources.map((x) => x.principal), ['', 'writer']);
    const q = (await api('refusals?q=writer')).json;
    assert.deepEqual(q.sources.map((x) => x.principal), ['writer']);
    const byName = (await api('refusals?sort=principal&order=desc&limit=1')).json;
    assert.equal(byName.total, 2);
    assert.deepEqual(byName.sources.map((x) => x.principal), ['writer']);
    assert.equal((await api('refusals?sort=nope')).status, 400);

    // the overview's summary and /metrics read now agree with the list
    const ov = (await api('overview')).json;
    assert.equal(ov.refusals.last_hour, 8);
    assert.equal(ov.refusals.total, 8);
    assert.equal(ov.refusals.sources, 2);
    assert.deepEqual(ov.refusals.top.map((x) => [x.principal, x.count]), [['', 5], ['writer', 3]]);
    const m1 = await server.metrics();
    assert.equal(m1.must('refusals_total'), 8);
    assert.equal(m1.must('refusal_sources'), 2);
    // the credentials' counters: the 7 refusals about credentials, not the NOT_FOUND
    assert.equal(m1.must('calls_rejected_total') + m1.must('calls_denied_total') - auth0, 7);

    // an API read without credentials is one more refusal of that source, once
    assert.equal((await api('refusals', null)).status, 401);
    const after = (await api('refusals')).json.sources.find((x) => x.principal === '');
    assert.equal(after.count, 6);
    assert.deepEqual(after.kinds, { UNAUTHENTICATED: 3, http_401: 3 });

    // runnel.fleet.refusals: the interval counts add up to each source's count
    let sums;
    await waitFor(async () => {
      let t;
      try {
        t = await verifyTable(server.tableDir('runnel.fleet.refusals'));
      } catch {
        return false;
      }
      sums = await query(`SELECT peer, principal, sum(count_interval) AS n, max(count_total) AS total,
        max(table_name) AS tbl FROM ${duckFrom(t.files)} GROUP BY peer, principal ORDER BY principal`);
      return sums.length === 2 && Number(sums[0].n) === 6;
    }, { what: 'runnel.fleet.refusals rows adding up to the counts' });
    assert.equal(sums[0].peer, '127.0.0.1');
    assert.equal(sums[0].principal, '');
    assert.equal(Number(sums[0].total), 6);
    assert.equal(sums[1].principal, 'writer');
    assert.equal(Number(sums[1].n), 3);
    assert.equal(Number(sums[1].total), 3);
    assert.ok(['main.ok.t', 'main.no.t'].includes(sums[1].tbl));
    const m2 = await server.metrics();
    assert.equal(m2.must('refusals_total'), 9);
  } finally {
    await server.stop();
  }
});

function post(port, path, { localAddress, headers = {}, body = '' } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', localAddress, headers, agent: false },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      });
    req.on('error', reject);
    req.end(body);
  });
}

test('refusal sources under refuse_throttle: the refused requests are counted, the throttle\'s 429s are not', { timeout: 60000 }, async () => {
  const server = await new Server({ dir: tmpDir('refusals-throttle'), tables: ['main.ok.t'], token: TOP, metrics: true,
    extra: 'refuse_cooldown = "5s"; refuse_throttle = 10;' }).start();
  try {
    const bad = { 'content-type': 'application/json', authorization: 'Bearer wrong' };
    // waves of 30 wrong-token inserts from 127.0.0.2 until one is answered 429
    const codes = [];
    for (let wave = 0; !codes.includes(429); wave++) {
      assert.ok(wave < 100, 'never throttled');
      codes.push(...await Promise.all(Array.from({ length: 30 }, () => post(server.metricsPort,
        '/zerobus/v1/tables/main.ok.t/insert', { localAddress: '127.0.0.2', headers: bad, body: '[{"a":1}]' }))));
    }
    const refused = codes.filter((c) => c === 401).length;
    assert.ok(refused > 10 && codes.every((c) => c === 401 || c === 429), JSON.stringify(codes));
    const list = (await getJson(`${server.metricsUrl}/api/v1/refusals`, TOP)).json;
    assert.deepEqual(list.sources.map((x) => [x.peer, x.principal, x.count, x.kinds]),
      [['127.0.0.2', '', refused, { http_401: refused }]]);
    assert.equal(list.refused, refused);
    assert.equal((await server.metrics()).must('refusals_total'), refused);
    assert.ok((await server.metrics()).must('rest_throttled_total') >= 1);
  } finally {
    await server.stop();
  }
});
