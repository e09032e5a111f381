// In-flight inspection of image data, run while an upload streams to the store
// (so nothing is read twice and nothing is buffered whole):
//   - container images (container_format docker/oci): the data must be an OCI
//     image layout tar (oci-layout + index.json) or a `docker save` tar
//     (manifest.json), plain or gzip-compressed; anything else is refused, as
//     Glance refuses data that does not match its declared format (415).
//   - disk images: the virtual size, as Glance computes it (raw: the size;
//     qcow2: from the header).
import { PassThrough } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { readTar, TarFormatError } from '../common/tar.ts';
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
 * The bytes go through the shared tar reader as they arrive; only entry names
 * are looked at, and the content of the few metadata files an image archive
 * is recognised by is kept. `result` holds what was found once finish()
 * returned.
 */
export class ContainerArchiveInspector implements DataInspector {
  result: ContainerArchive | null = null;
  private first: Buffer | null = Buffer.alloc(0);
  private input: PassThrough | null = null;
  private compressed = false;
  private scan: Promise<void> | null = null;
  private error: InvalidImageDataError | null = null;
  private readonly files = new Map<string, Buffer>();

  update(chunk: Buffer): void {
    this.check();
    if (this.first !== null) {
      // Decide plain or gzip on the first two bytes.
      this.first = Buffer.concat([this.first, chunk]);
      if (this.first.length < 2) return;
      chunk = this.start();
    }
    this.input!.write(chunk);
  }

  /** Starts the scan once plain or gzip is known; returns the bytes held back until then. */
  private start(): Buffer {
    const head = this.first!;
    this.first = null;
    this.compressed = head[0] === 0x1f && head[1] === 0x8b;
    const input = new PassThrough();
    this.input = input;
    this.scan = this.read(this.compressed ? input.pipe(createGunzip()) : input).catch((e: unknown) => {
      // Reported by the next update() or by finish(), whichever comes first.
      if (e instanceof TarFormatError) this.error = new InvalidImageDataError(`The data is not a container image archive: ${e.message}.`);
      else if (this.compressed) this.error = new InvalidImageDataError('The data is not a container image archive: the gzip stream is corrupt.');
      else this.error = new InvalidImageDataError('The data is not a container image archive: it could not be read.');
    });
    return head;
  }

  private async read(source: AsyncIterable<Buffer>): Promise<void> {
    for await (const e of readTar(source)) {
      const name = e.name.replace(/^(\.\/)+/, '');
      if (e.type !== 'file' || !WANTED.has(name) || e.size > MAX_KEPT) continue;
      const parts: Buffer[] = [];
      for await (const c of e.body()) parts.push(c);
      this.files.set(name, Buffer.concat(parts));
    }
  }

  private check(): void {
    if (this.error) throw this.error;
  }

  async finish(): Promise<void> {
    if (this.first !== null) {
      const head = this.start();
      this.input!.write(head);
    }
    this.input!.end();
    await this.scan;
    this.check();
    this.result = classifyArchive(this.files, this.compressed);
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
