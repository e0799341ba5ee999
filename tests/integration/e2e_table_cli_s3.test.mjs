// `runnel-table` on an s3:// table in a throw-away Ceph RGW (lib/rgw.mjs): a table the real
// server wrote locally is put on the store object by object (tstore_probe upload, the log
// last), then describe, history and verify on the s3:// root agree with the same commands on
// the local copy; verify finds a missing data file and a size mismatch on the store; compact
// rewrites the small files on the store; vacuum deletes the removed inputs and a data file no
// log entry names (only with an explicit short --retention, with a warning; the default keeps
// a young one), never a referenced file or a hidden one; the table copied out with boto3 reads
// back whole with DuckDB. Store settings from options and from the environment
// (RUNNEL_S3_ENDPOINT, AWS_* keys or a shared credentials file with a profile); no output ever
// holds the secret key. ctest label `s3`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Server, buildDir, run, tableBin, tmpDir, waitFor } from './lib/harness.mjs';
import { rgwForFile } from './lib/rgw.mjs';
import { duckFrom, query, replayLog, verifyTable } from './lib/table.mjs';

const PY = '/usr/bin/python3';
const CLIENT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'zerobus_client.py');
const probeBin = path.join(buildDir, 'server', 'store', 'tstore_probe');
const TABLE = 'main.default.telemetry';
const BUCKET = 'tables';
const ROWS = 120;
let rgw;

const { check } = rgwForFile([BUCKET], (r) => {
  rgw = r;
});

// Every output of the CLI, checked at the end: the secret key is never in one.
const outputs = [];

// The CLI with only what a user's shell would have: the keys in AWS_*, no endpoint unless
// given (an option or RUNNEL_S3_ENDPOINT).
async function table(args, env = {}) {
  const r = await run(tableBin, args, {
    env: {
      PATH: process.env.PATH, AWS_ACCESS_KEY_ID: rgw.accessKey,
      AWS_SECRET_ACCESS_KEY: rgw.secretKey, AWS_REGION: rgw.region, ...env,
    },
  });
  outputs.push(r.stdout + r.stderr);
  return r;
}

async function tableJson(args, env) {
  const r = await table([...args, '--json'], env);
  try {
    return { code: r.code, stderr: r.stderr, json: JSON.parse(r.stdout) };
  } catch (e) {
    throw new Error(`table ${args.join(' ')}: not JSON (${e.message}): ${r.stdout}\n${r.stderr}`);
  }
}

