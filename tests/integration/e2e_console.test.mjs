// The web console (console/, served at /console/ by runnel-server; docs/operations.md "Web
// console") in headless Chromium (Debian's chromium, driven by puppeteer-core) against a real
// server fed by two agents (file sources) and a grpcio client (zerobus_client.py) whose
// health report carries hostile strings and absurd values:
// - serving: types, nosniff, the content-security-policy, ETag/304, HEAD, 405, 404 and the
//   redirect of / on both HTTP ports (HTTP/1.1 metrics port, HTTP/2 main port);
// - every page at 1280x800 and 375x740: no console error, no script error, no horizontal
//   page scroll at 375 px; every number shown (data-k, data-v) equals /api/v1 read at the
//   same moment, its text says the same value, and the overview's totals equal /metrics;
// - the devices and streams pages show what the system tables hold: each device's newest
//   runnel.fleet.agents row and each stream's newest runnel.fleet.streams row (DuckDB);
// - hostile device and source names, error strings and a dead letter's sample show as text,
//   and no script of theirs ran; the absurd values are shown as invalid;
// - an agent SIGSTOPped shows as silent on the streams page within fleet_silent_after (2 s)
//   plus two polls (and SILENT_SLACK_MS for a loaded machine); a server gone shows the
//   error banner;
// - with principals, the console asks for a token, refuses one without `console = true`
//   and shows the data with one that has it.
// Screenshots (png, every page at both widths) go to $RN_ARTIFACTS if set, else
// build/artifacts/console/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http2 from 'node:http2';
import path from 'node:path';
import puppeteer from 'puppeteer-core';
import { Agent, Server, buildDir, readMetrics, tmpDir, waitFor, zbClient } from './lib/harness.mjs';
import { duckFrom, query, verifyTable } from './lib/table.mjs';

const CHROMIUM = '/usr/bin/chromium';
const POLL_MS = 500;
const SILENT_AFTER_S = 2;
// what a loaded machine may add to fleet_silent_after + two polls before the page shows it
// (a poll answered late, Chromium scheduled late): the documented bound is the first two
const SILENT_SLACK_MS = 3000;
const ARTIFACTS = process.env.RN_ARTIFACTS || path.join(buildDir, 'artifacts', 'console');
const WIDTHS = [[1280, 800], [375, 740]];
const T0 = Date.now();
const step = (what) => process.env.RN_TEST_VERBOSE && process.stderr.write(`[console +${Date.now() - T0} ms] ${what}\n`);
const TYPED = 'main.default.typed';
const RECORDS = 40 + 60 + 30 + 2; // agent a, agent b, the grpcio client, the REST insert
const HOSTILE_DEVICE = '<img src=x onerror="window.__pwned=1">';
const HOSTILE_SOURCE = '<img src=x onerror="window.__pwned=2">';
const HOSTILE_ERROR = '<script>window.__pwned=3</script><svg onload="window.__pwned=4">';

async function launch() {
  return puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
  });
}

