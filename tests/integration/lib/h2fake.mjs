// A scripted fake Zerobus endpoint for uplink fault tests: one loopback port that the agent
// talks to, whose behaviour the test switches between a transparent path to the real
// runnel-server and a fault. It is a fault injector, not a server: it never creates streams
// and never acknowledges data, so nothing the agent deletes can have bypassed the real
// server (only 'relay' forwards the real server's own answers, adding a close signal).
//
//   const f = new H2Fake({ target: server.port });
//   await f.start();                     // f.port
//   f.mode('status', { grpcStatus: 8, pushbackMs: 1500 });
//   f.calls                              // calls seen (http1: connections): { t, mode, path,
//                                        //   headers, bytesIn }
//   f.mode('pass');                      // raw TCP pass-through to the real server
//   await f.stop();
//
// Every mode() switch destroys the connections that are open (libcurl would otherwise keep
// using a connection of the old mode), so the agent's next call meets the new mode. Modes:
//   pass          TCP pass-through to the target port
//   http1         answers like an HTTP/1.1 web server (a 400 page), whatever arrives
//   status        HTTP/2, 200 + grpc headers, then trailers { grpcStatus, message, pushbackMs }
//                 after the call's first message arrived (resumeFirst: true answers the
//                 resume first), then RST_STREAM(NO_ERROR) unless rstAfter: false;
//                 trailersOnly: true answers with the status at once
//   refuse-rst    raw HTTP/2 (no node:http2, which writes frames apart): a trailers-only
//                 answer { grpcStatus, message } and RST_STREAM(NO_ERROR) in one TCP write,
//                 as a server that resets at once after its status does
//   http-status   HTTP/2 { status: 503, contentType: 'text/html', body }
//   content-type  HTTP/2 200 with { contentType: 'application/json', body }
//   garbage-msg   HTTP/2 200 application/grpc, then one well-framed message that is not
//                 protobuf
//   not-framing   HTTP/2 200 application/grpc, then a body that is not gRPC framing
//   resume-above  answers resume_stream with last_committed_offset { offset: 1e9 }
//   ack-unsent    answers resume_stream with no offset (nothing committed), then acks an
//                 offset that was never sent ({ offset: 1e9 }) once a chunk arrives
//   rst           RST_STREAM ({ code }, default INTERNAL_ERROR) after the first bytes of a
//                 chunk arrived
//   goaway        GOAWAY ({ code, lastStreamId: 'none' | 'current' }) after the first bytes
//                 of a chunk arrived, then the connection is closed after { closeMs: 200 }
//   relay         an HTTP/2 proxy to the target: the call goes to the real server and its
//                 answers come back, with a close_stream_signal ({ closeSecs: 2 }) injected
//                 after the first answer message; with { health: true } instead, the
//                 answer carries `runnel-health: 1` and the agent's health reports are
//                 taken out of the call into f.reports (see relay())
import { execFileSync } from 'node:child_process';
import http2 from 'node:http2';
import net from 'node:net';

// Node 20 has no zstd: the zstd program decompresses a compressed message.
function zstdDecompress(b) {
  return execFileSync('zstd', ['-dcq'], { input: b, maxBuffer: 64 << 20 });
}

const { NGHTTP2_INTERNAL_ERROR, NGHTTP2_NO_ERROR } = http2.constants;

// Protobuf bits for PersistentStreamResponse (docs/protocol.md §3).
function varint(n) {
  const out = [];
  let v = BigInt(n);
  if (v < 0n) v += 1n << 64n;
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return out;
}
function field(num, bytes) {
  return [(num << 3) | 2, ...varint(bytes.length), ...bytes];
}
export function grpcFrame(bytes) {
  const b = Buffer.from(bytes);
  const h = Buffer.alloc(5);
  h.writeUInt32BE(b.length, 1);
  return Buffer.concat([h, b]);
}
export const pb = {
  resume: (offset) => field(2, offset === undefined ? [] : [0x08, ...varint(offset)]),
  ack: (offset) => field(3, [0x08, ...varint(offset)]),
  close: (secs) => field(4, field(1, [0x08, ...varint(secs)])),
};

