// A throw-away Ceph RADOS Gateway for the end-to-end tests (tests/s3/rgw.sh: one monitor,
// one OSD on a sparse file, radosgw on 127.0.0.1, all under one directory). Rgw starts it,
// stops it (data kept), restarts it on the same endpoint, and stops it when the test process
// exits whatever happened (an exit handler; a watcher started by rgw.sh when it is SIGKILLed). s3() runs tests/s3/s3_client.py (Debian's python3-boto3, a client
// we did not write) against it.
//
//   const rgw = await new Rgw().start();   // ~10 s the first time, ~5 s on restart
//   rgw.endpoint, rgw.accessKey, rgw.secretKey, rgw.region, rgw.envFile
//   await rgw.bucket('tables');             // created if missing
//   await rgw.s3('put', 'tables', 'k', 'v', '--if-none-match')  // -> {status, etag}
//   await rgw.kill('rgw'); await rgw.start();   // the gateway alone lost and back
//   await rgw.restart(); await rgw.stop({ remove: true });
//   const keep = keepOnFailure();           // a failing file's cluster and logs kept
import { after, before } from 'node:test';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot, run, tmpDir, waitFor } from './harness.mjs';

export const rgwScript = path.join(repoRoot, 'tests', 's3', 'rgw.sh');
export const s3ClientPy = path.join(repoRoot, 'tests', 's3', 's3_client.py');

// Why the RGW tests cannot run here (a string), or null when they can: the Debian packages
// radosgw ceph-mon ceph-osd and python3-boto3 (make deps-s3 installs them).
export function rgwMissing() {
  for (const bin of ['/usr/bin/radosgw', '/usr/bin/ceph-mon', '/usr/bin/ceph-osd']) {
    if (!fs.existsSync(bin)) return `${bin} not installed (apt-get install radosgw ceph-mon ceph-osd)`;
  }
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import boto3'], { stdio: 'ignore' });
  } catch {
    return 'python3-boto3 not installed';
  }
  return null;
}

// A test file's cluster kept for a look when one of its tests failed. check(fn) wraps a test
// body and marks the file failed when it throws; release(rgw), from after(), then prints the
// daemons' log tails and keeps the cluster's directory, else stops it and removes it.
//
//   const { check, release } = keepOnFailure();
//   after(() => release(rgw));
//   test('...', check(async () => { ... }));
export function keepOnFailure() {
  let failed = false;
  return {
    check: (fn) => async (t) => {
      try {
        await fn(t);
      } catch (e) {
        failed = true;
        throw e;
      }
    },
    async release(rgw) {
      if (!rgw) return;
      if (failed) console.log(`# RGW kept in ${rgw.dir}\n${rgw.logs(15)}`);
      await rgw.stop({ remove: !failed });
    },
  };
}

// One throw-away cluster for a test file: started before its tests, with `buckets` made,
// handed to set(rgw), and stopped after them (kept with its logs printed when a test wrapped
// in the returned check() failed). Returns { check }.
export function rgwForFile(buckets, set) {
  const { check, release } = keepOnFailure();
  let rgw = null;
  before(async () => {
    const missing = rgwMissing();
    if (missing) throw new Error(`the s3 tests need ${missing} (make deps-s3)`);
    rgw = new Rgw();
    await rgw.start();
    console.log(`# RGW up in ${rgw.startMs} ms at ${rgw.endpoint}`);
    for (const b of buckets) await rgw.bucket(b);
    set(rgw);
  });
  after(() => release(rgw));
  return { check };
}

// Clusters still running when the process exits are stopped (by PID, rgw.sh stop).
const live = new Set();
let hooked = false;
function hookExit() {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const dir of live) {
      try {
        execFileSync(rgwScript, ['stop', dir], { stdio: 'ignore', timeout: 60000 });
      } catch {
        // nothing more to do at exit
      }
    }
  });
  for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => process.exit(128 + (sig === 'SIGINT' ? 2 : 15)));
}

