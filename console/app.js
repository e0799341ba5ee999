/*
 * Runnel console: hash-routed pages over the server's /api/v1 (docs/operations.md "Web
 * console"). Everything shown comes from the API and is put on the page with DOM calls and
 * textContent only (device names and error strings come from devices: never HTML). Every
 * number shown carries data-k (its API key) and data-v (the value as the API gave it).
 * Query parameter ?poll=<ms> sets the refresh period (default 2000).
 */
'use strict';

const params = new URLSearchParams(location.search);
const POLL_MS = Math.max(100, Number(params.get('poll')) || 2000);
const STATES = ['silent', 'behind', 'dropping', 'clock', 'invalid'];
const TOKEN_KEY = 'runnel-console-token';

const view = {
  route: '', /* the page's key: overview, tables, devices, streams, refused, device:<name> */
  gen: 0, /* bumped on every page change: a late answer for an old page is dropped */
  timer: 0,
  page: null, /* {update(data)} of the page shown */
};
/* Sort and filter choices per list, kept while the console is open. */
const lists = {
  devices: { sort: 'device', order: 'asc', states: new Set(), q: '' },
  streams: { sort: 'last_batch_ms', order: 'desc', states: new Set(), q: '' },
  refusals: { sort: 'count', order: 'desc', states: new Set(), q: '' },
};

/* ---- DOM helpers: text only, never HTML ---- */

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of kids.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

