// The VM driver as root with real qemu (TCG here: the probe must say so on a
// host without vmx/svm) and the small guest image (stratus-tiny): a desired
// `vm` server converges to a running qemu as stratus-qemu in its own cgroup,
// with a qcow2 overlay, ephemeral and swap disks, a config drive and a tap
// for its port; the guest boots (its console says so) and its serial console
// answers typed commands; pause/unpause,
// suspend (memory saved to disk, qemu gone) and resume (a new qemu loads it),
// a hard reboot (same process), an ACPI stop and a start; a
// new driver instance on the same state adopts the running VM without
// restarting it; a snapshot is a standalone qcow2; destroy leaves no process,
// file, cgroup or tap, and the sweep drops the unused cached image.
// Everything is killed by PID and removed in after() also when a step fails.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { pino } from 'pino';
import { run, runOk } from '../../src/agent/exec.ts';
import type { DesiredServer } from '../../src/compute/engine/protocol.ts';
import { VmDriver } from '../../src/agent/drivers/vm/driver.ts';
import { PROBE_CACHE } from '../../src/agent/drivers/vm/accel.ts';
import { buildTinyImage, type TinyImage } from '../../src/agent/drivers/vm/guest/tiny-image.ts';
import { READY_MARKER } from '../../src/agent/drivers/vm/guest/scripts.ts';
import { tapName } from '../../src/network/protocol.ts';
import { processAlive, skipUnlessRoot, sleep } from './lib.ts';
import { ResourceFailure } from '../../src/agent/errors.ts';

const hasQemu = ['/usr/bin', '/usr/local/bin'].some((d) => existsSync(join(d, 'qemu-system-x86_64')));
const skip = skipUnlessRoot || (hasQemu ? false : 'qemu-system-x86_64 is not installed');
/** How long to wait for the guest (a loaded 2-core box under TCG); not a timing assertion. */
const BOOT_WAIT_MS = 240_000;

const stateDir = mkdtempSync(join(tmpdir(), 'stratus-vmdrv-'));
const log = pino({ level: 'warn' });
let image: TinyImage;
let driver: VmDriver;
const fetched: string[] = [];
const id = randomUUID();
const portId = randomUUID();
const tap = tapName(portId);
const pids = new Set<number>();

const mkDriver = () => new VmDriver({
  stateDir, log, cgroupParent: 'stratus-vmdrv-test', consoleCap: 256 * 1024, keepUnusedImagesMs: 0,
  fetchImage: async (imageId, dest) => {
    fetched.push(imageId);
    if (imageId.startsWith('garbage-')) await fsp.writeFile(dest, Buffer.alloc(4096, 7));
    // a qcow2 whose data lives in another file (as root, qemu would read any host file so)
    else if (imageId.startsWith('datafile-')) await runOk('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', `data_file=${dest}.data,data_file_raw=on`, dest, '1M']);
    else await fsp.copyFile(image.disk, dest);
  },
});

let version = 0;
const desired = (o: Partial<DesiredServer> = {}): DesiredServer => ({
  id, version: ++version, name: 'vmdrv-one', hostname: 'vmdrv-one', project_id: 'p', user_id: 'u', kind: 'vm',
  image: { id: `img-${id}`, name: 'stratus-tiny', status: 'active', container_format: 'bare', disk_format: 'qcow2', size: null, checksum: null },
  flavor: { id: 'f', name: 'f', vcpus: 1, ram: 128, disk: 1, ephemeral: 1, swap: 16, extraSpecs: {} },
  power: 'running', reboot_seq: 0, reboot_type: null, rebuild_seq: 0, vm_state: 'active', task_state: null, deleted: false,
  config_drive: {
    requested: true, meta_data: { name: 'vmdrv-one', hostname: 'vmdrv-one' }, user_data: Buffer.from('#!/bin/sh\necho vmdrv-user-data-ran\n').toString('base64'),
    network_data: { links: [], networks: [], services: [] }, vendor_data: {},
  },
  ports: [{ id: portId, mac_address: 'fa:16:3e:12:34:56', device: tap, mtu: 1500, index: 0 }],
  ...o,
});

const serverDir = () => join(stateDir, 'vm', 'servers', id);
const cgroups = () => driver.cgroupDirs(id);
const linkExists = async (name: string) => (await run('ip', ['link', 'show', 'dev', name])).code === 0;
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
    if (Date.now() > until) assert.fail(`console never matched ${pattern}; tail: ${text.slice(-600)}`);
    await sleep(500);
  }
}

