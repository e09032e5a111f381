// The container driver: runc over an overlayfs root per server.
//
// Per server, under STATE_DIR/servers/<id>/ (the directory is created first and
// removed last, so it anchors everything else the server holds):
//   state.json      what was applied: image, reboot/rebuild sequence numbers
//   upper/ work/    the overlay's writable layer (the server's disk)
//   rootfs/         the overlay mount: image layers (read-only) + upper
//   config-drive/   openstack/latest/{meta_data.json,user_data,network_data.json,vendor_data.json},
//                   bind-mounted read-only at /mnt/config inside the container
//   config.json     the OCI runtime spec
//   console.log     the container's stdout+stderr (O_APPEND; capped by the sweep)
//   runc.log        runc's own log (errors of the last runc call)
//   rescue/         while rescued (spec.rescue): upper/ work/ of the throwaway root
//                   made from the rescue image, and disk/, where the server's own
//                   root (its overlay) is mounted and bound at /mnt in the container;
//                   removed on unrescue
// plus, outside it: the network namespace /run/netns/st-<id> (loopback only
// until networking lands), the runc state under STATE_DIR/runc/<id>, and the
// cgroups /<cgroup parent>/<id> in every v1 hierarchy.
//
// Observation costs no fork: runc's state.json gives the init pid and start
// time, /proc tells whether it lives, freezer.state whether it is paused.
import { tailLines } from '../../../common/text.ts';
import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { availableParallelism, totalmem } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { PowerState } from '../../../compute/schema.ts';
import { SERVER_KIND, ServerErrorCode, type DesiredServer } from '../../../compute/engine/protocol.ts';
import { Reverter } from '../../../common/revert.ts';
import { run, Spawner } from '../../exec.ts';
import type { Capacity, ComputeDriver, Observed, ServerDriverOptions } from '../driver.ts';
import { permanent } from '../../errors.ts';
import { alive, deleteNetns, exists, FifoPool, isMountPoint, NETNS_DIR, NetnsBatcher, overlayOptions, sleep, unmount } from './host.ts';
import { CONSOLE_INPUT } from './console.ts';
import { capConsoleLog } from '../console-log.ts';
import { buildLayerBlob, fileRange, ImageFormatError, writeOciArchive, writeUpperLayer } from './oci.ts';
import { Hardening } from './hardening.ts';
import { buildSpec, limitsFor, type Limits } from './spec.ts';
import { usernsWanted } from './userns.ts';
import { ImageStore } from './store.ts';
import { ContainerVolumes } from './volumes.ts';
import { observedVolumes, VolumeAttacher, type VolumeRecord } from '../volume-attach.ts';
import { volumeDirOf } from '../volume/host.ts';

export interface ContainerDriverOptions extends ServerDriverOptions {
  runc?: string;
}

interface LocalState {
  id: string;
  image_id: string | null;
  rebuild_seq: number;
  reboot_seq: number;
  launched: boolean;
  config_drive_hash: string;
  spec_hash: string;
  /** The volume attachments applied (volumes.ts), in attach order; absent: none. */
  volumes?: VolumeRecord[];
  /** The cgroup limits the running container has (limitsKey): a resize changes them in place (runc update). */
  limits?: string;
  /** The rescue image the container runs from (spec.rescue), its own root at /mnt; absent: not rescued. */
  rescue?: string;
}

type Status = 'missing' | 'created' | 'running' | 'paused' | 'stopped';

const limitsKey = (l: Limits) => `${l.memoryBytes}/${l.cpuShares}/${l.cpuQuota}/${l.cpuPeriod}/${l.pids}`;

const UUIDISH = /^[0-9a-zA-Z][0-9a-zA-Z-]{0,63}$/;

/** SIGKILL to a process; false when it is gone already or cannot be signalled. */
function killNow(pid: number): boolean {
  try {
    process.kill(pid, 'SIGKILL');
    return true;
  } catch {
    return false;
  }
}

