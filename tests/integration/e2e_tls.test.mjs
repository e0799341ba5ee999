// TLS on the server and on the agent's uplink (issue 12). Every certificate is made here with
// the openssl CLI (faketime for one that expired), into a private temp directory. The server
// serves gRPC over TLS with ALPN h2 to Debian's python3-grpcio; with tls_client_auth =
// "require" a client without a certificate, with one from another CA, or with an expired one
// fails its handshake (counted as bad_cert) while a valid one is accepted and its identity (the
// URI subjectAltName) logged; a cleartext h2c client and a client offering no h2 are refused
// (counted as cleartext and no_h2) and the server goes on serving; curl --http2 reads /metrics
// over HTTPS; SIGHUP with a new certificate keeps an open stream acking while new connections
// see the new certificate, and a bad one keeps the old; [::1] works; cleartext on a
// non-loopback address is refused by -n; the agent delivers over mTLS with a pinned key, a
// wrong pin delivers nothing and says why, and a 0644 key file is refused by -n.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Agent, Proc, Server, repoRoot, run, serverBin, serverConfig, tmpDir, waitFor } from './lib/harness.mjs';
import { duckReplay } from './lib/table.mjs';
import { makeCa, makeLeaf, ossl, serverTls } from './lib/pki.mjs';

const TABLE = 'main.default.telemetry';
const CLIENT = path.join(repoRoot, 'tests', 'integration', 'zerobus_client.py');
let pki; // file names of the certificates made in before()

const fingerprint = (dir, pem) => ossl(dir, ['x509', '-in', pem, '-noout', '-fingerprint', '-sha256']).trim().split('=')[1];
const pin = (dir, pem) => {
  const spki = execFileSync('sh', ['-c', `openssl x509 -in ${pem} -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64`], { cwd: dir, encoding: 'utf8' });
  return `sha256//${spki.trim()}`;
};

before(() => {
  const dir = tmpDir('e2e-tls-pki');
  makeCa(dir, 'ca');
  makeCa(dir, 'otherca');
  const srvSan = 'DNS:localhost,IP:127.0.0.1,IP:::1';
  makeLeaf(dir, 'server', 'ca', srvSan);
  makeLeaf(dir, 'server2', 'ca', srvSan); // the replacement for the reload test
  makeLeaf(dir, 'dev1', 'ca', 'URI:spiffe://fleet/dev1,DNS:dev1.fleet');
  makeLeaf(dir, 'stranger', 'otherca', 'URI:spiffe://fleet/stranger');
  // signed three days ago for one day: expired two days ago
  makeLeaf(dir, 'expired', 'ca', 'URI:spiffe://fleet/expired', { days: 1, faketime: '-3d' });
  const p = (f) => path.join(dir, f);
  pki = { dir, p };
});

function tlsExtra({ auth = 'none', metrics = false, extra = '' } = {}) {
  return [
    serverTls(pki.dir, { ca: auth !== 'none' ? 'ca' : undefined, auth }),
    metrics ? 'metrics_listen = "127.0.0.1:0";' : '',
    extra,
  ].join('\n');
}

// zerobus_client.py over TLS as `who` (a leaf name, or null for no client certificate).
async function tlsClient(port, who, mode, ...args) {
  const certs = who ? ['--cert', pki.p(`${who}.pem`), '--key', pki.p(`${who}.key`)] : [];
  const r = await run('/usr/bin/python3', [CLIENT, `127.0.0.1:${port}`, mode, '--ca', pki.p('ca.pem'),
    '--server-name', 'localhost', '--connect-timeout', '4', ...certs, ...args]);
  const last = r.stdout.trim().split('\n').pop();
  return { code: r.code, out: last ? JSON.parse(last) : null, stderr: r.stderr };
}

