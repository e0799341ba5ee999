// A TCP proxy the test controls, put between runnel-agent and runnel-server to model link
// faults on a machine without tc/netem. Everything is in user space (node:net), per
// connection and per direction:
//
//   const p = new Proxy({ target: server.port, host: '127.0.0.1', seed: 42 });
//   await p.start();            // listens on a free loopback port: p.port
//   p.set({ delayMs: 150, lossPct: 20, bytesPerSec: 0 });
//   p.cut(); ... p.heal();      // or p.blackhole(); ... p.heal();
//   p.stats();                  // { connections, open, bytesUp, bytesDown }
//   await p.stop();
//
// The model, per direction (up = client → target, down = target → client):
// - Data is taken as it is read from a socket, in pieces of at most 16 KiB (smaller when
//   throttled, so a slow link delivers smoothly).
// - bytesPerSec (0 = unlimited) is a bottleneck link: a piece starts when the previous one
//   has finished serializing and takes len/bytesPerSec to do so.
// - delayMs is the one-way propagation delay added to every piece (RTT ≈ 2 × delayMs).
// - lossPct: a TCP proxy cannot drop bytes without breaking the stream, so loss is modelled
//   as TCP sees it: with that probability a piece is "lost" and delivered one retransmission
//   timeout late, RTO = max(200 ms, 2 × RTT), and everything after it in that direction
//   waits behind it (head-of-line blocking; delivery order is never changed).
// - A window of 1 MiB per direction stands in for the TCP window: once that much is queued
//   the reading side is paused (so a slow or blackholed link pushes back on the sender
//   instead of buffering without bound).
// - cut(): every connection is destroyed (RST where node supports it) and new ones are
//   accepted and destroyed at once, until heal().
// - blackhole(): connections stay open and new ones are accepted (their upstream connect
//   waits) but nothing is delivered either way until heal(); then the queued data flows, as
//   TCP retransmission would deliver it, unless an endpoint gave up meanwhile.
// Settings apply to data read after set(); pieces already queued keep their schedule.
// Random choices come from a seeded PRNG so a run can be replayed.
import net from 'node:net';
import { prng } from './harness.mjs';

const MAX_PIECE = 16 * 1024;
const WINDOW = 1 << 20;

function rst(sock) {
  if (!sock || sock.destroyed) return;
  if (typeof sock.resetAndDestroy === 'function') {
    try {
      sock.resetAndDestroy();
      return;
    } catch {
      // not connected yet: fall through
    }
  }
  sock.destroy();
}

// One direction of one connection: src's data queued with release times, written to dst.
class Pipe {
  constructor(proxy, conn, dir) {
    this.proxy = proxy;
    this.conn = conn;
    this.dir = dir; // 'up' | 'down'
    this.queue = []; // { buf, at }
    this.queued = 0;
    this.lastRelease = 0; // release time of the newest piece (ordering)
    this.linkFree = 0; // when the bottleneck finishes the last piece (throttle)
    this.timer = null;
    this.src = null;
    this.dst = null;
    this.srcEnded = false;
    this.dstBlocked = false;
    this.closed = false;
  }

  attach(src, dst) {
    this.src = src;
    this.dst = dst;
    src.on('data', (d) => this.push(d));
    src.on('end', () => {
      this.srcEnded = true;
      this.pump();
    });
    dst.on('drain', () => {
      this.dstBlocked = false;
      this.pump();
    });
  }

  setDst(dst) {
    this.dst = dst;
    dst.on('drain', () => {
      this.dstBlocked = false;
      this.pump();
    });
    this.pump();
  }

  push(data) {
    const cfg = this.proxy.cfg;
    const piece = cfg.bytesPerSec > 0 ? Math.max(256, Math.min(MAX_PIECE, Math.floor(cfg.bytesPerSec / 50))) : MAX_PIECE;
    for (let off = 0; off < data.length; off += piece) {
      const buf = data.subarray(off, Math.min(data.length, off + piece));
      const now = Date.now();
      let at = now;
      if (cfg.bytesPerSec > 0) {
        const start = Math.max(now, this.linkFree);
        this.linkFree = start + (buf.length * 1000) / cfg.bytesPerSec;
        at = this.linkFree;
      }
      at += cfg.delayMs;
      if (cfg.lossPct > 0 && this.proxy.rnd() * 100 < cfg.lossPct) {
        at += Math.max(200, 4 * cfg.delayMs); // one RTO, RTT = 2 × delay
        this.proxy.lost[this.dir]++;
      }
      at = Math.max(at, this.lastRelease);
      this.lastRelease = at;
      this.queue.push({ buf, at });
      this.queued += buf.length;
    }
    if (this.queued >= WINDOW && this.src && !this.src.destroyed) this.src.pause();
    this.pump();
  }

