// Booting a VM from a volume (ServerVolumeSpec.boot_index 0, no image), as
// root with real qemu: the stratus-tiny disk, converted to a raw volume file,
// is the VM's only disk (no root.qcow2 of its own), on a root port with the
// volume's serial and bootindex 0; the guest boots from it; a deleted VM
// leaves no loop device. Everything made is removed in after().
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { run, runOk } from '../../src/agent/exec.ts';
import type { DesiredServer, ServerVolumeSpec } from '../../src/compute/engine/protocol.ts';
import { VmDriver } from '../../src/agent/drivers/vm/driver.ts';
import { loopDevices } from '../../src/agent/drivers/volume-attach.ts';
import { volumeDirOf } from '../../src/agent/drivers/volume/host.ts';
import { buildTinyImage } from '../../src/agent/drivers/vm/guest/tiny-image.ts';
import { READY_MARKER } from '../../src/agent/drivers/vm/guest/scripts.ts';
import { processAlive, skipUnlessRoot, sleep } from './lib.ts';

const hasQemu = ['/usr/bin', '/usr/local/bin'].some((d) => existsSync(join(d, 'qemu-system-x86_64')));
const skip = skipUnlessRoot || (hasQemu ? false : 'qemu-system-x86_64 is not installed');
const CG = `stratus-vbv-${process.pid}`;
const stateDir = mkdtempSync(join(tmpdir(), 'stratus-vbv-'));
let vms: VmDriver;
const id = randomUUID();
let pid = 0;

before(async () => {
  if (skip) return;
  const image = await buildTinyImage();
  await fsp.mkdir(volumeDirOf(stateDir));
  await runOk('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', image.disk, join(volumeDirOf(stateDir), 'boot.raw')]);
  vms = new VmDriver({ stateDir, log: pino({ level: 'warn' }), cgroupParent: CG, accel: 'tcg', fetchImage: async () => { throw new Error('no image is fetched'); } });
  await vms.start();
});

after(async () => {
  if (skip) return;
  await vms?.destroy(id).catch(() => undefined);
  await vms?.stop();
  if (pid && processAlive(pid)) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  for (const l of await loopDevices()) if (l.back.startsWith(stateDir)) await run('losetup', ['-d', l.name]);
  for (const c of ['cpu', 'memory', 'pids', '']) {
    await fsp.rmdir(join('/sys/fs/cgroup', c, CG, id)).catch(() => undefined);
    await fsp.rmdir(join('/sys/fs/cgroup', c, CG)).catch(() => undefined);
  }
  await fsp.rm(stateDir, { recursive: true, force: true });
});

test('a VM without an image boots from its volume with boot_index 0', { skip, timeout: 400_000 }, async () => {
  const vol: ServerVolumeSpec = {
    attachment_id: randomUUID(), volume_id: randomUUID(), device: '/dev/vda', location: join(volumeDirOf(stateDir), 'boot.raw'), format: 'raw', read_only: false, boot_index: 0,
  };
  const d: DesiredServer = {
    id, version: 1, name: 'vbv', hostname: 'vbv', project_id: 'p', user_id: 'u', kind: 'vm', image: null,
    flavor: { id: 'f', name: 'f', vcpus: 1, ram: 128, disk: 0, ephemeral: 0, swap: 0, extraSpecs: {} },
    power: 'running', reboot_seq: 0, reboot_type: null, rebuild_seq: 0, vm_state: 'building', task_state: 'spawning', deleted: false,
    config_drive: { requested: false, meta_data: {}, user_data: null, network_data: { links: [], networks: [], services: [] }, vendor_data: {} },
    volumes: [vol],
  };
  const obs = await vms.converge(d);
  pid = (await vms.pid(id))!;
  assert.equal(obs.state, 'active');
  assert.deepEqual(obs.volumes, [{ attachment_id: vol.attachment_id, state: 'attached' }]);
  assert.ok(!existsSync(join(vms.dir(id), 'root.qcow2')), 'no root disk of its own');
  const cmd = (await fsp.readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
  assert.ok(cmd.some((a) => a.startsWith('virtio-blk-pci,') && a.includes(`serial=${vol.volume_id.slice(0, 20)}`) && a.endsWith(',bootindex=0')), 'the volume\'s disk boots');
  const until = Date.now() + 240_000;
  while (!new RegExp(READY_MARKER).test(await vms.consoleOutput(id))) {
    if (Date.now() > until) assert.fail(`the guest never got ready: ${(await vms.consoleOutput(id)).slice(-500)}`);
    await sleep(500);
  }
  await vms.destroy(id);
  assert.deepEqual((await loopDevices()).filter((l) => l.back.startsWith(stateDir)), []);
});
