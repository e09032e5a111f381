// In-flight inspection of image data, run while an upload streams to the store
// (so nothing is read twice and nothing is buffered whole):
//   - container images (container_format docker/oci): the data must be an OCI
//     image layout tar (oci-layout + index.json) or a `docker save` tar
//     (manifest.json), plain or gzip-compressed; anything else is refused, as
//     Glance refuses data that does not match its declared format (415).
//   - disk images: the virtual size, as Glance computes it (raw: the size;
//     qcow2: from the header).
import { createGunzip, type Gunzip } from 'node:zlib';
import type { DataInspector } from './store.ts';

export class InvalidImageDataError extends Error {}

export interface ContainerArchive {
  /** 'oci': an OCI image layout; 'docker': a `docker save` archive. */
  format: 'oci' | 'docker';
  compressed: boolean;
  /** Manifests (OCI) or images (docker) the archive holds. */
  images: number;
  /** Tags: OCI `org.opencontainers.image.ref.name` annotations, docker RepoTags. */
  tags: string[];
}

/** Files whose content the scan keeps (small JSON documents). */
const WANTED = new Set(['oci-layout', 'index.json', 'manifest.json']);
const MAX_KEPT = 4 * 1024 * 1024;

/**
 * A streaming tar reader that only looks at entry names and keeps the content
 * of the few metadata files an image archive is recognised by.
 */
class TarScanner {
  private buf = Buffer.alloc(0);
  /** Bytes of the current entry's data (plus padding) still to come. */
  private remaining = 0;
  private padding = 0;
  private keeping: { name: string; parts: Buffer[]; size: number } | null = null;
  private longName: string | null = null;
  private paxPath: string | null = null;
  private meta: 'L' | 'x' | null = null;
  ended = false;
  entries = 0;
  readonly files = new Map<string, Buffer>();
  error: string | null = null;

  write(chunk: Buffer): void {
    if (this.ended || this.error) return;
    let data = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    this.buf = Buffer.alloc(0);
    while (data.length > 0 && !this.ended && !this.error) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, data.length);
        if (this.keeping) this.keeping.parts.push(data.subarray(0, n));
        this.remaining -= n;
        data = data.subarray(n);
        if (this.remaining === 0) this.endEntry();
        continue;
      }
      if (this.padding > 0) {
        const n = Math.min(this.padding, data.length);
        this.padding -= n;
        data = data.subarray(n);
        continue;
      }
      if (data.length < 512) {
        this.buf = Buffer.from(data);
        return;
      }
      this.header(data.subarray(0, 512));
      data = data.subarray(512);
    }
  }

  private header(h: Buffer): void {
    if (h.every((b) => b === 0)) {
      this.ended = true;
      return;
    }
    // The checksum covers the header with its own field read as spaces.
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
    const stored = parseInt(h.subarray(148, 156).toString('latin1').replace(/\0.*$/s, '').trim(), 8);
    if (!Number.isFinite(stored) || stored !== sum) {
      this.error = 'not a tar archive';
      return;
    }
    const size = this.octal(h.subarray(124, 136));
    if (size === undefined) {
      this.error = 'corrupt tar header';
      return;
    }
    const type = String.fromCharCode(h[156]!);
    const cstr = (b: Buffer) => b.toString('utf8').replace(/\0.*$/s, '');
    let name = cstr(h.subarray(0, 100));
    if (h.subarray(257, 262).toString('latin1') === 'ustar') {
      const prefix = cstr(h.subarray(345, 500));
      if (prefix) name = `${prefix}/${name}`;
    }
    if (this.longName !== null) name = this.longName;
    if (this.paxPath !== null) name = this.paxPath;
    this.meta = null;
    if (type === 'L' || type === 'x') {
      this.meta = type;
      name = '';
    } else {
      this.longName = null;
      this.paxPath = null;
      this.entries++;
    }
    if (type === 'g') name = '';
    const norm = name.replace(/^(\.\/)+/, '');
    const keep = this.meta !== null || ((type === '0' || type === '\0') && WANTED.has(norm));
    this.keeping = keep && size <= MAX_KEPT ? { name: norm, parts: [], size } : null;
    this.remaining = size;
    this.padding = (512 - (size % 512)) % 512;
    if (size === 0) this.endEntry();
  }

  private endEntry(): void {
    const k = this.keeping;
    this.keeping = null;
    if (!k) return;
    const content = Buffer.concat(k.parts);
    if (this.meta === 'L') this.longName = content.toString('utf8').replace(/\0.*$/s, '');
    else if (this.meta === 'x') {
      const m = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(content.toString('utf8'));
      if (m) this.paxPath = m[1]!;
    } else this.files.set(k.name, content);
    this.meta = null;
  }

  private octal(field: Buffer): number | undefined {
    if (field[0]! & 0x80) {
      // base-256 (GNU) for sizes beyond 8 GiB
      let v = 0;
      for (let i = 1; i < field.length; i++) v = v * 256 + field[i]!;
      return v;
    }
    const s = field.toString('latin1').replace(/\0.*$/s, '').trim();
    if (s === '') return 0;
    if (!/^[0-7]+$/.test(s)) return undefined;
    return parseInt(s, 8);
  }
}

