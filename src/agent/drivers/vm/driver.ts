// The VM driver: qemu-system-x86_64 (q35; KVM when the probe in accel.ts
// finds it works, TCG otherwise) driven over QMP (qmp.ts), for `server`
// resources of server kind `vm`.
//
// Per server, under STATE_DIR/vm/servers/<id>/ (made first, removed last):
//   state.json      what was applied: image, reboot/rebuild sequence numbers, taps made
//   root.qcow2      the root disk: a qcow2 overlay on the cached image (raw or
//                   qcow2), sized to the flavor's disk (the image's size when 0);
//                   a blank disk of the flavor's size when the image is an ISO,
//                   which then boots as a CD-ROM
//   ephemeral.qcow2, swap.qcow2   blank disks when the flavor has them
//                   (unformatted: the guest formats them)
//   config-2.iso    the config drive (configdrive.ts) when the user asked for one
//   rescue.qcow2    while rescued (spec.rescue): a throwaway overlay on the rescue
//                   image, the first disk (it boots), root.qcow2 the second;
//                   deleted on unrescue
//   qmp.sock        QMP; vnc.sock: VNC (for the noVNC console)
//   serial.sock     the serial port (the interactive console: serialConsole)
//   console.log     what the serial port printed (qemu opens it O_APPEND; the sweep caps it)
//   qemu.pid        qemu's pid; qemu.log: its stderr
// plus the cgroup /<cgroup parent>/<id> (cpu, memory, pids; v1 or v2) and the
// taps this driver had to make. Images are cached once per host under
// STATE_DIR/vm/images/ (images.ts).
//
// qemu runs detached (its own session), started paused (-S) so that the QMP
// answer proves its set-up is complete, then continued. It opens its disks,
// sockets and taps as root and then drops to the unprivileged `stratus-qemu`
// user (-runas); -sandbox denies obsolete calls, spawning and resource control.
// Tried here (qemu 7.2): `elevateprivileges=deny` kills qemu at the setuid of
// -runas, and `spawn=deny` kills -daemonize's fork, so neither is used (a
// detached spawn with -pidfile replaces -daemonize). qemu opens a writable
// disk again by its path when it hands the disk over (the end of a suspend's
// migration), as stratus-qemu: so the disks are stratus-qemu's (0600) and the
// directories above them root's with group stratus-qemu, mode 0710 (the
// agent's state directory too; the other drivers' directories inside it stay
// 0700). Suspend saves the memory through QMP `migrate` to a socket the agent
// listens on in /run/stratus-vm (qemu may not reach the state directory's
// files other than its disks) into memory.state; resume starts qemu with that
// file on `-incoming fd:3`.
//
// NICs: the network driver owns the port's tap (`tap` + 11 characters of the
// port id, spec.ports[].device): it makes it for vif type `tap` (a persistent
// tap, `ip tuntap add`) on the network's bridge. A VM that starts before its
// port converged finds no tap: this driver then makes the tap itself (owned by
// stratus-qemu, so a later hot-plug could open it), remembers it in state.json
// and deletes it on destroy; the network driver's converge finds the existing
// tap of the right kind and puts it on the bridge. qemu opens the tap by name
// with the port's MAC on a virtio-net NIC, in the port's order, each NIC on its
// own PCIe root port (hp0..; a device on pcie.0 cannot be unplugged) with ids
// from the tap name (nicIds), plus FREE_ROOT_PORTS free ones. Both drivers make
// taps owned by stratus-qemu (the owner is set only at creation): a running
// qemu, no longer root, opens a hot-plugged NIC's tap itself (Node cannot
// pass it an fd over QMP), through /dev/net/tun (tunAccess). A converge of a
// running VM compares the ports with the NICs in qemu's QOM tree (the truth,
// also after an agent crash) and hot-plugs or unplugs the difference (syncNics).
//
// A restarted agent re-adopts running VMs: the pidfile names the process, its
// command line's -qmp argument must be the server's exactly, and QMP answers there.
// A start that fails kills qemu by its process group too (the pidfile may not
// be written yet); a resume whose saved state does not load boots afresh (the
// state kept as memory.state.bad). Converge, destroy and a snapshot's copy
// hold a per-server lock (snapshots come outside the work queue).
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { createConnection, createServer } from 'node:net';
import type { Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as fsp from 'node:fs/promises';
import { availableParallelism, totalmem } from 'node:os';
import { join } from 'node:path';
import { tailLines, shQuote } from '../../../common/text.ts';
import { Reverter } from '../../../common/revert.ts';
import { KeyedLock } from '../../../common/keyed-lock.ts';
import { PowerState } from '../../../compute/schema.ts';
import { SERVER_KIND, ServerErrorCode, type DesiredServer, type ServerVolumeSpec } from '../../../compute/engine/protocol.ts';
import type { Hypervisor } from '../../../fleet/protocol.ts';
import { permanent, transient, userError } from '../../errors.ts';
import { run, runOk } from '../../exec.ts';
import type { Capacity, ComputeDriver, LiveMigrationDriver, Observed, ServerDriverOptions } from '../driver.ts';
import { capConsoleLog, followConsoleLog } from '../console-log.ts';
import { hypervisorOf, probeAccel, QEMU, type AccelProbe } from './accel.ts';
import { buildConfigDrive } from './configdrive.ts';
import { ImageFormatError, VmImageCache, type CachedImage } from './images.ts';
import { QmpClient, QmpClosedError, QmpTimeoutError } from './qmp.ts';
import { cancelOutgoing, listenIncoming, MigrationCancelledError, migrateOut, progressOf, stopIncoming } from './live-migration.ts';
import { AttachError, observedVolumes, VolumeAttacher, type HostBlockDevice, type VolumeRecord } from '../volume-attach.ts';
import { volumeDirOf } from '../volume/host.ts';
import type { ConsoleProvider } from '../../stream.ts';
import { VM_USER } from '../qemu-user.ts';

export { VM_USER };
export const VM_SANDBOX = 'on,obsolete=deny,spawn=deny,resourcecontrol=deny';
/** Where qemu (as stratus-qemu) reaches the agent's socket to save a suspended VM's memory. */
export const MIGRATE_DIR = '/run/stratus-vm';

export interface VmDriverOptions extends ServerDriverOptions {
  // defaults: cgroupParent `stratus-vm`; stopTimeoutMs 60 s (Nova's shutdown_timeout) for an ACPI power-down
  /** The accelerator, instead of probing (tests, or an operator who knows). */
  accel?: 'kvm' | 'tcg';
  /** The user qemu drops to (default stratus-qemu; made at start when missing). */
  user?: string;
  /** Run qemu in this network namespace (where the bridges and taps are; tests). */
  netns?: string | null;
  /** Unused cached images are kept this long (default 1 h). */
  keepUnusedImagesMs?: number;
  /** A live migration's copy rate from this host, memory and each disk, in MiB/s (Nova's live_migration_bandwidth); 0: unlimited. */
  migrationBandwidthMiB?: number;
}

interface LocalState {
  id: string;
  image_id: string | null;
  rebuild_seq: number;
  reboot_seq: number;
  launched: boolean;
  config_drive_hash: string;
  /** Taps this driver made (the network driver had not yet): deleted on destroy. */
  taps_made: string[];
  /** The volume attachments applied (volume-attach.ts), in attach order; absent: none. */
  volumes?: VolumeRecord[];
  /** The flavor (flavorKey) the VM's disk and its last launch were made for; a resize changes it. */
  flavor?: string;
  /** The rescue image the VM boots from (rescue.qcow2 over it), its root disk second; absent: not rescued. */
  rescue?: string;
  /** A live migration arriving here (its id): qemu waits for the state until `finish`; converges leave it alone. */
  incoming?: string;
  /** A live migration leaving from here (its id): converges leave qemu alone (it may be handed over, paused) until the server goes or `recover`. */
  outgoing?: string;
  /** Whether the guest ran when that migration began (what `recover` puts back). */
  outgoing_running?: boolean;
}

/** What a resize changes of a VM: its memory, vCPUs and root disk size. */
const flavorKey = (f: DesiredServer['flavor']) => `${f.ram}/${f.vcpus}/${f.disk}`;
/** Task states during which a resized VM's old disk is kept for a revert. */
const RESIZING = new Set(['resize_prep', 'resize_migrating', 'resize_migrated', 'resize_finish', 'resize_reverting']);

type Status = 'stopped' | 'running' | 'paused';

const UUIDISH = /^[0-9a-zA-Z][0-9a-zA-Z-]{0,63}$/;
const TAP = /^[a-zA-Z][a-zA-Z0-9_.-]{0,14}$/;
const MAC = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;
/** Free PCIe root ports at boot, for hot-plugged NICs and volumes. */
const FREE_ROOT_PORTS = 8;
/** How long a NIC's unplug may take (the guest acknowledges it; PCIe's attention button waits 5 s). */
const UNPLUG_TIMEOUT_MS = 30_000;

/**
 * Asks the guest to release a hot-plugged device (device_del) and waits for
 * its DEVICE_DELETED; whether it is gone. Idempotent across passes: an unplug
 * asked by an earlier pass is waited for again, and one the guest finished
 * before this pass listened (or before device_del) counts as gone.
 */
async function unplug(q: QmpClient, dev: string): Promise<boolean> {
  const gone = q.waitEvent('DEVICE_DELETED', UNPLUG_TIMEOUT_MS, (e) => e.data?.device === dev);
  gone.catch(() => undefined);
  try {
    await q.execute('device_del', { id: dev });
  } catch (err) {
    if (/not found/i.test((err as Error).message)) return true;
    if (!/in the process of unplug|already in progress/i.test((err as Error).message)) throw err;
  }
  try {
    await gone;
    return true;
  } catch (err) {
    if (!(err instanceof QmpTimeoutError)) throw err;
    return !(await q.execute('qom-list', { path: '/machine/peripheral' })).some((c) => c.name === dev);
  }
}
/**
 * blockdev-del of a disk's node once its device is gone. The device lets go
 * of the node when qemu finalizes it, which can come just after its
 * DEVICE_DELETED (or after the qom-list no longer shows it): "in use" is
 * asked again for a few seconds.
 */
async function releaseNode(q: QmpClient, node: string): Promise<void> {
  for (let waited = 0; ; waited += 100) {
    try {
      await q.execute('blockdev-del', { 'node-name': node });
      return;
    } catch (err) {
      if (!/is in use/i.test((err as Error).message) || waited >= 5000) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
/** How long a suspend's save of the memory may take before it is cancelled (a transient failure, retried). */
const SAVE_TIMEOUT_MS = 600_000;
/** qemu's ids of a port's NIC, from its tap name (stable across agent restarts). */
export const nicIds = (tap: string) => ({ device: `net-${tap}`, netdev: `hostnet-${tap}` });
/** qemu's ids of a volume attachment's disk (node names hold at most 31 characters). */
export const diskIds = (attachmentId: string) => {
  const h = createHash('sha256').update(attachmentId).digest('hex').slice(0, 20);
  return { device: `disk-${h}`, node: `vol-${h}` };
};
/** A virtio-blk serial: the volume id's first 20 characters, as Nova's (what the guest's /dev/disk/by-id shows). */
const serialOf = (v: ServerVolumeSpec) => v.volume_id.slice(0, 20).replace(/[^0-9A-Za-z-]/g, '');
const GiB = 2 ** 30;
const MiB = 2 ** 20;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A resume's saved memory state that qemu could not load (qemu ended saying so). */
class StateLoadError extends Error {}

async function exists(p: string): Promise<boolean> {
  return fsp.access(p).then(() => true, () => false);
}

/** Whether `pid` is a live (not zombie) process. */
async function liveProcess(pid: number): Promise<boolean> {
  const stat = await fsp.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  if (!stat) return false;
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}

export class VmDriver implements ComputeDriver, ConsoleProvider {
  readonly name: string = 'vm';
  readonly serves: Readonly<Record<string, readonly string[]>> = { [SERVER_KIND]: ['vm'] };
  protected readonly o: Required<Omit<VmDriverOptions, 'log' | 'fetchImage' | 'accel' | 'netns'>> & Pick<VmDriverOptions, 'log' | 'fetchImage' | 'accel' | 'netns'>;
  readonly root: string;
  private readonly serversDir: string;
  private readonly images: VmImageCache;
  private readonly qmps = new Map<string, Promise<QmpClient>>();
  /**
   * One change at a time per server: converge and destroy (the work queue's)
   * and a snapshot's pause-copy-continue (an agent request, outside that
   * queue) take it, so a converge never continues a VM a snapshot paused.
   */
  private readonly serverLock = new KeyedLock();
  /** The attached volumes' loop devices (shared with the container driver). */
  readonly attacher: VolumeAttacher;
  private probe: AccelProbe | null = null;
  private cgroupV2 = false;
  /** stratus-qemu's uid and gid. */
  private qemuUser = { uid: -1, gid: -1 };

  /**
   * `layout`: the directory under the state directory and the default cgroup
   * parent of this driver's servers (a driver that boots its VMs otherwise,
   * vm-container, has its own: each driver's servers are its own).
   */
  constructor(o: VmDriverOptions, layout: { dir: string; cgroupParent: string } = { dir: 'vm', cgroupParent: 'stratus-vm' }) {
    this.o = {
      ...o, cgroupParent: o.cgroupParent ?? layout.cgroupParent, consoleCap: o.consoleCap ?? 1 << 20, stopTimeoutMs: o.stopTimeoutMs ?? 60_000,
      user: o.user ?? VM_USER, keepUnusedImagesMs: o.keepUnusedImagesMs ?? 3600_000, migrationBandwidthMiB: o.migrationBandwidthMiB ?? 0,
    };
    this.root = join(o.stateDir, layout.dir);
    this.serversDir = join(this.root, 'servers');
    this.images = new VmImageCache(this.root);
    this.attacher = new VolumeAttacher(join(o.stateDir, 'attachments'), [volumeDirOf(o.stateDir)]);
  }

  // --- paths
  dir(id: string): string {
    if (!UUIDISH.test(id)) throw new Error(`bad server id ${id}`);
    return join(this.serversDir, id);
  }
  protected file(id: string, name: string): string {
    return join(this.dir(id), name);
  }
  /** The server's cgroup directories (v2: one; v1: one per controller used). */
  cgroupDirs(id: string): string[] {
    if (!UUIDISH.test(id)) throw new Error(`bad server id ${id}`);
    if (this.cgroupV2) return [join('/sys/fs/cgroup', this.o.cgroupParent, id)];
    return ['cpu', 'memory', 'pids'].map((c) => join('/sys/fs/cgroup', c, this.o.cgroupParent, id));
  }

  async start(): Promise<void> {
    const bins = [QEMU, 'qemu-img', 'prlimit', 'genisoimage', 'ip', 'useradd'];
    const r = await run('sh', ['-c', 'for b do command -v "$b" >/dev/null || echo "$b"; done', 'sh', ...bins]);
    const missing = r.stdout.split('\n').filter(Boolean);
    if (missing.length) throw new Error(`the VM driver needs ${missing.join(', ')} (Debian packages: qemu-system-x86 qemu-utils util-linux genisoimage iproute2 passwd)`);
    this.cgroupV2 = await exists('/sys/fs/cgroup/cgroup.controllers');
    await fsp.mkdir(this.serversDir, { recursive: true, mode: 0o700 });
    await this.images.init();
    // the unprivileged user qemu runs as (idempotent: made once per host)
    if ((await run('id', ['-u', this.o.user])).code !== 0) {
      const u = await run('useradd', ['--system', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', this.o.user]);
      if (u.code !== 0 && (await run('id', ['-u', this.o.user])).code !== 0) throw new Error(`cannot create the user ${this.o.user}: ${u.stderr.trim()}`);
    }
    const uid = Number((await runOk('id', ['-u', this.o.user])).stdout.trim());
    const gid = Number((await runOk('id', ['-g', this.o.user])).stdout.trim());
    this.qemuUser = { uid, gid };
    // qemu (as stratus-qemu) opens a writable disk again by its path when the disk is handed over (the
    // end of a suspend's migration): the path must be traversable by its group, nobody else's
    for (const d of [this.o.stateDir, this.root, this.serversDir]) await this.qemuDir(d);
    await this.tunAccess();
    this.probe = await probeAccel(join(this.root, 'tmp'), this.o.accel);
    this.o.log.info({ accel: this.probe.accel, reason: this.probe.reason }, 'VM accelerator');
  }

  async stop(): Promise<void> {
    for (const p of this.qmps.values()) void p.then((c) => c.close(), () => undefined);
    this.qmps.clear();
  }

  async hypervisor(): Promise<Hypervisor> {
    this.probe ??= await probeAccel(join(this.root, 'tmp'), this.o.accel);
    return hypervisorOf(this.probe);
  }

  async capacity(): Promise<Capacity> {
    const fs = await fsp.statfs(this.o.stateDir);
    return { vcpus: availableParallelism(), memory_mb: Math.floor(totalmem() / MiB), disk_gb: Math.floor((fs.blocks * fs.bsize) / GiB) };
  }

  async localServers(): Promise<string[]> {
    return (await fsp.readdir(this.serversDir).catch(() => [] as string[])).filter((n) => UUIDISH.test(n));
  }

  /**
   * A hot-plugged NIC's tap is opened by the running qemu, as stratus-qemu,
   * through /dev/net/tun: Debian's udev makes it 0666; where it is root's
   * only (some containers), its group becomes stratus-qemu's with rw.
   */
  private async tunAccess(): Promise<void> {
    const tun = '/dev/net/tun';
    const st = await fsp.stat(tun).catch(() => null);
    if (!st || (st.mode & 0o006) === 0o006 || (st.gid === this.qemuUser.gid && (st.mode & 0o060) === 0o060)) return;
    if (st.gid !== 0) {
      this.o.log.warn({ gid: st.gid, mode: (st.mode & 0o777).toString(8) }, `${tun} is not open to ${this.o.user}: NICs cannot be hot-plugged`);
      return;
    }
    const mode = (st.mode & 0o7777) | 0o060;
    this.o.log.warn({ gid: { from: st.gid, to: this.qemuUser.gid }, mode: { from: (st.mode & 0o7777).toString(8), to: mode.toString(8) } },
      `${tun} was root's only: its group becomes ${this.o.user}'s, with rw, so that a running VM can open a hot-plugged NIC's tap`);
    await fsp.chown(tun, st.uid, this.qemuUser.gid);
    await fsp.chmod(tun, mode);
  }

  /** A directory on the way to the disks: root's, traversable by stratus-qemu's group only (0710). */
  private async qemuDir(d: string): Promise<void> {
    const st = await fsp.stat(d);
    if (st.gid !== this.qemuUser.gid) await fsp.chown(d, st.uid, this.qemuUser.gid);
    await fsp.chmod(d, (st.mode & 0o700) | 0o010);
  }

  /** A writable disk: stratus-qemu's own (0600). */
  protected async qemuFile(f: string): Promise<void> {
    await fsp.chown(f, this.qemuUser.uid, this.qemuUser.gid);
    await fsp.chmod(f, 0o600);
  }

  // --- state
  private async readState(id: string): Promise<LocalState | null> {
    const text = await fsp.readFile(this.file(id, 'state.json'), 'utf8').catch(() => null);
    if (text === null) return null;
    try {
      return JSON.parse(text) as LocalState;
    } catch {
      return null;
    }
  }

  private async writeState(s: LocalState): Promise<void> {
    const f = this.file(s.id, 'state.json');
    await fsp.writeFile(`${f}.tmp`, JSON.stringify(s));
    await fsp.rename(`${f}.tmp`, f);
  }

  // --- the process
  /** qemu's pid when the server's qemu runs: the pidfile's process, whose command line names the server's QMP socket. */
  async pid(id: string): Promise<number | null> {
    const text = await fsp.readFile(this.file(id, 'qemu.pid'), 'utf8').catch(() => '');
    const pid = Number(text.trim());
    if (!Number.isInteger(pid) || pid <= 1) return null;
    if (!(await liveProcess(pid))) return null;
    const argv = (await fsp.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
    const i = argv.indexOf('-qmp');
    return i >= 0 && argv[i + 1] === this.qmpArg(id) ? pid : null;
  }

  /** qemu's `-qmp` argument: what names the server's qemu among the host's processes. */
  private qmpArg(id: string): string {
    return `unix:${this.file(id, 'qmp.sock')},server=on,wait=off`;
  }

  /** The server's QMP connection (one per VM: qemu serves one client at a time), made on first use. */
  private qmp(id: string): Promise<QmpClient> {
    let p = this.qmps.get(id);
    if (p) {
      const cur = p;
      p = cur.then((c) => (c.closed ? this.connectQmp(id) : c), () => this.connectQmp(id));
    } else {
      p = this.connectQmp(id);
    }
    this.qmps.set(id, p);
    p.catch(() => { if (this.qmps.get(id) === p) this.qmps.delete(id); });
    return p;
  }

  private async connectQmp(id: string): Promise<QmpClient> {
    const c = await QmpClient.connect(this.file(id, 'qmp.sock'), { connectTimeoutMs: 10_000, commandTimeoutMs: 30_000 });
    c.on('event', (e) => { if (e.event !== 'RTC_CHANGE') this.o.log.debug({ server: id, event: e.event, data: e.data }, 'qemu event'); });
    return c;
  }

  private dropQmp(id: string): void {
    const p = this.qmps.get(id);
    this.qmps.delete(id);
    void p?.then((c) => c.close(), () => undefined);
  }

  /** running / paused / stopped (no qemu). */
  private async status(id: string): Promise<Status> {
    if (!(await this.pid(id))) {
      this.dropQmp(id);
      return 'stopped';
    }
    let st;
    try {
      st = await (await this.qmp(id)).execute('query-status');
    } catch (err) {
      // qemu went away while it was asked
      if (!(await this.pid(id))) return 'stopped';
      throw transient(ServerErrorCode.hostFailure, `qemu of server ${id} does not answer QMP: ${(err as Error).message}`, err);
    }
    if (st.running) return 'running';
    if (st.status === 'shutdown') return 'stopped';
    return 'paused';
  }

  private async waitGone(id: string, pid: number, ms: number): Promise<boolean> {
    const until = Date.now() + ms;
    for (;;) {
      if (!(await liveProcess(pid))) return true;
      if (Date.now() >= until) return false;
      await sleep(50);
    }
  }

  /** Stops qemu: hard = SIGKILL at once; soft = ACPI power-down, then QMP quit, then SIGKILL after the timeout. */
  private async kill(id: string, hard: boolean): Promise<void> {
    const pid = await this.pid(id);
    if (!pid) {
      this.dropQmp(id);
      return;
    }
    if (!hard) {
      try {
        const q = await this.qmp(id);
        const st = await q.execute('query-status');
        // a paused guest cannot handle the ACPI button
        if (!st.running) await q.execute('cont');
        await q.execute('system_powerdown');
        if (await this.waitGone(id, pid, this.o.stopTimeoutMs)) {
          this.dropQmp(id);
          return;
        }
        this.o.log.info({ server: id }, 'guest ignored the ACPI power-down; stopping it');
        await q.execute('quit', undefined, { timeoutMs: 5000 }).catch(() => undefined);
        if (await this.waitGone(id, pid, 5000)) {
          this.dropQmp(id);
          return;
        }
      } catch (err) {
        if (!(err instanceof QmpClosedError)) this.o.log.warn({ server: id, err: (err as Error).message }, 'soft stop failed; killing qemu');
      }
    }
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    this.dropQmp(id);
    if (!(await this.waitGone(id, pid, 10_000))) throw new Error(`qemu ${pid} of server ${id} does not die`);
  }

  // --- cgroups
  private async ensureCgroup(id: string, d: DesiredServer): Promise<string[]> {
    const quota = Math.max(1, d.flavor.vcpus) * 100_000;
    // the guest's RAM, plus qemu's own (TCG's translation cache is capped at 64 MiB below) and its I/O buffers
    const memory = (d.flavor.ram + 320) * MiB;
    const procs: string[] = [];
    if (this.cgroupV2) {
      const parent = join('/sys/fs/cgroup', this.o.cgroupParent);
      await fsp.mkdir(parent, { recursive: true });
      await fsp.writeFile('/sys/fs/cgroup/cgroup.subtree_control', '+cpu +memory +pids').catch(() => undefined);
      await fsp.writeFile(join(parent, 'cgroup.subtree_control'), '+cpu +memory +pids').catch(() => undefined);
      const dir = join(parent, id);
      await fsp.mkdir(dir, { recursive: true });
      await fsp.writeFile(join(dir, 'cpu.max'), `${quota} 100000`);
      await fsp.writeFile(join(dir, 'memory.max'), String(memory));
      await fsp.writeFile(join(dir, 'pids.max'), '4096').catch(() => undefined);
      procs.push(join(dir, 'cgroup.procs'));
    } else {
      const [cpu, mem, pids] = this.cgroupDirs(id) as [string, string, string];
      for (const dir of [cpu, mem, pids]) await fsp.mkdir(dir, { recursive: true });
      await fsp.writeFile(join(cpu, 'cpu.cfs_period_us'), '100000');
      await fsp.writeFile(join(cpu, 'cpu.cfs_quota_us'), String(quota));
      await fsp.writeFile(join(mem, 'memory.limit_in_bytes'), String(memory));
      await fsp.writeFile(join(pids, 'pids.max'), '4096');
      procs.push(...[cpu, mem, pids].map((d) => join(d, 'cgroup.procs')));
    }
    return procs;
  }

  private async removeCgroup(id: string): Promise<void> {
    for (const dir of this.cgroupDirs(id)) {
      if (!(await exists(dir))) continue;
      // what is left inside (nothing, once qemu is gone)
      const left = (await fsp.readFile(join(dir, 'cgroup.procs'), 'utf8').catch(() => '')).split('\n').filter(Boolean).map(Number);
      for (const p of left) try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
      for (let i = 0; i < 40; i++) {
        if (await fsp.rmdir(dir).then(() => true, () => false)) break;
        if (!(await exists(dir))) break;
        await sleep(50);
      }
      if (await exists(dir)) throw new Error(`cgroup ${dir} cannot be removed`);
    }
  }

  // --- taps
  private async linkExists(name: string): Promise<boolean> {
    const args = this.o.netns ? ['-n', this.o.netns, 'link', 'show', 'dev', name] : ['link', 'show', 'dev', name];
    return (await run('ip', args)).code === 0;
  }

  private async ip(args: string[]): Promise<void> {
    await runOk('ip', this.o.netns ? ['-n', this.o.netns, ...args] : args);
  }

  /** Makes the taps of the server's ports that the network driver has not made yet. */
  private async ensureTaps(d: DesiredServer, st: LocalState): Promise<void> {
    for (const p of d.ports ?? []) {
      if (!TAP.test(p.device)) throw userError(ServerErrorCode.specInvalid, `bad tap name ${p.device}`);
      if (!MAC.test(p.mac_address)) throw userError(ServerErrorCode.specInvalid, `bad MAC address ${p.mac_address}`);
      if (await this.linkExists(p.device)) continue;
      // remembered before it exists: a crash in between leaves nothing unknown
      if (!st.taps_made.includes(p.device)) {
        st.taps_made.push(p.device);
        await this.writeState(st);
      }
      await this.ip(['tuntap', 'add', 'dev', p.device, 'mode', 'tap', 'user', this.o.user]).catch(async (err: Error) => {
        if (!(await this.linkExists(p.device))) throw err; // made by the network driver just now otherwise
      });
      await this.ip(['link', 'set', 'dev', p.device, 'mtu', String(p.mtu), 'up']).catch(() => undefined);
    }
  }

  /**
   * Hot-plugs the NICs of ports qemu lacks and unplugs those of ports that
   * went, as qemu reports them (its QOM tree; its netdevs from `info network`):
   * a new NIC goes on a free root port; an unplug waits for the guest
   * (DEVICE_DELETED; a transient error when it does not come, retried by the
   * next pass), then its netdev goes. The tap stays (the network driver's).
   */
  private async syncNics(d: DesiredServer): Promise<void> {
    const q = await this.qmp(d.id);
    // the devices with ids (-device/device_add), and the root port each NIC sits behind (its bus is /machine/peripheral/hpN/hpN)
    const ids = (await q.execute('qom-list', { path: '/machine/peripheral' })).filter((c) => c.type.startsWith('child<')).map((c) => c.name);
    if (ids.some((n) => /^net\d+$/.test(n))) {
      // started by an older driver (NICs on pcie.0, other ids): its NICs change at its next start
      this.o.log.warn({ server: d.id }, 'VM started with the old NIC layout: ports change at its next restart');
      return;
    }
    const nics = new Set(ids.filter((n) => n.startsWith('net-')));
    const free = await this.freeRootPorts(q, ids);
    const info = await q.execute('human-monitor-command', { 'command-line': 'info network' });
    const netdevs = new Set([...info.matchAll(/(?:^|\s)(hostnet-[A-Za-z0-9_.-]+):/gm)].map((m) => m[1]!));
    const want = [...(d.ports ?? [])].sort((x, y) => x.index - y.index);
    const wanted = new Set(want.map((p) => nicIds(p.device).device));
    for (const dev of nics) {
      if (wanted.has(dev)) continue;
      const netdev = `hostnet-${dev.slice('net-'.length)}`;
      if (!await unplug(q, dev)) throw transient(ServerErrorCode.hostFailure, `the guest did not release NIC ${dev} within ${UNPLUG_TIMEOUT_MS / 1000} s`);
      this.o.log.info({ server: d.id, nic: dev }, 'NIC unplugged');
      nics.delete(dev);
      if (netdevs.has(netdev)) await q.execute('netdev_del', { id: netdev });
      netdevs.delete(netdev);
    }
    for (const p of want) {
      const n = nicIds(p.device);
      if (nics.has(n.device)) continue;
      const bus = free.shift();
      if (!bus) throw transient(ServerErrorCode.hostFailure, `no free PCIe root port for the NIC of port ${p.id} (a restart of the server adds them)`);
      if (!netdevs.has(n.netdev)) await q.execute('netdev_add', { type: 'tap', id: n.netdev, ifname: p.device, script: 'no', downscript: 'no', vhost: false });
      netdevs.add(n.netdev);
      await q.execute('device_add', { driver: 'virtio-net-pci', id: n.device, netdev: n.netdev, mac: p.mac_address.toLowerCase(), bus });
      this.o.log.info({ server: d.id, nic: n.device, bus }, 'NIC hot-plugged');
    }
    // netdevs left by a pass that ended between device_del and netdev_del
    for (const nd of netdevs) {
      if (!wanted.has(`net-${nd.slice('hostnet-'.length)}`)) await q.execute('netdev_del', { id: nd });
    }
  }

  /**
   * The PCIe root ports (hpN) no hot-pluggable device sits behind: a NIC
   * (net-) or a volume's disk (disk-) is on the root port its parent bus
   * names (/machine/peripheral/hpN/hpN). `ids`: qom-list of /machine/peripheral.
   */
  private async freeRootPorts(q: QmpClient, ids: string[]): Promise<string[]> {
    const used = new Set<string>();
    for (const n of ids.filter((i) => i.startsWith('net-') || i.startsWith('disk-'))) {
      used.add(String(await q.execute('qom-get', { path: `/machine/peripheral/${n}`, property: 'parent_bus' })).split('/').pop()!);
    }
    return ids.filter((n) => /^hp\d+$/.test(n) && !used.has(n)).sort((x, y) => Number(x.slice(2)) - Number(y.slice(2)));
  }

  // --- volumes (ServerSpec.volumes): a virtio-blk disk per attachment on its own root port, over the attachment's loop device
  /** A volume's disk as qemu's block node: raw over the loop device (host_device), O_DIRECT, thread-pool I/O (TCG: no io_uring, no KVM ioeventfd). */
  private blockdev(v: ServerVolumeSpec, dev: HostBlockDevice): Record<string, unknown> {
    const cache = { direct: true, 'no-flush': false };
    return {
      driver: 'raw', 'node-name': diskIds(v.attachment_id).node, 'read-only': v.read_only, cache, discard: 'unmap',
      file: { driver: 'host_device', filename: dev.path, aio: 'threads', 'read-only': v.read_only, cache },
    };
  }

  /**
   * Makes the loop device of each attachment in the spec (given to
   * stratus-qemu); what cannot be attached is recorded `failed`. `release`
   * (no qemu holds anything): the devices of attachments that left the spec
   * go too; otherwise their records stay for syncVolumes to unplug.
   */
  private async volumeDevices(d: DesiredServer, st: LocalState, release: boolean): Promise<Map<string, HostBlockDevice>> {
    const out = new Map<string, HostBlockDevice>();
    const keep: VolumeRecord[] = [];
    for (const v of d.volumes ?? []) {
      try {
        if (!/^[0-9A-Za-z-]{1,64}$/.test(v.volume_id)) throw new AttachError(`bad volume id ${v.volume_id}`);
        const dev = await this.attacher.acquire(v, `vm:${d.id}`);
        await this.attacher.grant(dev, this.qemuUser.uid, this.qemuUser.gid);
        out.set(v.attachment_id, dev);
        keep.push({ spec: v, state: 'attached' });
      } catch (err) {
        // the attachment's failure, not the server's (a host failure too: logged, and tried again at the re-checks)
        if (!(err instanceof AttachError)) this.o.log.warn({ server: d.id, attachment: v.attachment_id, err: (err as Error).message }, 'volume device failed');
        keep.push({ spec: v, state: 'failed', message: err instanceof AttachError ? err.message : `The volume could not be attached on its host: ${(err as Error).message}` });
      }
    }
    for (const r of st.volumes ?? []) {
      if (keep.some((k) => k.spec.attachment_id === r.spec.attachment_id)) continue;
      if (release) await this.attacher.release(r.spec.attachment_id);
      else keep.push(r);
    }
    st.volumes = keep;
    await this.writeState(st);
    return out;
  }

  /**
   * A running VM's disks to the spec's volumes, as qemu's QOM tree shows
   * them (also after an agent restart): a volume added is hot-plugged
   * (blockdev-add, device_add on a free root port); one removed is unplugged
   * (device_del; the guest releases it: DEVICE_DELETED; then blockdev-del and
   * the loop device). A guest that does not release a disk in time leaves it
   * `failed` and listed (the unplug stays asked; the next pass finishes it:
   * the server reconciler converges again a server with a failed attachment
   * at its re-checks). The server itself stays as it is (Nova's: a failed
   * detach leaves the instance ACTIVE and the volume attached).
   */
  private async syncVolumes(d: DesiredServer, st: LocalState): Promise<void> {
    const q = await this.qmp(d.id);
    const ids = (await q.execute('qom-list', { path: '/machine/peripheral' })).filter((c) => c.type.startsWith('child<')).map((c) => c.name);
    const disks = new Set(ids.filter((n) => n.startsWith('disk-')));
    const nodes = new Set((await q.execute('query-named-block-nodes', { flat: true })).map((n) => n['node-name']));
    const want = d.volumes ?? [];
    const wanted = new Set(want.map((v) => diskIds(v.attachment_id).device));
    const devs = await this.volumeDevices(d, st, false);
    // the disks of attachments that left the spec: those recorded, and any other disk qemu holds
    const leaving = new Map<string, VolumeRecord | null>();
    for (const r of st.volumes ?? []) if (!wanted.has(diskIds(r.spec.attachment_id).device)) leaving.set(diskIds(r.spec.attachment_id).device, r);
    for (const dev of disks) if (!wanted.has(dev) && !leaving.has(dev)) leaving.set(dev, null);
    for (const [dev, r] of leaving) {
      const node = `vol-${dev.slice('disk-'.length)}`;
      if (disks.has(dev)) {
        if (!await unplug(q, dev)) {
          const message = `The guest did not release the volume within ${UNPLUG_TIMEOUT_MS / 1000} s (is it mounted or in use in the server?); the detach is retried.`;
          if (r) {
            st.volumes = [...(st.volumes ?? []).filter((x) => x.spec.attachment_id !== r.spec.attachment_id), { spec: r.spec, state: 'failed', message }];
            await this.writeState(st);
          }
          this.o.log.warn({ server: d.id, disk: dev }, 'the guest did not release a volume');
          continue;
        }
        this.o.log.info({ server: d.id, disk: dev }, 'volume unplugged');
      }
      try {
        if (nodes.has(node)) await releaseNode(q, node);
        if (r) await this.attacher.release(r.spec.attachment_id);
      } catch (err) {
        // the guest let go; the host did not: the attachment's failure, tried again at the re-checks
        this.o.log.warn({ server: d.id, disk: dev, err: (err as Error).message }, 'volume release failed');
        if (r) {
          st.volumes = [...(st.volumes ?? []).filter((x) => x.spec.attachment_id !== r.spec.attachment_id), { spec: r.spec, state: 'failed', message: `The volume was unplugged but its host could not release it: ${(err as Error).message}` }];
          await this.writeState(st);
        }
        continue;
      }
      if (r) {
        st.volumes = (st.volumes ?? []).filter((x) => x.spec.attachment_id !== r.spec.attachment_id);
        await this.writeState(st);
      }
    }
    let free = await this.freeRootPorts(q, (await q.execute('qom-list', { path: '/machine/peripheral' })).filter((c) => c.type.startsWith('child<')).map((c) => c.name));
    for (const v of want) {
      const n = diskIds(v.attachment_id);
      const dev = devs.get(v.attachment_id);
      if (!dev || disks.has(n.device)) continue;
      const fail = async (message: string) => {
        st.volumes = (st.volumes ?? []).map((x) => (x.spec.attachment_id === v.attachment_id ? { spec: v, state: 'failed' as const, message } : x));
        await this.writeState(st);
      };
      const bus = free[0];
      if (!bus) {
        await fail('No free PCIe slot is left in the server for another volume (a restart of the server adds them).');
        continue;
      }
      try {
        if (!nodes.has(n.node)) await q.execute('blockdev-add', this.blockdev(v, dev));
        nodes.add(n.node);
        await q.execute('device_add', { driver: 'virtio-blk-pci', id: n.device, drive: n.node, serial: serialOf(v), bus });
      } catch (err) {
        await fail(`The volume could not be plugged into the server: ${(err as Error).message}`);
        continue;
      }
      free = free.slice(1);
      this.o.log.info({ server: d.id, disk: n.device, bus }, 'volume hot-plugged');
    }
  }

  // --- disks
  /** The image a server boots, cached on the host (null: it boots from a volume). */
  protected async prepareImage(d: DesiredServer): Promise<CachedImage | null> {
    const img = d.image;
    return img ? this.images.ensure(img, (dest) => this.o.fetchImage(img.id, dest)).catch((err: Error) => {
      throw err instanceof ImageFormatError ? permanent(ServerErrorCode.imageInvalid, `image ${img.id}: ${err.message}`, err) : err;
    }) : null;
  }

  protected async ensureDisks(d: DesiredServer, image: CachedImage | null): Promise<void> {
    const id = d.id;
    const root = this.file(id, 'root.qcow2');
    // booted from a volume: no root disk here
    if (image && !(await exists(root))) {
      const want = d.flavor.disk * GiB;
      if (image.format === 'iso') {
        // the CD-ROM boots; the root disk is where it installs to
        await runOk('qemu-img', ['create', '-q', '-f', 'qcow2', `${root}.tmp`, String(want || GiB)]);
      } else {
        if (want && want < image.virtualSize) {
          throw userError(ServerErrorCode.specInvalid, `Flavor's disk is too small for requested image. Flavor disk is ${want} bytes, image is ${image.virtualSize} bytes.`);
        }
        await runOk('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', image.path, '-F', image.format, `${root}.tmp`, String(want || image.virtualSize)]);
      }
      await this.qemuFile(`${root}.tmp`);
      await fsp.rename(`${root}.tmp`, root);
    }
    for (const [name, size] of [['ephemeral.qcow2', d.flavor.ephemeral * GiB], ['swap.qcow2', d.flavor.swap * MiB]] as const) {
      const f = this.file(id, name);
      if (size > 0 && !(await exists(f))) {
        await runOk('qemu-img', ['create', '-q', '-f', 'qcow2', `${f}.tmp`, String(size)]);
        await this.qemuFile(`${f}.tmp`);
        await fsp.rename(`${f}.tmp`, f);
      }
    }
  }

  /** How the VM boots: its root disk (or the rescue disk first, or an ISO as a CD-ROM). */
  protected bootArgs(d: DesiredServer, image: CachedImage | null, rescued: boolean): string[] {
    const f = (n: string) => this.file(d.id, n);
    const a: string[] = [];
    if (rescued) {
      // Nova's libvirt rescue: the rescue disk first (vda, it boots), the server's root disk second (vdb)
      a.push('-drive', `file=${f('rescue.qcow2')},format=qcow2,if=none,id=drive-rescue,discard=unmap`, '-device', 'virtio-blk-pci,drive=drive-rescue,id=rescue,bootindex=0');
      a.push('-drive', `file=${f('root.qcow2')},format=qcow2,if=none,id=drive-root,discard=unmap`, '-device', 'virtio-blk-pci,drive=drive-root,id=root');
    } else {
      if (image?.format === 'iso') {
        a.push('-drive', `file=${image.path},format=raw,if=none,id=drive-cd0,media=cdrom,readonly=on`, '-device', 'ide-cd,drive=drive-cd0,bus=ide.0,bootindex=0');
      }
      if (image) a.push('-drive', `file=${f('root.qcow2')},format=qcow2,if=none,id=drive-root,discard=unmap`, '-device', `virtio-blk-pci,drive=drive-root,id=root,bootindex=${image.format === 'iso' ? 1 : 0}`);
    }
    return a;
  }

  // --- launch
  private async args(d: DesiredServer, image: CachedImage | null, vols: Map<string, HostBlockDevice> = new Map(), rescued = false): Promise<string[]> {
    const id = d.id;
    const f = (n: string) => this.file(id, n);
    const accel = this.probe?.accel ?? 'tcg';
    const a: string[] = [
      // cut before the escape: a cut after it could split a `,,`
      '-name', `guest=${d.name.slice(0, 60).replace(/,/g, ',,') || id},debug-threads=on`,
      '-machine', 'q35', '-accel', accel === 'kvm' ? 'kvm' : 'tcg,tb-size=64', '-cpu', accel === 'kvm' ? 'host' : 'max',
      '-m', `${Math.max(16, d.flavor.ram)}M`, '-smp', String(Math.max(1, d.flavor.vcpus)),
      '-nodefaults', '-no-user-config', '-rtc', 'base=utc', '-msg', 'timestamp=on',
      '-sandbox', VM_SANDBOX, '-runas', this.o.user,
      '-S', '-pidfile', f('qemu.pid'),
      '-qmp', this.qmpArg(id),
      // the serial port: a socket for the interactive console, its output also appended to the console log
      '-chardev', `socket,id=serial0,path=${f('serial.sock')},server=on,wait=off,logfile=${f('console.log')},logappend=on`, '-serial', 'chardev:serial0',
      '-device', 'VGA', '-vnc', `unix:${f('vnc.sock')}`,
      // entropy from the host: without it a guest kernel under TCG waits tens of seconds for its
      // random pool before an SSH server can make its keys
      '-object', 'rng-random,id=rng0,filename=/dev/urandom', '-device', 'virtio-rng-pci,rng=rng0',
    ];
    if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)) a.push('-uuid', id);
    // a PCIe root port per NIC (a device on pcie.0 cannot be unplugged) plus FREE_ROOT_PORTS for hot-plugs
    const ports = [...(d.ports ?? [])].sort((x, y) => x.index - y.index);
    const volumes = (d.volumes ?? []).filter((v) => vols.has(v.attachment_id));
    for (let i = 0; i < ports.length + volumes.length + FREE_ROOT_PORTS; i++) a.push('-device', `pcie-root-port,id=hp${i},chassis=${i + 1}`);
    a.push(...this.bootArgs(d, image, rescued));
    if (d.flavor.ephemeral > 0) a.push('-drive', `file=${f('ephemeral.qcow2')},format=qcow2,if=none,id=drive-eph0,discard=unmap`, '-device', 'virtio-blk-pci,drive=drive-eph0,id=eph0,serial=ephemeral0');
    if (d.flavor.swap > 0) a.push('-drive', `file=${f('swap.qcow2')},format=qcow2,if=none,id=drive-swap,discard=unmap`, '-device', 'virtio-blk-pci,drive=drive-swap,id=swap,serial=swap');
    if (d.config_drive.requested) a.push('-drive', `file=${f('config-2.iso')},format=raw,if=none,id=drive-config,readonly=on`, '-device', 'virtio-blk-pci,drive=drive-config,id=config,serial=config-2');
    // the NICs in the port's order, the same as a hot-plug makes them (nicIds)
    ports.forEach((p, i) => {
      const n = nicIds(p.device);
      a.push('-netdev', `tap,id=${n.netdev},ifname=${p.device},script=no,downscript=no,vhost=off`, '-device', `virtio-net-pci,netdev=${n.netdev},id=${n.device},mac=${p.mac_address.toLowerCase()},bus=hp${i}`);
    });
    // the volumes in attach order, after the NICs, each as a hot-plug makes it (diskIds)
    volumes.forEach((v, i) => {
      const n = diskIds(v.attachment_id);
      // the boot volume of a server without an image boots (boot_index 0)
      const boot = !image && v.boot_index === 0 ? ',bootindex=0' : '';
      a.push('-blockdev', JSON.stringify(this.blockdev(v, vols.get(v.attachment_id)!)), '-device', `virtio-blk-pci,drive=${n.node},id=${n.device},serial=${serialOf(v)},bus=hp${ports.length + i}${boot}`);
    });
    return a;
  }

  /**
   * Starts qemu (paused), and continues it once QMP answers; `incoming`: a
   * saved memory state it loads first (resume); `defer`: a live migration's
   * destination, left waiting for `migrate-incoming` (never continued here).
   */
  private async launch(d: DesiredServer, image: CachedImage | null, st: LocalState, incoming?: string, o: { defer?: boolean } = {}): Promise<void> {
    const id = d.id;
    const f = (n: string) => this.file(id, n);
    await this.ensureTaps(d, st);
    const procs = await this.ensureCgroup(id, d);
    for (const n of ['qmp.sock', 'vnc.sock', 'serial.sock', 'qemu.pid']) await fsp.rm(f(n), { force: true });
    const vols = await this.volumeDevices(d, st, true);
    const boot = !image ? (d.volumes ?? []).find((v) => v.boot_index === 0) : undefined;
    if (boot && !vols.has(boot.attachment_id)) {
      const why = st.volumes?.find((r) => r.spec.attachment_id === boot.attachment_id)?.message ?? 'its device could not be made';
      throw transient(ServerErrorCode.hostFailure, `The volume to boot from (${boot.volume_id}) cannot be attached: ${why}`);
    }
    const argv = await this.args(d, image, vols, st.rescue !== undefined);
    // the saved state comes in on fd 3 (qemu reads it as root before it drops privileges... and after: the fd is open)
    if (incoming) argv.push('-incoming', 'fd:3');
    else if (o.defer) argv.push('-incoming', 'defer');
    const cmd = [...(this.o.netns ? ['ip', 'netns', 'exec', this.o.netns] : []), QEMU, ...argv];
    // the shell joins the cgroup, then becomes qemu: qemu never runs outside it
    const script = `${procs.map((p) => `echo $$ > ${shQuote(p)}`).join(' && ')} && exec "$@"`;
    const log = await fsp.open(f('qemu.log'), 'w', 0o600);
    const state = incoming ? await fsp.open(incoming, 'r') : null;
    let exited: { code: number | null; signal: string | null } | null = null;
    let child;
    try {
      child = spawn('sh', ['-c', script, 'sh', ...cmd], { detached: true, stdio: ['ignore', log.fd, log.fd, ...(state ? [state.fd] : [])], cwd: this.dir(id) });
      child.once('exit', (code, signal) => { exited = { code, signal }; });
      child.once('error', () => { exited = { code: -1, signal: null }; });
      child.unref();
    } finally {
      await log.close();
      await state?.close();
    }
    // the child (sh, then qemu: exec) leads its own process group (detached)
    const group = child.pid;
    const qemuLog = async () => (await fsp.readFile(f('qemu.log'), 'utf8').catch(() => '')).trim();
    /** Ends a qemu that failed to start: by its pidfile, and by its process group (the pidfile may not be written yet). */
    const abort = async () => {
      await this.kill(id, true).catch(() => undefined);
      if (group) {
        try { process.kill(-group, 'SIGKILL'); } catch { /* gone */ }
        await this.waitGone(id, group, 10_000);
      }
    };
    /** qemu ended saying the saved state does not load (qemu's own message since 2.x). */
    const loadFailed = async () => incoming !== undefined && /load of migration failed/.test(await qemuLog());
    // set-up is done when QMP answers (qemu was started paused)
    const until = Date.now() + 60_000;
    let q: QmpClient | null = null;
    while (!q) {
      if (exited) break;
      if (await exists(f('qmp.sock'))) q = await this.qmp(id).catch(() => null);
      if (!q) {
        if (Date.now() > until) break;
        await sleep(50);
      }
    }
    if (!q) {
      const why = (await qemuLog()).split('\n').slice(-3).join(' ').slice(0, 600);
      await abort();
      if (await loadFailed()) throw new StateLoadError(why);
      throw transient(ServerErrorCode.hostFailure, `qemu did not start: ${why || (exited ? `exit ${JSON.stringify(exited)}` : 'no QMP answer within 60 s')}`);
    }
    if (incoming) {
      // the state loads, then the machine stays paused (-S); a failed load ends qemu
      for (;;) {
        const stat = await q.execute('query-status').catch(() => null);
        if (!stat) {
          await abort();
          const why = (await qemuLog()).slice(-400);
          if (await loadFailed()) throw new StateLoadError(why);
          throw transient(ServerErrorCode.hostFailure, `qemu could not load the saved state: ${why}`);
        }
        if (stat.status !== 'inmigrate') break;
        await sleep(50);
      }
    }
    if (o.defer) return;
    await q.execute('cont');
  }

  /**
   * Suspend: the guest's memory and device state saved to `memory.state`
   * (QMP migrate to a unix socket the agent listens on and copies to the
   * file), then qemu ends. qemu, as stratus-qemu, reaches the socket in
   * MIGRATE_DIR (traversable, the socket its own); the state directory stays
   * closed to it. Resume starts qemu with the file on -incoming.
   */
  private async saveState(id: string): Promise<void> {
    const pid = await this.pid(id);
    if (!pid) return;
    const q = await this.qmp(id);
    const file = this.file(id, 'memory.state');
    await fsp.mkdir(MIGRATE_DIR, { recursive: true, mode: 0o711 });
    await fsp.chmod(MIGRATE_DIR, 0o711);
    const sock = join(MIGRATE_DIR, `${id}.sock`);
    await fsp.rm(sock, { force: true });
    const out = await fsp.open(`${file}.tmp`, 'w', 0o600);
    let received: Promise<void> | null = null;
    const server = createServer((conn) => {
      received ??= pipeline(conn, out.createWriteStream());
    });
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(sock, () => resolve());
      });
      const uid = Number((await runOk('id', ['-u', this.o.user])).stdout.trim());
      await fsp.chown(sock, uid, 0);
      await fsp.chmod(sock, 0o600);
      // the memory holds still while it is copied (one pass), at full speed
      await q.execute('stop');
      await q.execute('migrate-set-parameters', { 'max-bandwidth': 8 * GiB }).catch(() => undefined);
      await q.execute('migrate', { uri: `unix:${sock}` });
      const until = Date.now() + SAVE_TIMEOUT_MS;
      for (;;) {
        const m = await q.execute('query-migrate');
        if (m.status === 'completed') break;
        if (m.status === 'failed' || m.status === 'cancelled') throw new Error(`saving the memory state failed: ${m['error-desc'] ?? m.status}`);
        if (Date.now() > until) {
          await q.execute('migrate_cancel').catch(() => undefined);
          throw transient(ServerErrorCode.hostFailure, `saving the memory state took more than ${SAVE_TIMEOUT_MS / 1000} s (${m.status}): cancelled`);
        }
        await sleep(50);
      }
      await (received ?? Promise.reject(new Error('qemu never connected to save its state')));
      await fsp.rename(`${file}.tmp`, file);
    } catch (err) {
      // the VM goes on as it was: paused, its memory intact
      await fsp.rm(`${file}.tmp`, { force: true });
      throw err;
    } finally {
      server.close();
      await out.close().catch(() => undefined);
      await fsp.rm(sock, { force: true });
    }
    await this.kill(id, true);
  }

  // --- live migration (live-migration.ts has the QMP steps; the control plane calls these through the request channel)
  /** A live migration leaving from here, while its run lasts: aborted (by the API's DELETE) or the guest paused to converge. */
  private readonly outgoing = new Map<string, { aborted: boolean; paused: boolean }>();

  readonly liveMigration: LiveMigrationDriver = {
    /**
     * Destination: the server's directory, disks (a fresh overlay on the same
     * image, fetched as for a boot), config drive and taps as for a boot, and
     * qemu with the same machine and devices waiting for the incoming state;
     * its local disks exported over NBD for a block migration. A server
     * running here is refused; a half-prepared one, or one handed over from
     * here and not yet removed, is made afresh.
     */
    prepare: (d, o) => this.serverLock.run(d.id, async () => {
      const id = d.id;
      const old = await this.readState(id);
      // (a copy this host handed over before, not yet removed, is made afresh too)
      if (old?.launched && old.incoming === undefined && old.outgoing === undefined) throw permanent(ServerErrorCode.specInvalid, `server ${id} already runs on this host`);
      if (old) await this.destroyNow(id);
      await fsp.mkdir(this.dir(id), { recursive: true, mode: 0o700 });
      await this.qemuDir(this.dir(id));
      const st: LocalState = {
        id, image_id: d.image?.id ?? null, rebuild_seq: d.rebuild_seq, reboot_seq: d.reboot_seq, launched: false, config_drive_hash: '', taps_made: [],
        flavor: flavorKey(d.flavor), incoming: o.migration,
      };
      await this.writeState(st);
      const revert = new Reverter();
      revert.add(() => this.destroyNow(id));
      try {
        if (d.rescue || (d.volumes ?? []).length) throw permanent(ServerErrorCode.specInvalid, 'a rescued server or one with volumes is not live-migrated');
        const image = await this.prepareImage(d);
        await this.ensureDisks(d, image);
        if (d.config_drive.requested) {
          await buildConfigDrive(d, this.file(id, 'config-2.iso'), join(this.dir(id), 'config-drive.tmp'));
          st.config_drive_hash = createHash('sha256').update(JSON.stringify(d.config_drive)).digest('hex');
          await this.writeState(st);
        }
        await this.launch(d, image, st, undefined, { defer: true });
        const target = await listenIncoming(await this.qmp(id), o.listen, image !== null);
        revert.success();
        this.o.log.info({ server: id, migration: o.migration, target }, 'live migration: waiting for the incoming state');
        return target;
      } catch (err) {
        await revert.fail();
        throw err;
      }
    }),

    /** Source: the disks and then the memory copied to the destination; the guest ends paused here, handed over. */
    run: async (id, o) => {
      await this.serverLock.run(id, async () => {
        const st = await this.readState(id);
        if (!st || !(await this.pid(id))) throw new Error(`server ${id} has no running VM on this host`);
        st.outgoing = o.migration;
        st.outgoing_running = (await (await this.qmp(id)).execute('query-status')).running;
        await this.writeState(st);
      });
      const ctl = { aborted: false, paused: false };
      this.outgoing.set(id, ctl);
      const q = await this.qmp(id);
      try {
        const done = await migrateOut(q, o.target, () => ctl.aborted, this.o.migrationBandwidthMiB * MiB);
        this.o.log.info({ server: id, migration: o.migration, ...done }, 'live migration: handed over');
        return done;
      } catch (err) {
        this.o.log.warn({ server: id, migration: o.migration, err: (err as Error).message, aborted: ctl.aborted }, 'live migration failed: the server goes on here');
        await cancelOutgoing(q).catch((e: Error) => this.o.log.warn({ server: id, err: e.message }, 'stopping a live migration\'s copies failed'));
        await this.liveMigration.recover(id, o.migration);
        throw err instanceof MigrationCancelledError || ctl.aborted ? new MigrationCancelledError('the live migration was cancelled') : err;
      } finally {
        this.outgoing.delete(id);
      }
    },

    progress: async (id) => progressOf(await this.qmp(id)),

    /** As Nova's libvirt driver without post-copy: the guest is paused, so that the copy converges (it runs on at the destination). */
    forceComplete: async (id) => {
      const ctl = this.outgoing.get(id);
      if (!ctl) throw new Error(`no live migration of server ${id} runs on this host`);
      await (await this.qmp(id)).execute('stop');
      ctl.paused = true;
    },

    abort: async (id) => {
      const ctl = this.outgoing.get(id);
      if (!ctl) throw new Error(`no live migration of server ${id} runs on this host`);
      ctl.aborted = true;
      await cancelOutgoing(await this.qmp(id));
    },

    /** Destination: the state arrived; the exports go and the guest runs here. */
    finish: (id, migration) => this.serverLock.run(id, async () => {
      const st = await this.readState(id);
      if (!st || st.incoming !== migration || !(await this.pid(id))) throw new Error(`server ${id} is not arriving on this host by migration ${migration}`);
      const q = await this.qmp(id);
      for (const until = Date.now() + 60_000; ;) {
        const s = await q.execute('query-status');
        if (s.status !== 'inmigrate') {
          if (s.status !== 'paused' && !s.running) throw new Error(`the incoming state did not load (${s.status})`);
          break;
        }
        if (Date.now() > until) throw new Error('the incoming state did not arrive within 60 s');
        await sleep(100);
      }
      await stopIncoming(q);
      await q.execute('cont');
      st.launched = true;
      delete st.incoming;
      await this.writeState(st);
    }),

    /** Source: the server runs here again (a migration failed or was cancelled, before or after the hand-over). */
    recover: (id, migration) => this.serverLock.run(id, async () => {
      const st = await this.readState(id);
      if (!st || st.outgoing !== migration) return;
      if (st.outgoing_running && (await this.pid(id))) {
        const q = await this.qmp(id);
        if (!(await q.execute('query-status')).running) await q.execute('cont');
      }
      delete st.outgoing;
      delete st.outgoing_running;
      await this.writeState(st);
    }),
  };

  // --- the converge step
  converge(d: DesiredServer): Promise<Observed> {
    return this.serverLock.run(d.id, () => this.convergeNow(d));
  }

  private async convergeNow(d: DesiredServer): Promise<Observed> {
    if (d.deleted) throw new Error('converge called for a deleted server');
    // booting from a volume: no image and no root disk of its own; the volume with boot_index 0 boots
    const bootVolume = (d.volumes ?? []).find((v) => v.boot_index === 0) ?? null;
    if (!d.image && !bootVolume) throw permanent(ServerErrorCode.imageMissing, 'a VM needs an image or a volume to boot from');
    const id = d.id;
    const dir = this.dir(id);
    // unix socket paths hold at most 107 bytes
    if (Buffer.byteLength(this.file(id, 'serial.sock')) > 107) throw new Error(`the state directory ${this.o.stateDir} is too deep for the VMs' unix sockets`);
    let st = await this.readState(id);
    // a live migration's qemu (arriving, or leaving and perhaps handed over already) is its requests' alone
    if (d.incoming || st?.outgoing) return (st ? await this.observe(id, d.power) : null) ?? { power_state: PowerState.NOSTATE, state: 'stopped' };
    const revert = new Reverter();
    if (!st) {
      await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
      await this.qemuDir(dir);
      st = { id, image_id: d.image?.id ?? null, rebuild_seq: d.rebuild_seq, reboot_seq: d.reboot_seq, launched: false, config_drive_hash: '', taps_made: [] };
      await this.writeState(st);
    }
    if (!st.launched) revert.add(() => this.destroyNow(id));
    try {
      if (st.rebuild_seq !== d.rebuild_seq || st.image_id !== (d.image?.id ?? null)) {
        // rebuild: a fresh root disk from the (new) image, same server
        await this.kill(id, true);
        await fsp.rm(this.file(id, 'root.qcow2'), { force: true });
        await fsp.rm(this.file(id, 'memory.state'), { force: true });
        await fsp.rm(this.file(id, 'memory.state.bad'), { force: true });
        st = { ...st, image_id: d.image?.id ?? null, rebuild_seq: d.rebuild_seq, reboot_seq: d.reboot_seq, config_drive_hash: '' };
        await this.writeState(st);
      }
      const image = await this.prepareImage(d);
      await this.ensureDisks(d, image);
      const iso = this.file(id, 'config-2.iso');
      if (d.config_drive.requested) {
        const h = createHash('sha256').update(JSON.stringify(d.config_drive)).digest('hex');
        if (h !== st.config_drive_hash || !(await exists(iso))) {
          await buildConfigDrive(d, iso, join(dir, 'config-drive.tmp'));
          st.config_drive_hash = h;
        }
      } else if (await exists(iso)) {
        await fsp.rm(iso, { force: true });
        st.config_drive_hash = '';
      }
      let s = await this.status(id);
      s = await this.resizeStep(d, st, s);
      s = await this.rescueStep(d, st, s);
      if (d.reboot_seq !== st.reboot_seq) {
        if (s !== 'stopped') {
          if (d.reboot_type === 'HARD') {
            // a reset of the machine, in the same process
            const q = await this.qmp(id);
            await q.execute('system_reset');
            if (s === 'paused' && d.power === 'running') await q.execute('cont');
            s = 'running';
          } else {
            await this.kill(id, false);
            s = 'stopped';
          }
        }
        st.reboot_seq = d.reboot_seq;
        // recorded before the restart: a crash after it must not reboot the server a second time
        await this.writeState(st);
      }
      const saved = this.file(id, 'memory.state');
      if (d.power === 'suspended') {
        if (s !== 'stopped') await this.saveState(id);
      } else if (d.power === 'stopped') {
        if (s !== 'stopped') await this.kill(id, false);
        // a suspended server that is stopped boots afresh next time (Nova discards the saved state)
        await fsp.rm(saved, { force: true });
      } else {
        if (s === 'stopped') {
          const resume = await exists(saved);
          try {
            await this.launch(d, image, st, resume ? saved : undefined);
          } catch (err) {
            if (!(err instanceof StateLoadError)) throw err;
            // retrying would fail the same way: the server boots afresh (the state kept aside for a look)
            await fsp.rename(saved, `${saved}.bad`);
            this.o.log.warn({ server: id, err: err.message }, 'the saved memory state does not load: kept as memory.state.bad, booting afresh');
            await this.launch(d, image, st);
          }
          if (resume) await fsp.rm(saved, { force: true });
          s = 'running';
        }
        if (s === 'paused' && d.power === 'running') await (await this.qmp(id)).execute('cont');
        if (s === 'running' && d.power === 'paused') await (await this.qmp(id)).execute('stop');
        // ports and volumes attached or detached while qemu runs
        await this.ensureTaps(d, st);
        await this.syncNics(d);
        await this.syncVolumes(d, st);
      }
      // no qemu: the volumes' devices are made (or released) now, the disks come at the next start
      if (d.power === 'stopped' || d.power === 'suspended') await this.volumeDevices(d, st, true);
      st.launched = true;
      await this.writeState(st);
      revert.success();
    } catch (err) {
      await revert.fail();
      throw err;
    }
    return (await this.observe(id, d.power))!;
  }

  /**
   * A cold resize, on one host (Nova's libvirt driver does the same through a
   * migration to itself): when the flavor differs from the one the VM runs
   * with, the VM is stopped (ACPI power-down, then hard), its root disk is
   * kept aside (root.qcow2.pre-resize, a reflink copy where the filesystem
   * can) and grown to the new flavor's disk (never shrunk); the launch below
   * starts it with the new memory and vCPUs. A revert puts the kept disk
   * back; once the resize is confirmed the kept disk goes. Returns the status.
   */
  private async resizeStep(d: DesiredServer, st: LocalState, s: Status): Promise<Status> {
    const id = d.id;
    const root = this.file(id, 'root.qcow2');
    const kept = this.file(id, 'root.qcow2.pre-resize');
    const want = flavorKey(d.flavor);
    if (st.flavor === undefined || !st.launched) {
      // made (or adopted, from an agent before resizes) with this flavor
      st.flavor = want;
    } else if (st.flavor !== want) {
      if (s !== 'stopped') await this.kill(id, false);
      s = 'stopped';
      if (d.task_state === 'resize_reverting' && (await exists(kept))) {
        await fsp.rename(kept, root);
      } else {
        // booted from a volume (no root disk here): only memory and vCPUs change
        if (await exists(root)) {
          if (!(await exists(kept)) && d.task_state !== 'resize_reverting') {
            await runOk('cp', ['--reflink=auto', '--sparse=always', root, `${kept}.tmp`], { timeoutMs: 3600_000 });
            await this.qemuFile(`${kept}.tmp`);
            await fsp.rename(`${kept}.tmp`, kept);
          }
          const info = JSON.parse((await runOk('qemu-img', ['info', '-U', '--output=json', root])).stdout) as { 'virtual-size'?: number };
          const size = d.flavor.disk * GiB;
          if (size > Number(info['virtual-size'] ?? 0)) await runOk('qemu-img', ['resize', '-q', '-f', 'qcow2', root, String(size)]);
        }
      }
      st.flavor = want;
      await this.writeState(st);
      this.o.log.info({ server: id, flavor: want, task: d.task_state }, d.task_state === 'resize_reverting' ? 'resize reverted' : 'resized');
    }
    if (!RESIZING.has(d.task_state ?? '') && d.vm_state !== 'resized') await fsp.rm(kept, { force: true });
    return s;
  }

  /**
   * Rescue and unrescue (the spec's `rescue` came or went): the VM is stopped
   * (ACPI power-down, then hard), and boots from then on from rescue.qcow2, a
   * throwaway overlay on the rescue image, with its root disk as the second
   * disk (the launch below reads st.rescue); on unrescue the overlay goes and
   * it boots from its root disk again. Returns the status.
   */
  private async rescueStep(d: DesiredServer, st: LocalState, s: Status): Promise<Status> {
    const id = d.id;
    const disk = this.file(id, 'rescue.qcow2');
    const want = d.rescue?.image.id;
    if (st.rescue !== want) {
      if (s !== 'stopped') await this.kill(id, false);
      s = 'stopped';
      await fsp.rm(this.file(id, 'memory.state'), { force: true });
      await fsp.rm(disk, { force: true });
      if (want) st.rescue = want;
      else delete st.rescue;
      await this.writeState(st);
      this.o.log.info({ server: id, image: want ?? null }, want ? 'rescued' : 'unrescued');
    }
    if (d.rescue && !(await exists(disk))) {
      const img = d.rescue.image;
      const image = await this.images.ensure(img, (dest) => this.o.fetchImage(img.id, dest)).catch((err: Error) => {
        throw err instanceof ImageFormatError ? permanent(ServerErrorCode.imageInvalid, `rescue image ${img.id}: ${err.message}`, err) : err;
      });
      if (image.format === 'iso') throw userError(ServerErrorCode.imageInvalid, `rescue image ${img.id} is an ISO: a rescue boots a disk image`);
      await runOk('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', image.path, '-F', image.format, `${disk}.tmp`, String(image.virtualSize)]);
      await this.qemuFile(`${disk}.tmp`);
      await fsp.rename(`${disk}.tmp`, disk);
    }
    return s;
  }

  async observe(id: string, desired?: string): Promise<Observed | null> {
    if (!UUIDISH.test(id) || !(await exists(join(this.serversDir, id, 'state.json')))) return null;
    const s = await this.status(id);
    const volumes = observedVolumes((await this.readState(id))?.volumes);
    // always listed (empty once the last is detached): a report without `volumes` is an older agent's, which finishes no detach
    const v = { volumes };
    if (s === 'stopped' && (await exists(this.file(id, 'memory.state')))) return { power_state: PowerState.SUSPENDED, state: 'suspended', ...v };
    if (s === 'running') return { power_state: PowerState.RUNNING, state: 'active', ...v };
    if (s === 'paused') return desired === 'suspended' ? { power_state: PowerState.SUSPENDED, state: 'suspended', ...v } : { power_state: PowerState.PAUSED, state: 'paused', ...v };
    return { power_state: PowerState.SHUTDOWN, state: 'stopped', ...v };
  }

  destroy(id: string): Promise<void> {
    if (!UUIDISH.test(id)) return Promise.resolve();
    return this.serverLock.run(id, () => this.destroyNow(id));
  }

  private async destroyNow(id: string): Promise<void> {
    if (!UUIDISH.test(id)) return;
    const dir = join(this.serversDir, id);
    // called for every server the agent forgets, containers too: nothing to do when nothing is here
    if (!(await exists(dir))) {
      if ((await Promise.all(this.cgroupDirs(id).map(exists))).some(Boolean)) await this.removeCgroup(id);
      return;
    }
    await this.kill(id, true);
    await this.removeCgroup(id);
    const st = await this.readState(id);
    // the volumes' loop devices (qemu, which held them, is gone)
    for (const r of st?.volumes ?? []) await this.attacher.release(r.spec.attachment_id);
    for (const tap of st?.taps_made ?? []) {
      if (await this.linkExists(tap)) await this.ip(['link', 'del', 'dev', tap]).catch(async (err: Error) => {
        if (await this.linkExists(tap)) throw err;
      });
    }
    await fsp.rm(dir, { recursive: true, force: true });
  }

  /** Whether the server is on this host (converged here and not destroyed). */
  async hasServer(id: string): Promise<boolean> {
    return UUIDISH.test(id) && exists(join(this.serversDir, id, 'state.json'));
  }

  /**
   * The interactive serial console, as a container's: the console log (qemu
   * appends everything the guest writes to its serial port) followed, the
   * recent part first, so a session opened late sees the boot or the last
   * prompt; what is written goes to the guest's ttyS0 through qemu's serial
   * socket, whose own copy of the output is dropped. qemu serves one client
   * at a time; the session ends when qemu closes it (the VM stopped).
   */
  async serialConsole(id: string): Promise<Duplex> {
    if (!(await this.hasServer(id)) || !(await this.pid(id))) throw new Error(`server ${id} has no running VM on this host`);
    const sock = await this.connectUnix(this.file(id, 'serial.sock'));
    let log: fsp.FileHandle | null = null;
    try {
      log = await fsp.open(this.file(id, 'console.log'), 'r');
      sock.resume();
      const session = await followConsoleLog(log, this.file(id, 'console.log'), sock);
      sock.once('close', () => session.destroy());
      return session;
    } catch (err) {
      await log?.close();
      sock.destroy();
      throw err;
    }
  }

  /** A connection to qemu's VNC server (the noVNC console's far end). */
  async vncConsole(id: string): Promise<Duplex> {
    if (!(await this.hasServer(id)) || !(await this.pid(id))) throw new Error(`server ${id} has no running VM on this host`);
    return this.connectUnix(this.file(id, 'vnc.sock'));
  }

  private async connectUnix(path: string): Promise<Duplex> {
    const sock = createConnection({ path });
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', reject);
    });
    return sock;
  }

  async consoleOutput(id: string, lines?: number): Promise<string> {
    const text = await fsp.readFile(this.file(id, 'console.log'), 'utf8').catch(() => '');
    if (lines === undefined || lines < 0) return text;
    return tailLines(text, lines);
  }

  /** The root disk as a standalone qcow2 (the backing image folded in), read while the guest is paused (qemu flushes on stop). */
  async snapshot(id: string, upload: (archive: AsyncIterable<Buffer>) => Promise<void>): Promise<void> {
    const root = this.file(id, 'root.qcow2');
    if (!(await exists(root))) throw new Error(`server ${id} has no disk on this host`);
    const out = this.images.tmpPath(`snapshot-${id}`);
    try {
      // the server's lock for the copy (not the upload): no converge continues the VM meanwhile
      await this.serverLock.run(id, async () => {
        const before = await this.status(id);
        if (before === 'running') await (await this.qmp(id)).execute('stop');
        try {
          await runOk('qemu-img', ['convert', '-U', '-O', 'qcow2', '-f', 'qcow2', root, out], { timeoutMs: 3600_000 });
        } finally {
          if (before === 'running') await (await this.qmp(id)).execute('cont');
        }
      });
      const fh = await fsp.open(out, 'r');
      try {
        await upload(fh.createReadStream() as AsyncIterable<Buffer>);
      } finally {
        await fh.close().catch(() => undefined);
      }
    } finally {
      await fsp.rm(out, { force: true });
    }
  }

  async sweep(inUse: Set<string>): Promise<void> {
    void inUse;
    const images = new Set<string>();
    for (const id of await this.localServers()) {
      const st = await this.readState(id);
      if (st?.image_id) images.add(st.image_id);
      if (st?.rescue) images.add(st.rescue);
      await capConsoleLog(this.file(id, 'console.log'), this.o.consoleCap);
    }
    // loop devices a crash left without a server's record of them (the server's lock: no converge in flight)
    const orphans = await this.attacher.releaseOrphans('vm', (sid, att) => UUIDISH.test(sid)
      ? this.serverLock.run(sid, async () => ((await this.readState(sid))?.volumes ?? []).some((r) => r.spec.attachment_id === att))
      : Promise.resolve(false));
    if (orphans.length) this.o.log.warn({ attachments: orphans }, 'released volume devices no server listed');
    const gone = await this.images.prune(images, this.o.keepUnusedImagesMs);
    if (gone.length) this.o.log.info({ images: gone }, 'removed unused VM images');
  }

}
