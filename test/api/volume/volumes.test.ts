// The block-storage API (Cinder v3) over HTTP: versions and microversions,
// both path forms, volumes (create, list/detail/summary with filters, sort
// and pagination, show, update, delete), metadata, actions, and bad input
// answered with Cinder's status and fault body. Response bodies are checked
// against Tempest's own volume schemas.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tenant, uniqueName, useCloud, type Tenant } from '../../harness.ts';
import { TempestSchemas } from '../compute/lib.ts';
import { adminCaller, assertFault, beforeNextTransaction, type Caller, cinder } from './lib.ts';

let alice: Tenant, bob: Tenant, reader: Tenant, admin: Caller;
const cloud = useCloud(async (c) => {
  alice = await tenant(c);
  bob = await tenant(c);
  reader = await tenant(c, ['reader']);
  admin = await adminCaller(c);
});
const call = cinder(cloud, () => admin);
const schemas = new TempestSchemas('volume');
const as = (t: Tenant): Caller => ({ token: t.token, projectId: t.projectId });

async function makeVolume(who: Caller, body: Record<string, unknown> = {}, version?: string): Promise<any> {
  const r = await call('POST', '/volumes', { as: who, version, body: { volume: { size: 1, name: uniqueName('v'), ...body } } });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  return r.body.volume;
}
/** What an admin does while there is no volume backend: the volume is made `available` by hand. */
async function makeAvailable(who: Caller, body: Record<string, unknown> = {}): Promise<any> {
  const v = await makeVolume(who, body);
  const r = await call('POST', `/volumes/${v.id}/action`, { body: { 'os-reset_status': { status: 'available' } } });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  return v;
}

test('versions: the root lists v3 (300) with the range served; /v3/ answers 200; the catalog has block-storage and volumev3', async () => {
  const root = await cloud.call('GET', '/volume/');
  assert.equal(root.status, 300);
  const v3 = root.body.versions.find((v: { id: string }) => v.id === 'v3.0');
  assert.equal(v3.status, 'CURRENT');
  assert.equal(v3.min_version, '3.0');
  assert.match(v3.version, /^3\.\d+$/);
  assert.ok(Number(v3.version.split('.')[1]) >= 64, v3.version);
  schemas.add('versions', 'list_versions', root);
  assert.equal((await cloud.call('GET', '/volume')).status, 300);
  const doc = await cloud.call('GET', '/volume/v3/');
  assert.equal(doc.status, 200);
  schemas.add('versions', 'volume_api_version_details', doc);
  const cat = await cloud.call('GET', '/identity/v3/auth/catalog', { token: cloud.adminToken });
  for (const type of ['block-storage', 'volumev3']) {
    const svc = cat.body.catalog.find((s: { type: string }) => s.type === type);
    assert.ok(svc, type);
    assert.ok(svc.endpoints.every((e: { url: string }) => e.url === `${cloud.url}/volume/v3`), JSON.stringify(svc.endpoints));
  }
});

test('microversions: 3.0 when absent, echoed with Vary; latest; out of range 406, malformed 400; routes newer than the request 404', async () => {
  const plain = await call('GET', '/volumes');
  assert.equal(plain.status, 200);
  assert.equal(plain.headers.get('openstack-api-version'), 'volume 3.0');
  assert.match(plain.headers.get('vary') ?? '', /OpenStack-API-Version/i);
  const latest = await call('GET', '/volumes', { version: 'latest' });
  assert.equal(latest.headers.get('openstack-api-version'), `volume ${(await cloud.call('GET', '/volume/')).body.versions[0].version}`);
  assertFault(await call('GET', '/volumes', { version: '3.999' }), 406, 'computeFault', /Version 3\.999 is not supported by the API\. Minimum is 3\.0 and maximum is 3\.\d+\./);
  assertFault(await call('GET', '/volumes', { version: '2.0' }), 406, 'computeFault');
  assertFault(await call('GET', '/volumes', { version: '3.x' }), 400, 'badRequest', /API Version String 3\.x is of invalid format/);
  assertFault(await call('GET', '/volumes/summary', { version: '3.11' }), 404, 'itemNotFound');
  assert.equal((await call('GET', '/volumes/summary', { version: '3.12' })).status, 200);
  // without a token: 401 in Cinder's envelope
  assertFault(await cloud.call('GET', `/volume/v3/${admin.projectId}/volumes`), 401, 'unauthorized');
});

