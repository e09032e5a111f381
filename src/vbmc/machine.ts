// A virtual bare-metal machine: a qemu-system-x86_64 guest that behaves as a
// physical server behind a BMC. Power is whether its qemu process runs; the
// boot device is qemu's boot order (bootindex) at the next start; virtual
// media is an ISO in its CD drive. Its BMC (ipmi_sim through
// chassis-control.ts, or the Redfish emulator) is the only thing that
// changes it, through this module; the CLI reads it.
//
// On disk, one directory per machine (STATE_DIR/machines/<name>/):
//   machine.json  what it is (name, uuid, MAC, tap and bridge, RAM, disk, its
//                 BMC's kind, address and credentials: owner-only), written
//                 once by create
//   state.json    what its BMC set: the boot device (persistent or once), the
//                 inserted media; written whole (temp file + rename)
//   launched.json the boot order and media the running qemu started with
//   disk.img      the disk, a sparse raw file
//   media.iso     the inserted virtual media's image, when any
//   console.log   the serial port (SeaBIOS's, iPXE's and the OS's output:
//                 SeaBIOS's serial console `etc/sercon-port` sends the BIOS
//                 screen there, iPXE's too)
//   serial.sock   the serial port itself (qemu's socket chardev, a server;
//                 what it says goes to console.log too): the BMC's serial
//                 console reaches it through serial-relay.ts
//   qemu.pid, qmp.sock, qemu.log
//
// qemu: TCG unless the agent's accelerator probe (accel.ts) finds KVM usable,
// machine `pc` (its IDE bus holds the CD drive), one virtio-net NIC with
// Debian's iPXE ROM (ipxe-qemu, qemu's default for virtio-net) on a tap on
// the given host bridge with the machine's fixed MAC (the boot NIC, eth0),
// a second virtio-net NIC with its own fixed MAC, no ROM and no boot index,
// attached to nothing (no netdev: what it sends is dropped inside qemu, no
// traffic leaves the machine; a server's unwired port, which inspection
// must still report), a virtio disk, an IDE
// CD drive (empty unless media is inserted), the serial port to console.log,
// QMP on qmp.sock. `-boot strict=on,reboot-timeout=10000`: only the listed
// devices boot, and a machine that finds nothing to boot (no DHCP answer
// yet, an empty disk) tries again after 10 s, as a server's firmware does.
// It runs detached (its own session), so it outlives the BMC process that
// started it; the pid file with the command line's qmp.sock names it.
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { QmpClient } from '../agent/drivers/vm/qmp.ts';

export const QEMU = 'qemu-system-x86_64';

/** Where the next boot goes (Ironic's boot devices). */
export type BootDevice = 'pxe' | 'disk' | 'cdrom' | 'bios';
export const BOOT_DEVICES: readonly BootDevice[] = ['pxe', 'disk', 'cdrom', 'bios'];

export type BmcKind = 'ipmi' | 'redfish';

export interface MachineConfig {
  name: string;
  /** The SMBIOS UUID, and the Redfish system's id. */
  uuid: string;
  mac: string;
  /** The second NIC's MAC (attached to no network); absent on machines made before it. */
  spareMac?: string;
  bridge: string;
  tap: string;
  /**
   * The network namespace of the bridge, the tap and qemu (the host's when
   * absent). The BMCs stay in the host's: ipmi_sim, the emulator and QMP's
   * unix socket are reached from there.
   */
  netns?: string;
  memoryMb: number;
  diskMb: number;
  cpus: number;
  accel: 'kvm' | 'tcg';
  bmc: { kind: BmcKind; address: string; port: number; username: string; password: string };
  /**
   * The TCP port of the host where its serial port is offered (serial-relay.ts:
   * ipmi_sim's SOL connects there, the Redfish system's SerialConsole.Telnet);
   * absent on machines made before it.
   */
  serial?: { address: string; port: number };
  /** The node made for it in a cloud's bare-metal API, when the CLI enrolled it. */
  enrolled?: { url: string; node: string };
}

export interface MachineState {
  /**
   * The next boot's device; `persistent: false`: one boot only, then back to
   * the default order (disk first). `override`: set by the BMC (Redfish shows
   * no BootSourceOverrideTarget without it).
   */
  boot: { device: BootDevice; persistent: boolean; override?: boolean };
  /** The inserted virtual media: where its image came from and the file it was saved to. */
  media: { image: string; file: string } | null;
}

interface Launched { boot: BootDevice; media: string | null }

