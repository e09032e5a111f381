// Rescue of a container through the compute API against an in-process server
// and a real agent running runc: rescue restarts the container from the
// rescue image (the server's own by default) on a throwaway root, with its
// own root filesystem (what it wrote) at /mnt, writable; unrescue restarts it
// on its own root, which has what the rescue wrote there, and the rescue
// root is gone. The plane (and every server) goes in after(), also when a
// step fails.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../../src/agent/exec.ts';
import { runcState, skipUnlessRoot, startPlane, type Plane } from './lib.ts';

let plane: Plane;

before(async () => {
  if (skipUnlessRoot) return;
  plane = await startPlane({ agent: 'inproc' });
});
after(async () => {
  await plane?.cleanup();
});

const action = (id: string, body: unknown) => plane.api('POST', `/compute/v2.1/servers/${id}/action`, body);
const execIn = (id: string, args: string[]) => run('runc', ['--root', join(plane.stateDir, 'runc'), 'exec', id, ...args]);
/** In a user-namespace container (runc exec cannot join its network namespace, the host's user namespace owns it): its user and mount namespaces and root. */
const inUserns = (id: string, args: string[]) => run('nsenter', ['-t', String(runcState(plane.stateDir, id)!.pid), '-U', '-m', '-r', '-w', ...args]);

test('rescue a container: restarted from the rescue image, its own root at /mnt (writable); unrescue: back on its own root, the rescue root gone', { skip: skipUnlessRoot }, async () => {
  const id = await plane.createServer({ name: 'dp-rescue' });
  await plane.waitStatus(id, ['ACTIVE']);
  assert.equal((await execIn(id, ['sh', '-c', 'echo mine > /root/data'])).code, 0);
  const pid = runcState(plane.stateDir, id)!.pid;

  const r = await action(id, { rescue: { adminPass: 'Rescue-1' } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(r.body, { adminPass: 'Rescue-1' });
  await plane.waitStatus(id, ['RESCUE']);
  const rescuedPid = runcState(plane.stateDir, id)!.pid;
  assert.notEqual(rescuedPid, pid, 'a new container');
  // the rescue root is the image as it is: not the server's data; the server's root is at /mnt
  assert.notEqual((await execIn(id, ['cat', '/root/data'])).code, 0, 'the rescue root is fresh');
  assert.equal((await execIn(id, ['cat', '/mnt/root/data'])).stdout.trim(), 'mine', 'its own root at /mnt');
  // what a rescue is for: repairing the server's disk, and scribbling on the rescue root (thrown away)
  assert.equal((await execIn(id, ['sh', '-c', 'echo repaired > /mnt/root/fixed && echo scratch > /root/scratch'])).code, 0);
  assert.ok(existsSync(join(plane.stateDir, 'servers', id, 'rescue')));

  assert.equal((await action(id, { unrescue: null })).status, 202);
  await plane.waitStatus(id, ['ACTIVE']);
  assert.notEqual(runcState(plane.stateDir, id)!.pid, rescuedPid, 'restarted on its own root');
  assert.equal((await execIn(id, ['cat', '/root/data'])).stdout.trim(), 'mine');
  assert.equal((await execIn(id, ['cat', '/root/fixed'])).stdout.trim(), 'repaired', 'what the rescue wrote to /mnt is on its root');
  assert.notEqual((await execIn(id, ['cat', '/root/scratch'])).code, 0, 'the rescue root\'s writes are gone');
  assert.notEqual((await execIn(id, ['ls', '/mnt/root'])).code, 0, 'nothing at /mnt');
  assert.ok(!existsSync(join(plane.stateDir, 'servers', id, 'rescue')), 'the rescue root is removed');

  // rescued again, then deleted while rescued: nothing left behind
  assert.equal((await action(id, { rescue: null })).status, 200);
  await plane.waitStatus(id, ['RESCUE']);
  assert.equal((await execIn(id, ['cat', '/mnt/root/fixed'])).stdout.trim(), 'repaired');
  assert.equal((await plane.api('DELETE', `/compute/v2.1/servers/${id}`)).status, 204);
  await plane.waitGone(id);
  assert.ok(!existsSync(join(plane.stateDir, 'servers', id)));
  assert.equal(runcState(plane.stateDir, id), null);
});

test('rescue a user-namespace container: root in it reads and repairs its own root at /mnt and writes the rescue root; unrescue keeps the repair', { skip: skipUnlessRoot }, async () => {
  const f = await plane.api('POST', '/compute/v2.1/flavors', { flavor: { name: `dp-rescue-userns-${plane.hostname}`, ram: 96, vcpus: 1, disk: 0 } });
  assert.equal(f.status, 200, JSON.stringify(f.body));
  assert.equal((await plane.api('POST', `/compute/v2.1/flavors/${f.body.flavor.id}/os-extra_specs`, { extra_specs: { 'stratus:userns': 'true' } })).status, 200);
  const id = await plane.createServer({ name: 'dp-rescue-userns', flavorRef: f.body.flavor.id });
  await plane.waitStatus(id, ['ACTIVE']);
  const first = await inUserns(id, ['sh', '-c', 'echo mine > /root/data']);
  assert.equal(first.code, 0, first.stderr + first.stdout);
  assert.equal((await action(id, { rescue: null })).status, 200);
  await plane.waitStatus(id, ['RESCUE']);
  assert.equal((await inUserns(id, ['cat', '/mnt/root/data'])).stdout.trim(), 'mine');
  const w = await inUserns(id, ['sh', '-c', 'echo repaired > /mnt/root/fixed && echo scratch > /root/scratch']);
  assert.equal(w.code, 0, w.stderr);
  assert.equal((await action(id, { unrescue: null })).status, 202);
  await plane.waitStatus(id, ['ACTIVE']);
  assert.equal((await inUserns(id, ['cat', '/root/fixed'])).stdout.trim(), 'repaired');
  assert.equal((await plane.api('DELETE', `/compute/v2.1/servers/${id}`)).status, 204);
  await plane.waitGone(id);
});
