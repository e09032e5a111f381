// The virtual bare-metal machines of one state directory, with their BMCs:
// made, listed and removed as a whole (what `stratus baremetal virtual`
// and the tests use). STATE_DIR/machines/<name>/ per machine (machine.ts),
// STATE_DIR/redfish/ for the one Redfish emulator serving every Redfish
// machine of the directory (redfish-emulator.ts).
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { probeAccel } from '../agent/drivers/vm/accel.ts';
import { Reverter } from '../common/revert.ts';
import { freeUdpPort, ipmiBmcPid, startIpmiBmc, stopIpmiBmc, writeIpmiConfig } from './ipmi-bmc.ts';
import { ensureTap, linkExists, Machine, newUuid, randomMac, removeTap, writeJson, type BmcKind, type MachineConfig } from './machine.ts';
import { ensureRedfishEmulator, redfishDir, redfishEmulatorPid, stopRedfishEmulator, type RedfishEndpoint } from './redfish-control.ts';
import { freeTcpPort, startSerialRelay, stopSerialRelay } from './serial-relay.ts';

export const DEFAULT_STATE_DIR = '/var/lib/stratus-vbmc';
const NAME = /^[a-z0-9][a-z0-9-]{0,30}$/;

export interface CreateOptions {
  stateDir: string;
  name: string;
  bmc: BmcKind;
  bridge: string;
  /** The network namespace holding the bridge (qemu and the tap go there; the BMCs stay in the host's). */
  netns?: string;
  diskMb?: number;
  memoryMb?: number;
  cpus?: number;
  /** Where the BMCs listen (127.0.0.1 unless given). */
  bmcAddress?: string;
  /** The IPMI BMC's UDP port (a free one unless given). */
  ipmiPort?: number;
  /** The Redfish emulator's TCP port when it starts first (a free one unless given). */
  redfishPort?: number;
  mac?: string;
}

export interface MachineInfo {
  name: string;
  dir: string;
  config: MachineConfig;
  power: 'on' | 'off';
  qemuPid: number | null;
  bmcPid: number | null;
  /** How a client reaches its BMC (Ironic's driver_info). */
  driverInfo: Record<string, unknown>;
}

const machinesDir = (stateDir: string) => join(stateDir, 'machines');

const haveSocat = () => (process.env.PATH ?? '/usr/bin:/bin').split(':').some((d) => existsSync(join(d, 'socat')));

/** The tap of a machine: unique per state directory and name, 15 characters at most. */
export function tapName(stateDir: string, name: string): string {
  return `vbm${createHash('sha256').update(`${stateDir}\0${name}`).digest('hex').slice(0, 10)}`;
}

/** Makes a machine (disk, config, tap) and its BMC, running; powered off. */
export async function createMachine(o: CreateOptions): Promise<MachineInfo> {
  if (!NAME.test(o.name)) throw new Error(`machine name ${JSON.stringify(o.name)}: 1 to 31 of a-z, 0-9, - (not first)`);
  if (o.netns && !existsSync(`/run/netns/${o.netns}`)) throw new Error(`no network namespace ${o.netns}`);
  if (!(await linkExists(o.netns, o.bridge, 'bridge'))) throw new Error(`no bridge ${o.bridge} ${o.netns ? `in network namespace ${o.netns}` : 'on this host'} (make it first, or give --bridge)`);
  const dir = join(machinesDir(o.stateDir), o.name);
  if (existsSync(dir)) throw new Error(`a virtual machine ${o.name} exists already in ${o.stateDir}`);
  const address = o.bmcAddress ?? '127.0.0.1';
  const r = new Reverter();
  try {
    await fsp.mkdir(machinesDir(o.stateDir), { recursive: true, mode: 0o700 });
    await fsp.mkdir(dir, { mode: 0o700 });
    r.add(() => fsp.rm(dir, { recursive: true, force: true }));
    const accel = (await probeAccel(join(o.stateDir, 'probe'))).accel;
    let port: number;
    let endpoint: RedfishEndpoint | null = null;
    if (o.bmc === 'redfish') {
      endpoint = await ensureRedfishEmulator({ stateDir: o.stateDir, address, port: o.redfishPort });
      port = endpoint.port;
    } else {
      port = o.ipmiPort ?? await freeUdpPort(address);
    }
    // the serial port's TCP port: ipmi_sim's SOL connects on this host; a Redfish console client on the BMC's address
    // (without socat, the relay, the machine's BMC offers no serial console)
    const serialAddress = o.bmc === 'redfish' ? address : '127.0.0.1';
    const serial = haveSocat() ? { address: serialAddress, port: await freeTcpPort(serialAddress) } : undefined;
    const config: MachineConfig = {
      name: o.name, uuid: newUuid(), mac: (o.mac ?? randomMac()).toLowerCase(), spareMac: randomMac(), bridge: o.bridge, tap: tapName(o.stateDir, o.name), ...(o.netns ? { netns: o.netns } : {}),
      memoryMb: o.memoryMb ?? 512, diskMb: o.diskMb ?? 256, cpus: o.cpus ?? 1, accel,
      bmc: endpoint
        ? { kind: 'redfish', address, port, username: endpoint.username, password: endpoint.password }
        : { kind: 'ipmi', address, port, username: 'admin', password: randomBytes(12).toString('base64url') },
      ...(serial ? { serial } : {}),
    };
    await writeJson(join(dir, 'machine.json'), config);
    const fh = await fsp.open(join(dir, 'disk.img'), 'w', 0o600);
    await fh.truncate(config.diskMb * 1024 * 1024);
    await fh.close();
    const m = new Machine(dir, config);
    r.add(() => removeTap(config.netns, config.tap));
    await ensureTap(config);
    r.add(() => stopSerialRelay(m));
    await startSerialRelay(m);
    if (config.bmc.kind === 'ipmi') {
      await writeIpmiConfig(m);
      r.add(() => stopIpmiBmc(m));
      await startIpmiBmc(m);
    }
    r.success();
    return info(m);
  } catch (err) {
    await r.fail();
    throw err;
  }
}