export class ContainerDriver implements ComputeDriver {
  readonly name = 'container';
  readonly serves = { [SERVER_KIND]: ['container'] };
  private readonly o: Required<Omit<ContainerDriverOptions, 'log' | 'fetchImage'>> & Pick<ContainerDriverOptions, 'log' | 'fetchImage'>;
  private readonly images: ImageStore;
  private readonly sp: Spawner;
  private readonly netns: NetnsBatcher;
  private readonly fifos: FifoPool;
  private readonly runcRoot: string;
  private readonly serversDir: string;
  private readonly hardening: Hardening;
  /** The attached volumes' loop devices (shared with the VM driver). */
  readonly attacher: VolumeAttacher;
  private readonly volumes: ContainerVolumes;

  constructor(o: ContainerDriverOptions) {
    this.o = { ...o, cgroupParent: o.cgroupParent ?? 'stratus', consoleCap: o.consoleCap ?? 1 << 20, stopTimeoutMs: o.stopTimeoutMs ?? 10_000, runc: o.runc ?? 'runc' };
    this.images = new ImageStore(o.stateDir);
    // the command runner's stderr files: in the state directory (a killed agent leaves nothing in /tmp)
    this.sp = new Spawner(join(o.stateDir, 'spawner'));
    this.runcRoot = join(o.stateDir, 'runc');
    this.serversDir = join(o.stateDir, 'servers');
    this.netns = new NetnsBatcher(this.sp, join(o.stateDir, 'tmp'));
    this.fifos = new FifoPool(this.sp, join(o.stateDir, 'fifos'));
    this.hardening = new Hardening(o.stateDir, this.serversDir, this.sp);
    this.attacher = new VolumeAttacher(join(o.stateDir, 'attachments'), [volumeDirOf(o.stateDir)]);
    this.volumes = new ContainerVolumes(this.attacher, o.log);
  }

  // --- paths
  private dir(id: string) {
    if (!UUIDISH.test(id)) throw new Error(`bad server id ${id}`);
    return join(this.serversDir, id);
  }
  netnsName(id: string) {
    return `st-${id}`;
  }
  cgroupsPath(id: string) {
    return `/${this.o.cgroupParent}/${id}`;
  }
  rootfs(id: string) {
    return join(this.dir(id), 'rootfs');
  }

  async start(): Promise<void> {
    const bins = [this.o.runc, 'ip', 'mount', 'umount', 'unshare', 'nsenter', 'getfattr', 'setfattr', 'mknod', 'losetup', 'blkid'];
    const r = await run('sh', ['-c', 'for b do command -v "$b" >/dev/null || echo "$b"; done', 'sh', ...bins]);
    const missing = r.stdout.split('\n').filter(Boolean);
    if (missing.length) throw new Error(`the container driver needs ${missing.join(', ')} (Debian packages: runc iproute2 mount util-linux attr coreutils)`);
    await fsp.mkdir(this.serversDir, { recursive: true, mode: 0o700 });
    await fsp.mkdir(this.runcRoot, { recursive: true, mode: 0o700 });
    await this.images.init();
    await this.fifos.clear();
    // runc containers with no server directory: a crash between directory removal and runc delete cannot
    // happen (the directory goes last), but a state directory copied by hand could leave some.
    for (const id of await fsp.readdir(this.runcRoot).catch(() => [] as string[])) {
      if (!(await exists(join(this.serversDir, id)))) await this.removeContainer(id, true);
    }
    await this.hardening.start();
  }

  async stop(): Promise<void> {
    this.sp.close();
  }

  async capacity(): Promise<Capacity> {
    const fs = await fsp.statfs(this.o.stateDir);
    return { vcpus: availableParallelism(), memory_mb: Math.floor(totalmem() / 1048576), disk_gb: Math.floor((fs.blocks * fs.bsize) / 2 ** 30) };
  }

  async localServers(): Promise<string[]> {
    return (await fsp.readdir(this.serversDir).catch(() => [] as string[])).filter((n) => UUIDISH.test(n));
  }

  /** Whether the server is on this host: converged here and not destroyed (the network driver asks, for namespaces its ports made). */
  async hasServer(id: string): Promise<boolean> {
    return UUIDISH.test(id) && exists(join(this.dir(id), 'state.json'));
  }

