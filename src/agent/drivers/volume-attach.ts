// A volume attachment's block device on the server's host, shared by the
// container and VM drivers (ServerVolumeSpec, protocol 2.4): both kinds see
// an attached volume through the same loop device.
//
//   raw     a loop device over the volume's file (`losetup --direct-io=on`,
//           `--read-only` for a read-only attachment);
//   qcow2   qemu-storage-daemon (root) opens the qcow2 chain and exports it as
//           a raw view through FUSE (a file, `qsd-<hash>.raw`); the loop
//           device goes over that file, buffered: loop's direct I/O into the
//           FUSE file lost writes here. There is no kernel NBD here, and a
//           container needs a block device, so this is the way a qcow2 volume
//           becomes one.
//
// Why VMs use the loop device too: qemu drops to stratus-qemu (-runas) once
// started, so a hot-plugged disk is opened by an unprivileged qemu, which may
// not open the volume backend's files (root's, 0600; a qcow2 chain's layers as
// well), and Node cannot hand it a descriptor over QMP. The loop device's node
// is given to stratus-qemu while the VM holds it (`grant`) and back to root on
// release; qemu opens it as a raw `host_device`.
//
// The export's location is the control plane's word, checked here: with its
// symbolic links resolved it must be a regular file inside one of the
// volume backends' directories (`roots`: the agent's STATE_DIR/volumes),
// else the attachment fails, saying so, and nothing is made.
//
// One record per attachment (`STATE_DIR/attachments/<attachment id>.json`,
// written before anything is made, removed last): a loop device (and daemon)
// serves every attachment of the same file on this host (multiattach), and
// goes when the last record naming it is released. A crash at any point
// leaves a record: the next acquire finds the loop device by its backing
// file, the next release removes it. An acquire that fails part way undoes
// what it made (a reverter: the loop device, the raw view it started, its
// new record); an undo that fails, such as the view's umount, is added to
// the error reported. Nothing is forced: a loop device still held (a mount)
// is detached with autoclear by the kernel once free.
//
// Making and releasing a device hold the volume's lock (volume/host.ts
// `volumeLocks`, by volume id), the one the volume backend's calls hold: a
// qcow2 snapshot never runs while an attach is starting its storage daemon.
import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { ServerVolumeObserved, ServerVolumeSpec } from '../../compute/engine/protocol.ts';
import { Reverter } from '../../common/revert.ts';
import { run, runOk } from '../exec.ts';
import { volumeLocks } from './volume/host.ts';

export interface HostBlockDevice {
  /** /dev/loopN */
  path: string;
  major: number;
  minor: number;
}

interface Record {
  attachment_id: string;
  /** The volume (the lock's key); absent in records written before it was kept: the file's name says it. */
  volume_id?: string;
  /** `<driver>:<server id>`: who holds it (sweeps find what a crash left unlisted). */
  owner?: string;
  location: string;
  format: 'raw' | 'qcow2';
  read_only: boolean;
}

/** What a driver keeps of one attachment (in its server's state): the spec it applied and how that went. */
export interface VolumeRecord {
  spec: ServerVolumeSpec;
  state: 'attached' | 'failed';
  message?: string;
}

export const observedVolumes = (records: VolumeRecord[] | undefined): ServerVolumeObserved[] =>
  (records ?? []).map((r) => ({ attachment_id: r.spec.attachment_id, state: r.state, ...(r.message ? { message: r.message } : {}) }));

/** A user-readable reason a volume cannot be attached here (a message for `failed`). */
export class AttachError extends Error {}

const ATTACHMENT_ID = /^[0-9A-Za-z][0-9A-Za-z_-]{0,63}$/;
/** The lock key of a record's volume. */
const volumeOf = (r: Record): string => r.volume_id ?? basename(r.location).replace(/\.(raw|qcow2)$/, '');
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const exists = (p: string) => fsp.access(p).then(() => true, () => false);

