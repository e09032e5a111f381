// The VM-isolated container driver as root with real qemu (TCG here) and the
// busybox OCI image the all-in-one imports: a desired `vm-container` server
// converges to a qemu (as stratus-qemu, in its cgroup) booting the guest
// kernel, whose root disk is ext4 made from the image's layers; the image's
// entrypoint runs (its console lines), with the config drive at /mnt/config
// and its user data; the command's exit powers the VM off (stopped, as a
// container whose process ends); a start boots the same disk again (the
// user data's once-marker is still there); a hard reboot (same qemu) and a
// graceful stop (the image's stop signal); destroy leaves no process, file
// or cgroup. Everything is killed by PID and removed in after() also when a
// step fails.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { DesiredServer } from '../../src/compute/engine/protocol.ts';
import { VmContainerDriver } from '../../src/agent/drivers/vm-container/driver.ts';
import { VMC_EXITED } from '../../src/agent/drivers/vm-container/guest.ts';
import { busyboxTar, processAlive, skipUnlessRoot, sleep } from './lib.ts';
import { BOOT_WAIT_MS } from './vm-guest.ts';

const hasQemu = ['/usr/bin', '/usr/local/bin'].some((d) => existsSync(join(d, 'qemu-system-x86_64')));
const skip = skipUnlessRoot || (hasQemu ? false : 'qemu-system-x86_64 is not installed');

const stateDir = mkdtempSync(join(tmpdir(), 'stratus-vmc-'));
const log = pino({ level: 'warn' });
const CGROUP_PARENT = `stratus-vmc-test-${process.pid}`;
let driver: VmContainerDriver;
const id = randomUUID();
const pids = new Set<number>();

let version = 0;
const desired = (o: Partial<DesiredServer> = {}): DesiredServer => ({
  id, version: ++version, name: 'vmc-one', hostname: 'vmc-one', project_id: 'p', user_id: 'u', kind: 'vm-container',
  image: { id: `busybox-${id}`, name: 'busybox', status: 'active', container_format: 'docker', disk_format: 'raw', size: null, checksum: null },
  flavor: { id: 'f', name: 'f', vcpus: 1, ram: 128, disk: 0, ephemeral: 0, swap: 0, extraSpecs: { 'stratus:kind': 'vm-container' } },
  power: 'running', reboot_seq: 0, reboot_type: null, rebuild_seq: 0, vm_state: 'active', task_state: null, deleted: false,
  config_drive: {
    requested: true, meta_data: { uuid: id, name: 'vmc-one', hostname: 'vmc-one' },
    // runs once per instance (the image's init keeps a marker on the disk): the command ends, so does the VM
    user_data: Buffer.from('#!/bin/sh\necho "vmc-user-data pid1=$(cat /proc/1/comm) host=$(hostname) path=$PATH"\nsleep 1\nkill -TERM 1\n').toString('base64'),
    network_data: { links: [], networks: [], services: [] }, vendor_data: {},
  },
  ports: [],
  ...o,
});

async function qemuPid(): Promise<number | null> {
  const pid = await driver.pid(id);
  if (pid) pids.add(pid);
  return pid;
}

async function waitConsole(pattern: RegExp, from = 0): Promise<string> {
  const until = Date.now() + BOOT_WAIT_MS;
  for (;;) {
    const text = (await driver.consoleOutput(id)).slice(from);
    if (pattern.test(text)) return text;
    if (Date.now() > until) assert.fail(`console never matched ${pattern}; tail: ${text.slice(-800)}`);
    await sleep(500);
  }
}

async function waitStopped(ms = 120_000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if ((await driver.observe(id, 'running'))?.state === 'stopped') return;
    await sleep(500);
  }
  assert.fail('the VM did not stop');
}

before(async () => {
  if (skip) return;
  const archive = await busyboxTar();
  driver = new VmContainerDriver({
    stateDir, log, cgroupParent: CGROUP_PARENT, consoleCap: 256 * 1024, keepUnusedImagesMs: 0, stopTimeoutMs: 60_000,
    fetchImage: async (_imageId, dest) => fsp.writeFile(dest, archive),
  });
  await driver.start();
});

after(async () => {
  if (skip) return;
  await driver?.destroy(id).catch(() => undefined);
  await driver?.stop();
  for (const p of pids) if (processAlive(p)) try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
  for (const c of ['cpu', 'memory', 'pids', '']) await fsp.rmdir(join('/sys/fs/cgroup', c, CGROUP_PARENT, id)).catch(() => undefined);
  for (const c of ['cpu', 'memory', 'pids', '']) await fsp.rmdir(join('/sys/fs/cgroup', c, CGROUP_PARENT)).catch(() => undefined);
  rmSync(stateDir, { recursive: true, force: true });
});