before(async () => {
  if (skip) return;
  image = await buildTinyImage();
  driver = mkDriver();
  await driver.start();
});

after(async () => {
  if (skip) return;
  await driver?.destroy(id).catch(() => undefined);
  await driver?.stop();
  for (const p of pids) if (processAlive(p)) try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
  if (await linkExists(tap).catch(() => false)) await run('ip', ['link', 'del', 'dev', tap]);
  for (const c of ['cpu', 'memory', 'pids', '']) await fsp.rmdir(join('/sys/fs/cgroup', c, 'stratus-vmdrv-test', id)).catch(() => undefined);
  for (const c of ['cpu', 'memory', 'pids', '']) await fsp.rmdir(join('/sys/fs/cgroup', c, 'stratus-vmdrv-test')).catch(() => undefined);
  rmSync(stateDir, { recursive: true, force: true });
});

test('hypervisor: the probe reports TCG on a host whose CPU has no vmx/svm', { skip }, async () => {
  const h = await driver.hypervisor();
  assert.match(h.version ?? '', /^\d+\.\d+\.\d+$/);
  assert.equal(h.type, h.accel === 'kvm' ? 'KVM' : 'QEMU');
  if (!/\b(vmx|svm)\b/.test(readFileSync('/proc/cpuinfo', 'utf8'))) assert.equal(h.accel, 'tcg');
  // kept for the other agents of this boot, under this boot's id and this qemu's version
  const kept = JSON.parse(readFileSync(PROBE_CACHE, 'utf8')) as { key: string; probe: { accel: string } };
  assert.equal(kept.probe.accel, h.accel);
  assert.equal(kept.key, `${readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()}/${h.version}`);
});

test('converge: a running qemu as stratus-qemu in its cgroup, with its disks, config drive and tap; the guest boots', { skip }, async () => {
  const obs = await driver.converge(desired());
  assert.deepEqual(obs, { power_state: 1, state: 'active', volumes: [] });
  const pid = await qemuPid();
  assert.ok(pid, 'qemu runs');
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const uid = Number(/^Uid:\s+(\d+)/m.exec(status)![1]);
  assert.equal(uid, Number((await runOk('id', ['-u', 'stratus-qemu'])).stdout.trim()), 'qemu dropped to stratus-qemu');
  assert.match(status, /^Seccomp:\s+2$/m, 'qemu runs under its seccomp sandbox');
  for (const c of cgroups()) assert.match(readFileSync(join(c, 'cgroup.procs'), 'utf8'), new RegExp(`^${pid}$`, 'm'), `qemu is in ${c}`);
  const mem = cgroups().find((c) => c.includes('/memory/')) ?? cgroups()[0]!;
  const limit = Number(readFileSync(join(mem, existsSync(join(mem, 'memory.max')) ? 'memory.max' : 'memory.limit_in_bytes'), 'utf8'));
  assert.ok(limit >= 128 * 2 ** 20 && limit < 1024 * 2 ** 20, `memory limit ${limit}`);
  const root = JSON.parse((await runOk('qemu-img', ['info', '-U', '--output=json', join(serverDir(), 'root.qcow2')])).stdout);
  assert.equal(root['virtual-size'], 2 ** 30, 'root disk sized to the flavor');
  assert.equal(root['backing-filename-format'], 'qcow2');
  for (const f of ['ephemeral.qcow2', 'swap.qcow2', 'config-2.iso', 'qmp.sock', 'vnc.sock']) assert.ok(existsSync(join(serverDir(), f)), f);
  const iso = await runOk('isoinfo', ['-d', '-i', join(serverDir(), 'config-2.iso')]).catch(() => null);
  if (iso) assert.match(iso.stdout, /Volume id: config-2/);
  assert.ok(await linkExists(tap), 'the port tap exists');
  assert.deepEqual(fetched, [`img-${id}`]);
  await waitConsole(new RegExp(READY_MARKER));
  const out = await driver.consoleOutput(id, 5);
  assert.ok(out.length > 0 && out.split('\n').length <= 6);
  // the guest read the config drive: it runs the user data (in the background, after it says it is ready)
  await waitConsole(/vmdrv-user-data-ran/);
  // the interactive serial console: a shell on ttyS0 answers; what it prints also lands in the log
  const con = await driver.serialConsole(id);
  try {
    let got = '';
    con.on('data', (b: Buffer) => { got += b.toString(); });
    con.write('echo vmdrv-$((6*7))\n');
    const until = Date.now() + 60_000;
    while (!/vmdrv-42/.test(got) && Date.now() < until) await sleep(200);
    assert.match(got, /vmdrv-42/);
  } finally {
    con.destroy();
  }
  assert.match(await driver.consoleOutput(id), /vmdrv-42/);
  // the VNC server answers with its RFB greeting
  const vnc = await driver.vncConsole(id);
  try {
    const greeting = await new Promise<string>((resolve, reject) => {
      vnc.once('data', (b: Buffer) => resolve(b.toString()));
      vnc.once('error', reject);
    });
    assert.match(greeting, /^RFB 003\.00\d\n/);
  } finally {
    vnc.destroy();
  }
  // converging the same again changes nothing
  assert.deepEqual(await driver.converge(desired()), { power_state: 1, state: 'active', volumes: [] });
  assert.equal(await qemuPid(), pid);
  assert.deepEqual(fetched, [`img-${id}`], 'the image is downloaded once');
});

