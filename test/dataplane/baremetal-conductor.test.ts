// The conductor end to end on bm-vbmc's virtual bare-metal machines
// (src/vbmc): one behind OpenIPMI's ipmi_sim, one behind Stratus's Redfish
// emulator, driven through the real BMC clients (bmc/factory.ts). The
// provisioning network is a flat network of the network driver (in its own
// namespace, on a bridge linked to the machines' bridge, which holds the
// conductor's address as br-bm does); its dnsmasq hands the nodes' MACs the
// PXE options (tag:ipxe,67 -> the conductor's boot.ipxe).
//   IPMI, over PXE: verify, inspect (the inventory), clean (the disk's
//   metadata erased), deploy of stratus-tiny (qcow2, made raw) with a config
//   drive holding an SSH key -> the machine boots from its disk (boot device
//   disk) and answers SSH with that key -> tear_down (off).
//   Redfish, over virtual media (the ISO with the callback on its kernel
//   line), beside the IPMI inspection: inspect (both machines' NICs: the
//   boot NIC and the second one, wired to nothing); out of band (the
//   emulator's inventory, nothing booted); beside the cleaning, a
//   ramdisk that never calls back (another conductor, 3 s): ramdisk_timeout,
//   the node off.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync, rmSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { env, networkSpec, sh, skipUnlessRoot, sleep } from './network-lib.ts';
import { run, runOk } from '../../src/agent/exec.ts';
import { BaremetalConductor } from '../../src/agent/drivers/baremetal/conductor.ts';
import { bmcClient } from '../../src/agent/drivers/baremetal/bmc/factory.ts';
import type { BmcAccess, NodeObserved, NodeOperation, NodeSpec } from '../../src/baremetal/protocol.ts';
import type { ResourceError } from '../../src/fleet/protocol.ts';
import { buildTinyImage } from '../../src/agent/drivers/vm/guest/tiny-image.ts';
import { IPXE_DIR } from '../../src/agent/drivers/network/dhcp.ts';
import { createMachine, deleteMachine, listMachines, type MachineInfo } from '../../src/vbmc/fleet.ts';

const need = ['ipmi_sim', 'ipmitool', 'qemu-system-x86_64', 'ssh', 'xorriso'];
const missing = need.filter((p) => !['/usr/bin', '/usr/sbin', '/bin', '/sbin'].some((d) => existsSync(join(d, p))));
const skip = skipUnlessRoot || (missing.length ? `missing ${missing.join(', ')}` : false) || (!existsSync(join(IPXE_DIR, 'undionly.kpxe')) && 'Debian ipxe is not installed');

/** The BmcAccess of a vbmc machine (its driver_info, as the API hands it to the conductor). */
function accessOf(m: MachineInfo): BmcAccess {
  const d = m.driverInfo as Record<string, string | number | boolean>;
  return m.config.bmc.kind === 'ipmi'
    ? { type: 'ipmi', address: String(d.ipmi_address), port: Number(d.ipmi_port), username: String(d.ipmi_username), password: String(d.ipmi_password) }
    : { type: 'redfish', address: String(d.redfish_address), system_id: String(d.redfish_system_id), username: String(d.redfish_username), password: String(d.redfish_password), verify_tls: false };
}

