// Snapshots over HTTP (create from an available volume, list/detail with
// filters and pagination, show, update, delete, metadata, admin actions,
// quotas), volumes from a snapshot and from another volume (recorded with
// their source; size, type and zone checks), a volume with snapshots refused
// on delete unless cascade, and the snapshot report path of lifecycle.ts;
// with Tempest's schemas.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Kysely } from 'kysely';
import { tenant, uniqueName, useCloud, type Tenant } from '../../harness.ts';
import { TempestSchemas } from '../compute/lib.ts';
import { applySnapshotReport, applyVolumeReport, placeVolume, snapshotSpecOf, specOf } from '../../../src/volume/lifecycle.ts';
import type { VolumeTables } from '../../../src/volume/schema.ts';
import { adminCaller, assertFault, beforeNextTransaction, type Caller, cinder } from './lib.ts';

let alice: Tenant, bob: Tenant, admin: Caller;
const cloud = useCloud(async (c) => {
  alice = await tenant(c);
  bob = await tenant(c);
  admin = await adminCaller(c);
});
const call = cinder(cloud, () => admin);
const schemas = new TempestSchemas('volume');
const as = (t: Tenant): Caller => ({ token: t.token, projectId: t.projectId });
const reset = async (kind: 'volumes' | 'snapshots', id: string, status: string) =>
  assert.equal((await call('POST', `/${kind}/${id}/action`, { body: { 'os-reset_status': { status } } })).status, 202);

async function availableVolume(who: Caller, size = 1): Promise<any> {
  const r = await call('POST', '/volumes', { as: who, body: { volume: { size, name: uniqueName('v') } } });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  await reset('volumes', r.body.volume.id, 'available');
  return r.body.volume;
}
async function snapshot(who: Caller, volumeId: string, body: Record<string, unknown> = {}): Promise<any> {
  const r = await call('POST', '/snapshots', { as: who, body: { snapshot: { volume_id: volumeId, name: uniqueName('s'), ...body } } });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  schemas.add('snapshots', 'create_snapshot', r);
  return r.body.snapshot;
}

test('snapshots: create, show, list, detail, update, metadata, delete; another project\'s is not found', async () => {
  const me = as(alice);
  const v = await availableVolume(me, 2);
  const s = await snapshot(me, v.id, { description: 'first', metadata: { k: 'v' } });
  assert.equal(s.status, 'creating');
  assert.equal(s.size, 2);
  assert.deepEqual(s.metadata, { k: 'v' });
  const shown = await call('GET', `/snapshots/${s.id}`, { as: me });
  schemas.add('snapshots', 'show_snapshot', shown);
  assert.equal(shown.body.snapshot['os-extended-snapshot-attributes:project_id'], alice.projectId);
  assert.equal(shown.body.snapshot['os-extended-snapshot-attributes:progress'], '0%');
  assert.equal((await call('GET', `/snapshots/${s.id}`, { as: me, version: '3.41' })).body.snapshot.user_id, alice.userId);
  schemas.add('snapshots', 'list_snapshots_no_detail', await call('GET', '/snapshots', { as: me }));
  const detail = await call('GET', `/snapshots/detail?volume_id=${v.id}`, { as: me });
  schemas.add('snapshots', 'list_snapshots_with_detail', detail);
  assert.deepEqual(detail.body.snapshots.map((x: { id: string }) => x.id), [s.id]);
  assertFault(await call('GET', `/snapshots/${s.id}`, { as: as(bob) }), 404, 'itemNotFound', new RegExp(`Snapshot ${s.id} could not be found`));
  assert.equal((await call('GET', '/snapshots', { as: as(bob) })).body.snapshots.length, 0);
  const upd = await call('PUT', `/snapshots/${s.id}`, { as: me, body: { snapshot: { name: 'renamed' } } });
  schemas.add('snapshots', 'update_snapshot', upd);
  assert.equal(upd.body.snapshot.name, 'renamed');
  // metadata
  const md = `/snapshots/${s.id}/metadata`;
  const created = await call('POST', md, { as: me, body: { metadata: { a: '1' } } });
  schemas.add('snapshots', 'create_snapshot_metadata', created);
  assert.deepEqual(created.body.metadata, { a: '1', k: 'v' });
  assert.deepEqual((await call('PUT', md, { as: me, body: { metadata: { b: '2' } } })).body.metadata, { b: '2' });
  assert.deepEqual((await call('GET', `${md}/b`, { as: me })).body, { meta: { b: '2' } });
  assert.deepEqual((await call('PUT', `${md}/b`, { as: me, body: { meta: { b: '3' } } })).body, { meta: { b: '3' } });
  assert.equal((await call('DELETE', `${md}/b`, { as: me })).status, 200);
  assertFault(await call('GET', `${md}/b`, { as: me }), 404, 'itemNotFound', /has no metadata with key b/);
  // delete: creating is refused; admins reset and force
  assertFault(await call('DELETE', `/snapshots/${s.id}`, { as: me }), 400, 'badRequest', /status must be available or error/);
  assertFault(await call('POST', `/snapshots/${s.id}/action`, { as: me, body: { 'os-reset_status': { status: 'available' } } }), 403, 'forbidden');
  assertFault(await call('POST', `/snapshots/${s.id}/action`, { body: { 'os-reset_status': { status: 'bogus' } } }), 400, 'badRequest');
  await reset('snapshots', s.id, 'available');
  assert.equal((await call('DELETE', `/snapshots/${s.id}`, { as: me })).status, 202);
  assertFault(await call('GET', `/snapshots/${s.id}`, { as: me }), 404, 'itemNotFound');
  const s2 = await snapshot(me, v.id);
  assert.equal((await call('POST', `/snapshots/${s2.id}/action`, { body: { 'os-force_delete': {} } })).status, 202);
  assert.equal((await call('DELETE', `/volumes/${v.id}`, { as: me })).status, 202);
});

