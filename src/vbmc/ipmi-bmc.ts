// A virtual machine's IPMI BMC: OpenIPMI's simulator `ipmi_sim`, one per
// machine, speaking IPMI 2.0 over LAN (RMCP+, `ipmitool -I lanplus -C 3`) on
// the machine's BMC address and UDP port, with one admin user. Its
// configuration lives in the machine's directory:
//   ipmi/lan.conf   the LAN channel, the user (owner-only: it holds the password),
//                   `chassis_control`: chassis-control.ts run with Node for
//                   every chassis command (power, reset, soft off, boot device),
//                   and `sol`: Serial over LAN from the machine's serial port
//                   (the relay's TCP port, serial-relay.ts; ipmi_sim connects
//                   and reconnects by itself)
//   ipmi/bmc.emu    the emulator commands making MC 0x20 the BMC
//   ipmi/state/     ipmi_sim's persistent data
//   ipmi/ipmi_sim.pid, ipmi/ipmi_sim.log
import { createSocket } from 'node:dgram';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { shQuote } from '../common/text.ts';
import { boundBy, startDaemon, stopDaemon } from './daemon.ts';
import { livePid, type Machine } from './machine.ts';

const CHASSIS_CONTROL = fileURLToPath(new URL('./chassis-control.ts', import.meta.url));

const ipmiDir = (m: Machine) => m.file('ipmi');

/** lan.conf's quoted strings end at a double quote; names and passwords are kept to printable ASCII without one. */
function confWord(s: string, what: string): string {
  if (!/^[\x21\x23-\x7e]{1,20}$/.test(s)) throw new Error(`the IPMI ${what} must be 1 to 20 printable ASCII characters without spaces or double quotes`);
  return s;
}

export async function writeIpmiConfig(m: Machine): Promise<void> {
  const c = m.config;
  const dir = ipmiDir(m);
  await fsp.mkdir(join(dir, 'state'), { recursive: true, mode: 0o700 });
  const control = [process.execPath, '--disable-warning=ExperimentalWarning', CHASSIS_CONTROL, m.dir].map(shQuote).join(' ');
  if (control.includes('"')) throw new Error(`${m.dir}: a path with a double quote cannot go into lan.conf`);
  const conf = [
    `name "vbmc-${c.uuid.slice(0, 8)}"`,
    'set_working_mc 0x20',
    '  startlan 1',
    `    addr ${c.bmc.address} ${c.bmc.port}`,
    '    priv_limit admin',
    // RMCP+ (lanplus) authenticates with the user's key whatever these say; IPMI 1.5 sessions get MD5 at least
    '    allowed_auths_callback md5',
    '    allowed_auths_user md5',
    '    allowed_auths_operator md5',
    '    allowed_auths_admin md5',
    `    guid ${c.uuid.replace(/-/g, '')}`,
    '  endlan',
    `  chassis_control "${control}"`,
    ...(c.serial ? [`  sol "tcp:${c.serial.address.includes(':') ? `[${c.serial.address}]` : c.serial.address}:${c.serial.port}" 115200`] : []),
    `  user 2 true "${confWord(c.bmc.username, 'user name')}" "${confWord(c.bmc.password, 'password')}" admin 10 md5`,
    '',
  ].join('\n');
  await fsp.writeFile(join(dir, 'lan.conf'), conf, { mode: 0o600 });
  await fsp.writeFile(join(dir, 'bmc.emu'), [
    'mc_setbmc 0x20',
    'mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr',
    'sel_enable 0x20 1000 0x0a',
    'mc_enable 0x20',
    '',
  ].join('\n'), { mode: 0o600 });
}

/** A UDP port free on `address` now (the kernel's choice). */
export function freeUdpPort(address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createSocket(address.includes(':') ? 'udp6' : 'udp4');
    s.once('error', reject);
    s.bind(0, address, () => {
      const { port } = s.address();
      s.close();
      resolve(port);
    });
  });
}

export async function startIpmiBmc(m: Machine): Promise<number> {
  const dir = ipmiDir(m);
  const conf = join(dir, 'lan.conf');
  return startDaemon({
    cmd: 'ipmi_sim', args: ['-c', conf, '-f', join(dir, 'bmc.emu'), '-s', join(dir, 'state'), '-n'],
    pidFile: join(dir, 'ipmi_sim.pid'), mark: conf, log: join(dir, 'ipmi_sim.log'),
    ready: async (pid) => boundBy(pid, 'udp', m.config.bmc.port),
  });
}

export async function stopIpmiBmc(m: Machine): Promise<boolean> {
  const dir = ipmiDir(m);
  return stopDaemon(join(dir, 'ipmi_sim.pid'), join(dir, 'lan.conf'));
}

export function ipmiBmcPid(m: Machine): number | null {
  const dir = ipmiDir(m);
  return livePid(join(dir, 'ipmi_sim.pid'), join(dir, 'lan.conf'));
}
