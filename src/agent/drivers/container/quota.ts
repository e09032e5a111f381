// The flavor's disk size as a limit on the container's writable layer.
//
// This kernel has no XFS (CONFIG_XFS_QUOTA) nor ext4 (QFMT_V2) quotas, so the
// limit is a btrfs qgroup: one sparse btrfs file per host
// (STATE_DIR/disks.img), loop-mounted at STATE_DIR/disks with quotas on, made
// the first time a server with a disk size boots (mkfs once per host, not per
// boot), and one subvolume per such server (disks/<id>, holding the overlay's
// upper/ and work/; servers/<id>/upper and work link there) whose qgroup
// limit is the flavor's disk. A write past it fails with EDQUOT. A boot costs
// a subvolume and a limit (two short btrfs calls). Flavor disk 0 means no
// limit (Nova's disk=0 root disk takes the image's size; a container has no
// fixed size): upper/ stays a plain directory of the host's file system, as
// before. The pool is one host mount for all servers (never per server: every
// new mount namespace copies the host's mount table), mounted with
// discard=async so that freed blocks go back to the host's file system.
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import type { Spawner } from '../../exec.ts';
import { exists, isMountPoint } from './host.ts';

const GIB = 2 ** 30;

export function diskLimitBytes(flavorDiskGb: number): number {
  return flavorDiskGb > 0 ? Math.round(flavorDiskGb * GIB) : 0;
}

/**
 * Mounts the loop-backed btrfs `image` at `mount`, making the image the first
 * time (sparse, as large as the host's file system; mkfs under a temporary
 * name, so a crash never leaves a half-made image); an agent restart finds it
 * mounted, or mounts the file again. The container disks' pool and the volume
 * backend's reflink pool (drivers/volume/file.ts) are made this way.
 */
export async function openLoopBtrfs(sp: { runOk(cmd: string, args: string[]): Promise<unknown> }, image: string, mount: string, label: string): Promise<void> {
  await fsp.mkdir(mount, { recursive: true, mode: 0o700 });
  if (await isMountPoint(mount)) return;
  if (!(await exists(image))) {
    const fs = await fsp.statfs(join(mount, '..'));
    const tmp = `${image}.tmp`;
    await fsp.rm(tmp, { force: true });
    await sp.runOk('truncate', ['-s', String(Math.max(fs.blocks * fs.bsize, 2 * GIB)), tmp]);
    await sp.runOk('mkfs.btrfs', ['-q', '-L', label, tmp]);
    await fsp.rename(tmp, image);
  }
  await sp.runOk('mount', ['-t', 'btrfs', '-o', 'loop,discard=async', image, mount]);
}

export class DiskPool {
  readonly image: string;
  readonly mount: string;
  private readonly sp: Spawner;
  private ready: Promise<void> | null = null;
  /** The limit applied per server in this process (a restart applies it again once). */
  private readonly applied = new Map<string, number>();

  constructor(stateDir: string, sp: Spawner) {
    this.image = join(stateDir, 'disks.img');
    this.mount = join(stateDir, 'disks');
    this.sp = sp;
  }

  /** Mounts the pool, making it the first time; an agent restart finds it mounted, or mounts the file again. */
  private open(): Promise<void> {
    this.ready ??= (async () => {
      await openLoopBtrfs(this.sp, this.image, this.mount, 'stratus-disks');
      await this.sp.runOk('btrfs', ['quota', 'enable', this.mount]);
    })().catch((err: Error) => {
      this.ready = null;
      throw err;
    });
    return this.ready;
  }

  private subvolume(id: string): string {
    return join(this.mount, id);
  }

  /**
   * Makes the server's upper/ and work/ (under `dir`): in its own subvolume
   * with the flavor's limit when it has one, plain directories otherwise.
   * Links missing beside an existing subvolume mean a rebuild (the driver
   * removed upper/ and work/) or a crash half-way through: a fresh subvolume.
   */
  async ensure(id: string, dir: string, limitBytes: number): Promise<void> {
    const upper = join(dir, 'upper');
    const work = join(dir, 'work');
    const linked = await fsp.lstat(upper).then((s) => s.isSymbolicLink(), () => null);
    if (limitBytes <= 0 || linked === false) {
      // no limit, or a server that started without one (a resize applies at its next rebuild)
      if (linked) await this.setLimit(id, 0);
      for (const d of [upper, work]) await fsp.mkdir(d, { recursive: true, mode: 0o755 });
      return;
    }
    await this.open();
    const sub = this.subvolume(id);
    if (!linked) {
      if (await exists(sub)) await this.remove(id);
      await this.sp.runOk('btrfs', ['-q', 'subvolume', 'create', sub]);
      for (const d of ['upper', 'work']) await fsp.mkdir(join(sub, d), { mode: 0o755 });
      this.applied.delete(id);
      await this.setLimit(id, limitBytes);
      await fsp.rm(work, { recursive: true, force: true });
      await fsp.symlink(join(sub, 'work'), work);
      await fsp.symlink(join(sub, 'upper'), upper);
      return;
    }
    await this.setLimit(id, limitBytes);
  }

  private async setLimit(id: string, limitBytes: number): Promise<void> {
    if (this.applied.get(id) === limitBytes) return;
    await this.open();
    await this.sp.runOk('btrfs', ['qgroup', 'limit', limitBytes > 0 ? String(limitBytes) : 'none', this.subvolume(id)]);
    this.applied.set(id, limitBytes);
  }

  /** Deletes the server's subvolume; the kernel drops its qgroup once the subvolume is cleaned up. */
  async remove(id: string): Promise<void> {
    this.applied.delete(id);
    const sub = this.subvolume(id);
    if (!(await exists(this.image)) || !(await exists(sub))) return;
    await this.open();
    const r = await this.sp.run('btrfs', ['-q', 'subvolume', 'delete', sub]);
    if (r.code !== 0 && (await exists(sub))) throw new Error(`btrfs subvolume delete ${sub}: ${r.stderr.trim().slice(0, 300)}`);
  }

  /**
   * Deletes subvolumes of servers the host no longer has (no directory under
   * `serversDir`: it is made before the subvolume and removed after it), and
   * qgroups left by deleted subvolumes.
   */
  async sweep(serversDir: string): Promise<void> {
    if (!(await exists(this.image))) return;
    await this.open();
    for (const name of await fsp.readdir(this.mount)) {
      if (!(await exists(join(serversDir, name)))) await this.remove(name);
    }
    const r = await this.sp.run('btrfs', ['qgroup', 'show', '--raw', '-r', this.mount]);
    for (const line of r.stdout.split('\n')) {
      const m = /^(0\/\d+)\s.*<stale>\s*$/.exec(line.trim());
      // still busy while the cleaner works on the subvolume: the next sweep tries again
      if (m && m[1] !== '0/5') await this.sp.run('btrfs', ['qgroup', 'destroy', m[1]!, this.mount]);
    }
  }
}
