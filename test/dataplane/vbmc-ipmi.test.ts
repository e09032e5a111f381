// A virtual bare-metal machine behind its IPMI BMC (OpenIPMI's ipmi_sim with
// Stratus's chassis control program), driven through the conductor's IPMI
// client (src/agent/drivers/baremetal/bmc/ipmi.ts) and checked with Debian's
// ipmitool: power status/on/off, the boot device (SeaBIOS's own words on the
// serial log say where it boots from), a hard reset that boots from the new
// device, a soft power off the firmware ignores, a refused password and a
// BMC that does not answer, classified; the serial console over IPMI Serial
// over LAN (qemu's serial socket, the relay, ipmi_sim's sol) recorded by the
// conductor's console recorder from the firmware's first words and across a
// reset from inside; then the machine deleted, with no qemu, ipmi_sim, relay
// or tap left.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { pino } from 'pino';
import { ConsoleRecorders } from '../../src/agent/drivers/baremetal/console.ts';
import { bmcClient } from '../../src/agent/drivers/baremetal/bmc/factory.ts';
import { ResourceFailure } from '../../src/agent/errors.ts';
import type { BmcAccess } from '../../src/baremetal/protocol.ts';
import { createMachine, deleteMachine, listMachines, type MachineInfo } from '../../src/vbmc/fleet.ts';
import { Machine } from '../../src/vbmc/machine.ts';
import { client, fileSize, leaks, makeBed, pidAlive, sleep, skipWithout, tearDown, waitText, type Bed } from './vbmc-lib.ts';

const skip = skipWithout('ipmi_sim', 'ipmitool', 'qemu-system-x86_64', 'socat');

let bed: Bed | undefined;
const NAME = 'ipmi0';

before(async () => {
  if (skip) return;
  // the bridge, tap and qemu in a network namespace of their own; ipmi_sim in the host's
  bed = await makeBed('vbi', { netns: true });
});

after(async () => {
  const failed = await tearDown(bed);
  assert.deepEqual(failed, []);
});

function accessOf(m: MachineInfo, password?: string): BmcAccess {
  const d = m.driverInfo as { ipmi_address: string; ipmi_port: number; ipmi_username: string; ipmi_password: string };
  return { type: 'ipmi', address: d.ipmi_address, port: d.ipmi_port, username: d.ipmi_username, password: password ?? d.ipmi_password };
}