// A page whose console errors, failed requests and script errors are collected.
async function openPage(browser) {
  const page = await browser.newPage();
  page.problems = [];
  page.on('console', (m) => {
    if (m.type() === 'error') page.problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => page.problems.push(`pageerror: ${e.message}`));
  return page;
}

// Goes to a console page (#/route) and waits for its first update from the API.
async function show(page, base, route) {
  const before = Date.now();
  const key = route === '' ? 'overview' : route.startsWith('device/')
    ? `device:${decodeURIComponent(route.slice(7))}` : route;
  await page.goto(`${base}/console/?poll=${POLL_MS}#/${route}`, { waitUntil: 'load' });
  await page.waitForFunction((t, k) => {
    const u = document.getElementById('updated').dataset;
    return u.route === k && Number(u.updated || 0) >= t;
  }, { timeout: 10000 }, before, key);
}

// Waits for the next update of the page shown; returns its stamp.
async function nextUpdate(page) {
  const t = await page.evaluate(() => Number(document.getElementById('updated').dataset.updated || 0));
  await page.waitForFunction((t0) => Number(document.getElementById('updated').dataset.updated || 0) > t0,
    { timeout: 10000 }, t);
}

// Every number on the page: its key, API value, text and the row (data-id) it is in.
function shownNumbers(page) {
  return page.evaluate(() => [...document.querySelectorAll('[data-k][data-v]')].map((e) => ({
    k: e.dataset.k, v: e.dataset.v, text: e.textContent,
    row: e.closest('tr[data-id]') ? e.closest('tr[data-id]').dataset.id : null,
  })));
}

// The value a number's text says (the console's formats, read independently), with the
// rounding its format allows; null for "—"; undefined for relative times (checked apart).
function readShown(text) {
  let m;
  if (text === '—') return { v: null, tol: 0 };
  if (text === 'never' || text.endsWith(' ago')) return undefined;
  if ((m = text.match(/^(-?[\d,]+)$/))) return { v: Number(m[1].replace(/,/g, '')), tol: 0 };
  if ((m = text.match(/^(-?[\d,]+\.\d\d)$/))) return { v: Number(m[1].replace(/,/g, '')), tol: 0.005 };
  if ((m = text.match(/^(-?[\d,]+) ms$/))) return { v: Number(m[1].replace(/,/g, '')), tol: 0 };
  if ((m = text.match(/^(-?[\d,]+\.\d\d) ms$/))) return { v: Number(m[1].replace(/,/g, '')), tol: 0.005 };
  if ((m = text.match(/^(-?\d+) B$/))) return { v: Number(m[1]), tol: 0 };
  if ((m = text.match(/^([\d.]+) (KiB|MiB|GiB|TiB|PiB)$/))) {
    const v = Number(m[1]) * 1024 ** (['KiB', 'MiB', 'GiB', 'TiB', 'PiB'].indexOf(m[2]) + 1);
    return { v, tol: v * 0.006 };
  }
  if ((m = text.match(/^(\d+) s$/))) return { v: Number(m[1]), tol: 0 };
  if ((m = text.match(/^(\d+\.\d) s$/))) return { v: Number(m[1]), tol: 0.05 };
  if ((m = text.match(/^(\d+) min (\d+) s$/))) return { v: m[1] * 60 + Number(m[2]), tol: 0 };
  if ((m = text.match(/^(\d+) h (\d+) min$/))) return { v: m[1] * 3600 + m[2] * 60, tol: 60 };
  if ((m = text.match(/^(\d+) d (\d+) h$/))) return { v: m[1] * 86400 + m[2] * 3600, tol: 3600 };
  throw new Error(`a number shown as "${text}": no known format`);
}

function dig(obj, keyPath) {
  return keyPath.reduce((o, k) => (o !== null && typeof o === 'object' ? o[k] : undefined), obj);
}

// The pages whose numbers are also in a system table: page, table, the key column (a row's
// data-id), and the table's column of each number shown.
const SYSTEM_CHECKS = [
  ['devices', 'runnel.fleet.agents', 'device', {
    'devices.buffer_bytes': 'buffer_bytes', 'devices.buffer_records': 'buffer_records',
    'devices.oldest_unsent_age_s': 'oldest_unsent_age_s', 'devices.drops': 'drops_total',
    'devices.expired': 'expired', 'devices.dead_letters': 'dead_letters',
  }],
  ['streams', 'runnel.fleet.streams', 'stream_id', {
    'streams.records': 'records', 'streams.bytes': 'bytes', 'streams.batches': 'batches',
    'streams.acked_offset': 'acked_offset', 'streams.committed_offset': 'committed_offset',
    'streams.pushbacks': 'pushbacks', 'streams.clock_corrections': 'clock_corrections',
    'streams.refused_calls': 'refused_calls',
  }],
];

// Values that move with the clock, not with traffic: how far the page (read a moment
// before the API) may be from the API.
const MOVING = { uptime_s: 2, mat_lag_s: 2 };

// Checks the numbers shown against the API's answer: resolve(n) gives the API value of a
// shown number n (its key, its row). Returns the list of mismatches.
function compare(shown, resolve) {
  const bad = [];
  for (const n of shown) {
    const api = resolve(n);
    const v = n.v === '' ? null : Number(n.v);
    const want = typeof api === 'number' ? api : null;
    const near = MOVING[n.k] !== undefined && v !== null && want !== null && Math.abs(v - want) <= MOVING[n.k];
    if (v !== want && !near) bad.push(`${n.k}${n.row !== null ? `[${n.row}]` : ''}: page ${n.v} API ${JSON.stringify(api)}`);
    const r = readShown(n.text);
    if (r && near) r.tol += MOVING[n.k];
    if (r === undefined) {
      if (want !== null && want > 0 && !n.text.endsWith(' ago')) bad.push(`${n.k}: "${n.text}" for ${want}`);
    } else if (r.v === null ? want !== null : want === null || Math.abs(r.v - want) > r.tol) {
      bad.push(`${n.k}${n.row !== null ? `[${n.row}]` : ''}: text "${n.text}" for ${want}`);
    }
  }
  return bad;
}

async function api(base, p, token) {
  const r = await fetch(`${base}/api/v1/${p}`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  assert.equal(r.status, 200, `${p}: ${r.status}`);
  return r.json();
}

async function pageChecks(page, what, width) {
  const r = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth, inner: window.innerWidth,
    pwned: window.__pwned === undefined ? null : window.__pwned,
    imgs: document.querySelectorAll('img').length,
    scripts: [...document.scripts].map((s) => s.getAttribute('src')),
  }));
  assert.equal(r.pwned, null, `${what}: a script from the data ran`);
  assert.equal(r.imgs, 0, `${what}: an <img> element came from the data`);
  assert.deepEqual(r.scripts, ['app.js'], `${what}: scripts`);
  if (width <= 375) assert.ok(r.scroll <= r.inner, `${what} at ${width}px scrolls sideways: ${r.scroll} > ${r.inner}`);
  assert.deepEqual(page.problems, [], `${what}: console errors`);
}