/** Every machine of the state directory. */
export async function listMachines(stateDir: string): Promise<MachineInfo[]> {
  const names = await fsp.readdir(machinesDir(stateDir)).catch(() => [] as string[]);
  const out: MachineInfo[] = [];
  for (const n of names.sort()) {
    const m = await Machine.load(join(machinesDir(stateDir), n)).catch(() => null);
    if (m) out.push(info(m));
  }
  return out;
}

export async function loadMachine(stateDir: string, name: string): Promise<Machine> {
  return Machine.load(join(machinesDir(stateDir), name));
}

function info(m: Machine): MachineInfo {
  const c = m.config;
  const qemuPid = m.pid();
  const stateDir = join(m.dir, '..', '..');
  return {
    name: c.name, dir: m.dir, config: c, power: qemuPid ? 'on' : 'off', qemuPid,
    bmcPid: c.bmc.kind === 'ipmi' ? ipmiBmcPid(m) : redfishEmulatorPid(stateDir),
    driverInfo: driverInfo(c),
  };
}

/** Ironic's driver_info for the machine's BMC (with the password: for enrolling only). */
export function driverInfo(c: MachineConfig): Record<string, unknown> {
  if (c.bmc.kind === 'ipmi') {
    return { ipmi_address: c.bmc.address, ipmi_port: c.bmc.port, ipmi_username: c.bmc.username, ipmi_password: c.bmc.password };
  }
  const host = c.bmc.address.includes(':') ? `[${c.bmc.address}]` : c.bmc.address;
  return {
    redfish_address: `https://${host}:${c.bmc.port}`, redfish_system_id: `/redfish/v1/Systems/${c.uuid}`,
    redfish_username: c.bmc.username, redfish_password: c.bmc.password, redfish_verify_ca: false,
  };
}

/** Stops a machine's qemu and BMC, removes its tap and files; the Redfish emulator goes with the last Redfish machine. */
export async function deleteMachine(stateDir: string, name: string): Promise<void> {
  const m = await loadMachine(stateDir, name);
  if (m.config.bmc.kind === 'ipmi') await stopIpmiBmc(m);
  await m.powerOff();
  await stopSerialRelay(m);
  await removeTap(m.config.netns, m.config.tap);
  await fsp.rm(m.dir, { recursive: true, force: true });
  if (!(await listMachines(stateDir)).some((x) => x.config.bmc.kind === 'redfish')) {
    await stopRedfishEmulator(stateDir);
    await fsp.rm(redfishDir(stateDir), { recursive: true, force: true });
  }
}

/** Starts whatever BMC of the directory is not running (after a host reboot). */
export async function startBmcs(stateDir: string): Promise<void> {
  for (const i of await listMachines(stateDir)) {
    const m = await loadMachine(stateDir, i.name);
    await startSerialRelay(m);
    if (i.config.bmc.kind === 'ipmi') await startIpmiBmc(m);
    else await ensureRedfishEmulator({ stateDir, address: i.config.bmc.address, port: i.config.bmc.port });
  }
}