test('snapshot bad input: unknown or foreign volume (404), volume not available (400), in-use only with force, missing volume_id', async () => {
  const me = as(alice);
  const create = (body: Record<string, unknown>, who: Caller = me) => call('POST', '/snapshots', { as: who, body: { snapshot: body } });
  assertFault(await create({ volume_id: '6d3c8d5c-7f3b-4c2f-9e37-0c7a1a1d1a1a' }), 404, 'itemNotFound');
  assertFault(await create({ name: 'x' }), 400, 'badRequest', /volume_id/);
  const v = (await call('POST', '/volumes', { as: me, body: { volume: { size: 1 } } })).body.volume;
  assertFault(await create({ volume_id: v.id }), 400, 'badRequest', /status must be available, but current status is: creating/);
  assertFault(await create({ volume_id: v.id }, as(bob)), 404, 'itemNotFound');
  await reset('volumes', v.id, 'in-use');
  assertFault(await create({ volume_id: v.id }), 400, 'badRequest');
  assertFault(await create({ volume_id: v.id, force: 'maybe' }), 400, 'badRequest');
  const forced = await create({ volume_id: v.id, force: true });
  assert.equal(forced.status, 202);
  // 3.66: in-use without force; force=false refused
  const at366 = await call('POST', '/snapshots', { as: me, version: '3.66', body: { snapshot: { volume_id: v.id } } });
  assert.equal(at366.status, 202, JSON.stringify(at366.body));
  assert.equal(at366.body.snapshot.consumes_quota, true);
  assertFault(await call('POST', '/snapshots', { as: me, version: '3.66', body: { snapshot: { volume_id: v.id, force: false } } }), 400, 'badRequest', /Since microversion 3\.66 the 'force' flag is invalid/);
  await reset('snapshots', at366.body.snapshot.id, 'available');
  // a volume with snapshots is not deleted, unless cascade
  await reset('volumes', v.id, 'available');
  assertFault(await call('DELETE', `/volumes/${v.id}`, { as: me }), 400, 'badRequest', /have snapshots/);
  assertFault(await call('DELETE', `/volumes/${v.id}?cascade=true`, { as: me }), 400, 'badRequest', /cascade delete needs every snapshot available or error/);
  await reset('snapshots', forced.body.snapshot.id, 'error');
  assert.equal((await call('DELETE', `/volumes/${v.id}?cascade=true`, { as: me })).status, 202);
  assertFault(await call('GET', `/snapshots/${forced.body.snapshot.id}`, { as: me }), 404, 'itemNotFound');
});

test('snapshot quotas: snapshots and gigabytes count, with Cinder\'s 413', async () => {
  const me = await tenant(cloud);
  const v = await availableVolume(as(me), 3);
  assert.equal((await call('PUT', `/os-quota-sets/${me.projectId}`, { body: { quota_set: { snapshots: 1, gigabytes: 9 } } })).status, 200);
  const s = await snapshot(as(me), v.id);
  assertFault(await call('POST', '/snapshots', { as: as(me), body: { snapshot: { volume_id: v.id } } }), 413, 'overLimit', /Maximum number of snapshots allowed \(1\) exceeded/);
  const usage = (await call('GET', `/os-quota-sets/${me.projectId}?usage=true`, { as: as(me) })).body.quota_set;
  assert.equal(usage.snapshots.in_use, 1);
  assert.equal(usage.gigabytes.in_use, 6, 'a snapshot counts its size in gigabytes');
  assert.equal((await call('GET', '/limits', { as: as(me) })).body.limits.absolute.totalSnapshotsUsed, 1);
  await call('PUT', `/os-quota-sets/${me.projectId}`, { body: { quota_set: { snapshots: 5, gigabytes: 8 } } });
  assertFault(await call('POST', '/snapshots', { as: as(me), body: { snapshot: { volume_id: v.id } } }), 413, 'overLimit', /gigabytes quota\. Requested 3G, quota is 8G and 6G has been consumed/);
  await reset('snapshots', s.id, 'available');
  assert.equal((await call('DELETE', `/volumes/${v.id}?cascade=true`, { as: as(me) })).status, 202);
  assert.equal((await call('GET', `/os-quota-sets/${me.projectId}?usage=true`, { as: as(me) })).body.quota_set.gigabytes.in_use, 0);
});

