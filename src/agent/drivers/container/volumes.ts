// Volumes in containers (ServerSpec.volumes): each attachment's loop device
// (../volume-attach.ts, shared with the VM driver) becomes a block device
// node at the attachment's `device` inside the container, allowed in its
// device cgroup, and with `mount_path` its file system mounted there.
//
// A container started with volumes has them in its OCI spec (spec.ts:
// linux.devices, the device cgroup's allow rules, and the mounts; a user
// namespace mounts none, so those are made as below once it runs). A running
// container gets them hot, from the host, without running anything of the
// container's (its binaries are not to be trusted by root):
//   device cgroup  v1: `b MAJ:MIN rw` written to its devices.allow (runc's
//                  cgroup path); v2 controls devices with an eBPF program
//                  runc loads at start, so a running container on v2 takes a
//                  volume at its next start (the attachment says so);
//   node           mknod under /proc/<pid>/root/dev (the container's /dev,
//                  a tmpfs; `device` is one name under /dev); not in a
//                  container with its own user namespace (its /dev is that
//                  namespace's: no node of the host's root can be made or
//                  opened there): it gets the mount only, made from a node
//                  put on its root overlay for the moment;
//   mount          util-linux `mount -N /proc/<pid>/ns/mnt -o X-mount.mkdir`:
//                  the host's mount binary enters the container's mount
//                  namespace first, then makes the missing directories of
//                  the mount point and mounts, so every path is resolved in
//                  the container's own root: a component the container
//                  swaps for a symbolic link to a host path meanwhile leads
//                  into the container, never to the host (nothing is made
//                  through /proc/<pid>/root, where an absolute link would
//                  resolve in the agent's root). A mount path through a
//                  symbolic link is refused (looked at first, reading only,
//                  and a mount that landed elsewhere all the same undone).
// Detach: umount the same way, every mount of the volume in the container
// wherever it sits now (a busy file system is retried until
// UMOUNT_TIMEOUT_MS, never forced or lazily detached: the attachment is then
// `failed` and stays), the node removed, the rule denied, the loop device
// released. A stopped or deleted container holds no mount (its namespace is
// gone): only the loop devices are released.
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { DesiredServer, ServerVolumeSpec } from '../../../compute/engine/protocol.ts';
import { run } from '../../exec.ts';
import { AttachError, type VolumeAttacher, type VolumeRecord } from '../volume-attach.ts';
import type { ContainerVolume } from './spec.ts';
import { usernsWanted } from './userns.ts';

/** How long a detach waits for a busy file system to be let go. */
export const UMOUNT_TIMEOUT_MS = 15_000;
const DEVICE = /^\/dev\/[a-z][a-z0-9]{0,31}$/;
const MOUNT_PATH = /^(\/[^/\0]+)+$/;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** glibc's makedev: what stat's rdev holds for a device number. */
const makedev = (major: number, minor: number) => (minor & 0xff) + (major & 0xfff) * 0x100 + (minor & ~0xff) * 0x1000;

function checkSpec(v: ServerVolumeSpec): void {
  if (!DEVICE.test(v.device)) throw new AttachError(`The device name ${v.device} cannot be used in a container (one name under /dev, such as /dev/vdb).`);
  if (v.mount_path !== undefined && v.mount_path !== null) {
    if (!MOUNT_PATH.test(v.mount_path) || v.mount_path.split('/').some((c) => c === '.' || c === '..') || /^\/(proc|sys|dev)(\/|$)/.test(v.mount_path) || v.mount_path === '/') {
      throw new AttachError(`The mount path ${v.mount_path} cannot be used (an absolute path without . or .., outside /proc, /sys and /dev).`);
    }
  }
}

/** The file system on a device (blkid's probe), null when none is found. */
async function fsType(dev: string): Promise<string | null> {
  const r = await run('blkid', ['-p', '-o', 'value', '-s', 'TYPE', dev], { timeoutMs: 30_000 });
  const t = r.stdout.trim();
  return r.code === 0 && /^[a-z0-9_]+$/.test(t) ? t : null;
}

export interface RunningContainer {
  pid: number;
  /** The container's v1 devices cgroup directory (runc's state), null on cgroup v2. */
  devicesCgroup: string | null;
}

export class ContainerVolumes {
  private readonly attacher: VolumeAttacher;
  private readonly log: Logger;

  constructor(attacher: VolumeAttacher, log: Logger) {
    this.attacher = attacher;
    this.log = log;
  }

