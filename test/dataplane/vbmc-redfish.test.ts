// A virtual bare-metal machine behind Stratus's Redfish emulator, driven
// through the conductor's Redfish client (src/agent/drivers/baremetal/bmc/redfish.ts)
// and checked with Debian's redfishtool and python3-sushy: power, a one-time
// boot override to the CD, virtual media inserted from a local HTTP server
// (a tiny ISOLINUX ISO whose line shows on the serial log, and QMP showing it
// in the drive), eject, reset, Redfish error bodies, a wrong password (401),
// TLS (the emulator's certificate trusted by sushy, refused by a verifying
// client); then the machine deleted with no qemu, emulator or tap left.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { createReadStream } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { bmcClient } from '../../src/agent/drivers/baremetal/bmc/factory.ts';
import { ResourceFailure } from '../../src/agent/errors.ts';
import type { BmcAccess } from '../../src/baremetal/protocol.ts';
import { createMachine, deleteMachine, listMachines, type MachineInfo } from '../../src/vbmc/fleet.ts';
import { Machine } from '../../src/vbmc/machine.ts';
import { redfishDir } from '../../src/vbmc/redfish-control.ts';
import { CD_MARK, client, fileSize, leaks, makeBed, makeIso, pidAlive, skipWithout, tearDown, waitText, type Bed } from './vbmc-lib.ts';

const PYTHON = '/usr/bin/python3';
const skip = skipWithout('qemu-system-x86_64', 'openssl', 'xorriso', 'redfishtool', PYTHON, '/usr/lib/ISOLINUX/isolinux.bin', '/usr/lib/syslinux/modules/bios/ldlinux.c32');

let bed: Bed | undefined;
let http: Server | undefined;
let isoUrl = '';
const NAME = 'redfish0';

before(async () => {
  if (skip) return;
  bed = await makeBed('vbr');
  const iso = await makeIso(bed.work);
  http = createServer((req, res) => {
    if (req.url !== '/tiny.iso') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    createReadStream(iso).pipe(res);
  });
  await new Promise<void>((r) => http!.listen(0, '127.0.0.1', r));
  isoUrl = `http://127.0.0.1:${(http.address() as { port: number }).port}/tiny.iso`;
});

after(async () => {
  http?.close();
  const failed = await tearDown(bed);
  assert.deepEqual(failed, []);
});

function accessOf(m: MachineInfo, o: Partial<BmcAccess> = {}): BmcAccess {
  const d = m.driverInfo as { redfish_address: string; redfish_system_id: string; redfish_username: string; redfish_password: string };
  return { type: 'redfish', address: d.redfish_address, system_id: d.redfish_system_id, username: d.redfish_username, password: d.redfish_password, verify_tls: false, ...o };
}

