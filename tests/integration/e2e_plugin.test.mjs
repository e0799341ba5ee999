// Source plugins from .so files: examples/plugin-hello, built out of the agent's tree against
// its public headers, is loaded from `plugin_dir`, its keys checked like any other (file and
// line), its records land exactly once through a SIGKILL; a copy built for another ABI is
// refused with a message that names the file and both ABI versions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Agent, Server, agentBin, buildDir, run, sleep, tmpDir, waitFor } from './lib/harness.mjs';
import { duckFrom, query, replayLog, verifyTable } from './lib/table.mjs';

const TABLE = 'main.default.hello';
const OK_DIR = path.join(buildDir, 'examples', 'plugin-hello', 'ok');
const ABI99_DIR = path.join(buildDir, 'examples', 'plugin-hello', 'abi99');

function rows(server) {
  try {
    return replayLog(server.tableDir(TABLE)).live.reduce((n, f) => n + f.numRecords, 0);
  } catch {
    return 0;
  }
}

test('hello.so is loaded from plugin_dir; its records land exactly once through a SIGKILL', { timeout: 120000 }, async () => {
  const dir = tmpDir('e2e-plugin');
  const server = await new Server({ dir, tables: [TABLE] }).start();
  const TOTAL = 1000000; // long enough that the kill lands mid-way
  const agent = new Agent({ dir, url: server.url, agentExtra: `plugin_dir = "${OK_DIR}";`,
    sources: [{ conf: `type = "hello"; name = "hi"; table = "${TABLE}"; count = ${TOTAL}; message = "hi";` }] });
  try {
    await agent.start();
    await waitFor(() => agent.proc.log.some((l) => /source type "hello" loaded/.test(l)), { what: 'plugin loaded' });
    // killed once a chunk (and so a position) is committed: the restart must resume from it
    await waitFor(() => (agent.status()?.streams?.[0]?.next_offset ?? 0) > 0, { what: 'a first chunk committed' });
    await agent.kill('SIGKILL');
    const before = rows(server);
    await agent.start();
    await waitFor(() => agent.proc.log.some((l) => /hello: hi: starting at [1-9]\d*/.test(l)),
      { what: 'resume from a saved position' });
    await waitFor(() => rows(server) >= TOTAL, { timeoutMs: 60000, what: `${TOTAL} rows` });
    await sleep(300);
    await agent.stop();
    await server.stop();
    assert.ok(before < TOTAL, 'the kill came before the end');
    const snap = await verifyTable(server.tableDir(TABLE));
    const from = duckFrom(snap.files);
    const [r] = await query(`SELECT count(*) AS n, count(DISTINCT payload) AS d,
        count(*) FILTER (WHERE payload <> 'hi ' || seq) AS wrong FROM ${from}`);
    assert.deepEqual([Number(r.n), Number(r.d), Number(r.wrong)], [TOTAL, TOTAL, 0]);
  } finally {
    await agent.kill();
    await server.kill();
  }
});

test('a plugin built for another ABI is refused; plugin keys are checked with file and line (at start: -n maps no plugin)', async () => {
  const dir = tmpDir('e2e-plugin-bad');
  const conf = path.join(dir, 'agent.conf');
  const write = (pluginDir, src) => fs.writeFileSync(conf,
    `agent: { data_dir = "${dir}"; plugin_dir = "${pluginDir}"; };\nsources = (\n  { ${src} }\n);\n`);

  write(ABI99_DIR, 'type = "hello"; name = "hi"; table = "a.b.c";');
  let r = await run(agentBin, ['-n', '-c', conf]);
  assert.equal(r.code, 0, r.stderr); // not mapped by -n, so not known to be wrong yet
  r = await run(agentBin, ['-c', conf], { timeout: 20000 });
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`${ABI99_DIR}/hello\\.so: built for source plugin ABI 99, this agent speaks ABI 1`));

  write(OK_DIR, 'type = "hello"; name = "hi"; table = "a.b.c";\n    countt = 5;');
  r = await run(agentBin, ['-c', conf], { timeout: 20000 });
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`${conf}:4: unknown key 'sources\\[0\\]\\.countt'`));

  write(OK_DIR, 'type = "hello"; name = "hi"; table = "a.b.c"; count = 5;');
  r = await run(agentBin, ['-n', '-c', conf]);
  assert.equal(r.code, 0, r.stderr);

  write(path.join(dir, 'nope'), 'type = "hello"; name = "hi"; table = "a.b.c";');
  r = await run(agentBin, ['-n', '-c', conf]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /plugin_dir .*nope: cannot read it/);
});