/* Replaces node's children with kids (nested lists flattened; null, undefined, false left out). */
function fill(node, ...kids) {
  node.replaceChildren(...kids.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
}

const SVGNS = 'http://www.w3.org/2000/svg';
function svg(tag, attrs, ...kids) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  for (const c of kids) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

/* ---- number formats (the tests read them back: keep them exact or documented) ---- */

function isNum(v) {
  return typeof v === 'number' && Number.isFinite(v);
}
/* Integers with thousands separators; other numbers to 2 decimals. */
function fmtCount(v) {
  if (!isNum(v)) return '—';
  return Number.isInteger(v) ? v.toLocaleString('en-US') : v.toFixed(2);
}
/* Bytes: below 1 KiB exact, else 3 significant digits and a binary unit. */
function fmtBytes(v) {
  if (!isNum(v)) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  let x = v;
  while (Math.abs(x) >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return i === 0 ? v + ' B' : x.toPrecision(3) + ' ' + units[i];
}
function fmtSecs(v) {
  if (!isNum(v)) return '—';
  if (!Number.isInteger(v) && v < 120) return v.toFixed(1) + ' s';
  v = Math.round(v);
  if (v < 120) return v + ' s';
  if (v < 7200) return Math.floor(v / 60) + ' min ' + (v % 60) + ' s';
  if (v < 172800) return Math.floor(v / 3600) + ' h ' + Math.floor((v % 3600) / 60) + ' min';
  return Math.floor(v / 86400) + ' d ' + Math.floor((v % 86400) / 3600) + ' h';
}
function fmtMs(v) {
  return isNum(v) ? fmtCount(v) + ' ms' : '—';
}
/* A unix-ms time: how long before the server's now, with the UTC time in the title. */
function fmtAgo(v, now) {
  if (!isNum(v) || v <= 0) return 'never';
  const s = Math.max(0, Math.round((now - v) / 1000));
  return fmtSecs(s) + ' ago';
}
function isoTime(v) {
  if (!isNum(v) || v <= 0 || v > 8.64e15) return '';
  return new Date(v).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

/* One number on the page: data-k names its API key, data-v holds the API's value. */
function num(key, v, fmt, extra) {
  const e = el('span', Object.assign({ 'data-k': key, 'data-v': isNum(v) ? v : '' }, extra || {}));
  e.textContent = (fmt || fmtCount)(v);
  return e;
}
function when(key, v, now) {
  return num(key, v, (x) => fmtAgo(x, now), { title: isoTime(v) || null });
}
function text(v) {
  return v === null || v === undefined ? '—' : String(v);
}
function states(list) {
  if (!Array.isArray(list) || !list.length) return el('span', { class: 'ok' }, 'ok');
  return list.map((s) => el('span', { class: 'state ' + String(s).replace(/[^a-z]/g, '') }, String(s)));
}
function card(label, value) {
  return el('div', { class: 'card' }, el('div', { class: 'label' }, label),
    el('div', { class: 'value' }, value));
}

/* ---- the API ---- */

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(path) {
  const headers = { Accept: 'application/json' };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = 'Bearer ' + token;
  let res;
  try {
    res = await fetch('/api/v1/' + path, { headers, cache: 'no-store' });
  } catch (e) {
    throw new ApiError(0, 'the server cannot be reached (' + e.message + ')');
  }
  let body = null;
  try {
    body = await res.json();
  } catch (e) {
    body = null;
  }
  if (!res.ok) {
    const why = body && typeof body.message === 'string' ? body.message : res.statusText;
    throw new ApiError(res.status, 'HTTP ' + res.status + ': ' + why);
  }
  if (!body || typeof body !== 'object') throw new ApiError(res.status, 'the answer is not JSON');
  return body;
}

/* ---- charts: one SVG line per series, drawn here ---- */

/*
 * A line chart of points [{x, y}] (x ascending) with its label, the largest value and the
 * time span written on it. width/height are the viewBox; it scales to its box.
 */
function lineChart(title, points, fmt, opts) {
  const W = 600;
  const H = (opts && opts.height) || 160;
  const pad = { l: 4, r: 4, t: 24, b: 24 };
  const ys = points.map((p) => p.y).filter(isNum);
  const max = ys.length ? Math.max(...ys, 0) : 0;
  const xs = points.map((p) => p.x);
  const x0 = xs.length ? xs[0] : 0;
  const x1 = xs.length ? xs[xs.length - 1] : 1;
  const sx = (x) => pad.l + ((x - x0) / Math.max(1, x1 - x0)) * (W - pad.l - pad.r);
  const sy = (y) => H - pad.b - (max > 0 ? (y / max) * (H - pad.t - pad.b) : 0);
  const label = title + ': ' + (ys.length ? 'latest ' + fmt(ys[ys.length - 1]) + ', highest ' + fmt(max) : 'no data');
  const s = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label,
    preserveAspectRatio: 'none' });
  s.append(svg('title', {}, label));
  s.append(svg('line', { class: 'axis', x1: pad.l, y1: H - pad.b, x2: W - pad.r, y2: H - pad.b }));
  const pts = points.filter((p) => isNum(p.y)).map((p) => `${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`);
  if (pts.length) {
    const first = pts[0].split(',')[0];
    const last = pts[pts.length - 1].split(',')[0];
    s.append(svg('polygon', { class: 'area',
      points: `${first},${H - pad.b} ${pts.join(' ')} ${last},${H - pad.b}` }));
    s.append(svg('polyline', { class: 'line', points: pts.join(' ') }));
  }
  s.append(svg('text', { x: pad.l, y: 18 }, 'max ' + fmt(max)));
  const span = xs.length > 1 ? fmtSecs(Math.round((x1 - x0) / 1000)) : '';
  s.append(svg('text', { x: pad.l, y: H - 4 }, span ? '−' + span : ''));
  s.append(svg('text', { x: W - pad.r, y: H - 4, 'text-anchor': 'end' }, 'now'));
  return el('figure', { class: 'chart' }, el('h3', {}, title), s);
}

/* ---- pages ---- */

function errorTable(errors) {
  if (!Array.isArray(errors) || !errors.length) return el('p', { class: 'muted' }, 'No warnings or errors logged.');
  const rows = errors.slice().reverse().map((e) =>
    el('tr', {}, el('td', { class: 'time' }, isoTime(e.t_ms) || '—'),
      el('td', { class: 'lvl-' + (e.level === 'error' ? 'error' : 'warn') }, text(e.level)),
      el('td', { class: 'text' }, text(e.text))));
  return el('div', { class: 'scroll' }, el('table', {},
    el('caption', { class: 'muted' }, 'Latest warnings and errors, newest first'),
    el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Time'), el('th', { scope: 'col' }, 'Level'),
      el('th', { scope: 'col' }, 'Message'))),
    el('tbody', {}, rows)));
}