test('pause/unpause keep the process; suspend saves the memory to disk and ends qemu, resume loads it', { skip }, async () => {
  const pid = await qemuPid();
  assert.deepEqual(await driver.converge(desired({ power: 'paused' })), { power_state: 3, state: 'paused', volumes: [] });
  assert.deepEqual(await driver.observe(id, 'paused'), { power_state: 3, state: 'paused', volumes: [] });
  assert.deepEqual(await driver.converge(desired({ power: 'running' })), { power_state: 1, state: 'active', volumes: [] });
  assert.equal(await qemuPid(), pid);
  assert.deepEqual(await driver.converge(desired({ power: 'suspended' })), { power_state: 7, state: 'suspended', volumes: [] });
  assert.equal(processAlive(pid!), false, 'qemu ended after saving');
  const saved = join(serverDir(), 'memory.state');
  assert.ok(existsSync(saved) && (await fsp.stat(saved)).size > 1 << 20, 'the memory state is on disk');
  assert.deepEqual(await driver.observe(id, 'suspended'), { power_state: 7, state: 'suspended', volumes: [] });
  const bootsBefore = (await driver.consoleOutput(id)).split('Linux version').length;
  assert.deepEqual(await driver.converge(desired({ power: 'running' })), { power_state: 1, state: 'active', volumes: [] });
  const resumed = await qemuPid();
  assert.ok(resumed && resumed !== pid);
  assert.equal(existsSync(saved), false, 'the saved state is consumed');
  // the guest went on where it was: no new boot on the console
  await sleep(2000);
  assert.equal((await driver.consoleOutput(id)).split('Linux version').length, bootsBefore);
});

test('a saved state that does not load is put aside and the server boots afresh', { skip }, async () => {
  assert.deepEqual(await driver.converge(desired({ power: 'suspended' })), { power_state: 7, state: 'suspended', volumes: [] });
  const saved = join(serverDir(), 'memory.state');
  await fsp.writeFile(saved, Buffer.alloc(64 * 1024, 0x5a));
  const before = (await driver.consoleOutput(id)).length;
  assert.deepEqual(await driver.converge(desired({ power: 'running' })), { power_state: 1, state: 'active', volumes: [] });
  assert.ok(await qemuPid());
  assert.equal(existsSync(saved), false);
  assert.ok(existsSync(`${saved}.bad`), 'the state that did not load is kept aside');
  await waitConsole(new RegExp(READY_MARKER), before);
});

test('a hard reboot resets the machine in the same process', { skip }, async () => {
  const pid = await qemuPid();
  const before = (await driver.consoleOutput(id)).length;
  assert.deepEqual(await driver.converge(desired({ reboot_seq: 1, reboot_type: 'HARD' })), { power_state: 1, state: 'active', volumes: [] });
  assert.equal(await qemuPid(), pid);
  await waitConsole(new RegExp(READY_MARKER), before);
});

