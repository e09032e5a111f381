// The conductor end to end on one QEMU "bare-metal machine" behind OpenIPMI's
// ipmi_sim (shared/notes/dataplane.md's probe): the provisioning network is a
// flat network of the network driver on a bridge of its own, its dnsmasq
// hands the node's MAC the PXE options (tag:ipxe,67 -> the conductor's
// boot.ipxe); the machine PXE-boots (iPXE ROM) into the deploy ramdisk, which
// calls the conductor back. inspect (the inventory), clean (the disk's
// metadata erased), deploy of stratus-tiny (qcow2, converted to raw) with a
// config drive holding an SSH key -> the machine boots from its disk and
// answers SSH with that key -> tear_down (powered off). Then the failure
// path: a ramdisk that never calls back is ramdisk_timeout and the node is
// powered off.
//
// The machine boots network first (`-boot order=nc`): the conductor's iPXE
// script says `exit` when the node has nothing to do over the network, so
// SeaBIOS goes on to the disk (ipmi_sim refuses `chassis bootdev`, so the
// test's BMC client, a test double over ipmitool, does not set boot devices).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync, rmSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { pino } from 'pino';
import { env, networkSpec, sh, skipUnlessRoot, sleep } from './network-lib.ts';
import { run, runOk } from '../../src/agent/exec.ts';
import { BaremetalConductor } from '../../src/agent/drivers/baremetal/conductor.ts';
import type { BmcClient } from '../../src/agent/drivers/baremetal/bmc.ts';
import type { NodeObserved, NodeOperation, NodeSpec, PowerState } from '../../src/baremetal/protocol.ts';
import type { ResourceError } from '../../src/fleet/protocol.ts';
import { buildTinyImage } from '../../src/agent/drivers/vm/guest/tiny-image.ts';
import { IPXE_DIR } from '../../src/agent/drivers/network/dhcp.ts';

const need = ['ipmi_sim', 'ipmitool', 'qemu-system-x86_64', 'ssh', 'xorriso'];
const missing = need.filter((p) => !['/usr/bin', '/usr/sbin', '/bin', '/sbin'].some((d) => existsSync(join(d, p))));
const skip = skipUnlessRoot || (missing.length ? `missing ${missing.join(', ')}` : false) || (!existsSync(join(IPXE_DIR, 'undionly.kpxe')) && 'Debian ipxe is not installed');

/** The test's BMC client: ipmitool against ipmi_sim in the host namespace (a test double of bmc/ipmi.ts). */
function ipmiBmc(ns: string, port: number): BmcClient {
  const ipmi = async (...args: string[]) => {
    const r = await run('nsenter', [`--net=/run/netns/${ns}`, 'ipmitool', '-I', 'lanplus', '-C', '3', '-H', '127.0.0.1', '-p', String(port), '-U', 'admin', '-E', ...args],
      { env: { ...process.env, IPMI_PASSWORD: 'password' }, timeoutMs: 30_000 });
    if (r.code !== 0) throw new Error(`ipmitool ${args.join(' ')}: ${r.stderr.trim()}`);
    return r.stdout;
  };
  const power = async (): Promise<PowerState> => (/is on/.test(await ipmi('chassis', 'power', 'status')) ? 'power on' : 'power off');
  const waitFor = async (want: PowerState) => {
    for (let i = 0; i < 100; i++) {
      if ((await power()) === want) return;
      await sleep(200);
    }
    throw new Error(`the BMC does not say ${want}`);
  };
  return {
    power,
    async setPower(target) {
      if ((await power()) === target) return;
      await ipmi('chassis', 'power', target === 'power on' ? 'on' : 'off');
      await waitFor(target);
    },
    async reboot() {
      if ((await power()) === 'power off') await ipmi('chassis', 'power', 'on');
      else await ipmi('chassis', 'power', 'reset');
      await waitFor('power on');
    },
    async softPowerOff() {
      return false;
    },
    async setBootDevice() { /* ipmi_sim refuses bootdev; the machine boots network first */ },
    virtualMedia: null,
  };
}