function overviewPage(main) {
  main.append(el('h1', {}, 'Overview'));
  const body = el('div', {});
  main.append(body);
  return {
    path: 'overview',
    update(d) {
      const t = d.totals || {};
      const hist = Array.isArray(d.history) ? d.history : [];
      const health = text(d.health);
      fill(body,
        el('div', { class: 'cards' },
          card('Health', el('span', { 'data-k': 'health', class: health === 'ok' ? 'ok' : 'bad' }, health)),
          card('Pressure', el('span', { 'data-k': 'pressure' }, text(d.pressure))),
          card('WAL', num('wal_bytes', d.wal_bytes, fmtBytes)),
          card('Materializer lag', num('mat_lag_s', d.mat_lag_s, fmtSecs)),
          card('Records', num('totals.records', t.records)),
          card('Bytes', num('totals.bytes', t.bytes, fmtBytes)),
          card('Batches', num('totals.batches', t.batches)),
          card('Streams open', num('totals.streams_open', t.streams_open)),
          card('Connections', num('totals.connections', t.connections)),
          card('Calls refused', num('totals.calls_refused', t.calls_refused)),
          card('Flush errors', num('totals.flush_errors', t.flush_errors)),
          card('Dead letters', num('totals.dead_letters', t.dead_letters)),
          card('Uptime', num('uptime_s', d.uptime_s, fmtSecs)),
          card('Version', el('span', { 'data-k': 'version' }, text(d.version)))),
        el('h2', {}, 'Ingest, last hour'),
        el('div', { class: 'charts' },
          lineChart('Records per second', hist.map((h) => ({ x: h.t_ms, y: isNum(h.records) ? h.records / 10 : null })),
            (v) => fmtCount(Math.round(v * 10) / 10) + '/s'),
          lineChart('Bytes per second', hist.map((h) => ({ x: h.t_ms, y: isNum(h.bytes) ? h.bytes / 10 : null })),
            (v) => fmtBytes(Math.round(v)) + '/s')),
        el('h2', {}, 'Errors'),
        errorTable(d.errors));
    },
  };
}

function tablesPage(main) {
  const opened = new Set(); /* tables whose dead letters are shown */
  main.append(el('h1', {}, 'Tables'));
  const body = el('div', {});
  main.append(body);
  return {
    path: 'tables',
    update(d) {
      const now = d.now_ms;
      const tables = Array.isArray(d.tables) ? d.tables : [];
      if (!tables.length) {
        fill(body, el('p', { class: 'muted' }, 'No tables yet.'));
        return;
      }
      const head = ['Table', 'Version', 'Rows', 'Files', 'Size', 'Partitions', 'Last commit',
        'Time to table (p50)', 'Dead letters'];
      const rows = tables.map((t) => {
        const dl = t.dead_letters || {};
        const dead = num('tables.dead_letters.rows', dl.rows);
        return el('tr', { 'data-id': text(t.name) },
          el('th', { scope: 'row', class: 'text' }, text(t.name)),
          el('td', { class: 'n' }, num('tables.version', t.version)),
          el('td', { class: 'n' }, num('tables.rows', t.rows)),
          el('td', { class: 'n' }, num('tables.files', t.files)),
          el('td', { class: 'n' }, num('tables.bytes', t.bytes, fmtBytes)),
          el('td', { class: 'n' }, num('tables.partitions', t.partitions)),
          el('td', { class: 'n' }, when('tables.last_commit_ms', t.last_commit_ms, now)),
          el('td', { class: 'n' }, num('tables.time_to_table_p50_ms', t.time_to_table_p50_ms, fmtMs)),
          el('td', { class: 'n' }, dead));
      });
      /* the latest dead letters of each table that has some, below the list */
      const dead = tables.filter((t) => t.dead_letters && Array.isArray(t.dead_letters.latest) && t.dead_letters.latest.length)
        .map((t) => {
          const d = el('details', { class: 'card dead', open: opened.has(t.name) },
            el('summary', {}, text(t.name), ': latest dead letters in ', el('code', {}, text(t.dead_letters.table))),
            t.dead_letters.latest.map((x) => el('div', {},
              el('div', {}, el('span', { class: 'muted' }, isoTime(x.t_ms) + ' '), el('span', { class: 'bad' }, text(x.reason))),
              el('pre', { class: 'sample' }, text(x.sample)))));
          /* kept open (or closed) across refreshes */
          d.addEventListener('toggle', () => (d.open ? opened.add(t.name) : opened.delete(t.name)));
          return d;
        });
      fill(body, el('div', { class: 'scroll' }, el('table', {},
        el('thead', {}, el('tr', {}, head.map((h, i) => el('th', { scope: 'col', class: i ? 'n' : null }, h)))),
        el('tbody', {}, rows))),
      dead.length ? el('h2', {}, 'Dead letters') : null, dead);
    },
  };
}