async function metrics(port, who = 'dev1') {
  const r = await run('curl', ['-sS', '--http2', '--cacert', pki.p('ca.pem'), '--cert', pki.p(`${who}.pem`),
    '--key', pki.p(`${who}.key`), '-w', '\n%{http_version}', `https://localhost:${port}/metrics`]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}
const sample = (text, name) => {
  const m = text.match(new RegExp(`^${name.replace(/[{}"]/g, (c) => `\\${c}`)} (\\S+)$`, 'm'));
  return m ? Number(m[1]) : undefined;
};

test('mTLS require: valid cert streams and is identified; none, another CA, expired, cleartext and no-h2 are refused; /metrics over HTTPS with curl --http2', { timeout: 180000 }, async () => {
  const dir = tmpDir('e2e-tls-mtls');
  const server = await new Server({ dir, tables: [TABLE], extra: tlsExtra({ auth: 'require', metrics: true }) }).start();
  try {
    assert.ok(server.proc.log.some((l) => / tls=mtls\b/.test(l)), 'start line says mTLS');
    const mport = server.metricsPort;
    const ok = await tlsClient(server.port, 'dev1', 'ingest', '--records', '5', '--batches', '2');
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(ok.out.acks, [0, 1]);
    await waitFor(() => server.proc.log.some((l) => /TLS client certificate identity spiffe:\/\/fleet\/dev1/.test(l)),
      { what: 'the identity line' });

    for (const [who, why] of [[null, 'no client certificate'], ['stranger', 'another CA'], ['expired', 'expired']]) {
      const r = await tlsClient(server.port, who, 'ingest', '--batches', '1');
      assert.equal(r.code, 3, `${why}: the handshake must fail: ${JSON.stringify(r.out)} ${r.stderr}`);
    }
    await waitFor(() => server.proc.log.some((l) => /certificate has expired/.test(l)),
      { what: 'the expired-certificate line' });

    // cleartext h2c to the TLS port: refused, one aggregated line
    const clear = await run('/usr/bin/python3', [CLIENT, `127.0.0.1:${server.port}`, 'ingest', '--batches', '1', '--connect-timeout', '3']);
    assert.equal(clear.code, 3, clear.stdout + clear.stderr);
    await waitFor(() => server.proc.log.some((l) => /TLS connection refused: TLS_HANDSHAKE cleartext/.test(l)),
      { what: 'the cleartext refusal line' });

    // a TLS client that offers no h2 (ALPN http/1.1 only)
    const noh2 = await run('openssl', ['s_client', '-connect', `127.0.0.1:${server.port}`, '-alpn', 'http/1.1',
      '-CAfile', pki.p('ca.pem'), '-cert', pki.p('dev1.pem'), '-key', pki.p('dev1.key')]);
    assert.notEqual(noh2.code, 0, 'a client without h2 fails the handshake');

    // the server still serves a good client after all that
    const again = await tlsClient(server.port, 'dev1', 'ingest', '--records', '2', '--batches', '1');
    assert.equal(again.code, 0, again.stderr);

    const text = await metrics(mport);
    // curl offered h2 and http/1.1 over ALPN; the metrics port (evhttp) takes http/1.1
    assert.match(text, /\n1\.1$/, 'HTTP/1.1 over TLS');
    assert.match(text, /^runnel_server_connections_open /m);
    const f = (r) => sample(text, `runnel_server_tls_handshake_failures_total{port="grpc",reason="${r}"}`);
    assert.ok(f('bad_cert') >= 3, `bad_cert ${f('bad_cert')}`);
    assert.ok(f('cleartext') >= 1, `cleartext ${f('cleartext')}`);
    assert.ok(f('no_h2') >= 1, `no_h2 ${f('no_h2')}`);
    const exp = sample(text, 'runnel_server_tls_cert_expiry_timestamp_seconds');
    const notAfter = Date.parse(ossl(pki.dir, ['x509', '-in', 'server.pem', '-noout', '-enddate']).trim().split('=')[1]) / 1000;
    assert.equal(exp, notAfter);
  } finally {
    await server.kill();
  }
});

test('SIGHUP with a new certificate: an open stream keeps acking, new connections get the new certificate; a bad one keeps the old', { timeout: 180000 }, async () => {
  const dir = tmpDir('e2e-tls-reload');
  // the server reads its own copies, which the test replaces
  fs.copyFileSync(pki.p('server.pem'), path.join(dir, 'cert.pem'));
  fs.copyFileSync(pki.p('server.key'), path.join(dir, 'key.pem'));
  fs.chmodSync(path.join(dir, 'key.pem'), 0o600);
  const extra = `tls_cert = "${path.join(dir, 'cert.pem')}";\ntls_key = "${path.join(dir, 'key.pem')}";\nmetrics_listen = "127.0.0.1:0";`;
  const server = await new Server({ dir, tables: [TABLE], extra }).start();
  const served = async () => {
    const r = await run('sh', ['-c', `openssl s_client -connect 127.0.0.1:${server.port} -alpn h2 -CAfile ${pki.p('ca.pem')} </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256`]);
    return r.stdout.trim().split('=')[1];
  };
  const stop = path.join(dir, 'stop');
  let steady;
  try {
    assert.equal(await served(), fingerprint(pki.dir, 'server.pem'));
    steady = new Proc('steady', '/usr/bin/python3', [CLIENT, `127.0.0.1:${server.port}`, 'steady', '--ca', pki.p('ca.pem'),
      '--server-name', 'localhost', '--stop-file', stop, '--pause-ms', '20', '--records', '1', '--batches', '100000']);
    const acks = () => steady.lines; // it prints one {"ack": N} line per ack (log keeps 400)
    await waitFor(() => acks() >= 5, { what: 'acks before the reload' });

    fs.copyFileSync(pki.p('server2.pem'), path.join(dir, 'cert.pem'));
    fs.copyFileSync(pki.p('server2.key'), path.join(dir, 'key.pem'));
    server.kill('SIGHUP');
    await waitFor(() => server.proc.log.some((l) => /TLS of listen: certificate reloaded/.test(l)), { what: 'the reload line' });
    const atReload = acks();
    await waitFor(() => acks() >= atReload + 20, { what: 'the open stream acking after the reload' });
    assert.equal(steady.exited, null, 'the open connection was not dropped');
    assert.equal(await served(), fingerprint(pki.dir, 'server2.pem'), 'a new connection sees the new certificate');

    // a key that does not match: the reload is refused as a whole (as any invalid config),
    // the certificate in use stays
    fs.copyFileSync(pki.p('server.key'), path.join(dir, 'key.pem'));
    server.kill('SIGHUP');
    await waitFor(() => server.proc.log.some((l) => /reload refused, the running config stays: .*key\.pem does not match the certificate/.test(l)),
      { what: 'the refused reload line' });
    assert.equal(await served(), fingerprint(pki.dir, 'server2.pem'));
    const text = (await run('curl', ['-sS', '--cacert', pki.p('ca.pem'), `https://localhost:${server.metricsPort}/metrics`])).stdout;
    assert.equal(sample(text, 'runnel_server_config_reloads_total{result="error"}'), 1);
    assert.equal(sample(text, 'runnel_server_tls_cert_reloads_total{result="ok"}'), 1);
    assert.equal(sample(text, 'runnel_server_tls_cert_expiry_timestamp_seconds'),
      Date.parse(ossl(pki.dir, ['x509', '-in', 'server2.pem', '-noout', '-enddate']).trim().split('=')[1]) / 1000);
    const before = acks();
    await waitFor(() => acks() >= before + 5, { what: 'the stream still acking' });
  } finally {
    fs.writeFileSync(stop, '');
    if (steady) await waitFor(() => steady.exited, { what: 'the steady client to stop' }).catch(() => steady.kill('SIGKILL'));
    await server.kill();
  }
});

test('IPv6: TLS on [::1] serves a gRPC client', { timeout: 120000 }, async (t) => {
  const has6 = await new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(0, '::1', () => s.close(() => resolve(true)));
  });
  if (!has6) {
    t.skip('this machine has no ::1 (binding [::1]:0 failed)');
    return;
  }
  const dir = tmpDir('e2e-tls-v6');
  const conf = path.join(dir, 'server.conf');
  fs.mkdirSync(path.join(dir, 'data'));
  fs.writeFileSync(conf, serverConfig({ listen: '[::1]:0', dataRoot: path.join(dir, 'data'), tables: [TABLE], extra: tlsExtra() }));
  const proc = new Proc('server6', serverBin, ['-c', conf]);
  try {
    const line = await waitFor(() => {
      if (proc.exited) throw new Error(proc.tail());
      return proc.log.find((l) => /listening on \[::1\]:\d+/.test(l));
    }, { what: 'the [::1] listening line' });
    const port = line.match(/\[::1\]:(\d+)/)[1];
    const r = await run('/usr/bin/python3', [CLIENT, `[::1]:${port}`, 'ingest', '--ca', pki.p('ca.pem'),
      '--records', '2', '--batches', '2']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout.trim().split('\n').pop()).acks, [0, 1]);
  } finally {
    await proc.stop();
  }
});

