// TCP proxies in front of an S3 endpoint (a throw-away RGW, lib/rgw.mjs) that break one
// exchange on purpose, for the S3 client's and the table store's fault tests. A request is
// recognised by its head (the first bytes of a connection's data: "PUT /bucket/key?...").
//
//   const p = await loseResponse(rgw.endpoint, (head) => head.startsWith('PUT '));
//   ... a client on p.endpoint: the store acts on its PUT, the client never hears so
//   p.lost(); p.close();
//
//   const h = await holdRequest(rgw.endpoint, (head) => head.startsWith('PUT '), { count: 2 });
//   ... clients on h.endpoint; await h.held;   // two PUTs are in flight, stuck mid-body
//   await rgw.kill('rgw'); h.release();        // the store died under them
import net from 'node:net';

// The first request whose head matches `match` is forwarded, and when the store answers (so
// it has acted on it) the client is cut off (hold: the answer is kept back and the client
// left waiting) instead of getting the answer; everything else passes (all: every matching
// request is treated so). The client sees a lost response to a request that took effect.
export async function loseResponse(endpoint, match, { hold = false, all = false } = {}) {
  const target = new URL(endpoint);
  let lost = 0;
  const socks = new Set();
  const server = net.createServer((c) => {
    const up = net.connect(Number(target.port), target.hostname);
    let cut = false;
    socks.add(c);
    c.on('data', (d) => {
      if ((all || !lost) && match(d.toString('latin1', 0, 300))) {
        lost++;
        cut = true;
      }
      up.write(d);
    });
    up.on('data', (d) => {
      if (!cut) c.write(d);
      else if (!hold) c.destroy();
    });
    c.on('error', () => up.destroy());
    up.on('error', () => c.destroy());
    c.on('close', () => { up.destroy(); socks.delete(c); });
    up.on('close', () => { if (!hold || !cut) c.destroy(); });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    endpoint: `http://127.0.0.1:${server.address().port}`,
    lost: () => lost,
    close: () => { for (const c of socks) c.destroy(); server.close(); },
  };
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