/*
 * A sortable, filterable list (devices, streams, refusals): state chips (unless noStates) and
 * a text filter above a table whose column headers are sort buttons. cols: [{key, label,
 * cell(row, now), n}].
 */
function listPage(main, kind, title, cols, idOf, searchOf, noStates) {
  const L = lists[kind];
  main.append(el('h1', {}, title));
  const chips = STATES.map((st) => {
    const b = el('button', { type: 'button', class: 'chip', 'aria-pressed': L.states.has(st) ? 'true' : 'false',
      'data-state': st }, st);
    b.addEventListener('click', () => {
      if (L.states.has(st)) L.states.delete(st);
      else L.states.add(st);
      b.setAttribute('aria-pressed', L.states.has(st) ? 'true' : 'false');
      draw();
    });
    return b;
  });
  const input = el('input', { id: 'filter', type: 'search', value: L.q, placeholder: 'name, table, principal…' });
  input.addEventListener('input', () => {
    L.q = input.value;
    draw();
  });
  const count = el('p', { class: 'muted', 'aria-live': 'polite' });
  main.append(noStates ? '' : el('div', { class: 'controls', role: 'group', 'aria-label': 'Filter by state' }, chips),
    el('div', { class: 'controls' }, el('label', { for: 'filter' }, 'Filter'), input), count);
  const box = el('div', { class: 'scroll' });
  main.append(box);
  let data = null;

  function value(r, key) {
    const v = key.split('.').reduce((o, k) => (o && typeof o === 'object' ? o[k] : undefined), r);
    return Array.isArray(v) ? v.join(',') : v;
  }
  function cmp(a, b) {
    const va = value(a, L.sort);
    const vb = value(b, L.sort);
    const na = va === null || va === undefined;
    const nb = vb === null || vb === undefined;
    if (na || nb) return na && nb ? 0 : na ? 1 : -1; /* unknown last either way */
    const r = isNum(va) && isNum(vb) ? va - vb : String(va).localeCompare(String(vb));
    return L.order === 'asc' ? r : -r;
  }
  function draw() {
    if (!data) return;
    const items = Array.isArray(data[kind]) ? data[kind] : [];
    const q = L.q.trim().toLowerCase();
    const shown = items.filter((r) => {
      const st = Array.isArray(r.states) ? r.states : [];
      for (const s of L.states) if (!st.includes(s)) return false;
      return !q || searchOf(r).some((s) => typeof s === 'string' && s.toLowerCase().includes(q));
    }).sort(cmp);
    fill(count, num(kind + '.shown', shown.length), ' shown of ', num('total', data.total), ' ' + kind);
    const head = el('tr', {}, cols.map((c) => {
      const sorted = L.sort === c.key;
      const b = el('button', { type: 'button', 'data-sort': c.key }, c.label);
      b.addEventListener('click', () => {
        if (L.sort === c.key) L.order = L.order === 'asc' ? 'desc' : 'asc';
        else {
          L.sort = c.key;
          L.order = c.n ? 'desc' : 'asc';
        }
        draw();
        const again = box.querySelector(`button[data-sort="${c.key}"]`);
        if (again) again.focus();
      });
      return el('th', { scope: 'col', class: c.n ? 'n' : null,
        'aria-sort': sorted ? (L.order === 'asc' ? 'ascending' : 'descending') : 'none' }, b);
    }));
    const rows = shown.map((r) => el('tr', { 'data-id': text(idOf(r)) },
      cols.map((c, i) => el(i ? 'td' : 'th', { scope: i ? null : 'row', class: c.n ? 'n' : 'text' }, c.cell(r, data.now_ms)))));
    fill(box, el('table', {}, el('thead', {}, head), el('tbody', {}, rows)));
  }
  return {
    path: kind + '?limit=10000',
    update(d) {
      data = d;
      draw();
    },
  };
}