export const DEFAULT_STATE: MachineState = { boot: { device: 'disk', persistent: true }, media: null };

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A random locally administered MAC in qemu's 52:54:00 range. */
export function randomMac(): string {
  return `52:54:00:${[...randomBytes(3)].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
}
export const newUuid = (): string => randomUUID();

/** Writes a file whole: a temp file renamed over it. */
export async function writeJson(file: string, value: unknown, mode = 0o600): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await fsp.writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`, { mode });
  await fsp.rename(tmp, file);
}

async function readJson<T>(file: string): Promise<T | null> {
  try {
    return JSON.parse(await fsp.readFile(file, 'utf8')) as T;
  } catch {
    return null;
  }
}

/** The pid in `pidFile` when that process runs and its command line holds `mark`; else null. */
export function livePid(pidFile: string, mark: string): number | null {
  let pid: number;
  try {
    pid = Number(readFileSync(pidFile, 'utf8').trim());
  } catch {
    return null;
  }
  if (!Number.isInteger(pid) || pid <= 1) return null;
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // a zombie (exited, not yet reaped by its parent) runs no more
    if (/\) Z /.test(stat)) return null;
    return cmdline.split('\0').some((a) => a.includes(mark)) ? pid : null;
  } catch {
    return null;
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
export async function killPid(pid: number, graceMs = 5000): Promise<void> {
  const alive = () => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return !/\) Z /.test(stat);
    } catch {
      return false;
    }
  };
  try { process.kill(pid, 'SIGTERM'); } catch { return; }
  const until = Date.now() + graceMs;
  while (alive() && Date.now() < until) await sleep(50);
  if (!alive()) return;
  try { process.kill(pid, 'SIGKILL'); } catch { return; }
  const hard = Date.now() + 5000;
  while (alive() && Date.now() < hard) await sleep(50);
}

export class Machine {
  readonly dir: string;
  readonly config: MachineConfig;

  constructor(dir: string, config: MachineConfig) {
    this.dir = dir;
    this.config = config;
  }

  static async load(dir: string): Promise<Machine> {
    const config = await readJson<MachineConfig>(join(dir, 'machine.json'));
    if (!config) throw new Error(`${dir}: no virtual machine here (machine.json missing)`);
    return new Machine(dir, config);
  }

  file(name: string): string {
    return join(this.dir, name);
  }

  async state(): Promise<MachineState> {
    return { ...DEFAULT_STATE, ...(await readJson<MachineState>(this.file('state.json'))) };
  }

  private async setState(s: MachineState): Promise<void> {
    await writeJson(this.file('state.json'), s);
  }

  /** qemu's pid while it runs. */
  pid(): number | null {
    return livePid(this.file('qemu.pid'), this.file('qmp.sock'));
  }

  isOn(): boolean {
    return this.pid() !== null;
  }

  /** What the running qemu started with (null when it is off). */
  async launched(): Promise<Launched | null> {
    return this.isOn() ? readJson<Launched>(this.file('launched.json')) : null;
  }

  /** The next boot's device: the next start's, and a running machine's next reboot too (the guest's own included). */
  async setBoot(device: BootDevice, persistent: boolean): Promise<void> {
    if (!BOOT_DEVICES.includes(device)) throw new Error(`unknown boot device ${String(device)}`);
    await this.setState({ ...(await this.state()), boot: { device, persistent, override: true } });
    await this.applyBootOrder(device);
  }

  /** Back to the default boot order (no override). */
  async clearBoot(): Promise<void> {
    await this.setState({ ...(await this.state()), boot: DEFAULT_STATE.boot });
    await this.applyBootOrder(DEFAULT_STATE.boot.device);
  }

  /**
   * A running qemu's boot order for its next reset: the devices' bootindex
   * (settable at run time; qemu hands SeaBIOS the new order at the reset).
   * Two devices may not share an index, so all move out of the way first.
   */
  private async applyBootOrder(boot: BootDevice): Promise<void> {
    if (!this.isOn()) return;
    const order = bootOrder(boot);
    await this.qmp(async (q) => {
      for (const [i, d] of order.entries()) await q.execute('qom-set', { path: `/machine/peripheral/${d}`, property: 'bootindex', value: 100 + i });
      for (const [i, d] of order.entries()) await q.execute('qom-set', { path: `/machine/peripheral/${d}`, property: 'bootindex', value: i + 1 });
    });
    const l = await readJson<Launched>(this.file('launched.json'));
    if (l) await writeJson(this.file('launched.json'), { ...l, boot } satisfies Launched);
  }