/** The loop devices of this host: device -> backing file and read-only flag. */
export async function loopDevices(): Promise<Array<{ name: string; back: string; ro: boolean }>> {
  const r = await runOk('losetup', ['--list', '--json', '-O', 'NAME,BACK-FILE,RO']);
  if (!r.stdout.trim()) return [];
  const j = JSON.parse(r.stdout) as { loopdevices?: Array<{ name: string; 'back-file': string | null; ro: boolean | string | number }> };
  return (j.loopdevices ?? []).map((l) => ({ name: l.name, back: (l['back-file'] ?? '').replace(/ \(deleted\)$/, ''), ro: l.ro === true || l.ro === 1 || l.ro === '1' }));
}

async function isMounted(path: string): Promise<boolean> {
  const text = await fsp.readFile('/proc/self/mountinfo', 'utf8');
  return text.split('\n').some((l) => l.split(' ')[4] === path);
}

export class VolumeAttacher {
  readonly dir: string;
  private readonly roots: readonly string[];

  /**
   * `dir`: STATE_DIR/attachments (the same for every driver of the agent);
   * `roots`: the volume backends' directories, the only places a volume's
   * data is taken from.
   */
  constructor(dir: string, roots: readonly string[]) {
    this.dir = dir;
    this.roots = roots;
  }

