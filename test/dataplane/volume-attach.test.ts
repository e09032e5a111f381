// Volume attachments in both server drivers (protocol 2.4), as root with real
// runc, qemu, loop devices and qemu-storage-daemon; the drivers are driven
// with specs (no API). Three volumes, made here as files: Q (qcow2, ext4
// inside), R (raw, ext4 inside) and D (raw, no file system).
//   1. A running busybox container created with Q mounted at /data (its OCI
//      spec) gets R (mounted at /srv) and D (the node only) hot; data with a
//      checksum goes through the file systems and through D's device; a
//      detach of R while a process sits in /srv waits, then fails (listed,
//      with a message; the server stays active) and completes once the file
//      system is free; a restarted driver finds everything as it was; the
//      others detach; the loop devices and the qcow2 daemon are gone.
//   2. A stratus-tiny VM booted with Q attached (a disk on a root port, serial
//      = the volume id's first 20 characters) gets R and D hot-plugged; the
//      guest reads the same checksums; each is unplugged (DEVICE_DELETED) and
//      the guest no longer sees it; a restarted driver re-adopts the disks
//      from qemu's QOM tree; a read-only attachment is read-only in the
//      guest; a paused guest's disk is not released in time (the attachment
//      `failed`, the VM as it was) until it runs again; a deleted VM leaves
//      no loop device.
// Between them, a container with a user namespace gets R mounted at its start
// (by the driver once it runs) and D, without a mount path, fails.
// Everything made is removed in after() (by path and PID), also on failure.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { run, runOk } from '../../src/agent/exec.ts';
import type { DesiredServer, ServerVolumeSpec } from '../../src/compute/engine/protocol.ts';
import { ContainerDriver } from '../../src/agent/drivers/container/driver.ts';
import { diskIds, VmDriver } from '../../src/agent/drivers/vm/driver.ts';
import { loopDevices } from '../../src/agent/drivers/volume-attach.ts';
import { volumeDirOf } from '../../src/agent/drivers/volume/host.ts';
import { buildTinyImage, type TinyImage } from '../../src/agent/drivers/vm/guest/tiny-image.ts';
import { READY_MARKER } from '../../src/agent/drivers/vm/guest/scripts.ts';
import { UMOUNT_TIMEOUT_MS } from '../../src/agent/drivers/container/volumes.ts';
import { busyboxTar, cleanStateDir, mountsUnder, processAlive, skipUnlessRoot, sleep } from './lib.ts';

const hasQemu = ['/usr/bin', '/usr/local/bin'].some((d) => existsSync(join(d, 'qemu-system-x86_64')));
const skip = skipUnlessRoot || (hasQemu ? false : 'qemu-system-x86_64 is not installed');
const BOOT_WAIT_MS = 240_000;
const CG = `stratus-va-${process.pid}`;

const stateDir = mkdtempSync(join(tmpdir(), 'stratus-va-'));
const volDir = volumeDirOf(stateDir);
const log = pino({ level: 'warn' });
let containers: ContainerDriver;
let vms: VmDriver;
let image: TinyImage;
const ctrId = randomUUID();
const vmId = randomUUID();
const pids = new Set<number>();

const vol = (name: string, format: 'raw' | 'qcow2', device: string, mount_path?: string): ServerVolumeSpec => ({
  attachment_id: randomUUID(), volume_id: randomUUID(), device, location: join(volDir, `${name}.${format}`), format, read_only: false,
  ...(mount_path ? { mount_path } : {}), boot_index: null,
});
const Q = vol('q', 'qcow2', '/dev/vdb', '/data');
const R = vol('r', 'raw', '/dev/vdc', '/srv');
const D = vol('d', 'raw', '/dev/vdd');
const sums: Record<string, string> = {};

let version = 0;
const base = (id: string, kind: string, volumes: ServerVolumeSpec[], power: DesiredServer['power'] = 'running'): DesiredServer => ({
  id, version: ++version, name: `va-${kind}`, hostname: `va-${kind}`, project_id: 'p', user_id: 'u', kind,
  image: kind === 'vm'
    ? { id: `img-${vmId}`, name: 'stratus-tiny', status: 'active', container_format: 'bare', disk_format: 'qcow2', size: null, checksum: null }
    : { id: `img-${ctrId}`, name: 'busybox', status: 'active', container_format: 'docker', disk_format: 'raw', size: null, checksum: null },
  flavor: { id: 'f', name: 'f', vcpus: 1, ram: 128, disk: kind === 'vm' ? 1 : 0, ephemeral: 0, swap: 0, extraSpecs: {} },
  power, reboot_seq: 0, reboot_type: null, rebuild_seq: 0, vm_state: 'active', task_state: null, deleted: false,
  config_drive: { requested: false, meta_data: {}, user_data: null, network_data: { links: [], networks: [], services: [] }, vendor_data: {} },
  volumes,
});

