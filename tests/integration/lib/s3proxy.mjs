// TCP proxies in front of an S3 endpoint (a throw-away RGW, lib/rgw.mjs) that break one
// exchange on purpose, for the S3 client's and the table store's fault tests. A request is
// recognised by its head (the first bytes of a connection's data: "PUT /bucket/key?...").
//
//   const p = await loseResponse(rgw.endpoint, (head) => head.startsWith('PUT '));
//   ... a client on p.endpoint: the store acts on its PUT, the client never hears so
//   p.lost(); p.close();
//
//   const s = await loseResponse(rgw.endpoint, (head) => isCommit(head), { all: true, delayMs: 20 });
//   ... every answer 20 ms late, and those of the requests match picks lost (match may keep
//   state: lose every 5th, or every attempt at one key); slowStore(endpoint, ms) loses none
//
//   const h = await holdRequest(rgw.endpoint, (head) => head.startsWith('PUT '), { count: 2 });
//   ... clients on h.endpoint; await h.held;   // two PUTs are in flight, stuck mid-body
//   await rgw.kill('rgw'); h.release();        // the store died under them
import net from 'node:net';

// The first request whose head matches `match` is forwarded, and when the store answers (so
// it has acted on it) the client is cut off (hold: the answer is kept back and the client
// left waiting) instead of getting the answer; everything else passes (all: every matching
// request is treated so). The client sees a lost response to a request that took effect.
// delayMs: every piece of every answer (and the store's closing of a connection) reaches
// the client that much later, in order: a slow store (the request itself goes at once).
export async function loseResponse(endpoint, match, { hold = false, all = false, delayMs = 0 } = {}) {
  const target = new URL(endpoint);
  let lost = 0;
  const socks = new Set();
  const server = net.createServer((c) => {
    const up = net.connect(Number(target.port), target.hostname);
    let cut = false;
    // no Nagle: an answer's pieces, sent apart when delayed, would each wait for an ACK
    c.setNoDelay(true);
    up.setNoDelay(true);
    socks.add(c);
    c.on('data', (d) => {
      if ((all || !lost) && match(d.toString('latin1', 0, 300))) {
        lost++;
        cut = true;
      }
      up.write(d);
    });
    // timers of one duration fire in the order they were set: pieces keep their order
    const later = (fn) => (delayMs > 0 ? setTimeout(fn, delayMs) : fn());
    up.on('data', (d) => later(() => {
      if (!cut) c.write(d);
      else if (!hold) c.destroy();
    }));
    c.on('error', () => up.destroy());
    up.on('error', () => later(() => c.destroy()));
    c.on('close', () => { up.destroy(); socks.delete(c); });
    up.on('close', () => later(() => { if (!hold || !cut) c.destroy(); }));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    endpoint: `http://127.0.0.1:${server.address().port}`,
    lost: () => lost,
    close: () => { for (const c of socks) c.destroy(); server.close(); },
  };
}

// A store whose every answer comes delayMs late (loseResponse losing nothing).
export function slowStore(endpoint, delayMs) {
  return loseResponse(endpoint, () => false, { delayMs });
}

// The first `count` requests whose head matches `match` are stopped after the piece holding
// the head (and the start of the body) reached the store: the proxy stops reading from those
// clients, so each request stays in flight, half sent, until release(). `held` resolves once
// `count` requests are held. Everything else passes; when the store goes away the clients'
// connections are closed, and new connections are closed at once while it stays away.
export async function holdRequest(endpoint, match, { count = 1 } = {}) {
  const target = new URL(endpoint);
  const paused = [];
  const socks = new Set();
  let onHeld;
  const held = new Promise((r) => { onHeld = r; });
  const server = net.createServer((c) => {
    const up = net.connect(Number(target.port), target.hostname);
    socks.add(c);
    c.on('data', (d) => {
      const hit = paused.length < count && match(d.toString('latin1', 0, 300));
      up.write(d);
      if (hit) {
        c.pause();
        paused.push(c);
        if (paused.length === count) onHeld();
      }
    });
    up.on('data', (d) => c.write(d));
    c.on('error', () => up.destroy());
    up.on('error', () => c.destroy());
    c.on('close', () => { up.destroy(); socks.delete(c); });
    up.on('close', () => c.destroy());
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    endpoint: `http://127.0.0.1:${server.address().port}`,
    held,
    release: () => { for (const c of paused) c.resume(); },
    close: () => { for (const c of socks) c.destroy(); server.close(); },
  };
}

// A store that refuses some requests on demand: while refuse(head) (set with p.refuse(fn);
// null = none) is true for a request's head, the request is not forwarded and the client
// gets `503 Service Unavailable` and the connection's end; everything else passes.
// p.refused() counts the requests refused so.
export async function refuseRequests(endpoint) {
  const target = new URL(endpoint);
  let refuse = null;
  let refused = 0;
  const socks = new Set();
  const server = net.createServer((c) => {
    const up = net.connect(Number(target.port), target.hostname);
    c.setNoDelay(true);
    up.setNoDelay(true);
    socks.add(c);
    c.on('data', (d) => {
      if (refuse && refuse(d.toString('latin1', 0, 300))) {
        refused++;
        up.destroy();
        c.end('HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
        return;
      }
      up.write(d);
    });
    up.on('data', (d) => c.write(d));
    c.on('error', () => up.destroy());
    up.on('error', () => c.destroy());
    c.on('close', () => { up.destroy(); socks.delete(c); });
    up.on('close', () => c.end());
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    endpoint: `http://127.0.0.1:${server.address().port}`,
    refuse: (fn) => { refuse = fn; },
    refused: () => refused,
    close: () => { for (const c of socks) c.destroy(); server.close(); },
  };
}