  /** The volume's file: the export's location with its links resolved, a regular file inside a backend's directory. */
  private async dataOf(v: ServerVolumeSpec): Promise<string> {
    const real = await fsp.realpath(v.location).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return null;
      throw err;
    });
    if (real === null) throw new AttachError(`The volume's data is missing on this host (${v.volume_id}).`);
    for (const root of this.roots) {
      const r = await fsp.realpath(root).catch(() => null);
      if (r === null || !real.startsWith(`${r}/`)) continue;
      if (!(await fsp.stat(real)).isFile()) break;
      return real;
    }
    throw new AttachError(`The export of volume ${v.volume_id} names no file of this host's volume backend: refused, nothing was attached.`);
  }

  private rec(attachmentId: string): string {
    if (!ATTACHMENT_ID.test(attachmentId)) throw new AttachError(`bad attachment id ${attachmentId}`);
    return join(this.dir, `${attachmentId}.json`);
  }

  private async records(): Promise<Record[]> {
    const out: Record[] = [];
    for (const n of await fsp.readdir(this.dir).catch(() => [] as string[])) {
      if (!n.endsWith('.json')) continue;
      const t = await fsp.readFile(join(this.dir, n), 'utf8').catch(() => null);
      if (t) try { out.push(JSON.parse(t) as Record); } catch { /* a torn write: ignored */ }
    }
    return out;
  }

  /** The attachments this host holds a device for (their ids). */
  async held(): Promise<string[]> {
    return (await this.records()).map((r) => r.attachment_id);
  }

  /** Makes (or finds) the block device of attachment `v`. Throws AttachError for what the user must change. */
  async acquire(v: ServerVolumeSpec, owner: string): Promise<HostBlockDevice> {
    if (!v.location.startsWith('/')) throw new AttachError(`The volume's data is not on this host (${v.location.split(':')[0]} export): only volumes on the server's own host can be attached yet.`);
    if (v.format !== 'raw' && v.format !== 'qcow2') throw new AttachError(`Volume format ${String(v.format)} is not supported.`);
    if (!ATTACHMENT_ID.test(v.volume_id)) throw new AttachError(`bad volume id ${v.volume_id}`);
    // the lock asked for at once: a backend call on the volume asked after this call waits for it
    return volumeLocks.run([v.volume_id], async () => {
      await fsp.mkdir(this.dir, { recursive: true, mode: 0o700 });
      const location = await this.dataOf(v);
      const rec: Record = { attachment_id: v.attachment_id, volume_id: v.volume_id, owner, location, format: v.format, read_only: v.read_only };
      const revert = new Reverter();
      try {
        // recorded before anything is made: a crash leaves nothing unknown (a new record goes again if this fails)
        const f = this.rec(v.attachment_id);
        const had = await exists(f);
        await fsp.writeFile(`${f}.tmp`, JSON.stringify(rec));
        await fsp.rename(`${f}.tmp`, f);
        if (!had) revert.add(() => fsp.rm(f, { force: true }));
        let source = location;
        if (v.format === 'qcow2') {
          const view = await this.rawView(location, v.read_only);
          if (view.made) revert.add(() => this.closeView(location, v.read_only));
          source = view.path;
        }
        let dev = (await loopDevices()).find((l) => l.back === source && l.ro === v.read_only)?.name;
        if (!dev) {
          // direct I/O over a raw file (no second page cache); never over the FUSE view: loop's direct I/O into a
          // FUSE file lost writes here (kernel 6.18; found by test/dataplane/volume-attach.test.ts)
          const dio = v.format === 'raw' ? ['--direct-io=on'] : [];
          const r = await runOk('losetup', ['--find', '--show', ...dio, ...(v.read_only ? ['--read-only'] : []), source], { timeoutMs: 60_000 });
          const made = r.stdout.trim();
          revert.add(() => this.detachLoop(made, source));
          dev = made;
        }
        const name = dev.replace(/^\/dev\//, '');
        const [major, minor] = (await fsp.readFile(`/sys/block/${name}/dev`, 'utf8')).trim().split(':').map(Number) as [number, number];
        revert.success();
        return { path: dev, major, minor };
      } catch (err) {
        const undone = await revert.fail();
        if (undone.length && err instanceof Error) err.message += `; undoing the attach failed too: ${undone.map((e) => e.message).join('; ')}`;
        throw err;
      }
    });
  }

  /** The block device attachment `attachmentId` holds now (null when none). */
  async device(attachmentId: string): Promise<HostBlockDevice | null> {
    const t = await fsp.readFile(this.rec(attachmentId), 'utf8').catch(() => null);
    if (!t) return null;
    const r = JSON.parse(t) as Record;
    const source = r.format === 'raw' ? r.location : this.viewPaths(r.location, r.read_only).view;
    const dev = (await loopDevices()).find((l) => l.back === source && l.ro === r.read_only)?.name;
    if (!dev) return null;
    const [major, minor] = (await fsp.readFile(`/sys/block/${dev.replace(/^\/dev\//, '')}/dev`, 'utf8')).trim().split(':').map(Number) as [number, number];
    return { path: dev, major, minor };
  }

  /**
   * Releases the attachments `driver` holds for a server whose state does
   * not list them (`listed`): what a crash between an acquire and the
   * driver's state write leaves. A record rewritten in the last `minAgeMs`
   * (every acquire rewrites it) may be a converge in flight: kept.
   */
  async releaseOrphans(driver: string, listed: (serverId: string, attachmentId: string) => Promise<boolean>, minAgeMs = 600_000): Promise<string[]> {
    const gone: string[] = [];
    for (const r of await this.records()) {
      if (!r.owner?.startsWith(`${driver}:`)) continue;
      const st = await fsp.stat(this.rec(r.attachment_id)).catch(() => null);
      if (!st || Date.now() - st.mtimeMs < minAgeMs) continue;
      if (await listed(r.owner.slice(driver.length + 1), r.attachment_id)) continue;
      await this.release(r.attachment_id);
      gone.push(r.attachment_id);
    }
    return gone;
  }

  /** Gives the device's node to `uid`:`gid` (0600): an unprivileged qemu opens it. */
  async grant(dev: HostBlockDevice, uid: number, gid: number): Promise<void> {
    await fsp.chown(dev.path, uid, gid);
    await fsp.chmod(dev.path, 0o600);
  }

  /**
   * Drops attachment `attachmentId`'s hold: its loop device (and raw view)
   * go when no other attachment on this host uses the same file. Idempotent.
   */
  async release(attachmentId: string): Promise<void> {
    const f = this.rec(attachmentId);
    const t = await fsp.readFile(f, 'utf8').catch(() => null);
    if (!t) return;
    let r: Record;
    try {
      r = JSON.parse(t) as Record;
    } catch {
      await fsp.rm(f, { force: true });
      return;
    }
    await volumeLocks.run([volumeOf(r)], async () => {
      const others = (await this.records()).filter((o) => o.attachment_id !== attachmentId && o.location === r.location);
      const source = r.format === 'raw' ? r.location : this.viewPaths(r.location, r.read_only).view;
      if (!others.some((o) => o.read_only === r.read_only)) {
        for (const l of await loopDevices()) {
          if (l.back === source && l.ro === r.read_only) await this.detachLoop(l.name, source);
        }
        if (r.format === 'qcow2') await this.closeView(r.location, r.read_only);
      }
      await fsp.rm(f, { force: true });
    });
  }

  /** Detaches loop device `dev` over `source`, its node back to root's first; throws when it stays. */
  private async detachLoop(dev: string, source: string): Promise<void> {
    // the node back to root's before the device can be reused by anyone else
    await fsp.chown(dev, 0, 6).catch(() => fsp.chown(dev, 0, 0)).catch(() => undefined);
    await fsp.chmod(dev, 0o660).catch(() => undefined);
    const d = await run('losetup', ['--detach', dev]);
    if (d.code !== 0 && (await loopDevices()).some((x) => x.name === dev && x.back === source)) throw new Error(`losetup --detach ${dev}: ${d.stderr.trim()}`);
  }

  // --- qcow2: a raw view through qemu-storage-daemon's FUSE export
  private viewPaths(location: string, ro: boolean) {
    const h = createHash('sha256').update(`${location}\0${ro}`).digest('hex').slice(0, 20);
    return { view: join(this.dir, `qsd-${h}.raw`), pid: join(this.dir, `qsd-${h}.pid`), log: join(this.dir, `qsd-${h}.log`) };
  }

  private async viewPid(pidFile: string): Promise<number | null> {
    const pid = Number((await fsp.readFile(pidFile, 'utf8').catch(() => '')).trim());
    if (!Number.isInteger(pid) || pid <= 1) return null;
    const cmd = (await fsp.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
    return cmd[0]?.endsWith('qemu-storage-daemon') && cmd.includes(pidFile) ? pid : null;
  }

  /** The raw view of a qcow2 file (`made`: started by this call, not found running). */
  private async rawView(location: string, ro: boolean): Promise<{ path: string; made: boolean }> {
    const p = this.viewPaths(location, ro);
    if ((await this.viewPid(p.pid)) && (await isMounted(p.view))) return { path: p.view, made: false };
    await this.closeView(location, ro);
    await fsp.writeFile(p.view, '', { mode: 0o600 });
    const file = { driver: 'file', 'node-name': 'file', filename: location, 'read-only': ro, aio: 'threads' };
    const fmt = { driver: 'qcow2', 'node-name': 'vol', file: 'file', 'read-only': ro };
    const r = await run('qemu-storage-daemon', [
      '--blockdev', JSON.stringify(file), '--blockdev', JSON.stringify(fmt),
      '--export', `type=fuse,id=view,node-name=vol,mountpoint=${p.view},writable=${ro ? 'off' : 'on'}`,
      '--pidfile', p.pid, '--daemonize',
    ], { timeoutMs: 60_000 });
    if (r.code !== 0) {
      await fsp.rm(p.view, { force: true });
      const why = r.stderr.trim().split('\n').slice(-2).join(' ').slice(0, 300);
      if (/fuse/i.test(why) && /not (supported|compiled)|unknown|invalid parameter/i.test(why)) {
        throw new AttachError(`A qcow2 volume cannot be attached on this host: its qemu-storage-daemon has no FUSE export (${why}).`);
      }
      throw new Error(`qemu-storage-daemon for ${location}: ${why}`);
    }
    return { path: p.view, made: true };
  }

  private async closeView(location: string, ro: boolean): Promise<void> {
    const p = this.viewPaths(location, ro);
    const pid = await this.viewPid(p.pid);
    if (pid) {
      // SIGTERM: the daemon flushes and unmounts its export
      try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ }
      for (let i = 0; i < 200 && (await this.viewPid(p.pid)); i++) await sleep(50);
      if (await this.viewPid(p.pid)) {
        try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
        await sleep(100);
      }
    }
    if (await isMounted(p.view)) {
      // the daemon unmounts its export as it exits; one killed leaves it mounted (its endpoint gone)
      const u = await run('umount', [p.view]);
      if (u.code !== 0 && (await isMounted(p.view))) throw new Error(`umount ${p.view} (the raw view of ${location}): ${u.stderr.trim()}`);
    }
    for (const f of [p.view, p.pid, p.log]) await fsp.rm(f, { force: true });
  }
}