/** Loop devices over this test's files (its pool and its qcow2 raw views). */
const ourLoops = async () => (await loopDevices()).filter((l) => l.back.startsWith(stateDir));
const qsdProcs = async () => {
  const out: number[] = [];
  for (const p of await fsp.readdir('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    const cmd = await fsp.readFile(`/proc/${p}/cmdline`, 'utf8').catch(() => '');
    if (cmd.startsWith('qemu-storage-daemon') && cmd.includes(stateDir)) out.push(Number(p));
  }
  return out;
};

const runcRoot = () => join(stateDir, 'runc');
const execIn = (args: string[]) => run('runc', ['--root', runcRoot(), 'exec', ctrId, ...args], { timeoutMs: 60_000 });
async function sh(cmd: string): Promise<string> {
  const r = await execIn(['sh', '-c', cmd]);
  assert.equal(r.code, 0, `${cmd}: ${r.stderr}`);
  return r.stdout.trim();
}
const ctrPid = () => JSON.parse(readFileSync(join(runcRoot(), ctrId, 'state.json'), 'utf8')).init_process_pid as number;
const ctrMounts = () => readFileSync(`/proc/${ctrPid()}/mountinfo`, 'utf8').split('\n').map((l) => l.split(' ')[4]).filter(Boolean);

before(async () => {
  if (skip) return;
  await fsp.mkdir(volDir, { recursive: true });
  // R and D raw; Q a qcow2 converted from an ext4 raw image
  await runOk('truncate', ['-s', '64M', R.location, D.location, join(volDir, 'q.tmp')]);
  await runOk('mkfs.ext4', ['-q', '-F', R.location]);
  await runOk('mkfs.ext4', ['-q', '-F', join(volDir, 'q.tmp')]);
  await runOk('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', join(volDir, 'q.tmp'), Q.location]);
  await fsp.rm(join(volDir, 'q.tmp'));
  image = await buildTinyImage();
  containers = new ContainerDriver({ stateDir, log, cgroupParent: CG, fetchImage: async (_id, dest) => fsp.writeFile(dest, await busyboxTar()) });
  vms = new VmDriver({ stateDir, log, cgroupParent: CG, fetchImage: (_img, dest) => fsp.copyFile(image.disk, dest) });
  await containers.start();
  await vms.start();
});

after(async () => {
  if (skip) return;
  const pid = await vms?.pid(vmId).catch(() => null);
  if (pid) pids.add(pid);
  await vms?.destroy(vmId).catch(() => undefined);
  await containers?.destroy(ctrId).catch(() => undefined);
  await vms?.stop();
  await containers?.stop();
  for (const p of pids) if (processAlive(p)) try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
  for (const p of await qsdProcs()) try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
  await sleep(200);
  for (const m of mountsUnder(stateDir).reverse()) await run('umount', ['-l', m]);
  for (const l of await ourLoops()) await run('losetup', ['-d', l.name]);
  for (const c of ['cpu', 'memory', 'pids', 'devices', 'freezer', 'blkio', 'cpuset', 'cpuacct', 'systemd', '']) {
    for (const id of [ctrId, vmId]) await fsp.rmdir(join('/sys/fs/cgroup', c, CG, id)).catch(() => undefined);
    await fsp.rmdir(join('/sys/fs/cgroup', c, CG)).catch(() => undefined);
  }
  await cleanStateDir(stateDir);
});

