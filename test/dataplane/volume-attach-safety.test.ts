// What an attachment's device may and may not do on the host, as root with
// real runc, loop devices, qemu-storage-daemon and the file volume backend:
//   - a container swapping a component of its mount path between a directory
//     and a symbolic link to a host directory, while the volume is attached
//     and detached again and again, never gets anything made or mounted on
//     the host (the mount point is made inside its mount namespace);
//   - an export location outside the volume backend's directory (a file
//     elsewhere, a link or `..` leading out, a directory) is refused, saying
//     so, with nothing attached;
//   - a qcow2 snapshot asked while an attach of the volume is starting its
//     storage daemon waits for it and is refused (the one per-volume lock),
//     and the daemon holds the volume's current file, never a frozen layer;
//   - an acquire whose losetup fails after the qcow2 raw view was made
//     leaves no daemon, mount, record or view file; a view that cannot be
//     unmounted makes the release fail, saying so.
// Everything made is removed in after() (by path and PID), also on failure.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { run, runOk } from '../../src/agent/exec.ts';
import type { DesiredServer, ServerVolumeSpec } from '../../src/compute/engine/protocol.ts';
import { ContainerDriver } from '../../src/agent/drivers/container/driver.ts';
import { FileBackend } from '../../src/agent/drivers/volume/file.ts';
import { volumeDirOf } from '../../src/agent/drivers/volume/host.ts';
import { loopDevices } from '../../src/agent/drivers/volume-attach.ts';
import { busyboxTar, cleanStateDir, mountsUnder, skipUnlessRoot, sleep } from './lib.ts';

const skip = skipUnlessRoot;
const hasPython = ['/usr/bin', '/usr/local/bin'].some((d) => existsSync(join(d, 'python3')));
/** Exchanges two paths (renameat2 RENAME_EXCHANGE) until killed: a container flipping a directory and a link. */
const SWAPPER = `import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
a, b = sys.argv[1].encode(), sys.argv[2].encode()
while True:
    libc.renameat2(-100, a, -100, b, 2)
`;
const pids = new Set<number>();
const CG = `stratus-vas-${process.pid}`;
const stateDir = mkdtempSync(join(tmpdir(), 'stratus-vas-'));
const volDir = volumeDirOf(stateDir);
const hostBase = join(stateDir, 'host-side');
const log = pino({ level: 'warn' });
let containers: ContainerDriver;
let backend: FileBackend;
const ctrId = randomUUID();
const realPath = process.env.PATH;

const spec = (location: string, format: 'raw' | 'qcow2', device: string, mount_path?: string, volume_id: string = randomUUID()): ServerVolumeSpec => ({
  attachment_id: randomUUID(), volume_id, device, location, format, read_only: false, ...(mount_path ? { mount_path } : {}), boot_index: null,
});

let version = 0;
const desired = (volumes: ServerVolumeSpec[]): DesiredServer => ({
  id: ctrId, version: ++version, name: 'vas', hostname: 'vas', project_id: 'p', user_id: 'u', kind: 'container',
  image: { id: `img-${ctrId}`, name: 'busybox', status: 'active', container_format: 'docker', disk_format: 'raw', size: null, checksum: null },
  flavor: { id: 'f', name: 'f', vcpus: 1, ram: 128, disk: 0, ephemeral: 0, swap: 0, extraSpecs: {} },
  power: 'running', reboot_seq: 0, reboot_type: null, rebuild_seq: 0, vm_state: 'active', task_state: null, deleted: false,
  config_drive: { requested: false, meta_data: {}, user_data: null, network_data: { links: [], networks: [], services: [] }, vendor_data: {} },
  volumes,
});

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
/** The files a process holds open. */
const openFiles = async (pid: number) => {
  const out: string[] = [];
  for (const fd of await fsp.readdir(`/proc/${pid}/fd`).catch(() => [] as string[])) out.push(await fsp.readlink(`/proc/${pid}/fd/${fd}`).catch(() => ''));
  return out;
};
const runcRoot = () => join(stateDir, 'runc');
const ctrPid = () => JSON.parse(readFileSync(join(runcRoot(), ctrId, 'state.json'), 'utf8')).init_process_pid as number;
async function sh(cmd: string): Promise<string> {
  const r = await run('runc', ['--root', runcRoot(), 'exec', ctrId, 'sh', '-c', cmd], { timeoutMs: 60_000 });
  assert.equal(r.code, 0, `${cmd}: ${r.stderr}`);
  return r.stdout.trim();
}
/** Everything under `dir` on the host (paths relative to it). */
async function tree(dir: string): Promise<string[]> {
  return (await fsp.readdir(dir, { recursive: true }).catch(() => [] as string[])).map(String).sort();
}
/** A PATH whose `name` fails with `message` when its arguments include `when` (always when null; else it runs the real one): a test double. */
async function failing(name: string, when: string | null, message: string): Promise<string> {
  const real = (await runOk('sh', ['-c', `command -v ${name}`])).stdout.trim();
  const bin = join(stateDir, `fail-${name}`);
  await fsp.mkdir(bin, { recursive: true });
  const fail = `echo "${message}" >&2; exit 32`;
  await fsp.writeFile(join(bin, name), when === null ? `#!/bin/sh\n${fail}\n` : `#!/bin/sh\nfor a in "$@"; do [ "$a" = "${when}" ] && { ${fail}; }; done\nexec ${real} "$@"\n`, { mode: 0o755 });
  return `${bin}:${realPath}`;
}