/** A raw request to the emulator (its certificate not checked). */
function raw(m: MachineInfo, method: string, path: string, body?: unknown, password?: string): Promise<{ status: number; body: any }> {
  const a = accessOf(m);
  const url = new URL(path, a.address);
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method, rejectUnauthorized: false,
      headers: { authorization: `Basic ${Buffer.from(`${a.username}:${password ?? a.password}`).toString('base64')}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : null }));
    });
    req.on('error', reject);
    req.end(body ? JSON.stringify(body) : undefined);
  });
}

async function redfishtool(m: MachineInfo, args: string[], password?: string) {
  const a = accessOf(m);
  return client('redfishtool', ['-r', new URL(a.address).host, '-u', a.username!, '-p', password ?? a.password!, '-S', 'Always', ...args]);
}

/** Runs a sushy script: argv[1..] = url, password, system path, CA file, then `extra`. */
async function sushy(m: MachineInfo, script: string, ...extra: string[]) {
  const a = accessOf(m);
  const prelude = 'import sys, urllib3\nurllib3.disable_warnings()\nimport sushy\nfrom sushy import auth\nurl, pw, sid, ca = sys.argv[1:5]\n';
  const r = await client(PYTHON, ['-c', prelude + script, a.address, a.password!, a.system_id!, join(redfishDir(bed!.stateDir), 'cert.pem'), ...extra]);
  assert.equal(r.code, 0, `sushy: ${r.stderr}`);
  return r.stdout;
}

test('a Redfish virtual machine: power, boot override, virtual media through redfish.ts, redfishtool and sushy; errors, 401, TLS; nothing left', { skip, timeout: 300_000 }, async () => {
  const t0 = Date.now();
  const info = await createMachine({ stateDir: bed!.stateDir, name: NAME, bmc: 'redfish', bridge: bed!.bridge, diskMb: 64 });
  assert.ok(info.bmcPid && pidAlive(info.bmcPid), 'the emulator runs');
  const m = await Machine.load(info.dir);
  const consoleLog = m.file('console.log');
  const bmc = bmcClient(accessOf(info));
  assert.ok(bmc.virtualMedia);
  assert.equal(await bmc.power(), 'power off');

  // the ISO from the HTTP server in the CD drive, a one-time boot from it, power on: ISOLINUX speaks on the serial port
  await bmc.virtualMedia.insert(isoUrl);
  await bmc.setBootDevice('cdrom', false);
  let sys = (await raw(info, 'GET', accessOf(info).system_id!)).body;
  assert.deepEqual([sys.Boot.BootSourceOverrideTarget, sys.Boot.BootSourceOverrideEnabled], ['Cd', 'Once']);
  await bmc.setPower('power on', 30_000);
  const pid1 = m.pid();
  assert.ok(pid1 && pidAlive(pid1), 'qemu runs');
  await waitText(consoleLog, new RegExp(CD_MARK), 0, 60_000);
  const block = await m.qmp((q) => q.execute('query-block'));
  const cd = block.find((b) => b.device === 'drive-cd');
  assert.ok(cd?.inserted && cd.inserted.file.endsWith('media.iso') && cd.inserted.ro, JSON.stringify(cd));
  // the one-time override is used up: the guest's own reboots go to the disk first
  sys = (await raw(info, 'GET', accessOf(info).system_id!)).body;
  assert.deepEqual([sys.PowerState, sys.Boot.BootSourceOverrideTarget, sys.Boot.BootSourceOverrideEnabled], ['On', 'None', 'Disabled']);
  assert.deepEqual(await m.qmp((q) => q.execute('qom-get', { path: '/machine/peripheral/disk', property: 'bootindex' })), 1);

  // redfishtool: power state, a continuous override to PXE, a forced restart that boots the NIC
  let r = await redfishtool(info, ['-P', 'PowerState', 'Systems', '-I', info.config.uuid]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).PowerState, 'On');
  r = await redfishtool(info, ['Systems', '-I', info.config.uuid, 'setBootOverride', 'Continuous', 'Pxe']);
  assert.equal(r.code, 0, r.stderr);
  const mark = await fileSize(consoleLog);
  r = await redfishtool(info, ['Systems', '-I', info.config.uuid, 'reset', 'ForceRestart']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(await waitText(consoleLog, /Booting from (DVD\/CD|Hard Disk|ROM)/, mark), /Booting from ROM/);
  const pid2 = m.pid();
  assert.ok(pid2 && pid2 !== pid1 && !pidAlive(pid1));
  sys = (await raw(info, 'GET', accessOf(info).system_id!)).body;
  assert.deepEqual([sys.Boot.BootSourceOverrideTarget, sys.Boot.BootSourceOverrideEnabled], ['Pxe', 'Continuous'], 'a continuous override stays');
  r = await redfishtool(info, ['Systems', '-I', info.config.uuid], 'wrong-password');
  assert.notEqual(r.code, 0);
  assert.match(r.stdout + r.stderr, /401/);

  // sushy (the library Ironic's redfish driver uses), trusting the emulator's own certificate: what redfish inspection reads
  // (the EthernetInterfaces' MACs and states, the processors' count and architecture, memory, the disks), eject, insert, boot override, power
  const out = await sushy(info, [
    's = sushy.Sushy(url, username="admin", password=pw, verify=ca)',
    'system = s.get_system(sid)',
    'print("power", system.power_state.value)',
    // what Ironic's redfish inspect interface reads (enum values or plain strings, as the sushy version has them)
    'v = lambda x: str(getattr(x, "value", x)).lower()',
    'print("nics", " ".join(sorted(f"{mac.lower()}={v(st)}" for mac, st in system.ethernet_interfaces.summary.items())))',
    'c = system.processors.summary; print("cpus", c[0], v(c[1]))',
    'print("memory", system.memory_summary.size_gib, "disks", system.simple_storage.disks_sizes_bytes)',
    'vm = system.managers[0].virtual_media.get_members()[0]',
    'print("media", vm.inserted, vm.image, [t.value for t in vm.media_types])',
    'vm.eject_media(); vm.refresh(); print("ejected", vm.inserted, vm.image)',
    'vm.insert_media(sys.argv[5], inserted=True, write_protected=True); vm.refresh(); print("inserted", vm.inserted, vm.image_name)',
    'system.set_system_boot_options(sushy.BOOT_SOURCE_TARGET_HDD, enabled=sushy.BOOT_SOURCE_ENABLED_CONTINUOUS); system.refresh()',
    'print("boot", system.boot.target.value, system.boot.enabled.value)',
    'system.reset_system(sushy.RESET_FORCE_OFF); system.refresh(); print("power", system.power_state.value)',
    'try:\n  sushy.Sushy(url, verify=ca, auth=auth.BasicAuth(username="admin", password="nope")).get_system(sid)\nexcept sushy.exceptions.AccessError as e:\n  print("denied", e.status_code)',
    'try:\n  sushy.Sushy(url, username="admin", password=pw, verify=True)\nexcept sushy.exceptions.ConnectionError as e:\n  print("untrusted", "CERTIFICATE_VERIFY_FAILED" in str(e))',
  ].join('\n'), isoUrl);
  const lines = out.trim().split('\n');
  assert.deepEqual(lines, [
    'power On', `nics ${[`${m.config.mac}=enabled`, `${m.config.spareMac}=enabled`].sort().join(' ')}`, `cpus ${m.config.cpus} x86`,
    // sushy reads TotalSystemMemoryGiB (a decimal in the schema) as an integer: 512 MiB is its 0 GiB (Stratus's client keeps the fraction)
    `memory ${Math.trunc(m.config.memoryMb / 1024)} disks [${m.config.diskMb * 1024 * 1024}]`, `media True ${isoUrl} ['CD', 'DVD']`, 'ejected False None', 'inserted True tiny.iso', 'boot Hdd Continuous', 'power Off', 'denied 401', 'untrusted True',
  ]);
  assert.equal(m.pid(), null, 'ForceOff stopped qemu');
  assert.ok(!pidAlive(pid2));

  // the client: reboot from off powers on, a soft power off the firmware ignores times out, eject
  await bmc.reboot(30_000);
  assert.equal(await bmc.power(), 'power on');
  await assert.rejects(bmc.softPowerOff(1500), (e: unknown) => e instanceof ResourceFailure && e.code === 'bmc_refused');
  await bmc.virtualMedia.eject();
  const after = await m.qmp((q) => q.execute('query-block'));
  assert.ok(!after.find((b) => b.device === 'drive-cd')?.inserted, 'the drive is empty');
  await bmc.setPower('power off', 30_000);

  // Redfish error bodies, and the client's classification
  const bad = await raw(info, 'POST', `${accessOf(info).system_id}/Actions/ComputerSystem.Reset`, { ResetType: 'Bogus' });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error.code, 'Base.1.8.ActionParameterNotSupported');
  assert.equal(bad.body.error['@Message.ExtendedInfo'][0].MessageId, 'Base.1.8.ActionParameterNotSupported');
  const missing = await raw(info, 'GET', '/redfish/v1/Systems/nope');
  assert.equal(missing.status, 404);
  assert.equal(missing.body.error.code, 'Base.1.8.ResourceMissingAtURI');
  const unauth = await raw(info, 'GET', '/redfish/v1/Systems', undefined, 'nope');
  assert.equal(unauth.status, 401);
  assert.equal(unauth.body.error.code, 'Base.1.8.NoValidSession');
  const patch = await raw(info, 'PATCH', accessOf(info).system_id!, { Boot: { BootSourceOverrideTarget: 'Floppy' } });
  assert.equal(patch.status, 400);
  assert.equal(patch.body.error.code, 'Base.1.8.PropertyValueNotInList');
  await assert.rejects(bmc.virtualMedia.insert('http://127.0.0.1:1/none.iso'), (e: unknown) => e instanceof ResourceFailure && e.code === 'bmc_refused' && e.class === 'user');
  const wrong = 'wrong-password-here';
  await assert.rejects(bmcClient(accessOf(info, { password: wrong })).power(), (e: unknown) => e instanceof ResourceFailure && e.code === 'bmc_auth' && !e.message.includes(wrong));
  await assert.rejects(bmcClient(accessOf(info, { verify_tls: true })).power(), (e: unknown) => e instanceof ResourceFailure && e.code === 'bmc_unreachable' && e.class === 'user' && /certificate/.test(e.message));
  await assert.rejects(bmcClient(accessOf(info, { address: 'https://127.0.0.1:1' })).power(), (e: unknown) => e instanceof ResourceFailure && e.code === 'bmc_unreachable' && e.class === 'transient');

  // one emulator serves every Redfish machine of the directory: a second system; a client must then be told which
  const second = await createMachine({ stateDir: bed!.stateDir, name: `${NAME}b`, bmc: 'redfish', bridge: bed!.bridge, diskMb: 16 });
  assert.equal(second.bmcPid, info.bmcPid, 'the same emulator');
  assert.equal(second.config.bmc.port, info.config.bmc.port);
  const members = (await raw(info, 'GET', '/redfish/v1/Systems')).body;
  assert.deepEqual(members.Members.map((x: any) => x['@odata.id']).sort(), [info.config.uuid, second.config.uuid].map((u) => `/redfish/v1/Systems/${u}`).sort());
  assert.equal(members['Members@odata.count'], 2);
  assert.equal(await bmcClient(accessOf(second)).power(), 'power off');
  await assert.rejects(bmcClient(accessOf(info, { system_id: undefined })).power(), (e: unknown) => e instanceof ResourceFailure && e.code === 'bmc_refused' && /2 systems/.test(e.message));
  await deleteMachine(bed!.stateDir, second.name);
  assert.ok(pidAlive(info.bmcPid!), 'the emulator stays for the other machine');

  await deleteMachine(bed!.stateDir, NAME);
  assert.ok(!pidAlive(info.bmcPid!), 'the emulator goes with the last machine');
  assert.deepEqual(await leaks(bed!, [NAME, `${NAME}b`]), []);
  assert.deepEqual(await listMachines(bed!.stateDir), []);
  process.stderr.write(`vbmc-redfish: ${Date.now() - t0} ms\n`);
});