  /**
   * The devices of the spec's attachments (made when missing); what cannot be
   * attached is recorded `failed` with the reason. Records of attachments
   * that left the spec stay (sync detaches them) unless `release` (nothing
   * runs: their loop devices go now).
   */
  async prepare(d: DesiredServer, records: VolumeRecord[], release: boolean): Promise<{ volumes: ContainerVolume[]; records: VolumeRecord[] }> {
    const volumes: ContainerVolume[] = [];
    const keep: VolumeRecord[] = [];
    for (const v of d.volumes ?? []) {
      try {
        checkSpec(v);
        const dev = await this.attacher.acquire(v, `container:${d.id}`);
        let fstype: string | null = null;
        if (v.mount_path) {
          fstype = await fsType(dev.path);
          if (!fstype) throw new AttachError(`The volume has no file system to mount at ${v.mount_path} (make one first, or attach it without a mount path).`);
        }
        volumes.push({ spec: v, dev, fstype });
        keep.push({ spec: v, state: 'attached' });
      } catch (err) {
        // the attachment's failure, not the server's (a host failure too: logged, and tried again at the re-checks)
        if (!(err instanceof AttachError)) this.log.warn({ server: d.id, attachment: v.attachment_id, err: (err as Error).message }, 'volume device failed');
        keep.push({ spec: v, state: 'failed', message: err instanceof AttachError ? err.message : `The volume could not be attached on its host: ${(err as Error).message}` });
      }
    }
    for (const r of records) {
      if (keep.some((k) => k.spec.attachment_id === r.spec.attachment_id)) continue;
      if (release) await this.attacher.release(r.spec.attachment_id);
      else keep.push(r);
    }
    return { volumes, records: keep };
  }

  /**
   * A running container's volumes to `volumes` (prepared): what is missing
   * is attached hot, what left the spec detached. Returns the records; a
   * detach that timed out leaves its record `failed` and `stuck` says why.
   */
  async sync(d: DesiredServer, c: RunningContainer, volumes: ContainerVolume[], records: VolumeRecord[]): Promise<{ records: VolumeRecord[]; stuck: string | null }> {
    const userns = usernsWanted(d.flavor);
    let out = [...records];
    const set = (r: VolumeRecord) => { out = out.map((x) => (x.spec.attachment_id === r.spec.attachment_id ? r : x)); };
    let stuck: string | null = null;
    for (const r of records) {
      if ((d.volumes ?? []).some((v) => v.attachment_id === r.spec.attachment_id)) continue;
      let why: string | null;
      try {
        why = await this.detach(c, r);
        if (!why) await this.attacher.release(r.spec.attachment_id);
      } catch (err) {
        this.log.warn({ server: d.id, attachment: r.spec.attachment_id, err: (err as Error).message }, 'volume detach failed');
        why = `The volume could not be detached on its host: ${(err as Error).message}`;
      }
      if (why) {
        set({ spec: r.spec, state: 'failed', message: why });
        stuck = why;
        continue;
      }
      out = out.filter((x) => x.spec.attachment_id !== r.spec.attachment_id);
    }
    for (const v of volumes) {
      try {
        await this.attach(c, v, userns);
      } catch (err) {
        set({ spec: v.spec, state: 'failed', message: err instanceof AttachError ? err.message : `The volume could not be attached: ${(err as Error).message}` });
        if (!(err instanceof AttachError)) this.log.warn({ server: d.id, attachment: v.spec.attachment_id, err: (err as Error).message }, 'volume attach failed');
      }
    }
    return { records: out, stuck };
  }

  private async cgroupRule(c: RunningContainer, dev: { major: number; minor: number }, access: string, allow: boolean): Promise<void> {
    if (!c.devicesCgroup) {
      if (allow) throw new AttachError('This host controls devices with cgroup v2: the volume is attached to the container at its next start (stop and start the server).');
      return;
    }
    await fsp.writeFile(join(c.devicesCgroup, allow ? 'devices.allow' : 'devices.deny'), `b ${dev.major}:${dev.minor} ${access}`);
  }

  /** The container's mounts (its mountinfo, paths as the container sees them): mount id, mount point, source. */
  private async mounts(pid: number): Promise<Array<{ id: string; at: string; source: string }>> {
    const text = await fsp.readFile(`/proc/${pid}/mountinfo`, 'utf8').catch(() => '');
    const unesc = (x: string) => x.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    return text.split('\n').filter(Boolean).map((l) => {
      const f = l.split(' ');
      const rest = f.slice(f.indexOf('-') + 1);
      return { id: f[0]!, at: unesc(f[4] ?? ''), source: unesc(rest[1] ?? '') };
    });
  }

  /** Whether `path` is a mount point in the container. */
  private async mounted(pid: number, path: string): Promise<boolean> {
    return (await this.mounts(pid)).some((m) => m.at === path);
  }

