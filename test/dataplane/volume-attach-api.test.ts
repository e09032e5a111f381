// A volume attached to a running container through the APIs (Nova's
// os-volume_attachments, Cinder's attachment flow, the volume host's export,
// the server spec's `volumes`) against an in-process server and a real agent
// with runc and the file volume backend: the container gets the block device
// node at the device Nova shows, writes to it, and the detach takes the node
// and the loop device away, leaving the volume available with the data in
// its file. Everything goes with the plane.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../src/agent/exec.ts';
import { loopDevices } from '../../src/agent/drivers/volume-attach.ts';
import { skipUnlessRoot, sleep, startPlane, type Plane } from './lib.ts';

let plane: Plane;
before(async () => {
  if (skipUnlessRoot) return;
  plane = await startPlane({ agent: 'inproc', volume: true });
});
after(async () => {
  await plane?.cleanup();
});

const cinder = (method: string, path: string, body?: unknown) => plane.api(method, `/volume/v3${path}`, body, { 'OpenStack-API-Version': 'volume 3.64' });
const nova = (method: string, path: string, body?: unknown) => plane.api(method, `/compute/v2.1${path}`, body, { 'OpenStack-API-Version': 'compute 2.79' });

async function waitVolume(id: string, statuses: string[], timeoutMs = 90_000): Promise<any> {
  const until = Date.now() + timeoutMs;
  let last: any;
  while (Date.now() < until) {
    last = (await cinder('GET', `/volumes/${id}`)).body.volume;
    if (statuses.includes(last?.status)) return last;
    await sleep(200);
  }
  throw new Error(`volume ${id} did not reach ${statuses.join('/')}: ${JSON.stringify(last)}`);
}

const volumeLoops = async () => (await loopDevices()).filter((l) => l.back.startsWith(join(plane.stateDir, 'volumes', 'volumes')));

test('a volume attached to a running container through the APIs is its block device; detached, the node and loop device go, the data stays', { skip: skipUnlessRoot, timeout: 240_000 }, async () => {
  const v = await cinder('POST', '/volumes', { volume: { size: 1, name: 'va-api' } });
  assert.equal(v.status, 202, JSON.stringify(v.body));
  const volId = v.body.volume.id as string;
  await waitVolume(volId, ['available']);
  const id = await plane.createServer({ name: 'va-api' });
  await plane.waitStatus(id, ['ACTIVE']);

  const a = await nova('POST', `/servers/${id}/os-volume_attachments`, { volumeAttachment: { volumeId: volId } });
  assert.equal(a.status, 200, JSON.stringify(a.body));
  const device = a.body.volumeAttachment.device as string;
  assert.match(device, /^\/dev\/vd[b-z]$/);
  await waitVolume(volId, ['in-use']);
  const runc = (args: string[]) => run('runc', ['--root', join(plane.stateDir, 'runc'), 'exec', id, ...args], { timeoutMs: 60_000 });
  // the node is there once the agent converged the server's new version
  const until = Date.now() + 60_000;
  while ((await runc(['test', '-b', device])).code !== 0) {
    if (Date.now() > until) assert.fail(`no block device ${device} in the container`);
    await sleep(250);
  }
  assert.equal((await volumeLoops()).length, 1, 'one loop device over the volume\'s file');
  const w = await runc(['sh', '-c', `head -c 65536 /dev/urandom > /tmp/x && dd if=/tmp/x of=${device} bs=65536 conv=fsync 2>/dev/null && sha256sum /tmp/x`]);
  assert.equal(w.code, 0, w.stderr);
  const sum = w.stdout.split(' ')[0]!;

  const d = await nova('DELETE', `/servers/${id}/os-volume_attachments/${volId}`);
  assert.equal(d.status, 202, JSON.stringify(d.body));
  await waitVolume(volId, ['available']);
  assert.notEqual((await runc(['test', '-e', device])).code, 0, 'the node is gone');
  assert.deepEqual(await volumeLoops(), [], 'the loop device is gone');
  const file = join(plane.stateDir, 'volumes', 'volumes', `${volId}.raw`);
  const fh = await fsp.open(file, 'r');
  try {
    const buf = Buffer.alloc(65536);
    await fh.read(buf, 0, 65536, 0);
    assert.equal(createHash('sha256').update(buf).digest('hex'), sum, 'the data is in the volume\'s file');
  } finally {
    await fh.close();
  }
  assert.equal((await nova('DELETE', `/servers/${id}`)).status, 204);
  await plane.waitGone(id);
  assert.equal((await cinder('DELETE', `/volumes/${volId}`)).status, 202);
});