test('create and show, in both path forms, with Tempest\'s schemas; the volume stays creating (no backend yet)', async () => {
  const r = await call('POST', '/volumes', { as: as(alice), body: { volume: { size: 2, name: 'data', description: 'd', metadata: { a: '1' } } } });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  schemas.add('volumes', 'create_volume', r);
  const v = r.body.volume;
  assert.equal(v.status, 'creating');
  assert.equal(v.size, 2);
  assert.equal(v.volume_type, '__DEFAULT__');
  assert.equal(v.availability_zone, 'nova');
  assert.equal(v.bootable, 'false');
  assert.deepEqual(v.metadata, { a: '1' });
  const shown = await call('GET', `/volumes/${v.id}`, { as: as(alice) });
  assert.equal(shown.status, 200);
  assert.equal(shown.body.volume['os-vol-tenant-attr:tenant_id'], alice.projectId);
  assert.equal(shown.body.volume['os-vol-host-attr:host'], undefined, 'the host is for admins');
  schemas.add('volumes', 'show_volume', shown);
  const projectless = await call('GET', `/volumes/${v.id}`, { as: as(alice), projectless: true, version: '3.64' });
  assert.equal(projectless.status, 200);
  assert.equal(projectless.body.volume.volume_type_id, (await call('GET', '/types/default', { as: as(alice) })).body.volume_type.id);
  assert.ok(!('encryption_key_id' in projectless.body.volume), 'shown only for an encrypted volume');
  schemas.add('v3_64.volumes', 'show_volume', projectless);
  const asAdmin = await call('GET', `/volumes/${v.id}`, { version: '3.64' });
  assert.equal(asAdmin.body.volume['os-vol-host-attr:host'], null);
  assert.equal(asAdmin.body.volume.cluster_name, null);
  schemas.add('v3_64.volumes', 'show_volume', asAdmin);
  const detail364 = await call('GET', '/volumes/detail?all_tenants=1', { version: '3.64' });
  assert.ok(detail364.body.volumes.some((x: { id: string }) => x.id === v.id));
  schemas.add('v3_64.volumes', 'list_volumes_with_detail', detail364);
  const created364 = await call('POST', '/volumes', { version: '3.64', body: { volume: { size: 1 } } });
  schemas.add('v3_64.volumes', 'create_volume', created364);
  assert.equal(created364.body.volume.volume_type_id, projectless.body.volume.volume_type_id);
  assert.equal((await call('DELETE', `/volumes/${created364.body.volume.id}?force=true`, { version: '3.23' })).status, 202);
  // 3.65: consumes_quota, and its filter
  const show365 = await call('GET', `/volumes/${v.id}`, { as: as(alice), version: '3.65' });
  assert.equal(show365.body.volume.consumes_quota, true);
  schemas.add('v3_65.volumes', 'show_volume', show365);
  schemas.add('v3_65.volumes', 'list_volumes_with_detail', await call('GET', '/volumes/detail', { as: as(alice), version: '3.65' }));
  assert.ok((await call('GET', '/volumes?consumes_quota=true', { as: as(alice), version: '3.65' })).body.volumes.some((x: { id: string }) => x.id === v.id));
  assert.equal((await call('GET', '/volumes?consumes_quota=false', { as: as(alice), version: '3.65' })).body.volumes.length, 0);
  assertFault(await call('GET', '/volumes?consumes_quota=maybe', { as: as(alice), version: '3.65' }), 400, 'badRequest');
  // another project's volume is not found, never forbidden
  assertFault(await call('GET', `/volumes/${v.id}`, { as: as(bob) }), 404, 'itemNotFound', new RegExp(`Volume ${v.id} could not be found`));
  assertFault(await call('PUT', `/volumes/${v.id}`, { as: as(bob), body: { volume: { name: 'x' } } }), 404, 'itemNotFound');
  assertFault(await call('DELETE', `/volumes/${v.id}`, { as: as(bob) }), 404, 'itemNotFound');
  assertFault(await call('POST', `/volumes/${v.id}/action`, { as: as(bob), body: { 'os-extend': { new_size: 3 } } }), 404, 'itemNotFound');
  assertFault(await call('GET', `/volumes/${v.id}/metadata`, { as: as(bob) }), 404, 'itemNotFound');
  // a creating volume cannot be deleted without force
  assertFault(await call('DELETE', `/volumes/${v.id}`, { as: as(alice) }), 400, 'badRequest', /Volume status must be available or error/);
  assert.equal((await call('POST', `/volumes/${v.id}/action`, { body: { 'os-force_delete': {} } })).status, 202);
  assertFault(await call('GET', `/volumes/${v.id}`, { as: as(alice) }), 404, 'itemNotFound');
});

