// A server's life through the compute API against an in-process server and a
// real agent running runc: create, stop, start, reboot, pause, snapshot,
// rebuild and delete, checking the kernel state at each step and that nothing
// is left behind.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../src/agent/exec.ts';
import { consoleOf as libConsoleOf, waitConsole as libWaitConsole } from './lib.ts';
import { buildLayerBlob, fileRange, writeOciArchive } from '../../src/agent/drivers/container/oci.ts';
import {
  CONSOLE_CAP, cgroupDirs, cgroupFile, httpInNetns, leftovers, mountsUnder, netnsPath, processAlive, rootFsType, rootMountOptions, runcState, skipUnlessRoot, sleep, startPlane, type Plane,
} from './lib.ts';

let plane: Plane;
const created: string[] = [];

before(async () => {
  if (skipUnlessRoot) return;
  plane = await startPlane({ agent: 'inproc' });
});
after(async () => {
  await plane?.cleanup();
});

const b64 = (s: string) => Buffer.from(s).toString('base64');
const action = (id: string, body: unknown) => plane.api('POST', `/compute/v2.1/servers/${id}/action`, body);

const consoleOf = (id: string) => libConsoleOf(plane, id);
const waitConsole = (id: string, pattern: RegExp, timeoutMs = 15_000) => libWaitConsole(plane, id, pattern, timeoutMs);

function execIn(id: string, args: string[]) {
  return run('runc', ['--root', join(plane.stateDir, 'runc'), 'exec', id, ...args]);
}

test('create: ACTIVE with a running container, its limits, namespace, config drive, console and HTTP', { skip: skipUnlessRoot }, async () => {
  const userData = '#!/bin/sh\necho user-data-ran > /root/marker\necho hello-from-user-data\n';
  const id = await plane.createServer({ name: 'dp-one', user_data: b64(userData), metadata: { role: 'web' } });
  created.push(id);
  const s = await plane.waitStatus(id, ['ACTIVE']);
  assert.equal(s['OS-EXT-STS:power_state'], 1);
  assert.equal(s['OS-EXT-SRV-ATTR:host'], plane.hostname);
  assert.ok(s['OS-SRV-USG:launched_at']);

  const st = runcState(plane.stateDir, id);
  assert.ok(st, 'runc state exists');
  assert.ok(processAlive(st.pid), 'the container init runs');
  assert.equal(rootFsType(st.pid), 'overlay', 'the container\'s root is an overlay');
  assert.match(rootMountOptions(st.pid), new RegExp(`upperdir=${join(plane.stateDir, 'servers', id, 'upper')}`));
  assert.match(rootMountOptions(st.pid), new RegExp(`lowerdir=${join(plane.stateDir, 'layers')}/[0-9a-f]{64}/fs`));
  assert.deepEqual(mountsUnder(plane.stateDir), [], 'the overlay lives in the container\'s mount namespace only, not the host\'s');
  // cgroup v1 limits from the flavor (96 MiB, 1 vCPU)
  assert.equal(cgroupFile('memory', id, 'memory.limit_in_bytes'), String(96 * 1024 * 1024));
  assert.equal(cgroupFile('memory', id, 'memory.memsw.limit_in_bytes'), String(96 * 1024 * 1024));
  assert.equal(cgroupFile('cpu', id, 'cpu.cfs_quota_us'), '100000');
  assert.equal(cgroupFile('cpu', id, 'cpu.cfs_period_us'), '100000');
  assert.equal(cgroupFile('cpu', id, 'cpu.shares'), '1024');
  assert.equal(cgroupFile('pids', id, 'pids.max'), '1024');
  assert.ok(cgroupFile('pids', id, 'cgroup.procs')!.split('\n').includes(String(st.pid)), 'the init is in the server cgroup');
  // its own network namespace, loopback only and up
  assert.ok(existsSync(netnsPath(id)));
  assert.equal(statSync(`/proc/${st.pid}/ns/net`).ino, statSync(netnsPath(id)).ino, 'the container joined the server netns');
  const links = await run('ip', ['-n', `st-${id}`, '-o', 'link', 'show']);
  assert.deepEqual(links.stdout.trim().split('\n').map((l) => l.split(':')[1]!.trim()), ['lo']);
  assert.match(links.stdout, /LOOPBACK,UP/);
  // the init serves the hostname on port 80
  assert.equal((await httpInNetns(id)).trim(), s['OS-EXT-SRV-ATTR:hostname'] ?? 'dp-one');
  // the user data ran once and its output is on the console
  const out = await waitConsole(id, /hello-from-user-data/);
  assert.match(out, /stratus-init: .* is up/);
  assert.ok(out.split('\n').length > 3, 'more than 3 console lines at first boot (Tempest asks for them)');
  assert.match(out, /stratus-init: serving the hostname on port 80/);
  // the config drive, read-only, in OpenStack's layout
  const md = await execIn(id, ['cat', '/mnt/config/openstack/latest/meta_data.json']);
  assert.equal(md.code, 0, md.stderr);
  const meta = JSON.parse(md.stdout);
  assert.equal(meta.uuid, id);
  assert.deepEqual(meta.meta, { role: 'web' });
  assert.equal((await execIn(id, ['cat', '/mnt/config/openstack/latest/user_data'])).stdout, userData);
  assert.notEqual((await execIn(id, ['touch', '/mnt/config/x'])).code, 0, 'the config drive is read-only');
  // PID 1 reaps orphans: a background child that exits leaves no zombie
  await execIn(id, ['sh', '-c', '(sleep 0.1 &) ; exit 0']);
  await sleep(400);
  const ps = await execIn(id, ['ps', '-o', 'stat']);
  assert.doesNotMatch(ps.stdout, /^\s*Z/m, 'no zombies in the container');
});