  pump() {
    if (this.closed) return;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.proxy.mode !== 'ok' || !this.dst || this.dst.connecting) return;
    const now = Date.now();
    while (this.queue.length && !this.dstBlocked) {
      const head = this.queue[0];
      if (head.at > now) break;
      this.queue.shift();
      this.queued -= head.buf.length;
      if (this.dir === 'up') this.proxy.bytesUp += head.buf.length;
      else this.proxy.bytesDown += head.buf.length;
      if (!this.dst.destroyed && !this.dst.write(head.buf)) this.dstBlocked = true;
    }
    if (this.queued < WINDOW / 2 && this.src && !this.src.destroyed && this.src.isPaused()) this.src.resume();
    if (this.queue.length) {
      if (!this.dstBlocked) this.timer = setTimeout(() => this.pump(), Math.max(1, this.queue[0].at - now));
    } else if (this.srcEnded && !this.dst.destroyed) {
      this.dst.end();
    }
  }

  close() {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.queue = [];
    this.queued = 0;
  }
}

export class Proxy {
  constructor({ target, host = '127.0.0.1', seed = 1 }) {
    this.target = target;
    this.host = host;
    this.seed = seed;
    this.rnd = prng(seed);
    this.cfg = { delayMs: 0, lossPct: 0, bytesPerSec: 0 };
    this.mode = 'ok'; // 'ok' | 'cut' | 'blackhole'
    this.conns = new Set();
    this.connections = 0;
    this.refused = 0;
    this.bytesUp = 0;
    this.bytesDown = 0;
    this.lost = { up: 0, down: 0 };
    this.port = 0;
    this.server = null;
  }

  async start() {
    this.server = net.createServer({ pauseOnConnect: false }, (client) => this.accept(client));
    this.server.on('error', () => {});
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.port = this.server.address().port;
    return this;
  }

  accept(client) {
    client.on('error', () => {});
    if (this.mode === 'cut') {
      this.refused++;
      rst(client);
      return;
    }
    this.connections++;
    client.setNoDelay(true);
    const conn = { client, upstream: null, up: new Pipe(this, null, 'up'), down: new Pipe(this, null, 'down'), done: false };
    conn.up.conn = conn;
    conn.down.conn = conn;
    this.conns.add(conn);
    const finish = () => {
      if (conn.done) return;
      conn.done = true;
      conn.up.close();
      conn.down.close();
      this.conns.delete(conn);
      // a half-open peer is closed the way it would see the other end go
      if (!client.destroyed) client.destroy();
      if (conn.upstream && !conn.upstream.destroyed) conn.upstream.destroy();
    };
    conn.finish = finish;
    client.on('close', finish);
    // client → upstream: queued from the first byte, delivered once upstream is connected
    client.on('data', (d) => conn.up.push(d));
    client.on('end', () => {
      conn.up.srcEnded = true;
      conn.up.pump();
    });
    conn.up.src = client;
    if (this.mode === 'ok') this.connectUpstream(conn);
  }

  connectUpstream(conn) {
    if (conn.upstream || conn.done) return;
    const up = net.connect({ port: this.target, host: this.host });
    conn.upstream = up;
    up.setNoDelay(true);
    up.on('error', () => {});
    up.on('close', conn.finish);
    up.on('connect', () => {
      conn.up.setDst(up);
      conn.down.attach(up, conn.client);
    });
  }

  // { delayMs, lossPct, bytesPerSec }: any subset; missing keys keep their value.
  set(opts = {}) {
    for (const k of ['delayMs', 'lossPct', 'bytesPerSec']) {
      if (opts[k] !== undefined) {
        const v = Number(opts[k]);
        if (!Number.isFinite(v) || v < 0) throw new Error(`proxy.set: bad ${k} ${opts[k]}`);
        this.cfg[k] = v;
      }
    }
    return this;
  }

  cut() {
    this.mode = 'cut';
    for (const conn of [...this.conns]) {
      rst(conn.client);
      rst(conn.upstream);
      conn.finish();
    }
  }

  blackhole() {
    if (this.mode === 'cut') this.mode = 'ok';
    this.mode = 'blackhole';
    for (const conn of this.conns) {
      conn.up.pump();
      conn.down.pump();
    }
  }

  heal() {
    this.mode = 'ok';
    for (const conn of [...this.conns]) {
      if (!conn.upstream) this.connectUpstream(conn);
      conn.up.pump();
      conn.down.pump();
    }
  }

  stats() {
    return { connections: this.connections, open: this.conns.size, refused: this.refused,
      bytesUp: this.bytesUp, bytesDown: this.bytesDown, lostUp: this.lost.up, lostDown: this.lost.down };
  }

  async stop() {
    if (!this.server) return;
    const closed = new Promise((resolve) => this.server.close(() => resolve()));
    for (const conn of [...this.conns]) {
      if (conn.client) conn.client.destroy();
      if (conn.upstream) conn.upstream.destroy();
      conn.finish();
    }
    await closed;
    this.server = null;
  }
}

export default Proxy;