  /** Starts qemu with the current boot device; a one-time boot device is used up. */
  async powerOn(): Promise<void> {
    if (this.isOn()) return;
    const st = await this.state();
    await ensureTap(this.config);
    for (const f of ['qemu.pid', 'qmp.sock', 'serial.sock']) await fsp.rm(this.file(f), { force: true });
    const media = st.media && existsSync(st.media.file) ? st.media.file : null;
    const log = await fsp.open(this.file('qemu.log'), 'a', 0o600);
    try {
      // in the machine's network namespace (its tap's) when it has one: `ip netns exec` becomes qemu
      const argv = this.args(st.boot.device, media);
      const child = this.config.netns
        ? spawn('ip', ['netns', 'exec', this.config.netns, QEMU, ...argv], { detached: true, stdio: ['ignore', log.fd, log.fd] })
        : spawn(QEMU, argv, { detached: true, stdio: ['ignore', log.fd, log.fd] });
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      child.once('error', () => { /* reported by the wait below */ });
      child.unref();
      const until = Date.now() + 20_000;
      for (;;) {
        if (this.isOn() && existsSync(this.file('qmp.sock'))) break;
        const gone = await Promise.race([exited, sleep(50).then(() => undefined)]);
        if (gone !== undefined || Date.now() > until) {
          if (child.pid) try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ }
          const text = await fsp.readFile(this.file('qemu.log'), 'utf8').catch(() => '');
          throw new Error(`qemu of ${this.config.name} did not start: ${text.trim().split('\n').slice(-3).join(' ').slice(0, 500)}`);
        }
      }
    } finally {
      await log.close();
    }
    await writeJson(this.file('launched.json'), { boot: st.boot.device, media } satisfies Launched);
    // a one-time device is used up: the guest's own reboots go by the default order
    if (!st.boot.persistent) await this.clearBoot();
  }

  /** Stops qemu at once (a power cut): QMP quit, then signals. */
  async powerOff(): Promise<void> {
    const pid = this.pid();
    if (pid === null) return;
    try {
      const q = await QmpClient.connect(this.file('qmp.sock'), { connectTimeoutMs: 2000, commandTimeoutMs: 2000 });
      try { await q.execute('quit'); } catch { /* it quits as it answers */ } finally { q.close(); }
    } catch { /* no QMP: signals below */ }
    await killPid(pid, 3000);
    await fsp.rm(this.file('launched.json'), { force: true });
  }

  /** A hard reset: the machine starts again with the boot device and media as they are now. */
  async reset(): Promise<void> {
    await this.powerOff();
    await this.powerOn();
  }

  /** Presses the ACPI power button (the guest decides); false when the machine is off. */
  async softOff(): Promise<boolean> {
    if (!this.isOn()) return false;
    await this.qmp((q) => q.execute('system_powerdown'));
    return true;
  }

  /** Puts the ISO at `file` (already in this machine's directory) in the CD drive, now if it runs, else at its start. */
  async insertMedia(image: string, file: string): Promise<void> {
    const st = await this.state();
    await this.setState({ ...st, media: { image, file } });
    if (this.isOn()) {
      await this.qmp((q) => q.execute('blockdev-change-medium', { id: 'cd', filename: file, format: 'raw', 'read-only-mode': 'read-only' }));
      const l = await readJson<Launched>(this.file('launched.json'));
      if (l) await writeJson(this.file('launched.json'), { ...l, media: file } satisfies Launched);
    }
  }

  async ejectMedia(): Promise<void> {
    const st = await this.state();
    if (this.isOn()) {
      await this.qmp((q) => q.execute('eject', { id: 'cd', force: true }));
      const l = await readJson<Launched>(this.file('launched.json'));
      if (l) await writeJson(this.file('launched.json'), { ...l, media: null } satisfies Launched);
    }
    if (st.media) await fsp.rm(st.media.file, { force: true });
    await this.setState({ ...st, media: null });
  }

  /** One QMP session for `fn`. */
  async qmp<T>(fn: (q: QmpClient) => Promise<T>): Promise<T> {
    const q = await QmpClient.connect(this.file('qmp.sock'), { connectTimeoutMs: 5000 });
    try {
      return await fn(q);
    } finally {
      q.close();
    }
  }

  /** qemu's command line for a boot from `boot` with `media` in the CD drive. */
  args(boot: BootDevice, media: string | null): string[] {
    const c = this.config;
    const f = (n: string) => this.file(n);
    const order = bootOrder(boot);
    const index = (d: 'disk' | 'cd' | 'nic') => order.indexOf(d) + 1;
    return [
      '-name', `${c.name.replace(/,/g, ',,')},debug-threads=on`, '-uuid', c.uuid,
      '-machine', 'pc', '-accel', c.accel === 'kvm' ? 'kvm' : 'tcg,tb-size=32', '-cpu', c.accel === 'kvm' ? 'host' : 'max',
      '-m', `${c.memoryMb}M`, '-smp', String(c.cpus),
      '-nodefaults', '-no-user-config', '-display', 'none', '-rtc', 'base=utc',
      '-pidfile', f('qemu.pid'), '-qmp', `unix:${f('qmp.sock')},server=on,wait=off`,
      // the BIOS screen (SeaBIOS, then iPXE) on the serial port: COM1 (0x3f8) as SeaBIOS's serial console
      '-fw_cfg', `name=etc/sercon-port,file=${SERCON_FILE}`,
      // the serial port: a unix socket the BMC's serial console connects to (none: the output is dropped), logged whole
      '-chardev', `socket,id=serial0,path=${f('serial.sock')},server=on,wait=off,logfile=${f('console.log')},logappend=on`, '-serial', 'chardev:serial0',
      '-boot', `strict=on,reboot-timeout=10000${boot === 'bios' ? ',menu=on' : ''}`,
      '-drive', `file=${f('disk.img')},format=raw,if=none,id=drive-disk,discard=unmap`, '-device', `virtio-blk-pci,drive=drive-disk,id=disk,bootindex=${index('disk')}`,
      '-drive', `if=none,id=drive-cd,media=cdrom,readonly=on${media ? `,file=${media.replace(/,/g, ',,')},format=raw` : ''}`, '-device', `ide-cd,drive=drive-cd,id=cd,bus=ide.1,bootindex=${index('cd')}`,
      '-netdev', `tap,id=net0,ifname=${c.tap},script=no,downscript=no,vhost=off`, '-device', `virtio-net-pci,netdev=net0,id=nic,mac=${c.mac},bootindex=${index('nic')}`,
      // the second NIC: no netdev (qemu warns `nic nic2 has no peer`), no option ROM, not bootable
      ...(c.spareMac ? ['-device', `virtio-net-pci,id=nic2,mac=${c.spareMac},romfile=`] : []),
      '-object', 'rng-random,id=rng0,filename=/dev/urandom', '-device', 'virtio-rng-pci,rng=rng0',
    ];
  }
}

