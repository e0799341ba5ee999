// `runnel-server fleet` (server/cli/fleet_cli.c) against HTTP servers: what it asks (path,
// query, Authorization) and how it reports what it gets. First with node HTTP servers that
// play a server (an old one without the fleet API: 404; one that wants a token: 401) and
// with nobody listening (connection refused); -c reads metrics_listen from a config. Then
// against a real runnel-server fed health reports by python3-grpcio (zerobus_client.py
// health): the table and --json say what GET /api/v1/devices says, the filters select what
// the API selects, and the server's 401/403 come out as clear messages; and --refused after
// gRPC calls with a wrong token says what GET /api/v1/refusals says.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { Server, freePort, run, serverBin, tmpDir, zbClient } from './lib/harness.mjs';

const fleet = (...args) => run(serverBin, ['fleet', ...args]);

// A node HTTP server on loopback answering with answer(req) -> {status, body, headers};
// resolves {url, port, requests, close}.
async function fakeServer(answer) {
  const requests = [];
  const srv = http.createServer((req, res) => {
    requests.push({ url: req.url, auth: req.headers.authorization });
    const a = answer(req);
    res.writeHead(a.status, { 'content-type': 'application/json', ...(a.headers || {}) });
    res.end(a.body);
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address();
  return { url: `http://127.0.0.1:${port}`, port, requests, close: () => new Promise((r) => srv.close(r)) };
}

test('nobody listening: exit 1, connection refused', async () => {
  const port = await freePort();
  const r = await fleet('--url', `http://127.0.0.1:${port}`);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cannot connect to 127\.0\.0\.1 port \d+: Connection refused/);
  assert.equal(r.stdout, '');
});

test('a server without the fleet API (404): exit 1, says so', async () => {
  const old = await fakeServer(() => ({ status: 404, body: 'not found\n', headers: { 'content-type': 'text/plain' } }));
  try {
    for (const extra of [[], ['--streams']]) {
      const r = await fleet('--url', old.url, ...extra);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /has no \/api\/v1\/(devices|streams) \(404\): a runnel-server older than the fleet API/);
    }
    assert.deepEqual(old.requests.map((q) => q.url), ['/api/v1/devices', '/api/v1/streams']);
  } finally {
    await old.close();
  }
});

test('401 without a token says it needs one; the token goes as a bearer', async () => {
  const srv = await fakeServer((req) => (req.headers.authorization === 'Bearer tok-1'
    ? { status: 200, body: '{"now_ms": 1000, "total": 0, "devices": []}' }
    : { status: 401, body: '{"error_code":"UNAUTHENTICATED","message":"no token"}', headers: { 'www-authenticate': 'Bearer' } }));
  const dir = tmpDir('e2e-fleet-cli-token');
  try {
    let r = await fleet('--url', srv.url);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /needs a token \(401\): give --token or --token-file/);
    r = await fleet('--url', srv.url, '--token', 'wrong');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /the token was not accepted \(401\)/);
    const tf = path.join(dir, 'token');
    fs.writeFileSync(tf, 'tok-1\n');
    r = await fleet('--url', srv.url, '--token-file', tf, '--state', 'silent', '--q', 'truck 7/ä', '--limit', '3');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^DEVICE +STATES +LAST SEEN/);
    assert.match(r.stdout, /\n0 devices\n$/);
    assert.equal(srv.requests.at(-1).url, '/api/v1/devices?state=silent&q=truck%207%2F%C3%A4&limit=3');
    assert.deepEqual(srv.requests.map((q) => q.auth), [undefined, 'Bearer wrong', 'Bearer tok-1']);
  } finally {
    await srv.close();
  }
});

