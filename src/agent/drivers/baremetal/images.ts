// The images a conductor serves its nodes' ramdisks: each fetched once
// through the agent's image download, its bytes checked against Glance's
// hash (os_hash_algo/os_hash_value, or the md5 checksum), a qcow2 converted
// to raw (qemu-img, with the format given, never probed), and the raw bytes'
// size and sha256 kept beside it (the ramdisk checks what it wrote against
// them). Files under <state>/baremetal/images/: <image id>.raw and
// <image id>.json; a download in progress is a .part removed at start.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { BaremetalErrorCode, type DeployImage } from '../../../baremetal/protocol.ts';
import { transient, userError } from '../../errors.ts';
import { runOk } from '../../exec.ts';
import type { KeyedLock } from '../../../common/keyed-lock.ts';

export interface RawImage { path: string; size: number; sha256: string }

const HASHES = new Set(['md5', 'sha1', 'sha224', 'sha256', 'sha384', 'sha512']);

export async function fileHash(path: string, algo: string): Promise<string> {
  const h = createHash(algo);
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

export class ImageCache {
  readonly dir: string;
  private readonly fetchImage: (id: string, dest: string) => Promise<void>;
  private readonly locks: KeyedLock;

  constructor(dir: string, fetchImage: (id: string, dest: string) => Promise<void>, locks: KeyedLock) {
    this.dir = dir;
    this.fetchImage = fetchImage;
    this.locks = locks;
  }

  async start(): Promise<void> {
    await fsp.mkdir(this.dir, { recursive: true, mode: 0o700 });
    for (const f of await fsp.readdir(this.dir)) if (f.includes('.part')) await fsp.rm(join(this.dir, f), { force: true });
  }

  /** The image as raw bytes, fetched and converted when not here yet. */
  async raw(img: DeployImage): Promise<RawImage> {
    if (!/^[A-Za-z0-9-]{1,64}$/.test(img.image_id)) throw userError(BaremetalErrorCode.imageUnavailable, 'bad image id');
    return this.locks.run([`image:${img.image_id}`], async () => {
      const path = join(this.dir, `${img.image_id}.raw`);
      const meta = join(this.dir, `${img.image_id}.json`);
      const have = await fsp.readFile(meta, 'utf8').then((t) => JSON.parse(t) as RawImage & { hash_value: string }).catch(() => null);
      if (have && have.hash_value === img.hash_value && (await fsp.stat(path).catch(() => null))?.size === have.size) return { path, size: have.size, sha256: have.sha256 };
      const part = join(this.dir, `${img.image_id}.part`);
      try {
        await this.fetchImage(img.image_id, part).catch((err: Error) => { throw transient(BaremetalErrorCode.imageUnavailable, `cannot download image ${img.image_id}: ${err.message}`, err); });
        const algo = img.hash_algo.toLowerCase();
        if (!HASHES.has(algo)) throw userError(BaremetalErrorCode.imageChecksum, `image ${img.image_id}: unknown hash algorithm ${img.hash_algo}`);
        const got = await fileHash(part, algo);
        if (got !== img.hash_value.toLowerCase()) throw userError(BaremetalErrorCode.imageChecksum, `image ${img.image_id} does not match its ${algo} checksum`);
        if (img.disk_format === 'qcow2') {
          const raw = join(this.dir, `${img.image_id}.raw.part`);
          await runOk('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', part, raw], { timeoutMs: 1_800_000 })
            .catch((err: Error) => { throw userError(BaremetalErrorCode.imageUnavailable, `image ${img.image_id} is not a qcow2 image qemu-img can read`, err); });
          await fsp.rename(raw, path);
        } else {
          await fsp.rename(part, path);
        }
        const size = (await fsp.stat(path)).size;
        const sha256 = await fileHash(path, 'sha256');
        await fsp.writeFile(meta, JSON.stringify({ size, sha256, hash_value: img.hash_value }), { mode: 0o600 });
        return { path, size, sha256 };
      } finally {
        await fsp.rm(part, { force: true });
        await fsp.rm(join(this.dir, `${img.image_id}.raw.part`), { force: true });
      }
    });
  }
}