  /** The last state.json written or read per server, to skip writes that change nothing. */
  private readonly persisted = new Map<string, string>();

  private async readState(id: string): Promise<LocalState | null> {
    const text = await fsp.readFile(join(this.dir(id), 'state.json'), 'utf8').catch(() => null);
    if (text === null) {
      this.persisted.delete(id);
      return null;
    }
    try {
      const st = JSON.parse(text) as LocalState;
      this.persisted.set(id, JSON.stringify(st));
      return st;
    } catch {
      return null;
    }
  }

  private async writeState(s: LocalState): Promise<void> {
    const f = join(this.dir(s.id), 'state.json');
    const text = JSON.stringify(s);
    await fsp.writeFile(`${f}.tmp`, text);
    await fsp.rename(`${f}.tmp`, f);
    this.persisted.set(s.id, text);
  }

  // --- runc
  private runc(args: string[], o: { cwd?: string; output?: string; id?: string } = {}) {
    const log = o.id ? ['--log', join(this.dir(o.id), 'runc.log'), '--log-format', 'json'] : [];
    return this.sp.run(this.o.runc, ['--root', this.runcRoot, ...log, ...args], { cwd: o.cwd, output: o.output });
  }

  private async runcError(id: string, fallback: string): Promise<string> {
    const text = await fsp.readFile(join(this.dir(id), 'runc.log'), 'utf8').catch(() => '');
    const lines = text.trim().split('\n').reverse();
    for (const l of lines) {
      try {
        const j = JSON.parse(l) as { level?: string; msg?: string };
        if (j.level === 'error' && j.msg) return j.msg;
      } catch { /* not json */ }
    }
    return fallback;
  }

  /** The container's status, read from runc's state file and /proc (no fork). */
  private async status(id: string): Promise<{ status: Status; pid: number }> {
    const dir = join(this.runcRoot, id);
    const text = await fsp.readFile(join(dir, 'state.json'), 'utf8').catch(() => null);
    if (text === null) return { status: (await exists(dir)) ? 'created' : 'missing', pid: 0 };
    let st: { init_process_pid?: number; init_process_start?: number; cgroup_paths?: Record<string, string> };
    try {
      st = JSON.parse(text);
    } catch {
      return { status: 'created', pid: 0 };
    }
    const pid = st.init_process_pid ?? 0;
    if (!(await alive(pid, Number(st.init_process_start ?? -1)))) return { status: 'stopped', pid: 0 };
    if (await exists(join(dir, 'exec.fifo'))) return { status: 'created', pid };
    const freezer = st.cgroup_paths?.freezer;
    if (freezer) {
      const f = await fsp.readFile(join(freezer, 'freezer.state'), 'utf8').catch(() => 'THAWED');
      if (f.trim() !== 'THAWED') return { status: 'paused', pid };
    }
    return { status: 'running', pid };
  }

  private async waitDead(id: string, ms: number): Promise<boolean> {
    const until = Date.now() + ms;
    for (;;) {
      const s = await this.status(id);
      if (s.status === 'missing' || s.status === 'stopped') return true;
      if (Date.now() >= until) return false;
      await sleep(25);
    }
  }

  /**
   * Stops the container's processes and deletes the runc container: hard (a
   * delete, a hard reboot: Nova destroys, it does not shut down) is SIGKILL at
   * once; soft (stop) is the image's stop signal, then SIGKILL after the timeout.
   */
  private async removeContainer(id: string, hard: boolean, stopSignal = 'SIGTERM'): Promise<void> {
    let s = await this.status(id);
    if (s.status === 'missing') return;
    if (s.status === 'paused') {
      await this.runc(['resume', id]);
      s = await this.status(id);
    }
    if (s.status === 'running' || s.status === 'created') {
      if (!hard && s.status === 'running') {
        await this.runc(['kill', id, stopSignal]);
        if (!(await this.waitDead(id, this.o.stopTimeoutMs))) hard = true;
      }
      if (hard && s.status === 'running' && s.pid > 0 && killNow(s.pid) && (await this.waitDead(id, 2000))) {
        // killed at once: the container's init is the only process of its PID namespace
        // (runc state read just now, start time checked), and the kernel kills the rest
        // of the namespace with it; no `runc kill` fork
      } else if (hard || s.status === 'created') {
        await this.runc(['kill', '--all', id, 'KILL']);
        await this.waitDead(id, 10_000);
      }
    }
    const r = await this.runc(['delete', '--force', id]);
    if (r.code !== 0 && (await this.status(id)).status !== 'missing') {
      throw new Error(`runc delete ${id}: ${(r.stderr || r.stdout).trim().slice(0, 300)}`);
    }
  }

