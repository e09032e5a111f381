// The image store over the object store (Glance's swift store, --image-store
// object): the same guarantees as the file store (all-or-nothing puts, the
// size cap, hashes, inspectors, ranges), images in segments composed into one
// object, kept in an internal container no listing shows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { ObjectImageStore, IMAGE_ACCOUNT, IMAGE_CONTAINER } from '../../../src/image/object-store.ts';
import { InvalidImageDataError } from '../../../src/image/inspect.ts';
import { TooLargeError } from '../../../src/image/store.ts';
import { objectStoreFixture } from '../object/lib.ts';

const objectStore = objectStoreFixture('stratus-image-objects-');

const read = async (s: Readable) => {
  const out: Buffer[] = [];
  for await (const c of s) out.push(c as Buffer);
  return Buffer.concat(out);
};
const keys = async () => {
  const c = await objectStore().getContainer(IMAGE_ACCOUNT, IMAGE_CONTAINER, { internal: true });
  return c ? (await objectStore().listObjects(c, { limit: 1000 })).map((e) => e.name) : [];
};

test('put hashes and stores, in segments composed into one object; open reads ranges; delete removes', async () => {
  const store = new ObjectImageStore(objectStore(), { segment: 64 * 1024 });
  const data = randomBytes(300_000);
  const r = await store.put('img1', Readable.from([data.subarray(0, 100_000), data.subarray(100_000)]), { maxSize: 1e6 });
  assert.deepEqual(r, { size: data.length, md5: createHash('md5').update(data).digest('hex'), sha512: createHash('sha512').update(data).digest('hex') });
  assert.equal(await store.size('img1'), data.length);
  assert.deepEqual(await keys(), ['img1'], 'the segments are gone once composed');
  assert.ok((await read(store.open('img1'))).equals(data));
  assert.ok((await read(store.open('img1', { start: 65_530, end: 65_545 }))).equals(data.subarray(65_530, 65_546)));
  // an exact multiple of the segment, and nothing at all
  const exact = randomBytes(128 * 1024);
  await store.put('img2', Readable.from([exact]), { maxSize: 1e6 });
  assert.ok((await read(store.open('img2'))).equals(exact));
  await store.put('staging/img3', Readable.from([]), { maxSize: 1e6 });
  assert.equal(await store.size('staging/img3'), 0);
  // replaced whole
  await store.put('img2', Readable.from([Buffer.from('short')]), { maxSize: 1e6 });
  assert.equal(await text(store.open('img2')), 'short');
  for (const k of ['img1', 'img2', 'staging/img3']) await store.delete(k);
  await store.delete('img1');
  assert.equal(await store.size('img1'), undefined);
  await assert.rejects(text(store.open('img1')), { code: 'ENOENT' });
  assert.deepEqual(await keys(), []);
  // Swift does not list the account's container
  assert.deepEqual(await objectStore().listContainers(IMAGE_ACCOUNT, { limit: 10 }), []);
});

test('a put over the cap, refused by its inspector, or cut short stores nothing', async () => {
  const store = new ObjectImageStore(objectStore(), { segment: 1000 });
  await assert.rejects(store.put('big', Readable.from([randomBytes(600), randomBytes(600), randomBytes(600)]), { maxSize: 1000 }), TooLargeError);
  const refuse = { update: () => { throw new InvalidImageDataError('no'); }, finish: () => {} };
  await assert.rejects(store.put('bad', Readable.from([Buffer.from('x')]), { maxSize: 1000, inspector: refuse }), InvalidImageDataError);
  const late = { update: () => {}, finish: async () => { throw new InvalidImageDataError('at the end'); } };
  await assert.rejects(store.put('late', Readable.from([randomBytes(2500)]), { maxSize: 1e6, inspector: late }), /at the end/);
  const broken = new Readable({ read() {} });
  const put = store.put('cut', broken, { maxSize: 1e6 });
  broken.push(Buffer.alloc(1500));
  setTimeout(() => broken.destroy(), 20);
  await assert.rejects(put);
  assert.deepEqual(await keys(), []);
});
