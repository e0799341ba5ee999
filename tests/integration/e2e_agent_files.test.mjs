// Files the agent trusts: secret files (uplink.client_secret_file, uplink.token_file) that
// the group or others may read, or that are not regular files, are refused by -n and at
// start with the file and its mode named; plugins (plugin_dir) that are group- or
// world-writable, owned by another user, or symbolic links are refused before anything is
// mapped; and -n maps no plugin at all (a constructor that leaves a marker never runs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { agentBin, buildDir, run, tmpDir } from './lib/harness.mjs';

const HELLO = path.join(buildDir, 'examples', 'plugin-hello');

function conf(dir, { uplink = '', agent = '', source = 'type = "file"; name = "f"; table = "a.b.c"; paths = ["/dev/null"];' } = {}) {
  const f = path.join(dir, 'agent.conf');
  fs.writeFileSync(f, `agent: { data_dir = "${dir}/data"; ${agent} };
uplink: { url = "http://127.0.0.1:1"; ${uplink} };
sources = ( { ${source} } );
`);
  return f;
}

// -n, then a real start (which must refuse before running anything): both exit 1 with `re`.
async function refused(f, re) {
  for (const args of [['-n', '-c', f], ['-c', f]]) {
    const r = await run(agentBin, args, { timeout: 20000 });
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, re);
  }
}

test('secret files readable by others, or not regular files, are refused naming file and mode', async () => {
  const dir = tmpDir('e2e-secret');
  const secret = path.join(dir, 'client.secret');
  fs.writeFileSync(secret, 'S3cret\n');
  const oauth = `client_id = "dev"; client_secret_file = "${secret}";`;
  for (const mode of [0o640, 0o644, 0o604]) {
    fs.chmodSync(secret, mode);
    await refused(conf(dir, { uplink: oauth }),
      new RegExp(`uplink\\.client_secret_file ${secret}: mode 0${mode.toString(8)} is too open`));
  }
  fs.chmodSync(secret, 0o600);
  let r = await run(agentBin, ['-n', '-c', conf(dir, { uplink: oauth })]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(!`${r.stdout}${r.stderr}`.includes('S3cret'));

  const tok = path.join(dir, 'token');
  fs.writeFileSync(tok, 'tok\n', { mode: 0o644 });
  fs.chmodSync(tok, 0o644);
  await refused(conf(dir, { uplink: `token_file = "${tok}";` }), new RegExp(`uplink\\.token_file ${tok}: mode 0644 is too open`));
  await refused(conf(dir, { uplink: `token_file = "${dir}";` }), new RegExp(`uplink\\.token_file ${dir}: not a regular file`));
  fs.chmodSync(tok, 0o400);
  r = await run(agentBin, ['-n', '-c', conf(dir, { uplink: `token_file = "${tok}";` })]);
  assert.equal(r.code, 0, r.stderr);
  await refused(conf(dir, { uplink: `token_file = "${tok}"; token = "x";` }), /uplink\.token and uplink\.token_file: give one/);
  await refused(conf(dir, { uplink: `client_id = "a:b"; client_secret_file = "${secret}";` }), /client_id must be non-empty and without ':'/);
});

// A private copy of ctor/hello.so in a directory of the given mode.
function pluginDir(root, name, dirMode = 0o755, fileMode = 0o755) {
  const d = path.join(root, name);
  fs.mkdirSync(d);
  fs.copyFileSync(path.join(HELLO, 'ctor', 'hello.so'), path.join(d, 'hello.so'));
  fs.chmodSync(path.join(d, 'hello.so'), fileMode);
  fs.chmodSync(d, dirMode);
  return d;
}

test('-n maps no plugin: a constructor never runs, and keys of plugin types wait for the start', async () => {
  const dir = tmpDir('e2e-plugin-n');
  fs.chmodSync(dir, 0o755);
  const d = pluginDir(dir, 'ok');
  const marker = path.join(dir, 'ctor-ran');
  const env = { ...process.env, HELLO_CTOR_MARKER: marker };
  const f = conf(dir, { agent: `plugin_dir = "${d}";`, source: 'type = "hello"; name = "hi"; table = "a.b.c"; countt = 5;' });
  let r = await run(agentBin, ['-n', '-c', f], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /type "hello" is not built in; -n loads no plugin from plugin_dir/);
  assert.equal(fs.existsSync(marker), false, 'the constructor ran under -n');
  // a start maps it (the constructor runs: the test can fail), then checks its keys
  r = await run(agentBin, ['-c', f], { env, timeout: 20000 });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /unknown key 'sources\[0\]\.countt'/);
  assert.equal(fs.existsSync(marker), true, 'a start maps the plugin');
});

test('plugins that others may write, owned by another user, or linked, are refused before they are mapped', async () => {
  const dir = tmpDir('e2e-plugin-perm');
  fs.chmodSync(dir, 0o755);
  const marker = path.join(dir, 'ctor-ran');
  const env = { ...process.env, HELLO_CTOR_MARKER: marker };
  const src = 'type = "hello"; name = "hi"; table = "a.b.c";';
  const check = async (d, re) => {
    const f = conf(dir, { agent: `plugin_dir = "${d}";`, source: src });
    for (const args of [['-n', '-c', f], ['-c', f]]) {
      const r = await run(agentBin, args, { env, timeout: 20000 });
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
    }
    assert.equal(fs.existsSync(marker), false, 'a refused plugin was mapped');
  };
  let d = pluginDir(dir, 'wdir', 0o777);
  await check(d, new RegExp(`plugin_dir ${d} is world-writable \\(mode 0777\\): refused`));
  d = pluginDir(dir, 'gdir', 0o775);
  await check(d, new RegExp(`plugin_dir ${d} is group-writable \\(mode 0775\\): refused`));
  d = pluginDir(dir, 'gfile', 0o755, 0o775);
  await check(d, new RegExp(`plugin ${d}/hello\\.so is group-writable \\(mode 0775\\): refused`));
  d = pluginDir(dir, 'wfile', 0o755, 0o757);
  await check(d, new RegExp(`plugin ${d}/hello\\.so is world-writable`));
  d = path.join(dir, 'link');
  fs.mkdirSync(d);
  fs.symlinkSync(path.join(HELLO, 'ctor', 'hello.so'), path.join(d, 'hello.so'));
  await check(d, new RegExp(`plugin ${d}/hello\\.so: is a symbolic link: refused`));
  if (process.getuid() === 0) { // only root can give a file to another user
    d = pluginDir(dir, 'owner');
    fs.chownSync(path.join(d, 'hello.so'), 65534, 65534);
    await check(d, new RegExp(`plugin ${d}/hello\\.so is owned by uid 65534, not by root or the agent's user \\(uid 0\\): refused`));
    d = pluginDir(dir, 'downer');
    fs.chownSync(d, 65534, 65534);
    await check(d, new RegExp(`plugin_dir ${d} is owned by uid 65534`));
  }
});