  /**
   * Mounts the server's overlay root and runs the container, in a mount
   * namespace of their own: the overlay exists only in the container's mount
   * namespace (copied from that one), never in the host's, so the host's mount
   * table does not grow with the servers (every new mount namespace copies it)
   * and the mount goes away with the container, whatever happens to the agent.
   */
  private async startContainer(id: string, lowers: string[], rescueLowers?: string[]): Promise<void> {
    const dir = this.dir(id);
    const own = overlayOptions(lowers, join(dir, 'upper'), join(dir, 'work'));
    // rescued: the root is the rescue image's throwaway overlay, and the server's own root is mounted at rescue/disk (bound at /mnt)
    const opts = rescueLowers ? overlayOptions(rescueLowers, join(dir, 'rescue', 'upper'), join(dir, 'rescue', 'work')) : own;
    const ns = this.netnsName(id);
    // the network namespace, when missing, is made by the same job of the command runner (one job per
    // boot, no shell of its own), in the host's mount namespace. The network driver makes it too when a
    // port comes first, and `ip netns add` makes the file before it mounts the namespace on it: a file
    // that exists is not yet a namespace runc can join (its setns fails: "can't get final child's PID
    // from pipe"). So the guard waits until the namespace answers (setting lo up is idempotent).
    const up = `ip -n ${ns} link set lo up`;
    const guard = `{ [ -e ${NETNS_DIR}/${ns} ] || ip netns add ${ns}; ${up} || { sleep 0.1; ${up}; } || { sleep 0.5; ${up}; } || { sleep 2; ${up}; }; } 2>netns.err`;
    // stdin: the serial console's input FIFO (drivers/container/console.ts), opened read-write so it never
    // blocks; made ahead by the FIFO pool (the mkfifo here is for a pool that failed)
    await this.fifos.place(join(dir, CONSOLE_INPUT)).catch((err: Error) => this.o.log.warn({ server: id, err: err.message }, 'console FIFO not made ahead'));
    const mountOwn = rescueLowers ? `mount -t overlay overlay -o "$1" rescue/disk 2>mount.err || exit 32; shift; ` : '';
    const script = `mount -t overlay overlay -o "$0" rootfs 2>mount.err || exit 32; ${mountOwn}[ -p ${CONSOLE_INPUT} ] || mkfifo -m 600 ${CONSOLE_INPUT}; exec "$@" <>${CONSOLE_INPUT}`;
    const runc = [this.o.runc, '--root', this.runcRoot, '--log', join(dir, 'runc.log'), '--log-format', 'json', 'run', '-d', id];
    const args = ['--mount', '--propagation', 'private', '--', 'sh', '-c', script, opts, ...(rescueLowers ? [own] : []), ...runc];
    // the container's stdout and stderr: appended to its console log (runc run -d hands them over)
    let r = await this.sp.run('unshare', args, { cwd: dir, output: join(dir, 'console.log'), guard });
    // the previous container's mount namespace (and its overlay) may still be going away: try again a little later
    for (let i = 1; r.code === 32 && i <= 4; i++) {
      this.o.log.warn({ server: id, attempt: i, err: (await fsp.readFile(join(dir, 'mount.err'), 'utf8').catch(() => '')).trim() }, 'overlay mount refused; retrying');
      await sleep(250 * i);
      r = await this.sp.run('unshare', args, { cwd: dir, output: join(dir, 'console.log'), guard });
    }
    if (r.code !== 0) {
      if (!(await exists(`${NETNS_DIR}/${ns}`))) {
        const why = await fsp.readFile(join(dir, 'netns.err'), 'utf8').catch(() => '');
        throw new Error(`creating the server's network namespace failed: ${why.trim().slice(0, 300) || 'ip exited with an error'}`);
      }
      if (r.code === 32) {
        const why = await fsp.readFile(join(dir, 'mount.err'), 'utf8').catch(() => '');
        throw new Error(`mounting the server's root failed: ${why.trim().slice(0, 300) || 'mount exited 32'}`);
      }
      const why = await this.runcError(id, `runc run exited ${r.code}`);
      // a failed run can leave a half-created container behind
      await this.runc(['delete', '--force', id]);
      throw new Error(why);
    }
  }

