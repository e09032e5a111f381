// The stream multiplexer (src/common/mux.ts) over an in-memory channel, and
// the agent's channel reconnecting over a real WebSocket.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { PassThrough, Duplex } from 'node:stream';
import { pino } from 'pino';
import { WebSocketServer } from 'ws';
import { Mux, type MuxOptions, type FrameSink } from '../../src/common/mux.ts';
import { StreamChannel } from '../../src/agent/stream.ts';

/** Two muxes joined by an in-memory channel; `hold` keeps frames (and their callbacks) until released, like a stalled network. */
function pair(server: Partial<MuxOptions> = {}, client: Partial<MuxOptions> = {}) {
  let held: Array<() => void> | null = null;
  const link = (to: () => Mux): FrameSink => ({
    send(frame, cb) {
      const deliver = () => setImmediate(() => {
        to().receive(frame);
        cb();
      });
      if (held) held.push(deliver);
      else deliver();
    },
  });
  const a: Mux = new Mux(link(() => b), { initiator: true, ...client });
  const b: Mux = new Mux(link(() => a), { initiator: false, ...server });
  return {
    a, b,
    hold() { held = []; },
    release() { const h = held ?? []; held = null; for (const d of h) d(); },
  };
}

/** A provider stream that echoes what it is written. */
const echo = async () => new PassThrough();

const readAll = (s: Duplex) => new Promise<Buffer>((resolve, reject) => {
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  s.on('end', () => resolve(Buffer.concat(chunks)));
  s.on('error', reject);
});

test('many streams at once carry their bytes intact, both ways', async () => {
  const { a } = pair({ onOpen: echo });
  const streams = await Promise.all(Array.from({ length: 40 }, (_, i) => a.open('echo', { i })));
  const sent = streams.map(() => randomBytes(100_000 + Math.floor(Math.random() * 300_000)));
  const got = streams.map((s) => readAll(s));
  streams.forEach((s, i) => s.end(sent[i]));
  const back = await Promise.all(got);
  back.forEach((b, i) => assert.ok(b.equals(sent[i]!), `stream ${i}`));
});

test('a stream nobody reads stops its sender at its window; the other streams keep flowing', async () => {
  const window = 64 * 1024;
  const { a } = pair({ window, onOpen: async (r) => {
    // the slow consumer takes nothing: its writes never complete
    if (r.name === 'slow') return new Duplex({ read() {}, write() {} });
    return new PassThrough();
  } }, { window });
  const slow = await a.open('slow');
  const big = randomBytes(4 * window);
  let finished = false;
  slow.write(big, () => (finished = true));
  const fast = await a.open('echo');
  const data = randomBytes(1_000_000);
  const got = readAll(fast);
  fast.end(data);
  assert.ok((await got).equals(data));
  assert.equal(finished, false, 'the slow stream is held at its window');
});

test('credit returns as the reader reads: a paused reader resumes and gets everything', async () => {
  const window = 32 * 1024;
  const { a } = pair({ window, onOpen: echo }, { window });
  const s = await a.open('echo');
  const data = randomBytes(10 * window);
  s.pause();
  const wrote = new Promise<void>((r) => s.end(data, r));
  await new Promise((r) => setTimeout(r, 50));
  assert.ok(s.readableLength <= window, `buffered ${s.readableLength} within the window`);
  const got = readAll(s);
  s.resume();
  assert.ok((await got).equals(data));
  await wrote;
});

test('writes wait while the channel is over its high-water mark, and go on once it drains', async () => {
  const p = pair({ onOpen: async () => new Duplex({ read() {}, write(_c, _e, cb) { cb(); } }) }, { highWater: 64 * 1024 });
  const s = await p.a.open('sink');
  p.hold();
  let done = false;
  s.write(randomBytes(200 * 1024), () => (done = true));
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(done, false);
  assert.ok(p.a.queuedBytes <= 64 * 1024 + 32 * 1024 + 5, `queued ${p.a.queuedBytes}`);
  p.release();
  while (!done) await new Promise((r) => setTimeout(r, 5));
});

test('refusals, errors and closes reach the other side', async () => {
  let served: Duplex | null = null;
  const { a, b } = pair({ onOpen: async (r) => {
    if (r.name === 'nope') throw new Error('no such console');
    served = new PassThrough();
    return served;
  } });
  await assert.rejects(a.open('nope'), /no such console/);
  // the provider fails: the opener's stream errors with its reason
  const s1 = await a.open('x');
  const err1 = new Promise<Error>((r) => s1.on('error', r));
  served!.destroy(new Error('console gone'));
  assert.match((await err1).message, /console gone/);
  // the opener goes away: the provider's stream is destroyed
  const s2 = await a.open('x');
  const p2 = served!;
  const closed = new Promise((r) => p2.on('close', r));
  s2.destroy();
  await closed;
  // half close: the opener ends its side, the provider still answers
  const s3 = await a.open('x');
  const got = readAll(s3);
  s3.end(Buffer.from('last words'));
  assert.equal((await got).toString(), 'last words');
  // the channel closes: every stream fails
  const s4 = await a.open('x');
  const err4 = new Promise<Error>((r) => s4.on('error', r));
  a.close();
  b.close();
  assert.match((await err4).message, /channel closed/);
  await assert.rejects(a.open('x'), /channel closed/);
  assert.equal(a.size, 0);
});

test('the agent channel sends its token and reopens after a drop', async () => {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise((r) => wss.once('listening', r));
  const port = (wss.address() as { port: number }).port;
  const seen: Array<{ url: string; token: unknown }> = [];
  wss.on('connection', (ws, req) => seen.push({ url: req.url ?? '', token: req.headers['x-stratus-agent-token'] }));
  const ch = new StreamChannel({ server: `http://127.0.0.1:${port}`, token: 't'.repeat(40), hostname: 'h1', log: pino({ level: 'silent' }), providers: {} });
  try {
    ch.start();
    await ch.waitOpen();
    assert.deepEqual(seen, [{ url: '/agent/v1/hosts/h1/stream', token: 't'.repeat(40) }]);
    const reopened = new Promise((r) => wss.once('connection', r));
    for (const c of wss.clients) c.terminate();
    await reopened;
    await ch.waitOpen();
    assert.equal(seen.length, 2);
  } finally {
    await ch.stop();
    await new Promise((r) => wss.close(r));
  }
});
