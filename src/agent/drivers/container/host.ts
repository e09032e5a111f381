// Host plumbing for containers: network namespaces (batched through one
// `ip -batch` per burst), overlay mounts, and process liveness read from /proc.
import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Spawner } from '../../exec.ts';

export const NETNS_DIR = '/run/netns';

export async function exists(p: string): Promise<boolean> {
  return fsp.lstat(p).then(() => true, () => false);
}

/**
 * Creates network namespaces with loopback up. Requests arriving together are
 * run as one `ip -force -batch -` (one fork for many servers); each name is
 * then checked on its own.
 */
export class NetnsBatcher {
  private pending: Array<{ name: string; resolve: () => void; reject: (e: Error) => void }> = [];
  private timer: NodeJS.Timeout | null = null;
  private readonly sp: Spawner;
  private readonly tmpDir: string;
  private readonly windowMs: number;
  constructor(sp: Spawner, tmpDir: string, windowMs = 3) {
    this.sp = sp;
    this.tmpDir = tmpDir;
    this.windowMs = windowMs;
  }

  async ensure(name: string): Promise<void> {
    if (await exists(`${NETNS_DIR}/${name}`)) return;
    await new Promise<void>((resolve, reject) => {
      this.pending.push({ name, resolve, reject });
      if (this.pending.length >= 64) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.windowMs);
    });
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const batch = this.pending;
    this.pending = [];
    if (!batch.length) return;
    const names = [...new Set(batch.map((b) => b.name))];
    const script = names.map((n) => `netns add ${n}\n`).join('');
    const file = join(this.tmpDir, `netns-${randomBytes(6).toString('hex')}`);
    void (async () => {
      await fsp.writeFile(file, script);
      // loopback up with ip -n (setns only): unlike `ip netns exec`, it does not copy the mount table
      const r = await this.sp.run('sh', ['-c', 'ip -force -batch "$0"; for n do ip -n "$n" link set lo up || exit 1; done', file, ...names]);
      await fsp.rm(file, { force: true });
      for (const b of batch) {
        if (await exists(`${NETNS_DIR}/${b.name}`)) b.resolve();
        else b.reject(new Error(`ip netns add ${b.name} failed: ${r.stderr.trim()}`));
      }
    })().catch((err: Error) => {
      for (const b of batch) b.reject(err);
    });
  }
}

/**
 * FIFOs made ahead, many per `mkfifo` (on these machines a process costs
 * milliseconds, a FIFO nothing): each server's console input is one of them,
 * renamed into its directory. The pool has a directory of its own
 * (STATE_DIR/fifos), emptied at start.
 */
export class FifoPool {
  private readonly sp: Spawner;
  private readonly dir: string;
  private readonly batch: number;
  private ready: string[] = [];
  private filling: Promise<void> | null = null;
  constructor(sp: Spawner, dir: string, batch = 32) {
    this.sp = sp;
    this.dir = dir;
    this.batch = batch;
  }

  /** Drops what an earlier agent left made ahead. */
  async clear(): Promise<void> {
    this.ready = [];
    await fsp.rm(this.dir, { recursive: true, force: true });
  }

  /** Puts a FIFO (mode 0600) at `dest` unless something is there already. */
  async place(dest: string): Promise<void> {
    if (await exists(dest)) return;
    for (;;) {
      const f = this.ready.pop();
      if (f) {
        await fsp.rename(f, dest);
        return;
      }
      this.filling ??= this.fill().finally(() => {
        this.filling = null;
      });
      await this.filling;
    }
  }

  private async fill(): Promise<void> {
    await fsp.mkdir(this.dir, { recursive: true, mode: 0o700 });
    const names = Array.from({ length: this.batch }, () => join(this.dir, `fifo-${randomBytes(6).toString('hex')}`));
    await this.sp.runOk('mkfifo', ['-m', '600', ...names]);
    this.ready.push(...names);
  }
}

export async function deleteNetns(sp: Spawner, name: string): Promise<void> {
  if (!(await exists(`${NETNS_DIR}/${name}`))) return;
  const r = await sp.run('ip', ['netns', 'del', name]);
  if (r.code !== 0 && (await exists(`${NETNS_DIR}/${name}`))) {
    // a stale file whose bind mount is already gone
    await sp.run('umount', [`${NETNS_DIR}/${name}`]);
    await fsp.rm(`${NETNS_DIR}/${name}`, { force: true });
    if (await exists(`${NETNS_DIR}/${name}`)) throw new Error(`ip netns del ${name}: ${r.stderr.trim()}`);
  }
}

/** True when `path` is a mount point (its device differs from its parent's). */
export async function isMountPoint(path: string): Promise<boolean> {
  const [a, b] = await Promise.all([fsp.stat(path).catch(() => null), fsp.stat(dirname(path)).catch(() => null)]);
  return !!a && !!b && (a.dev !== b.dev || a.ino === b.ino);
}

/** overlayfs mount options: top layer first (lowers are given bottom first). */
export function overlayOptions(lowers: string[], upper: string, work: string): string {
  const opts = `lowerdir=${[...lowers].reverse().join(':')},upperdir=${upper},workdir=${work},redirect_dir=off,index=off,metacopy=off`;
  if (opts.length > 4000) throw new Error('the image has too many layers for one overlay mount');
  return opts;
}

export async function unmount(sp: Spawner, target: string): Promise<void> {
  for (let i = 0; i < 3 && (await isMountPoint(target)); i++) {
    const r = await sp.run('umount', [target]);
    if (r.code !== 0 && i === 2) await sp.runOk('umount', ['-l', target]);
  }
}

/** Reads /proc/<pid>/stat: the state letter and the start time (clock ticks), or null when gone. */
export async function procStat(pid: number): Promise<{ state: string; start: number } | null> {
  const text = await fsp.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  if (!text) return null;
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: rest[0]!, start: Number(rest[19]) };
}

/** True while the process that started at `start` is alive (zombies count as dead). */
export async function alive(pid: number, start: number): Promise<boolean> {
  if (!pid) return false;
  const s = await procStat(pid);
  return !!s && s.start === start && s.state !== 'Z' && s.state !== 'X';
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