async function probe(root, ...args) {
  const r = await run(probeBin, [rgw.endpoint, root, ...args.map(String)], {
    env: { PATH: process.env.PATH, ...rgw.awsEnv(), AWS_ENDPOINT_URL: '' },
  });
  assert.equal(r.code, 0, `tstore_probe ${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
  return JSON.parse(r.stdout.trim());
}

test('describe, history, verify, compact and vacuum on an s3:// table', { timeout: 300000 }, check(async () => {
  // a table the server writes locally, in several small files
  const dir = tmpDir('e2e-table-cli-s3');
  const server = await new Server({ dir, tables: [TABLE], flushMs: 30 }).start();
  try {
    // four streams of 30 rows, each in the table before the next starts: at least four data
    // files of about one size (compaction leaves out a file larger than the others together)
    const rows = () => replayLog(server.tableDir(TABLE)).live.reduce((n, f) => n + f.numRecords, 0);
    for (let i = 1; i <= 4; i++) {
      const r = await run(PY, [CLIENT, `127.0.0.1:${server.port}`, 'ingest', '--records', '10',
        '--batches', '3']);
      assert.equal(r.code, 0, r.stderr);
      await waitFor(() => rows() >= 30 * i, { timeoutMs: 20000, what: `${30 * i} rows` });
    }
  } finally {
    await server.stop();
  }
  const local = server.tableDir(TABLE);
  const nlocal = replayLog(local).live.length;
  assert.ok(nlocal >= 4, `${nlocal} data files`);

  const prefix = `run-${process.pid}`;
  const root = `s3://${BUCKET}/${prefix}/main/default/telemetry`;
  const up = await probe(root, 'upload', local);
  assert.equal(up.rc, 0, JSON.stringify(up));
  const opt = ['--s3-endpoint', rgw.endpoint];
  const envEndpoint = { RUNNEL_S3_ENDPOINT: rgw.endpoint };

  // describe and history: the same answers as on the local copy (but the table's name)
  const dl = await tableJson(['describe', local]);
  const ds = await tableJson(['describe', root, ...opt]);
  assert.equal(ds.code, 0, ds.stderr);
  assert.equal(ds.json.table, root);
  assert.deepEqual({ ...ds.json, table: null }, { ...dl.json, table: null });
  assert.equal(ds.json.rows, ROWS);
  // -d DATA_ROOT NAME on a store, the endpoint from the environment
  const dd = await tableJson(['describe', '-d', `s3://${BUCKET}/${prefix}`, TABLE], envEndpoint);
  assert.equal(dd.code, 0, dd.stderr);
  assert.deepEqual({ ...dd.json, table: null }, { ...dl.json, table: null });
  const hl = await tableJson(['history', local]);
  const hs = await tableJson(['history', root], envEndpoint);
  assert.equal(hs.code, 0, hs.stderr);
  assert.deepEqual(hs.json.history, hl.json.history);

  // the keys from a shared credentials file and a profile, none in the environment
  const cred = path.join(dir, 'credentials');
  fs.writeFileSync(cred, `[default]\naws_access_key_id = wrong\naws_secret_access_key = wrong\n` +
    `[ci]\naws_access_key_id = ${rgw.accessKey}\naws_secret_access_key = ${rgw.secretKey}\n`);
  const noKeys = { AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '' };
  const dp = await tableJson(['describe', root, ...opt],
    { ...noKeys, AWS_SHARED_CREDENTIALS_FILE: cred, AWS_PROFILE: 'ci' });
  assert.equal(dp.code, 0, dp.stderr);
  assert.equal(dp.json.version, dl.json.version);
  // no credentials at all: a usage error that says so
  const nc = await table(['describe', root, ...opt],
    { ...noKeys, AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'none') });
  assert.equal(nc.code, 2, nc.stdout + nc.stderr);
  assert.match(nc.stderr, /credential/i);
  // a store that does not answer: exit 1, the reason named
  const dead = await table(['describe', root, '--s3-endpoint', 'http://127.0.0.1:1']);
  assert.equal(dead.code, 1, dead.stdout + dead.stderr);

  // verify: every data file stat'ed and its footer read on the store
  const vs = await tableJson(['verify', root, ...opt]);
  assert.equal(vs.code, 0, JSON.stringify(vs.json));
  assert.equal(vs.json.ok, true);
  assert.equal(vs.json.files, nlocal);
  assert.equal(vs.json.filesRowChecked, nlocal);
  assert.equal(vs.json.rows, ROWS);

  // damage on a second copy: a data file missing, another of the wrong size
  const root2 = `s3://${BUCKET}/${prefix}-damaged/main/default/telemetry`;
  assert.equal((await probe(root2, 'upload', local)).rc, 0);
  const live = replayLog(local).live.map((f) => path.relative(local, f.path));
  assert.equal((await probe(root2, 'delete', live[0])).rc, 0);
  assert.equal((await probe(root2, 'put', live[1], 'not parquet')).rc, 0);
  const vd = await tableJson(['verify', root2, ...opt]);
  assert.equal(vd.code, 1, JSON.stringify(vd.json));
  assert.equal(vd.json.ok, false);
  assert.ok(vd.json.problems.some((p) => p.includes('data file is missing')), JSON.stringify(vd.json));
  assert.ok(vd.json.problems.some((p) => p.includes('size mismatch')), JSON.stringify(vd.json));

  // compact on the store
  const cs = await tableJson(['compact', root, ...opt, '--min-files', '2']);
  assert.equal(cs.code, 0, cs.stderr);
  assert.equal(cs.json.ok, true);
  assert.ok(cs.json.filesRemoved >= 2, JSON.stringify(cs.json));
  assert.ok(cs.json.rows > 0 && cs.json.rows <= ROWS, JSON.stringify(cs.json));
  const after = await tableJson(['describe', root, ...opt]);
  assert.equal(after.json.rows, ROWS);
  assert.ok(after.json.files < nlocal);
  assert.equal(after.json.tombstones, cs.json.filesRemoved);

  // an upload no commit names (a flush that crashed before its commit), and a hidden file
  const orphan = 'part-00000-orphan-c000.zstd.parquet';
  assert.equal((await probe(root, 'putgen', orphan, 1000, 7)).rc, 0);
  assert.equal((await probe(root, 'putgen', '_tmp/part-hidden.parquet', 10, 8)).rc, 0);
  // the default retention: neither the removed inputs nor the young orphan
  const v0 = await tableJson(['vacuum', root, ...opt, '--dry-run']);
  assert.equal(v0.code, 0, v0.stderr);
  assert.equal(v0.json.count, 0, JSON.stringify(v0.json));
  assert.equal(v0.json.unreferenced, 0);
  // retention 0, explicit: the removed inputs and the orphan, with a warning
  const v1 = await tableJson(['vacuum', root, ...opt, '--retention', '0', '--unsafe-retention']);
  assert.equal(v1.code, 0, v1.stderr);
  assert.match(v1.stderr, /warning: a retention below 1 hour/);
  assert.equal(v1.json.ok, true);
  assert.equal(v1.json.unreferenced, 1, JSON.stringify(v1.json));
  assert.equal(v1.json.count, cs.json.filesRemoved + 1, JSON.stringify(v1.json));
  const unref = v1.json.files.filter((f) => f.unreferenced).map((f) => f.path);
  assert.deepEqual(unref, [orphan]);
  assert.equal((await probe(root, 'stat', orphan)).rc, -10); // RN_ENOTFOUND
  assert.equal((await probe(root, 'stat', '_tmp/part-hidden.parquet')).rc, 0);
  const v2 = await tableJson(['vacuum', root, ...opt, '--retention', '0', '--unsafe-retention']);
  assert.equal(v2.json.count, 0, JSON.stringify(v2.json));

  // still whole: verify on the store, and the copy read back by readers we did not write
  const va = await tableJson(['verify', root, ...opt]);
  assert.equal(va.code, 0, JSON.stringify(va.json));
  assert.equal(va.json.rows, ROWS);
  const out = tmpDir('e2e-table-cli-s3-out');
  await rgw.copyOut(BUCKET, `${prefix}/main/default/telemetry/`, out);
  const copy = path.join(out, prefix, 'main', 'default', 'telemetry');
  const snap = await verifyTable(copy);
  assert.equal(snap.rows, ROWS);
  const [{ n }] = await query(`SELECT count(*) AS n FROM ${duckFrom(snap.files)}`);
  assert.equal(Number(n), ROWS);

  for (const o of outputs) assert.ok(!o.includes(rgw.secretKey), `the secret key printed: ${o}`);
}));
