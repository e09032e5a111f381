// Where image bytes live, behind a small interface so the object store can back
// images later. The file store keeps one file per key in a directory
// (DATA_DIR/images unless --image-dir names another): every replica of the
// control plane must see the same directory (shared storage), since an image
// uploaded through one replica is read through any.
//
// A put streams into a temporary file while counting the size and hashing
// (md5 for Glance's `checksum`, sha512 for `os_hash_value`), and renames it
// into place only once the stream ended and every check passed: a failed or
// aborted put leaves nothing behind, and a crash mid-put leaves only a
// temporary file that recover() removes on the next start. Each replica keeps
// its temporary files apart (.tmp/<owner>), so a replica starting never
// removes the puts another one is streaming.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export interface PutResult {
  size: number;
  /** md5 hex digest (Glance's `checksum`). */
  md5: string;
  /** sha512 hex digest (Glance's `os_hash_value` with os_hash_algo sha512). */
  sha512: string;
}

/** Sees the bytes of a put as they stream by; either method may throw to refuse the data. */
export interface DataInspector {
  update(chunk: Buffer): void;
  /** Called once the stream ended, before the data is committed. */
  finish(): Promise<void> | void;
}

export interface PutOptions {
  /** Largest accepted size in bytes; beyond it the put fails with TooLargeError and stores nothing. */
  maxSize: number;
  inspector?: DataInspector;
}

export interface ImageStore {
  /** Stores a stream under key, replacing what was there; all or nothing. */
  put(key: string, data: Readable, opts: PutOptions): Promise<PutResult>;
  /** A stream of the bytes under key, optionally only [start, end] (inclusive); errors with ENOENT when absent. */
  open(key: string, range?: { start: number; end: number }): Readable;
  /** Size in bytes of the data under key, undefined when absent. */
  size(key: string): Promise<number | undefined>;
  /** Removes the data under key; absent data is not an error. */
  delete(key: string): Promise<void>;
  /** Removes what an interrupted put left behind. */
  recover(): Promise<void>;
  /** The local file holding the data under key, for stores that keep files on this host; undefined for data elsewhere. */
  localPath?(key: string): string | undefined;
}

/**
 * Data another service makes on request rather than the store keeping it:
 * the registry's images (an OCI layout tar assembled from a manifest's blobs).
 * Read-only: such data is never put, and deleting the image deletes nothing here.
 */
export interface ImageDataSource {
  /** A stream of the data under key (optionally [start, end] inclusive); errors when absent. */
  open(key: string, range?: { start: number; end: number }): Readable;
  size(key: string): Promise<number | undefined>;
}

/**
 * The image service's store: keys under a registered prefix (`<prefix>/...`)
 * are a data source's, every other key the backing store's.
 */
export class SourcedStore implements ImageStore {
  readonly base: ImageStore;
  private readonly sources = new Map<string, ImageDataSource>();
  constructor(base: ImageStore) {
    this.base = base;
  }
  addSource(prefix: string, source: ImageDataSource): void {
    if (!/^[a-z][a-z0-9-]*$/.test(prefix)) throw new Error(`invalid data source prefix ${prefix}`);
    this.sources.set(prefix, source);
  }
  /** The source serving key, if any. */
  sourceOf(key: string): ImageDataSource | undefined {
    const slash = key.indexOf('/');
    return slash > 0 ? this.sources.get(key.slice(0, slash)) : undefined;
  }
  put(key: string, data: Readable, opts: PutOptions): Promise<PutResult> {
    if (this.sourceOf(key)) throw new Error(`image data under ${key} is read-only`);
    return this.base.put(key, data, opts);
  }
  open(key: string, range?: { start: number; end: number }): Readable {
    return (this.sourceOf(key) ?? this.base).open(key, range);
  }
  size(key: string): Promise<number | undefined> {
    return (this.sourceOf(key) ?? this.base).size(key);
  }
  async delete(key: string): Promise<void> {
    if (!this.sourceOf(key)) await this.base.delete(key);
  }
  recover(): Promise<void> {
    return this.base.recover();
  }
  localPath(key: string): string | undefined {
    return this.sourceOf(key) || !this.base.localPath ? undefined : this.base.localPath(key);
  }
}

export class TooLargeError extends Error {
  readonly limit: number;
  constructor(limit: number) {
    super(`The incoming image is too large: it exceeds the ${limit} bytes allowed.`);
    this.limit = limit;
  }
}