test('a container: a volume in its spec at start, two attached hot, data through file systems and a device, detached (a busy one waits)', { skip, timeout: 300_000 }, async () => {
  const obs0 = await containers.converge(base(ctrId, 'container', [Q]));
  assert.equal(obs0.state, 'active');
  assert.deepEqual(obs0.volumes, [{ attachment_id: Q.attachment_id, state: 'attached' }]);
  assert.ok(ctrMounts().includes('/data'), 'Q is mounted at /data from the start');
  assert.equal(await sh('[ -b /dev/vdb ] && echo block'), 'block');

  const obs = await containers.converge(base(ctrId, 'container', [Q, R, D]));
  assert.deepEqual(obs.volumes, [Q, R, D].map((v) => ({ attachment_id: v.attachment_id, state: 'attached' })));
  assert.ok(ctrMounts().includes('/srv'), 'R is mounted at /srv');
  assert.ok(!ctrMounts().includes('/dev/vdd'));
  assert.equal((await ourLoops()).length, 3, 'one loop device per volume');
  assert.equal((await qsdProcs()).length, 1, 'one qemu-storage-daemon: Q\'s raw view');

  // data through the file systems and through D's device node
  sums.q = (await sh('head -c 1048576 /dev/urandom > /data/blob && sync && sha256sum /data/blob')).split(' ')[0]!;
  sums.r = (await sh('head -c 1048576 /dev/urandom > /srv/blob && sync && sha256sum /srv/blob')).split(' ')[0]!;
  sums.d = (await sh('head -c 1048576 /dev/urandom > /tmp/d && dd if=/tmp/d of=/dev/vdd bs=65536 conv=fsync 2>/dev/null && sha256sum /tmp/d')).split(' ')[0]!;
  assert.equal((await sh('head -c 1048576 /dev/vdd | sha256sum')).split(' ')[0], sums.d);
  assert.match(sums.q, /^[0-9a-f]{64}$/);
  // a restarted agent finds the attachments as they are (nothing mounted twice)
  await containers.stop();
  containers = new ContainerDriver({ stateDir, log, cgroupParent: CG, fetchImage: async (_id, dest) => fsp.writeFile(dest, await busyboxTar()) });
  await containers.start();
  const before = ctrMounts().length;
  assert.deepEqual((await containers.converge(base(ctrId, 'container', [Q, R, D]))).volumes, obs.volumes);
  assert.equal(ctrMounts().length, before);

  // a process sits in /srv: the detach waits, then says so; nothing is forced
  const sleeper = await run('runc', ['--root', runcRoot(), 'exec', '-d', ctrId, 'sh', '-c', 'cd /srv && exec sleep 600'], { stdout: 'ignore', stderr: 'ignore', timeoutMs: 30_000 });
  assert.equal(sleeper.code, 0);
  const t0 = Date.now();
  const held = await containers.converge(base(ctrId, 'container', [Q, D]));
  assert.ok(Date.now() - t0 >= UMOUNT_TIMEOUT_MS, 'the detach waited for the file system');
  assert.equal(held.state, 'active', 'the server stays as it is');
  assert.deepEqual(held.volumes?.map((v) => [v.attachment_id, v.state]), [[Q.attachment_id, 'attached'], [D.attachment_id, 'attached'], [R.attachment_id, 'failed']]);
  const stuck = await containers.observe(ctrId, 'running');
  assert.equal(stuck?.volumes?.find((v) => v.attachment_id === R.attachment_id)?.state, 'failed');
  assert.match(stuck?.volumes?.find((v) => v.attachment_id === R.attachment_id)?.message ?? '', /in use in the server/);
  assert.ok(ctrMounts().includes('/srv'), 'still mounted');
  await sh('pkill sleep || kill $(pidof sleep)');
  // all three detached
  const gone = await containers.converge(base(ctrId, 'container', []));
  assert.deepEqual(gone.volumes, [], 'nothing attached: an empty list (a 2.4 agent always lists them)');
  assert.ok(!ctrMounts().includes('/srv') && !ctrMounts().includes('/data'));
  assert.equal(await sh('ls /dev/vdb /dev/vdc /dev/vdd 2>/dev/null | wc -l'), '0', 'the nodes are gone');
  assert.deepEqual(await ourLoops(), [], 'no loop device left');
  assert.deepEqual(await qsdProcs(), [], 'no qemu-storage-daemon left');
  assert.deepEqual(mountsUnder(stateDir), []);
  await containers.destroy(ctrId);
});

test('a user-namespace container: a volume with a mount path is mounted once it runs; without one it fails, saying why', { skip, timeout: 120_000 }, async () => {
  const d = base(ctrId, 'container', [R, D]);
  d.flavor.extraSpecs = { 'stratus:userns': 'true' };
  try {
    const obs = await containers.converge(d);
    assert.deepEqual(obs.volumes?.map((v) => [v.attachment_id, v.state]), [[R.attachment_id, 'attached'], [D.attachment_id, 'failed']]);
    assert.match(obs.volumes?.[1]?.message ?? '', /user namespace/);
    assert.ok(ctrMounts().includes('/srv'));
    // read from the host through the container's root (runc exec cannot join this setup's user-namespace containers)
    const root = `/proc/${ctrPid()}/root`;
    assert.equal(createHash('sha256').update(readFileSync(`${root}/srv/blob`)).digest('hex'), sums.r);
    assert.deepEqual(readdirSync(root).filter((n) => n.startsWith('.stratus-volume')), [], 'the node used to mount is gone');
  } finally {
    await containers.destroy(ctrId);
  }
  assert.deepEqual(await ourLoops(), []);
  assert.deepEqual(mountsUnder(stateDir), []);
});

