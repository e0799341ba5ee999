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
    // addresses are parsed and range-checked by the loader, so they name their line
    ['url.conf', good.replace('http://127.0.0.1:1', 'ftp://127.0.0.1:1'), /url\.conf:12: uplink\.url = "ftp:\/\/127\.0\.0\.1:1": the URL must start with http:\/\//],
    ['url_nohost.conf', good.replace('http://127.0.0.1:1', 'https://'), /url_nohost\.conf:12: uplink\.url = "https:\/\/": the URL has no host/],
    ['url_port.conf', good.replace('http://127.0.0.1:1', 'http://127.0.0.1:99999'), /url_port\.conf:12: uplink\.url = .*: the port must be a number from 1 to 65535/],
    ['url_port0.conf', good.replace('http://127.0.0.1:1', 'http://127.0.0.1:abc'), /url_port0\.conf:12: .*port must be a number from 1 to 65535/],
    ['url_v6.conf', good.replace('http://127.0.0.1:1', 'http://::1:7700'), /url_v6\.conf:12: .*IPv6 address goes in brackets/],
    // a token goes into a header: CR, LF and other control characters are refused
    ['token_cr.conf', good.replace('http://127.0.0.1:1";', 'http://127.0.0.1:1";\n    token = "abc\\rdef";'), /token_cr\.conf:13: uplink\.token holds a control character/],
    ['token_lf.conf', good.replace('http://127.0.0.1:1";', 'http://127.0.0.1:1";\n    token = "abc\\ndef";'), /token_lf\.conf:13: uplink\.token holds a control character/],
    ['backoff.conf', good.replace('backoff_min_ms = 50;', 'backoff_min_ms = 5000;'),
      /backoff\.conf: uplink\.backoff_min_ms \(5000\) is larger than uplink\.backoff_max_ms \(1000\)/],
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
  for (const extra of ['wal_dir = "/tmp/x/_wal";\n', 'wal_dir = "/tmp/xy/wal";\n']) {
    const r = await run(serverBin, ['-n', '-c', write(dir, 'wal_ok.conf', good + extra)]);
    assert.equal(r.code, 0, `${extra}: ${r.stderr}`);
  }
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
    // addresses: parsed and range-checked by the loader, with the line
    ['listen_abc.conf', good.replace('127.0.0.1:0', '127.0.0.1:abc'), /listen_abc\.conf:1: listen = "127\.0\.0\.1:abc": the port must be a number/],
    ['listen_range.conf', good.replace('127.0.0.1:0', ':99999'), /listen_range\.conf:1: listen = ":99999": the host is empty/],
    ['listen_range2.conf', good.replace('127.0.0.1:0', '127.0.0.1:99999'), /listen_range2\.conf:1: .*port must be a number from 0 \(any free port\) to 65535/],
    ['listen_name.conf', good.replace('127.0.0.1:0', 'localhost:7700'), /listen_name\.conf:1: .*must be an IP address/],
    ['listen_v6.conf', good.replace('127.0.0.1:0', '::1:7700'), /listen_v6\.conf:1: .*IPv6 address goes in brackets/],
    ['metrics.conf', `${good}metrics_listen = "127.0.0.1:7x";\n`, /metrics\.conf:4: metrics_listen = "127\.0\.0\.1:7x": the port must be a number/],
    ['token_cr.conf', `${good}token = "abc\\rdef";\n`, /token_cr\.conf:4: token\[0\] holds a control character/],
    ['token_list.conf', `${good}token = [ "ok", "a\\nb" ];\n`, /token_list\.conf:4: token\[1\] holds a control character/],
    // a table named "wal" would be the WAL directory
    ['wal_in_root.conf', `${good}wal_dir = "/tmp/x/wal";\n`, /wal_in_root\.conf: wal_dir "\/tmp\/x\/wal" is inside data_root/],
    ['wal_is_root.conf', `${good}wal_dir = "/tmp/y/../x/";\n`, /wal_is_root\.conf: wal_dir .* is inside data_root/],
  ];
  for (const [name, text, re] of cases) {
    const r = await run(serverBin, ['-n', '-c', write(dir, name, text)]);
    assert.equal(r.code, 1, `${name} must fail`);
    assert.match(r.stderr, re, `${name}: ${r.stderr}`);
  }
});

test('runnel-server -l is checked like listen; a valid IPv6 listen address binds', async () => {
  const dir = tmpDir('conf-listen');
  const conf = write(dir, 'ok.conf', `data_root = "${path.join(dir, 'data')}";\n`);
  const bad = await run(serverBin, ['-n', '-c', conf, '-l', '127.0.0.1:abc']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /-l 127\.0\.0\.1:abc: the port must be a number/);
  const v6 = await run(serverBin, ['-n', '-c', conf, '-l', '[::1]:0']);
  assert.equal(v6.code, 0, v6.stderr);
});

test('the shipped example configs are valid', async () => {
  const repoEtc = path.join(repoRoot, 'etc');
  const a = await run(agentBin, ['-n', '-c', path.join(repoEtc, 'runnel-agent.conf')]);
  assert.equal(a.code, 0, a.stderr);
  const s = await run(serverBin, ['-n', '-c', path.join(repoEtc, 'runnel-server.conf')]);
  assert.equal(s.code, 0, s.stderr);
});