test('bad input: size 0, negative, missing or not a number; unknown type (404), zone, snapshot and source volume (404); an unknown backup (3.47, 404); images not served yet; multiattach flag', async () => {
  const bad = (volume: Record<string, unknown>, version?: string) => call('POST', '/volumes', { as: as(alice), version, body: { volume } });
  assertFault(await bad({ size: 0 }), 400, 'badRequest', /size/);
  assertFault(await bad({ size: -1 }), 400, 'badRequest', /size/);
  assertFault(await bad({ size: '0' }), 400, 'badRequest', /size/);
  assertFault(await bad({ size: 'big' }), 400, 'badRequest', /size/);
  assertFault(await bad({ size: 1.5 }), 400, 'badRequest', /size/);
  assertFault(await bad({ name: 'nosize' }), 400, 'badRequest', /size/i);
  assertFault(await bad({ size: 1, volume_type: 'no-such-type' }), 404, 'itemNotFound', /Volume type with name no-such-type could not be found/);
  assertFault(await bad({ size: 1, availability_zone: 'mars' }), 400, 'badRequest', /Availability zone 'mars' is invalid/);
  assertFault(await bad({ size: 1, snapshot_id: '6d3c8d5c-7f3b-4c2f-9e37-0c7a1a1d1a1a' }), 404, 'itemNotFound', /Snapshot 6d3c8d5c-7f3b-4c2f-9e37-0c7a1a1d1a1a could not be found/);
  assertFault(await bad({ size: 1, source_volid: '6d3c8d5c-7f3b-4c2f-9e37-0c7a1a1d1a1a' }), 404, 'itemNotFound', /Volume 6d3c8d5c-7f3b-4c2f-9e37-0c7a1a1d1a1a could not be found/);
  assertFault(await bad({ size: 1, backup_id: '6d3c8d5c-7f3b-4c2f-9e37-0c7a1a1d1a1a' }, '3.47'), 404, 'itemNotFound', /Backup 6d3c8d5c-7f3b-4c2f-9e37-0c7a1a1d1a1a could not be found/);
  assertFault(await bad({ size: 1, imageRef: 'x' }), 400, 'badRequest', /image/);
  assertFault(await bad({ size: 1, multiattach: true }), 400, 'badRequest', /multiattach/);
  assertFault(await bad({ size: 1, metadata: { k: 5 } }), 400, 'badRequest');
  assertFault(await bad({ size: 1, metadata: { ['k'.repeat(256)]: 'v' } }), 400, 'badRequest', /key greater than 255/);
  assertFault(await bad({ size: 1, name: 7 }), 400, 'badRequest');
  // unknown attributes: ignored before 3.53, refused from it
  assert.equal((await bad({ size: 1, bogus: 1 }, '3.52')).status, 202);
  assertFault(await bad({ size: 1, bogus: 1 }, '3.53'), 400, 'badRequest', /bogus/);
  assertFault(await call('POST', '/volumes', { as: as(alice), body: { nothing: {} } }), 400, 'badRequest');
  assertFault(await call('POST', '/volumes', { as: as(alice), raw: undefined, body: [] } as never), 400, 'badRequest');
  // a reader may read but not create
  assertFault(await call('POST', '/volumes', { as: as(reader), body: { volume: { size: 1 } } }), 403, 'forbidden');
  assert.equal((await call('GET', '/volumes', { as: as(reader) })).status, 200);
  // NUL characters are bad input on both databases
  assertFault(await bad({ size: 1, name: 'a\u0000b' }), 400, 'badRequest');
});

test('quota holds under parallel creates: exactly the limit succeeds, the rest are 413', async () => {
  const me = await tenant(cloud);
  assert.equal((await call('PUT', `/os-quota-sets/${me.projectId}`, { body: { quota_set: { volumes: 3 } } })).status, 200);
  const answers = await Promise.all(Array.from({ length: 8 }, () => call('POST', '/volumes', { as: as(me), body: { volume: { size: 1 } } })));
  assert.deepEqual(answers.map((r) => r.status).sort(), [202, 202, 202, 413, 413, 413, 413, 413]);
  const listed = (await call('GET', '/volumes', { as: as(me) })).body.volumes;
  assert.equal(listed.length, 3);
  for (const v of listed) assert.equal((await call('POST', `/volumes/${v.id}/action`, { body: { 'os-force_delete': {} } })).status, 202);
});