const R = spec(join(volDir, 'r.raw'), 'raw', '/dev/vdc');

before(async () => {
  if (skip) return;
  await fsp.mkdir(hostBase, { recursive: true });
  backend = new FileBackend({ dir: volDir, format: 'qcow2' });
  await backend.start();
  await runOk('truncate', ['-s', '64M', R.location]);
  await runOk('mkfs.ext4', ['-q', '-F', R.location]);
  containers = new ContainerDriver({ stateDir, log, cgroupParent: CG, fetchImage: async (_id, dest) => fsp.writeFile(dest, await busyboxTar()) });
  await containers.start();
  assert.equal((await containers.converge(desired([]))).state, 'active');
});

after(async () => {
  if (skip) return;
  process.env.PATH = realPath;
  for (const p of pids) try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
  for (const p of await qsdProcs()) try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
  await sleep(200);
  await containers?.destroy(ctrId).catch(() => undefined);
  await containers?.stop();
  for (const m of mountsUnder(stateDir).reverse()) await run('umount', ['-l', m]);
  for (const l of await ourLoops()) await run('losetup', ['-d', l.name]);
  for (const c of ['cpu', 'memory', 'pids', 'devices', 'freezer', 'blkio', 'cpuset', 'cpuacct', 'systemd', '']) {
    await fsp.rmdir(join('/sys/fs/cgroup', c, CG, ctrId)).catch(() => undefined);
    await fsp.rmdir(join('/sys/fs/cgroup', c, CG)).catch(() => undefined);
  }
  await cleanStateDir(stateDir);
});

test('a mount path the container swaps between a directory and a link to a host directory: nothing made or mounted on the host', { skip: skip || (hasPython ? false : 'python3 (the swapper) is not installed'), timeout: 180_000 }, async (t) => {
  // a link standing still is refused, saying so
  await sh(`ln -s ${hostBase} /linked`);
  const still = await containers.converge(desired([{ ...R, mount_path: '/linked/data' }]));
  assert.equal(still.volumes?.[0]?.state, 'failed');
  assert.match(still.volumes?.[0]?.message ?? '', /symbolic link/);
  assert.deepEqual((await containers.converge(desired([]))).volumes, []);
  assert.deepEqual(await tree(hostBase), []);

  // /a flips between a directory and a link to the host directory (an atomic exchange, renameat2, as fast as it
  // goes) while the volume comes and goes; the container's part is played from the host, on its root
  const root = `/proc/${ctrPid()}/root`;
  await sh(`mkdir /a && ln -s ${hostBase} /a.alt`);
  const swapper = spawn('python3', ['-c', SWAPPER, `${root}/a`, `${root}/a.alt`], { stdio: 'ignore' });
  swapper.on('error', () => undefined);
  pids.add(swapper.pid!);
  const mp = '/a/b1';
  const states = new Map<string, number>();
  try {
    const until = Date.now() + 25_000;
    for (let i = 0; i < 60 && Date.now() < until; i++) {
      const obs = await containers.converge(desired([{ ...R, mount_path: mp }]));
      const st = obs.volumes?.[0]?.state ?? 'none';
      states.set(st, (states.get(st) ?? 0) + 1);
      assert.deepEqual(await tree(hostBase), [], `attempt ${i}: nothing made under the host directory`);
      assert.deepEqual(mountsUnder(hostBase), [], `attempt ${i}: nothing mounted on the host`);
      assert.deepEqual((await containers.converge(desired([]))).volumes, [], `attempt ${i}: detached`);
      const left = readFileSync(`/proc/${ctrPid()}/mountinfo`, 'utf8').split('\n').filter((l) => / \/dev\/vdc /.test(l));
      assert.deepEqual(left, [], `attempt ${i}: no mount of the volume left in the container, wherever it was moved`);
    }
  } finally {
    swapper.kill('SIGKILL');
  }
  assert.deepEqual(await tree(hostBase), []);
  assert.deepEqual(await ourLoops(), []);
  t.diagnostic(`attempts: ${JSON.stringify(Object.fromEntries(states))}`);
});