test('stop (ACPI power-down) and start', { skip }, async () => {
  const pid = (await qemuPid())!;
  assert.deepEqual(await driver.converge(desired({ reboot_seq: 1, reboot_type: 'HARD', power: 'stopped' })), { power_state: 4, state: 'stopped', volumes: [] });
  assert.equal(processAlive(pid), false);
  assert.equal(await driver.pid(id), null);
  assert.ok(existsSync(join(serverDir(), 'root.qcow2')), 'the disk stays');
  assert.deepEqual(await driver.observe(id), { power_state: 4, state: 'stopped', volumes: [] });
  const before = (await driver.consoleOutput(id)).length;
  assert.deepEqual(await driver.converge(desired({ reboot_seq: 1, reboot_type: 'HARD' })), { power_state: 1, state: 'active', volumes: [] });
  const again = await qemuPid();
  assert.ok(again && again !== pid);
  await waitConsole(new RegExp(READY_MARKER), before);
});

test('a new driver instance (agent restart) adopts the running VM', { skip }, async () => {
  const pid = await qemuPid();
  await driver.stop();
  driver = mkDriver();
  await driver.start();
  assert.deepEqual(await driver.localServers(), [id]);
  assert.deepEqual(await driver.observe(id, 'running'), { power_state: 1, state: 'active', volumes: [] });
  assert.deepEqual(await driver.converge(desired({ reboot_seq: 1, reboot_type: 'HARD' })), { power_state: 1, state: 'active', volumes: [] });
  assert.equal(await qemuPid(), pid, 'not restarted');
  assert.deepEqual(await driver.converge(desired({ reboot_seq: 1, reboot_type: 'HARD', power: 'paused' })), { power_state: 3, state: 'paused', volumes: [] });
  assert.deepEqual(await driver.converge(desired({ reboot_seq: 1, reboot_type: 'HARD' })), { power_state: 1, state: 'active', volumes: [] });
});

test('snapshot: a standalone qcow2 of the root disk; the VM keeps running', { skip }, async () => {
  const out = join(stateDir, 'snap.qcow2');
  await driver.snapshot(id, async (body) => { await pipeline(Readable.from(body), createWriteStream(out)); });
  const info = JSON.parse((await runOk('qemu-img', ['info', '--output=json', out])).stdout);
  assert.equal(info.format, 'qcow2');
  assert.equal(info['backing-filename'], undefined);
  assert.equal(info['virtual-size'], 2 ** 30);
  await runOk('qemu-img', ['check', out]);
  await fsp.rm(out);
  assert.deepEqual(await driver.observe(id, 'running'), { power_state: 1, state: 'active', volumes: [] });
});

test('destroy leaves nothing; the sweep drops the unused image', { skip }, async () => {
  const pid = (await qemuPid())!;
  await driver.destroy(id);
  assert.equal(processAlive(pid), false, 'qemu is gone');
  assert.equal(existsSync(serverDir()), false, 'server directory gone');
  for (const c of cgroups()) assert.equal(existsSync(c), false, `${c} gone`);
  assert.equal(await linkExists(tap), false, 'the tap it made is gone');
  assert.equal(await driver.observe(id), null);
  assert.deepEqual(await driver.localServers(), []);
  // idempotent, and harmless for ids it never held
  await driver.destroy(id);
  await driver.destroy(randomUUID());
  assert.ok(existsSync(join(stateDir, 'vm', 'images', `img-${id}`)));
  await driver.sweep(new Set());
  assert.equal(existsSync(join(stateDir, 'vm', 'images', `img-${id}`)), false);
});

test('bad images: a format a VM cannot boot and bytes that are not what Glance says fail for good and leave nothing', { skip }, async () => {
  const bad = randomUUID();
  const base = desired({ id: bad, ports: [] });
  const cases: Array<DesiredServer['image']> = [
    { ...base.image!, id: `vmdk-${bad}`, disk_format: 'vmdk' },
    { ...base.image!, id: `oci-${bad}`, container_format: 'docker', disk_format: 'raw' },
    { ...base.image!, id: `garbage-${bad}`, disk_format: 'qcow2' },
    { ...base.image!, id: `datafile-${bad}`, disk_format: 'qcow2' },
  ];
  try {
    for (const img of cases) {
      await assert.rejects(driver.converge({ ...base, image: img }), (e: unknown) => e instanceof ResourceFailure && e.class === 'permanent' && e.code === 'image_invalid');
      assert.equal(existsSync(join(stateDir, 'vm', 'servers', bad)), false, `nothing left after ${img!.id}`);
      assert.equal(existsSync(join(stateDir, 'vm', 'images', img!.id)), false);
    }
  } finally {
    await driver.destroy(bad);
  }
});
