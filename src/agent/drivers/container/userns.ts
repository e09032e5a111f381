// The optional user namespace of a container (flavor extra spec
// `stratus:userns=true`): root in the container is an unprivileged id on the
// host. Every such container on a host shares one fixed subordinate range,
// container ids 0..65535 ↔ host ids USERNS_HOST_BASE.., as Docker's
// userns-remap does.
//
// This kernel has idmapped mounts but Debian 12's tools (util-linux 2.38, runc
// 1.1) cannot make them, so the files the container sees are owned by the
// mapped ids for real: each image layer gets one shifted copy per host
// (STATE_DIR/userns/layers/<diff id>, made once, shared by every user-namespaced
// server), and the server's upper/ belongs to the mapped root. runc, running
// as the mapped root, must reach the root and the config drive: the state and
// servers directories let others traverse (0711, as Docker's), the server's
// directory lets the mapped root's group in (root:<base> 0710).
import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { DesiredServer } from '../../../compute/engine/protocol.ts';
import type { Spawner } from '../../exec.ts';

export const USERNS_EXTRA_SPEC = 'stratus:userns';
/** First host id of the range; above what useradd hands out as subordinate ids (100000 + 65536 per user). */
export const USERNS_HOST_BASE = 1_000_000_000;
export const USERNS_SIZE = 65536;

export function usernsWanted(flavor: DesiredServer['flavor']): boolean {
  return /^(true|yes|1|on)$/i.test((flavor.extraSpecs ?? {})[USERNS_EXTRA_SPEC] ?? '');
}

/** The OCI spec's uidMappings/gidMappings. */
export function idMappings(): Array<{ containerID: number; hostID: number; size: number }> {
  return [{ containerID: 0, hostID: USERNS_HOST_BASE, size: USERNS_SIZE }];
}

/** Moves every owner in a tree by `delta` (ids outside the container's range stay as they are). */
export async function shiftTree(root: string, delta: number): Promise<void> {
  const shift = (id: number) => {
    const to = id + delta;
    return to >= 0 && (delta > 0 ? id < USERNS_SIZE : id >= USERNS_HOST_BASE) ? to : id;
  };
  const visit = async (p: string): Promise<void> => {
    const st = await fsp.lstat(p);
    const uid = shift(st.uid);
    const gid = shift(st.gid);
    if (uid !== st.uid || gid !== st.gid) {
      await fsp.lchown(p, uid, gid);
      // chown clears set-user-ID and set-group-ID bits of files: put them back
      if (!st.isSymbolicLink() && !st.isDirectory() && st.mode & 0o6000) await fsp.chmod(p, st.mode & 0o7777);
    }
    if (st.isDirectory()) for (const name of await fsp.readdir(p)) await visit(join(p, name));
  };
  await visit(root);
}

/** The range's owner of the tree root: shifted when owned by an id of the range. */
async function shiftedNow(p: string): Promise<boolean> {
  const st = await fsp.stat(p);
  return st.uid >= USERNS_HOST_BASE && st.uid < USERNS_HOST_BASE + USERNS_SIZE;
}

export class Userns {
  private readonly stateDir: string;
  private readonly serversDir: string;
  private readonly root: string;
  private readonly sp: Spawner;
  private readonly flight = new Map<string, Promise<string>>();
  private traversable: Promise<void> | null = null;

  constructor(stateDir: string, serversDir: string, sp: Spawner) {
    this.stateDir = stateDir;
    this.serversDir = serversDir;
    this.root = join(stateDir, 'userns', 'layers');
    this.sp = sp;
  }

  /** The shifted copies of an image's layers (bottom first), made the first time they are asked for. */
  lowers(layerDirs: string[]): Promise<string[]> {
    return Promise.all(layerDirs.map((d) => this.shifted(d)));
  }

  private shifted(layerDir: string): Promise<string> {
    // layers/<diff id>/fs → userns/layers/<diff id>
    const dest = join(this.root, basename(dirname(layerDir)));
    let p = this.flight.get(dest);
    if (!p) {
      p = (async () => {
        if (await fsp.stat(dest).then((s) => s.isDirectory(), () => false)) return dest;
        await fsp.mkdir(this.root, { recursive: true, mode: 0o700 });
        const tmp = join(this.root, `.shift-${randomBytes(6).toString('hex')}`);
        try {
          // cp -a keeps overlay whiteouts (0:0 devices) and opaque-directory xattrs
          await this.sp.runOk('cp', ['-a', '--reflink=auto', layerDir, tmp]);
          await shiftTree(tmp, USERNS_HOST_BASE);
          await fsp.rename(tmp, dest);
        } finally {
          await fsp.rm(tmp, { recursive: true, force: true });
        }
        return dest;
      })().finally(() => this.flight.delete(dest));
      this.flight.set(dest, p);
    }
    return p;
  }

  /**
   * Makes the server's writable layer belong to the ids the container runs
   * as (shifting what is there when the server switched between the two), and
   * lets the mapped root reach its root and config drive.
   */
  async prepare(dir: string, upper: string, wanted: boolean): Promise<void> {
    if ((await shiftedNow(upper)) !== wanted) await shiftTree(upper, wanted ? USERNS_HOST_BASE : -USERNS_HOST_BASE);
    if (!wanted) return;
    this.traversable ??= (async () => {
      for (const d of [this.stateDir, this.serversDir]) {
        const st = await fsp.stat(d);
        if (!(st.mode & 0o001)) await fsp.chmod(d, (st.mode & 0o7777) | 0o011);
      }
    })().catch((err: Error) => {
      this.traversable = null;
      throw err;
    });
    await this.traversable;
    await fsp.chown(dir, 0, USERNS_HOST_BASE);
    await fsp.chmod(dir, 0o710);
  }

  /**
   * Lets the mapped root bind ports below 1024 and ping in the server's network
   * namespace, which belongs to the host's user namespace (where it holds no
   * capability); Docker sets the same two sysctls.
   */
  async netnsSysctls(netnsPath: string): Promise<void> {
    await this.sp.runOk('nsenter', [`--net=${netnsPath}`, 'sh', '-c',
      'echo 0 >/proc/sys/net/ipv4/ip_unprivileged_port_start && echo "0 2147483647" >/proc/sys/net/ipv4/ping_group_range']);
  }

  /** Drops the shifted layers whose layer the image store no longer holds. */
  async prune(): Promise<void> {
    if (this.flight.size) return;
    for (const name of await fsp.readdir(this.root).catch(() => [] as string[])) {
      const source = join(this.stateDir, 'layers', name, 'fs');
      if (name.startsWith('.') || !(await fsp.stat(source).then(() => true, () => false))) {
        await fsp.rm(join(this.root, name), { recursive: true, force: true });
      }
    }
  }
}
