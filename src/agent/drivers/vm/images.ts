// The VM driver's per-host image cache: each Glance image is downloaded once
// (images/<id>/disk + image.json), checked with `qemu-img info`, and used in
// place as the backing file of every server's overlay (raw or qcow2) or as a
// CD-ROM (iso). The format is Glance's disk_format, never qemu's guess: a
// "raw" image that is really a qcow2 naming a host file as its backing file
// must not be opened as qcow2. A qcow2 image with a backing file or an external
// data file of its own is refused for the same reason (qemu opens its disks as
// root, before -runas: such a file would read any host file). `qemu-img info`
// runs under Nova's limits (1 GiB of address space, 30 s of CPU), as a crafted
// image can make it parse at length. Directories appear by atomic rename, so a crash
// leaves only tmp/, which init() empties.
import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../exec.ts';

export type VmImageFormat = 'raw' | 'qcow2' | 'iso';

export interface CachedImage {
  id: string;
  path: string;
  format: VmImageFormat;
  /** The disk's size as the guest sees it (bytes). */
  virtualSize: number;
}

export class ImageFormatError extends Error {}

/** What `qemu-img info` runs under (Nova's QEMU_IMG_LIMITS): 1 GiB of address space, 30 s of CPU. */
export const QEMU_IMG_LIMITS = ['--as=1073741824', '--cpu=30'];

interface QemuImgInfo {
  'virtual-size': number;
  'backing-filename'?: string;
  format: string;
  'format-specific'?: { type: string; data?: { 'data-file'?: string } };
}

/**
 * Checks a downloaded image file as `format` (Glance's disk_format, never
 * qemu's guess) under QEMU_IMG_LIMITS and returns its virtual size (bytes):
 * a file that is not of that format, or a qcow2 naming a backing file or an
 * external data file of its own, is an ImageFormatError. The VM driver's
 * cache and the volume backends (a volume from an image) both check with it.
 */
export async function inspectDiskImage(path: string, format: 'raw' | 'qcow2'): Promise<number> {
  const info = await run('prlimit', [...QEMU_IMG_LIMITS, 'qemu-img', 'info', '--output=json', '-f', format, path], { timeoutMs: 30_000 });
  if (info.code !== 0) throw new ImageFormatError(`not a ${format} image: ${info.stderr.trim().slice(0, 300)}`);
  const j = JSON.parse(info.stdout) as QemuImgInfo;
  if (j['backing-filename']) throw new ImageFormatError('the image names a backing file of its own');
  if (j['format-specific']?.data?.['data-file']) throw new ImageFormatError('the image names an external data file');
  return j['virtual-size'];
}

export class VmImageCache {
  readonly root: string;
  private readonly inflight = new Map<string, Promise<CachedImage>>();

  constructor(root: string) {
    this.root = root;
  }

  async init(): Promise<void> {
    await fsp.mkdir(join(this.root, 'images'), { recursive: true, mode: 0o755 });
    await fsp.rm(join(this.root, 'tmp'), { recursive: true, force: true });
    await fsp.mkdir(join(this.root, 'tmp'), { recursive: true, mode: 0o700 });
  }

  tmpPath(what: string): string {
    return join(this.root, 'tmp', `${what}-${randomBytes(6).toString('hex')}`);
  }

  /** The image, downloaded and checked on first use. */
  ensure(image: { id: string; disk_format: string | null; container_format: string | null }, fetch: (dest: string) => Promise<void>): Promise<CachedImage> {
    const dir = join(this.root, 'images', image.id);
    let p = this.inflight.get(image.id);
    if (!p) {
      p = (async () => {
        const known = await fsp.readFile(join(dir, 'image.json'), 'utf8').then((t) => JSON.parse(t) as CachedImage, () => null);
        if (known) {
          await fsp.utimes(join(dir, 'image.json'), new Date(), new Date()).catch(() => undefined);
          return { ...known, path: join(dir, 'disk') };
        }
        // an AMI's disk is raw
        const format = image.disk_format === 'ami' ? 'raw' : image.disk_format;
        if (format !== 'raw' && format !== 'qcow2' && format !== 'iso') throw new ImageFormatError(`disk_format ${format ?? 'none'} cannot boot a VM here (raw, qcow2 or iso)`);
        if (image.container_format && !['bare', 'ovf', 'ami'].includes(image.container_format)) throw new ImageFormatError(`container_format ${image.container_format} is not a VM disk (bare)`);
        const tmp = this.tmpPath(image.id);
        await fsp.mkdir(tmp, { mode: 0o755 });
        try {
          await fetch(join(tmp, 'disk'));
          await fsp.chmod(join(tmp, 'disk'), 0o644);
          const c: CachedImage = { id: image.id, path: join(dir, 'disk'), format, virtualSize: await inspectDiskImage(join(tmp, 'disk'), format === 'iso' ? 'raw' : format) };
          await fsp.writeFile(join(tmp, 'image.json'), JSON.stringify(c));
          await fsp.rename(tmp, dir).catch(async (err: NodeJS.ErrnoException) => {
            // another agent process made it first
            if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
          });
          return c;
        } finally {
          await fsp.rm(tmp, { recursive: true, force: true });
        }
      })();
      this.inflight.set(image.id, p);
      void p.finally(() => this.inflight.delete(image.id)).catch(() => undefined);
    }
    return p;
  }

  /** Removes the images no server uses that were not used for `keepMs`. */
  async prune(inUse: Set<string>, keepMs: number): Promise<string[]> {
    const gone: string[] = [];
    for (const id of await fsp.readdir(join(this.root, 'images')).catch(() => [] as string[])) {
      if (inUse.has(id) || this.inflight.has(id)) continue;
      const used = await fsp.stat(join(this.root, 'images', id, 'image.json')).then((s) => s.mtimeMs, () => 0);
      if (Date.now() - used < keepMs) continue;
      await fsp.rm(join(this.root, 'images', id), { recursive: true, force: true });
      gone.push(id);
    }
    return gone;
  }
}