test('list, detail, filters, sort, pagination, with_count, summary', async () => {
  const me = await tenant(cloud);
  const mine = as(me);
  const made: any[] = [];
  for (let i = 0; i < 4; i++) made.push(await makeVolume(mine, { name: `lv-${i}`, size: i + 1, metadata: { n: String(i % 2) } }));
  await call('POST', `/volumes/${made[0].id}/action`, { body: { 'os-reset_status': { status: 'available' } } });
  const list = await call('GET', '/volumes', { as: mine });
  schemas.add('volumes', 'list_volumes_no_detail', list);
  assert.deepEqual(list.body.volumes.map((v: { name: string }) => v.name), ['lv-3', 'lv-2', 'lv-1', 'lv-0'], 'newest first');
  const detail = await call('GET', '/volumes/detail', { as: mine });
  schemas.add('volumes', 'list_volumes_with_detail', detail);
  assert.equal(detail.body.volumes.length, 4);
  const names = async (q: string, version?: string) => (await call('GET', `/volumes/detail?${q}`, { as: mine, version })).body.volumes.map((v: { name: string }) => v.name);
  assert.deepEqual(await names('status=available'), ['lv-0']);
  assert.deepEqual(await names('name=lv-2'), ['lv-2']);
  assert.deepEqual(await names('size=2'), ['lv-1']);
  assert.deepEqual(await names(`metadata=${encodeURIComponent('{"n": "1"}')}`), ['lv-3', 'lv-1']);
  assert.deepEqual(await names('sort=size:asc'), ['lv-0', 'lv-1', 'lv-2', 'lv-3']);
  assert.deepEqual(await names('sort_key=name&sort_dir=asc'), ['lv-0', 'lv-1', 'lv-2', 'lv-3']);
  assert.deepEqual(await names(`name~=lv-&sort=name:asc`, '3.34'), ['lv-0', 'lv-1', 'lv-2', 'lv-3']);
  assert.deepEqual(await names('bootable=false&sort=name:asc', '3.2'), ['lv-0', 'lv-1', 'lv-2', 'lv-3']);
  assert.deepEqual(await names(`created_at=gte:${encodeURIComponent('2000-01-01T00:00:00')}&sort=name:asc`, '3.60'), ['lv-0', 'lv-1', 'lv-2', 'lv-3']);
  assert.deepEqual(await names(`created_at=lt:${encodeURIComponent('2000-01-01T00:00:00')}`, '3.60'), []);
  assertFault(await call('GET', '/volumes?sort=bogus:asc', { as: mine }), 400, 'badRequest', /sort key/);
  assertFault(await call('GET', '/volumes?host=x', { as: mine }), 400, 'badRequest', /Invalid filters host are found in query options/);
  assertFault(await call('GET', '/volumes?marker=6d3c8d5c-7f3b-4c2f-9e37-0c7a1a1d1a1a', { as: mine }), 404, 'itemNotFound');
  // pages of 3 then 1, following the next link
  const p1 = await call('GET', '/volumes?limit=3&sort=name:asc', { as: mine });
  assert.deepEqual(p1.body.volumes.map((v: { name: string }) => v.name), ['lv-0', 'lv-1', 'lv-2']);
  const next = new URL(p1.body.volumes_links[0].href);
  assert.equal(next.pathname, `/volume/v3/${me.projectId}/volumes`);
  const p2 = await cloud.call('GET', `${next.pathname}${next.search}`, { token: me.token });
  assert.deepEqual(p2.body.volumes.map((v: { name: string }) => v.name), ['lv-3']);
  assert.equal(p2.body.volumes_links, undefined);
  // with_count from 3.45
  const counted = await call('GET', '/volumes?limit=1&with_count=true', { as: mine, version: '3.45' });
  assert.equal(counted.body.count, 4);
  assert.equal(counted.body.volumes.length, 1);
  assert.equal((await call('GET', '/volumes?with_count=true', { as: mine, version: '3.44' })).body.count, undefined);
  // summary (3.12, metadata 3.36)
  const sum = await call('GET', '/volumes/summary', { as: mine, version: '3.36' });
  assert.equal(sum.status, 200);
  schemas.add('volumes', 'show_volume_summary', sum);
  assert.equal(sum.body['volume-summary'].total_count, 4);
  assert.equal(sum.body['volume-summary'].total_size, 10);
  assert.deepEqual(sum.body['volume-summary'].metadata, { n: ['0', '1'] });
  // an admin lists its own project's volumes, every project's with all_tenants
  assert.ok(!(await call('GET', '/volumes')).body.volumes.some((v: { id: string }) => v.id === made[0].id));
  const everyone = await call('GET', `/volumes/detail?all_tenants=1&project_id=${me.projectId}`);
  assert.equal(everyone.body.volumes.length, 4);
  for (const v of made) assert.equal((await call('POST', `/volumes/${v.id}/action`, { body: { 'os-force_delete': {} } })).status, 202);
  assert.equal((await call('GET', '/volumes', { as: mine })).body.volumes.length, 0);
});

