// Details of Cinder's behaviour Tempest checks (tempest.api.volume): the next
// link on every full page (the last one too, when the items fill it), the
// bootable filter before 3.2 (any value but false is true), a trailing slash
// on a collection is no list but a 404, a snapshot of volume_id null is a 404,
// and os-update_snapshot_status (creating -> available/error with progress,
// deleting -> error_deleting; other moves refused); encryption specs of types.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tenant, uniqueName, useCloud, type Tenant } from '../../harness.ts';
import { TempestSchemas } from '../compute/lib.ts';
import { adminCaller, assertFault, type Caller, cinder } from './lib.ts';

let alice: Tenant, admin: Caller;
const cloud = useCloud(async (c) => {
  alice = await tenant(c);
  admin = await adminCaller(c);
});
const call = cinder(cloud, () => admin);
const schemas = new TempestSchemas('volume');
const as = (t: Tenant): Caller => ({ token: t.token, projectId: t.projectId });

async function volume(who: Caller, name = uniqueName('v')): Promise<any> {
  const r = await call('POST', '/volumes', { as: who, body: { volume: { size: 1, name } } });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  return r.body.volume;
}

test('pagination: a next link on every full page, the last one included; the page after it is empty, without a link', async () => {
  const me = await tenant(cloud);
  for (let i = 0; i < 3; i++) await volume(as(me), `pg-${i}`);
  let path = '/volumes/detail?limit=1&sort=name:asc';
  const seen: string[] = [];
  for (let round = 0; round < 5; round++) {
    const r = await call('GET', path, { as: as(me) });
    schemas.add('volumes', 'list_volumes_with_detail', r);
    seen.push(...r.body.volumes.map((v: { name: string }) => v.name));
    const next = r.body.volumes_links?.find((l: { rel: string }) => l.rel === 'next')?.href;
    if (seen.length < 3 || r.body.volumes.length === 1) assert.ok(next, `a next link after ${seen.length}`);
    if (!next) { assert.equal(r.body.volumes.length, 0); break; }
    const u = new URL(next);
    path = `${u.pathname.replace(`/volume/v3/${me.projectId}`, '')}${u.search}`;
  }
  assert.deepEqual(seen, ['pg-0', 'pg-1', 'pg-2']);
  // limit 2: a full page with a link, then a short one without
  const p1 = await call('GET', '/volumes?limit=2&sort=name:asc', { as: as(me) });
  assert.equal(p1.body.volumes_links.length, 1);
  const u = new URL(p1.body.volumes_links[0].href);
  const p2 = await cloud.call('GET', `${u.pathname}${u.search}`, { token: me.token });
  assert.deepEqual(p2.body.volumes.map((v: { name: string }) => v.name), ['pg-2']);
  assert.equal(p2.body.volumes_links, undefined);
});

test('the bootable filter: before 3.2 only false/False/FALSE is false; from 3.2 a strict boolean', async () => {
  const me = await tenant(cloud);
  const plain = await volume(as(me));
  const boot = await volume(as(me));
  assert.equal((await call('POST', `/volumes/${boot.id}/action`, { as: as(me), body: { 'os-set_bootable': { bootable: true } } })).status, 200);
  const ids = async (q: string, version?: string) => (await call('GET', `/volumes?${q}`, { as: as(me), version })).body.volumes.map((v: { id: string }) => v.id);
  assert.deepEqual(await ids('bootable=false'), [plain.id]);
  assert.deepEqual(await ids('bootable=False'), [plain.id]);
  assert.deepEqual(await ids('bootable=true'), [boot.id]);
  assert.deepEqual(await ids('bootable=yes'), [boot.id], 'any other value is true before 3.2');
  assert.deepEqual(await ids('bootable=0', '3.2'), [plain.id]);
  assertFault(await call('GET', '/volumes?bootable=maybe', { as: as(me), version: '3.2' }), 400, 'badRequest');
});

test('a trailing slash: GET /volumes/ and /snapshots/ are 404, not lists; the version documents keep theirs', async () => {
  await volume(as(alice));
  assertFault(await call('GET', '/volumes/', { as: as(alice) }), 404, 'itemNotFound');
  assertFault(await call('GET', '/snapshots/', { as: as(alice) }), 404, 'itemNotFound');
  assertFault(await call('GET', '/volumes/detail/', { as: as(alice) }), 404, 'itemNotFound');
  assert.equal((await call('GET', '/volumes', { as: as(alice) })).status, 200);
  assert.equal((await cloud.call('GET', '/volume/v3/')).status, 200);
});

test('a snapshot of volume_id null is a 404 (the volume None); of no volume_id a 400', async () => {
  assertFault(await call('POST', '/snapshots', { as: as(alice), body: { snapshot: { volume_id: null } } }), 404, 'itemNotFound', /Volume None could not be found/);
  assertFault(await call('POST', '/snapshots', { as: as(alice), body: { snapshot: { name: 'x' } } }), 400, 'badRequest', /volume_id/);
});

