// Object versioning over HTTP: X-Versions-Location (Tempest's
// test_versioned_container, stack mode), X-History-Location, and the newer
// X-Versions-Enabled with version ids, ?versions listings and delete markers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useCloud } from '../../harness.ts';
import { expectStatus, swiftTenant, type Swift } from './middleware-lib.ts';

let s: Swift;
useCloud(async (c) => {
  s = await swiftTenant(c);
});

const count = async (c: string) => {
  const h = await s.call('HEAD', c);
  return [h.headers.get('x-container-object-count'), h.headers.get('x-container-bytes-used'), h.headers.get('x-versions-location')];
};

test("X-Versions-Location (stack): Tempest's test_versioned_container", async () => {
  expectStatus(await s.call('PUT', 'vers'), 201);
  assert.deepEqual(await count('vers'), ['0', '0', null]);
  expectStatus(await s.call('PUT', 'base', { headers: { 'X-Versions-Location': 'vers' } }), 201);
  assert.deepEqual(await count('base'), ['0', '0', 'vers']);
  expectStatus(await s.call('PUT', 'base/o', { body: 'a'.repeat(1024) }), 201);
  expectStatus(await s.call('PUT', 'base/o', { body: 'b'.repeat(1024) }), 201);
  assert.equal((await s.call('GET', 'base/o')).text, 'b'.repeat(1024));
  assert.deepEqual(await count('vers'), ['1', '1024', null]);
  expectStatus(await s.call('DELETE', 'base/o'), 204);
  assert.deepEqual(await count('base'), ['1', '1024', 'vers']);
  assert.equal((await s.call('GET', 'base/o')).text, 'a'.repeat(1024));
  expectStatus(await s.call('DELETE', 'base/o'), 204);
  assert.deepEqual(await count('base'), ['0', '0', 'vers']);
  assert.deepEqual(await count('vers'), ['0', '0', null]);
  // removal, and Swift's checks
  expectStatus(await s.call('POST', 'base', { headers: { 'X-Remove-Versions-Location': 'x' } }), 204);
  assert.equal((await count('base'))[2], null);
  expectStatus(await s.call('POST', 'base', { headers: { 'X-Versions-Location': 'a/b' } }), 412);
  const both = await s.call('POST', 'base', { headers: { 'X-Versions-Location': 'v', 'X-History-Location': 'h' } });
  expectStatus(both, 400);
  // a versions container that does not exist: 412 on the write that needs it
  expectStatus(await s.call('POST', 'base', { headers: { 'X-Versions-Location': 'nowhere' } }), 204);
  expectStatus(await s.call('PUT', 'base/p', { body: '1' }), 201);
  expectStatus(await s.call('PUT', 'base/p', { body: '2' }), 412);
});

test('X-History-Location: every write and delete is kept, with a delete marker', async () => {
  expectStatus(await s.call('PUT', 'hist'), 201);
  expectStatus(await s.call('PUT', 'hbase', { headers: { 'X-History-Location': 'hist' } }), 201);
  assert.equal((await s.call('HEAD', 'hbase')).headers.get('x-history-location'), 'hist');
  expectStatus(await s.call('PUT', 'hbase/o', { body: 'one' }), 201);
  expectStatus(await s.call('PUT', 'hbase/o', { body: 'two' }), 201);
  expectStatus(await s.call('DELETE', 'hbase/o'), 204);
  expectStatus(await s.call('HEAD', 'hbase/o'), 404);
  const listing = JSON.parse((await s.call('GET', 'hist?format=json')).text) as Array<{ name: string; content_type: string }>;
  assert.equal(listing.length, 3);
  assert.ok(listing.every((e) => e.name.startsWith('001o/')));
  assert.equal(listing[2]!.content_type, 'application/x-deleted;swift_versions_deleted=1');
});