test('volumes from a snapshot and from a volume: recorded with their source; size, type and zone checked', async () => {
  const me = as(alice);
  const v = await availableVolume(me, 2);
  await call('POST', `/volumes/${v.id}/action`, { as: me, body: { 'os-set_bootable': { bootable: true } } });
  const s = await snapshot(me, v.id);
  const create = (volume: Record<string, unknown>) => call('POST', '/volumes', { as: me, body: { volume } });
  assertFault(await create({ snapshot_id: s.id }), 400, 'badRequest', /Originating snapshot status must be 'available'/);
  await reset('snapshots', s.id, 'available');
  assertFault(await create({ snapshot_id: s.id, size: 1 }), 400, 'badRequest', /cannot be smaller than the snapshot size 2GB/);
  const other = await call('POST', '/types', { body: { volume_type: { name: uniqueName('other') } } });
  assertFault(await create({ snapshot_id: s.id, volume_type: other.body.volume_type.name }), 400, 'badRequest', /Invalid volume_type provided/);
  assertFault(await call('POST', '/volumes', { as: as(bob), body: { volume: { snapshot_id: s.id } } }), 404, 'itemNotFound');
  const fromSnap = await create({ snapshot_id: s.id });
  assert.equal(fromSnap.status, 202, JSON.stringify(fromSnap.body));
  assert.equal(fromSnap.body.volume.size, 2, 'the snapshot\'s size when none is given');
  assert.equal(fromSnap.body.volume.snapshot_id, s.id);
  assert.equal(fromSnap.body.volume.bootable, 'true');
  const clone = await create({ source_volid: v.id, size: 3 });
  assert.equal(clone.status, 202, JSON.stringify(clone.body));
  assert.equal(clone.body.volume.source_volid, v.id);
  assertFault(await create({ source_volid: v.id, size: 1 }), 400, 'badRequest', /cannot be smaller than original volume size 2GB/);
  assertFault(await create({ source_volid: fromSnap.body.volume.id }), 400, 'badRequest', /status is not 'available' or 'in-use'/);
  const db = cloud.server.database.db as unknown as Kysely<VolumeTables>;
  const row = await db.selectFrom('volume_volumes').selectAll().where('id', '=', clone.body.volume.id).executeTakeFirstOrThrow();
  await placeVolume(db, row.id, 'h@file#p');
  assert.deepEqual(specOf((await db.selectFrom('volume_volumes').selectAll().where('id', '=', row.id).executeTakeFirstOrThrow()), {})!.source, { type: 'volume', volume_id: v.id });
  for (const id of [fromSnap.body.volume.id, clone.body.volume.id]) await call('POST', `/volumes/${id}/action`, { body: { 'os-force_delete': {} } });
  assert.equal((await call('DELETE', `/volumes/${v.id}?cascade=true`, { as: me })).status, 202);
});

test('a source deleted while a volume is made from it: Cinder\'s 404 or 400, no volume left creating', async () => {
  const db = cloud.server.database.db as unknown as Kysely<VolumeTables>;
  const me = as(alice);
  const v = await availableVolume(me, 1);
  const s = await snapshot(me, v.id);
  await reset('snapshots', s.id, 'available');
  // the source goes between the create's checks and its transaction: the next transaction first runs `meanwhile`
  const racing = async (meanwhile: () => Promise<unknown>, volume: Record<string, unknown>) => {
    const restore = beforeNextTransaction(db, meanwhile);
    try {
      return await call('POST', '/volumes', { as: me, body: { volume: { name: uniqueName('race'), ...volume } } });
    } finally {
      restore();
    }
  };
  const count = async () => (await db.selectFrom('volume_volumes').select('id').where('project_id', '=', alice.projectId).where('status', '=', 'creating').execute()).length;
  const before = await count();
  assertFault(await racing(() => db.deleteFrom('volume_snapshots').where('id', '=', s.id).execute(), { snapshot_id: s.id }), 404, 'itemNotFound', new RegExp(`Snapshot ${s.id} could not be found`));
  assertFault(await racing(() => db.updateTable('volume_volumes').set({ status: 'deleting' }).where('id', '=', v.id).execute(), { source_volid: v.id }), 400, 'badRequest', /status is not 'available' or 'in-use' \(it is 'deleting'\)/);
  assert.equal(await count(), before, 'no volume was recorded from a source that went');
  await db.updateTable('volume_volumes').set({ status: 'available' }).where('id', '=', v.id).execute();
  assert.equal((await call('DELETE', `/volumes/${v.id}`, { as: me })).status, 202);
});