/** The devices (their qdev ids) in boot order: the boot device first, then the disk, the CD, the NIC (a server's usual order). */
function bootOrder(boot: BootDevice): Array<'disk' | 'cd' | 'nic'> {
  const first = ({ pxe: 'nic', disk: 'disk', cdrom: 'cd', bios: 'disk' } as const)[boot];
  return [first, ...(['disk', 'cd', 'nic'] as const).filter((d) => d !== first)];
}

/** SeaBIOS reads `etc/sercon-port` as a little-endian integer: COM1's I/O port 0x3f8. */
const SERCON_FILE = '/run/stratus-vbmc-sercon.bin';

/** The tap of a machine on its bridge (made when missing: after a host reboot, or a removed tap), in the machine's network namespace. */
export async function ensureTap(c: MachineConfig): Promise<void> {
  if (!existsSync(SERCON_FILE)) {
    await fsp.writeFile(`${SERCON_FILE}.${process.pid}`, Buffer.from([0xf8, 0x03]));
    await fsp.rename(`${SERCON_FILE}.${process.pid}`, SERCON_FILE);
  }
  if (!(await linkExists(c.netns, c.tap))) await ip(c.netns, ['tuntap', 'add', 'dev', c.tap, 'mode', 'tap']);
  await ip(c.netns, ['link', 'set', c.tap, 'master', c.bridge, 'up']);
}

export async function removeTap(netns: string | undefined, tap: string): Promise<void> {
  if (await linkExists(netns, tap)) await ip(netns, ['link', 'del', tap]);
}

/** Whether the link exists (a bridge: `kind` 'bridge') in the namespace (the host's when none). */
export async function linkExists(netns: string | undefined, name: string, kind?: 'bridge'): Promise<boolean> {
  if (!netns) return existsSync(`/sys/class/net/${name}${kind === 'bridge' ? '/bridge' : ''}`);
  return ip(netns, ['-o', 'link', 'show', 'dev', name, ...(kind ? ['type', kind] : [])]).then((out) => out.trim() !== '', () => false);
}

function ip(netns: string | undefined, args: string[]): Promise<string> {
  const argv = netns ? ['-n', netns, ...args] : args;
  return new Promise((resolve, reject) => {
    const child = spawn('ip', argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d; });
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`ip ${argv.join(' ')}: ${err.trim() || `exit ${code}`}`))));
  });
}