test('X-Versions-Enabled: version ids, ?versions, version-id reads and deletes, delete markers', async () => {
  expectStatus(await s.call('PUT', 'nv', { headers: { 'X-Versions-Enabled': 'true' } }), 201);
  assert.equal((await s.call('HEAD', 'nv')).headers.get('x-versions-enabled'), 'True');
  const p1 = await s.call('PUT', 'nv/o', { body: 'v1' });
  expectStatus(p1, 201);
  const id1 = p1.headers.get('x-object-version-id')!;
  assert.match(id1, /^\d{10}\.\d{5}$/);
  const p2 = await s.call('PUT', 'nv/o', { body: 'v2' });
  const id2 = p2.headers.get('x-object-version-id')!;
  assert.notEqual(id1, id2);
  const cur = await s.call('GET', 'nv/o');
  assert.equal(cur.text, 'v2');
  assert.equal(cur.headers.get('x-object-version-id'), id2);
  assert.equal((await s.call('GET', `nv/o?version-id=${id1}`)).text, 'v1');
  let versions = JSON.parse((await s.call('GET', 'nv?versions&format=json')).text) as Array<{ name: string; version_id: string; is_latest: boolean }>;
  assert.deepEqual(versions.map((v) => [v.name, v.version_id, v.is_latest]), [['o', id2, true], ['o', id1, false]]);
  // the container listing shows the current object only; versions are hidden
  const plain = JSON.parse((await s.call('GET', 'nv?format=json')).text) as Array<{ name: string }>;
  assert.deepEqual(plain.map((e) => e.name), ['o']);
  // DELETE leaves a marker; the object is gone, its versions stay
  const del = await s.call('DELETE', 'nv/o');
  expectStatus(del, 204);
  expectStatus(await s.call('GET', 'nv/o'), 404);
  versions = JSON.parse((await s.call('GET', 'nv?versions&format=json')).text);
  assert.equal(versions.length, 3);
  assert.equal(versions[0]!.version_id, del.headers.get('x-object-version-id'));
  // deleting the marker brings v2 back
  expectStatus(await s.call('DELETE', `nv/o?version-id=${del.headers.get('x-object-version-id')}`), 204);
  assert.equal((await s.call('GET', 'nv/o')).text, 'v2');
  // deleting the current version makes v1 current
  expectStatus(await s.call('DELETE', `nv/o?version-id=${id2}`), 204);
  assert.equal((await s.call('GET', 'nv/o')).text, 'v1');
  expectStatus(await s.call('GET', 'nv/o?version-id=1234567890.12345'), 404);
  expectStatus(await s.call('GET', 'nv/o?version-id=bogus'), 400);
  // a container with versions is not deleted
  expectStatus(await s.call('DELETE', `nv/o?version-id=${id1}`), 204);
  expectStatus(await s.call('DELETE', 'nv'), 204);
});

test('X-Versions-Enabled turned on over existing objects: an overwrite keeps the old object as a version', async () => {
  expectStatus(await s.call('PUT', 'late'), 201);
  expectStatus(await s.call('PUT', 'late/o', { body: 'before' }), 201);
  assert.equal((await s.call('HEAD', 'late/o')).headers.get('x-object-version-id'), null, 'no versioning yet');
  expectStatus(await s.call('POST', 'late', { headers: { 'X-Versions-Enabled': 'true' } }), 204);
  assert.equal((await s.call('HEAD', 'late/o')).headers.get('x-object-version-id'), 'null');
  expectStatus(await s.call('PUT', 'late/o', { body: 'after' }), 201);
  const versions = JSON.parse((await s.call('GET', 'late?versions&format=json')).text) as Array<{ version_id: string; is_latest: boolean }>;
  assert.equal(versions.length, 2);
  assert.equal(versions[0]!.is_latest, true);
  assert.equal((await s.call('GET', `late/o?version-id=${versions[1]!.version_id}`)).text, 'before');
  // suspended: writes replace the current object without a new version
  expectStatus(await s.call('POST', 'late', { headers: { 'X-Versions-Enabled': 'false' } }), 204);
  assert.equal((await s.call('HEAD', 'late')).headers.get('x-versions-enabled'), 'False');
});