test('stop, start, reboot (soft and hard), pause and unpause map to runc', { skip: skipUnlessRoot }, async () => {
  const id = created[0]!;
  const first = runcState(plane.stateDir, id)!;

  assert.equal((await action(id, { 'os-stop': null })).status, 202);
  const stopped = await plane.waitStatus(id, ['SHUTOFF']);
  assert.equal(stopped['OS-EXT-STS:power_state'], 4);
  assert.ok(!processAlive(first.pid), 'the container process is gone');
  assert.equal(runcState(plane.stateDir, id), null, 'runc deleted the container');
  assert.deepEqual(cgroupDirs(id), [], 'its cgroups are gone');
  assert.ok(existsSync(join(plane.stateDir, 'servers', id, 'upper', 'root', 'marker')), 'the disk stays');
  assert.ok(existsSync(netnsPath(id)), 'the namespace stays');

  assert.equal((await action(id, { 'os-start': null })).status, 202);
  await plane.waitStatus(id, ['ACTIVE']);
  const second = runcState(plane.stateDir, id)!;
  assert.notEqual(second.pid, first.pid);
  assert.ok(processAlive(second.pid));
  assert.equal((await execIn(id, ['cat', '/root/marker'])).stdout.trim(), 'user-data-ran', 'the disk survived the stop');
  const out = await waitConsole(id, /is up[\s\S]*is up/);
  assert.equal(out.match(/hello-from-user-data/g)?.length, 1, 'user data runs once per server, not per boot');

  assert.equal((await action(id, { reboot: { type: 'SOFT' } })).status, 202);
  await plane.waitStatus(id, ['ACTIVE']);
  const third = runcState(plane.stateDir, id)!;
  assert.notEqual(third.pid, second.pid, 'a soft reboot restarts the process');
  assert.ok(!processAlive(second.pid));
  assert.match(await consoleOf(id), /stratus-init: stopping/, 'the init got its stop signal');

  assert.equal((await action(id, { reboot: { type: 'HARD' } })).status, 202);
  await plane.waitStatus(id, ['ACTIVE']);
  const fourth = runcState(plane.stateDir, id)!;
  assert.notEqual(fourth.pid, third.pid);
  assert.ok(processAlive(fourth.pid));

  assert.equal((await action(id, { pause: null })).status, 202);
  const paused = await plane.waitStatus(id, ['PAUSED']);
  assert.equal(paused['OS-EXT-STS:power_state'], 3);
  assert.equal(cgroupFile('freezer', id, 'freezer.state'), 'FROZEN');
  assert.equal((await action(id, { unpause: null })).status, 202);
  await plane.waitStatus(id, ['ACTIVE']);
  assert.equal(cgroupFile('freezer', id, 'freezer.state'), 'THAWED');
  assert.equal(runcState(plane.stateDir, id)!.pid, fourth.pid);
});

test('createImage snapshots the disk as an OCI image that boots with the changes', { skip: skipUnlessRoot }, async () => {
  const id = created[0]!;
  assert.equal((await execIn(id, ['sh', '-c', 'echo snapshot-me > /etc/motd; rm /etc/os-release'])).code, 0);
  const r = await action(id, { createImage: { name: 'dp-snap', metadata: { purpose: 'test' } } });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const imageId = r.body.image_id as string;
  let img: any;
  for (let i = 0; i < 300; i++) {
    img = (await plane.api('GET', `/image/v2/images/${imageId}`)).body;
    if (img.status === 'active' || img.status === 'killed' || img.status === undefined) break;
    await sleep(100);
  }
  assert.equal(img.status, 'active', JSON.stringify(img));
  assert.equal(img.container_format, 'docker');
  assert.equal(img.purpose, 'test');
  await plane.waitStatus(id, ['ACTIVE']);

  const child = await plane.createServer({ name: 'dp-from-snap', imageRef: imageId });
  created.push(child);
  await plane.waitStatus(child, ['ACTIVE']);
  assert.equal((await execIn(child, ['cat', '/etc/motd'])).stdout.trim(), 'snapshot-me');
  assert.equal((await execIn(child, ['cat', '/root/marker'])).stdout.trim(), 'user-data-ran');
  assert.notEqual((await execIn(child, ['test', '-e', '/etc/os-release'])).code, 0, 'a deletion in the snapshot is a whiteout');
  assert.doesNotMatch(await waitConsole(child, /is up/), /hello-from-user-data/, 'the new server has no user data');
});