function deviceLink(name) {
  if (typeof name !== 'string') return el('span', { class: 'muted' }, '—');
  return el('a', { href: '#/device/' + encodeURIComponent(name) }, name);
}

function devicesPage(main) {
  const cols = [
    { key: 'device', label: 'Device', cell: (r) => deviceLink(r.device) },
    { key: 'states', label: 'State', cell: (r) => states(r.states) },
    { key: 'last_seen_ms', label: 'Last seen', n: 1, cell: (r, now) => when('devices.last_seen_ms', r.last_seen_ms, now) },
    { key: 'version', label: 'Version', cell: (r) => text(r.version) },
    { key: 'buffer_bytes', label: 'Buffer', n: 1, cell: (r) => num('devices.buffer_bytes', r.buffer_bytes, fmtBytes) },
    { key: 'buffer_records', label: 'Buffered records', n: 1, cell: (r) => num('devices.buffer_records', r.buffer_records) },
    { key: 'oldest_unsent_age_s', label: 'Oldest unsent', n: 1, cell: (r) => num('devices.oldest_unsent_age_s', r.oldest_unsent_age_s, fmtSecs) },
    { key: 'drops', label: 'Drops', n: 1, cell: (r) => num('devices.drops', r.drops) },
    { key: 'expired', label: 'Expired', n: 1, cell: (r) => num('devices.expired', r.expired) },
    { key: 'dead_letters', label: 'Dead letters', n: 1, cell: (r) => num('devices.dead_letters', r.dead_letters) },
    { key: 'streams', label: 'Streams', n: 1, cell: (r) => num('devices.streams', Array.isArray(r.streams) ? r.streams.length : null) },
  ];
  return listPage(main, 'devices', 'Devices', cols, (r) => r.device,
    (r) => [r.device, r.version].concat(Array.isArray(r.streams) ? r.streams : []));
}

