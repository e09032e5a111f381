// The agent's image store: each image's archive is fetched once and kept
// (images/<image id>/archive.tar + image.json), each layer is unpacked once
// into a content-addressed directory (layers/<diff id>/fs) shared by every
// image that has it. Directories appear by atomic rename, so a crash leaves
// only temp directories, which the next start removes.
import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { inspectArchive, unpackLayer, type ArchiveLayer, type OciImageConfig } from './oci.ts';

export interface StoredImage {
  imageId: string;
  archive: string;
  config: OciImageConfig;
  configRaw: string;
  configDigest: string;
  layers: ArchiveLayer[];
  /** Unpacked layer roots, bottom first. */
  layerDirs: string[];
}

export class ImageStore {
  readonly root: string;
  private readonly inflight = new Map<string, Promise<StoredImage>>();
  private readonly layerFlight = new Map<string, Promise<string>>();
  private readonly cache = new Map<string, StoredImage>();
  /** When each image was last asked for (ms); unused images are kept this long. */
  private readonly lastUsed = new Map<string, number>();
  private readonly keepUnusedMs: number;

  constructor(root: string, keepUnusedMs = 3600_000) {
    this.root = root;
    this.keepUnusedMs = keepUnusedMs;
  }

  async init(): Promise<void> {
    for (const d of ['images', 'layers', 'tmp']) await fsp.mkdir(join(this.root, d), { recursive: true, mode: 0o700 });
    // leftovers of a crash mid-download or mid-unpack
    await fsp.rm(join(this.root, 'tmp'), { recursive: true, force: true });
    await fsp.mkdir(join(this.root, 'tmp'), { mode: 0o700 });
    for (const name of await fsp.readdir(join(this.root, 'layers'))) {
      if (name.startsWith('.')) await fsp.rm(join(this.root, 'layers', name), { recursive: true, force: true });
    }
  }

  tmpPath(what: string): string {
    return join(this.root, 'tmp', `${what}-${randomBytes(6).toString('hex')}`);
  }

  layerDir(diffId: string): string {
    return join(this.root, 'layers', diffId.replace(/^sha256:/, ''), 'fs');
  }

  /** The image, fetching and unpacking it the first time; concurrent callers share one fetch. */
  ensure(imageId: string, fetch: (dest: string) => Promise<void>): Promise<StoredImage> {
    this.lastUsed.set(imageId, Date.now());
    const hit = this.cache.get(imageId);
    if (hit) return Promise.resolve(hit);
    let p = this.inflight.get(imageId);
    if (!p) {
      p = this.load(imageId, fetch).finally(() => this.inflight.delete(imageId));
      this.inflight.set(imageId, p);
    }
    return p;
  }

  private async load(imageId: string, fetch: (dest: string) => Promise<void>): Promise<StoredImage> {
    if (!/^[0-9a-zA-Z-]{1,64}$/.test(imageId)) throw new Error(`bad image id ${imageId}`);
    const dir = join(this.root, 'images', imageId);
    const meta = join(dir, 'image.json');
    const known = await fsp.readFile(meta, 'utf8').then((t) => JSON.parse(t) as StoredImage, () => null);
    if (known && (await this.layersPresent(known))) {
      this.cache.set(imageId, known);
      return known;
    }
    await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
    const archive = join(dir, 'archive.tar');
    const have = await fsp.stat(archive).then(() => true, () => false);
    if (!have || !known) {
      const tmp = this.tmpPath('download');
      try {
        await fetch(tmp);
        await fsp.rename(tmp, archive);
      } finally {
        await fsp.rm(tmp, { force: true });
      }
    }
    const img = await inspectArchive(archive);
    const layerDirs: string[] = [];
    for (const layer of img.layers) {
      layerDirs.push(await this.ensureLayer(archive, layer, [...layerDirs].reverse()));
    }
    const stored: StoredImage = {
      imageId, archive, config: img.config, configRaw: img.configRaw.toString('utf8'), configDigest: img.configDigest, layers: img.layers, layerDirs,
    };
    const tmpMeta = `${meta}.tmp`;
    await fsp.writeFile(tmpMeta, JSON.stringify(stored));
    await fsp.rename(tmpMeta, meta);
    this.cache.set(imageId, stored);
    return stored;
  }

  private async layersPresent(img: StoredImage): Promise<boolean> {
    for (const d of img.layerDirs) if (!(await fsp.stat(d).then((s) => s.isDirectory(), () => false))) return false;
    return true;
  }

  private ensureLayer(archive: string, layer: ArchiveLayer, lowers: string[]): Promise<string> {
    const dest = this.layerDir(layer.diffId);
    let p = this.layerFlight.get(layer.diffId);
    if (!p) {
      p = (async () => {
        if (await fsp.stat(dest).then((s) => s.isDirectory(), () => false)) return dest;
        const parent = join(this.root, 'layers', layer.diffId.replace(/^sha256:/, ''));
        const tmp = join(this.root, 'layers', `.unpack-${randomBytes(6).toString('hex')}`);
        try {
          await unpackLayer(archive, layer, join(tmp, 'fs'), lowers);
          await fsp.rm(parent, { recursive: true, force: true });
          await fsp.rename(tmp, parent);
        } finally {
          await fsp.rm(tmp, { recursive: true, force: true });
        }
        return dest;
      })().finally(() => this.layerFlight.delete(layer.diffId));
      this.layerFlight.set(layer.diffId, p);
    }
    return p;
  }

  /**
   * Forgets images no local server uses and nobody asked for within the keep
   * time (archive and metadata), then layers no kept image uses.
   */
  async prune(inUse: Set<string>): Promise<void> {
    const keepLayers = new Set<string>();
    const now = Date.now();
    for (const id of await fsp.readdir(join(this.root, 'images'))) {
      const dir = join(this.root, 'images', id);
      if (!this.lastUsed.has(id)) this.lastUsed.set(id, await fsp.stat(dir).then((st) => st.mtimeMs, () => now));
      const meta = await fsp.readFile(join(dir, 'image.json'), 'utf8').then((t) => JSON.parse(t) as StoredImage, () => null);
      if (inUse.has(id) || this.inflight.has(id) || now - this.lastUsed.get(id)! < this.keepUnusedMs) {
        for (const l of meta?.layers ?? []) keepLayers.add(l.diffId.replace(/^sha256:/, ''));
        continue;
      }
      this.cache.delete(id);
      this.lastUsed.delete(id);
      await fsp.rm(dir, { recursive: true, force: true });
    }
    if (this.inflight.size || this.layerFlight.size) return;
    for (const name of await fsp.readdir(join(this.root, 'layers'))) {
      if (!name.startsWith('.') && !keepLayers.has(name)) await fsp.rm(join(this.root, 'layers', name), { recursive: true, force: true });
    }
  }
}