test('-c: the URL is the config\'s metrics_listen; usage errors exit 2', async () => {
  const srv = await fakeServer(() => ({ status: 200, body: '{"now_ms":5,"total":0,"streams":[]}' }));
  const dir = tmpDir('e2e-fleet-cli-conf');
  try {
    const conf = path.join(dir, 'server.conf');
    fs.writeFileSync(conf, `listen = "127.0.0.1:0";\nmetrics_listen = "0.0.0.0:${srv.port}";\ndata_root = "${dir}";\n`);
    let r = await fleet('-c', conf, '--streams', '--json');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '{"now_ms":5,"total":0,"streams":[]}\n');
    assert.equal(srv.requests.at(-1).url, '/api/v1/streams');
    const noMetrics = path.join(dir, 'nometrics.conf');
    fs.writeFileSync(noMetrics, `listen = "127.0.0.1:0";\ndata_root = "${dir}";\n`);
    r = await fleet('-c', noMetrics);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /metrics_listen is not set/);
    r = await fleet('-c', path.join(dir, 'nope.conf'));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /nope\.conf/);
    for (const args of [['--url', srv.url, '--bogus'], ['--url', srv.url, '--order', 'up'],
      ['--url', srv.url, '--limit', '0'], ['--url', srv.url, '-c', conf],
      ['--url', srv.url, '--token', 'a', '--token-file', 'b'],
      ['--url', srv.url, '--refused', '--state', 'silent'], ['--url', srv.url, '--refused', '--streams']]) {
      r = await fleet(...args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    }
    r = await fleet('--help');
    assert.equal(r.code, 0);
    assert.match(r.stdout, /usage: runnel-server fleet/);
  } finally {
    await srv.close();
  }
});

// ---- against a real server ----

const PRINCIPALS = `principals = (
  { name = "truck"; tokens = [ "tok-truck" ]; tables = [ "main.default.*" ]; },
  { name = "ops"; tokens = [ "tok-ops" ]; console = true; },
  { name = "writer"; tokens = [ "tok-writer" ]; tables = [ "*" ]; }
);
fleet_behind_after = "10s";
`;

const REPORTS = {
  'truck-7': { v: 1, device: 'truck-7', version: '0.9.1', uptime_s: 100,
    clock: { synced: true, offset_ms: 0 },
    buffer: { bytes: 2048, records: 10, max_bytes: 1000000, oldest_unsent_age_s: 3600 },
    drops: { full: 4 }, expired: 1, dead_letters: 2,
    sources: [{ name: 'can', type: 'serial', state: 'up', error: null, records: 10 }] },
  'van-2': { v: 1, device: 'van-2', version: '0.9.0', uptime_s: 5,
    clock: { synced: false, offset_ms: null },
    buffer: { bytes: 0, records: 0, max_bytes: 1000000, oldest_unsent_age_s: null },
    drops: {}, expired: 0, dead_letters: 0, sources: [] },
};

