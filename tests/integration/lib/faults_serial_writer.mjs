// Child process of the fault suite's SerialProducer: writes numbered lines "S <n> <pad>\n"
// at RATE lines/s into the pty PEER with blocking writes (a stopped agent makes them wait:
// that is the point of running here and not on the test's event loop). Reports
// "P <produced> <epoch ms>" after each batch; when stdin closes it finishes and prints
// "DONE <produced>".
// usage: node faults_serial_writer.mjs PEER RATE
import fs from 'node:fs';

const [peer, rateArg] = process.argv.slice(2);
const rate = Number(rateArg);
const fd = fs.openSync(peer, fs.constants.O_WRONLY | fs.constants.O_NOCTTY);
let seq = 0;
let stop = false;
process.stdin.on('data', () => {});
process.stdin.on('end', () => (stop = true));
process.stdin.on('error', () => (stop = true));

const pad = (n) => 'x'.repeat(20 + (n % 37));
const t0 = Date.now();

function writeAll(buf) {
  for (let off = 0; off < buf.length;) {
    try {
      off += fs.writeSync(fd, buf, off);
    } catch (e) {
      if (e.code !== 'EAGAIN') throw e;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
    }
  }
}

function tick() {
  if (stop) {
    process.stdout.write(`DONE ${seq}\n`, () => process.exit(0));
    return;
  }
  const now = Date.now();
  const want = Math.floor(((now - t0) * rate) / 1000);
  if (want > seq) {
    let s = '';
    for (let n = seq; n < want; n++) s += `S ${n} ${pad(n)}\n`;
    writeAll(Buffer.from(s));
    seq = want;
    // the production time of the batch is when it was made, not when the write returned
    process.stdout.write(`P ${seq} ${now}\n`);
  }
  setTimeout(tick, 20);
}
tick();
