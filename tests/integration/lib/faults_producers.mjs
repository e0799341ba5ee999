// Producers for the fault suite (faults.test.mjs). Each writes numbered records without a
// pause while faults strike, and keeps a timeline (time, records produced so far) so the
// suite can say which records were produced while a fault was active.
//
// Every record is "<P> <n> <pad>": P = F (file), S (serial), M (MQTT), n = the producer's
// sequence number from 0, pad = 'x' repeated 20 + n % 37 times (so a fragment of a line is
// recognisable as one).
//
// - FileProducer: appends lines to one file from this process, renaming it away now and
//   then (logrotate "create" style) so rotations meet the faults too.
// - SerialProducer: a child process (lib/faults_serial_writer.mjs) writing lines into one end
//   of a socat pty pair; its writes block when the agent does not read (SIGSTOP), so it must
//   not run on the test's event loop.
// - MqttProducer: paho-mqtt (Debian's python3-paho-mqtt, /usr/bin/python3) publishing with
//   QoS 2 and a persistent session, so a broker restart neither loses nor duplicates a
//   message between the publisher and the broker (the agent subscribes with QoS 1).
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { waitFor } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));

export const padLen = (n) => 20 + (n % 37);
export const line = (p, n) => `${p} ${n} ${'x'.repeat(padLen(n))}`;

// (time, produced) samples; producedAt(t) = records produced up to t.
class Timeline {
  constructor() {
    this.t = [Date.now()];
    this.n = [0];
  }
  add(n, t = Date.now()) {
    if (n !== this.n[this.n.length - 1]) {
      this.t.push(t);
      this.n.push(n);
    }
  }
  // Records produced by time t (the last sample at or before t).
  at(t) {
    let lo = 0;
    let hi = this.t.length - 1;
    if (t < this.t[0]) return 0;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.t[mid] <= t) lo = mid;
      else hi = mid - 1;
    }
    return this.n[lo];
  }
  // When record n was produced (the first sample whose count exceeds n).
  timeOf(n) {
    let lo = 0;
    let hi = this.n.length - 1;
    if (this.n[hi] <= n) return null;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.n[mid] > n) hi = mid;
      else lo = mid + 1;
    }
    return this.t[lo];
  }
}

export class FileProducer {
  constructor({ dir, rate = 1500, rotateMs = 40000 }) {
    this.dir = dir;
    this.file = path.join(dir, 'f.log');
    this.rate = rate;
    this.rotateMs = rotateMs;
    this.seq = 0;
    this.rotations = 0;
    this.timeline = new Timeline();
    fs.writeFileSync(this.file, '');
  }
  start() {
    this.t0 = Date.now();
    this.lastRotate = this.t0;
    this.timer = setInterval(() => this.tick(), 20);
    return this;
  }
  tick() {
    const now = Date.now();
    const want = Math.floor(((now - this.t0) * this.rate) / 1000);
    if (want > this.seq) {
      let s = '';
      for (let n = this.seq; n < want; n++) s += line('F', n) + '\n';
      fs.appendFileSync(this.file, s);
      this.seq = want;
      this.timeline.add(this.seq, now);
    }
    if (this.rotateMs && now - this.lastRotate >= this.rotateMs) this.rotateNow();
  }
  // Renames the file away (f.log.N, N counting up) and starts a new one, as logrotate does.
  rotateNow() {
    this.lastRotate = Date.now();
    this.rotations++;
    fs.renameSync(this.file, `${this.file}.${this.rotations}`);
    fs.writeFileSync(this.file, '');
  }
  get produced() {
    return this.seq;
  }
  async stop() {
    clearInterval(this.timer);
    this.tick();
    clearInterval(this.timer);
    return this.seq;
  }
}

// Reads "P <produced> <epoch ms>" / "DONE <produced> ..." lines of a child producer.
function followChild(child, timeline, onDone) {
  let buf = '';
  const state = { produced: 0, done: null, acked: 0, log: [] };
  child.stdout.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const l = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      const f = l.split(' ');
      if (f[0] === 'P') {
        state.produced = Number(f[1]);
        if (f.length > 3) state.acked = Number(f[3]);
        timeline.add(state.produced, Number(f[2]));
      } else if (f[0] === 'DONE') {
        state.produced = Number(f[1]);
        state.done = { produced: Number(f[1]), acked: Number(f[2] ?? f[1]) };
        onDone && onDone(state.done);
      } else if (l) {
        state.log.push(l);
        if (state.log.length > 100) state.log.shift();
      }
    }
  });
  child.stderr.on('data', (d) => {
    for (const l of d.toString().split('\n')) if (l) state.log.push(l);
    while (state.log.length > 100) state.log.shift();
  });
  return state;
}