  // --- config drive
  private async writeConfigDrive(d: DesiredServer, dir: string): Promise<void> {
    const cd = d.config_drive;
    const root = join(dir, 'config-drive');
    const latest = join(root, 'openstack', 'latest');
    await fsp.mkdir(latest, { recursive: true, mode: 0o755 });
    const files: Array<[string, Buffer]> = [
      // uuid first: the busybox init reads it with sed
      ['meta_data.json', Buffer.from(JSON.stringify({ uuid: d.id, ...cd.meta_data }))],
      ['network_data.json', Buffer.from(JSON.stringify(cd.network_data))],
      ['vendor_data.json', Buffer.from(JSON.stringify(cd.vendor_data))],
      ['vendor_data2.json', Buffer.from(JSON.stringify({}))],
    ];
    if (cd.user_data) files.push(['user_data', Buffer.from(cd.user_data, 'base64')]);
    else await fsp.rm(join(latest, 'user_data'), { force: true });
    for (const [name, data] of files) {
      await fsp.writeFile(join(latest, `.${name}.tmp`), data, { mode: 0o644 });
      await fsp.rename(join(latest, `.${name}.tmp`), join(latest, name));
    }
  }

  // --- the converge step
  async converge(d: DesiredServer): Promise<Observed> {
    if (d.deleted) throw new Error('converge called for a deleted server');
    if (!d.image) throw permanent(ServerErrorCode.imageMissing, 'a container server needs an image');
    const id = d.id;
    const dir = this.dir(id);
    let st = await this.readState(id);
    const revert = new Reverter();
    if (!st) {
      await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
      st = { id, image_id: d.image.id, rebuild_seq: d.rebuild_seq, reboot_seq: d.reboot_seq, launched: false, config_drive_hash: '', spec_hash: '' };
      await this.writeState(st);
    }
    const building = !st.launched;
    if (building) revert.add(() => this.destroy(id));
    try {
      if (st.rebuild_seq !== d.rebuild_seq || st.image_id !== d.image.id) {
        // rebuild: a fresh disk from the (new) image, same server
        await this.removeContainer(id, true);
        await unmount(this.sp, this.rootfs(id));
        await fsp.rm(join(dir, 'upper'), { recursive: true, force: true });
        await fsp.rm(join(dir, 'work'), { recursive: true, force: true });
        st = { ...st, image_id: d.image.id, rebuild_seq: d.rebuild_seq, reboot_seq: d.reboot_seq, spec_hash: '', config_drive_hash: '' };
        await this.writeState(st);
      }
      const ensure = (imageId: string) => this.images.ensure(imageId, (dest) => this.o.fetchImage(imageId, dest)).catch((err: Error) => {
        throw err instanceof ImageFormatError ? permanent(ServerErrorCode.imageInvalid, `image ${imageId}: ${err.message}`, err) : err;
      });
      const image = await ensure(d.image.id);
      const rescueId = d.rescue?.image.id;
      if (st.rescue !== rescueId) {
        // rescue or unrescue: the container restarts, from the rescue image with its own root at /mnt, or on its own root
        // again; stopped cleanly first (Nova's rescue powers the guest off), with the stop signal of the image it runs
        const running = st.rescue ? await ensure(st.rescue).catch(() => image) : image;
        await this.removeContainer(id, false, running.config.config?.StopSignal || 'SIGTERM');
        // the rescue root is thrown away
        await fsp.rm(join(dir, 'rescue'), { recursive: true, force: true });
        if (rescueId) st.rescue = rescueId;
        else delete st.rescue;
        await this.writeState(st);
      }
      const rescueImage = rescueId ? await ensure(rescueId) : null;
      if (rescueImage) {
        for (const sub of ['upper', 'work', 'disk']) await fsp.mkdir(join(dir, 'rescue', sub), { recursive: true, mode: 0o755 });
        await this.hardening.prepareUpper(d, dir, join(dir, 'rescue', 'upper'));
      }
      await this.hardening.prepareDisk(d, dir);
      // a host mount left by an older agent (the root is now mounted in the container's namespace only)
      await unmount(this.sp, this.rootfs(id));
      const cdHash = createHash('sha256').update(JSON.stringify(d.config_drive)).digest('hex');
      if (cdHash !== st.config_drive_hash || !(await exists(join(dir, 'config-drive')))) {
        await this.writeConfigDrive(d, dir);
        st.config_drive_hash = cdHash;
      }
      const netnsPath = `/run/netns/${this.netnsName(id)}`;
      // the volumes' devices (made now; those that left the spec go later, once unmounted)
      const vols = await this.volumes.prepare(d, st.volumes ?? [], false);
      st.volumes = vols.records;
      if (JSON.stringify(st) !== this.persisted.get(id)) await this.writeState(st);
      const spec = await buildSpec({
        desired: d, netnsPath, cgroupsPath: this.cgroupsPath(id), configDriveDir: join(dir, 'config-drive'), volumes: vols.volumes,
        ...(rescueImage
          ? { image: rescueImage.config, lookup: [join(dir, 'rescue', 'upper'), ...[...rescueImage.layerDirs].reverse()], rescueDisk: join(dir, 'rescue', 'disk') }
          : { image: image.config, lookup: [join(dir, 'upper'), ...[...image.layerDirs].reverse()] }),
      })
        .catch((err: Error) => { throw permanent(ServerErrorCode.specInvalid, err.message, err); });
      const specText = JSON.stringify(spec);
      const specHash = createHash('sha256').update(specText).digest('hex');
      if (specHash !== st.spec_hash || !(await exists(join(dir, 'config.json')))) {
        await fsp.writeFile(join(dir, 'config.json'), specText);
        st.spec_hash = specHash;
      }
      const stopSignal = (rescueImage ?? image).config.config?.StopSignal || 'SIGTERM';
      let s = (await this.status(id)).status;
      if (d.reboot_seq !== st.reboot_seq) {
        if (s !== 'missing') await this.removeContainer(id, d.reboot_type === 'HARD', stopSignal);
        s = 'missing';
        st.reboot_seq = d.reboot_seq;
        // recorded before the restart: a crash after it must not reboot the server a second time
        await this.writeState(st);
      }
      const wantRunning = d.power !== 'stopped';
      if (wantRunning && (s === 'stopped' || s === 'created')) {
        await this.removeContainer(id, true);
        s = 'missing';
      }
      // the network namespace: made by the container's start command when one starts (userns
      // servers need it before, for their sysctls), on its own otherwise
      if (!(wantRunning && s === 'missing') || usernsWanted(d.flavor)) await this.netns.ensure(this.netnsName(id));
      const limits = limitsFor(d.flavor);
      if (wantRunning) {
        if (s === 'missing') {
          await this.startContainer(id, await this.hardening.beforeStart(d, image.layerDirs, netnsPath),
            rescueImage ? await this.hardening.beforeStart(d, rescueImage.layerDirs, netnsPath) : undefined);
          s = 'running';
          st.limits = limitsKey(limits);
        } else if (st.limits !== limitsKey(limits)) {
          // a resize: the running (or paused) container's cgroups take the flavor's new limits in place
          await this.updateLimits(id, limits);
          st.limits = limitsKey(limits);
        }
        if (s === 'paused' && d.power === 'running') await this.sp.runOk(this.o.runc, ['--root', this.runcRoot, 'resume', id]);
        if (s === 'running' && (d.power === 'paused' || d.power === 'suspended')) await this.sp.runOk(this.o.runc, ['--root', this.runcRoot, 'pause', id]);
      } else if (s !== 'missing') {
        await this.removeContainer(id, false, stopSignal);
        s = 'missing';
      }
      const c = await this.status(id);
      if (c.status === 'running' || c.status === 'paused') {
        // attached and detached in the running container (a paused one too: nothing of it runs for this);
        // a file system that stays busy leaves its attachment failed (the reconciler's re-checks try again)
        const r = await this.volumes.sync(d, { pid: c.pid, devicesCgroup: await this.devicesCgroup(id) }, vols.volumes, st.volumes ?? []);
        st.volumes = r.records;
        if (r.stuck) this.o.log.warn({ server: id, why: r.stuck }, 'a volume stays attached');
      } else {
        // no container: nothing is mounted; the devices of attachments gone from the spec go
        st.volumes = (await this.volumes.prepare(d, st.volumes ?? [], true)).records;
      }
      // one write for what this step applied (hashes of the files written, first launch)
      st.launched = true;
      if (JSON.stringify(st) !== this.persisted.get(id)) await this.writeState(st);
      revert.success();
    } catch (err) {
      await revert.fail();
      throw err;
    }
    return (await this.observe(id, d.power))!;
  }