test('conductor: PXE into the ramdisk, inspect, clean, deploy with a config drive, SSH, tear down; a ramdisk timeout', { skip, timeout: 900_000 }, async (t) => {
  const started = Date.now();
  const e = env();
  const p = e.prefix;
  const scratch = mkdtempSync(join(tmpdir(), `${p}-bm-`));
  const log = pino({ level: process.env.STRATUS_TEST_LOG ?? 'silent' });
  const subnet = `10.${200 + (randomBytes(1)[0]! % 50)}.${randomBytes(1)[0]}`;
  const conductorIp = `${subnet}.5`;
  const hostVeth = `${p}c`;
  const procs: ChildProcess[] = [];
  let conductor: BaremetalConductor | null = null;
  const qemuPid = join(scratch, 'qemu.pid');
  const killQemu = async () => {
    const pid = Number(readFileSync(qemuPid, 'utf8').trim() || 0);
    if (pid) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  };
  t.after(async () => {
    await conductor?.stop();
    if (existsSync(qemuPid)) await killQemu().catch(() => undefined);
    for (const c of procs) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await run('ip', ['link', 'del', hostVeth]);
    await e.cleanup();
    if (process.env.STRATUS_TEST_KEEP) process.stderr.write(`kept ${scratch}\n`);
    else rmSync(scratch, { recursive: true, force: true });
  });

  // the host: a namespace with the provisioning bridge, the network driver's flat network on it with DHCP
  const bridge = `${p}br`;
  const h = await e.host('h', '192.0.2.1', { bridgeMappings: { bm: bridge } });
  await sh(h.ns, ['ip', 'link', 'add', bridge, 'type', 'bridge']);
  await sh(h.ns, ['ip', 'link', 'set', bridge, 'up']);
  // the conductor's address: a veth from this namespace onto the bridge
  await runOk('ip', ['link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', 'bmc0', 'netns', h.ns]);
  await sh(h.ns, ['ip', 'link', 'set', 'bmc0', 'master', bridge, 'up']);
  await runOk('ip', ['addr', 'add', `${conductorIp}/24`, 'dev', hostVeth]);
  await runOk('ip', ['link', 'set', hostVeth, 'up']);

  const net = randomUUID();
  const portId = randomUUID();
  const mac = `52:54:00:${[...randomBytes(3)].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
  const nodeIp = `${subnet}.21`;
  const port = 20000 + (randomBytes(2).readUInt16BE(0) % 20000);
  const base = networkSpec({ cidr: `${subnet}.0/24`, physical: 'bm', dhcp: { ip: `${subnet}.2`, hosts: [] } });
  await h.converge('network', net, {
    ...base, dhcp: { ...base.dhcp!, hosts: [{
      port_id: portId, mac_address: mac, ip_address: nodeIp, subnet_id: 'sub-1', hostname: 'bm-node',
      extra_dhcp_opts: [
        { opt_name: 'tag:ipxe,67', opt_value: `http://${conductorIp}:${port}/boot.ipxe`, ip_version: 4 },
        { opt_name: 'tag:!ipxe,67', opt_value: 'undionly.kpxe', ip_version: 4 },
      ],
    }] },
  });

  // the machine: a 256 MiB disk, one NIC on the bridge, started and stopped by ipmi_sim
  const disk = join(scratch, 'disk.raw');
  await runOk('truncate', ['-s', '256M', disk]);
  const tap = `${p}t`;
  await sh(h.ns, ['ip', 'tuntap', 'add', tap, 'mode', 'tap']);
  await sh(h.ns, ['ip', 'link', 'set', tap, 'master', bridge, 'up']);
  const consoleLog = join(scratch, 'console.log');
  writeFileSync(join(scratch, 'qemu.sh'), [
    '#!/bin/sh',
    `echo $$ > ${qemuPid}`,
    `exec qemu-system-x86_64 -name ${p}-bm -machine pc,accel=tcg -cpu max -m 384 -boot order=nc -nodefaults -vga none -display none \\`,
    `  -drive file=${disk},format=raw,if=virtio,cache=unsafe -netdev tap,id=n0,ifname=${tap},script=no,downscript=no -device virtio-net-pci,netdev=n0,mac=${mac} \\`,
    '  -chardev socket,id=ipmi0,host=127.0.0.1,port=9002,reconnect=10 -device ipmi-bmc-extern,id=bmc0,chardev=ipmi0 -device isa-ipmi-kcs,bmc=bmc0 \\',
    `  -serial file:${consoleLog}`,
    '',
  ].join('\n'), { mode: 0o755 });
  writeFileSync(join(scratch, 'lan.conf'), [
    `name "${p}"`, 'set_working_mc 0x20', '  startlan 1', '    addr 127.0.0.1 9001', '    priv_limit admin',
    '    allowed_auths_callback none md2 md5 straight', '    allowed_auths_user none md2 md5 straight', '    allowed_auths_operator none md2 md5 straight',
    '    allowed_auths_admin none md2 md5 straight', '    guid a123456789abcdefa123456789abcdef', '  endlan',
    '  serial 15 127.0.0.1 9002 codec VM', `  startcmd "${join(scratch, 'qemu.sh')}"`, '  startnow false', '  poweroff_wait 5', '  kill_wait 5',
    '  user 2 true  "admin" "password" admin 10 none md2 md5 straight', '',
  ].join('\n'));
  writeFileSync(join(scratch, 'bm.emu'), 'mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\nsel_enable 0x20 1000 0x0a\nmc_enable 0x20\n');
  mkdirSync(join(scratch, 'state'));
  const sim = spawn('ip', ['netns', 'exec', h.ns, 'ipmi_sim', '-c', join(scratch, 'lan.conf'), '-f', join(scratch, 'bm.emu'), '-s', join(scratch, 'state'), '-n'],
    { stdio: ['ignore', 'ignore', 'ignore'] });
  procs.push(sim);
  const bmc = ipmiBmc(h.ns, 9001);
  for (let i = 0; ; i++) {
    if (await bmc.power().then(() => true, () => false)) break;
    if (i > 50) throw new Error('ipmi_sim does not answer');
    await sleep(200);
  }

  // the image (stratus-tiny, qcow2) as the agent's image download would hand it, and an SSH key
  const tiny = await buildTinyImage();
  const imageId = randomUUID();
  const sha512 = createHash('sha512').update(readFileSync(tiny.disk)).digest('hex');
  const key = join(scratch, 'id_ed25519');
  await runOk('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
  const pub = readFileSync(`${key}.pub`, 'utf8').trim();

  let fetched = 0;
  conductor = new BaremetalConductor({
    stateDir: scratch, log, address: conductorIp, port, bmc: () => bmc, ramdiskTimeoutMs: 240_000, stepTimeoutMs: 300_000, powerTimeoutMs: 30_000,
    fetchImage: async (id, dest) => {
      assert.equal(id, imageId);
      fetched++;
      copyFileSync(tiny.disk, dest);
    },
  });
  let wake: (() => void) | null = null;
  conductor.requeue = () => wake?.();
  await conductor.start();

  const node = randomUUID();
  const spec = (operation: NodeOperation | null): NodeSpec => ({
    bmc: { type: 'ipmi', address: '127.0.0.1', port: 9001, username: 'admin', password: 'password' },
    maintenance: false, nics: [{ mac, pxe_enabled: true }], power: null, boot_device: null, operation, provisioning: null,
  });
  /** Converges until the operation ends (as the agent's queue would: at each wake-up and every few seconds); the phases seen. */
  const drive = async (op: NodeOperation, limitMs: number): Promise<{ observed: NodeObserved; error?: ResourceError; phases: string[]; seconds: number }> => {
    const phases: string[] = [];
    const t0 = Date.now();
    for (;;) {
      const r: { observed: NodeObserved; error?: ResourceError } = await conductor!.converge(node, spec(op));
      const o: NonNullable<NodeObserved['operation']> = r.observed.operation!;
      assert.equal(o.id, op.id);
      if (phases.at(-1) !== o.phase) phases.push(o.phase);
      if (o.status !== 'running') return { ...r, phases, seconds: Math.round((Date.now() - t0) / 1000) };
      if (Date.now() - t0 > limitMs) throw new Error(`${op.type} still ${o.phase} after ${limitMs / 1000} s: ${readFileSync(consoleLog, 'utf8').slice(-2000)}`);
      await new Promise<void>((r2) => {
        const timer = setTimeout(r2, 3000);
        wake = () => {
          clearTimeout(timer);
          r2();
        };
      });
    }
  };
  const times: Record<string, number> = {};

  await t.test('verify reads the power through the BMC', async () => {
    const r = await drive({ id: randomUUID(), type: 'verify' }, 30_000);
    assert.equal(r.observed.operation!.status, 'succeeded');
    assert.equal(r.observed.power_state, 'power off');
  });

  await t.test('inspect: PXE into the ramdisk, the inventory reported, the node off', async () => {
    const r = await drive({ id: randomUUID(), type: 'inspect', boot_interface: 'ipxe' }, 360_000);
    times.inspect = r.seconds;
    assert.equal(r.observed.operation!.status, 'succeeded', JSON.stringify(r));
    assert.deepEqual(r.phases.filter((x) => ['power_on', 'pxe', 'inspect', 'power_off', 'done'].includes(x)), r.phases, r.phases.join(' '));
    const inv = r.observed.operation!.inventory!;
    assert.equal(inv.cpus, 1);
    assert.equal(inv.cpu_arch, 'x86_64');
    assert.ok(inv.memory_mb > 250 && inv.memory_mb <= 384, String(inv.memory_mb));
    assert.deepEqual(inv.disks.map((d) => [d.name, d.size_bytes]), [['/dev/vda', 256 * 1024 * 1024]]);
    assert.deepEqual(inv.nics.map((n) => n.mac), [mac]);
    assert.equal(inv.boot_mac, mac);
    assert.equal(r.observed.power_state, 'power off');
    assert.match(readFileSync(consoleLog, 'utf8'), /stratus-ramdisk: inspected/);
    assert.doesNotMatch(readFileSync(consoleLog, 'utf8'), /stratus\.token=|[0-9a-f]{64}/, 'the token is not on the console');
  });

  await t.test('clean: the disk\'s metadata erased', async () => {
    // something to erase: a partition table and a signature at the end
    const d = Buffer.alloc(1 << 20, 0x5a);
    d[510] = 0x55; d[511] = 0xaa;
    writeFileSync(disk, d, { flag: 'r+' });
    await runOk('dd', ['if=/dev/urandom', `of=${disk}`, 'bs=1M', 'seek=255', 'count=1', 'conv=notrunc'], {});
    const r = await drive({ id: randomUUID(), type: 'clean', boot_interface: 'ipxe', steps: [{ interface: 'deploy', step: 'erase_devices_metadata' }] }, 360_000);
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

  await t.test('a ramdisk that never calls back: ramdisk_timeout, the node off', async () => {
    const quick = new BaremetalConductor({
      stateDir: join(scratch, 'quick'), log, address: conductorIp, port: port + 1, bmc: () => bmc, ramdiskTimeoutMs: 3000, powerTimeoutMs: 30_000,
      fetchImage: async () => undefined,
    });
    await quick.start();
    try {
      const op: NodeOperation = { id: randomUUID(), type: 'inspect', boot_interface: 'ipxe' };
      let r = await quick.converge(node, spec(op));
      assert.equal(r.observed.operation!.phase, 'pxe');
      await sleep(3500);
      r = await quick.converge(node, spec(op));
      assert.equal(r.observed.operation!.status, 'failed');
      assert.equal(r.error?.code, 'ramdisk_timeout');
      assert.match(r.observed.operation!.message!, /did not call back within 3 s/);
      assert.doesNotMatch(JSON.stringify(r), /password/);
      assert.equal(r.observed.power_state, 'power off');
    } finally {
      await quick.stop();
    }
  });
  process.stderr.write(`baremetal-conductor: ${JSON.stringify(times)} s; total ${Math.round((Date.now() - started) / 1000)} s\n`);
});