test('conductor: IPMI over PXE (inspect, clean, deploy with a config drive, SSH, tear down), Redfish over virtual media (inspect), a ramdisk timeout', { skip, timeout: 900_000 }, async (t) => {
  const started = Date.now();
  const e = env();
  const p = e.prefix;
  const scratch = mkdtempSync(join(tmpdir(), `${p}-bm-`));
  const vbmc = join(scratch, 'vbmc');
  const log = pino({ level: process.env.STRATUS_TEST_LOG ?? 'silent' });
  const subnet = `10.${200 + (randomBytes(1)[0]! % 50)}.${randomBytes(1)[0]}`;
  const conductorIp = `${subnet}.5`;
  const rootBridge = `${p}rb`;
  const link = `${p}l`;
  const conductors: BaremetalConductor[] = [];
  t.after(async () => {
    for (const c of conductors) await c.stop().catch(() => undefined);
    for (const m of await listMachines(vbmc).catch(() => [] as MachineInfo[])) await deleteMachine(vbmc, m.name).catch((err: Error) => process.stderr.write(`delete ${m.name}: ${err.message}\n`));
    await run('ip', ['link', 'del', link]);
    await run('ip', ['link', 'del', rootBridge]);
    await e.cleanup();
    if (process.env.STRATUS_TEST_KEEP) process.stderr.write(`kept ${scratch}\n`);
    else rmSync(scratch, { recursive: true, force: true });
  });

  // the machines' bridge (br-bm's part: the conductor's address on it), linked to the network driver's bridge in its namespace
  await runOk('ip', ['link', 'add', rootBridge, 'type', 'bridge']);
  await runOk('ip', ['addr', 'add', `${conductorIp}/24`, 'dev', rootBridge]);
  await runOk('ip', ['link', 'set', rootBridge, 'up']);
  const bridge = `${p}br`;
  const h = await e.host('h', '192.0.2.1', { bridgeMappings: { bm: bridge } });
  await sh(h.ns, ['ip', 'link', 'add', bridge, 'type', 'bridge']);
  await sh(h.ns, ['ip', 'link', 'set', bridge, 'up']);
  await runOk('ip', ['link', 'add', link, 'type', 'veth', 'peer', 'name', 'up0', 'netns', h.ns]);
  await runOk('ip', ['link', 'set', link, 'master', rootBridge, 'up']);
  await sh(h.ns, ['ip', 'link', 'set', 'up0', 'master', bridge, 'up']);

  // the machines: 256 MiB disks
  const [ipmiM, rfM] = await Promise.all([
    createMachine({ stateDir: vbmc, name: 'bm-ipmi', bmc: 'ipmi', bridge: rootBridge, diskMb: 256, memoryMb: 384 }),
    createMachine({ stateDir: vbmc, name: 'bm-redfish', bmc: 'redfish', bridge: rootBridge, diskMb: 256, memoryMb: 384 }),
  ]);
  const mac = ipmiM.config.mac;
  const disk = join(ipmiM.dir, 'disk.img');
  const consoleLog = join(ipmiM.dir, 'console.log');
  const port = 20000 + (randomBytes(2).readUInt16BE(0) % 20000);

  const net = randomUUID();
  const nodeIp = `${subnet}.21`;
  const pxe = [
    { opt_name: 'tag:ipxe,67', opt_value: `http://${conductorIp}:${port}/boot.ipxe`, ip_version: 4 as const },
    { opt_name: 'tag:!ipxe,67', opt_value: 'undionly.kpxe', ip_version: 4 as const },
  ];
  const base = networkSpec({ cidr: `${subnet}.0/24`, physical: 'bm', dhcp: { ip: `${subnet}.2`, hosts: [] } });
  await h.converge('network', net, {
    ...base, dhcp: { ...base.dhcp!, hosts: [
      { port_id: randomUUID(), mac_address: mac, ip_address: nodeIp, subnet_id: 'sub-1', hostname: 'bm-ipmi', extra_dhcp_opts: pxe },
      { port_id: randomUUID(), mac_address: rfM.config.mac, ip_address: `${subnet}.22`, subnet_id: 'sub-1', hostname: 'bm-redfish', extra_dhcp_opts: pxe },
    ] },
  });
  const bmcs = { ipmi: accessOf(ipmiM), redfish: accessOf(rfM) };

  // the image (stratus-tiny, qcow2) as the agent's image download would hand it, and an SSH key
  const tiny = await buildTinyImage();
  const imageId = randomUUID();
  const sha512 = createHash('sha512').update(readFileSync(tiny.disk)).digest('hex');
  const key = join(scratch, 'id_ed25519');
  await runOk('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
  const pub = readFileSync(`${key}.pub`, 'utf8').trim();

  let fetched = 0;
  const conductor = new BaremetalConductor({
    stateDir: scratch, log, address: conductorIp, port, bmc: bmcClient, ramdiskTimeoutMs: 240_000, stepTimeoutMs: 300_000, powerTimeoutMs: 60_000,
    fetchImage: async (id, dest) => {
      assert.equal(id, imageId);
      fetched++;
      copyFileSync(tiny.disk, dest);
    },
  });
  conductors.push(conductor);
  const wakes = new Map<string, () => void>();
  conductor.requeue = (id) => wakes.get(id)?.();
  await conductor.start();

  const node = randomUUID();
  const rfNode = randomUUID();
  const spec = (operation: NodeOperation | null, kind: 'ipmi' | 'redfish' = 'ipmi'): NodeSpec => ({
    bmc: bmcs[kind], maintenance: false, nics: [{ mac: kind === 'ipmi' ? mac : rfM.config.mac, pxe_enabled: true }],
    power: null, boot_device: null, operation, provisioning: null,
  });
  /** Converges until the operation ends (as the agent's queue would: at each wake-up and every few seconds); the phases seen. */
  const drive = async (op: NodeOperation, limitMs: number, kind: 'ipmi' | 'redfish' = 'ipmi'): Promise<{ observed: NodeObserved; error?: ResourceError; phases: string[]; seconds: number }> => {
    const phases: string[] = [];
    const t0 = Date.now();
    const id = kind === 'ipmi' ? node : rfNode;
    for (;;) {
      const r: { observed: NodeObserved; error?: ResourceError } = await conductor.converge(id, spec(op, kind));
      const o: NonNullable<NodeObserved['operation']> = r.observed.operation!;
      assert.equal(o.id, op.id);
      if (phases.at(-1) !== o.phase) phases.push(o.phase);
      if (o.status !== 'running') return { ...r, phases, seconds: Math.round((Date.now() - t0) / 1000) };
      if (Date.now() - t0 > limitMs) throw new Error(`${kind} ${op.type} still ${o.phase} after ${limitMs / 1000} s: ${readFileSync(kind === 'ipmi' ? consoleLog : join(rfM.dir, 'console.log'), 'utf8').slice(-2000)}`);
      await new Promise<void>((r2) => {
        const timer = setTimeout(r2, 3000);
        wakes.set(id, () => {
          clearTimeout(timer);
          r2();
        });
      });
    }
  };
  const times: Record<string, number> = {};

  await t.test('verify reads the power through the BMC', async () => {
    const r = await drive({ id: randomUUID(), type: 'verify' }, 30_000);
    assert.equal(r.observed.operation!.status, 'succeeded');
    assert.equal(r.observed.power_state, 'power off');
  });

  await t.test('inspect: IPMI over PXE and Redfish over virtual media at once; the inventories reported, the nodes off', async () => {
    const [r, rf] = await Promise.all([
      drive({ id: randomUUID(), type: 'inspect', boot_interface: 'ipxe' }, 360_000),
      drive({ id: randomUUID(), type: 'inspect', boot_interface: 'redfish-virtual-media' }, 360_000, 'redfish'),
    ]);
    times.inspect = r.seconds;
    times.inspect_redfish = rf.seconds;
    assert.equal(r.observed.operation!.status, 'succeeded', JSON.stringify(r));
    assert.deepEqual(r.phases.filter((x) => ['power_on', 'pxe', 'inspect', 'power_off', 'done'].includes(x)), r.phases, r.phases.join(' '));
    const inv = r.observed.operation!.inventory!;
    assert.equal(inv.cpus, ipmiM.config.cpus);
    assert.equal(inv.cpu_arch, 'x86_64');
    assert.ok(inv.memory_mb > 250 && inv.memory_mb <= 384, String(inv.memory_mb));
    assert.deepEqual(inv.disks.map((d) => [d.name, d.size_bytes]), [['/dev/vda', 256 * 1024 * 1024]]);
    // both NICs: the boot NIC and the second one, wired to nothing (no carrier of its own is asserted: a NIC without a peer may show one)
    assert.deepEqual(inv.nics.map((n) => n.mac).sort(), [mac, ipmiM.config.spareMac!].sort());
    assert.equal(inv.boot_mac, mac);
    assert.equal(r.observed.power_state, 'power off');
    assert.match(readFileSync(consoleLog, 'utf8'), /stratus-ramdisk: inspected/);
    assert.doesNotMatch(readFileSync(consoleLog, 'utf8'), /stratus\.token=|[0-9a-f]{64}/, 'the token is not on the console');
    // Redfish: booted from the ISO
    assert.equal(rf.observed.operation!.status, 'succeeded', JSON.stringify(rf));
    assert.ok(rf.phases.includes('vmedia'), rf.phases.join(' '));
    assert.deepEqual(rf.observed.operation!.inventory!.nics.map((n) => n.mac).sort(), [rfM.config.mac, rfM.config.spareMac!].sort());
    assert.equal(rf.observed.power_state, 'power off');
  });

  await t.test('inspect out of band (Redfish): the emulator describes the machine, nothing boots, the node stays off', async () => {
    const before = existsSync(join(rfM.dir, 'console.log')) ? readFileSync(join(rfM.dir, 'console.log')).length : 0;
    const r = await drive({ id: randomUUID(), type: 'inspect', inspect_interface: 'redfish' }, 30_000, 'redfish');
    assert.equal(r.observed.operation!.status, 'succeeded', JSON.stringify(r));
    assert.deepEqual(r.phases, ['done']);
    assert.deepEqual(r.observed.operation!.inventory, {
      cpus: rfM.config.cpus, cpu_arch: 'x86_64', memory_mb: 384, disks: [{ name: 'disk', size_bytes: 256 * 1024 * 1024 }],
      nics: [{ name: 'nic0', mac: rfM.config.mac, has_carrier: true }, { name: 'nic1', mac: rfM.config.spareMac!, has_carrier: false }],
    });
    assert.equal(r.observed.power_state, 'power off');
    assert.equal(existsSync(join(rfM.dir, 'console.log')) ? readFileSync(join(rfM.dir, 'console.log')).length : 0, before, 'the machine did not run');
  });

  /** A ramdisk that never calls back (another conductor, 3 s to wait), on the Redfish machine: ramdisk_timeout, the node off. */
  const timeoutCheck = async () => {
    const quick = new BaremetalConductor({
      stateDir: join(scratch, 'quick'), log, address: conductorIp, port: port + 1, bmc: bmcClient, ramdiskTimeoutMs: 3000, powerTimeoutMs: 60_000,
      fetchImage: async () => undefined,
    });
    conductors.push(quick);
    await quick.start();
    try {
      const op: NodeOperation = { id: randomUUID(), type: 'inspect', boot_interface: 'ipxe' };
      let r = await quick.converge(rfNode, spec(op, 'redfish'));
      assert.equal(r.observed.operation!.phase, 'pxe');
      await sleep(3500);
      r = await quick.converge(rfNode, spec(op, 'redfish'));
      assert.equal(r.observed.operation!.status, 'failed');
      assert.equal(r.error?.code, 'ramdisk_timeout');
      assert.match(r.observed.operation!.message!, /did not call back within 3 s/);
      assert.doesNotMatch(JSON.stringify(r), new RegExp(bmcs.redfish.password!));
      assert.equal(r.observed.power_state, 'power off');
    } finally {
      await quick.stop();
    }
  };

  await t.test('clean: the disk\'s metadata erased (beside it, a Redfish node whose ramdisk never calls back: ramdisk_timeout, off)', async () => {
    // something to erase: a partition table and a signature at the end
    const d = Buffer.alloc(1 << 20, 0x5a);
    d[510] = 0x55; d[511] = 0xaa;
    writeFileSync(disk, d, { flag: 'r+' });
    await runOk('dd', ['if=/dev/urandom', `of=${disk}`, 'bs=1M', 'seek=255', 'count=1', 'conv=notrunc'], {});
    const [r] = await Promise.all([
      drive({ id: randomUUID(), type: 'clean', boot_interface: 'ipxe', steps: [{ interface: 'deploy', step: 'erase_devices_metadata' }] }, 360_000),
      timeoutCheck(),
    ]);
    times.clean = r.seconds;
    assert.equal(r.observed.operation!.status, 'succeeded', JSON.stringify(r));
    const after = readFileSync(disk);
    assert.ok(after.subarray(0, 1 << 20).every((b) => b === 0), 'the first MiB is zero');
    assert.ok(after.subarray(255 << 20).every((b) => b === 0), 'the last MiB is zero');
  });

  await t.test('deploy: the image and the config drive written, the machine boots its disk and answers SSH with the key', async () => {
    const op: NodeOperation = {
      id: randomUUID(), type: 'deploy', boot_interface: 'ipxe',
      image: { image_id: imageId, disk_format: 'qcow2', hash_algo: 'sha512', hash_value: sha512, root_gb: 0 },
      config_drive: { meta_data: { name: 'bm1', hostname: 'bm1', public_keys: { k: pub } }, user_data: '#!/bin/sh\necho user-data-ran\n' },
    };
    const r = await drive(op, 420_000);
    times.deploy = r.seconds;
    assert.equal(r.observed.operation!.status, 'succeeded', JSON.stringify(r));
    assert.ok(r.phases.includes('write_image') && r.phases.includes('reboot') || r.phases.includes('done'), r.phases.join(' '));
    assert.equal(fetched, 1);
    const t0 = Date.now();
    let out = '';
    for (;;) {
      const s = await run('ssh', ['-i', key, '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'ConnectTimeout=3', '-o', 'BatchMode=yes',
        `root@${nodeIp}`, 'hostname; cat /proc/cmdline; ls /dev/vda*'], { timeoutMs: 15_000 });
      if (s.code === 0) {
        out = s.stdout;
        break;
      }
      if (Date.now() - t0 > 180_000) throw new Error(`no SSH: ${s.stderr} ${readFileSync(consoleLog, 'utf8').slice(-3000)}`);
      await sleep(3000);
    }
    times.ssh = Math.round((Date.now() - t0) / 1000);
    assert.match(out, /^bm1$/m);
    assert.doesNotMatch(out, /stratus\.token/, 'booted from the disk, not the ramdisk');
    assert.match(out, /\/dev\/vda2/, 'the config drive partition');
    assert.match(readFileSync(consoleLog, 'utf8'), /metadata from the config drive \/dev\/vda2/);
  });

  await t.test('tear_down: the node off', async () => {
    const r = await drive({ id: randomUUID(), type: 'tear_down' }, 60_000);
    assert.equal(r.observed.operation!.status, 'succeeded');
    assert.deepEqual(r.phases.at(-1), 'done');
    assert.equal(r.observed.power_state, 'power off');
  });

  process.stderr.write(`baremetal-conductor: ${JSON.stringify(times)} s; total ${Math.round((Date.now() - started) / 1000)} s\n`);
});