  /** The container's v1 devices cgroup (runc's state), null when there is none (cgroup v2). */
  private async devicesCgroup(id: string): Promise<string | null> {
    const text = await fsp.readFile(join(this.runcRoot, id, 'state.json'), 'utf8').catch(() => null);
    if (!text) return null;
    try {
      const p = (JSON.parse(text) as { cgroup_paths?: Record<string, string> }).cgroup_paths?.devices;
      return p && (await exists(join(p, 'devices.allow'))) ? p : null;
    } catch {
      return null;
    }
  }

  /**
   * Applies new cgroup limits to a running container (runc update: memory
   * with its swap, CPU shares, quota and period, pids). Memory lowered below
   * what the container uses fails: a transient error, retried by the queue.
   */
  private async updateLimits(id: string, l: Limits): Promise<void> {
    const r = await this.runc(['update', '--memory', String(l.memoryBytes), '--memory-swap', String(l.memoryBytes),
      '--cpu-share', String(l.cpuShares), '--cpu-quota', String(l.cpuQuota), '--cpu-period', String(l.cpuPeriod), '--pids-limit', String(l.pids), id], { id });
    if (r.code !== 0) throw new Error(`runc update ${id}: ${await this.runcError(id, (r.stderr || r.stdout).trim().slice(0, 300) || `exited ${r.code}`)}`);
    this.o.log.info({ server: id, memory: l.memoryBytes, cpuQuota: l.cpuQuota, cpuPeriod: l.cpuPeriod }, 'limits updated in place');
  }