function parseJson(buf: Buffer | undefined): unknown {
  if (!buf) return undefined;
  try {
    return JSON.parse(buf.toString('utf8'));
  } catch {
    return null;
  }
}

/** Recognises an OCI layout or docker-save archive from the files a scan kept. */
export function classifyArchive(files: Map<string, Buffer>, compressed: boolean): ContainerArchive {
  const layout = parseJson(files.get('oci-layout')) as { imageLayoutVersion?: unknown } | null | undefined;
  const index = parseJson(files.get('index.json')) as { manifests?: unknown } | null | undefined;
  if (layout !== undefined || index !== undefined) {
    if (!layout || typeof layout.imageLayoutVersion !== 'string') throw new InvalidImageDataError('The OCI image layout has no valid oci-layout file.');
    if (!index || !Array.isArray(index.manifests) || index.manifests.length === 0) {
      throw new InvalidImageDataError('The OCI image layout has no valid index.json (it needs a non-empty "manifests" list).');
    }
    const tags = (index.manifests as Array<{ annotations?: Record<string, unknown> }>)
      .map((m) => m?.annotations?.['org.opencontainers.image.ref.name'])
      .filter((t): t is string => typeof t === 'string');
    return { format: 'oci', compressed, images: index.manifests.length, tags };
  }
  const manifest = parseJson(files.get('manifest.json'));
  if (manifest !== undefined) {
    const ok = Array.isArray(manifest) && manifest.length > 0 &&
      manifest.every((m: { Config?: unknown; Layers?: unknown }) => m && typeof m.Config === 'string' && Array.isArray(m.Layers));
    if (!ok) throw new InvalidImageDataError('The docker archive has no valid manifest.json (a list of {Config, Layers}).');
    const tags = (manifest as Array<{ RepoTags?: unknown }>).flatMap((m) => Array.isArray(m.RepoTags) ? m.RepoTags.filter((t): t is string => typeof t === 'string') : []);
    return { format: 'docker', compressed, images: manifest.length, tags };
  }
  throw new InvalidImageDataError('The data is not a container image archive: an OCI image layout (oci-layout, index.json) or a docker archive (manifest.json) was expected.');
}

/**
 * Checks that the data is an OCI layout or docker archive tar (plain or gzip).
 * `result` holds what was found once finish() returned.
 */
export class ContainerArchiveInspector implements DataInspector {
  result: ContainerArchive | null = null;
  private readonly tar = new TarScanner();
  private first: Buffer | null = Buffer.alloc(0);
  private gunzip: Gunzip | null = null;
  private gunzipDone: Promise<void> | null = null;
  private gunzipError: Error | null = null;

  update(chunk: Buffer): void {
    if (this.first !== null) {
      // Decide plain or gzip on the first two bytes.
      this.first = Buffer.concat([this.first, chunk]);
      if (this.first.length < 2) return;
      const head = this.first;
      this.first = null;
      if (head[0] === 0x1f && head[1] === 0x8b) {
        const gz = createGunzip();
        this.gunzip = gz;
        gz.on('data', (d: Buffer) => this.tar.write(d));
        this.gunzipDone = new Promise((resolve) => {
          gz.on('end', () => resolve());
          gz.on('error', (e) => { this.gunzipError = e; resolve(); });
        });
        gz.write(head);
      } else {
        this.tar.write(head);
      }
      this.check();
      return;
    }
    if (this.gunzip) this.gunzip.write(chunk);
    else this.tar.write(chunk);
    this.check();
  }

  private check(): void {
    if (this.tar.error) throw new InvalidImageDataError(`The data is not a container image archive: ${this.tar.error}.`);
  }

  async finish(): Promise<void> {
    if (this.first !== null) {
      if (this.first.length > 0) this.tar.write(this.first);
      this.first = null;
    }
    if (this.gunzip) {
      this.gunzip.end();
      await this.gunzipDone;
      if (this.gunzipError) throw new InvalidImageDataError('The data is not a container image archive: the gzip stream is corrupt.');
    }
    this.check();
    this.result = classifyArchive(this.tar.files, this.gunzip !== null);
  }
}

/** Finds the virtual size of a disk image as it streams by. */
export class DiskInspector implements DataInspector {
  private head = Buffer.alloc(0);
  private size = 0;
  private readonly diskFormat: string | null;
  constructor(diskFormat: string | null) {
    this.diskFormat = diskFormat;
  }
  update(chunk: Buffer): void {
    this.size += chunk.length;
    if (this.head.length < 32) this.head = Buffer.concat([this.head, chunk.subarray(0, 32 - this.head.length)]);
  }
  finish(): void {}
  /** The virtual size, or null when the format is not one we read. */
  virtualSize(): number | null {
    if (this.diskFormat === 'raw') return this.size;
    if (this.diskFormat === 'qcow2' && this.head.length >= 32 && this.head.readUInt32BE(0) === 0x514649fb) {
      return Number(this.head.readBigUInt64BE(24));
    }
    return null;
  }
}

/** Container formats whose data must be a container image archive. */
export const CONTAINER_IMAGE_FORMATS: ReadonlySet<string> = new Set(['docker', 'oci']);
