// Volumes from and to Glance images through the Cinder API against an
// in-process server and a real agent (file backend, loop-mounted btrfs pool):
// a volume made from a raw image and one from a qcow2 image hold the image's
// data (checksums compared), grown to the volume's size; a qcow2 naming a
// backing file of its own is refused (the volume `error`, with Cinder's
// message); a volume uploaded to a qcow2 image gives an image holding its data.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runOk } from '../../src/agent/exec.ts';
import { skipUnlessRoot, sleep, startPlane, type Plane } from './lib.ts';

let plane: Plane;
let pool = '';
let work = '';

before(async () => {
  if (skipUnlessRoot) return;
  plane = await startPlane({ agent: 'inproc', volume: true });
  pool = join(plane.stateDir, 'volumes');
  work = await fsp.mkdtemp(join(tmpdir(), `stratus-volimg-${process.pid}-`));
});
after(async () => {
  if (work) await fsp.rm(work, { recursive: true, force: true });
  if (plane) await plane.cleanup();
});

const api = (method: string, path: string, body?: unknown) => plane.api(method, `/volume/v3${path}`, body, { 'OpenStack-API-Version': 'volume 3.64' });

async function waitVolume(id: string, statuses: string[], timeoutMs = 60_000): Promise<any> {
  const until = Date.now() + timeoutMs;
  let last: any;
  while (Date.now() < until) {
    const r = await api('GET', `/volumes/${id}`);
    last = r.status === 404 ? { status: 'gone' } : r.body.volume;
    if (statuses.includes(last.status)) return last;
    await sleep(100);
  }
  throw new Error(`volume ${id} did not reach ${statuses.join('/')}: ${JSON.stringify(last)}`);
}

async function image(name: string, diskFormat: string, file: string): Promise<string> {
  const r = await plane.api('POST', '/image/v2/images', { name, container_format: 'bare', disk_format: diskFormat, visibility: 'public' });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  const up = await fetch(`${plane.cloud.url}/image/v2/images/${r.body.id}/file`, {
    method: 'PUT', headers: { 'x-auth-token': plane.token, 'content-type': 'application/octet-stream' }, body: new Uint8Array(await fsp.readFile(file)),
  });
  assert.equal(up.status, 204, await up.text());
  return r.body.id as string;
}

/** sha256 of the first `mib` MiB of a disk file read as `format`. */
async function head(path: string, format: string, mib = 4): Promise<string> {
  const out = join(work, `head-${Math.random().toString(36).slice(2)}`);
  try {
    await runOk('qemu-img', ['dd', '-U', '-f', format, '-O', 'raw', 'bs=1M', `count=${mib}`, `if=${path}`, `of=${out}`]);
    return createHash('sha256').update(await fsp.readFile(out)).digest('hex');
  } finally {
    await fsp.rm(out, { force: true });
  }
}

const volumeFile = (id: string) => join(pool, 'volumes', `${id}.raw`);

test('volumes from a raw and a qcow2 image hold their data; a qcow2 with a backing file is refused; a volume uploaded to an image', { skip: skipUnlessRoot }, async () => {
  // a 4 MiB raw disk with a pattern, and the same as qcow2
  const raw = join(work, 'disk.raw');
  await runOk('qemu-img', ['create', '-q', '-f', 'raw', raw, '4M']);
  await runOk('qemu-io', ['-f', 'raw', '-c', 'write -P 0x5a 0 1M', '-c', 'write -P 0xa5 3M 512k', raw]);
  const qcow2 = join(work, 'disk.qcow2');
  await runOk('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', raw, qcow2]);
  const sum = await head(raw, 'raw');
  const rawImage = await image('dp-raw', 'raw', raw);
  const qcowImage = await image('dp-qcow2', 'qcow2', qcow2);
  // a qcow2 naming a host file as its backing file
  const evil = join(work, 'evil.qcow2');
  await runOk('qemu-img', ['create', '-q', '-f', 'qcow2', '-u', '-b', '/etc/shadow', '-F', 'raw', evil, '4M']);
  const evilImage = await image('dp-evil', 'qcow2', evil);

  const made: string[] = [];
  for (const img of [rawImage, qcowImage]) {
    const c = await api('POST', '/volumes', { volume: { size: 1, imageRef: img } });
    assert.equal(c.status, 202, JSON.stringify(c.body));
    const v = await waitVolume(c.body.volume.id, ['available', 'error']);
    assert.equal(v.status, 'available', JSON.stringify(v));
    assert.equal(v.bootable, 'true');
    assert.equal(v.volume_image_metadata.image_id, img);
    assert.equal((await fsp.stat(volumeFile(v.id))).size, 2 ** 30, 'grown to the volume size');
    assert.equal(await head(volumeFile(v.id), 'raw'), sum, 'the image data');
    made.push(v.id);
  }
  const bad = await api('POST', '/volumes', { volume: { size: 1, imageRef: evilImage } });
  assert.equal(bad.status, 202, JSON.stringify(bad.body));
  assert.equal((await waitVolume(bad.body.volume.id, ['available', 'error'])).status, 'error');
  const msgs = await api('GET', `/messages?resource_uuid=${bad.body.volume.id}`);
  assert.equal(msgs.body.messages[0]?.event_id, 'VOLUME_VOLUME_005_001', JSON.stringify(msgs.body));
  made.push(bad.body.volume.id);

  // to an image: qcow2, its data the volume's
  const up = await api('POST', `/volumes/${made[1]}/action`, { 'os-volume_upload_image': { image_name: 'dp-upload', disk_format: 'qcow2' } });
  assert.equal(up.status, 202, JSON.stringify(up.body));
  const imageId = up.body['os-volume_upload_image'].image_id as string;
  assert.equal((await waitVolume(made[1]!, ['available', 'error'])).status, 'available');
  const shown = await plane.api('GET', `/image/v2/images/${imageId}`);
  assert.equal(shown.body.status, 'active', JSON.stringify(shown.body));
  const got = join(work, 'uploaded.qcow2');
  const dl = await fetch(`${plane.cloud.url}/image/v2/images/${imageId}/file`, { headers: { 'x-auth-token': plane.token } });
  assert.equal(dl.status, 200);
  await fsp.writeFile(got, Buffer.from(await dl.arrayBuffer()));
  assert.equal(await head(got, 'qcow2'), sum, 'the uploaded image holds the volume data');
  const info = JSON.parse((await runOk('qemu-img', ['info', '--output=json', '-f', 'qcow2', got])).stdout) as { 'virtual-size': number };
  assert.equal(info['virtual-size'], 2 ** 30);

  for (const id of made) assert.equal((await api('DELETE', `/volumes/${id}`)).status, 202);
  for (const id of made) await waitVolume(id, ['gone']);
  assert.deepEqual(readdirSync(join(pool, 'volumes')), [], 'no file left (no download or copy temporaries)');
});
