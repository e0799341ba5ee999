// Hand-built HTTP/2 frames for tests that must send what no real client sends: frames
// out of order, header blocks never finished, header names in upper case. HPACK only as
// literals without indexing (no Huffman), which every decoder accepts.
export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
export const T = { DATA: 0, HEADERS: 1, SETTINGS: 4, PING: 6, CONTINUATION: 9 };
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