function streamCols(withDevice) {
  const cols = [
    { key: 'stream_id', label: 'Stream', cell: (r) => el('code', {}, text(r.stream_id)) },
    { key: 'table', label: 'Table', cell: (r) => text(r.table) },
  ];
  if (withDevice) cols.push({ key: 'device', label: 'Device', cell: (r) => deviceLink(r.device) });
  return cols.concat([
    { key: 'states', label: 'State', cell: (r) => states(r.states) },
    { key: 'connected', label: 'Connected', cell: (r) => (r.connected ? 'yes' : 'no') },
    { key: 'principal', label: 'Principal', cell: (r) => text(r.principal) },
    { key: 'kind', label: 'Kind', cell: (r) => text(r.kind) },
    { key: 'last_batch_ms', label: 'Last batch', n: 1, cell: (r, now) => when('streams.last_batch_ms', r.last_batch_ms, now) },
    { key: 'last_report_ms', label: 'Last report', n: 1, cell: (r, now) => when('streams.last_report_ms', r.last_report_ms, now) },
    { key: 'records', label: 'Records', n: 1, cell: (r) => num('streams.records', r.records) },
    { key: 'bytes', label: 'Bytes', n: 1, cell: (r) => num('streams.bytes', r.bytes, fmtBytes) },
    { key: 'batches', label: 'Batches', n: 1, cell: (r) => num('streams.batches', r.batches) },
    { key: 'acked_offset', label: 'Acked', n: 1, cell: (r) => num('streams.acked_offset', r.acked_offset) },
    { key: 'committed_offset', label: 'Committed', n: 1, cell: (r) => num('streams.committed_offset', r.committed_offset) },
    { key: 'pushbacks', label: 'Pushbacks', n: 1, cell: (r) => num('streams.pushbacks', r.pushbacks) },
    { key: 'clock_corrections', label: 'Clock fixes', n: 1, cell: (r) => num('streams.clock_corrections', r.clock_corrections) },
    { key: 'refused_calls', label: 'Refused', n: 1, cell: (r) => num('streams.refused_calls', r.refused_calls) },
  ]);
}

function streamsPage(main) {
  return listPage(main, 'streams', 'Streams', streamCols(true), (r) => r.stream_id,
    (r) => [r.stream_id, r.device, r.table, r.principal]);
}

/* Who is refused: one row per (address, principal) from /api/v1/refusals. */
function refusalsPage(main) {
  const kindsText = (k) => (k && typeof k === 'object' ? Object.keys(k).map((n) => n + ' ' + k[n]).join(', ') : '');
  const cols = [
    { key: 'peer', label: 'Address', cell: (r) => text(r.peer) },
    { key: 'principal', label: 'Principal', cell: (r) => (r.principal ? r.principal : el('span', { class: 'muted' }, 'unknown')) },
    { key: 'count', label: 'Refused', n: 1, cell: (r) => num('refusals.count', r.count) },
    { key: 'kinds_text', label: 'Kinds', cell: (r) => (r.kinds && typeof r.kinds === 'object'
      ? Object.keys(r.kinds).map((n) => el('span', { class: 'state' }, n + ' ', num('refusals.kinds.' + n, r.kinds[n])))
      : '—') },
    { key: 'table', label: 'Table', cell: (r) => text(r.table) },
    { key: 'last_reason', label: 'Last reason', cell: (r) => text(r.last_reason) },
    { key: 'last_ms', label: 'Last refused', n: 1, cell: (r, now) => when('refusals.last_ms', r.last_ms, now) },
    { key: 'first_ms', label: 'First refused', n: 1, cell: (r, now) => when('refusals.first_ms', r.first_ms, now) },
  ];
  const page = listPage(main, 'refusals', 'Refused', cols, (r) => r.peer + ' ' + r.principal,
    (r) => [r.peer, r.principal, r.table, r.last_reason, r.kinds_text], true);
  const note = el('p', { class: 'muted' });
  main.append(note);
  return {
    path: page.path,
    update(d) {
      const rows = Array.isArray(d.sources) ? d.sources : [];
      page.update(Object.assign({}, d, { refusals: rows.map((r) => Object.assign({}, r, { kinds_text: kindsText(r.kinds) })) }));
      fill(note, 'Calls and requests refused for the client\'s fault: ', num('refused', d.refused), ' in all, ',
        num('last_hour', d.last_hour), ' in the last hour; ', num('evicted_calls', d.evicted_calls),
        ' of sources no longer listed (', num('evicted', d.evicted), ' evicted, at most ',
        num('max_sources', d.max_sources), ' kept).');
    },
  };
}

