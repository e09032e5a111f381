// Image bytes in the object store (Glance's swift store), chosen with
// `--image-store object`: each image is an object of an internal container
// (`images` of the account `stratus-image`, no project's: hidden from every
// Swift and S3 listing). The object store keeps it crash-safe and shared by
// every replica through the database and its backend.
//
// A put hashes and inspects the stream as the file store does (Meter), and
// writes it in segments of at most SEGMENT bytes, composed into the image's
// object once all arrived (the object store's compose: no copy), so an image
// may be larger than one object (5 GiB). A put that fails or is refused
// leaves nothing: its segments are removed, and the object store's own crash
// recovery removes what a crash left.
import { PassThrough, Readable } from 'node:stream';
import { Segmenter } from '../common/segments.ts';
import { ObjectStoreError, type ContainerInfo, type ObjectStore } from '../object/service.ts';
import { Meter, TooLargeError, type ImageStore, type PutOptions, type PutResult } from './store.ts';

/** The account and internal container holding image data. */
export const IMAGE_ACCOUNT = 'stratus-image';
export const IMAGE_CONTAINER = 'images';
/** Largest segment written as one object. */
export const SEGMENT = 1024 * 1024 * 1024;

const notFound = (key: string) => Object.assign(new Error(`no image data under ${key}`), { code: 'ENOENT' });

export class ObjectImageStore implements ImageStore {
  private readonly store: ObjectStore;
  private readonly segment: number;
  private containerP: Promise<ContainerInfo> | undefined;

  constructor(store: ObjectStore, o: { segment?: number } = {}) {
    this.store = store;
    this.segment = o.segment ?? SEGMENT;
  }

  private container(): Promise<ContainerInfo> {
    this.containerP ??= this.store.createContainer(IMAGE_ACCOUNT, IMAGE_CONTAINER, { internal: true }).then((r) => r.container);
    this.containerP.catch(() => { this.containerP = undefined; });
    return this.containerP;
  }

  async put(key: string, data: Readable, opts: PutOptions): Promise<PutResult> {
    const c = await this.container();
    const meter = new Meter(opts);
    // piped, not pipelined (the request still has to carry the answer); a source closing early fails the put
    let ended = false;
    const onEnd = () => { ended = true; };
    const onClose = () => { if (!ended) meter.destroy(new Error('the data stream ended early')); };
    const onError = (e: Error) => meter.destroy(e);
    data.on('end', onEnd);
    data.on('close', onClose);
    data.on('error', onError);
    data.pipe(meter);
    // the reader below sees the meter's errors (a refusal, the cap), also one raised before it starts reading
    meter.on('error', () => undefined);

    const segments = new Segmenter(meter, this.segment);
    const parts: string[] = [];
    const nonce = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
    try {
      for (;;) {
        const segment = await segments.next();
        // an empty image is one empty object
        if (!segment && parts.length) break;
        const name = `${key}.segment-${nonce}-${String(parts.length).padStart(5, '0')}`;
        parts.push(name);
        await this.store.putObject(c, name, segment ? Readable.from(segment) : Readable.from([]), { maxSize: this.segment });
        if (!segment) break;
      }
      const result = meter.result();
      await this.store.composeObject({ container: c, name: key }, parts.map((name) => ({ container: c, name })),
        { etag: result.md5, contentType: 'application/octet-stream', removeParts: true });
      return result;
    } catch (e) {
      data.unpipe(meter);
      meter.destroy();
      for (const name of parts) await this.store.deleteObject(c, name).catch(() => undefined);
      if (e instanceof ObjectStoreError && e.reason === 'TooLarge') throw new TooLargeError(opts.maxSize);
      throw e;
    } finally {
      data.off('end', onEnd);
      data.off('close', onClose);
      data.off('error', onError);
    }
  }

  open(key: string, range?: { start: number; end: number }): Readable {
    const out = new PassThrough();
    (async () => {
      // the object store's ranges end exclusive
      const r = await this.store.openObject(await this.container(), key, range && { start: range.start, end: range.end + 1 });
      if (!r) throw notFound(key);
      r.stream.on('error', (e) => out.destroy(e));
      r.stream.pipe(out);
    })().catch((e) => out.destroy(e as Error));
    return out;
  }

  async size(key: string): Promise<number | undefined> {
    return (await this.store.headObject(await this.container(), key))?.size;
  }

  async delete(key: string): Promise<void> {
    await this.store.deleteObject(await this.container(), key);
  }

  /** The object store recovers its own interrupted writes at start. */
  async recover(): Promise<void> {}
}
