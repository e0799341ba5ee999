// The shipped Prometheus rules and Grafana dashboard (packaging/monitoring/) against a real
// server: every metric name their expressions use is a family of its /metrics (a `# TYPE`
// line), and every label="value" matcher matches a sample that the server renders (for
// example pressure{limit="wal_min_free"}, fleet_devices{state="silent"}). Names Prometheus
// makes itself (up) are not the server's. Parsing the expressions is
// tests/monitoring/check.sh's job (ctest monitoring_rules).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Server, repoRoot, tmpDir, waitFor, zbClient } from './lib/harness.mjs';

const MON = path.join(repoRoot, 'packaging', 'monitoring');
const PROMETHEUS_OWN = new Set(['up']);

// The expressions of the rules file (expr: lines) and of the dashboard (targets[].expr).
function expressions() {
  const rules = fs.readFileSync(path.join(MON, 'runnel-server.rules.yml'), 'utf8')
    .split('\n').map((l) => l.match(/^\s*expr:\s*(.*)$/)).filter(Boolean)
    .map((m) => ({ from: 'rules', expr: m[1] }));
  const dash = JSON.parse(fs.readFileSync(path.join(MON, 'runnel-server.dashboard.json'), 'utf8'));
  const panels = dash.panels.flatMap((p) => (p.targets || []).map((t) => ({ from: `panel ${p.id} "${p.title}"`, expr: t.expr })));
  return [...rules, ...panels];
}

// [{name, matchers: [[label, value]]}] of one expression: each metric selector with its
// equality matchers (regex and negative matchers are not checked; instance and job are
// Prometheus' target labels).
function selectors(expr) {
  const out = [];
  const re = /\b([a-z_][a-z0-9_]*)\s*(\{([^}]*)\})?/g;
  const notMetric = new Set(['sum', 'max', 'min', 'avg', 'count', 'rate', 'increase', 'delta', 'by',
    'without', 'ignoring', 'on', 'and', 'or', 'unless', 'bool', 'offset', 'humanize']);
  let m;
  // ranges and strings blanked (same length, so positions stay those of expr)
  const stripped = expr.replace(/\[[^\]]*\]/g, (s) => ' '.repeat(s.length))
    .replace(/"[^"]*"/g, (s) => `"${' '.repeat(s.length - 2)}"`);
  while ((m = re.exec(stripped))) {
    const name = m[1];
    if (notMetric.has(name) || /^\d/.test(name)) continue;
    // function calls and the label names of by (...) are not metrics
    const after = stripped.slice(m.index + m[0].length);
    if (!m[2] && /^\s*\(/.test(after)) continue;
    if (/\b(by|without|ignoring|on)\s*\([^)]*$/.test(stripped.slice(0, m.index))) continue;
    const matchers = [];
    if (m[2]) {
      const open = m.index + m[0].indexOf('{');
      const body = expr.slice(open + 1, open + 1 + m[3].length);
      for (const mm of body.matchAll(/([a-z_]+)\s*=\s*"([^"]*)"/g)) {
        if (mm[1] !== 'instance' && mm[1] !== 'job') matchers.push([mm[1], mm[2]]);
      }
    }
    out.push({ name, matchers });
  }
  return out;
}

test('the alert rules and the dashboard use metrics the server exports', { timeout: 60000 }, async () => {
  const dir = tmpDir('e2e-monitoring');
  const server = await new Server({ dir, metrics: true }).start();
  try {
    // traffic, so that counters with labels have their samples
    await zbClient(server, 'ingest', '--records', '5', '--batches', '2');
    // and a commit, so that the table's time to table has its quantiles
    await waitFor(async () => /_table_time_to_table_seconds\{[^}]*quantile="0.99"\}/.test((await server.metrics()).text),
      { what: 'a time to table sample' });
    const text = (await server.metrics()).text;
    const types = new Map([...text.matchAll(/^# TYPE (\S+) (\S+)/gm)].map((m) => [m[1], m[2]]));
    // a summary's or histogram's series: its family's name with _sum, _count (or _bucket)
    const families = new Set(types.keys());
    for (const [name, type] of types) {
      if (type === 'summary' || type === 'histogram') for (const x of ['_sum', '_count']) families.add(name + x);
      if (type === 'histogram') families.add(`${name}_bucket`);
    }
    const samples = text.split('\n').filter((l) => l && !l.startsWith('#'));
    const exprs = expressions();
    assert.ok(exprs.length >= 40, `only ${exprs.length} expressions found`);
    const problems = [];
    let checked = 0;
    for (const { from, expr } of exprs) {
      const sels = selectors(expr);
      if (!sels.length) problems.push(`${from}: no metric in ${expr}`);
      for (const { name, matchers } of sels) {
        checked++;
        if (PROMETHEUS_OWN.has(name)) continue;
        if (!families.has(name)) {
          problems.push(`${from}: ${name} is not in /metrics (${expr})`);
          continue;
        }
        for (const [l, v] of matchers) {
          const has = samples.some((s) => s.startsWith(`${name}{`) && s.includes(`${l}="${v}"`));
          if (!has) problems.push(`${from}: no sample ${name}{${l}="${v}"} in /metrics`);
        }
      }
    }
    assert.deepEqual(problems, []);
    assert.ok(checked >= exprs.length);
    // the check itself can fail: a name the server does not export is caught
    assert.ok(!families.has('runnel_server_no_such_metric'));
    assert.deepEqual(selectors('rate(runnel_server_no_such_metric{state="x"}[5m]) / ignoring(state) a{state="y",job="j"}'),
      [{ name: 'runnel_server_no_such_metric', matchers: [['state', 'x']] }, { name: 'a', matchers: [['state', 'y']] }]);
  } finally {
    await server.kill();
  }
});
