// One stream of any length stored as one object, for the store's in-process
// users that take streams larger than an object may be (a registry layer,
// a Glance image: more than MAX_OBJECT_SIZE). A stream that ends within
// INLINE bytes is one put under its name; a longer one is written as part
// objects of at most `segment` bytes under names of its own (so nothing
// partial is ever visible under the name, and two puts of one name never
// share a part), then composed into the name by the store (no copy) with
// the parts removed in the same transaction. Either way the object's ETag is
// the MD5 of its bytes, as a single put records it. A put that fails leaves
// nothing: its parts are removed (a crash's are the store's recovery's).
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { Readable } from 'node:stream';
import { Segmenter } from '../common/segments.ts';
import { MAX_OBJECT_SIZE, type ContainerInfo, type ObjectInfo, type ObjectStore } from './store.ts';

/** Streams that end within this many bytes are put in one write under their name. */
const INLINE = 1024 * 1024;

export interface SegmentedPutOptions {
  /** Bytes per part object (default and at most MAX_OBJECT_SIZE). */
  segment?: number;
  contentType?: string;
  /** The MD5 (hex) of the whole once the stream has ended, when the caller computes it anyway (else it is computed here). */
  md5?: () => string;
}

async function* hashing(data: AsyncIterable<Buffer | Uint8Array>, hash: Hash): AsyncGenerator<Buffer> {
  for await (const b of data) {
    const buf = Buffer.isBuffer(b) ? b : Buffer.from(b);
    hash.update(buf);
    yield buf;
  }
}

export async function putSegmented(store: ObjectStore, c: ContainerInfo, name: string, data: AsyncIterable<Buffer | Uint8Array>, o: SegmentedPutOptions = {}): Promise<ObjectInfo> {
  const segment = Math.min(o.segment ?? MAX_OBJECT_SIZE, MAX_OBJECT_SIZE);
  const md5 = o.md5 ? undefined : createHash('md5');
  const source = (md5 ? hashing(data, md5) : data)[Symbol.asyncIterator]();
  const attributes = o.contentType ? { contentType: o.contentType } : {};

  // the head, up to INLINE (or one segment) bytes: when the stream ends there, one put
  const head: Buffer[] = [];
  let headSize = 0;
  let ended = false;
  while (headSize <= Math.min(INLINE, segment)) {
    const r = await source.next();
    if (r.done) {
      ended = true;
      break;
    }
    const b = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
    head.push(b);
    headSize += b.length;
  }
  if (ended) return store.putObject(c, name, Readable.from(head), { ...attributes, maxSize: segment });

  const rest = (async function* () {
    yield* head;
    for (;;) {
      const r = await source.next();
      if (r.done) return;
      yield r.value;
    }
  })();
  const segments = new Segmenter(rest, segment);
  const nonce = `${Date.now().toString(36)}${randomBytes(4).toString('hex')}`;
  const parts: string[] = [];
  try {
    for (let s = await segments.next(); s; s = await segments.next()) {
      const part = `${name}.segment-${nonce}-${String(parts.length).padStart(5, '0')}`;
      parts.push(part);
      await store.putObject(c, part, Readable.from(s), { ...attributes, maxSize: segment });
    }
    const etag = o.md5 ? o.md5() : md5!.digest('hex');
    return await store.composeObject({ container: c, name }, parts.map((p) => ({ container: c, name: p })), { ...attributes, etag, removeParts: true });
  } catch (e) {
    await source.return?.(undefined).catch(() => undefined);
    for (const p of parts) await store.deleteObject(c, p).catch(() => undefined);
    throw e;
  }
}