function simpleTable(caption, head, rows) {
  return el('div', { class: 'scroll' }, el('table', {},
    el('caption', { class: 'muted' }, caption),
    el('thead', {}, el('tr', {}, head.map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, rows)));
}

function devicePage(main, name) {
  main.append(el('p', {}, el('a', { href: '#/devices' }, '← Devices')));
  main.append(el('h1', {}, 'Device ', el('span', { 'data-k': 'device' }, name)));
  const body = el('div', {});
  main.append(body);
  return {
    path: 'devices/' + encodeURIComponent(name),
    update(d) {
      const r = d.report && typeof d.report === 'object' ? d.report : {};
      const buf = r.buffer && typeof r.buffer === 'object' ? r.buffer : {};
      const clock = r.clock && typeof r.clock === 'object' ? r.clock : {};
      const drops = r.drops && typeof r.drops === 'object' ? r.drops : {};
      const sources = Array.isArray(r.sources) ? r.sources : [];
      const invalid = Array.isArray(d.invalid) ? d.invalid : [];
      const hist = Array.isArray(d.history) ? d.history : [];
      const streams = Array.isArray(d.streams) ? d.streams : [];
      const now = Date.now(); /* this answer has no now_ms: the browser's clock */
      const allStates = [...new Set(streams.flatMap((s) => (Array.isArray(s.states) ? s.states : [])))];
      fill(body,
        el('p', {}, 'State: ', states(allStates)),
        invalid.length ? el('div', { class: 'card' }, el('div', { class: 'label bad' }, 'Invalid fields in the newest report'),
          el('ul', {}, invalid.map((x) => el('li', { 'data-k': 'invalid' }, text(x))))) : null,
        el('h2', {}, 'Newest report'),
        el('div', { class: 'cards' },
          card('Agent version', el('span', { 'data-k': 'report.version' }, text(r.version))),
          card('Uptime', num('report.uptime_s', r.uptime_s, fmtSecs)),
          card('Buffer', num('report.buffer.bytes', buf.bytes, fmtBytes)),
          card('Buffer records', num('report.buffer.records', buf.records)),
          card('Buffer max', num('report.buffer.max_bytes', buf.max_bytes, fmtBytes)),
          card('Oldest unsent', num('report.buffer.oldest_unsent_age_s', buf.oldest_unsent_age_s, fmtSecs)),
          card('Expired', num('report.expired', r.expired)),
          card('Dead letters', num('report.dead_letters', r.dead_letters)),
          card('Clock', el('span', { 'data-k': 'report.clock.synced', class: clock.synced === false ? 'bad' : null },
            clock.synced === true ? 'synced' : clock.synced === false ? 'not synced' : '—')),
          card('Clock offset', num('report.clock.offset_ms', clock.offset_ms, fmtMs)),
          card('Sent at', el('span', {}, isoTime(r.sent_at_ms) || '—')),
          card('Config', el('code', { 'data-k': 'report.config_sha256' }, text(r.config_sha256).slice(0, 12)))),
        el('h2', {}, 'Sources'),
        sources.length ? simpleTable('Sources as the agent reports them', ['Name', 'Type', 'State', 'Error', 'Records'],
          sources.map((s) => el('tr', { 'data-id': text(s && s.name) },
            el('th', { scope: 'row', class: 'text' }, text(s && s.name)),
            el('td', {}, text(s && s.type)),
            el('td', { class: s && s.state === 'up' ? 'ok' : 'bad' }, text(s && s.state)),
            el('td', { class: 'text' }, text(s && s.error)),
            el('td', { class: 'n' }, num('report.sources.records', s && s.records)))))
          : el('p', { class: 'muted' }, 'No sources reported.'),
        el('h2', {}, 'Drops'),
        Object.keys(drops).length ? simpleTable('Records dropped since the agent started, by reason', ['Reason', 'Records'],
          Object.entries(drops).map(([k, v]) => el('tr', { 'data-id': k }, el('th', { scope: 'row', class: 'text' }, k),
            el('td', { class: 'n' }, num('report.drops.' + k, v)))))
          : el('p', { class: 'muted' }, 'No drops reported.'),
        el('h2', {}, 'History'),
        el('div', { class: 'charts' },
          lineChart('Buffer bytes', hist.map((h) => ({ x: h.t_ms, y: h.buffer_bytes })), fmtBytes, { height: 140 }),
          lineChart('Oldest unsent age', hist.map((h) => ({ x: h.t_ms, y: h.oldest_unsent_age_s })), fmtSecs, { height: 140 }),
          lineChart('Records received', hist.map((h) => ({ x: h.t_ms, y: h.records })), fmtCount, { height: 140 }),
          lineChart('Drops and expired', hist.map((h) => ({ x: h.t_ms, y: isNum(h.drops) || isNum(h.expired) ? (h.drops || 0) + (h.expired || 0) : null })), fmtCount, { height: 140 })),
        el('h2', {}, 'Streams'),
        simpleTable('This device\'s streams', streamCols(false).map((c) => c.label),
          streams.map((s) => el('tr', { 'data-id': text(s.stream_id) },
            streamCols(false).map((c) => el('td', { class: c.n ? 'n' : 'text' }, c.cell(s, now)))))));
    },
  };
}

/* ---- routing, polling, the banner and the token ---- */

function routeOf(hash) {
  const h = hash.replace(/^#\/?/, '');
  if (h.startsWith('device/')) {
    let name = h.slice('device/'.length);
    try {
      name = decodeURIComponent(name);
    } catch (e) {
      /* shown as typed */
    }
    return { key: 'device:' + name, nav: 'devices', make: (m) => devicePage(m, name) };
  }
  if (h === 'tables') return { key: 'tables', nav: 'tables', make: tablesPage };
  if (h === 'devices') return { key: 'devices', nav: 'devices', make: devicesPage };
  if (h === 'streams') return { key: 'streams', nav: 'streams', make: streamsPage };
  if (h === 'refused') return { key: 'refused', nav: 'refused', make: refusalsPage };
  return { key: 'overview', nav: 'overview', make: overviewPage };
}

function banner(msg) {
  const b = document.getElementById('banner');
  b.textContent = msg || '';
  b.hidden = !msg;
}

function showLogin(show) {
  const f = document.getElementById('login');
  f.hidden = !show;
  if (show) document.getElementById('token').focus();
}

async function tick() {
  const gen = view.gen;
  clearTimeout(view.timer);
  try {
    const d = await api(view.page.path);
    if (gen !== view.gen) return;
    view.page.update(d);
    showLogin(false);
    banner('');
    document.getElementById('updated').textContent = 'updated ' + new Date().toLocaleTimeString('en-GB');
    document.getElementById('updated').setAttribute('data-updated', String(Date.now()));
    document.getElementById('updated').setAttribute('data-route', view.route);
  } catch (e) {
    if (gen !== view.gen) return;
    if (e.status === 401 || e.status === 403) {
      banner(e.status === 401 ? 'The console needs a token (' + e.message + ').'
        : 'This token may not read the console: its principal needs console = true (' + e.message + ').');
      showLogin(true);
      return; /* no more polling until a token is given */
    } else if (e.status === 404 && view.route.startsWith('device:')) {
      banner('No such device (' + e.message + ').');
    } else {
      banner('The API failed: ' + e.message);
    }
  }
  if (gen === view.gen) view.timer = setTimeout(tick, POLL_MS);
}

function navigate() {
  const r = routeOf(location.hash);
  view.gen++;
  view.route = r.key;
  const main = document.getElementById('main');
  main.replaceChildren();
  view.page = r.make(main);
  for (const a of document.querySelectorAll('nav a')) {
    if (a.getAttribute('data-nav') === r.nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  tick();
}

document.getElementById('login').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const input = document.getElementById('token');
  sessionStorage.setItem(TOKEN_KEY, input.value.trim());
  input.value = '';
  showLogin(false);
  banner('');
  tick();
});
window.addEventListener('hashchange', navigate);
navigate();
