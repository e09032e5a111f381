// NIC hot-plug of the VM driver, as root with real qemu and the stratus-tiny
// guest: a VM converged with one port has its NIC on a PCIe root port (not on
// pcie.0); a second port in the spec is hot-plugged on a free root port
// (qemu lists it; the guest's eth1 has the port's MAC); the port removed
// again is unplugged (DEVICE_DELETED, its netdev gone, the guest has no
// eth1) while its tap stays (the network driver's). A paused guest cannot
// release a NIC: the unplug fails transiently, and the next pass completes it. The taps the driver makes
// belong to stratus-qemu. Everything is killed by PID and removed in after().
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { run, runOk } from '../../src/agent/exec.ts';
import type { DesiredServer } from '../../src/compute/engine/protocol.ts';
import { VmDriver } from '../../src/agent/drivers/vm/driver.ts';
import type { QmpClient } from '../../src/agent/drivers/vm/qmp.ts';
import { buildTinyImage, type TinyImage } from '../../src/agent/drivers/vm/guest/tiny-image.ts';
import { READY_MARKER } from '../../src/agent/drivers/vm/guest/scripts.ts';
import { tapName } from '../../src/network/protocol.ts';
import { processAlive, skipUnlessRoot, sleep } from './lib.ts';
import { ResourceFailure } from '../../src/agent/errors.ts';

const hasQemu = ['/usr/bin', '/usr/local/bin'].some((d) => existsSync(join(d, 'qemu-system-x86_64')));
const skip = skipUnlessRoot || (hasQemu ? false : 'qemu-system-x86_64 is not installed');
/** How long to wait for the guest (a loaded 2-core box under TCG); not a timing assertion. */
const BOOT_WAIT_MS = 240_000;

const stateDir = mkdtempSync(join(tmpdir(), 'stratus-vmhp-'));
const log = pino({ level: 'warn' });
let image: TinyImage;
let driver: VmDriver;
const id = randomUUID();
const portA = { id: randomUUID(), mac_address: 'fa:16:3e:a1:00:01', mtu: 1500, index: 0 };
const portB = { id: randomUUID(), mac_address: 'fa:16:3e:b2:00:02', mtu: 1500, index: 1 };
const tapA = tapName(portA.id);
const tapB = tapName(portB.id);
const pids = new Set<number>();

let version = 0;
const desired = (ports: Array<typeof portA>, power: DesiredServer['power'] = 'running'): DesiredServer => ({
  id, version: ++version, name: 'vmhp-one', hostname: 'vmhp-one', project_id: 'p', user_id: 'u', kind: 'vm',
  image: { id: `img-${id}`, name: 'stratus-tiny', status: 'active', container_format: 'bare', disk_format: 'qcow2', size: null, checksum: null },
  flavor: { id: 'f', name: 'f', vcpus: 1, ram: 128, disk: 1, ephemeral: 0, swap: 0, extraSpecs: {} },
  power, reboot_seq: 0, reboot_type: null, rebuild_seq: 0, vm_state: 'active', task_state: null, deleted: false,
  config_drive: { requested: false, meta_data: {}, user_data: null, network_data: { links: [], networks: [], services: [] }, vendor_data: {} },
  ports: ports.map((p) => ({ ...p, device: tapName(p.id) })),
});

const linkExists = async (name: string) => (await run('ip', ['link', 'show', 'dev', name])).code === 0;
// the driver's own QMP connection (qemu serves one client)
const qmp = (): Promise<QmpClient> => driver['qmp'](id);

/** NIC id -> the bus it sits on (its root port's, /machine/peripheral/hpN/hpN, or pcie.0's). */
async function nics(): Promise<Map<string, string>> {
  const q = await qmp();
  const out = new Map<string, string>();
  for (const c of await q.execute('qom-list', { path: '/machine/peripheral' })) {
    if (c.name.startsWith('net')) out.set(c.name, String(await q.execute('qom-get', { path: `/machine/peripheral/${c.name}`, property: 'parent_bus' })));
  }
  return out;
}
const netdevs = async () => (await (await qmp()).execute('human-monitor-command', { 'command-line': 'info network' }));

async function waitConsole(pattern: RegExp): Promise<void> {
  const until = Date.now() + BOOT_WAIT_MS;
  while (!pattern.test(await driver.consoleOutput(id))) {
    if (Date.now() > until) assert.fail(`console never matched ${pattern}`);
    await sleep(500);
  }
}

/** Runs `cmd` in the guest's serial shell; what it printed between the markers. */
let seq = 0;
async function guest(cmd: string): Promise<string> {
  const n = ++seq;
  const con = await driver.serialConsole(id);
  try {
    let got = '';
    con.on('data', (b: Buffer) => { got += b.toString(); });
    // the markers are computed by the shell, so the echoed command line does not match
    con.write(`echo hp$((${n}*1000))-begin; ${cmd}; echo hp$((${n}*1000))-end\n`);
    const re = new RegExp(`hp${n * 1000}-begin\\r?\\n([\\s\\S]*?)hp${n * 1000}-end`);
    const until = Date.now() + 60_000;
    for (;;) {
      const m = re.exec(got);
      if (m) return m[1]!.replace(/\r/g, '');
      if (Date.now() > until) assert.fail(`no answer to ${cmd}: ${got.slice(-400)}`);
      await sleep(200);
    }
  } finally {
    con.destroy();
  }
}

