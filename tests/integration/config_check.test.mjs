// `-n` checks a config and exits: 0 for a valid file; for a bad one, 1 and a message that
// names the file and the line (unknown key, wrong type, out of range, syntax error), for
// both programs, as an operator would run it before a restart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { agentBin, agentConfig, repoRoot, run, serverBin, tmpDir } from './lib/harness.mjs';

function write(dir, name, text) {
  const p = path.join(dir, name);
  fs.writeFileSync(p, text);
  return p;
}

test('runnel-agent -n: valid config passes, bad ones name file and line', async () => {
  const dir = tmpDir('conf-agent');
  const good = agentConfig({ dataDir: dir, url: 'http://127.0.0.1:1', sources: [{ name: 'a', paths: ['/tmp/x.log'] }] });
  const ok = await run(agentBin, ['-n', '-c', write(dir, 'good.conf', good)]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /configuration is valid/);

  const cases = [
    ['unknown.conf', good.replace('  device_id = "test-device";', '  device_id = "test-device";\n  devise = 1;'), /unknown\.conf:3:.*devise/],
    ['type.conf', good.replace('linger_ms = 100;', 'linger_ms = "soon";'), /type\.conf:\d+:.*linger_ms/],
    ['range.conf', good.replace('linger_ms = 100;', 'linger_ms = -5;'), /range\.conf:\d+:.*linger_ms/],
    ['syntax.conf', good.replace('sync = "normal";', 'sync = ;'), /syntax\.conf:\d+:/],
    ['plugin.conf', good.replace('read_from = "beginning";', 'read_from = "beginning";\n    pathz = [];'), /plugin\.conf:\d+:.*pathz/],
    ['url.conf', good.replace('http://127.0.0.1:1', 'ftp://127.0.0.1:1'), /url\.conf: uplink\.url 'ftp:\/\/127\.0\.0\.1:1' must start with http:\/\//],
  ];
  for (const [name, text, re] of cases) {
    const r = await run(agentBin, ['-n', '-c', write(dir, name, text)]);
    assert.equal(r.code, 1, `${name} must fail`);
    assert.match(r.stderr, re, `${name}: ${r.stderr}`);
  }
});

test('runnel-server -n: valid config passes, bad ones name file and line', async () => {
  const dir = tmpDir('conf-server');
  const good = 'listen = "127.0.0.1:0";\ndata_root = "/tmp/x";\ntables = [ "a.b.c" ];\n';
  const ok = await run(serverBin, ['-n', '-c', write(dir, 'good.conf', good)]);
  assert.equal(ok.code, 0, ok.stderr);
  const cases = [
    ['unknown.conf', `${good}flush_intervall_ms = 5;\n`, /unknown\.conf:4:.*flush_intervall_ms/],
    ['type.conf', `${good}auto_create = "yes";\n`, /type\.conf:4:.*auto_create/],
    ['range.conf', `${good}flush_interval_ms = 1;\n`, /range\.conf:4:.*flush_interval_ms/],
    // typed tables: a key error names its line; a type error names the table and the column
    ['schema_key.conf', `${good}schemas = ( { table = "a.b.t";\n columns = ( { name = "x"; typ = "int"; } ); } );\n`,
      /schema_key\.conf:5:.*typ/],
    ['schema_type.conf', `${good}schemas = ( { table = "a.b.t"; columns = ( { name = "x"; type = "array<nt>"; } ); } );\n`,
      /schema_type\.conf: schemas\[0\] \(a\.b\.t\): column 'x': unknown type/],
    ['schema_both.conf', `${good}schemas = ( { table = "a.b.c"; columns = ( { name = "x"; type = "int"; } ); } );\n`,
      /a\.b\.c is in both tables and schemas/],
  ];
  for (const [name, text, re] of cases) {
    const r = await run(serverBin, ['-n', '-c', write(dir, name, text)]);
    assert.equal(r.code, 1, `${name} must fail`);
    assert.match(r.stderr, re, `${name}: ${r.stderr}`);
  }
});

test('the shipped example configs are valid', async () => {
  const repoEtc = path.join(repoRoot, 'etc');
  const a = await run(agentBin, ['-n', '-c', path.join(repoEtc, 'runnel-agent.conf')]);
  assert.equal(a.code, 0, a.stderr);
  const s = await run(serverBin, ['-n', '-c', path.join(repoEtc, 'runnel-server.conf')]);
  assert.equal(s.code, 0, s.stderr);
});