test('update, metadata CRUD (with ETag from 3.15), and the readonly flag shown in metadata', async () => {
  const v = await makeAvailable(as(alice), { metadata: { a: '1' } });
  const u = await call('PUT', `/volumes/${v.id}`, { as: as(alice), body: { volume: { name: 'renamed', description: 'new' } } });
  assert.equal(u.status, 200);
  schemas.add('volumes', 'update_volume', u);
  assert.equal(u.body.volume.name, 'renamed');
  assertFault(await call('PUT', `/volumes/${v.id}`, { as: as(alice), body: { volume: { size: 5 } } }), 400, 'badRequest');
  const path = `/volumes/${v.id}/metadata`;
  const created = await call('POST', path, { as: as(alice), body: { metadata: { b: '2' } } });
  assert.equal(created.status, 200);
  schemas.add('volumes', 'create_volume_metadata', created);
  assert.deepEqual(created.body.metadata, { a: '1', b: '2' });
  const shown = await call('GET', path, { as: as(alice), version: '3.15' });
  schemas.add('volumes', 'show_volume_metadata', shown);
  const tag = shown.headers.get('etag')!;
  assert.ok(tag);
  assert.deepEqual((await call('PUT', path, { as: as(alice), body: { metadata: { c: '3' } } })).body.metadata, { c: '3' });
  assert.equal((await call('PUT', path, { as: as(alice), version: '3.15', headers: { 'If-Match': tag }, body: { metadata: { d: '4' } } })).status, 412, 'changed since read');
  const item = await call('GET', `${path}/c`, { as: as(alice) });
  schemas.add('volumes', 'show_volume_metadata_item', item);
  assert.deepEqual(item.body, { meta: { c: '3' } });
  const putItem = await call('PUT', `${path}/c`, { as: as(alice), body: { meta: { c: '33' } } });
  schemas.add('volumes', 'update_volume_metadata_item', putItem);
  assertFault(await call('PUT', `${path}/c`, { as: as(alice), body: { meta: { x: '1' } } }), 400, 'badRequest', /mismatch/);
  assertFault(await call('PUT', `${path}/c`, { as: as(alice), body: { meta: { c: '1', x: '1' } } }), 400, 'badRequest', /too many/);
  assert.equal((await call('DELETE', `${path}/c`, { as: as(alice) })).status, 200);
  assertFault(await call('DELETE', `${path}/c`, { as: as(alice) }), 404, 'itemNotFound', /has no metadata with key c/);
  assertFault(await call('GET', `${path}/c`, { as: as(alice) }), 404, 'itemNotFound');
  // readonly
  assert.equal((await call('POST', `/volumes/${v.id}/action`, { as: as(alice), body: { 'os-update_readonly_flag': { readonly: true } } })).status, 202);
  assert.equal((await call('GET', `/volumes/${v.id}`, { as: as(alice) })).body.volume.metadata.readonly, 'True');
  // bootable
  assert.equal((await call('POST', `/volumes/${v.id}/action`, { as: as(alice), body: { 'os-set_bootable': { bootable: true } } })).status, 200);
  assert.equal((await call('GET', `/volumes/${v.id}`, { as: as(alice) })).body.volume.bootable, 'true');
  assertFault(await call('POST', `/volumes/${v.id}/action`, { as: as(alice), body: { 'os-set_bootable': { bootable: 'maybe' } } }), 400, 'badRequest');
  assert.equal((await call('DELETE', `/volumes/${v.id}`, { as: as(alice) })).status, 202);
});

