// Image bytes in the object store (Glance's swift store), chosen with
// `--image-store object`: each image is an object of an internal container
// (`images` of the account `stratus-image`, no project's: hidden from every
// Swift and S3 listing). The object store keeps it crash-safe and shared by
// every replica through the database and its backend.
//
// A put hashes and inspects the stream as the file store does (Meter), and
// writes it with the object store's segmented put (segments of at most
// SEGMENT bytes composed into the image's object, no copy), so an image may
// be larger than one object (5 GiB). A put that fails or is refused leaves
// nothing.
import { PassThrough, type Readable } from 'node:stream';
import { ObjectStoreError, putSegmented, type ContainerInfo, type ObjectStore } from '../object/service.ts';
import { feedMeter, Meter, TooLargeError, type ImageStore, type PutOptions, type PutResult } from './store.ts';

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
    const detach = feedMeter(data, meter);
    // the reader below sees the meter's errors (a refusal, the cap), also one raised before it starts reading
    meter.on('error', () => undefined);

    let result: PutResult | undefined;
    const resultOnce = () => (result ??= meter.result());
    try {
      await putSegmented(this.store, c, key, meter, { segment: this.segment, contentType: 'application/octet-stream', md5: () => resultOnce().md5 });
      return resultOnce();
    } catch (e) {
      detach();
      meter.destroy();
      if (e instanceof ObjectStoreError && e.reason === 'TooLarge') throw new TooLargeError(opts.maxSize);
      throw e;
    } finally {
      detach();
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