/** Runs `cmd` in the guest's serial shell; what it printed between the markers. */
let seq = 0;
async function guest(cmd: string): Promise<string> {
  const n = ++seq;
  const con = await vms.serialConsole(vmId);
  try {
    let got = '';
    con.on('data', (b: Buffer) => { got += b.toString(); });
    con.write(`echo va$((${n}*1000))-begin; ${cmd}; echo va$((${n}*1000))-end\n`);
    const re = new RegExp(`va${n * 1000}-begin\\r?\\n([\\s\\S]*?)va${n * 1000}-end`);
    const until = Date.now() + 60_000;
    for (;;) {
      const m = re.exec(got);
      if (m) return m[1]!.replace(/\r/g, '').trim();
      if (Date.now() > until) assert.fail(`no answer to ${cmd}: ${got.slice(-400)}`);
      await sleep(200);
    }
  } finally {
    con.destroy();
  }
}
/** The guest's virtio disks by serial. */
async function guestDisks(want: (m: Map<string, string>) => boolean): Promise<Map<string, string>> {
  const until = Date.now() + 120_000;
  for (;;) {
    const text = await guest('for b in /sys/block/vd*; do [ -e "$b/serial" ] && echo "$(cat $b/serial) ${b##*/}"; done');
    const m = new Map(text.split('\n').filter((l) => / vd[a-z]+$/.test(l)).map((l) => l.split(' ') as [string, string]));
    if (want(m) || Date.now() > until) return m;
    await sleep(1000);
  }
}
const serial = (v: ServerVolumeSpec) => v.volume_id.slice(0, 20);
/** The checksum of /blob on the guest's disk `dev` (ext4 is among the modules the guest loads after it is ready: mount retried). */
const blobSum = async (dev: string) => {
  const out = await guest(`dmesg -n 1; for i in $(seq 30); do mount -t ext4 -o ro /dev/${dev} /mnt && break; sleep 1; done; sha256sum /mnt/blob; umount /mnt`);
  return /\b[0-9a-f]{64}\b/.exec(out)?.[0] ?? out;
};

