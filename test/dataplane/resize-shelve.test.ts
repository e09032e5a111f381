// Resize and shelve of a container through the compute API against an
// in-process server and a real agent running runc: a resize changes the
// running container's cgroup limits in place (same process), a revert puts
// the old ones back, a confirm keeps the new ones; a shelve snapshots the
// disk and removes the container from the host (offloaded), an unshelve
// builds it again from the snapshot with the data written before, and the
// snapshot is deleted. The plane (and every server) goes in after(), also
// when a step fails.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../../src/agent/exec.ts';
import { cgroupDirs, cgroupFile, netnsPath, processAlive, runcState, skipUnlessRoot, sleep, startPlane, type Plane } from './lib.ts';

let plane: Plane;
let bigFlavor = '';

before(async () => {
  if (skipUnlessRoot) return;
  plane = await startPlane({ agent: 'inproc' });
  const fl = await plane.api('POST', '/compute/v2.1/flavors', { flavor: { name: `dp-big-${plane.hostname}`, ram: 192, vcpus: 2, disk: 0 } });
  assert.equal(fl.status, 200, JSON.stringify(fl.body));
  bigFlavor = fl.body.flavor.id;
});
after(async () => {
  await plane?.cleanup();
});

const action = (id: string, body: unknown) => plane.api('POST', `/compute/v2.1/servers/${id}/action`, body);
const execIn = (id: string, args: string[]) => run('runc', ['--root', join(plane.stateDir, 'runc'), 'exec', id, ...args]);
const MiB = 1024 * 1024;
const limits = (id: string) => ({
  memory: Number(cgroupFile('memory', id, 'memory.limit_in_bytes')), quota: Number(cgroupFile('cpu', id, 'cpu.cfs_quota_us')), shares: Number(cgroupFile('cpu', id, 'cpu.shares')),
});

test('resize a running container: new cgroup limits in place (same process), revert restores them, confirm keeps them', { skip: skipUnlessRoot }, async () => {
  const id = await plane.createServer({ name: 'dp-resize' });
  await plane.waitStatus(id, ['ACTIVE']);
  const pid = runcState(plane.stateDir, id)!.pid;
  assert.deepEqual(limits(id), { memory: 96 * MiB, quota: 100_000, shares: 1024 });

  assert.equal((await action(id, { resize: { flavorRef: bigFlavor } })).status, 202);
  let s = await plane.waitStatus(id, ['VERIFY_RESIZE']);
  assert.equal(s.flavor.ram, 192);
  assert.deepEqual(limits(id), { memory: 192 * MiB, quota: 200_000, shares: 2048 }, 'the container\'s cgroups have the new flavor\'s limits');
  assert.equal(runcState(plane.stateDir, id)!.pid, pid, 'applied in place: the same process');
  assert.ok(processAlive(pid));

  assert.equal((await action(id, { revertResize: null })).status, 202);
  s = await plane.waitStatus(id, ['ACTIVE']);
  assert.equal(s.flavor.ram, 96);
  assert.deepEqual(limits(id), { memory: 96 * MiB, quota: 100_000, shares: 1024 });
  assert.equal(runcState(plane.stateDir, id)!.pid, pid);

  assert.equal((await action(id, { resize: { flavorRef: bigFlavor } })).status, 202);
  await plane.waitStatus(id, ['VERIFY_RESIZE']);
  assert.equal((await action(id, { confirmResize: null })).status, 204);
  s = await plane.waitStatus(id, ['ACTIVE']);
  assert.equal(s.flavor.ram, 192);
  assert.deepEqual(limits(id), { memory: 192 * MiB, quota: 200_000, shares: 2048 });
  // a stop and start keep the new limits (the runtime spec has them)
  assert.equal((await action(id, { 'os-stop': null })).status, 202);
  await plane.waitStatus(id, ['SHUTOFF']);
  assert.equal((await action(id, { 'os-start': null })).status, 202);
  await plane.waitStatus(id, ['ACTIVE']);
  assert.deepEqual(limits(id), { memory: 192 * MiB, quota: 200_000, shares: 2048 });
  assert.equal((await plane.api('DELETE', `/compute/v2.1/servers/${id}`)).status, 204);
  await plane.waitGone(id);
});

test('shelve a container: its disk saved as <name>-shelved, nothing left on the host; unshelve: built again from it with the data, the snapshot deleted', { skip: skipUnlessRoot }, async () => {
  const id = await plane.createServer({ name: 'dp-shelve' });
  await plane.waitStatus(id, ['ACTIVE']);
  assert.equal((await execIn(id, ['sh', '-c', 'echo kept-across-shelve > /root/data'])).code, 0);
  const pid = runcState(plane.stateDir, id)!.pid;

  assert.equal((await action(id, { shelve: null })).status, 202);
  const s = await plane.waitStatus(id, ['SHELVED_OFFLOADED']);
  assert.equal(s['OS-EXT-SRV-ATTR:host'], null);
  const images = await plane.api('GET', '/image/v2/images?name=dp-shelve-shelved');
  assert.equal(images.body.images.length, 1);
  const snap = images.body.images[0];
  assert.equal(snap.status, 'active');
  // the host's agent removes everything once the server is no longer placed there
  for (let i = 0; i < 200 && existsSync(join(plane.stateDir, 'servers', id)); i++) await sleep(100);
  assert.ok(!existsSync(join(plane.stateDir, 'servers', id)), 'its directory is gone');
  assert.equal(runcState(plane.stateDir, id), null);
  assert.ok(!processAlive(pid));
  assert.deepEqual(cgroupDirs(id), []);
  assert.ok(!existsSync(netnsPath(id)), 'its namespace is gone');
  const usages = await plane.api('GET', `/placement/allocations/${id}`);
  assert.deepEqual(usages.body.allocations, {}, 'no claim while offloaded');

  assert.equal((await action(id, { unshelve: null })).status, 202);
  const back = await plane.waitStatus(id, ['ACTIVE']);
  assert.equal(back['OS-EXT-SRV-ATTR:host'], plane.hostname);
  assert.equal(back.image.id, plane.imageId);
  assert.equal((await execIn(id, ['cat', '/root/data'])).stdout.trim(), 'kept-across-shelve', 'the data written before the shelve is there');
  for (let i = 0; i < 100 && (await plane.api('GET', `/image/v2/images/${snap.id}`)).status !== 404; i++) await sleep(100);
  assert.equal((await plane.api('GET', `/image/v2/images/${snap.id}`)).status, 404, 'the shelve snapshot is deleted');
  // it keeps working afterwards: a reboot comes back with its data (the agent kept the snapshot's layers)
  assert.equal((await action(id, { reboot: { type: 'HARD' } })).status, 202);
  await plane.waitStatus(id, ['ACTIVE']);
  assert.equal((await execIn(id, ['cat', '/root/data'])).stdout.trim(), 'kept-across-shelve');
  assert.equal((await plane.api('DELETE', `/compute/v2.1/servers/${id}`)).status, 204);
  await plane.waitGone(id);
});