/** The guest's interfaces with their MACs, once `want` holds (a hot-plug shows up after the guest handles it). */
async function guestNics(want: (m: Map<string, string>) => boolean): Promise<Map<string, string>> {
  const until = Date.now() + 120_000;
  for (;;) {
    const text = await guest('for i in /sys/class/net/eth*; do [ -e "$i" ] && echo "${i##*/} $(cat $i/address)"; done');
    const m = new Map(text.split('\n').filter((l) => /^eth\d+ /.test(l)).map((l) => l.split(' ') as [string, string]));
    if (want(m) || Date.now() > until) return m;
    await sleep(1000);
  }
}

before(async () => {
  if (skip) return;
  image = await buildTinyImage();
  driver = new VmDriver({ stateDir, log, cgroupParent: 'stratus-vmhp-test', fetchImage: (_img, dest) => fsp.copyFile(image.disk, dest) });
  await driver.start();
});

after(async () => {
  if (skip) return;
  const pid = await driver?.pid(id).catch(() => null);
  if (pid) pids.add(pid);
  await driver?.destroy(id).catch(() => undefined);
  await driver?.stop();
  for (const p of pids) if (processAlive(p)) try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
  for (const t of [tapA, tapB]) if (await linkExists(t).catch(() => false)) await run('ip', ['link', 'del', 'dev', t]);
  for (const c of ['cpu', 'memory', 'pids', '']) await fsp.rmdir(join('/sys/fs/cgroup', c, 'stratus-vmhp-test', id)).catch(() => undefined);
  for (const c of ['cpu', 'memory', 'pids', '']) await fsp.rmdir(join('/sys/fs/cgroup', c, 'stratus-vmhp-test')).catch(() => undefined);
  rmSync(stateDir, { recursive: true, force: true });
});

test('a port added to a running VM is hot-plugged; a port removed is unplugged', { skip }, async () => {
  await driver.converge(desired([portA]));
  const pid = (await driver.pid(id))!;
  assert.ok(pid, 'qemu runs');
  pids.add(pid);
  const qemuUid = (await runOk('id', ['-u', 'stratus-qemu'])).stdout.trim();
  assert.equal(readFileSync(`/sys/class/net/${tapA}/owner`, 'utf8').trim(), qemuUid, 'the tap the driver made is stratus-qemu\'s');
  const before = await nics();
  assert.deepEqual([...before.keys()], [`net-${tapA}`]);
  assert.match(before.get(`net-${tapA}`)!, /^\/machine\/peripheral\/hp\d+\/hp\d+$/, 'the boot NIC sits on a root port, so it can be unplugged');
  await waitConsole(new RegExp(READY_MARKER));
  assert.deepEqual([...(await guestNics((m) => m.size === 1)).entries()], [['eth0', portA.mac_address]]);

  // attach: the spec gains a port
  await driver.converge(desired([portA, portB]));
  assert.equal(await driver.pid(id), pid, 'the same qemu');
  const added = await nics();
  assert.match(added.get(`net-${tapB}`) ?? '', /^\/machine\/peripheral\/hp\d+\/hp\d+$/, 'the new NIC sits on a free root port');
  assert.notEqual(added.get(`net-${tapB}`), added.get(`net-${tapA}`));
  assert.match(await netdevs(), new RegExp(`hostnet-${tapB}:.*ifname=${tapB}`));
  assert.equal(readFileSync(`/sys/class/net/${tapB}/owner`, 'utf8').trim(), qemuUid);
  const seen = await guestNics((m) => m.size === 2);
  assert.equal(seen.get('eth1'), portB.mac_address, `the guest sees eth1: ${JSON.stringify([...seen])}`);
  // converging again changes nothing
  await driver.converge(desired([portA, portB]));
  assert.deepEqual(await nics(), added);

  // detach: the port leaves the spec
  const q = await qmp();
  const deleted = q.waitEvent('DEVICE_DELETED', 120_000, (e) => e.data?.device === `net-${tapB}`);
  await driver.converge(desired([portA]));
  await deleted;
  assert.deepEqual([...(await nics()).keys()], [`net-${tapA}`]);
  assert.doesNotMatch(await netdevs(), new RegExp(`hostnet-${tapB}`), 'the netdev is gone');
  assert.ok(await linkExists(tapB), 'the tap stays (the network driver\'s)');
  assert.equal(await driver.pid(id), pid, 'the same qemu');
  assert.deepEqual([...(await guestNics((m) => m.size === 1)).entries()], [['eth0', portA.mac_address]]);
});

test('an unplug the paused guest cannot acknowledge fails transiently; the next pass completes it', { skip }, async () => {
  const pid = (await driver.pid(id))!;
  await driver.converge(desired([portA, portB]));
  assert.equal((await guestNics((m) => m.size === 2)).get('eth1'), portB.mac_address);
  await assert.rejects(driver.converge(desired([portA], 'paused')), (e: unknown) => e instanceof ResourceFailure && e.class === 'transient' && /did not release NIC/.test(e.message));
  assert.ok((await nics()).has(`net-${tapB}`), 'the NIC waits for the guest');
  // running again: the guest acknowledges the unplug asked before
  await driver.converge(desired([portA]));
  assert.deepEqual([...(await nics()).keys()], [`net-${tapA}`]);
  assert.doesNotMatch(await netdevs(), new RegExp(`hostnet-${tapB}`));
  assert.equal(await driver.pid(id), pid, 'the same qemu');
  assert.deepEqual([...(await guestNics((m) => m.size === 1)).entries()], [['eth0', portA.mac_address]]);
});
