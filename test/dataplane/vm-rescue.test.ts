// A VM's rescue as the VM driver does it, as root with real qemu and the small
// guest (stratus-tiny): with `rescue` in the spec the VM is restarted from a
// throwaway overlay on the rescue image as its first disk (vda) with its root
// disk as the second (vdb), as Nova's libvirt driver does; the guest reads
// and repairs its root disk there. Without it again the VM restarts on its
// root disk (vda), which has what the rescue wrote, and the overlay is gone.
// Everything is killed by PID and removed in after(), also when a step fails.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { DesiredServer } from '../../src/compute/engine/protocol.ts';
import { VmDriver } from '../../src/agent/drivers/vm/driver.ts';
import { buildTinyImage, type TinyImage } from '../../src/agent/drivers/vm/guest/tiny-image.ts';
import { READY_MARKER } from '../../src/agent/drivers/vm/guest/scripts.ts';
import { processAlive, skipUnlessRoot } from './lib.ts';
import { guestRun, waitConsole as waitConsoleOf } from './vm-guest.ts';

const hasQemu = ['/usr/bin', '/usr/local/bin'].some((d) => existsSync(join(d, 'qemu-system-x86_64')));
const skip = skipUnlessRoot || (hasQemu ? false : 'qemu-system-x86_64 is not installed');
/** How long to wait for the guest (a loaded box under TCG); not a timing assertion. */
const CGROUP_PARENT = 'stratus-vmrescue-test';

const stateDir = mkdtempSync(join(tmpdir(), 'stratus-vmrescue-'));
const log = pino({ level: 'warn' });
let image: TinyImage;
let driver: VmDriver;
const id = randomUUID();
const pids = new Set<number>();

let version = 0;
const SMALL = { id: 'small', name: 'small', vcpus: 1, ram: 128, disk: 1, ephemeral: 0, swap: 0, extraSpecs: {} };
const desired = (o: Partial<DesiredServer> = {}): DesiredServer => ({
  id, version: ++version, name: 'vmrescue', hostname: 'vmrescue', project_id: 'p', user_id: 'u', kind: 'vm',
  image: { id: `img-${id}`, name: 'stratus-tiny', status: 'active', container_format: 'bare', disk_format: 'qcow2', size: null, checksum: null },
  flavor: SMALL, power: 'running', reboot_seq: 0, reboot_type: null, rebuild_seq: 0, vm_state: 'active', task_state: null, deleted: false,
  config_drive: { requested: true, meta_data: { name: 'vmrescue', hostname: 'vmrescue' }, user_data: null, network_data: { links: [], networks: [], services: [] }, vendor_data: {} },
  ports: [],
  ...o,
});

const file = (n: string) => join(stateDir, 'vm', 'servers', id, n);
async function qemuPid(): Promise<number | null> {
  const pid = await driver.pid(id);
  if (pid) pids.add(pid);
  return pid;
}
const waitConsole = (pattern: RegExp, from = 0) => waitConsoleOf(driver, id, pattern, from);
const guest = (cmd: string) => guestRun(driver, id, cmd);

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

/** A sector far into the 1 GiB root disk, past the end of the (smaller) rescue image: a marker the guest writes and reads there. */
const SECTOR = 1_800_000;
const readMark = (dev: string, at = SECTOR) => guest(`dd if=${dev} bs=512 skip=${at} count=1 2>/dev/null | tr -d '\\000'`);
const writeMark = (dev: string, text: string, at = SECTOR) => guest(`printf ${text} | dd of=${dev} bs=512 seek=${at} conv=fsync 2>/dev/null; sync`);

test('rescue a VM: booted from a throwaway overlay on the rescue image (vda), its root disk second (vdb); unrescue: back on its root disk with the rescue\'s repairs, the overlay gone', { skip }, async () => {
  const rescueImage = { id: `rescue-${id}`, name: 'stratus-tiny', status: 'active', container_format: 'bare', disk_format: 'qcow2', size: null, checksum: null };
  assert.deepEqual(await driver.converge(desired()), { power_state: 1, state: 'active', volumes: [] });
  const pid = (await qemuPid())!;
  await waitConsole(new RegExp(READY_MARKER));
  await writeMark('/dev/vda', 'mine');
  assert.equal((await readMark('/dev/vda')).trim(), 'mine');

  let from = (await driver.consoleOutput(id)).length;
  assert.deepEqual(await driver.converge(desired({ task_state: 'rescuing', rescue: { image: rescueImage } })), { power_state: 1, state: 'active', volumes: [] });
  const rescued = (await qemuPid())!;
  assert.notEqual(rescued, pid, 'restarted: a new qemu');
  assert.ok(!processAlive(pid));
  assert.ok(existsSync(file('rescue.qcow2')), 'the rescue overlay');
  await waitConsole(new RegExp(READY_MARKER), from);
  assert.equal((await readMark('/dev/vdb')).trim(), 'mine', 'the root disk is the second disk');
  assert.notEqual((await readMark('/dev/vda')).trim(), 'mine', 'the first disk is the rescue image');
  assert.equal((await guest('ls /sys/block | grep -c ^vd')).trim(), '3', 'the rescue disk, its root disk, the config drive');
  await writeMark('/dev/vdb', 'repaired', SECTOR + 8);
  await writeMark('/dev/vda', 'scratch', 2048);
  // what a rescued VM reports again changes nothing
  assert.deepEqual(await driver.converge(desired({ vm_state: 'rescued', rescue: { image: rescueImage } })), { power_state: 1, state: 'active', volumes: [] });
  assert.equal(await qemuPid(), rescued);

  from = (await driver.consoleOutput(id)).length;
  assert.deepEqual(await driver.converge(desired({ vm_state: 'rescued', task_state: 'unrescuing' })), { power_state: 1, state: 'active', volumes: [] });
  assert.notEqual(await qemuPid(), rescued, 'restarted on its root disk');
  assert.ok(!existsSync(file('rescue.qcow2')), 'the rescue overlay is deleted');
  await waitConsole(new RegExp(READY_MARKER), from);
  assert.equal((await readMark('/dev/vda')).trim(), 'mine');
  assert.equal((await readMark('/dev/vda', SECTOR + 8)).trim(), 'repaired', 'what the rescue wrote to the root disk is there');
  assert.notEqual((await readMark('/dev/vda', 2048)).trim(), 'scratch', 'the rescue disk\'s writes are not');
  assert.equal((await guest('ls /sys/block | grep -c ^vd')).trim(), '2', 'its root disk and the config drive again');
});