// Splits gRPC frames off the front of `buf`; returns [frames, rest].
function deframe(buf) {
  const frames = [];
  while (buf.length >= 5) {
    const len = buf.readUInt32BE(1);
    if (buf.length < 5 + len) break;
    frames.push(buf.subarray(0, 5 + len));
    buf = buf.subarray(5 + len);
  }
  return [frames, buf];
}

const quiet = (e) => e && e.on && e.on('error', () => {});

export class H2Fake {
  constructor({ target, host = '127.0.0.1', port = 0 }) {
    this.target = target;
    this.host = host;
    this.port = port;
    this.current = 'pass';
    this.opts = {};
    this.calls = [];
    this.reports = []; // relay with { health: true }
    this.sockets = new Set();
    this.h2 = http2.createServer();
    this.h2.on('stream', (stream, headers) => this.onStream(stream, headers));
    this.h2.on('session', (s) => quiet(s));
    this.h2.on('sessionError', () => {});
  }

  async start() {
    this.srv = net.createServer((sock) => this.onConnection(sock));
    await new Promise((resolve, reject) => {
      this.srv.once('error', reject);
      this.srv.listen(this.port, this.host, resolve);
    });
    this.port = this.srv.address().port;
    return this;
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  // Switches behaviour for new connections; existing ones are destroyed.
  mode(name, opts = {}) {
    this.current = name;
    this.opts = opts;
    this.dropAll();
  }

  dropAll() {
    for (const s of this.sockets) {
      if (typeof s.resetAndDestroy === 'function') {
        try {
          s.resetAndDestroy();
          continue;
        } catch {
          // fall through
        }
      }
      s.destroy();
    }
    this.sockets.clear();
  }

  callsIn(mode) {
    return this.calls.filter((c) => c.mode === mode);
  }

  onConnection(sock) {
    quiet(sock);
    this.sockets.add(sock);
    sock.on('close', () => this.sockets.delete(sock));
    const mode = this.current;
    if (mode === 'pass') {
      const up = net.connect(this.target, this.host);
      quiet(up);
      this.sockets.add(up);
      up.on('close', () => {
        this.sockets.delete(up);
        sock.destroy();
      });
      sock.on('close', () => up.destroy());
      sock.pipe(up);
      up.pipe(sock);
      return;
    }
    if (mode === 'http1') {
      this.calls.push({ t: Date.now(), mode, path: null, headers: null, bytesIn: 0 });
      sock.once('data', () => {
        const body = '<html><body>400 Bad Request</body></html>';
        sock.end(`HTTP/1.1 400 Bad Request\r\nContent-Type: text/html\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
      });
      return;
    }
    if (mode === 'refuse-rst') {
      this.refuseRst(sock, this.opts);
      return;
    }
    this.h2.emit('connection', sock);
  }

  // Mode refuse-rst: reads frames after the client preface; answers every request HEADERS
  // with a trailers-only HEADERS (HPACK literals, no Huffman) and RST_STREAM(NO_ERROR),
  // both in one write.
  refuseRst(sock, o) {
    const frame = (type, flags, sid, payload) => {
      const h = Buffer.alloc(9);
      h.writeUIntBE(payload.length, 0, 3);
      h[3] = type;
      h[4] = flags;
      h.writeUInt32BE(sid, 5);
      return Buffer.concat([h, payload]);
    };
    const lit = (n, v) => Buffer.concat([Buffer.from([0x00, n.length]), Buffer.from(n),
      Buffer.from([Buffer.byteLength(v)]), Buffer.from(v)]);
    const hpack = Buffer.concat([Buffer.from([0x88]) /* :status 200 */,
      lit('content-type', 'application/grpc'), lit('grpc-status', String(o.grpcStatus ?? 16)),
      lit('grpc-message', encodeURIComponent(o.message ?? 'refused'))]);
    let buf = Buffer.alloc(0);
    let preface = false;
    sock.write(frame(4, 0, 0, Buffer.alloc(0))); // our SETTINGS
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (!preface) {
        if (buf.length < 24) return;
        buf = buf.subarray(24);
        preface = true;
      }
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3);
        if (buf.length < 9 + len) break;
        const type = buf[3];
        const flags = buf[4];
        const sid = buf.readUInt32BE(5) & 0x7fffffff;
        buf = buf.subarray(9 + len);
        if (type === 4 && !(flags & 1)) sock.write(frame(4, 1, 0, Buffer.alloc(0)));
        if (type === 1) {
          this.calls.push({ t: Date.now(), mode: 'refuse-rst', path: null, headers: null, bytesIn: 0 });
          const rst = Buffer.alloc(4); // NO_ERROR
          sock.write(Buffer.concat([frame(1, 0x5, sid, hpack), frame(3, 0, sid, rst)]));
        }
      }
    });
  }

  onStream(stream, headers) {
    quiet(stream);
    const mode = this.current;
    const o = this.opts;
    const call = { t: Date.now(), mode, path: headers[':path'], headers, bytesIn: 0 };
    this.calls.push(call);
    let inbuf = Buffer.alloc(0);
    let firstLen = -1; // bytes of the call's first message (create/resume), prefix included
    const onFirstChunkBytes = (fn) => {
      stream.on('data', (d) => {
        if (firstLen >= 0 && call.bytesIn > firstLen) fn();
      });
    };
    stream.on('data', (d) => {
      call.bytesIn += d.length;
      if (firstLen < 0) {
        inbuf = Buffer.concat([inbuf, d]);
        if (inbuf.length >= 5) firstLen = 5 + inbuf.readUInt32BE(1);
      }
    });
    const grpcHeaders = { ':status': 200, 'content-type': 'application/grpc' };
    const ok = () => !stream.destroyed && !stream.closed;
    switch (mode) {
      case 'status': {
        const trailers = { 'grpc-status': String(o.grpcStatus ?? 14) };
        if (o.message) trailers['grpc-message'] = encodeURIComponent(o.message);
        if (o.pushbackMs !== undefined) trailers['grpc-retry-pushback-ms'] = String(o.pushbackMs);
        if (o.trailersOnly) {
          stream.respond({ ...grpcHeaders, ...trailers }, { endStream: true });
          return;
        }
        stream.respond(grpcHeaders, { waitForTrailers: true });
        stream.on('wantTrailers', () => {
          stream.sendTrailers(trailers);
          // as gRPC servers do when the client has not half-closed (RFC 9113 §8.1):
          // without it libcurl 7.88 holds the trailers until the ack timeout
          if (o.rstAfter !== false) setTimeout(() => ok() && stream.close(NGHTTP2_NO_ERROR), 20);
        });
        stream.once('data', () => {
          if (!ok()) return;
          if (o.resumeFirst) stream.write(grpcFrame(pb.resume(undefined)));
          stream.end();
        });
        return;
      }
      case 'http-status':
        stream.respond({ ':status': o.status ?? 503, 'content-type': o.contentType ?? 'text/html' });
        stream.end(o.body ?? '<html><body>503 Service Unavailable</body></html>');
        return;
      case 'content-type':
        stream.respond({ ':status': 200, 'content-type': o.contentType ?? 'application/json' });
        stream.end(o.body ?? '{"error":"this is not gRPC"}');
        return;
      case 'garbage-msg':
        stream.respond(grpcHeaders);
        stream.write(grpcFrame([0xff, 0xff, 0xff, 0xff, 0x0f, 0x42]));
        return;
      case 'not-framing':
        stream.respond(grpcHeaders);
        stream.write('<html><body>502 Bad Gateway</body></html>');
        return;
      case 'resume-above':
        stream.respond(grpcHeaders);
        stream.once('data', () => ok() && stream.write(grpcFrame(pb.resume(o.offset ?? 1e9))));
        return;
      case 'ack-unsent': {
        stream.respond(grpcHeaders);
        stream.once('data', () => ok() && stream.write(grpcFrame(pb.resume(undefined))));
        let acked = false;
        onFirstChunkBytes(() => {
          if (acked || !ok()) return;
          acked = true;
          stream.write(grpcFrame(pb.ack(o.offset ?? 1e9)));
        });
        return;
      }
      case 'rst': {
        stream.respond(grpcHeaders);
        stream.once('data', () => ok() && stream.write(grpcFrame(pb.resume(undefined))));
        onFirstChunkBytes(() => ok() && stream.close(o.code ?? NGHTTP2_INTERNAL_ERROR));
        return;
      }
      case 'goaway': {
        stream.respond(grpcHeaders);
        stream.once('data', () => ok() && stream.write(grpcFrame(pb.resume(undefined))));
        let sent = false;
        onFirstChunkBytes(() => {
          if (sent) return;
          sent = true;
          const sess = stream.session;
          try {
            sess.goaway(o.code ?? NGHTTP2_NO_ERROR, o.lastStreamId === 'current' ? stream.id : 0);
          } catch {
            // session already gone
          }
          setTimeout(() => sess.destroyed || sess.destroy(), o.closeMs ?? 200);
        });
        return;
      }
      case 'relay':
        this.relay(stream, headers, o);
        return;
      default:
        stream.respond({ ':status': 500 });
        stream.end();
    }
  }

  // Forwards one call to the real server; injects a close_stream_signal after the first
  // answer message.
  relay(stream, headers, o) {
    const up = http2.connect(`http://${this.host}:${this.target}`);
    quiet(up);
    const fwd = {};
    for (const [k, v] of Object.entries(headers)) if (k !== ':scheme' && k !== ':authority') fwd[k] = v;
    const req = up.request(fwd, { endStream: false });
    quiet(req);
    let n = 0;
    if (o.health) {
      // the agent's health reports (field 1001) are kept in this.reports ({ t, frame,
      // afterOpen: the open was answered before it came, call: the call's number }), not
      // forwarded; every other message goes on to the server
      const call = this.calls.length;
      let reqPending = Buffer.alloc(0);
      stream.on('data', (d) => {
        const [frames, rest] = deframe(Buffer.concat([reqPending, d]));
        reqPending = rest;
        for (const f of frames) {
          const body = f[0] ? zstdDecompress(f.subarray(5)) : f.subarray(5);
          if (body[0] === 0xca && body[1] === 0x3e) {
            this.reports.push({ t: Date.now(), frame: Buffer.from(f), body, afterOpen: n > 0, call });
            continue;
          }
          req.write(f);
        }
      });
      stream.on('end', () => req.end());
    } else {
      stream.pipe(req);
    }
    let responded = false;
    let trailers = null;
    let pending = Buffer.alloc(0);
    req.on('response', (h) => {
      const out = {};
      for (const [k, v] of Object.entries(h)) if (!k.startsWith(':')) out[k] = v;
      if (o.health) out['runnel-health'] = '1';
      responded = true;
      stream.respond({ ':status': h[':status'], ...out }, { waitForTrailers: true });
    });
    req.on('data', (d) => {
      const [frames, rest] = deframe(Buffer.concat([pending, d]));
      pending = rest;
      for (const f of frames) {
        if (stream.destroyed) return;
        stream.write(f);
        if (++n === 1 && !o.health) stream.write(grpcFrame(pb.close(o.closeSecs ?? 2)));
      }
    });
    req.on('trailers', (t) => {
      trailers = {};
      for (const [k, v] of Object.entries(t)) if (!k.startsWith(':')) trailers[k] = v;
    });
    stream.on('wantTrailers', () => stream.sendTrailers(trailers || { 'grpc-status': '14', 'grpc-message': 'relay: upstream ended' }));
    req.on('end', () => {
      if (!stream.destroyed && responded) stream.end();
    });
    req.on('close', () => {
      up.close();
      if (!responded && !stream.destroyed) stream.close(NGHTTP2_INTERNAL_ERROR);
    });
    stream.on('close', () => {
      if (!req.destroyed) req.close(NGHTTP2_NO_ERROR);
      up.close();
    });
  }

  async stop() {
    this.dropAll();
    if (this.srv) await new Promise((r) => this.srv.close(() => r()));
  }
}