test('actions: extend (state and size checks, quota), reset_status and force_delete for admins only, unknown actions', async () => {
  const v = await makeVolume(as(alice), { size: 1 });
  const act = (body: unknown, who: Caller = as(alice), version?: string) => call('POST', `/volumes/${v.id}/action`, { as: who, body, version });
  assertFault(await act({ 'os-extend': { new_size: 2 } }), 400, 'badRequest', /status must be available/);
  assertFault(await act({ 'os-reset_status': { status: 'available' } }), 403, 'forbidden');
  assertFault(await act({ 'os-force_delete': {} }), 403, 'forbidden');
  assertFault(await act({ 'os-reset_status': { status: 'sleeping' } }, admin), 400, 'badRequest');
  assert.equal((await act({ 'os-reset_status': { status: 'available' } }, admin)).status, 202);
  assertFault(await act({ 'os-extend': { new_size: 1 } }), 400, 'badRequest', /New size for extend must be greater than current size/);
  assertFault(await act({ 'os-extend': { new_size: 0 } }), 400, 'badRequest');
  assert.equal((await act({ 'os-extend': { new_size: 3 } })).status, 202);
  const extending = (await call('GET', `/volumes/${v.id}`, { as: as(alice) })).body.volume;
  assert.equal(extending.status, 'extending');
  assert.equal(extending.size, 1, 'the size changes once the backend has grown the volume');
  const usage = (await call('GET', `/os-quota-sets/${alice.projectId}?usage=true`, { as: as(alice) })).body.quota_set;
  assert.ok(usage.gigabytes.in_use >= 3, 'quota counts the size asked for at once');
  assertFault(await act({ 'os-extend': { new_size: 4 } }), 400, 'badRequest');
  // in-use volumes extend from 3.42
  assert.equal((await act({ 'os-reset_status': { status: 'in-use' } }, admin)).status, 202);
  assertFault(await act({ 'os-extend': { new_size: 4 } }, as(alice), '3.41'), 400, 'badRequest');
  assert.equal((await act({ 'os-extend': { new_size: 4 } }, as(alice), '3.42')).status, 202);
  assertFault(await act({ 'os-initialize_connection': { connector: {} } }), 400, 'badRequest', /not supported by this cloud yet/);
  assertFault(await act({ 'os-fly': {} }), 400, 'badRequest', /There is no such action: os-fly/);
  assertFault(await act({ 'os-extend': { new_size: 5 }, 'os-fly': {} }), 400, 'badRequest');
  // deleting: a non-admin's force (3.23) is refused; an admin's is not
  assertFault(await call('DELETE', `/volumes/${v.id}?force=true`, { as: as(alice), version: '3.23' }), 403, 'forbidden');
  assert.equal((await call('DELETE', `/volumes/${v.id}?force=true`, { version: '3.23' })).status, 202);
  assertFault(await call('GET', `/volumes/${v.id}`, { as: as(alice) }), 404, 'itemNotFound');
});

test('image metadata: set, show, unset; shown on show and detail only when set; copied to a clone; glance_metadata filter for admins', async () => {
  const v = (await call('POST', '/volumes', { as: as(alice), body: { volume: { size: 1 } } })).body.volume;
  const act = (body: unknown, who: Caller = as(alice)) => call('POST', `/volumes/${v.id}/action`, { as: who, body });
  const before = await call('GET', `/volumes/${v.id}`, { as: as(alice) });
  assert.ok(!('volume_image_metadata' in before.body.volume));
  const set = await act({ 'os-set_image_metadata': { metadata: { image_name: 'debian', hw_disk_bus: 'virtio' } } });
  assert.equal(set.status, 200, JSON.stringify(set.body));
  schemas.add('volumes', 'update_volume_image_metadata', set);
  assert.deepEqual(set.body.metadata, { hw_disk_bus: 'virtio', image_name: 'debian' });
  const shown = await act({ 'os-show_image_metadata': null });
  schemas.add('volumes', 'show_volume_image_metadata', shown);
  assert.deepEqual(shown.body.metadata, { hw_disk_bus: 'virtio', image_name: 'debian' });
  const vol = await call('GET', `/volumes/${v.id}`, { as: as(alice) });
  schemas.add('volumes', 'show_volume', vol);
  assert.deepEqual(vol.body.volume.volume_image_metadata, { hw_disk_bus: 'virtio', image_name: 'debian' });
  const unset = await act({ 'os-unset_image_metadata': { key: 'hw_disk_bus' } });
  assert.equal(unset.status, 200);
  assertFault(await act({ 'os-unset_image_metadata': { key: 'hw_disk_bus' } }), 404, 'itemNotFound', /Glance metadata for volume\/snapshot .* cannot be found/);
  assertFault(await act({ 'os-set_image_metadata': { metadata: { k: 1 } } }), 400, 'badRequest');
  assertFault(await act({ 'os-set_image_metadata': { metadata: { k: 'v' } } }, as(bob)), 404, 'itemNotFound');
  const found = await call('GET', `/volumes/detail?all_tenants=1&glance_metadata=${encodeURIComponent('{"image_name": "debian"}')}`);
  assert.deepEqual(found.body.volumes.map((x: { id: string }) => x.id), [v.id]);
  assertFault(await call('GET', `/volumes?glance_metadata=${encodeURIComponent('{"image_name": "debian"}')}`, { as: as(alice) }), 400, 'badRequest', /Invalid filters glance_metadata/);
  await call('POST', `/volumes/${v.id}/action`, { body: { 'os-reset_status': { status: 'available' } } });
  const clone = await call('POST', '/volumes', { as: as(alice), body: { volume: { source_volid: v.id } } });
  assert.equal(clone.status, 202, JSON.stringify(clone.body));
  assert.deepEqual((await call('GET', `/volumes/${clone.body.volume.id}`, { as: as(alice) })).body.volume.volume_image_metadata, { image_name: 'debian' });
  for (const id of [clone.body.volume.id, v.id]) assert.equal((await call('POST', `/volumes/${id}/action`, { body: { 'os-force_delete': {} } })).status, 202);
});