test('an export location outside the volume backend\'s directory is refused, nothing attached', { skip, timeout: 60_000 }, async () => {
  const outside = join(stateDir, 'elsewhere');
  await fsp.mkdir(outside, { recursive: true });
  await runOk('truncate', ['-s', '16M', join(outside, 'x.raw')]);
  await fsp.symlink(join(outside, 'x.raw'), join(volDir, 'link.raw'));
  await fsp.mkdir(join(volDir, 'adir.raw'));
  const bad = [
    spec(join(outside, 'x.raw'), 'raw', '/dev/vdd'),
    spec(join(volDir, 'link.raw'), 'raw', '/dev/vde'),
    spec(`${volDir}/../elsewhere/x.raw`, 'raw', '/dev/vdf'),
    spec(join(volDir, 'adir.raw'), 'raw', '/dev/vdg'),
    spec('/etc/hostname', 'raw', '/dev/vdh'),
  ];
  try {
    const obs = await containers.converge(desired(bad));
    assert.equal(obs.state, 'active');
    for (const v of obs.volumes ?? []) {
      assert.equal(v.state, 'failed');
      assert.match(v.message ?? '', /names no file of this host's volume backend: refused/);
    }
    assert.equal(obs.volumes?.length, bad.length);
    assert.deepEqual((await loopDevices()).filter((l) => l.back.startsWith(outside) || l.back === '/etc/hostname'), [], 'no loop device');
    assert.equal(await sh('ls /dev/vdd /dev/vde /dev/vdf /dev/vdg /dev/vdh 2>/dev/null | wc -l'), '0', 'no node in the container');
    assert.deepEqual((await fsp.readdir(join(stateDir, 'attachments'))).filter((n) => n.endsWith('.json')), [], 'no attachment record');
  } finally {
    assert.deepEqual((await containers.converge(desired([]))).volumes, []);
    await fsp.rm(join(volDir, 'link.raw'), { force: true });
    await fsp.rmdir(join(volDir, 'adir.raw')).catch(() => undefined);
  }
});

test('a qcow2 snapshot asked while an attach starts the volume\'s storage daemon waits for it and is refused', { skip, timeout: 120_000 }, async () => {
  for (let i = 0; i < 3; i++) {
    const id = randomUUID();
    const made = await backend.create(id, 1, { type: 'blank' });
    const v = spec(made.location, 'qcow2', '/dev/vdb', undefined, id);
    try {
      // asked in this order: the attach first
      const [attach, snap] = await Promise.allSettled([containers.attacher.acquire(v, `container:${randomUUID()}`), backend.snapshot(id, `snap-${i}`)]);
      assert.equal(attach.status, 'fulfilled', attach.status === 'rejected' ? String(attach.reason) : '');
      assert.equal(snap.status, 'rejected', 'the snapshot saw the attachment');
      assert.match(String((snap as PromiseRejectedResult).reason), /attached/);
      const [qsd] = await qsdProcs();
      assert.ok(qsd, 'a storage daemon serves the attachment');
      const files = await openFiles(qsd);
      assert.ok(files.includes(made.location), `the daemon holds the volume's file (${files.join(', ')})`);
      assert.ok(!files.some((f) => f.includes('/layers/')), 'and no frozen layer');
      assert.equal(await backend.observeSnapshot(id, `snap-${i}`), null, 'no snapshot made');
    } finally {
      await containers.attacher.release(v.attachment_id);
    }
    assert.deepEqual(await qsdProcs(), []);
    assert.ok((await backend.snapshot(id, `snap-${i}`)).location, 'detached: the snapshot is made');
    await backend.delete(id);
  }
  assert.deepEqual(await ourLoops(), []);
});

test('a losetup failing after the qcow2 raw view was made leaves nothing; a view that will not unmount fails the release, saying so', { skip, timeout: 120_000 }, async () => {
  const id = randomUUID();
  const made = await backend.create(id, 1, { type: 'blank' });
  const v = spec(made.location, 'qcow2', '/dev/vdb', undefined, id);
  const attachments = join(stateDir, 'attachments');
  process.env.PATH = await failing('losetup', '--find', 'losetup: no free loop device (test double)');
  try {
    await assert.rejects(containers.attacher.acquire(v, `container:${randomUUID()}`), /no free loop device/);
  } finally {
    process.env.PATH = realPath;
  }
  assert.deepEqual(await qsdProcs(), [], 'the storage daemon it started is gone');
  assert.deepEqual(mountsUnder(attachments), [], 'its FUSE view is unmounted');
  assert.deepEqual(await fsp.readdir(attachments), [], 'no record, no view file');

  // a daemon that died without unmounting its view (killed), and an umount that fails: the release says so
  await containers.attacher.acquire(v, `container:${randomUUID()}`);
  const [qsd] = await qsdProcs();
  assert.ok(qsd);
  process.kill(qsd, 'SIGKILL');
  for (let i = 0; i < 50 && (await qsdProcs()).length; i++) await sleep(100);
  process.env.PATH = await failing('umount', null, 'umount: target is busy (test double)');
  try {
    await assert.rejects(containers.attacher.release(v.attachment_id), /umount .*raw view.*target is busy/);
  } finally {
    process.env.PATH = realPath;
  }
  assert.deepEqual(await qsdProcs(), []);
  assert.equal(mountsUnder(attachments).length, 1, 'the view is still mounted');
  assert.equal((await fsp.readdir(attachments)).filter((n) => n.endsWith('.json')).length, 1, 'the record stays for the next release');
  // the next release, umount working, completes it
  await containers.attacher.release(v.attachment_id);
  assert.deepEqual(mountsUnder(attachments), []);
  assert.deepEqual(await fsp.readdir(attachments), []);
  assert.deepEqual(await ourLoops(), []);
  await backend.delete(id);
});