test('rebuild gives the server a fresh disk from its image', { skip: skipUnlessRoot }, async () => {
  const id = created[0]!;
  assert.equal((await execIn(id, ['sh', '-c', 'echo old > /root/scratch'])).code, 0);
  const before = runcState(plane.stateDir, id)!.pid;
  const r = await action(id, { rebuild: { imageRef: plane.imageId } });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  await plane.waitStatus(id, ['ACTIVE']);
  assert.notEqual(runcState(plane.stateDir, id)!.pid, before);
  assert.notEqual((await execIn(id, ['test', '-e', '/root/scratch'])).code, 0, 'the old disk is gone');
  assert.equal((await execIn(id, ['cat', '/etc/os-release'])).code, 0);
});

test('delete removes the process, mount, namespace, cgroups and files', { skip: skipUnlessRoot }, async () => {
  for (const id of created) assert.equal((await plane.api('DELETE', `/compute/v2.1/servers/${id}`)).status, 204);
  for (const id of created) {
    await plane.waitGone(id);
    assert.deepEqual(leftovers(plane.stateDir, id), []);
  }
});

test('a container that exits by itself becomes SHUTOFF, as Nova syncs power states', { skip: skipUnlessRoot }, async () => {
  const id = await plane.createServer({ name: 'dp-exit', user_data: b64('#!/bin/sh\nsleep 0.5\nkill -TERM 1\n') });
  try {
    await plane.waitStatus(id, ['ACTIVE', 'SHUTOFF']);
    const s = await plane.waitStatus(id, ['SHUTOFF'], 30_000);
    assert.equal(s['OS-EXT-STS:power_state'], 4);
    for (let i = 0; i < 50 && cgroupDirs(id).length; i++) await sleep(100);
    assert.deepEqual(cgroupDirs(id), [], 'the exited container is deleted, its cgroups with it');
  } finally {
    await plane.api('DELETE', `/compute/v2.1/servers/${id}`);
    await plane.waitGone(id);
  }
  assert.deepEqual(leftovers(plane.stateDir, id), []);
});

test('the console log is capped: the newest output stays', { skip: skipUnlessRoot }, async () => {
  const script = '#!/bin/sh\ni=0\nwhile [ $i -lt 4000 ]; do echo "line $i ................................................"; i=$((i+1)); done\necho last-line-of-output\n';
  const id = await plane.createServer({ name: 'dp-chatty', user_data: b64(script) });
  try {
    await plane.waitStatus(id, ['ACTIVE']);
    await waitConsole(id, /last-line-of-output/);
    const file = join(plane.stateDir, 'servers', id, 'console.log');
    for (let i = 0; i < 60 && statSync(file).size > CONSOLE_CAP; i++) await sleep(100);
    assert.ok(statSync(file).size <= CONSOLE_CAP, `console.log is ${statSync(file).size} bytes`);
    const out = await consoleOf(id);
    assert.match(out.split("\n").slice(-4).join("\n"), /last-line-of-output/, "the newest output is kept");
    assert.doesNotMatch(out, /^line 0 /m, 'the oldest output was dropped');
  } finally {
    await plane.api('DELETE', `/compute/v2.1/servers/${id}`);
    await plane.waitGone(id);
  }
});

test('an image the host cannot run fails the build: ERROR with a fault, nothing left', { skip: skipUnlessRoot }, async () => {
  // a valid OCI archive whose config names no command: the image service accepts it, the agent cannot start it
  const dir = mkdtempSync(join(tmpdir(), 'stratus-dp-bad-'));
  try {
    const layerFile = join(dir, 'layer.tar.gz');
    const layer = await buildLayerBlob(layerFile, async (tar) => {
      await tar.add({ name: 'etc', type: 'dir' });
      await tar.add({ name: 'etc/hello', type: 'file' }, Buffer.from('hi\n'));
    });
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [layer.diffId] } }));
    const out = createWriteStream(join(dir, 'image.tar'));
    await writeOciArchive(out, { configRaw: config, layers: [{ ...layer, read: fileRange(layerFile, 0, layer.size) }] });
    const img = await plane.api('POST', '/image/v2/images', { name: 'no-command', container_format: 'docker', disk_format: 'raw' });
    const put = await fetch(`${plane.cloud.url}/image/v2/images/${img.body.id}/file`, {
      method: 'PUT', headers: { 'x-auth-token': plane.token, 'content-type': 'application/octet-stream' }, body: readFileSync(join(dir, 'image.tar')),
    });
    assert.equal(put.status, 204, await put.text());
    const id = await plane.createServer({ name: 'dp-broken', imageRef: img.body.id });
    const s = await plane.waitStatus(id, ['ERROR']);
    assert.equal(s.fault.code, 500);
    assert.match(s.fault.message, /neither an entrypoint nor a command/);
    assert.equal(s['OS-EXT-SRV-ATTR:host'], null);
    assert.deepEqual(leftovers(plane.stateDir, id), []);
    assert.equal((await plane.api('DELETE', `/compute/v2.1/servers/${id}`)).status, 204);
    await plane.waitGone(id);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