test('the legacy attach flow: reserve, attach, begin/roll detaching, detach; multiattach; attached volumes are not deleted', async () => {
  const v = await makeAvailable(as(alice));
  const act = (body: unknown, who: Caller = as(alice)) => call('POST', `/volumes/${v.id}/action`, { as: who, body });
  const status = async () => (await call('GET', `/volumes/${v.id}`, { as: as(alice) })).body.volume;
  const server = '6d3c8d5c-7f3b-4c2f-9e37-0c7a1a1d1a1a';
  assert.equal((await act({ 'os-reserve': null })).status, 202);
  assert.equal((await status()).status, 'attaching');
  assertFault(await act({ 'os-reserve': null }), 400, 'badRequest', /Volume status must be available to reserve, but the status is attaching/);
  assert.equal((await act({ 'os-unreserve': null })).status, 202);
  assert.equal((await status()).status, 'available');
  await act({ 'os-reserve': null });
  assertFault(await act({ 'os-attach': { instance_uuid: 'not-a-uuid', mountpoint: '/dev/vdb' } }), 400, 'badRequest');
  assertFault(await act({ 'os-attach': { instance_uuid: server } }), 400, 'badRequest', /mountpoint/);
  assertFault(await act({ 'os-attach': { instance_uuid: server, mountpoint: '/dev/vdb', mode: 'xx' } }), 400, 'badRequest');
  assert.equal((await act({ 'os-attach': { instance_uuid: server, mountpoint: '/dev/vdb' } })).status, 202);
  const attached = await status();
  assert.equal(attached.status, 'in-use');
  assert.equal(attached.attachments.length, 1);
  assert.equal(attached.attachments[0].server_id, server);
  assert.equal(attached.attachments[0].device, '/dev/vdb');
  assert.equal(attached.attachments[0].id, v.id);
  const shown = await call('GET', `/volumes/${v.id}`, { as: as(alice) });
  schemas.add('volumes', 'show_volume', shown);
  assertFault(await call('DELETE', `/volumes/${v.id}`, { as: as(alice) }), 400, 'badRequest');
  assertFault(await call('POST', `/volumes/${v.id}/action`, { body: { 'os-force_delete': {} } }), 400, 'badRequest');
  assertFault(await act({ 'os-reserve': null }), 400, 'badRequest', /must be available to reserve/);
  assertFault(await call('POST', '/os-volume-transfer', { as: as(alice), body: { transfer: { volume_id: v.id } } }), 400, 'badRequest');
  assert.equal((await act({ 'os-begin_detaching': null })).status, 202);
  assert.equal((await status()).status, 'detaching');
  assert.equal((await act({ 'os-roll_detaching': null })).status, 202);
  assert.equal((await status()).status, 'in-use');
  assertFault(await act({ 'os-detach': { attachment_id: server } }), 404, 'itemNotFound');
  assert.equal((await act({ 'os-detach': {} })).status, 202);
  const detached = await status();
  assert.equal(detached.status, 'available');
  assert.deepEqual(detached.attachments, []);
  assertFault(await act({ 'os-begin_detaching': null }), 400, 'badRequest', /must be 'in-use'/);
  // admins detach by force; reset to detached clears attachments
  await act({ 'os-attach': { host_name: 'somehost', mountpoint: '/mnt/data' } });
  assertFault(await act({ 'os-force_detach': {} }), 403, 'forbidden');
  assert.equal((await act({ 'os-force_detach': {} }, admin)).status, 202);
  assert.equal((await status()).status, 'available');
  await act({ 'os-attach': { instance_uuid: server, mountpoint: '/dev/vdc' } });
  assert.equal((await act({ 'os-reset_status': { status: 'available', attach_status: 'detached' } }, admin)).status, 202);
  assert.deepEqual((await status()).attachments, []);
  // a readonly volume attaches read-only only
  await act({ 'os-update_readonly_flag': { readonly: true } });
  assertFault(await act({ 'os-attach': { instance_uuid: server, mountpoint: '/dev/vdb' } }), 400, 'badRequest', /Invalid attaching mode 'rw'/);
  assert.equal((await act({ 'os-attach': { instance_uuid: server, mountpoint: '/dev/vdb', mode: 'ro' } })).status, 202);
  assert.equal((await act({ 'os-detach': {} })).status, 202);
  assert.equal((await call('DELETE', `/volumes/${v.id}`, { as: as(alice) })).status, 202);
  // multiattach: a volume of a multiattach type takes a second server
  const type = (await call('POST', '/types', { body: { volume_type: { name: uniqueName('multi'), extra_specs: { multiattach: '<is> True' } } } })).body.volume_type;
  const m = await makeAvailable(as(alice), { volume_type: type.name });
  const mact = (body: unknown) => call('POST', `/volumes/${m.id}/action`, { as: as(alice), body });
  await mact({ 'os-attach': { instance_uuid: server, mountpoint: '/dev/vdb' } });
  assert.equal((await mact({ 'os-reserve': null })).status, 202);
  assert.equal((await mact({ 'os-attach': { instance_uuid: '7d3c8d5c-7f3b-4c2f-9e37-0c7a1a1d1a1a', mountpoint: '/dev/vdb' } })).status, 202);
  const both = (await call('GET', `/volumes/${m.id}`, { as: as(alice) })).body.volume;
  assert.equal(both.attachments.length, 2);
  assertFault(await mact({ 'os-detach': {} }), 400, 'badRequest', /More than one attachment/);
  for (const a of both.attachments) assert.equal((await mact({ 'os-detach': { attachment_id: a.attachment_id } })).status, 202);
  assert.equal((await call('GET', `/volumes/${m.id}`, { as: as(alice) })).body.volume.status, 'available');
  assert.equal((await call('DELETE', `/volumes/${m.id}`, { as: as(alice) })).status, 202);
});