test('a VM-isolated container runs the busybox image: its entrypoint in a VM, the config drive, the user data; its exit powers the VM off', { skip }, async () => {
  const obs = await driver.converge(desired());
  assert.equal(obs.state, 'active');
  const pid = await qemuPid();
  assert.ok(pid, 'qemu runs');
  const argv = (await fsp.readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
  assert.ok(argv.includes('-kernel') && argv.includes('-initrd'), 'the guest kernel boots directly');
  assert.equal((await fsp.stat(`/proc/${pid}`)).uid, Number((await fsp.readFile('/etc/passwd', 'utf8')).match(/^stratus-qemu:x:(\d+):/m)?.[1]), 'qemu runs as stratus-qemu');
  for (const dir of driver.cgroupDirs(id)) {
    assert.ok((await fsp.readFile(join(dir, 'cgroup.procs'), 'utf8')).split('\n').includes(String(pid)), `qemu is in ${dir}`);
  }
  // the root disk: ext4 made from the image (its label), as a qcow2
  const info = JSON.parse((await import('node:child_process')).execFileSync('qemu-img', ['info', '-U', '--output=json', join(stateDir, 'vm-container', 'servers', id, 'root.qcow2')], { encoding: 'utf8' })) as { format: string };
  assert.equal(info.format, 'qcow2');
  const text = await waitConsole(/vmc-user-data/);
  assert.match(text, /stratus-init: starting/, 'the image entrypoint (/sbin/stratus-init) ran');
  assert.match(text, /stratus-init: hostname vmc-one/);
  assert.match(text, /stratus-init: config drive at \/mnt\/config/);
  assert.match(text, /stratus-init: serving the hostname on port 80/);
  // the image's env (its PATH), in a PID namespace of its own (the image's init is PID 1)
  assert.match(text, /vmc-user-data pid1=stratus-init host=vmc-one path=\/usr\/local\/sbin:\/usr\/local\/bin:\/usr\/sbin:\/usr\/bin:\/sbin:\/bin/);
  // the command ends (the user data stops it): the VM powers off by itself
  await waitConsole(new RegExp(`${VMC_EXITED} 0`));
  await waitStopped();
  assert.equal(await driver.pid(id), null);
  assert.equal(processAlive(pid), false);
  const stopped = await driver.observe(id, 'running');
  assert.equal(stopped?.state, 'stopped');
});

test('start boots the same disk again (the user data does not run twice); a hard reboot restarts the command in the same qemu', { skip }, async () => {
  const before = (await driver.consoleOutput(id)).length;
  assert.equal((await driver.converge(desired())).state, 'active');
  const pid = await qemuPid();
  assert.ok(pid);
  await waitConsole(/stratus-init: vmc-one is up/, before);
  await sleep(3000);
  const after1 = (await driver.consoleOutput(id)).slice(before);
  assert.doesNotMatch(after1, /vmc-user-data/, 'the once-marker of the user data was kept on the disk');
  assert.equal(await driver.pid(id), pid, 'still running');

  const mark = (await driver.consoleOutput(id)).length;
  assert.equal((await driver.converge(desired({ reboot_seq: 1, reboot_type: 'HARD' }))).state, 'active');
  await waitConsole(/stratus-init: vmc-one is up/, mark);
  assert.equal(await driver.pid(id), pid, 'a hard reboot keeps the qemu process');
});

test('a graceful stop sends the image its stop signal, then the VM is off; destroy leaves nothing', { skip }, async () => {
  await sleep(2000);
  const mark = (await driver.consoleOutput(id)).length;
  const pid = await qemuPid();
  assert.ok(pid);
  const obs = await driver.converge(desired({ reboot_seq: 1, reboot_type: 'HARD', power: 'stopped' }));
  assert.equal(obs.state, 'stopped');
  assert.equal(processAlive(pid), false);
  const text = (await driver.consoleOutput(id)).slice(mark);
  assert.match(text, /stopping the container \(SIGTERM\)/);
  assert.match(text, /stratus-init: stopping/, 'the image got its stop signal');
  await driver.destroy(id);
  assert.equal(existsSync(join(stateDir, 'vm-container', 'servers', id)), false);
  for (const dir of driver.cgroupDirs(id)) assert.equal(existsSync(dir), false);
  assert.deepEqual(await driver.localServers(), []);
});