test('cleartext off loopback is refused by -n unless allow_cleartext; TLS there is fine', { timeout: 60000 }, async () => {
  const dir = tmpDir('e2e-tls-policy');
  const check = async (text) => {
    const f = path.join(dir, 'c.conf');
    fs.writeFileSync(f, `data_root = "${path.join(dir, 'data')}";\n${text}\n`);
    return run(serverBin, ['-n', '-c', f]);
  };
  let r = await check('listen = "0.0.0.0:7700";');
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /listen = "0\.0\.0\.0:7700" is not a loopback address and would serve cleartext/);
  r = await check('listen = "[::]:7700";');
  assert.notEqual(r.code, 0);
  r = await check('listen = "127.0.0.1:7700"; metrics_listen = "0.0.0.0:9100";');
  assert.match(r.stderr, /metrics_listen/);
  r = await check('listen = "0.0.0.0:7700"; allow_cleartext = true;');
  assert.equal(r.code, 0, r.stderr);
  r = await check(`listen = "0.0.0.0:7700"; tls_cert = "${pki.p('server.pem')}"; tls_key = "${pki.p('server.key')}";`);
  assert.equal(r.code, 0, r.stderr);
  // a key that does not match its certificate fails -n, naming both
  r = await check(`listen = "0.0.0.0:7700"; tls_cert = "${pki.p('server.pem')}"; tls_key = "${pki.p('dev1.key')}";`);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /does not match the certificate/);
  r = await check(`tls_cert = "${pki.p('server.pem')}"; tls_key = "${pki.p('server.key')}"; tls_client_auth = "require";`);
  assert.match(r.stderr, /needs tls_client_ca/);
});

