// Hand-built HTTP/2 frames for tests that must send what no real client sends: frames
// out of order, header blocks never finished, header names in upper case. HPACK only as
// literals without indexing (no Huffman), which every decoder accepts.
export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
export const T = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 };
export const END_STREAM = 1;
export const END_HEADERS = 4;

export function frame(type, flags, sid, payload = Buffer.alloc(0)) {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(sid, 5);
  return Buffer.concat([h, payload]);
}

export function hpackInt(v, bits) {
  const max = (1 << bits) - 1;
  if (v < max) return [v];
  const out = [max];
  for (v -= max; v >= 128; v = Math.floor(v / 128)) out.push((v % 128) + 128);
  out.push(v);
  return out;
}

export function literal(name, value) {
  const n = Buffer.from(name);
  const v = Buffer.from(value);
  return Buffer.concat([Buffer.from([0, ...hpackInt(n.length, 7)]), n, Buffer.from(hpackInt(v.length, 7)), v]);
}

export function requestBlock(extra = {}) {
  const h = { ':method': 'POST', ':scheme': 'http', ':path': '/databricks.zerobus.Zerobus/EphemeralStream',
    ':authority': 'localhost', 'content-type': 'application/grpc', te: 'trailers', ...extra };
  return Buffer.concat(Object.entries(h).map(([k, v]) => literal(k, v)));
}


// The frames `sock` receives, parsed as they come: an array that grows with one
// {type, flags, sid, payload, read, at} per frame (read: the number of the 'data' event that
// completed it, at: Date.now() then), so a test can tell frames sent together from later ones.
export function readFrames(sock) {
  const frames = [];
  let buf = Buffer.alloc(0);
  let reads = 0;
  sock.on('data', (d) => {
    reads++;
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 9 && buf.length >= 9 + buf.readUIntBE(0, 3)) {
      const len = buf.readUIntBE(0, 3);
      frames.push({ type: buf[3], flags: buf[4], sid: buf.readUInt32BE(5) & 0x7fffffff,
        payload: Buffer.from(buf.subarray(9, 9 + len)), read: reads, at: Date.now() });
      buf = buf.subarray(9 + len);
    }
  });
  return frames;
}
