// A VM's resize as the VM driver does it, as root with real qemu and the small
// guest (stratus-tiny): the flavor in the spec changes with task resize_prep,
// the VM is stopped and started again with the new memory and vCPUs (the
// guest sees them) and its root disk grown, the old disk kept aside; a
// confirm drops the kept disk without touching the VM. A stopped VM's resize
// grows its disk without starting it, and a revert puts the kept disk back
// (never a shrink of the disk in place). Everything is killed by PID and
// removed in after(), also when a step fails.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { runOk } from '../../src/agent/exec.ts';
import type { DesiredServer } from '../../src/compute/engine/protocol.ts';
import { VmDriver } from '../../src/agent/drivers/vm/driver.ts';
import { buildTinyImage, type TinyImage } from '../../src/agent/drivers/vm/guest/tiny-image.ts';
import { READY_MARKER } from '../../src/agent/drivers/vm/guest/scripts.ts';
import { processAlive, skipUnlessRoot } from './lib.ts';
import { guestRun, waitConsole as waitConsoleOf } from './vm-guest.ts';

const hasQemu = ['/usr/bin', '/usr/local/bin'].some((d) => existsSync(join(d, 'qemu-system-x86_64')));
const skip = skipUnlessRoot || (hasQemu ? false : 'qemu-system-x86_64 is not installed');
/** How long to wait for the guest (a loaded box under TCG); not a timing assertion. */
const GiB = 2 ** 30;
const CGROUP_PARENT = 'stratus-vmresize-test';

const stateDir = mkdtempSync(join(tmpdir(), 'stratus-vmresize-'));
const log = pino({ level: 'warn' });
let image: TinyImage;
let driver: VmDriver;
const id = randomUUID();
const pids = new Set<number>();

let version = 0;
const SMALL = { id: 'small', name: 'small', vcpus: 1, ram: 128, disk: 1, ephemeral: 0, swap: 0, extraSpecs: {} };
const BIG = { id: 'big', name: 'big', vcpus: 2, ram: 256, disk: 2, ephemeral: 0, swap: 0, extraSpecs: {} };
const desired = (o: Partial<DesiredServer> = {}): DesiredServer => ({
  id, version: ++version, name: 'vmresize', hostname: 'vmresize', project_id: 'p', user_id: 'u', kind: 'vm',
  image: { id: `img-${id}`, name: 'stratus-tiny', status: 'active', container_format: 'bare', disk_format: 'qcow2', size: null, checksum: null },
  flavor: SMALL, power: 'running', reboot_seq: 0, reboot_type: null, rebuild_seq: 0, vm_state: 'active', task_state: null, deleted: false,
  config_drive: { requested: true, meta_data: { name: 'vmresize', hostname: 'vmresize' }, user_data: null, network_data: { links: [], networks: [], services: [] }, vendor_data: {} },
  ports: [],
  ...o,
});

const file = (n: string) => join(stateDir, 'vm', 'servers', id, n);
const virtualSize = async () => JSON.parse((await runOk('qemu-img', ['info', '-U', '--output=json', file('root.qcow2')])).stdout)['virtual-size'] as number;
async function qemuPid(): Promise<number | null> {
  const pid = await driver.pid(id);
  if (pid) pids.add(pid);
  return pid;
}
const waitConsole = (pattern: RegExp, from = 0) => waitConsoleOf(driver, id, pattern, from);
const guest = (cmd: string) => guestRun(driver, id, cmd);
const memTotalKb = async () => Number(/MemTotal:\s+(\d+)/.exec(await guest('grep MemTotal /proc/meminfo'))![1]);

before(async () => {
  if (skip) return;
  image = await buildTinyImage();
  driver = new VmDriver({
    // a guest still booting ignores the ACPI power-down: stopped hard soon
    stateDir, log, cgroupParent: CGROUP_PARENT, consoleCap: 256 * 1024, keepUnusedImagesMs: 0, stopTimeoutMs: 3000,
    fetchImage: async (_imageId, dest) => { await fsp.copyFile(image.disk, dest); },
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

test('resize a running VM: stopped and started with more memory and vCPUs, its disk grown, the old one kept until confirm', { skip }, async () => {
  // the guest is not waited for (one boot under TCG is slow enough): its memory after the resize is more than the small flavor has
  assert.deepEqual(await driver.converge(desired()), { power_state: 1, state: 'active', volumes: [] });
  const pid = (await qemuPid())!;
  assert.equal(await virtualSize(), GiB);

  const from = (await driver.consoleOutput(id)).length;
  assert.deepEqual(await driver.converge(desired({ flavor: BIG, task_state: 'resize_prep' })), { power_state: 1, state: 'active', volumes: [] });
  const after = (await qemuPid())!;
  assert.notEqual(after, pid, 'a cold resize: a new qemu');
  assert.ok(!processAlive(pid));
  assert.equal(await virtualSize(), 2 * GiB, 'the root disk grew to the new flavor');
  assert.ok(existsSync(file('root.qcow2.pre-resize')), 'the old disk is kept for a revert');
  await waitConsole(new RegExp(READY_MARKER), from);
  const memAfter = await memTotalKb();
  assert.ok(memAfter > 160 * 1024, `the guest has more memory than the 128 MiB it had: ${memAfter} kB`);
  assert.equal((await guest('grep -c ^processor /proc/cpuinfo')).trim(), '2', 'and two vCPUs');

  // confirm: the kept disk goes, the VM is left alone
  assert.deepEqual(await driver.converge(desired({ flavor: BIG, vm_state: 'active', task_state: null })), { power_state: 1, state: 'active', volumes: [] });
  assert.equal(await qemuPid(), after);
  assert.ok(!existsSync(file('root.qcow2.pre-resize')));
});

test('resize a stopped VM: only its disk grows; a revert puts the kept disk back', { skip }, async () => {
  assert.deepEqual(await driver.converge(desired({ flavor: BIG, power: 'stopped', vm_state: 'active' })), { power_state: 4, state: 'stopped', volumes: [] });
  assert.equal(await driver.pid(id), null);
  const bigger = { ...BIG, id: 'bigger', disk: 3 };
  assert.deepEqual(await driver.converge(desired({ flavor: bigger, power: 'stopped', vm_state: 'stopped', task_state: 'resize_prep' })), { power_state: 4, state: 'stopped', volumes: [] });
  assert.equal(await driver.pid(id), null, 'a stopped VM stays stopped through its resize');
  assert.equal(await virtualSize(), 3 * GiB);
  assert.deepEqual(await driver.converge(desired({ flavor: BIG, power: 'stopped', vm_state: 'resized', task_state: 'resize_reverting' })), { power_state: 4, state: 'stopped', volumes: [] });
  assert.equal(await virtualSize(), 2 * GiB, 'the revert restored the disk as it was');
  assert.ok(!existsSync(file('root.qcow2.pre-resize')), 'the kept disk is the root disk again');
});