test('os-update_snapshot_status: creating -> error/available with progress, deleting -> error_deleting; other moves 400', async () => {
  const me = as(alice);
  const v = await volume(me);
  await call('POST', `/volumes/${v.id}/action`, { body: { 'os-reset_status': { status: 'available' } } });
  const s = (await call('POST', '/snapshots', { as: me, body: { snapshot: { volume_id: v.id } } })).body.snapshot;
  assert.equal(s.status, 'creating');
  const update = (body: Record<string, unknown>, who: Caller = me) => call('POST', `/snapshots/${s.id}/action`, { as: who, body: { 'os-update_snapshot_status': body } });
  assertFault(await update({ status: 'bogus' }), 400, 'badRequest');
  assertFault(await update({ status: 'deleting' }), 400, 'badRequest', /not allowed for snapshot with status creating/);
  assertFault(await update({ status: 'error', progress: '180%' }), 400, 'badRequest', /integer percentage/);
  assert.equal((await update({ status: 'error', progress: '80%' })).status, 202);
  const shown = await call('GET', `/snapshots/${s.id}`, { as: me });
  schemas.add('snapshots', 'show_snapshot', shown);
  assert.equal(shown.body.snapshot.status, 'error');
  assert.equal(shown.body.snapshot['os-extended-snapshot-attributes:progress'], '80%');
  assertFault(await update({ status: 'available' }), 400, 'badRequest', /Snapshot status error not allowed/);
  await call('POST', `/snapshots/${s.id}/action`, { body: { 'os-reset_status': { status: 'deleting' } } });
  assert.equal((await update({ status: 'error_deleting' })).status, 202);
  assert.equal((await call('GET', `/snapshots/${s.id}`, { as: me })).body.snapshot.status, 'error_deleting');
  // another project's snapshot is not found
  const bob = await tenant(cloud);
  assertFault(await update({ status: 'error_deleting' }, as(bob)), 404, 'itemNotFound');
});

test('encryption specs of a type: create, show, show a key, update, delete; admins only; a type in use keeps them; no volume of an encrypted type', async () => {
  const t = (await call('POST', '/types', { body: { volume_type: { name: uniqueName('enc') } } })).body.volume_type;
  const path = `/types/${t.id}/encryption`;
  const none = await call('GET', path);
  assert.equal(none.status, 200);
  assert.deepEqual(none.body, {});
  assertFault(await call('POST', path, { body: { encryption: { cipher: 'aes-xts-plain64' } } }), 400, 'badRequest', /provider/);
  assertFault(await call('POST', path, { body: { encryption: { provider: 'luks', control_location: 'middle' } } }), 400, 'badRequest', /control_location/);
  assertFault(await call('POST', path, { as: as(alice), body: { encryption: { provider: 'luks' } } }), 403, 'forbidden');
  assertFault(await call('POST', '/types/6d3c8d5c-7f3b-4c2f-9e37-0c7a1a1d1a1a/encryption', { body: { encryption: { provider: 'luks' } } }), 404, 'itemNotFound');
  const made = await call('POST', path, { body: { encryption: { provider: 'LuksEncryptor', key_size: 256, cipher: 'aes-xts-plain64', control_location: 'front-end' } } });
  assert.equal(made.status, 200, JSON.stringify(made.body));
  schemas.add('encryption_types', 'create_encryption_type', made);
  assert.equal(made.body.encryption.volume_type_id, t.id);
  assert.equal(made.body.encryption.key_size, 256);
  assertFault(await call('POST', path, { body: { encryption: { provider: 'luks' } } }), 400, 'badRequest', /already exists/);
  const shown = await call('GET', path);
  schemas.add('encryption_types', 'show_encryption_type', shown);
  assert.equal(shown.body.provider, 'LuksEncryptor');
  assert.equal(shown.body.control_location, 'front-end');
  const upd = await call('PUT', `${path}/provider`, { body: { encryption: { key_size: 128, provider: 'SomeProvider', control_location: 'back-end' } } });
  assert.equal(upd.status, 200);
  schemas.add('encryption_types', 'update_encryption_type', upd);
  const item = await call('GET', `${path}/cipher`);
  schemas.add('encryption_types', 'show_encryption_specs_item', item);
  assert.deepEqual(item.body, { cipher: 'aes-xts-plain64' });
  assert.equal((await call('GET', path)).body.key_size, 128);
  assertFault(await call('GET', `${path}/nothing`), 404, 'itemNotFound');
  // no volume is made of an encrypted type, nor retyped to one
  assertFault(await call('POST', '/volumes', { as: as(alice), body: { volume: { size: 1, volume_type: t.name } } }), 400, 'badRequest', /encryption/);
  const v = await volume(as(alice));
  await call('POST', `/volumes/${v.id}/action`, { body: { 'os-reset_status': { status: 'available' } } });
  assertFault(await call('POST', `/volumes/${v.id}/action`, { as: as(alice), body: { 'os-retype': { new_type: t.name } } }), 400, 'badRequest', /encryption/);
  assert.equal((await call('DELETE', `${path}/provider`)).status, 202);
  assert.deepEqual((await call('GET', path)).body, {});
  assertFault(await call('DELETE', `${path}/provider`), 404, 'itemNotFound');
  // a type in use keeps its specs as they are
  const used = (await call('POST', '/volumes', { as: as(alice), body: { volume: { size: 1, volume_type: t.name } } }));
  assert.equal(used.status, 202);
  assertFault(await call('POST', path, { body: { encryption: { provider: 'luks' } } }), 400, 'badRequest', /in use/);
});

test('every collected body matches Tempest\'s volume schemas', () => {
  schemas.check();
});