// The CLI's human forms, from the API's numbers (what the table must show).
const human = {
  bytes: (n) => (n === null || n === undefined ? '-' : n < 1024 ? `${n} B`
    : (() => { let v = n; let u = -1; const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
      while (v >= 1024 && u < 4) { v /= 1024; u++; } return `${v.toFixed(1)} ${units[u]}`; })()),
  dur: (s) => (s === null || s === undefined ? '-' : s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m`
    : s < 86400 ? `${Math.floor(s / 3600)}h` : `${Math.floor(s / 86400)}d`),
  count: (v) => (v === null || v === undefined ? '-' : typeof v === 'object'
    ? String(Object.values(v).reduce((a, b) => a + (Number.isInteger(b) && b > 0 ? b : 0), 0)) : String(v)),
};

// The rows of the CLI's table as {column: cell}, split at the header's column starts.
function parseTable(text) {
  const lines = text.trimEnd().split('\n');
  const footer = lines.pop();
  const head = lines.shift();
  const starts = [...head.matchAll(/(\S+(?: \S+)*)/g)].map((m) => ({ name: m[1], at: m.index }));
  const rows = lines.map((l) => Object.fromEntries(starts.map((c, i) =>
    [c.name, l.slice(c.at, i + 1 < starts.length ? starts[i + 1].at : undefined).trim()])));
  return { rows, footer };
}

async function api(server, pathq, token = 'tok-ops') {
  const r = await fetch(`${server.metricsUrl}${pathq}`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(r.status, 200, `${pathq}: ${r.status}`);
  return r.json();
}

test('against a real server: table and --json match /api/v1/devices, filters, auth', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-fleet-cli-real');
  const server = await new Server({ dir, metrics: true, extra: PRINCIPALS }).start();
  try {
    for (const rep of Object.values(REPORTS)) {
      const out = await zbClient(server, 'health', '--health', JSON.stringify(rep), '--records', '2',
        '--batches', '1', '--token', 'tok-truck');
      assert.equal(out.code, 'OK', JSON.stringify(out));
      assert.equal(out.health_header, true);
    }
    const url = server.metricsUrl;
    const cli = (...args) => fleet('--url', url, ...args);
    // both devices are known to the API
    let want;
    for (let i = 0; i < 100; i++) {
      want = await api(server, '/api/v1/devices');
      if (want.devices.filter((d) => REPORTS[d.device]).length === 2) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(want.devices.map((d) => d.device).filter((d) => REPORTS[d]).sort(), ['truck-7', 'van-2']);

    // auth: none, a principal without console, the console principal, -c with a token file
    let r = await cli();
    assert.equal(r.code, 1);
    assert.match(r.stderr, /needs a token \(401\)/);
    r = await cli('--token', 'tok-writer');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /forbidden \(403\).*console = true/);
    r = await cli('--token', 'nope');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /the token was not accepted \(401\)/);

    // --json is the API's answer (now_ms aside: another moment)
    r = await cli('--token', 'tok-ops', '--json');
    assert.equal(r.code, 0, r.stderr);
    const got = JSON.parse(r.stdout);
    want = await api(server, '/api/v1/devices');
    assert.equal(typeof got.now_ms, 'number');
    delete got.now_ms;
    delete want.now_ms;
    assert.deepEqual(got, want);

    // the table: one row per device of the API, each cell from the API's fields
    const tf = path.join(dir, 'ops.token');
    fs.writeFileSync(tf, 'tok-ops\n');
    // -c: the harness's config says port 0 (picked at start), which -c cannot know
    r = await fleet('-c', server.conf, '--token-file', tf);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /has port 0 \(the system picks one at start\); give --url/);
    const conf = path.join(dir, 'fixed.conf');
    fs.writeFileSync(conf, fs.readFileSync(server.conf, 'utf8')
      .replace('metrics_listen = "127.0.0.1:0";', `metrics_listen = "127.0.0.1:${server.metricsPort}";`));
    r = await fleet('-c', conf, '--token-file', tf);
    assert.equal(r.code, 0, r.stderr);
    const api2 = await api(server, '/api/v1/devices');
    const { rows, footer } = parseTable(r.stdout);
    assert.equal(rows.length, api2.devices.length);
    assert.equal(footer, `${api2.devices.length} device${api2.devices.length === 1 ? '' : 's'}`);
    for (const d of api2.devices) {
      const row = rows.find((x) => x.DEVICE === (d.device ?? `(stream ${d.streams[0]})`));
      assert.ok(row, `no row for ${d.device}: ${r.stdout}`);
      assert.equal(row.STATES, d.states.length ? d.states.join(',') : 'ok');
      assert.equal(row.BUFFER, human.bytes(d.buffer_bytes));
      assert.equal(row['OLDEST UNSENT'], human.dur(d.oldest_unsent_age_s));
      assert.equal(row.DROPS, human.count(d.drops));
      assert.equal(row.EXPIRED, human.count(d.expired));
      assert.equal(row.DEAD, human.count(d.dead_letters));
      assert.equal(row.VERSION, d.version ?? '-');
      assert.match(row['LAST SEEN'], /^\d+[smhd] ago$/);
    }
    const truck = rows.find((x) => x.DEVICE === 'truck-7');
    assert.deepEqual([truck.BUFFER, truck['OLDEST UNSENT'], truck.DROPS, truck.EXPIRED, truck.DEAD, truck.VERSION],
      ['2.0 KiB', '1h', '4', '1', '2', '0.9.1']);

    // filters: the CLI passes them on, and shows what the API selects
    for (const [args, q] of [[['--state', 'behind'], 'state=behind'], [['--state', 'clock'], 'state=clock'],
      [['--q', 'van'], 'q=van'], [['--sort', 'device', '--order', 'asc'], 'sort=device&order=asc'],
      [['--limit', '1'], 'limit=1']]) {
      r = await cli('--token', 'tok-ops', ...args);
      assert.equal(r.code, 0, `${args}: ${r.stderr}`);
      const sel = await api(server, `/api/v1/devices?${q}`);
      const t = parseTable(r.stdout);
      assert.deepEqual(t.rows.map((x) => x.DEVICE), sel.devices.map((d) => d.device ?? `(stream ${d.streams[0]})`), args.join(' '));
      if (sel.total > sel.devices.length) assert.equal(t.footer, `${sel.devices.length} of ${sel.total} devices shown (--limit)`);
    }
    // the spec's states: an hour of backlog is behind (fleet_behind_after 10 s), an unsynced clock is clock
    assert.deepEqual((await api(server, '/api/v1/devices?state=behind')).devices.map((d) => d.device), ['truck-7']);
    assert.ok((await api(server, '/api/v1/devices?state=clock')).devices.some((d) => d.device === 'van-2'));
    r = await cli('--token', 'tok-ops', '--state', 'nonsense');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /HTTP 400/);

    // --streams: one row per stream of the API
    r = await cli('--token', 'tok-ops', '--streams');
    assert.equal(r.code, 0, r.stderr);
    const st = await api(server, '/api/v1/streams');
    const ts = parseTable(r.stdout);
    assert.deepEqual(ts.rows.map((x) => x.STREAM).sort(), st.streams.map((x) => x.stream_id).sort());
    for (const s2 of st.streams) {
      const row = ts.rows.find((x) => x.STREAM === s2.stream_id);
      assert.equal(row.DEVICE, s2.device ?? '-');
      assert.equal(row.RECORDS, String(s2.records));
      assert.equal(row.ACKED, String(s2.acked_offset));
    }
  } finally {
    await server.kill();
  }
});

test('against a real server: --refused and --refused --json match /api/v1/refusals', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-fleet-cli-refused');
  const server = await new Server({ dir, tables: ['main.default.t'], metrics: true, extra: PRINCIPALS }).start();
  try {
    const cli = (...args) => fleet('--url', server.metricsUrl, '--token', 'tok-ops', ...args);
    // nothing refused yet: an empty table
    let r = await cli('--refused');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ADDRESS +PRINCIPAL +COUNT +KINDS +LAST SEEN +LAST REASON\n0 sources\n$/);
    // two gRPC calls with a wrong token: refused, from 127.0.0.1 without a principal
    for (let i = 0; i < 2; i++) {
      const c = await zbClient(server, 'status', '--case', 'write', '--table', 'main.default.t', '--token', 'nope');
      assert.equal(c.code, 'UNAUTHENTICATED', JSON.stringify(c));
    }
    const want = await api(server, '/api/v1/refusals');
    const src = want.sources.find((x) => x.peer === '127.0.0.1');
    assert.ok(src, JSON.stringify(want));
    assert.equal(src.count, 2);

    r = await cli('--refused');
    assert.equal(r.code, 0, r.stderr);
    const { rows, footer } = parseTable(r.stdout);
    assert.equal(rows.length, want.sources.length);
    assert.equal(footer, `${want.sources.length} source${want.sources.length === 1 ? '' : 's'}`);
    const row = rows.find((x) => x.ADDRESS === '127.0.0.1');
    assert.ok(row, r.stdout);
    assert.equal(row.PRINCIPAL, src.principal || '-');
    assert.equal(row.COUNT, String(src.count));
    assert.equal(row.KINDS, Object.entries(src.kinds).map(([k, n]) => `${k} ${n}`).join(', '));
    assert.match(row['LAST SEEN'], /^\d+[smhd] ago$/);
    assert.equal(row['LAST REASON'], src.last_reason.slice(0, 40) + (src.last_reason.length > 40 ? '...' : ''));

    // --json is the API's answer (now_ms aside: another moment); filters pass through
    r = await cli('--refused', '--json');
    assert.equal(r.code, 0, r.stderr);
    const got = JSON.parse(r.stdout);
    const want2 = await api(server, '/api/v1/refusals');
    assert.equal(typeof got.now_ms, 'number');
    delete got.now_ms;
    delete want2.now_ms;
    assert.deepEqual(got, want2);
    r = await cli('--refused', '--q', 'no-such-source', '--sort', 'peer', '--order', 'asc', '--limit', '5');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(parseTable(r.stdout).footer, '0 sources');
    r = await cli('--refused', '--sort', 'nonsense');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /\/api\/v1\/refusals answered HTTP 400/);
  } finally {
    await server.kill();
  }
});
