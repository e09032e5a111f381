// The serial console of a real container (root, real runc): the console URL
// through the compute API, the WebSocket on the server's public port, bridged
// through the in-process agent's stream channel to the container's console:
// its output (history first), and a command typed into the shell the busybox
// init runs on the console input, answered on the console.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { skipUnlessRoot, sleep, startPlane } from './lib.ts';

test('serial console of a busybox container: see its output, type a command, read the answer', { skip: skipUnlessRoot, timeout: 90_000 }, async () => {
  const plane = await startPlane({ agent: 'inproc' });
  try {
    const id = await plane.createServer({ name: 'console' });
    await plane.waitStatus(id, ['ACTIVE']);
    const r = await plane.api('POST', `/compute/v2.1/servers/${id}/remote-consoles`, { remote_console: { protocol: 'serial', type: 'serial' } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const url: string = r.body.remote_console.url;
    assert.match(url, new RegExp(`^ws://127\\.0\\.0\\.1:${plane.port}/compute/serial-console\\?token=`));
    // the agent's channel may still be opening: a 409 until it is
    let ws: WebSocket | null = null;
    let text = '';
    const waiters: Array<() => void> = [];
    for (let i = 0; i < 100 && !ws; i++) {
      const got = await new Promise<WebSocket | number>((resolve, reject) => {
        const s = new WebSocket(url, ['binary']);
        s.on('message', (d: Buffer) => {
          text += d.toString('utf8');
          for (const w of waiters.splice(0)) w();
        });
        s.on('open', () => resolve(s));
        s.on('unexpected-response', (_q, res) => resolve(res.statusCode ?? 0));
        s.on('error', reject);
      });
      if (typeof got === 'number') {
        assert.equal(got, 409);
        await sleep(100);
      } else ws = got;
    }
    assert.ok(ws, 'the console WebSocket opened');
    const until = async (want: string) => {
      const t = setTimeout(() => console.error(`still waiting for ${want}; console so far:\n${text}`), 20_000);
      while (!text.includes(want)) await new Promise<void>((res) => waiters.push(res));
      clearTimeout(t);
    };
    // history: the init's banner, printed before we connected
    await until('is up');
    ws.send(Buffer.from('echo "answer-$((6*7))"; cat /mnt/config/openstack/latest/meta_data.json\n'));
    await until('answer-42');
    await until(`"uuid":"${id}"`);
    ws.close();
    await new Promise((res) => ws!.once('close', res));
    // the console is the container's log too
    const out = await plane.api('POST', `/compute/v2.1/servers/${id}/action`, { 'os-getConsoleOutput': {} });
    assert.match(out.body.output, /answer-42/);
    await plane.api('DELETE', `/compute/v2.1/servers/${id}`);
    await plane.waitGone(id);
  } finally {
    await plane.cleanup();
  }
});
