// A mixed soak over HTTPS with HTTP/2 (issue 28), with Node's own HTTP/2 client: workers read
// Thing Descriptions and properties, write a property, run an action and fetch its output,
// watch the stream a few frames at a time and subscribe to property changes, all at once on a
// few connections, for a while. Passes when no operation fails (no 5xx, no error, no
// timeout) and the server's open file descriptors and threads are as many at the end as after
// the warm-up: nothing leaks.
//
//   node soak.mjs <https base> <cert.pem> <server pid> [seconds]
import fs from 'node:fs';
import http2 from 'node:http2';

const [base, certFile, pidText, secondsText] = process.argv.slice(2);
const pid = Number(pidText);
const seconds = Number(secondsText ?? 60);
const ca = fs.readFileSync(certFile);
const SESSIONS = 3;
const WORKERS = 8;
const TIMEOUT_MS = 30_000;

const fds = () => fs.readdirSync(`/proc/${pid}/fd`).length;
const status = (field) => {
  const line = fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith(`${field}:`));
  return Number(line.split(/\s+/)[1]);
};
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

class Tally {
  constructor() { this.done = 0; this.errors = []; }
  expect(what, got, ...statuses) {
    if (statuses.includes(got)) this.done += 1;
    else this.errors.push(`${what}: ${got}`);
  }
}

/** One request, its whole answer read: {status, headers, body}. */
function request(session, path, { method = 'GET', body } = {}) {
  return new Promise((resolve, reject) => {
    const headers = { ':path': new URL(path, base).pathname + new URL(path, base).search, ':method': method };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const stream = session.request(headers);
    const timer = setTimeout(() => { stream.close(http2.constants.NGHTTP2_CANCEL); reject(new Error(`timeout ${method} ${path}`)); }, TIMEOUT_MS);
    let answer = {};
    const chunks = [];
    stream.on('response', (h) => { answer = { status: h[':status'], headers: h }; });
    stream.on('data', (chunk) => chunks.push(chunk));
    stream.on('end', () => { clearTimeout(timer); resolve({ ...answer, body: Buffer.concat(chunks) }); });
    stream.on('error', (error) => { clearTimeout(timer); reject(error); });
    stream.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/** A long-lived response read until `enough(text so far)`, then cancelled (RST_STREAM). */
function partly(session, path, enough, started = () => {}) {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':path': path });
    const timer = setTimeout(() => { stream.close(http2.constants.NGHTTP2_CANCEL); reject(new Error(`timeout ${path}`)); }, TIMEOUT_MS);
    let seen = '';
    let code = 0;
    let finished = false;
    const finish = (result) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      stream.close(http2.constants.NGHTTP2_CANCEL);
      resolve(result);
    };
    stream.on('response', (h) => { code = h[':status']; if (code !== 200) finish(code); else started(); });
    stream.on('data', (chunk) => { seen += chunk.toString('latin1'); if (enough(seen)) setImmediate(() => finish(code || 'data but no answer')); });
    stream.on('end', () => finish(code || `ended before an answer (RST_STREAM ${stream.rstCode})`));
    stream.on('close', () => finish(code || `closed before an answer (RST_STREAM ${stream.rstCode})`));
    stream.on('error', (error) => { if (!finished) { finished = true; clearTimeout(timer); reject(error); } });
  });
}

const steps = {
  async reads(session, tally) {
    for (const path of ['/things/', '/camera/', '/stage/', '/camera/gain', '/stage/position']) {
      tally.expect(`GET ${path}`, (await request(session, base + path)).status, 200);
    }
  },
  async write(session, tally, n) {
    const answer = await request(session, `${base}/camera/gain`, { method: 'PUT', body: 1 + (n % 5) / 10 });
    tally.expect('PUT /camera/gain', answer.status, 200, 201, 204);
  },
  async capture(session, tally) {
    const answer = await request(session, `${base}/camera/capture?wait=30`, { method: 'POST' });
    tally.expect('POST /camera/capture', answer.status, 200);
    const invocation = JSON.parse(answer.body.toString());
    const output = await request(session, invocation.output.href);
    tally.expect('GET capture output', output.status, 200);
  },
  async watch(session, tally) {
    const code = await partly(session, `${new URL(base).pathname.replace(/\/$/, '')}/camera/mjpeg_stream`,
      (text) => text.split('--frame').length > 3);
    tally.expect('GET /camera/mjpeg_stream', code, 200);
  },
  async observe(session, tally, n) {
    const path = `${new URL(base).pathname.replace(/\/$/, '')}/camera/gain/observe`;
    const code = await partly(session, path, (text) => text.includes('data:'),
      () => { steps.write(session, tally, n + 1).catch((error) => tally.errors.push(`write: ${error}`)); });
    tally.expect('GET /camera/gain/observe', code, 200);
  },
};

async function run(durationSeconds, tally) {
  const sessions = Array.from({ length: SESSIONS }, () => http2.connect(base, { ca }));
  for (const session of sessions) session.on('error', (error) => tally.errors.push(`session: ${error}`));
  const until = Date.now() + durationSeconds * 1000;
  const names = Object.keys(steps);
  await Promise.all(Array.from({ length: WORKERS }, async (_, index) => {
    let n = index;
    while (Date.now() < until) {
      const name = names[n % names.length];
      try {
        await steps[name](sessions[n % SESSIONS], tally, n);
      } catch (error) {
        tally.errors.push(`${name}: ${error.message ?? error}`);
      }
      n += 1;
    }
  }));
  await Promise.all(sessions.map((session) => new Promise((resolve) => session.close(resolve))));
}

const warm = new Tally();
await run(Math.min(10, seconds / 4), warm);
// Connections the warm-up opened are closed; idle blocking threads retire (after 10 s).
await sleep(12_000);
const before = { fds: fds(), threads: status('Threads'), rss: status('VmRSS') };
const tally = new Tally();
const started = Date.now();
await run(seconds, tally);
const elapsed = (Date.now() - started) / 1000;
await sleep(12_000);
const after = { fds: fds(), threads: status('Threads'), rss: status('VmRSS') };
console.log(`soak over HTTPS/HTTP/2: ${tally.done} operations in ${elapsed.toFixed(0)} s, `
  + `${tally.errors.length} errors; fds ${before.fds} -> ${after.fds}, threads ${before.threads} -> ${after.threads}, `
  + `RSS ${Math.round(before.rss / 1024)} -> ${Math.round(after.rss / 1024)} MB`);
const failures = [];
const errors = warm.errors.concat(tally.errors);
if (errors.length) failures.push(`errors: ${errors.slice(0, 20).join('; ')}`);
// Flat: a few descriptors of slack (a connection closing as the count is taken).
if (after.fds > before.fds + 4) failures.push(`file descriptors grew: ${before.fds} -> ${after.fds}`);
if (after.threads > before.threads + 2) failures.push(`threads grew: ${before.threads} -> ${after.threads}`);
if (tally.done < 100) failures.push(`only ${tally.done} operations`);
if (failures.length) {
  for (const failure of failures) console.log(`FAILED  ${failure}`);
  process.exit(1);
}
console.log('ok      the HTTPS soak: no error, file descriptors and threads flat');