  /** What the host holds; a container whose process exited is deleted on the way (its runc state and cgroups go at once). */
  async observe(id: string, desired?: string): Promise<Observed | null> {
    if (!(await exists(this.dir(id)))) return null;
    let s = (await this.status(id)).status;
    if (s === 'stopped') {
      await this.removeContainer(id, true);
      s = 'missing';
    }
    const volumes = observedVolumes((await this.readState(id))?.volumes);
    // always listed (empty once the last is detached): a report without `volumes` is an older agent's, which finishes no detach
    const v = { volumes };
    if (s === 'running') return { power_state: PowerState.RUNNING, state: 'active', ...v };
    if (s === 'paused') return desired === 'suspended' ? { power_state: PowerState.SUSPENDED, state: 'suspended', ...v } : { power_state: PowerState.PAUSED, state: 'paused', ...v };
    return { power_state: PowerState.SHUTDOWN, state: 'stopped', ...v };
  }

  async destroy(id: string): Promise<void> {
    const dir = this.dir(id);
    await this.removeContainer(id, true);
    await unmount(this.sp, join(dir, 'rootfs'));
    await deleteNetns(this.sp, this.netnsName(id));
    await this.removeCgroups(id);
    // the volumes' loop devices (the container's mounts went with its mount namespace)
    for (const r of (await this.readState(id).catch(() => null))?.volumes ?? []) await this.attacher.release(r.spec.attachment_id);
    await this.hardening.release(id);
    if (await isMountPoint(join(dir, 'rootfs'))) throw new Error(`${dir}/rootfs is still mounted`);
    await fsp.rm(dir, { recursive: true, force: true });
    this.persisted.delete(id);
  }