  private async attach(c: RunningContainer, v: ContainerVolume, userns: boolean): Promise<void> {
    const root = `/proc/${c.pid}/root`;
    const access = v.spec.read_only ? 'r' : 'rw';
    await this.cgroupRule(c, v.dev, access, true);
    const mp = v.spec.mount_path;
    const want = makedev(v.dev.major, v.dev.minor);
    if (userns) {
      // the container's /dev is a tmpfs of its user namespace: a node there cannot be made by the host's
      // root (no mapping) and would not open (such a mount is nodev); runc binds nodes from the host instead
      if (!mp) throw new AttachError('A container with its own user namespace (stratus:userns) cannot be given a block device node yet: attach the volume with a mount path (the volume_mount metadata) to have its file system mounted.');
    } else {
      const node = `${root}${v.spec.device}`;
      const st = await fsp.lstat(node).catch(() => null);
      if (!st || !st.isBlockDevice() || st.rdev !== want) {
        if (st) await fsp.rm(node, { force: true });
        const r = await run('mknod', ['-m', '0660', node, 'b', String(v.dev.major), String(v.dev.minor)]);
        if (r.code !== 0) throw new Error(`mknod ${v.spec.device}: ${r.stderr.trim()}`);
      }
    }
    if (!mp || !v.fstype || (await this.mounted(c.pid, mp))) return;
    // a first look from the host for a clear refusal of a symbolic link, reading only, up to the first component
    // missing (what it finds decides nothing else: mount resolves the path in the container's namespace)
    let at = root;
    for (const part of mp.split('/').filter(Boolean)) {
      at = `${at}/${part}`;
      const st = await fsp.lstat(at).catch(() => null);
      if (!st?.isDirectory()) {
        if (st?.isSymbolicLink()) throw new AttachError(`The mount path ${mp} goes through a symbolic link in the container.`);
        break;
      }
    }
    // a user namespace's container mounts from a node made for the moment on its root (an overlay mounted
    // outside the user namespace, where a node opens), removed again at once
    const source = userns ? `/.stratus-volume-${v.dev.major}-${v.dev.minor}` : v.spec.device;
    if (userns) {
      await fsp.rm(`${root}${source}`, { force: true });
      const n = await run('mknod', ['-m', '0600', `${root}${source}`, 'b', String(v.dev.major), String(v.dev.minor)]);
      if (n.code !== 0) throw new Error(`mknod ${source}: ${n.stderr.trim()}`);
    }
    const ns = `/proc/${c.pid}/ns/mnt`;
    const before = new Set((await this.mounts(c.pid)).map((m) => m.id));
    try {
      // X-mount.mkdir: the missing directories made by mount once in the container's namespace (libmount's
      // option, not passed to the kernel)
      const r = await run('mount', ['-N', ns, '-t', v.fstype, '-o', `X-mount.mkdir=0755,nosuid,nodev${v.spec.read_only ? ',ro' : ''}`, source, mp], { timeoutMs: 60_000 });
      if (r.code !== 0) throw new AttachError(`The volume's file system could not be mounted at ${mp}: ${r.stderr.trim().split('\n').pop()}`);
    } finally {
      if (userns) await fsp.rm(`${root}${source}`, { force: true });
    }
    // a mount path through a symbolic link (or a component swapped for one meanwhile) sent the mount elsewhere in
    // the container: undone, and refused
    const made = (await this.mounts(c.pid)).filter((m) => !before.has(m.id) && m.source === source);
    if (!made.some((m) => m.at === mp)) {
      for (const m of made.reverse()) {
        const u = await run('umount', ['-N', ns, m.at], { timeoutMs: 60_000 });
        if (u.code !== 0) this.log.warn({ pid: c.pid, at: m.at, err: u.stderr.trim() }, 'a volume mounted through a symbolic link could not be unmounted');
      }
      throw new AttachError(`The mount path ${mp} goes through a symbolic link in the container.`);
    }
  }

  /** Detaches one attachment from the running container; a message when its file system stayed busy. */
  private async detach(c: RunningContainer, r: VolumeRecord): Promise<string | null> {
    const root = `/proc/${c.pid}/root`;
    const mp = r.spec.mount_path;
    const dev = await this.attacher.device(r.spec.attachment_id);
    // every mount of the volume in the container, wherever it is now (a container may rename a directory above
    // its mount point): by the source it was mounted from (the node, the host's loop device at start, a user
    // namespace's node of the moment), and whatever is at the mount path
    const sources = new Set([r.spec.device, ...(dev ? [dev.path, `/.stratus-volume-${dev.major}-${dev.minor}`] : [])]);
    const ours = async () => (await this.mounts(c.pid)).filter((m) => m.at === mp || sources.has(m.source)).map((m) => m.at).reverse();
    const until = Date.now() + UMOUNT_TIMEOUT_MS;
    for (let left = await ours(); left.length; left = await ours()) {
      let why = '';
      let moved = false;
      for (const at of left) {
        const u = await run('umount', ['-N', `/proc/${c.pid}/ns/mnt`, at], { timeoutMs: 60_000 });
        if (u.code !== 0) why = u.stderr.trim().split('\n').pop() ?? '';
        // the container renamed a directory above it between the read of its mounts and the umount: read again at once
        if (u.code !== 0 && /No such file or directory/.test(u.stderr)) moved = true;
      }
      if (!(await ours()).length) break;
      if (Date.now() >= until) {
        return `The volume's file system at ${left.join(', ')} is in use in the server and was not unmounted within ${UMOUNT_TIMEOUT_MS / 1000} s; the detach is retried (${why}).`;
      }
      await sleep(moved ? 10 : 500);
    }
    if (DEVICE.test(r.spec.device)) {
      const node = `${root}${r.spec.device}`;
      const st = await fsp.lstat(node).catch(() => null);
      if (st?.isBlockDevice() && (!dev || st.rdev === makedev(dev.major, dev.minor))) await fsp.rm(node, { force: true });
    }
    if (dev) await this.cgroupRule(c, dev, 'rwm', false);
    return null;
  }
}