// A socat pty pair (as in e2e_serial): the agent opens `dev`, the writer child writes `peer`.
export class PtyPair {
  constructor(dir, name) {
    this.dev = path.join(dir, `${name}0`);
    this.peer = path.join(dir, `${name}1`);
  }
  async start() {
    let log = '';
    this.proc = spawn('socat', ['-d', '-d', `pty,raw,echo=0,link=${this.dev}`,
      `pty,raw,echo=0,link=${this.peer}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.proc.stderr.on('data', (d) => (log += d));
    this.exited = new Promise((resolve) => this.proc.on('exit', resolve));
    await waitFor(() => log.includes('starting data transfer loop') && fs.existsSync(this.dev)
      && fs.existsSync(this.peer), { timeoutMs: 10000, what: `socat pty pair ${this.dev}` })
      .catch((e) => { throw new Error(`${e.message}\n${log}`); });
    return this;
  }
  async stop() {
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill('SIGTERM');
      await this.exited;
    }
  }
}

export class SerialProducer {
  constructor({ peer, rate = 300 }) {
    this.peer = peer;
    this.rate = rate;
    this.timeline = new Timeline();
  }
  start() {
    this.child = spawn(process.execPath, [path.join(here, 'faults_serial_writer.mjs'), this.peer, String(this.rate)],
      { stdio: ['pipe', 'pipe', 'pipe'] });
    this.exit = new Promise((resolve) => this.child.on('exit', (code, sig) => resolve({ code, sig })));
    this.state = followChild(this.child, this.timeline);
    return this;
  }
  get produced() {
    return this.state.produced;
  }
  async stop(timeoutMs = 30000) {
    this.child.stdin.end();
    const t = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    await this.exit;
    clearTimeout(t);
    if (!this.state.done) throw new Error(`serial writer ended without DONE: ${this.state.log.join(' | ')}`);
    return this.state.done.produced;
  }
}

// The publisher hands paho at most 100 unfinished messages. After a lost connection it hands
// over nothing new until paho has finished (PUBCOMP) every message handed before: paho 1.6
// resends those from its network thread while publish() from another thread would send new
// ones at once, so new messages could overtake the resent ones (seen in this suite: the
// broker then holds them out of order, which is no fault of the agent).
const MQTT_PUB = String.raw`
import sys, threading, time
import paho.mqtt.client as mqtt

port, topic, rate = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
client_id = sys.argv[4]
WINDOW = 100
st = {'done': 0, 'connected': False, 'resync': False}
lock = threading.Lock()

def on_publish(c, userdata, mid):
    with lock:
        st['done'] += 1

def on_connect(c, userdata, flags, rc):
    if rc == 0:
        st['connected'] = True

def on_disconnect(c, userdata, rc):
    st['connected'] = False
    st['resync'] = True

c = mqtt.Client(client_id=client_id, clean_session=False, protocol=mqtt.MQTTv311)
c.max_inflight_messages_set(WINDOW)
c.max_queued_messages_set(0)
c.reconnect_delay_set(0.05, 0.5)
c.on_publish = on_publish
c.on_connect = on_connect
c.on_disconnect = on_disconnect
while True:
    try:
        c.connect('127.0.0.1', port, keepalive=10)
        break
    except OSError:
        time.sleep(0.1)
c.loop_start()

stop = threading.Event()
def reader():
    sys.stdin.read()
    stop.set()
threading.Thread(target=reader, daemon=True).start()

def send(seq, handed):
    if not st['connected']:
        return handed
    if st['resync']:
        if st['done'] < handed:
            return handed
        st['resync'] = False
    while handed < seq and handed - st['done'] < WINDOW:
        c.publish(topic, 'M %d %s' % (handed, 'x' * (20 + handed % 37)), qos=2)
        handed += 1
    return handed

seq = 0     # produced
handed = 0  # given to paho
t0 = time.monotonic()
last = 0.0
while not stop.is_set():
    now = time.monotonic()
    seq = max(seq, int((now - t0) * rate))
    handed = send(seq, handed)
    if now - last >= 0.05:
        last = now
        print('P %d %d %d' % (seq, int(time.time() * 1000), st['done']), flush=True)
    time.sleep(0.005)
print('P %d %d %d' % (seq, int(time.time() * 1000), st['done']), flush=True)
deadline = time.monotonic() + float(sys.argv[5])
while st['done'] < seq and time.monotonic() < deadline:
    handed = send(seq, handed)
    time.sleep(0.01)
print('DONE %d %d' % (seq, st['done']), flush=True)
c.loop_stop()
c.disconnect()
`;

export class MqttProducer {
  constructor({ dir, port, topic = 'fault/m', rate = 300, clientId = 'runnel-fault-pub', drainS = 90 }) {
    this.script = path.join(dir, 'faults_mqtt_pub.py');
    fs.writeFileSync(this.script, MQTT_PUB);
    this.port = port;
    this.topic = topic;
    this.rate = rate;
    this.clientId = clientId;
    this.drainS = drainS;
    this.timeline = new Timeline();
  }
  start() {
    this.child = spawn('/usr/bin/python3', [this.script, String(this.port), this.topic, String(this.rate),
      this.clientId, String(this.drainS)], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.exit = new Promise((resolve) => this.child.on('exit', (code, sig) => resolve({ code, sig })));
    this.state = followChild(this.child, this.timeline);
    return this;
  }
  get produced() {
    return this.state.produced;
  }
  // Stops producing and waits until the broker acknowledged (PUBCOMP) every message.
  async stop() {
    this.child.stdin.end();
    const t = setTimeout(() => this.child.kill('SIGKILL'), (this.drainS + 30) * 1000);
    await this.exit;
    clearTimeout(t);
    if (!this.state.done) throw new Error(`mqtt publisher ended without DONE: ${this.state.log.join(' | ')}`);
    if (this.state.done.acked < this.state.done.produced) {
      throw new Error(`mqtt publisher: only ${this.state.done.acked} of ${this.state.done.produced} messages acknowledged by the broker`);
    }
    return this.state.done.produced;
  }
}
