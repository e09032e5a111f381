// A VM through the compute API end to end: an in-process server and agent
// (the agent runs the VM driver because qemu is installed), the stratus-tiny
// image uploaded to Glance (bare/qcow2), a server with a config drive and
// user data: ACTIVE, its console log shows the guest ready and the user data
// run, os-stop (ACPI) -> SHUTOFF, os-start -> ACTIVE, delete -> gone with no
// qemu, files or cgroup left. A VM left by a failed step is destroyed by PID
// in after().
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { VmDriver } from '../../src/agent/drivers/vm/driver.ts';
import { buildTinyImage } from '../../src/agent/drivers/vm/guest/tiny-image.ts';
import { READY_MARKER } from '../../src/agent/drivers/vm/guest/scripts.ts';
import { processAlive, skipUnlessRoot, startPlane, waitConsole, type Plane } from './lib.ts';

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
  plane = await startPlane({ agent: 'inproc' });
  const img = await plane.api('POST', '/image/v2/images', { name: 'stratus-tiny', container_format: 'bare', disk_format: 'qcow2', visibility: 'public', min_disk: 1, min_ram: 64 });
  assert.equal(img.status, 201);
  imageId = img.body.id;
  const up = await fetch(`${plane.cloud.url}/image/v2/images/${imageId}/file`, {
    method: 'PUT', headers: { 'x-auth-token': plane.token, 'content-type': 'application/octet-stream' }, body: new Uint8Array(await fsp.readFile(tiny.disk)),
  });
  assert.equal(up.status, 204);
  const fl = await plane.api('POST', '/compute/v2.1/flavors', { flavor: { name: `vm-${plane.hostname}`, ram: 128, vcpus: 1, disk: 1 } });
  assert.equal(fl.status, 200, JSON.stringify(fl.body));
  flavorId = fl.body.flavor.id;
});

after(async () => {
  if (skip || !plane) return;
  // whatever a failed step left: killed by its pidfile, files and cgroup removed
  const d = new VmDriver({ stateDir: plane.stateDir, log: pino({ level: 'silent' }), fetchImage: async () => undefined });
  for (const id of servers) await d.destroy(id).catch(() => undefined);
  await plane.cleanup();
});

test('a VM server: ACTIVE with its console and user data, stop (ACPI) and start, delete leaves nothing', { skip }, async () => {
  const script = '#!/bin/sh\necho vm-server-user-data-ran\n';
  const id = await plane.createServer({ name: 'vm-one', imageRef: imageId, flavorRef: flavorId, config_drive: true, user_data: Buffer.from(script).toString('base64') });
  servers.push(id);
  const s = await plane.waitStatus(id, ['ACTIVE', 'ERROR'], 120_000);
  assert.equal(s.status, 'ACTIVE', JSON.stringify(s.fault ?? s));
  const dir = join(plane.stateDir, 'vm', 'servers', id);
  const pid = Number((await fsp.readFile(join(dir, 'qemu.pid'), 'utf8')).trim());
  assert.ok(processAlive(pid));
  await waitConsole(plane, id, new RegExp(READY_MARKER), BOOT_WAIT_MS);
  await waitConsole(plane, id, /vm-server-user-data-ran/, 60_000);

  let r = await plane.api('POST', `/compute/v2.1/servers/${id}/action`, { 'os-stop': null });
  assert.equal(r.status, 202);
  const off = await plane.waitStatus(id, ['SHUTOFF', 'ERROR'], 120_000);
  assert.equal(off.status, 'SHUTOFF');
  assert.equal(processAlive(pid), false);
  r = await plane.api('POST', `/compute/v2.1/servers/${id}/action`, { 'os-start': null });
  assert.equal(r.status, 202);
  assert.equal((await plane.waitStatus(id, ['ACTIVE', 'ERROR'], 120_000)).status, 'ACTIVE');
  const pid2 = Number((await fsp.readFile(join(dir, 'qemu.pid'), 'utf8')).trim());
  assert.ok(pid2 !== pid && processAlive(pid2));

  r = await plane.api('DELETE', `/compute/v2.1/servers/${id}`);
  assert.equal(r.status, 204);
  await plane.waitGone(id, 120_000);
  assert.equal(processAlive(pid2), false, 'qemu is gone');
  assert.equal(existsSync(dir), false, 'the server directory is gone');
  for (const c of ['cpu', 'memory', 'pids']) assert.equal(existsSync(join('/sys/fs/cgroup', c, 'stratus-vm', id)), false, `${c} cgroup gone`);
});
