// Self-test of the fault proxy (lib/proxy.mjs) against a local echo server: delay, loss
// (late, never reordered), throttle, cut/heal and blackhole/heal behave as the fault suite
// assumes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Proxy } from './lib/proxy.mjs';
import { sleep, waitFor } from './lib/harness.mjs';

async function echoServer() {
  const socks = new Set();
  const srv = net.createServer((s) => {
    socks.add(s);
    s.on('error', () => {});
    s.on('close', () => socks.delete(s));
    s.pipe(s);
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  return { port: srv.address().port, socks,
    close: () => new Promise((r) => { for (const s of socks) s.destroy(); srv.close(r); }) };
}

// A client that collects everything it receives and remembers whether it was closed.
function client(port, allowReset = false) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    const c = { s, got: Buffer.alloc(0), closed: false };
    s.on('data', (d) => (c.got = Buffer.concat([c.got, d])));
    s.on('close', () => (c.closed = true));
    s.on('error', () => {});
    s.on('connect', () => resolve(c));
    // a refused connection may be reset before connect completes
    s.on('error', (e) => (allowReset ? resolve(Object.assign(c, { closed: true, error: e })) : reject(e)));
  });
}

async function withProxy(seed, fn) {
  const echo = await echoServer();
  const p = await new Proxy({ target: echo.port, host: '127.0.0.1', seed }).start();
  try {
    await fn(p, echo);
  } finally {
    await p.stop();
    await echo.close();
  }
}

test('clean link: bytes pass unchanged, both directions counted', async () => {
  await withProxy(1, async (p) => {
    const c = await client(p.port);
    const data = Buffer.alloc(300000);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
    c.s.write(data);
    await waitFor(() => c.got.length >= data.length, { timeoutMs: 5000, what: 'echo' });
    assert.ok(c.got.equals(data));
    const st = p.stats();
    assert.equal(st.connections, 1);
    assert.equal(st.bytesUp, data.length);
    assert.equal(st.bytesDown, data.length);
    c.s.destroy();
  });
});

test('delay: one-way delay each direction, RTT about twice it', async () => {
  await withProxy(2, async (p) => {
    p.set({ delayMs: 150 });
    const c = await client(p.port);
    const t0 = Date.now();
    c.s.write('ping');
    await waitFor(() => c.got.length >= 4, { timeoutMs: 5000, intervalMs: 5, what: 'echo' });
    const rtt = Date.now() - t0;
    assert.ok(rtt >= 295 && rtt < 1500, `rtt ${rtt} ms for delay 150`);
    c.s.destroy();
  });
});

test('loss: lost pieces arrive one RTO late and nothing is ever reordered', async () => {
  await withProxy(3, async (p) => {
    p.set({ delayMs: 20, lossPct: 30 });
    const c = await client(p.port);
    const N = 150;
    const want = [];
    const t0 = Date.now();
    for (let i = 0; i < N; i++) {
      const m = `<${i}>`;
      want.push(m);
      c.s.write(m);
      await sleep(3); // separate pieces
    }
    const all = want.join('');
    await waitFor(() => c.got.length >= all.length, { timeoutMs: 20000, what: 'all echoed' });
    const took = Date.now() - t0;
    assert.equal(c.got.toString(), all, 'order and content kept');
    const st = p.stats();
    assert.ok(st.lostUp + st.lostDown > 10, `losses happened: ${JSON.stringify(st)}`);
    // at least one RTO (200 ms at this RTT) was paid
    assert.ok(took >= 200 + 40, `took ${took} ms`);
    c.s.destroy();
  });
});

test('loss is deterministic for a seed', async () => {
  const run = async () => {
    let lost;
    await withProxy(77, async (p) => {
      p.set({ lossPct: 50 });
      const c = await client(p.port);
      for (let i = 0; i < 20; i++) {
        c.s.write(`m${i};`);
        await sleep(5);
      }
      await waitFor(() => c.got.toString().includes('m19;'), { timeoutMs: 20000, what: 'echo' });
      lost = p.stats().lostUp;
      c.s.destroy();
    });
    return lost;
  };
  // the number of pieces can differ if the kernel coalesces writes, so compare loosely
  const a = await run();
  const b = await run();
  assert.ok(a > 0 && b > 0);
  assert.ok(Math.abs(a - b) <= 3, `${a} vs ${b}`);
});

test('throttle: bytesPerSec limits each direction', async () => {
  await withProxy(4, async (p) => {
    p.set({ bytesPerSec: 200000 });
    const c = await client(p.port);
    const data = Buffer.alloc(200000, 0x61);
    const t0 = Date.now();
    c.s.write(data);
    await waitFor(() => c.got.length >= data.length, { timeoutMs: 10000, intervalMs: 10, what: 'echo' });
    const took = Date.now() - t0;
    // 1 s up; down is pipelined behind it
    assert.ok(took >= 900 && took < 4000, `200 kB at 200 kB/s took ${took} ms`);
    c.s.destroy();
  });
});

test('cut: connections die and new ones are refused until heal', async () => {
  await withProxy(5, async (p) => {
    const c = await client(p.port);
    c.s.write('a');
    await waitFor(() => c.got.length === 1, { what: 'echo before the cut' });
    p.cut();
    await waitFor(() => c.closed, { timeoutMs: 2000, what: 'existing connection closed' });
    const d = await client(p.port, true); // the listener accepts, then resets at once
    if (!d.closed) d.s.write('b');
    await waitFor(() => d.closed, { timeoutMs: 2000, what: 'new connection closed' });
    assert.equal(d.got.length, 0);
    assert.ok(p.stats().refused >= 1);
    p.heal();
    const e = await client(p.port);
    e.s.write('hello');
    await waitFor(() => e.got.toString() === 'hello', { timeoutMs: 2000, what: 'echo after heal' });
    e.s.destroy();
  });
});

test('blackhole: connections stay open, nothing moves until heal, then it flows', async () => {
  await withProxy(6, async (p) => {
    const c = await client(p.port);
    c.s.write('x');
    await waitFor(() => c.got.length === 1, { what: 'echo before' });
    p.blackhole();
    c.s.write('yz');
    const n = await client(p.port); // accepted while blackholed
    n.s.write('new');
    await sleep(500);
    assert.equal(c.got.toString(), 'x', 'nothing delivered');
    assert.equal(n.got.length, 0);
    assert.equal(c.closed, false);
    assert.equal(n.closed, false);
    p.heal();
    await waitFor(() => c.got.toString() === 'xyz', { timeoutMs: 2000, what: 'queued data after heal' });
    await waitFor(() => n.got.toString() === 'new', { timeoutMs: 2000, what: 'new connection after heal' });
    c.s.destroy();
    n.s.destroy();
  });
});
