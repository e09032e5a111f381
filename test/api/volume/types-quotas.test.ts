// Volume types (extra specs, private types and their access, the default
// type and per-project default types), quotas (show with usage, defaults,
// update, per-type keys, enforcement at create and extend with Cinder's 413),
// limits, and the backend's report path that moves a volume's status
// (lifecycle.ts), over HTTP with Tempest's schemas.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Kysely } from 'kysely';
import { tenant, uniqueName, useCloud, type Tenant } from '../../harness.ts';
import { TempestSchemas } from '../compute/lib.ts';
import { applyVolumeReport, placeVolume, specOf } from '../../../src/volume/lifecycle.ts';
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

async function makeType(body: Record<string, unknown> = {}): Promise<any> {
  const r = await call('POST', '/types', { body: { volume_type: { name: uniqueName('type'), ...body } } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  schemas.add('volume_types', 'create_volume_type', r);
  return r.body.volume_type;
}

test('types: the default type exists and cannot be deleted; create, show, update, delete; names are unique', async () => {
  const def = await call('GET', '/types/default', { as: as(alice) });
  assert.equal(def.status, 200);
  assert.equal(def.body.volume_type.name, '__DEFAULT__');
  schemas.add('volume_types', 'show_volume_type', def);
  assertFault(await call('DELETE', `/types/${def.body.volume_type.id}`), 400, 'badRequest', /Default volume type can not be deleted/);
  const t = await makeType({ description: 'fast', extra_specs: { volume_backend_name: 'lvm', multiattach: '<is> True' } });
  assert.equal(t.is_public, true);
  assert.deepEqual(t.extra_specs, { volume_backend_name: 'lvm', multiattach: '<is> True' });
  assertFault(await call('POST', '/types', { body: { volume_type: { name: t.name } } }), 409, 'conflictingRequest', /already exists/);
  assertFault(await call('POST', '/types', { as: as(alice), body: { volume_type: { name: uniqueName('mine') } } }), 403, 'forbidden');
  assertFault(await call('POST', '/types', { body: { volume_type: { name: '' } } }), 400, 'badRequest');
  const list = await call('GET', '/types', { as: as(alice) });
  schemas.add('volume_types', 'list_volume_types', list);
  const seen = list.body.volume_types.find((x: { id: string }) => x.id === t.id);
  assert.deepEqual(seen.extra_specs, { multiattach: '<is> True' }, 'a non-admin sees the user-visible specs only');
  const upd = await call('PUT', `/types/${t.id}`, { body: { volume_type: { description: 'faster' } } });
  schemas.add('volume_types', 'update_volume_types', upd);
  assert.equal(upd.body.volume_type.description, 'faster');
  // filter by extra specs (3.52)
  const byspec = await call('GET', `/types?extra_specs=${encodeURIComponent('{"volume_backend_name": "lvm"}')}`, { version: '3.52' });
  assert.deepEqual(byspec.body.volume_types.map((x: { id: string }) => x.id), [t.id]);
  // a volume of a multiattach type is multiattach; a type in use cannot go, nor its specs change
  const v = await call('POST', '/volumes', { as: as(alice), body: { volume: { size: 1, volume_type: t.name } } });
  assert.equal(v.status, 202, JSON.stringify(v.body));
  assert.equal(v.body.volume.multiattach, true);
  assert.equal(v.body.volume.volume_type, t.name);
  assertFault(await call('DELETE', `/types/${t.id}`), 400, 'badRequest', /still in use/);
  assertFault(await call('PUT', `/types/${t.id}/extra_specs/x`, { body: { x: '1' } }), 400, 'badRequest', /in use/);
  assert.equal((await call('POST', `/volumes/${v.body.volume.id}/action`, { body: { 'os-force_delete': {} } })).status, 202);
  assert.equal((await call('DELETE', `/types/${t.id}`)).status, 202);
  assertFault(await call('GET', `/types/${t.id}`), 404, 'itemNotFound');
});

test('a type renamed to a name another create takes meanwhile: Cinder\'s 409, as on create', async () => {
  const t = (await call('POST', '/types', { body: { volume_type: { name: uniqueName('rn') } } })).body.volume_type;
  const name = uniqueName('taken');
  const restore = beforeNextTransaction(cloud.server.database.db, async () => {
    assert.equal((await call('POST', '/types', { body: { volume_type: { name } } })).status, 200);
  });
  try {
    assertFault(await call('PUT', `/types/${t.id}`, { body: { volume_type: { name } } }), 409, 'conflictingRequest', new RegExp(`Volume Type ${name} already exists`));
  } finally {
    restore();
  }
  assert.equal((await call('GET', `/types/${t.id}`)).body.volume_type.name, t.name);
  const other = (await call('GET', '/types?is_public=None')).body.volume_types.find((x: { name: string }) => x.name === name);
  for (const id of [t.id, other.id]) assert.equal((await call('DELETE', `/types/${id}`)).status, 202);
});

test('retype: a volume no backend holds changes type at once, quota of the new type checked; bad input refused', async () => {
  const me = await tenant(cloud);
  const fast = await makeType({ extra_specs: { multiattach: '<is> True' } });
  const v = (await call('POST', '/volumes', { as: as(me), body: { volume: { size: 2 } } })).body.volume;
  const retype = (new_type: unknown, extra: Record<string, unknown> = {}) => call('POST', `/volumes/${v.id}/action`, { as: as(me), body: { 'os-retype': { new_type, ...extra } } });
  assertFault(await retype(fast.name), 400, 'badRequest', /status must be available or in-use/);
  await call('POST', `/volumes/${v.id}/action`, { body: { 'os-reset_status': { status: 'available' } } });
  assertFault(await retype('no-such-type'), 404, 'itemNotFound');
  assertFault(await retype('__DEFAULT__'), 400, 'badRequest', /same as original/);
  assertFault(await retype(fast.name, { migration_policy: 'sometimes' }), 400, 'badRequest', /migration_policy/);
  assertFault(await retype(undefined), 400, 'badRequest');
  await call('PUT', `/os-quota-sets/${me.projectId}`, { body: { quota_set: { [`gigabytes_${fast.name}`]: 1 } } });
  assertFault(await retype(fast.name), 413, 'overLimit', new RegExp(`gigabytes_${fast.name} quota`));
  await call('PUT', `/os-quota-sets/${me.projectId}`, { body: { quota_set: { [`gigabytes_${fast.name}`]: 10 } } });
  assert.equal((await retype(fast.name, { migration_policy: 'on-demand' })).status, 202);
  const shown = (await call('GET', `/volumes/${v.id}`, { as: as(me) })).body.volume;
  assert.equal(shown.volume_type, fast.name);
  assert.equal(shown.multiattach, true);
  const usage = (await call('GET', `/os-quota-sets/${me.projectId}?usage=true`, { as: as(me) })).body.quota_set;
  assert.equal(usage[`gigabytes_${fast.name}`].in_use, 2);
  assert.equal(usage.gigabytes___DEFAULT__.in_use, 0);
  assert.equal((await call('DELETE', `/volumes/${v.id}`, { as: as(me) })).status, 202);
});

test('extra specs: list, show, set, update one, delete', async () => {
  const t = await makeType();
  const path = `/types/${t.id}/extra_specs`;
  const set = await call('POST', path, { body: { extra_specs: { a: '1', b: true } } });
  assert.equal(set.status, 200);
  schemas.add('volume_types', 'create_volume_types_extra_specs', set);
  assert.deepEqual(set.body.extra_specs, { a: '1', b: 'True' });
  const list = await call('GET', path);
  schemas.add('volume_types', 'list_volume_types_extra_specs', list);
  assert.deepEqual(list.body.extra_specs, { a: '1', b: 'True' });
  const one = await call('GET', `${path}/a`);
  schemas.add('volume_types', 'show_volume_types_extra_specs', one);
  assert.deepEqual(one.body, { a: '1' });
  assert.deepEqual((await call('PUT', `${path}/a`, { body: { a: '2' } })).body, { a: '2' });
  assertFault(await call('PUT', `${path}/a`, { body: { b: '2' } }), 400, 'badRequest', /mismatch/);
  assert.equal((await call('DELETE', `${path}/a`)).status, 202);
  assertFault(await call('GET', `${path}/a`), 404, 'itemNotFound', /has no extra specs with key a/);
  assertFault(await call('DELETE', `${path}/a`), 404, 'itemNotFound');
  assertFault(await call('POST', path, { as: as(alice), body: { extra_specs: { c: '1' } } }), 403, 'forbidden');
});

test('private types: seen and used only by the projects given access', async () => {
  const t = await makeType({ 'os-volume-type-access:is_public': false });
  assert.equal(t.is_public, false);
  const create = (who: Tenant) => call('POST', '/volumes', { as: as(who), body: { volume: { size: 1, volume_type: t.id } } });
  assertFault(await create(alice), 404, 'itemNotFound');
  assertFault(await call('GET', `/types/${t.id}`, { as: as(alice) }), 404, 'itemNotFound');
  assert.equal((await call('POST', `/types/${t.id}/action`, { body: { addProjectAccess: { project: alice.projectId } } })).status, 202);
  assertFault(await call('POST', `/types/${t.id}/action`, { body: { addProjectAccess: { project: alice.projectId } } }), 409, 'conflictingRequest');
  const access = await call('GET', `/types/${t.id}/os-volume-type-access`);
  assert.deepEqual(access.body.volume_type_access, [{ volume_type_id: t.id, project_id: alice.projectId }]);
  assert.equal((await call('GET', `/types/${t.id}`, { as: as(alice) })).status, 200);
  assert.ok((await call('GET', '/types', { as: as(alice) })).body.volume_types.some((x: { id: string }) => x.id === t.id));
  assert.ok(!(await call('GET', '/types', { as: as(bob) })).body.volume_types.some((x: { id: string }) => x.id === t.id));
  const v = await create(alice);
  assert.equal(v.status, 202);
  assertFault(await create(bob), 404, 'itemNotFound');
  assert.equal((await call('POST', `/types/${t.id}/action`, { body: { removeProjectAccess: { project: alice.projectId } } })).status, 202);
  assertFault(await call('POST', `/types/${t.id}/action`, { body: { removeProjectAccess: { project: alice.projectId } } }), 404, 'itemNotFound');
  assert.equal((await call('POST', `/volumes/${v.body.volume.id}/action`, { body: { 'os-force_delete': {} } })).status, 202);
  const pub = await makeType();
  assertFault(await call('POST', `/types/${pub.id}/action`, { body: { addProjectAccess: { project: alice.projectId } } }), 400, 'badRequest');
});

test('default types per project (3.62): set, show, list, used by create, unset', async () => {
  const me = await tenant(cloud);
  const t = await makeType();
  const path = `/default-types/${me.projectId}`;
  assertFault(await call('PUT', path, { version: '3.61', body: { default_type: { volume_type: t.name } } }), 404, 'itemNotFound');
  const set = await call('PUT', path, { version: '3.62', body: { default_type: { volume_type: t.name } } });
  assert.equal(set.status, 200, JSON.stringify(set.body));
  assert.deepEqual(set.body.default_type, { project_id: me.projectId, volume_type_id: t.id });
  assert.deepEqual((await call('GET', path, { version: '3.62' })).body.default_type, { project_id: me.projectId, volume_type_id: t.id });
  assert.ok((await call('GET', '/default-types', { version: '3.62' })).body.default_types.some((d: { project_id: string }) => d.project_id === me.projectId));
  assertFault(await call('GET', path, { as: as(me), version: '3.62' }), 403, 'forbidden');
  const v = await call('POST', '/volumes', { as: as(me), body: { volume: { size: 1 } } });
  assert.equal(v.body.volume.volume_type, t.name);
  assert.equal((await call('GET', '/types/default', { as: as(me) })).body.volume_type.id, t.id);
  assert.equal((await call('DELETE', path, { version: '3.62' })).status, 204);
  assertFault(await call('GET', path, { version: '3.62' }), 404, 'itemNotFound');
  assert.equal((await call('POST', `/volumes/${v.body.volume.id}/action`, { body: { 'os-force_delete': {} } })).status, 202);
});

test('quotas: defaults, per-type keys, usage, update, reset; enforced at create and extend (413 overLimit)', async () => {
  const me = await tenant(cloud);
  const mine = as(me);
  const t = await makeType();
  const q = `/os-quota-sets/${me.projectId}`;
  const shown = await call('GET', q, { as: mine });
  assert.equal(shown.status, 200);
  schemas.add('quotas', 'show_quota_set', shown);
  assert.equal(shown.body.quota_set.volumes, 10);
  assert.equal(shown.body.quota_set.gigabytes, 1000);
  assert.equal(shown.body.quota_set[`volumes_${t.name}`], -1);
  schemas.add('quotas', 'show_quota_set', await call('GET', `${q}/defaults`, { as: mine }));
  assertFault(await call('GET', q, { as: as(alice) }), 403, 'forbidden');
  assertFault(await call('PUT', q, { as: mine, body: { quota_set: { volumes: 1 } } }), 403, 'forbidden');
  const upd = await call('PUT', q, { body: { quota_set: { volumes: 2, gigabytes: 5, [`volumes_${t.name}`]: 1 } } });
  assert.equal(upd.status, 200, JSON.stringify(upd.body));
  schemas.add('quotas', 'update_quota_set', upd);
  assertFault(await call('PUT', q, { body: { quota_set: { bogus: 1 } } }), 400, 'badRequest', /Bad key\(s\) in quota set: bogus/);
  assertFault(await call('PUT', q, { body: { quota_set: { volumes: -2 } } }), 400, 'badRequest');
  assertFault(await call('PUT', q, { body: { quota_set: { volumes: 'x' } } }), 400, 'badRequest');
  const create = (size: number, type?: string) => call('POST', '/volumes', { as: mine, body: { volume: { size, ...(type ? { volume_type: type } : {}) } } });
  assertFault(await create(6), 413, 'overLimit', /Requested volume or snapshot exceeds allowed gigabytes quota\. Requested 6G, quota is 5G and 0G has been consumed\./);
  const a = await create(2, t.name);
  assert.equal(a.status, 202);
  assertFault(await create(1, t.name), 413, 'overLimit', new RegExp(`Maximum number of volumes allowed \\(1\\) exceeded for quota 'volumes_${t.name}'`));
  const b = await create(2);
  assert.equal(b.status, 202);
  const over = await create(1);
  assertFault(over, 413, 'overLimit', /Maximum number of volumes allowed \(2\) exceeded for quota 'volumes'/);
  assert.equal(over.headers.get('retry-after'), '0');
  const usage = await call('GET', `${q}?usage=true`, { as: mine });
  schemas.add('quotas', 'show_quota_set_usage', usage);
  assert.deepEqual(usage.body.quota_set.volumes, { limit: 2, in_use: 2, reserved: 0, allocated: 0 });
  assert.equal(usage.body.quota_set.gigabytes.in_use, 4);
  assert.equal(usage.body.quota_set[`gigabytes_${t.name}`].in_use, 2);
  const limits = await call('GET', '/limits', { as: mine });
  schemas.add('limits', 'show_limits', limits);
  assert.equal(limits.body.limits.absolute.maxTotalVolumes, 2);
  assert.equal(limits.body.limits.absolute.totalVolumesUsed, 2);
  assert.equal(limits.body.limits.absolute.totalGigabytesUsed, 4);
  // 3.39: an admin reads another project's limits
  assert.equal((await call('GET', `/limits?project_id=${me.projectId}`, { version: '3.39' })).body.limits.absolute.totalVolumesUsed, 2);
  // extend counts the growth against gigabytes
  await call('POST', `/volumes/${b.body.volume.id}/action`, { body: { 'os-reset_status': { status: 'available' } } });
  assertFault(await call('POST', `/volumes/${b.body.volume.id}/action`, { as: mine, body: { 'os-extend': { new_size: 4 } } }), 413, 'overLimit', /gigabytes quota\. Requested 2G, quota is 5G and 4G has been consumed/);
  assert.equal((await call('POST', `/volumes/${b.body.volume.id}/action`, { as: mine, body: { 'os-extend': { new_size: 3 } } })).status, 202);
  // per-volume limit
  await call('PUT', q, { body: { quota_set: { per_volume_gigabytes: 1, volumes: 10, gigabytes: 100 } } });
  assertFault(await create(2), 413, 'overLimit', /Requested volume size 2G is larger than maximum allowed limit 1G/);
  // delete resets to the defaults
  const del = await call('DELETE', q);
  assert.equal(del.status, 200);
  assert.equal((await call('GET', q, { as: mine })).body.quota_set.volumes, 10);
  for (const v of [a, b]) await call('POST', `/volumes/${v.body.volume.id}/action`, { body: { 'os-force_delete': {} } });
});

test('the backend report path: placed, created, extended, deleted (lifecycle.ts); stale reports change nothing', async () => {
  const db = cloud.server.database.db as unknown as Kysely<VolumeTables>;
  const v = (await call('POST', '/volumes', { as: as(alice), body: { volume: { size: 1 } } })).body.volume;
  const row = async () => db.selectFrom('volume_volumes').selectAll().where('id', '=', v.id).executeTakeFirst();
  assert.equal(specOf((await row())!, {}), null, 'no spec before a host has it');
  assert.equal(await placeVolume(db, v.id, 'host1@file#pool'), true);
  assert.equal(await placeVolume(db, v.id, 'host2@file#pool'), false, 'placed once');
  let r = (await row())!;
  assert.deepEqual(specOf(r, {}), { project_id: alice.projectId, state: 'present', size_gib: 1, backend: 'file', pool: 'pool', source: { type: 'blank' }, created: false, extra_specs: {}, exports: [] });
  assert.equal(await applyVolumeReport(db, v.id, r.version - 1, { state: 'present', size_gib: 1, location: null }), 'stale');
  assert.equal(await applyVolumeReport(db, v.id, r.version, { state: 'present', size_gib: 1, location: '/x' }), 'available');
  const shown = (await call('GET', `/volumes/${v.id}`)).body.volume;
  assert.equal(shown.status, 'available');
  assert.equal(shown['os-vol-host-attr:host'], 'host1@file#pool');
  const made = (await row())!;
  assert.equal(made.version, r.version + 1, 'made: a new version tells the host');
  assert.equal(specOf(made, {})!.created, true);
  assert.equal((await call('POST', `/volumes/${v.id}/action`, { as: as(alice), body: { 'os-extend': { new_size: 2 } } })).status, 202);
  r = (await row())!;
  assert.equal(specOf(r, {})!.size_gib, 2);
  assert.equal(await applyVolumeReport(db, v.id, r.version, { state: 'present', size_gib: 2, location: '/x' }), 'extended');
  const grown = (await call('GET', `/volumes/${v.id}`, { as: as(alice) })).body.volume;
  assert.equal(grown.status, 'available');
  assert.equal(grown.size, 2);
  // a placed volume's delete waits for its backend
  assert.equal((await call('DELETE', `/volumes/${v.id}`, { as: as(alice) })).status, 202);
  r = (await row())!;
  assert.equal(r.status, 'deleting');
  assert.equal(specOf(r, {})!.state, 'absent');
  assert.equal(await applyVolumeReport(db, v.id, r.version, null, { class: 'transient', code: 'busy', message: 'in use' }), 'error_deleting');
  assert.equal((await call('GET', `/volumes/${v.id}`, { as: as(alice) })).body.volume.status, 'error_deleting');
  assert.equal((await call('POST', `/volumes/${v.id}/action`, { body: { 'os-force_delete': {} } })).status, 202);
  r = (await row())!;
  assert.equal(await applyVolumeReport(db, v.id, r.version, { state: 'absent', size_gib: 0, location: null }), 'deleted');
  assertFault(await call('GET', `/volumes/${v.id}`, { as: as(alice) }), 404, 'itemNotFound');
});

test('a made volume whose data its backend lost: error with a user message, never made again', async () => {
  const db = cloud.server.database.db as unknown as Kysely<VolumeTables>;
  const v = (await call('POST', '/volumes', { as: as(alice), body: { volume: { size: 1 } } })).body.volume;
  const row = async () => (await db.selectFrom('volume_volumes').selectAll().where('id', '=', v.id).executeTakeFirst())!;
  await placeVolume(db, v.id, 'host1@file#pool');
  const lost = { class: 'user', code: 'data_missing', message: 'gone' } as const;
  // while creating, data_missing is the create's failure as any other
  assert.equal(specOf(await row(), {})!.created, false);
  assert.equal(await applyVolumeReport(db, v.id, (await row()).version, { state: 'present', size_gib: 1, location: '/x' }), 'available');
  assert.equal(specOf(await row(), {})!.created, true);
  assert.equal(await applyVolumeReport(db, v.id, (await row()).version - 1, null, lost), 'stale');
  assert.equal(await applyVolumeReport(db, v.id, (await row()).version, null, lost), 'error');
  assert.equal(await applyVolumeReport(db, v.id, (await row()).version, null, lost), 'ignored', 'said again (an agent restarted): no second message');
  const shown = (await call('GET', `/volumes/${v.id}`, { as: as(alice) })).body.volume;
  assert.equal(shown.status, 'error');
  const msgs = (await call('GET', `/messages?resource_uuid=${v.id}`, { as: as(alice), version: '3.3' })).body.messages;
  assert.equal(msgs.length, 1, JSON.stringify(msgs));
  assert.equal(msgs[0].event_id, 'VOLUME_VOLUME_008_001');
  // an error volume is still `created`: its host keeps reporting it lost, never makes it blank
  assert.equal(specOf(await row(), {})!.created, true);
  assert.equal((await call('DELETE', `/volumes/${v.id}`, { as: as(alice) })).status, 202);
  const r = await row();
  assert.equal(await applyVolumeReport(db, v.id, r.version, { state: 'absent', size_gib: 0, location: null }), 'deleted');
});

test('QoS specs: create, show, list, set and delete keys, associate with a type (one per type), delete in use only with force; admins only', async () => {
  const made = await call('POST', '/qos-specs', { body: { qos_specs: { name: uniqueName('qos'), consumer: 'front-end', read_iops_sec: '100', total_bytes_sec: 1000 } } });
  assert.equal(made.status, 200, JSON.stringify(made.body));
  schemas.add('qos', 'show_qos', made);
  const q = made.body.qos_specs;
  assert.deepEqual(q.specs, { read_iops_sec: '100', total_bytes_sec: '1000' });
  assertFault(await call('POST', '/qos-specs', { body: { qos_specs: { name: q.name } } }), 409, 'conflictingRequest', /already exists/);
  assertFault(await call('POST', '/qos-specs', { body: { qos_specs: { name: uniqueName('qos'), consumer: 'sideways' } } }), 400, 'badRequest');
  assertFault(await call('POST', '/qos-specs', { as: as(alice), body: { qos_specs: { name: uniqueName('qos') } } }), 403, 'forbidden');
  schemas.add('qos', 'show_qos', await call('GET', `/qos-specs/${q.id}`));
  const list = await call('GET', '/qos-specs');
  schemas.add('qos', 'list_qos', list);
  assert.ok(list.body.qos_specs.some((x: { id: string }) => x.id === q.id));
  const set = await call('PUT', `/qos-specs/${q.id}`, { body: { qos_specs: { write_iops_sec: '50' } } });
  schemas.add('qos', 'set_qos_key', set);
  assert.deepEqual(set.body.qos_specs, { write_iops_sec: '50' });
  schemas.add('qos', 'unset_qos_key', await call('PUT', `/qos-specs/${q.id}/delete_keys`, { body: { keys: ['read_iops_sec'] } }));
  assertFault(await call('PUT', `/qos-specs/${q.id}/delete_keys`, { body: { keys: ['nope'] } }), 404, 'itemNotFound', /has no spec with key nope/);
  assert.deepEqual((await call('GET', `/qos-specs/${q.id}`)).body.qos_specs.specs, { total_bytes_sec: '1000', write_iops_sec: '50' });
  const t = await makeType();
  schemas.add('qos', 'associate_qos', await call('GET', `/qos-specs/${q.id}/associate?vol_type_id=${t.id}`));
  assertFault(await call('GET', `/qos-specs/${q.id}/associate`), 400, 'badRequest', /Volume Type id must not be None/);
  assertFault(await call('GET', `/qos-specs/${q.id}/associate?vol_type_id=6d3c8d5c-7f3b-4c2f-9e37-0c7a1a1d1a1a`), 404, 'itemNotFound');
  const assoc = await call('GET', `/qos-specs/${q.id}/associations`);
  schemas.add('qos', 'show_association_qos', assoc);
  assert.deepEqual(assoc.body.qos_associations, [{ association_type: 'volume_type', id: t.id, name: t.name }]);
  assert.equal((await call('GET', `/types/${t.id}`)).body.volume_type.qos_specs_id, q.id);
  const other = (await call('POST', '/qos-specs', { body: { qos_specs: { name: uniqueName('qos') } } })).body.qos_specs;
  assertFault(await call('GET', `/qos-specs/${other.id}/associate?vol_type_id=${t.id}`), 400, 'badRequest', /already associated with another qos specs/);
  assertFault(await call('DELETE', `/qos-specs/${q.id}`), 400, 'badRequest', /Qos specs still in use/);
  schemas.add('qos', 'disassociate_qos', await call('GET', `/qos-specs/${q.id}/disassociate?vol_type_id=${t.id}`));
  assert.equal((await call('GET', `/types/${t.id}`)).body.volume_type.qos_specs_id, null);
  await call('GET', `/qos-specs/${q.id}/associate?vol_type_id=${t.id}`);
  schemas.add('qos', 'disassociate_all_qos', await call('GET', `/qos-specs/${q.id}/disassociate_all`));
  await call('GET', `/qos-specs/${q.id}/associate?vol_type_id=${t.id}`);
  schemas.add('qos', 'delete_qos', await call('DELETE', `/qos-specs/${q.id}?force=true`));
  assertFault(await call('GET', `/qos-specs/${q.id}`), 404, 'itemNotFound', new RegExp(`No such QoS spec ${q.id}`));
  assert.equal((await call('GET', `/types/${t.id}`)).body.volume_type.qos_specs_id, null);
  assert.equal((await call('DELETE', `/qos-specs/${other.id}`)).status, 202);
});

test('quota classes: the default class sets every project\'s defaults; admins only; extensions list what is served', async () => {
  const shown = await call('GET', '/os-quota-class-sets/default');
  assert.equal(shown.status, 200);
  assert.equal(shown.body.quota_class_set.id, 'default');
  schemas.add('quota_classes', 'show_quota_classes', shown);
  assert.equal(shown.body.quota_class_set.volumes, 10);
  assertFault(await call('GET', '/os-quota-class-sets/default', { as: as(alice) }), 403, 'forbidden');
  const upd = await call('PUT', '/os-quota-class-sets/default', { body: { quota_class_set: { volumes: 7 } } });
  assert.equal(upd.status, 200, JSON.stringify(upd.body));
  schemas.add('quota_classes', 'update_quota_classes', upd);
  assert.equal(upd.body.quota_class_set.volumes, 7);
  assertFault(await call('PUT', '/os-quota-class-sets/default', { body: { quota_class_set: { nope: 1 } } }), 400, 'badRequest', /Bad key/);
  const me = await tenant(cloud);
  assert.equal((await call('GET', `/os-quota-sets/${me.projectId}`, { as: as(me) })).body.quota_set.volumes, 7);
  assert.equal((await call('GET', `/os-quota-sets/${me.projectId}/defaults`, { as: as(me) })).body.quota_set.volumes, 7);
  assert.equal((await call('GET', '/limits', { as: as(me) })).body.limits.absolute.maxTotalVolumes, 7);
  // a project's own limit still wins
  await call('PUT', `/os-quota-sets/${me.projectId}`, { body: { quota_set: { volumes: 3 } } });
  assert.equal((await call('GET', `/os-quota-sets/${me.projectId}`, { as: as(me) })).body.quota_set.volumes, 3);
  assert.equal((await call('PUT', '/os-quota-class-sets/default', { body: { quota_class_set: { volumes: 10 } } })).status, 200);
  const ext = await call('GET', '/extensions', { as: as(alice) });
  schemas.add('extensions', 'list_extensions', ext);
  assert.ok(ext.body.extensions.some((e: { alias: string }) => e.alias === 'os-volume-transfer'));
  assert.ok(!ext.body.extensions.some((e: { alias: string }) => e.alias === 'backups'));
});

test('user messages (3.3): a backend\'s failed create leaves one for the project, worded as Cinder\'s; show, list, delete', async () => {
  const db = cloud.server.database.db as unknown as Kysely<VolumeTables>;
  const v = (await call('POST', '/volumes', { as: as(alice), body: { volume: { size: 1 } } })).body.volume;
  await placeVolume(db, v.id, 'host1@file#pool');
  const r = await db.selectFrom('volume_volumes').selectAll().where('id', '=', v.id).executeTakeFirstOrThrow();
  assert.equal(await applyVolumeReport(db, v.id, r.version, null, { class: 'permanent', code: 'no_space', message: 'pool full' }), 'error');
  assert.equal((await call('GET', `/volumes/${v.id}`, { as: as(alice) })).body.volume.status, 'error');
  assertFault(await call('GET', '/messages', { as: as(alice), version: '3.2' }), 404, 'itemNotFound');
  const list = await call('GET', `/messages?resource_uuid=${v.id}`, { as: as(alice), version: '3.3' });
  schemas.add('messages', 'list_messages', list);
  assert.equal(list.body.messages.length, 1);
  const m = list.body.messages[0];
  assert.equal(m.event_id, 'VOLUME_VOLUME_008_003');
  assert.equal(m.user_message, 'create volume from backend storage:Could not find any available weighted backend.');
  assert.equal(m.message_level, 'ERROR');
  assert.equal(m.resource_type, 'VOLUME');
  const shown = await call('GET', `/messages/${m.id}`, { as: as(alice), version: '3.3' });
  schemas.add('messages', 'show_message', shown);
  assertFault(await call('GET', `/messages/${m.id}`, { as: as(bob), version: '3.3' }), 404, 'itemNotFound');
  assert.equal((await call('GET', '/messages', { as: as(bob), version: '3.3' })).body.messages.length, 0);
  const del = await call('DELETE', `/messages/${m.id}`, { as: as(alice), version: '3.3' });
  schemas.add('messages', 'delete_message', del);
  assertFault(await call('GET', `/messages/${m.id}`, { as: as(alice), version: '3.3' }), 404, 'itemNotFound');
  assert.equal((await call('DELETE', `/volumes/${v.id}`, { as: as(alice) })).status, 202);
});

test('every collected body matches Tempest\'s volume schemas', () => {
  schemas.check();
});