  /** runc delete removes the cgroups; this catches those a killed runc left behind. */
  private async removeCgroups(id: string): Promise<void> {
    const roots = await fsp.readdir('/sys/fs/cgroup').catch(() => [] as string[]);
    for (const ctl of roots) {
      const p = join('/sys/fs/cgroup', ctl, this.o.cgroupParent, id);
      if (!(await exists(p))) continue;
      for (let i = 0; i < 20; i++) {
        const ok = await fsp.rmdir(p).then(() => true, () => false);
        if (ok || !(await exists(p))) break;
        await sleep(50);
      }
    }
  }

  async consoleOutput(id: string, lines?: number): Promise<string> {
    const text = await fsp.readFile(join(this.dir(id), 'console.log'), 'utf8').catch(() => '');
    if (lines === undefined || lines < 0) return text;
    return tailLines(text, lines);
  }

  async snapshot(id: string, upload: (archive: AsyncIterable<Buffer>) => Promise<void>): Promise<void> {
    const st = await this.readState(id);
    if (!st?.image_id) throw new Error(`server ${id} has no disk on this host`);
    const imageId = st.image_id;
    const image = await this.images.ensure(imageId, (dest) => this.o.fetchImage(imageId, dest));
    const dir = this.dir(id);
    const layerFile = this.images.tmpPath('snapshot-layer');
    try {
      // freeze the container while its upper directory is read, for a consistent disk
      const before = (await this.status(id)).status;
      if (before === 'running') await this.runc(['pause', id]);
      let layer;
      try {
        layer = await buildLayerBlob(layerFile, async (tar) => writeUpperLayer(await fsp.realpath(join(dir, 'upper')), tar));
      } finally {
        if (before === 'running') await this.runc(['resume', id]);
      }
      const base = JSON.parse(image.configRaw) as Record<string, any>;
      const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
      const config = {
        ...base,
        created: now,
        rootfs: { type: 'layers', diff_ids: [...(base.rootfs?.diff_ids ?? []), layer.diffId] },
        history: [...(base.history ?? []), { created: now, created_by: `stratus snapshot of server ${id}` }],
      };
      const out = new PassThrough();
      const writing = writeOciArchive(out, {
        configRaw: Buffer.from(JSON.stringify(config)),
        layers: [
          ...image.layers.map((l) => ({ digest: l.digest, size: l.size, mediaType: l.mediaType, read: fileRange(image.archive, l.offset, l.size) })),
          { ...layer, read: fileRange(layerFile, 0, layer.size) },
        ],
        refName: 'latest',
      }).catch((err: Error) => {
        out.destroy(err);
        throw err;
      });
      await Promise.all([upload(out), writing]);
    } finally {
      await fsp.rm(layerFile, { force: true });
    }
  }

  async sweep(inUse: Set<string>): Promise<void> {
    const images = new Set<string>();
    for (const id of await this.localServers()) {
      const st = await this.readState(id);
      if (st?.image_id) images.add(st.image_id);
      if (st?.rescue) images.add(st.rescue);
      await capConsoleLog(join(this.dir(id), 'console.log'), this.o.consoleCap);
    }
    void inUse;
    // loop devices a crash left without a server's record of them
    const orphans = await this.attacher.releaseOrphans('container', async (sid, att) =>
      UUIDISH.test(sid) && ((await this.readState(sid))?.volumes ?? []).some((r) => r.spec.attachment_id === att));
    if (orphans.length) this.o.log.warn({ attachments: orphans }, 'released volume devices no server listed');
    await this.images.prune(images);
    await this.hardening.sweep();
    // lets the command runner reap the jobs that ended since its last command
    await this.sp.run('true', []);
  }

}