export class Rgw {
  // dir: where the cluster lives (default a new tmpDir); port: RGW's port (default a free one,
  // kept across restarts); accessKey/secretKey: the user's keys
  constructor({ dir, port, accessKey = 'runnel-test', secretKey = 'runnel-test-secret' } = {}) {
    this.dir = dir || tmpDir('rgw');
    this.port = port;
    this.keys = { accessKey, secretKey };
    this.starts = 0;
  }
  get envFile() {
    return path.join(this.dir, 'env');
  }
  // Starts (or restarts with its data) the cluster; resolves once RGW answers and the user
  // exists. Throws with rgw.sh's message and the daemons' log tails when it cannot.
  async start() {
    hookExit();
    live.add(this.dir);
    const args = ['start', this.dir, ...(this.port ? [String(this.port)] : [])];
    const t0 = Date.now();
    const r = await run(rgwScript, args, {
      // RGW_WATCH_PID: the cluster is stopped even when this process is SIGKILLed (a ctest
      // timeout), where no exit handler runs
      env: { ...process.env, RGW_ACCESS_KEY: this.keys.accessKey, RGW_SECRET_KEY: this.keys.secretKey, RGW_WATCH_PID: String(process.pid) },
    });
    if (r.code !== 0) throw new Error(`rgw.sh start failed (${r.code}):\n${r.stderr}`);
    this.startMs = Date.now() - t0;
    this.starts++;
    const env = Object.fromEntries(fs.readFileSync(this.envFile, 'utf8').trim().split('\n')
      .map((l) => l.split(/=(.*)/s).slice(0, 2)));
    this.endpoint = env.endpoint;
    this.accessKey = env.access_key;
    this.secretKey = env.secret_key;
    this.region = env.region;
    this.port = Number(new URL(this.endpoint).port);
    return this;
  }
  // Stops rgw, osd, mon by PID (SIGKILL after 10 s each); the data stays for start().
  // remove: also delete the directory (a passing test's; a failing one's logs are kept).
  async stop({ remove = false } = {}) {
    const r = await run(rgwScript, ['stop', this.dir]);
    live.delete(this.dir);
    if (r.code !== 0) throw new Error(`rgw.sh stop failed (${r.code}):\n${r.stderr}`);
    if (remove) fs.rmSync(this.dir, { recursive: true, force: true });
  }
  async restart() {
    await this.stop();
    return this.start();
  }
  // The PID of daemon `name` (mon, osd, rgw) as rgw.sh recorded it, or null when stopped.
  pid(name) {
    try {
      const p = Number(fs.readFileSync(path.join(this.dir, 'pids', name), 'utf8'));
      return p > 0 ? p : null;
    } catch {
      return null;
    }
  }
  // Kills one daemon (a store failing under a writer: `kill('rgw')` takes the gateway away,
  // the cluster stays); resolves once it is gone. start() brings back what is missing.
  async kill(name = 'rgw', sig = 'SIGKILL') {
    const p = this.pid(name);
    if (!p) return;
    try {
      process.kill(p, sig);
    } catch {
      return;
    }
    await waitFor(() => {
      try {
        process.kill(p, 0);
        return false;
      } catch {
        return true;
      }
    }, { timeoutMs: 30000, what: `${name} (pid ${p}) gone` });
  }
  // rgw.sh status: {running: all three daemons up and RGW answering, text}
  async status() {
    const r = await run(rgwScript, ['status', this.dir]);
    return { running: r.code === 0, text: r.stdout };
  }
  // The AWS_* environment a server or client reads its credentials from.
  awsEnv() {
    return {
      AWS_ACCESS_KEY_ID: this.accessKey, AWS_SECRET_ACCESS_KEY: this.secretKey,
      AWS_REGION: this.region, AWS_ENDPOINT_URL: this.endpoint,
    };
  }
  // One tests/s3/s3_client.py command (see its usage) against this store: its JSON answer.
  async s3(cmd, ...args) {
    const r = await run('/usr/bin/python3', [s3ClientPy, this.envFile, cmd, ...args.map(String)]);
    if (r.code !== 0) throw new Error(`s3_client.py ${cmd} ${args.join(' ')} failed (${r.code}):\n${r.stderr}`);
    return JSON.parse(r.stdout.trim().split('\n').pop());
  }
  // Creates bucket `name` unless it exists; resolves the name.
  async bucket(name) {
    await this.s3('mkbucket', name);
    return name;
  }
  // Downloads every object under `prefix` of `bucket` into `dest` (keys as paths) with boto3,
  // e.g. a table for DuckDB to read; resolves the number of objects.
  async copyOut(bucket, prefix, dest) {
    fs.mkdirSync(dest, { recursive: true });
    return (await this.s3('copy-out', bucket, prefix, dest)).objects;
  }
  // The tail of every daemon log, for a failure message.
  logs(n = 30) {
    const dir = path.join(this.dir, 'log');
    if (!fs.existsSync(dir)) return '';
    return fs.readdirSync(dir).map((f) => {
      const lines = fs.readFileSync(path.join(dir, f), 'utf8').trimEnd().split('\n');
      return `--- ${f}\n${lines.slice(-n).join('\n')}`;
    }).join('\n');
  }
}