const KEY = /^[A-Za-z0-9][A-Za-z0-9._-]*(\/[A-Za-z0-9][A-Za-z0-9._-]*)?$/;

function checkKey(key: string): string {
  if (!KEY.test(key)) throw new Error(`invalid store key ${JSON.stringify(key)}`);
  return key;
}

/**
 * Feeds a put's source into its meter, piped, not pipelined: refusing the
 * data must not destroy the source (an HTTP request whose connection still
 * has to carry the answer). A source that closes before its end (a client
 * gone mid-upload) or fails fails the meter. Returns the detach, which a
 * store calls once the put is over, either way.
 */
export function feedMeter(data: Readable, meter: Meter): () => void {
  let ended = false;
  const onEnd = () => { ended = true; };
  const onClose = () => { if (!ended) meter.destroy(new Error('the data stream ended early')); };
  const onError = (e: Error) => meter.destroy(e);
  data.on('end', onEnd);
  data.on('close', onClose);
  data.on('error', onError);
  data.pipe(meter);
  return () => {
    data.unpipe(meter);
    data.off('end', onEnd);
    data.off('close', onClose);
    data.off('error', onError);
  };
}

/** Counts, hashes, caps and inspects the bytes flowing through it. */
export class Meter extends Transform {
  size = 0;
  private readonly md5 = createHash('md5');
  private readonly sha512 = createHash('sha512');
  private readonly opts: PutOptions;
  constructor(opts: PutOptions) {
    super();
    this.opts = opts;
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.size += chunk.length;
    if (this.size > this.opts.maxSize) return done(new TooLargeError(this.opts.maxSize));
    try {
      this.md5.update(chunk);
      this.sha512.update(chunk);
      this.opts.inspector?.update(chunk);
    } catch (e) {
      return done(e as Error);
    }
    done(null, chunk);
  }
  override _flush(done: TransformCallback): void {
    Promise.resolve()
      .then(() => this.opts.inspector?.finish())
      .then(() => done(), (e) => done(e as Error));
  }
  result(): PutResult {
    return { size: this.size, md5: this.md5.digest('hex'), sha512: this.sha512.digest('hex') };
  }
}

export class FileStore implements ImageStore {
  readonly dir: string;
  private readonly tmpDir: string;
  /** `owner`: names this replica's temporary files in a directory several replicas share. */
  constructor(dir: string, owner?: string) {
    this.dir = dir;
    this.tmpDir = owner ? join(dir, '.tmp', checkKey(owner)) : join(dir, '.tmp');
  }

  private path(key: string): string {
    return join(this.dir, checkKey(key));
  }

  async put(key: string, data: Readable, opts: PutOptions): Promise<PutResult> {
    const final = this.path(key);
    await mkdir(this.tmpDir, { recursive: true, mode: 0o700 });
    await mkdir(dirname(final), { recursive: true, mode: 0o700 });
    const tmp = join(this.tmpDir, `${key.replaceAll('/', '_')}.${randomBytes(6).toString('hex')}`);
    const meter = new Meter(opts);
    // flush: the data is on disk before the rename makes it visible.
    const sink = pipeline(meter, createWriteStream(tmp, { flags: 'wx', mode: 0o600, flush: true }));
    const detach = feedMeter(data, meter);
    try {
      await sink;
      await rename(tmp, final);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    } finally {
      detach();
    }
    return meter.result();
  }

  open(key: string, range?: { start: number; end: number }): Readable {
    return createReadStream(this.path(key), range ? { start: range.start, end: range.end } : {});
  }

  localPath(key: string): string {
    return this.path(key);
  }

  async size(key: string): Promise<number | undefined> {
    try {
      const s = await stat(this.path(key));
      return s.isFile() ? s.size : undefined;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  async delete(key: string): Promise<void> {
    await rm(this.path(key), { force: true });
  }

  async recover(): Promise<void> {
    // this replica's temporary files, and those a store without owners left directly in .tmp
    // (a server before replicas); the directories beside them are other replicas' (.tmp/<owner>)
    const dirs = [...new Set([this.tmpDir, join(this.dir, '.tmp')])];
    for (const dir of dirs) {
      let names: string[] = [];
      try {
        names = await readdir(dir);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
      await Promise.all(names.map(async (n) => {
        const p = join(dir, n);
        if ((await stat(p).catch(() => null))?.isFile()) await rm(p, { force: true });
      }));
    }
  }
}