test('availability zones and resource filters', async () => {
  const az = await call('GET', '/os-availability-zone', { as: as(alice) });
  assert.deepEqual(az.body, { availabilityZoneInfo: [{ zoneName: 'nova', zoneState: { available: true } }] });
  const rf = await call('GET', '/resource_filters?resource=volume', { as: as(alice), version: '3.33' });
  assert.equal(rf.body.resource_filters[0].resource, 'volume');
  assert.ok(rf.body.resource_filters[0].filters.includes('name'));
});

test('os-attach on a volume deleted meanwhile: Cinder\'s 404, not a 500', async () => {
  const v = await makeAvailable(as(alice));
  const restore = beforeNextTransaction(cloud.server.database.db, async () => {
    assert.equal((await call('DELETE', `/volumes/${v.id}`, { as: as(alice) })).status, 202);
  });
  try {
    const r = await call('POST', `/volumes/${v.id}/action`, { as: as(alice), body: { 'os-attach': { instance_uuid: '6d3c8d5c-7f3b-4c2f-9e37-0c7a1a1d1a1a', mountpoint: '/dev/vdb' } } });
    assertFault(r, 404, 'itemNotFound', new RegExp(`Volume ${v.id} could not be found`));
  } finally {
    restore();
  }
});

test('resources not served yet answer Cinder\'s 404 at every version; served ones do not (backups are served)', async () => {
  for (const version of [undefined, '3.0', '3.67']) {
    for (const path of ['/groups', '/manageable_volumes']) {
      const r = await call('GET', path, { version });
      assert.equal(r.status, 404, `${path} at ${version ?? 'no version'}: ${JSON.stringify(r.body)}`);
    }
    for (const path of ['/snapshots', '/volumes', '/backups', '/backups/detail', '/scheduler-stats/get_pools', '/os-services', '/os-hosts']) assert.equal((await call('GET', path, { version })).status, 200, path);
  }
  assert.equal((await call('GET', '/messages', { version: '3.3' })).status, 200);
  assert.equal((await call('GET', '/volume-transfers', { version: '3.55' })).status, 200);
  // the attachments API from 3.27
  assert.equal((await call('GET', '/attachments', { version: '3.26' })).status, 404);
  assert.equal((await call('GET', '/attachments', { version: '3.27' })).status, 200);
});

test('every collected body matches Tempest\'s volume schemas', () => {
  schemas.check();
});