test('the snapshot report path: on the volume\'s host, created, deleted; a volume deleted with its snapshots by its backend', async () => {
  const db = cloud.server.database.db as unknown as Kysely<VolumeTables>;
  const me = as(alice);
  const v = (await call('POST', '/volumes', { as: me, body: { volume: { size: 1 } } })).body.volume;
  await placeVolume(db, v.id, 'host1@file#pool');
  let vr = await db.selectFrom('volume_volumes').selectAll().where('id', '=', v.id).executeTakeFirstOrThrow();
  assert.equal(await applyVolumeReport(db, v.id, vr.version, { state: 'present', size_gib: 1, location: null }), 'available');
  const s = await snapshot(me, v.id);
  let sr = await db.selectFrom('volume_snapshots').selectAll().where('id', '=', s.id).executeTakeFirstOrThrow();
  assert.deepEqual(snapshotSpecOf(sr, 'host1@file#pool'), { volume_id: v.id, project_id: alice.projectId, state: 'present', size_gib: 1, backend: 'file', pool: 'pool' });
  assert.equal(await applySnapshotReport(db, s.id, sr.version, { state: 'present', location: null }), 'available');
  assert.equal((await call('GET', `/snapshots/${s.id}`, { as: me })).body.snapshot.status, 'available');
  // the snapshot's delete waits for the backend
  assert.equal((await call('DELETE', `/snapshots/${s.id}`, { as: me })).status, 202);
  sr = await db.selectFrom('volume_snapshots').selectAll().where('id', '=', s.id).executeTakeFirstOrThrow();
  assert.equal(sr.status, 'deleting');
  assert.equal(await applySnapshotReport(db, s.id, sr.version, { state: 'absent', location: null }), 'deleted');
  // a cascade on a placed volume: both deleting; the volume's report removes what is left
  const s2 = await snapshot(me, v.id);
  sr = await db.selectFrom('volume_snapshots').selectAll().where('id', '=', s2.id).executeTakeFirstOrThrow();
  await applySnapshotReport(db, s2.id, sr.version, { state: 'present', location: null });
  assert.equal((await call('DELETE', `/volumes/${v.id}?cascade=true`, { as: me })).status, 202);
  assert.equal((await call('GET', `/snapshots/${s2.id}`, { as: me })).body.snapshot.status, 'deleting');
  vr = await db.selectFrom('volume_volumes').selectAll().where('id', '=', v.id).executeTakeFirstOrThrow();
  assert.equal(await applyVolumeReport(db, v.id, vr.version, { state: 'absent', size_gib: 0, location: null }), 'deleted');
  assertFault(await call('GET', `/snapshots/${s2.id}`, { as: me }), 404, 'itemNotFound');
  assertFault(await call('GET', `/volumes/${v.id}`, { as: me }), 404, 'itemNotFound');
});

test('snapshots asked while the volume is deleted: never a snapshot without its volume', async () => {
  const db = cloud.server.database.db as unknown as Kysely<VolumeTables>;
  for (let round = 0; round < 3; round++) {
    const v = await availableVolume(as(alice));
    const answers = await Promise.all([
      ...Array.from({ length: 4 }, () => call('POST', '/snapshots', { as: as(alice), body: { snapshot: { volume_id: v.id } } })),
      call('DELETE', `/volumes/${v.id}`, { as: as(alice) }),
    ]);
    for (const r of answers) assert.ok([202, 400, 404].includes(r.status), `${r.status} ${JSON.stringify(r.body)}`);
    const volume = await db.selectFrom('volume_volumes').select('id').where('id', '=', v.id).executeTakeFirst();
    const snaps = await db.selectFrom('volume_snapshots').select('id').where('volume_id', '=', v.id).execute();
    const made = answers.slice(0, 4).filter((r) => r.status === 202).length;
    if (volume) {
      assert.equal(answers[4]!.status, 400, 'the delete lost to a snapshot');
      assert.equal(snaps.length, made);
      for (const x of snaps) await reset('snapshots', x.id, 'available');
      assert.equal((await call('DELETE', `/volumes/${v.id}?cascade=true`, { as: as(alice) })).status, 202);
    } else {
      assert.equal(answers[4]!.status, 202);
      assert.equal(snaps.length, 0, 'no snapshot outlives its volume');
    }
  }
});

test('every collected body matches Tempest\'s volume schemas', () => {
  schemas.check();
});
