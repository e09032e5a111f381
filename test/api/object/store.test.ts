// The ObjectStore in process (what S3, the registry and Glance use): internal
// containers hidden from Swift listings, compose from parts sharing their
// blobs (parts removed in the same transaction), sysmeta, conditions, and
// blob reference counts (a blob goes only with its last reference).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import { tenant, useCloud, type Tenant } from '../../harness.ts';
import { ObjectStoreError, type ObjectBackend } from '../../../src/object/service.ts';
import { swift } from './lib.ts';

let alice: Tenant;
const cloud = useCloud(async (c) => { alice = await tenant(c); });
const call = swift(cloud, () => alice);
const body = (s: string | Buffer) => Readable.from([Buffer.from(s)]);
const read = async (r: Readable) => { const out: Buffer[] = []; for await (const c of r) out.push(c as Buffer); return Buffer.concat(out).toString(); };

test('internal containers are hidden from Swift; compose shares the parts\' blobs and can remove the parts', async () => {
  const store = cloud.server.objects.store;
  const { container: parts } = await store.createContainer(alice.projectId, 'uploads', { internal: true, sysmeta: { kind: 'multipart' } });
  const { container: c } = await store.createContainer(alice.projectId, 'visible');
  assert.equal((await store.getContainer(alice.projectId, 'uploads'))?.id, undefined, 'not found as a visible container');
  assert.equal((await store.getContainer(alice.projectId, 'uploads', { internal: true }))?.sysmeta.kind, 'multipart');
  const r = await call('GET', '');
  assert.equal(r.text, 'visible\n');
  assert.equal((await call('GET', '/uploads')).status, 404);

  await store.putObject(parts, 'u1/1', body('hello '), { size: 6 });
  await store.putObject(parts, 'u1/2', body('world'), { md5: createHash('md5').update('world').digest('hex') });
  await assert.rejects(store.putObject(parts, 'u1/3', body('x'), { md5: '0'.repeat(32) }), (e: ObjectStoreError) => e.reason === 'EtagMismatch');
  await assert.rejects(store.putObject(parts, 'u1/3', body('xy'), { size: 5 }), (e: ObjectStoreError) => e.reason === 'ShortBody');
  const o = await store.composeObject({ container: c, name: 'big' }, [{ container: parts, name: 'u1/1' }, { container: parts, name: 'u1/2' }],
    { etag: 'abc-2', sysmeta: { s3: 'yes' }, removeParts: true });
  assert.equal(o.size, 11);
  assert.equal(o.segments.length, 2);
  assert.deepEqual(await store.listObjects(parts, { limit: 10 }), [], 'parts removed');
  assert.equal((await store.getContainer(alice.projectId, 'uploads', { internal: true }))!.objectCount, 0);
  const got = await call('GET', '/visible/big');
  assert.equal(got.text, 'hello world');
  assert.equal(got.headers.get('etag'), 'abc-2');
  assert.equal(await read(store.readObject(o, { start: 4, end: 8 })), 'o wo', 'a range across segments');
  await assert.rejects(store.composeObject({ container: c, name: 'x' }, [{ container: parts, name: 'missing' }], { etag: 'e' }), (e: ObjectStoreError) => e.reason === 'PartNotFound');

  // a copy references the same blobs; deleting the original keeps them
  await store.copyObject({ container: c, name: 'big' }, { container: c, name: 'big2' });
  await store.deleteObject(c, 'big');
  assert.equal((await call('GET', '/visible/big2')).text, 'hello world');
  const blobs = await cloud.server.database.db.selectFrom('object_blobs').select(['id', 'refs', 'state']).where('id', 'in', o.segments.map((s) => s.blob)).execute();
  assert.deepEqual(blobs.map((b) => [b.refs, b.state]), [[1, 'live'], [1, 'live']]);
  await store.deleteObject(c, 'big2');
  await new Promise((res) => setTimeout(res, 100));
  const left = await cloud.server.database.db.selectFrom('object_blobs').select('id').where('id', 'in', o.segments.map((s) => s.blob)).execute();
  assert.deepEqual(left, [], 'the last reference removed the blobs');
  await store.deleteContainer(parts);
  assert.equal(await store.getContainer(alice.projectId, 'uploads', { internal: true }), null, 'an emptied internal container deletes');
  await store.putObject(c, 'keep', body('k'));
  await assert.rejects(store.deleteContainer(c), (e: ObjectStoreError) => e.reason === 'ContainerNotEmpty');
});

test('the audit finds a corrupt blob (bit rot), an orphan file, and a GET of the corrupt object fails instead of answering wrong bytes', async () => {
  const store = cloud.server.objects.store;
  const { container: c } = await store.createContainer(alice.projectId, 'audited');
  const o = await store.putObject(c, 'victim', body('x'.repeat(1000)));
  const { writeFileSync, readFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const root = join(cloud.dataDir, 'objects');
  const file = join(root, o.segments[0]!.blob.slice(0, 2), o.segments[0]!.blob);
  const bytes = readFileSync(file);
  bytes[10] ^= 0xff;
  writeFileSync(file, bytes);
  writeFileSync(join(root, 'ab', 'abcdef0123456789'), 'stray');
  const report = await store.audit();
  assert.deepEqual(report.corrupt.map((x) => x.blob), [o.segments[0]!.blob]);
  assert.ok(report.corrupt[0]!.objects[0]!.endsWith('/audited/victim'));
  assert.deepEqual(report.orphanFiles, ['abcdef0123456789']);
  const r = await call('GET', '/audited/victim');
  assert.equal(r.status, 503);
});

test('the audit does not report as missing a blob released while it ran', async () => {
  const store = cloud.server.objects.store;
  const { container: c } = await store.createContainer(alice.projectId, 'audit-race');
  const o = await store.putObject(c, 'released', body('bytes released during the audit'));
  // a test double around the real backend: the object is deleted (its blob released, its file removed) between the audit's read of the rows and its listing of the files
  const backend = (store as unknown as { backend: ObjectBackend }).backend;
  const list = backend.list;
  backend.list = async function* () {
    await store.deleteObject(c, 'released');
    for (let i = 0; i < 50; i++) {
      const row = await cloud.server.database.db.selectFrom('object_blobs').select('id').where('id', '=', o.segments[0]!.blob).executeTakeFirst();
      if (!row) break;
      await new Promise((res) => setTimeout(res, 20));
    }
    yield* list.call(backend);
  };
  try {
    const report = await store.audit();
    assert.deepEqual(report.missingFiles, []);
    assert.ok(!report.corrupt.some((x) => x.blob === o.segments[0]!.blob));
  } finally {
    backend.list = list;
  }
});