async function screenshot(page, name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

function h2get(url, p, headers = {}, method = 'GET') {
  return new Promise((resolve, reject) => {
    const c = http2.connect(url);
    c.on('error', reject);
    const req = c.request({ ':path': p, ':method': method, ...headers });
    let body = '';
    let head;
    req.on('response', (h) => (head = h));
    req.setEncoding('utf8');
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      c.close();
      resolve({ headers: head, body });
    });
    req.on('error', reject);
    req.end();
  });
}

test('console files: types, security headers, ETag, HEAD, 405, 404 on both ports', { timeout: 30000 }, async () => {
  const dir = tmpDir('e2e-console-files');
  const server = await new Server({ dir, metrics: true }).start();
  try {
    const base = server.metricsUrl;
    const root = await fetch(`${base}/`, { redirect: 'manual' });
    assert.equal(root.status, 302);
    assert.equal(root.headers.get('location'), '/console/');
    const types = { '': 'text/html', 'app.js': 'text/javascript', 'app.css': 'text/css', 'icon.svg': 'image/svg+xml' };
    for (const [f, type] of Object.entries(types)) {
      const r = await fetch(`${base}/console/${f}`);
      assert.equal(r.status, 200, f);
      assert.ok(r.headers.get('content-type').startsWith(type), `${f}: ${r.headers.get('content-type')}`);
      assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
      assert.match(r.headers.get('content-security-policy'), /default-src 'none'; script-src 'self';/);
      assert.equal(r.headers.get('cache-control'), 'no-cache');
      const etag = r.headers.get('etag');
      assert.match(etag, /^"[0-9a-f]{16}"$/);
      const body = await r.text();
      assert.equal(body, fs.readFileSync(path.join(import.meta.dirname, '../../console', f || 'index.html'), 'utf8'));
      const again = await fetch(`${base}/console/${f}`, { headers: { 'if-none-match': etag } });
      assert.equal(again.status, 304);
      assert.equal(await again.text(), '');
      const head = await fetch(`${base}/console/${f}`, { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.equal(Number(head.headers.get('content-length')), Buffer.byteLength(body));
      // the main port (HTTP/2) answers the same
      const h2 = await h2get(server.url, `/console/${f}`);
      assert.equal(h2.headers[':status'], 200);
      assert.equal(h2.headers.etag, etag);
      assert.equal(h2.headers['x-content-type-options'], 'nosniff');
      assert.equal(h2.body, body);
      const h2c = await h2get(server.url, `/console/${f}`, { 'if-none-match': `W/${etag}` });
      assert.equal(h2c.headers[':status'], 304);
      const h2h = await h2get(server.url, `/console/${f}`, {}, 'HEAD');
      assert.equal(h2h.headers[':status'], 200);
      assert.equal(Number(h2h.headers['content-length']), Buffer.byteLength(body));
      assert.equal(h2h.body, '');
    }
    const post = await fetch(`${base}/console/app.js`, { method: 'POST', body: 'x' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
    assert.equal((await fetch(`${base}/console/nope.js`)).status, 404);
    assert.equal((await fetch(`${base}/console/..%2fapp.js`)).status, 404);
    assert.equal((await h2get(server.url, '/console/nope.js')).headers[':status'], 404);
    // counted per route and status, both ports: 4 files x (GET, HEAD) x 2 ports; the 302
    // and the 304s are "other"
    const m = await server.metrics();
    assert.equal(m('rest_requests_total', 'route="console",code="200"'), 16);
    assert.equal(m('rest_requests_total', 'route="console",code="404"'), 3);
    assert.equal(m('rest_requests_total', 'route="console",code="405"'), 1);
    assert.equal(m('rest_requests_total', 'route="console",code="other"'), 9);
  } finally {
    await server.kill();
  }
});

test('console pages against two agents and a grpcio client', { timeout: 90000 }, async () => {
  const dir = tmpDir('e2e-console');
  const tables = ['main.default.a', 'main.default.b', 'main.default.telemetry'];
  const server = await new Server({
    dir, tables, metrics: true,
    extra: `fleet_silent_after = "${SILENT_AFTER_S}s";\nfleet_table_interval = "1s";
schemas = ( { table = "${TYPED}"; columns = ( { name = "v"; type = "long"; } ); } );`,
  }).start();
  const files = { a: path.join(dir, 'a.log'), b: path.join(dir, 'b.log') };
  const lines = (tag, from, n) => Array.from({ length: n }, (_, i) => `{"src":"${tag}","n":${from + i}}\n`).join('');
  fs.writeFileSync(files.a, lines('a', 0, 40));
  fs.writeFileSync(files.b, lines('b', 0, 60));
  const agents = ['a', 'b'].map((x) => new Agent({
    dir: path.join(dir, `agent-${x}`), url: server.url, deviceId: `dev-${x}`,
    sources: [{ name: `file-${x}`, paths: [files[x]], table: `main.default.${x}` }],
  }));
  let browser;
  try {
    for (const a of agents) await a.start();
    // the grpcio client: one health report with hostile strings and absurd values
    const report = path.join(dir, 'health.json');
    fs.writeFileSync(report, JSON.stringify({
      v: 1, device: HOSTILE_DEVICE, version: HOSTILE_ERROR, config_sha256: 'z'.repeat(64),
      boot_id: HOSTILE_SOURCE, uptime_s: -5, sent_at_ms: 1.5,
      clock: { synced: 'yes', offset_ms: 1e300 },
      buffer: { bytes: -1, records: 2 ** 60, max_bytes: 'big', oldest_unsent_age_s: 7 },
      drops: { overflow: 3, [HOSTILE_SOURCE]: -2 }, expired: [], dead_letters: {},
      sources: [{ name: HOSTILE_SOURCE, type: 'file', state: 'error', error: HOSTILE_ERROR, records: 5 },
        { name: 'ok-source', type: 'mqtt', state: 'up', error: null, records: 12 }],
    }));
    const py = await zbClient(server, 'health', '--health', `@${report}`, '--records', '10', '--batches', '2');
    assert.equal(py.health_header, true, 'the server answers runnel-health: 1');
    assert.equal(py.code, 'OK', py.details);
    assert.deepEqual(py.acks, [0, 1, 2]);
    // a typed table: one good row, one that goes to its dead letters (a hostile sample)
    const ins = await fetch(`${server.metricsUrl}/zerobus/v1/tables/${TYPED}/insert`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify([{ v: 1 }, { v: HOSTILE_SOURCE }]),
    });
    assert.equal(ins.status, 200, await ins.text());
    // the feeders are done once everything is acked and in /metrics
    await waitFor(async () => (await server.metric('records_total')) === RECORDS, { what: 'all records in' });
    await waitFor(async () => (await server.metric('dead_letter_records_total')) === 1, { what: 'the dead letter' });

    step('fed');
    browser = await launch();
    const page = await openPage(browser);
    const base = server.metricsUrl;
    const overviewKeys = {
      'totals.records': 'records_total', 'totals.bytes': 'record_bytes_total',
      'totals.batches': 'batches_total', 'totals.flush_errors': 'flush_errors_total',
      'totals.dead_letters': 'dead_letter_records_total', 'totals.streams_open': 'streams_open',
      'totals.connections': 'connections_open', 'wal_bytes': 'wal_bytes',
    };
    const devices = await api(base, 'devices');
    const hostile = devices.devices.find((d) => d.device === HOSTILE_DEVICE);
    assert.ok(hostile, `the hostile device is listed: ${JSON.stringify(devices.devices.map((d) => d.device))}`);
    assert.ok(hostile.invalid.length > 0, 'its absurd values are flagged');
    const routes = [
      ['overview', '', 'overview', (d) => (n) => dig(d, n.k.split('.'))],
      ['tables', 'tables', 'tables', (d) => (n) => {
        const t = d.tables.find((x) => x.name === n.row);
        return dig(t, n.k.split('.').slice(1));
      }],
      ['devices', 'devices', 'devices?limit=10000', (d) => (n) => {
        if (n.k === 'total') return d.total;
        if (n.k === 'devices.shown') return d.devices.length;
        const x = d.devices.find((y) => y.device === n.row);
        return n.k === 'devices.streams' ? x.streams.length : dig(x, n.k.split('.').slice(1));
      }],
      ['streams', 'streams', 'streams?limit=10000', (d) => (n) => {
        if (n.k === 'total') return d.total;
        if (n.k === 'streams.shown') return d.streams.length;
        return dig(d.streams.find((y) => y.stream_id === n.row), n.k.split('.').slice(1));
      }],
      ['device-hostile', `device/${encodeURIComponent(HOSTILE_DEVICE)}`, `devices/${encodeURIComponent(HOSTILE_DEVICE)}`, (d) => (n) => {
        if (n.k === 'report.sources.records') return d.report.sources.find((s) => s && s.name === n.row).records;
        if (n.k.startsWith('report.drops.')) return d.report.drops[n.k.slice('report.drops.'.length)];
        if (n.k.startsWith('streams.')) return dig(d.streams.find((y) => y.stream_id === n.row), n.k.split('.').slice(1));
        return dig(d, n.k.split('.'));
      }],
    ];
    for (const [w, h] of WIDTHS) {
      await page.setViewport({ width: w, height: h });
      for (const [name, route, apiPath, resolver] of routes) {
        await show(page, base, route);
        // the page and the API (and /metrics) at the same moment: counters no longer move,
        // but a flush may land in between, so read again until one read agrees
        let bad;
        await waitFor(async () => {
          await nextUpdate(page);
          const shown = await shownNumbers(page);
          const d = await api(base, apiPath);
          bad = compare(shown, resolver(d));
          if (shown.length < 3) bad.push(`only ${shown.length} numbers shown`);
          if (name === 'overview') {
            const m = await readMetrics(base);
            for (const [k, metric] of Object.entries(overviewKeys)) {
              if (dig(d, k.split('.')) !== m.must(metric)) bad.push(`${k}: API ${dig(d, k.split('.'))} /metrics ${metric} ${m(metric)}`);
            }
            const refused = m.must('calls_rejected_total') + m.must('calls_denied_total');
            if (d.totals.calls_refused !== refused) bad.push(`calls_refused: API ${d.totals.calls_refused} /metrics ${refused}`);
            if (Math.abs(d.mat_lag_s - m.must('materializer_lag_seconds')) > MOVING.mat_lag_s) bad.push('mat_lag_s');
            if (d.totals.records !== RECORDS) bad.push(`totals.records ${d.totals.records}`);
            if (d.totals.dead_letters !== 1) bad.push(`totals.dead_letters ${d.totals.dead_letters}`);
          }
          return bad.length === 0;
        }, { timeoutMs: 15000, intervalMs: 0, what: `${name} at ${w}px to match the API` }).catch((e) => {
          throw new Error(`${e.message}: ${bad.join('; ')}`);
        });
        await pageChecks(page, name, w);
        await screenshot(page, `${name}-${w}`);
        step(`${name} at ${w}px`);
      }
      // the hostile strings are on the pages as text: the dead letter's sample, the device
      // name (a link to its page), its sources and errors
      await show(page, base, 'tables');
      await page.click('details.dead summary');
      const dead = await page.$eval('details.dead', (d) => ({ open: d.open, text: d.textContent }));
      assert.ok(dead.open && dead.text.includes(`${TYPED}_dead_letters`) && dead.text.includes(JSON.stringify({ v: HOSTILE_SOURCE })), dead.text);
      await nextUpdate(page);
      assert.equal(await page.$eval('details.dead', (d) => d.open), true, 'kept open across a refresh');
      await show(page, base, 'devices');
      const names = await page.$$eval('tbody tr[data-id] a', (as) => as.map((a) => a.textContent));
      assert.ok(names.includes(HOSTILE_DEVICE), `device names shown: ${JSON.stringify(names)}`);
      const links = await page.$$('tbody tr[data-id] a');
      await links[names.indexOf(HOSTILE_DEVICE)].click();
      await page.waitForFunction((k) => document.getElementById('updated').dataset.route === k &&
        document.querySelector('h1 [data-k="device"]'), { timeout: 10000 }, `device:${HOSTILE_DEVICE}`);
      const dp = await page.evaluate(() => ({
        title: document.querySelector('h1 [data-k="device"]').textContent,
        sources: [...document.querySelectorAll('tr[data-id]')].map((tr) => tr.textContent),
        invalid: [...document.querySelectorAll('[data-k="invalid"]')].map((li) => li.textContent),
      }));
      assert.equal(dp.title, HOSTILE_DEVICE);
      assert.ok(dp.sources.some((t) => t.includes(HOSTILE_SOURCE) && t.includes(HOSTILE_ERROR)), JSON.stringify(dp.sources));
      const dapi = await api(base, `devices/${encodeURIComponent(HOSTILE_DEVICE)}`);
      assert.deepEqual(dp.invalid, dapi.invalid);
      assert.ok(dp.invalid.length >= 3, `absurd values flagged: ${JSON.stringify(dp.invalid)}`);
      await pageChecks(page, 'device page', w);
    }

    step('pages');
    // the system tables say what the pages say: each device's newest runnel.fleet.agents row
    // and each stream's newest runnel.fleet.streams row (read by DuckDB) hold the numbers the
    // devices and streams pages show; rows land each fleet_table_interval, so read until the
    // newest rows have caught up with the page
    await page.setViewport({ width: 1280, height: 800 });
    for (const [route, sysTable, key, cols] of SYSTEM_CHECKS) {
      await show(page, base, route);
      let bad = ['no rows yet'];
      await waitFor(async () => {
        await nextUpdate(page);
        const shown = (await shownNumbers(page)).filter((n) => n.row !== null && cols[n.k]);
        let snap;
        try {
          snap = await verifyTable(server.tableDir(sysTable));
        } catch (e) {
          bad = [`${sysTable}: ${e.message}`];
          return false;
        }
        const rows = await query(`SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY ${key} ORDER BY ts DESC) AS rn
          FROM ${duckFrom(snap.files)} WHERE ${key} IS NOT NULL) WHERE rn = 1`);
        const newest = new Map(rows.map((r) => [r[key], r]));
        bad = [];
        for (const n of shown) {
          const r = newest.get(n.row);
          if (!r) {
            bad.push(`${sysTable}: no row for ${n.row}`);
            continue;
          }
          const col = r[cols[n.k]];
          const want = col === null || col === undefined ? null : Number(col);
          const v = n.v === '' ? null : Number(n.v);
          if (v !== want) bad.push(`${n.k}[${n.row}]: page ${n.v} ${sysTable}.${cols[n.k]} ${want}`);
        }
        if (shown.length < 3) bad.push(`only ${shown.length} numbers on the ${route} page`);
        return bad.length === 0;
      }, { timeoutMs: 30000, intervalMs: 0, what: `the ${route} page to match ${sysTable}` }).catch((e) => {
        throw new Error(`${e.message}: ${bad.join('; ')}`);
      });
      step(`${route} = ${sysTable}`);
    }

    // sorting and filtering (desktop width): by records, then the silent chip and the text box
    await page.setViewport({ width: 1280, height: 800 });
    await show(page, base, 'streams');
    await page.click('button[data-sort="records"]');
    let recs = await page.$$eval('tbody tr [data-k="streams.records"]', (es) => es.map((e) => Number(e.dataset.v)));
    assert.deepEqual(recs, [...recs].sort((x, y) => y - x), 'sorted by records, descending');
    await page.click('button[data-sort="records"]');
    recs = await page.$$eval('tbody tr [data-k="streams.records"]', (es) => es.map((e) => Number(e.dataset.v)));
    assert.deepEqual(recs, [...recs].sort((x, y) => x - y), 'sorted by records, ascending');
    await page.type('#filter', 'main.default.b');
    const filtered = await page.$$eval('tbody tr', (trs) => trs.map((tr) => tr.textContent));
    assert.equal(filtered.length, 1, JSON.stringify(filtered));
    await page.evaluate(() => {
      const f = document.getElementById('filter');
      f.value = '';
      f.dispatchEvent(new Event('input'));
    });

    step('sorted');
    // silent: agent a feeds again (not silent), then is stopped; the page shows it within
    // fleet_silent_after and two polls
    const rowOf = (table) => page.evaluate((t) => {
      const tr = [...document.querySelectorAll('tbody tr')].find((r) => r.textContent.includes(t));
      return tr ? [...tr.querySelectorAll('.state')].map((s) => s.textContent) : null;
    }, table);
    let n = 40;
    const feeder = setInterval(() => fs.appendFileSync(files.a, lines('a', n++, 1)), 250);
    try {
      await waitFor(async () => {
        const st = await rowOf('main.default.a');
        return st && !st.includes('silent');
      }, { timeoutMs: 15000, what: 'agent a shown not silent while it feeds' });
      agents[0].proc.child.kill('SIGSTOP'); // not Proc.kill: it waits for an exit
      const stopped = Date.now();
      await waitFor(async () => ((await rowOf('main.default.a')) || []).includes('silent'),
        { timeoutMs: SILENT_AFTER_S * 1000 + 2 * POLL_MS + SILENT_SLACK_MS + 2000, what: 'agent a shown silent' });
      const took = Date.now() - stopped;
      assert.ok(took <= SILENT_AFTER_S * 1000 + 2 * POLL_MS + SILENT_SLACK_MS, `silent shown after ${took} ms`);
      await page.click('button[data-state="silent"]');
      const silentRows = await page.$$eval('tbody tr', (trs) => trs.map((tr) => tr.textContent));
      assert.ok(silentRows.some((t) => t.includes('main.default.a')), 'the silent chip keeps it');
      assert.ok(silentRows.every((t) => t.includes('silent')), 'the silent chip shows only silent streams');
      await screenshot(page, 'streams-silent-1280');
    } finally {
      clearInterval(feeder);
      agents[0].proc.child.kill('SIGCONT');
    }
    assert.deepEqual(page.problems, []);

    step('silent');
    // the API gone: the banner says so, the last update time stays
    await server.kill();
    await page.waitForSelector('#banner:not([hidden])', { timeout: 5000 });
    const banner = await page.$eval('#banner', (b) => b.textContent);
    assert.match(banner, /API failed/);
    await screenshot(page, 'api-gone-1280');
  } finally {
    if (browser) await browser.close();
    for (const a of agents) if (a.proc) await a.kill('SIGKILL');
    await server.kill();
  }
});

test('console with principals asks for a token and shows the data once given', { timeout: 60000 }, async () => {
  const dir = tmpDir('e2e-console-auth');
  const WRITER = 'w-secret-1';
  const VIEWER = 'v-secret-1';
  const server = await new Server({
    dir, metrics: true,
    extra: `principals = (
  { name = "writer"; tokens = [ "${WRITER}" ]; tables = [ "main.*.*" ]; },
  { name = "viewer"; tokens = [ "${VIEWER}" ]; console = true; }
);`,
  }).start();
  let browser;
  try {
    await zbClient(server, 'ingest', '--records', '5', '--batches', '2', '--token', WRITER);
    const r = await fetch(`${server.metricsUrl}/api/v1/overview`);
    assert.equal(r.status, 401);
    assert.match(r.headers.get('www-authenticate'), /^Bearer/);
    browser = await launch();
    const page = await openPage(browser);
    await page.setViewport({ width: 375, height: 740 });
    await page.goto(`${server.metricsUrl}/console/?poll=${POLL_MS}#/`, { waitUntil: 'load' });
    await page.waitForSelector('#login:not([hidden])', { timeout: 10000 });
    assert.match(await page.$eval('#banner', (b) => b.textContent), /needs a token/);
    assert.equal(await page.$$eval('[data-k="totals.records"]', (e) => e.length), 0, 'no data without a token');
    await screenshot(page, 'login-375');
    // a principal without console: refused (403), the form asks again
    await page.type('#token', WRITER);
    await page.click('#login button[type="submit"]');
    await page.waitForFunction(() => /console = true/.test(document.getElementById('banner').textContent), { timeout: 10000 });
    assert.equal(await page.$eval('#login', (f) => f.hidden), false);
    assert.equal(await page.$$eval('[data-k="totals.records"]', (e) => e.length), 0, 'no data for a writer');
    // the browser's own notes on the refused requests are the only console errors
    assert.ok(page.problems.length > 0 && page.problems.every((p) => /\b(401|403)\b/.test(p)), JSON.stringify(page.problems));
    page.problems.length = 0;
    await page.type('#token', VIEWER);
    await page.click('#login button[type="submit"]');
    await page.waitForSelector('[data-k="totals.records"]', { timeout: 10000 });
    assert.equal(await page.$eval('#login', (f) => f.hidden), true);
    assert.equal(await page.$eval('#banner', (b) => b.hidden), true);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('runnel-console-token')), VIEWER);
    const shown = await page.$eval('[data-k="totals.records"]', (e) => Number(e.dataset.v));
    assert.equal(shown, (await api(server.metricsUrl, 'overview', VIEWER)).totals.records);
    assert.equal(shown, 10);
    await nextUpdate(page); // it keeps polling with the token
    await pageChecks(page, 'overview with token', 375);
    await screenshot(page, 'overview-token-375');
    // the Refused page: the 401s and 403s above, each source's count as the API has it
    await show(page, server.metricsUrl, 'refused');
    const refusals = await api(server.metricsUrl, 'refusals', VIEWER);
    const rows = await page.$$eval('tbody tr', (trs) => trs.map((tr) => ({
      id: tr.dataset.id, n: Number(tr.querySelector('[data-k="refusals.count"]').dataset.v) })));
    assert.ok(rows.some((r) => r.id === '127.0.0.1 writer' && r.n >= 1), JSON.stringify(rows));
    assert.equal(rows.length, refusals.sources.length);
    for (const r of rows) assert.equal(r.n, refusals.sources.find((x) => `${x.peer} ${x.principal}` === r.id).count);
    await pageChecks(page, 'refused', 375);
  } finally {
    if (browser) await browser.close();
    await server.kill();
  }
});