test('the agent delivers over mTLS with a pinned key; a wrong pin delivers nothing and says why; a 0644 key is refused', { timeout: 180000 }, async () => {
  const dir = tmpDir('e2e-tls-agent');
  const server = await new Server({ dir, tables: [TABLE], extra: tlsExtra({ auth: 'require' }) }).start();
  const log = path.join(dir, 'in.log');
  fs.writeFileSync(log, Array.from({ length: 20 }, (_, i) => `line ${i}`).join('\n') + '\n');
  const uplink = (p) => `ca_file = "${pki.p('ca.pem')}"; cert_file = "${pki.p('dev1.pem')}"; key_file = "${pki.p('dev1.key')}"; pinned_key = "${p}";`;
  const url = `https://localhost:${server.port}`;
  let agent;
  try {
    // wrong pin first (another key's hash): nothing delivered, the status says why
    const bad = new Agent({ dir: path.join(dir, 'bad'), url, sources: [{ name: 'f', paths: [log] }], uplinkExtra: uplink(pin(pki.dir, 'server2.pem')) });
    fs.mkdirSync(bad.dir, { recursive: true });
    await bad.start();
    const st = await waitFor(() => {
      const s = bad.status();
      const u = s && s.streams && s.streams[0] && s.streams[0].uplink;
      return u && /pinned public key/i.test(u.last_error) ? s : null;
    }, { what: 'the pinned-key error in the status' });
    assert.equal(st.streams[0].acked, -1, JSON.stringify(st.streams[0]));
    assert.ok(!server.proc.log.some((l) => /stream .* created/.test(l)), 'no stream created with a wrong pin');
    await bad.stop();

    agent = new Agent({ dir: path.join(dir, 'good'), url, sources: [{ name: 'f', paths: [log] }], uplinkExtra: uplink(pin(pki.dir, 'server.pem')) });
    fs.mkdirSync(agent.dir, { recursive: true });
    await agent.start();
    await waitFor(async () => (await duckReplay(server.tableDir())).statsRecords === 20,
      { timeoutMs: 60000, intervalMs: 300, what: '20 rows in the table (read by DuckDB)' });
    assert.ok(server.proc.log.some((l) => /identity spiffe:\/\/fleet\/dev1/.test(l)));
    await agent.stop();

    // the same config with the key file 0644: -n refuses, naming the file
    fs.chmodSync(pki.p('dev1.key'), 0o644);
    try {
      const r = await run(path.join(path.dirname(serverBin), '..', 'agent', 'runnel-agent'), ['-n', '-c', agent.conf]);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, new RegExp(`uplink.key_file ${pki.p('dev1.key').replace(/[.]/g, '\\.')} is readable or writable by group or others \\(mode 644\\)`));
    } finally {
      fs.chmodSync(pki.p('dev1.key'), 0o600);
    }
  } finally {
    if (agent) await agent.stop();
    await server.kill();
  }
});