/** Debian's ipmitool against the machine's BMC (the password through the environment, as ipmi.ts passes it). */
async function ipmitool(m: MachineInfo, ...args: string[]): Promise<string> {
  const a = accessOf(m);
  process.env.IPMI_PASSWORD = a.password;
  try {
    const r = await client('ipmitool', ['-I', 'lanplus', '-C', '3', '-H', a.address, '-p', String(a.port), '-U', a.username!, '-E', ...args]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout;
  } finally {
    delete process.env.IPMI_PASSWORD;
  }
}

test('an IPMI virtual machine: power, boot device, reset and soft off through ipmi.ts, checked with ipmitool; failures classified; nothing left', { skip, timeout: 240_000 }, async () => {
  const t0 = Date.now();
  const info = await createMachine({ stateDir: bed!.stateDir, name: NAME, bmc: 'ipmi', bridge: bed!.bridge, netns: bed!.netns, diskMb: 64 });
  assert.equal(info.power, 'off');
  assert.ok(info.bmcPid && pidAlive(info.bmcPid), 'ipmi_sim runs');
  const m = await Machine.load(info.dir);
  const consoleLog = m.file('console.log');
  const bmc = bmcClient(accessOf(info));
  assert.equal(bmc.virtualMedia, null);

  assert.equal(await bmc.power(), 'power off');
  assert.match(await ipmitool(info, 'chassis', 'power', 'status'), /Chassis Power is off/);

  // boot from the CD: ipmitool reads it back; SeaBIOS says so at power on (the drive is empty: it goes on to the disk)
  await bmc.setBootDevice('cdrom', true);
  assert.match(await ipmitool(info, 'chassis', 'bootparam', 'get', '5'), /Boot Device Selector : Force Boot from CD\/DVD/);
  // the conductor's record of the serial console over SOL, from before power on (as the conductor does)
  const consoles = new ConsoleRecorders(bed!.work, pino({ level: 'silent' }), 1 << 20);
  await consoles.start('node', bmc, 15_000);
  const recorded = async (re: RegExp, what: string, times = 1) => {
    const until = Date.now() + 45_000;
    for (;;) {
      const text = (await consoles.output('node')).replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
      if ((text.match(new RegExp(re.source, 'g'))?.length ?? 0) >= times) return text;
      if (Date.now() > until) assert.fail(`the recorded console has no ${what}; it ends with ${JSON.stringify(text.slice(-300))}`);
      await sleep(250);
    }
  };
  await bmc.setPower('power on', 30_000);
  const pid1 = m.pid();
  assert.ok(pid1 && pidAlive(pid1), 'qemu runs');
  assert.equal(statSync(`/proc/${pid1}/ns/net`).ino, statSync(`/run/netns/${bed!.netns}`).ino, 'qemu runs in the bridge\'s namespace');
  assert.match(await ipmitool(info, 'chassis', 'power', 'status'), /Chassis Power is on/);
  assert.equal((await listMachines(bed!.stateDir))[0]!.power, 'on');
  const first = await waitText(consoleLog, /Booting from (DVD\/CD|Hard Disk|ROM)/);
  assert.match(first, /Booting from DVD\/CD/, 'the CD is tried first');
  await recorded(/SeaBIOS[^]*Booting from DVD\/CD/, 'firmware output from its first words');
  assert.deepEqual(await m.qmp((q) => q.execute('qom-get', { path: '/machine/peripheral/cd', property: 'bootindex' })), 1);

  // PXE: the running machine's next reboot already goes to the NIC, the guest's own too (a reset from inside)
  await bmc.setBootDevice('pxe', false);
  assert.match(await ipmitool(info, 'chassis', 'bootparam', 'get', '5'), /Force PXE/);
  assert.deepEqual(await m.qmp((q) => q.execute('qom-get', { path: '/machine/peripheral/nic', property: 'bootindex' })), 1);
  let mark = await fileSize(consoleLog);
  await m.qmp((q) => q.execute('system_reset'));
  assert.match(await waitText(consoleLog, /Booting from (DVD\/CD|Hard Disk|ROM)/, mark), /Booting from ROM/);
  assert.equal(m.pid(), pid1, 'a reset from inside is the same qemu');
  await recorded(/SeaBIOS \(version/, 'a second firmware banner after the reset from inside', 2);
  await consoles.stop('node');
  // then a hard reset through the BMC: qemu starts again from the NIC's iPXE ROM
  mark = await fileSize(consoleLog);
  await bmc.reboot(30_000);
  const pid2 = m.pid();
  assert.ok(pid2 && pid2 !== pid1 && !pidAlive(pid1), 'a hard reset is a new qemu');
  const second = await waitText(consoleLog, /Booting from (DVD\/CD|Hard Disk|ROM)/, mark);
  assert.match(second, /Booting from ROM/, 'the NIC boots first');
  await waitText(consoleLog, /iPXE/, mark);
  assert.deepEqual(await m.qmp((q) => q.execute('qom-get', { path: '/machine/peripheral/nic', property: 'bootindex' })), 1);

  // the firmware has no ACPI: the button press is taken, the machine stays on
  await assert.rejects(bmc.softPowerOff(1500), (e: unknown) => e instanceof ResourceFailure && e.code === 'bmc_refused' && e.class === 'transient');
  assert.equal(await bmc.power(), 'power on');

  // the boot device ipmitool sets is the one the conductor's client reads back through the machine
  assert.match(await ipmitool(info, 'chassis', 'bootdev', 'disk'), /Set Boot Device to disk/);
  assert.equal((await m.state()).boot.device, 'disk');

  await bmc.setPower('power off', 30_000);
  assert.ok(!pidAlive(pid2), 'power off stops qemu');
  assert.equal(m.pid(), null);
  assert.match(await ipmitool(info, 'chassis', 'power', 'status'), /Chassis Power is off/);

  // a wrong password is bmc_auth (the user's), and no message holds a password
  const wrong = 'not-the-password';
  await assert.rejects(bmcClient(accessOf(info, wrong)).power(), (e: unknown) => {
    assert.ok(e instanceof ResourceFailure);
    assert.equal(e.code, 'bmc_auth');
    assert.equal(e.class, 'user');
    assert.ok(!e.message.includes(wrong) && !e.message.includes(accessOf(info).password!), e.message);
    return true;
  });
  // nothing on the port: bmc_unreachable, transient
  const dead: BmcAccess = { ...accessOf(info), port: info.config.bmc.port === 1 ? 2 : 1 };
  await assert.rejects(bmcClient(dead).power(), (e: unknown) => e instanceof ResourceFailure && e.code === 'bmc_unreachable' && e.class === 'transient');

  await deleteMachine(bed!.stateDir, NAME);
  assert.deepEqual(await leaks(bed!, [NAME]), []);
  assert.deepEqual(await listMachines(bed!.stateDir), []);
  process.stderr.write(`vbmc-ipmi: ${Date.now() - t0} ms\n`);
});
