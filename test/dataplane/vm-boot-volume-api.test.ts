// Booting a VM from a volume through the APIs, as root with real qemu: an
// in-process server and agent (the VM driver and the file volume backend),
// the stratus-tiny image in Glance, a server created with Nova's
// block_device_mapping_v2 image -> volume (what `openstack server create
// --boot-from-volume 1` sends): Cinder makes the volume from the image, the
// server is scheduled once it is attached, spawned once the volume's export
// exists, and the guest boots from it (its console shows it ready). The view
// shows image "" and the volume; the server's own directory holds no root
// disk. Deleted, the volume (delete_on_termination) goes too, with no loop
// device left. Everything goes with the plane; a VM left by a failed step is
// destroyed by PID in after().
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { VmDriver } from '../../src/agent/drivers/vm/driver.ts';
import { buildTinyImage } from '../../src/agent/drivers/vm/guest/tiny-image.ts';
import { READY_MARKER } from '../../src/agent/drivers/vm/guest/scripts.ts';
import { loopDevices } from '../../src/agent/drivers/volume-attach.ts';
import { skipUnlessRoot, sleep, startPlane, waitConsole, type Plane } from './lib.ts';

const hasQemu = ['/usr/bin', '/usr/local/bin'].some((d) => existsSync(join(d, 'qemu-system-x86_64')));
const skip = skipUnlessRoot || (hasQemu ? false : 'qemu-system-x86_64 is not installed');
/** How long to wait for the guest under TCG on a loaded box; not a timing assertion. */
const BOOT_WAIT_MS = 300_000;

let plane: Plane;
let imageId = '';
let flavorId = '';
const servers: string[] = [];

before(async () => {
  if (skip) return;
  const tiny = await buildTinyImage();
  plane = await startPlane({ agent: 'inproc', volume: true });
  const img = await plane.api('POST', '/image/v2/images', { name: 'stratus-tiny', container_format: 'bare', disk_format: 'qcow2', visibility: 'public', min_ram: 64 });
  assert.equal(img.status, 201);
  imageId = img.body.id;
  const up = await fetch(`${plane.cloud.url}/image/v2/images/${imageId}/file`, {
    method: 'PUT', headers: { 'x-auth-token': plane.token, 'content-type': 'application/octet-stream' }, body: new Uint8Array(await fsp.readFile(tiny.disk)),
  });
  assert.equal(up.status, 204);
  // a flavor with no disk: a volume-backed server needs none
  const fl = await plane.api('POST', '/compute/v2.1/flavors', { flavor: { name: `bfv-${plane.hostname}`, ram: 128, vcpus: 1, disk: 0 } });
  assert.equal(fl.status, 200, JSON.stringify(fl.body));
  flavorId = fl.body.flavor.id;
});

after(async () => {
  if (skip || !plane) return;
  const d = new VmDriver({ stateDir: plane.stateDir, log: pino({ level: 'silent' }), fetchImage: async () => undefined });
  for (const id of servers) await d.destroy(id).catch(() => undefined);
  await plane.cleanup();
});

const cinder = (method: string, path: string) => plane.api(method, `/volume/v3${path}`, undefined, { 'OpenStack-API-Version': 'volume 3.64' });
const volumeLoops = async () => (await loopDevices()).filter((l) => l.back.startsWith(join(plane.stateDir, 'volumes', 'volumes')));

test('a VM booted from a volume made from an image through the APIs boots; deleted, the volume goes too', { skip, timeout: 600_000 }, async () => {
  const r = await plane.api('POST', '/compute/v2.1/servers', {
    server: {
      name: 'bfv', imageRef: '', flavorRef: flavorId, networks: 'none',
      block_device_mapping_v2: [{ uuid: imageId, source_type: 'image', destination_type: 'volume', boot_index: 0, volume_size: 1, delete_on_termination: true }],
    },
  });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const id = r.body.server.id as string;
  servers.push(id);
  const s = await plane.waitStatus(id, ['ACTIVE', 'ERROR'], BOOT_WAIT_MS);
  assert.equal(s.status, 'ACTIVE', JSON.stringify(s.fault ?? s));
  assert.equal(s.image, '');
  const vols = s['os-extended-volumes:volumes_attached'] as Array<{ id: string; delete_on_termination: boolean }>;
  assert.equal(vols.length, 1);
  const volId = vols[0]!.id;
  assert.equal(vols[0]!.delete_on_termination, true);
  const v = (await cinder('GET', `/volumes/${volId}`)).body.volume;
  assert.equal(v.status, 'in-use');
  assert.equal(v.bootable, 'true');
  assert.equal(v.attachments[0].server_id, id);
  assert.equal(v.attachments[0].device, '/dev/vda');
  assert.ok(!existsSync(join(plane.stateDir, 'vm', 'servers', id, 'root.qcow2')), 'no root disk of its own');
  await waitConsole(plane, id, new RegExp(READY_MARKER), BOOT_WAIT_MS);

  assert.equal((await plane.api('DELETE', `/compute/v2.1/servers/${id}`)).status, 204);
  await plane.waitGone(id, 120_000);
  const until = Date.now() + 120_000;
  while ((await cinder('GET', `/volumes/${volId}`)).status !== 404) {
    if (Date.now() > until) assert.fail(`the volume was not deleted: ${JSON.stringify((await cinder('GET', `/volumes/${volId}`)).body)}`);
    await sleep(250);
  }
  assert.deepEqual(await volumeLoops(), [], 'no loop device left');
});
