// The registry's bytes in the object store: a stream larger than a segment is
// written as several objects composed into one; composes and copies share bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { ObjectRegistryStorage, REGISTRY_CONTAINER } from '../../../src/registry/storage.ts';
import { objectStoreFixture } from '../object/lib.ts';

const objectStore = objectStoreFixture('stratus-registry-storage-');

const read = async (s: Readable | undefined) => {
  assert.ok(s);
  const out: Buffer[] = [];
  for await (const c of s) out.push(c as Buffer);
  return Buffer.concat(out);
};

test('puts in segments, ranges, compose, copy across projects, list, delete', async () => {
  const s = new ObjectRegistryStorage(objectStore(), { segment: 64 * 1024 });
  const data = randomBytes(200_000);
  assert.deepEqual(await s.put('p1', 'uploads/u/000000', Readable.from([data])), { size: data.length });
  assert.ok((await read(await s.open('p1', 'uploads/u/000000'))).equals(data));
  assert.ok((await read(await s.open('p1', 'uploads/u/000000', { start: 65_000, end: 70_000 }))).equals(data.subarray(65_000, 70_001)));
  assert.deepEqual((await s.list('p1', 'uploads/')).map((o) => o.key), ['uploads/u/000000'], 'no segment left behind');
  await s.put('p1', 'uploads/u/000001', Readable.from([Buffer.from('tail')]));
  assert.deepEqual(await s.compose('p1', 'blobs/sha256:x', ['uploads/u/000000', 'uploads/u/000001']), { size: data.length + 4 });
  assert.deepEqual((await s.list('p1', 'uploads/')).map((o) => o.key), [], 'the parts are consumed');
  await s.copy('p1', 'blobs/sha256:x', 'p2', 'blobs/sha256:x');
  assert.ok((await read(await s.open('p2', 'blobs/sha256:x'))).equals(Buffer.concat([data, Buffer.from('tail')])));
  assert.equal(await s.size('p2', 'blobs/sha256:x'), data.length + 4);
  await s.put('p1', 'blobs/empty', Readable.from([]));
  assert.equal(await s.size('p1', 'blobs/empty'), 0);
  await s.delete('p1', 'blobs/sha256:x');
  await s.delete('p1', 'blobs/sha256:x');
  assert.equal(await s.open('p1', 'blobs/sha256:x'), undefined);
  assert.equal(await s.size('p1', 'blobs/sha256:x'), undefined);
  // the container is internal: no Swift listing shows it
  assert.deepEqual((await objectStore().listContainers('p1', { limit: 10 })).map((c) => c.name), []);
  assert.ok(await objectStore().getContainer('p1', REGISTRY_CONTAINER, { internal: true }));
});

test('a put in segments is the object store\'s: the ETag is the MD5 of the bytes, as a single put\'s; concurrent puts of one key share no part', async () => {
  const store = objectStore();
  const s = new ObjectRegistryStorage(store, { segment: 64 * 1024 });
  const c = (await store.createContainer('p3', REGISTRY_CONTAINER, { internal: true })).container;
  const a = randomBytes(200_000);
  const b = randomBytes(300_000);
  const md5 = (d: Buffer) => createHash('md5').update(d).digest('hex');
  await s.put('p3', 'blobs/sha256:big', Readable.from([a]));
  assert.equal((await store.headObject(c, 'blobs/sha256:big'))?.etag, md5(a));
  await s.put('p3', 'blobs/small', Readable.from([Buffer.from('tail')]));
  assert.equal((await store.headObject(c, 'blobs/small'))?.etag, md5(Buffer.from('tail')));
  // two writers of one key: each whole, one wins, nothing left behind
  const chunks = (d: Buffer) => Readable.from((function* () { for (let i = 0; i < d.length; i += 10_000) yield d.subarray(i, i + 10_000); })());
  await Promise.all([s.put('p3', 'blobs/race', chunks(a)), s.put('p3', 'blobs/race', chunks(b))]);
  const got = await read(await s.open('p3', 'blobs/race'));
  assert.ok(got.equals(a) || got.equals(b), 'one of the two writes, whole');
  assert.equal((await store.headObject(c, 'blobs/race'))?.etag, md5(got));
  assert.deepEqual((await s.list('p3', 'blobs/')).map((o) => o.key), ['blobs/race', 'blobs/sha256:big', 'blobs/small']);
});
