// The IPMI client (src/agent/drivers/baremetal/bmc/ipmi.ts) against the
// virtual IPMI BMC (ipmi_sim with Stratus's chassis control program,
// src/vbmc), without qemu or root: a machine that stays powered off (its
// files only). Power status, every boot device (as ipmitool reads it back
// and as the machine keeps it), a wrong password and an unknown user as
// bmc_auth with no password in the message, a device IPMI cannot set. The
// BMC is stopped at the end.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IpmiBmc } from '../../src/agent/drivers/baremetal/bmc/ipmi.ts';
import { ResourceFailure } from '../../src/agent/errors.ts';
import { run } from '../../src/agent/exec.ts';
import type { BmcAccess, BootDevice } from '../../src/baremetal/protocol.ts';
import { freeUdpPort, ipmiBmcPid, startIpmiBmc, stopIpmiBmc, writeIpmiConfig } from '../../src/vbmc/ipmi-bmc.ts';
import { Machine, writeJson, type MachineConfig } from '../../src/vbmc/machine.ts';

const onPath = (c: string) => (process.env.PATH ?? '').split(':').some((d) => existsSync(join(d, c)));
const missing = ['ipmi_sim', 'ipmitool'].filter((c) => !onPath(c));
const skip = missing.length ? `not installed: ${missing.join(', ')}` : false;

let dir: string;
let m: Machine;

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'stratus-vbmc-ipmi-unit-'));
  const mdir = join(dir, 'machines', 'i1');
  mkdirSync(mdir, { recursive: true });
  const config: MachineConfig = {
    name: 'i1', uuid: '0e7e7c1a-55a3-4b1e-8d0c-3f2f1b9a6d21', mac: '52:54:00:11:22:33', bridge: 'none', tap: 'none', memoryMb: 512, diskMb: 16, cpus: 1, accel: 'tcg',
    bmc: { kind: 'ipmi', address: '127.0.0.1', port: await freeUdpPort('127.0.0.1'), username: 'admin', password: 'Unit-Test-Pass1' },
  };
  await writeJson(join(mdir, 'machine.json'), config);
  m = new Machine(mdir, config);
  await writeIpmiConfig(m);
  await startIpmiBmc(m);
});

after(async () => {
  if (skip) return;
  await stopIpmiBmc(m);
  rmSync(dir, { recursive: true, force: true });
});

const access = (o: Partial<BmcAccess> = {}): BmcAccess => ({ type: 'ipmi', address: '127.0.0.1', port: m.config.bmc.port, username: 'admin', password: m.config.bmc.password, ...o });

test('IPMI client and virtual BMC: power status, boot devices, bmc_auth, refused devices', { skip }, async () => {
  assert.ok(ipmiBmcPid(m), 'ipmi_sim runs as a daemon');
  const bmc = new IpmiBmc(access());
  assert.equal(await bmc.power(), 'power off');
  const selector: Record<BootDevice, RegExp> = { pxe: /Force PXE/, disk: /Force Boot from default Hard-Drive/, cdrom: /Force Boot from CD\/DVD/, bios: /Force Boot into BIOS Setup/ };
  for (const dev of ['cdrom', 'pxe', 'bios', 'disk'] as const) {
    await bmc.setBootDevice(dev, true);
    assert.equal((await m.state()).boot.device, dev);
    const r = await run('ipmitool', ['-I', 'lanplus', '-C', '3', '-H', '127.0.0.1', '-p', String(m.config.bmc.port), '-U', 'admin', '-E', 'chassis', 'bootparam', 'get', '5'],
      { env: { ...process.env, IPMI_PASSWORD: m.config.bmc.password } });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, selector[dev]);
  }
  const noSecret = (code: string) => (e: unknown) => e instanceof ResourceFailure && e.code === code && e.class === 'user'
    && !e.message.includes(m.config.bmc.password) && !e.message.includes('Wrong-Pass-99');
  await assert.rejects(new IpmiBmc(access({ password: 'Wrong-Pass-99' })).power(), noSecret('bmc_auth'));
  await assert.rejects(new IpmiBmc(access({ username: 'nobody' })).power(), noSecret('bmc_auth'));
  await assert.rejects(bmc.setBootDevice('floppy' as BootDevice, false), noSecret('bmc_refused'));
  assert.throws(() => new IpmiBmc({ ...access(), type: 'redfish' }));
});