test('a VM: a volume at boot, two hot-plugged, the container\'s data read back, each unplugged, nothing left', { skip, timeout: 600_000 }, async () => {
  assert.ok(sums.q && sums.r && sums.d, 'the container test wrote the data');
  const obs0 = await vms.converge(base(vmId, 'vm', [Q]));
  const pid = (await vms.pid(vmId))!;
  pids.add(pid);
  assert.deepEqual(obs0.volumes, [{ attachment_id: Q.attachment_id, state: 'attached' }]);
  const qemuUid = Number((await runOk('id', ['-u', 'stratus-qemu'])).stdout.trim());
  for (const l of await ourLoops()) assert.equal((await fsp.stat(l.name)).uid, qemuUid, 'the loop device is stratus-qemu\'s');
  const until = Date.now() + BOOT_WAIT_MS;
  while (!new RegExp(READY_MARKER).test(await vms.consoleOutput(vmId))) {
    if (Date.now() > until) assert.fail('the guest never got ready');
    await sleep(500);
  }
  let disks = await guestDisks((m) => m.has(serial(Q)));
  const qdev = disks.get(serial(Q));
  assert.ok(qdev, `the boot volume is a disk with the volume's serial: ${JSON.stringify([...disks])}`);
  assert.equal(await blobSum(qdev), sums.q, 'the container\'s data, read in the VM (qcow2)');

  const obs = await vms.converge(base(vmId, 'vm', [Q, R, D]));
  assert.equal(await vms.pid(vmId), pid, 'the same qemu');
  assert.deepEqual(obs.volumes, [Q, R, D].map((v) => ({ attachment_id: v.attachment_id, state: 'attached' })));
  disks = await guestDisks((m) => m.has(serial(R)) && m.has(serial(D)));
  assert.equal(await blobSum(disks.get(serial(R))!), sums.r);
  assert.equal(/\b[0-9a-f]{64}\b/.exec(await guest(`head -c 1048576 /dev/${disks.get(serial(D))} | sha256sum`))?.[0], sums.d);
  // a restarted agent re-adopts the VM and finds its disks in qemu (nothing plugged twice)
  await vms.stop();
  vms = new VmDriver({ stateDir, log, cgroupParent: CG, accel: 'tcg', fetchImage: (_img, dest) => fsp.copyFile(image.disk, dest) });
  await vms.start();
  const again = await vms.converge(base(vmId, 'vm', [Q, R, D]));
  assert.equal(await vms.pid(vmId), pid, 'the same qemu');
  assert.deepEqual(again.volumes, obs.volumes);
  const q = await vms['qmp'](vmId);
  const disksNow = (await q.execute('qom-list', { path: '/machine/peripheral' })).map((c) => c.name).filter((n) => n.startsWith('disk-')).sort();
  assert.deepEqual(disksNow, [Q, R, D].map((v) => diskIds(v.attachment_id).device).sort());
  // the disks sit on distinct root ports (so they can be unplugged)
  const buses = new Set<string>();
  for (const v of [Q, R, D]) buses.add(String(await q.execute('qom-get', { path: `/machine/peripheral/${diskIds(v.attachment_id).device}`, property: 'parent_bus' })));
  assert.equal(buses.size, 3);
  for (const b of buses) assert.match(b, /^\/machine\/peripheral\/hp\d+\/hp\d+$/);

  // unplug R and Q; D stays
  const gone = await vms.converge(base(vmId, 'vm', [D]));
  assert.deepEqual(gone.volumes, [{ attachment_id: D.attachment_id, state: 'attached' }]);
  disks = await guestDisks((m) => !m.has(serial(R)) && !m.has(serial(Q)));
  assert.deepEqual([...disks.keys()], [serial(D)], 'the guest sees only D');
  const nodes = (await q.execute('query-named-block-nodes', { flat: true })).map((n) => n['node-name']);
  for (const v of [Q, R]) assert.ok(!nodes.includes(diskIds(v.attachment_id).node), 'its block node is gone');
  assert.equal((await ourLoops()).length, 1, 'only D\'s loop device is left');
  assert.deepEqual(await qsdProcs(), []);

  // R again, read-only: a read-only loop device and disk; the data reads back
  const Rro: ServerVolumeSpec = { ...R, attachment_id: randomUUID(), read_only: true };
  assert.deepEqual((await vms.converge(base(vmId, 'vm', [D, Rro]))).volumes?.map((v) => v.state), ['attached', 'attached']);
  assert.deepEqual((await ourLoops()).find((l) => l.back === R.location)?.ro, true);
  disks = await guestDisks((m) => m.has(serial(R)));
  assert.equal(await guest(`blockdev --getro /dev/${disks.get(serial(R))}`), '1', 'the guest sees a read-only disk');
  assert.equal(await blobSum(disks.get(serial(R))!), sums.r);

  // a paused guest cannot release a disk: the detach fails after its timeout (listed, with a message;
  // the VM stays paused); running again, the next pass completes it
  const t0 = Date.now();
  const held = await vms.converge(base(vmId, 'vm', [D], 'paused'));
  assert.ok(Date.now() - t0 >= 25_000, 'the unplug waited for the guest');
  assert.equal(held.state, 'paused');
  const f = held.volumes?.find((v) => v.attachment_id === Rro.attachment_id);
  assert.equal(f?.state, 'failed');
  assert.match(f?.message ?? '', /did not release the volume/);
  const settled = await vms.converge(base(vmId, 'vm', [D]));
  assert.deepEqual(settled.volumes, [{ attachment_id: D.attachment_id, state: 'attached' }]);
  assert.ok(!(await ourLoops()).some((l) => l.back === R.location), 'R\'s loop device is gone');
  assert.deepEqual([...(await guestDisks((m) => !m.has(serial(R)))).keys()], [serial(D)]);

  // a deleted VM leaves nothing: no loop device, no daemon, no mount
  await vms.destroy(vmId);
  assert.deepEqual(await ourLoops(), []);
  assert.deepEqual(mountsUnder(stateDir), []);
  assert.deepEqual(await fsp.readdir(join(stateDir, 'attachments')), [], 'no attachment record left');

  // a device a crash left unlisted (acquired, the server's state never written) is released by the sweep's check
  const orphan = { ...D, attachment_id: randomUUID() };
  await vms.attacher.acquire(orphan, `vm:${randomUUID()}`);
  assert.equal((await ourLoops()).length, 1);
  assert.deepEqual(await vms.attacher.releaseOrphans('container', async () => false, 0), [], 'another driver\'s records are not its');
  assert.deepEqual(await vms.attacher.releaseOrphans('vm', async () => true, 0), [], 'a listed one stays');
  assert.deepEqual(await vms.attacher.releaseOrphans('vm', async () => false, 0), [orphan.attachment_id]);
  assert.deepEqual(await ourLoops(), []);
});
