// Volume transfers over HTTP: offer (the volume awaits the transfer),
// list/detail/show, withdraw, accept into another project with the auth key
// (snapshots follow unless no_snapshots; the acceptor's quota is checked),
// wrong keys and states refused with Cinder's errors; both collections
// (os-volume-transfer, and volume-transfers from 3.55 with the 3.57 fields).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tenant, uniqueName, useCloud, type Tenant } from '../../harness.ts';
import { TempestSchemas } from '../compute/lib.ts';
import { adminCaller, assertFault, type Caller, cinder } from './lib.ts';

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

test('os-volume-transfer: offer, show, list, withdraw; accept into another project with the key; bad keys and states', async () => {
  const v = await availableVolume(as(alice), 2);
  const s = (await call('POST', '/snapshots', { as: as(alice), body: { snapshot: { volume_id: v.id } } })).body.snapshot;
  const offer = (who: Caller = as(alice)) => call('POST', '/os-volume-transfer', { as: who, body: { transfer: { volume_id: v.id, name: 'gift' } } });
  assertFault(await offer(), 400, 'badRequest', new RegExp(`Invalid snapshot: snapshot: ${s.id} status must be available`));
  await reset('snapshots', s.id, 'available');
  assertFault(await offer(as(bob)), 404, 'itemNotFound');
  const made = await offer();
  assert.equal(made.status, 202, JSON.stringify(made.body));
  schemas.add('transfers', 'create_volume_transfer', made);
  const t = made.body.transfer;
  assert.match(t.auth_key, /^[0-9a-f]{16}$/);
  assert.equal((await call('GET', `/volumes/${v.id}`, { as: as(alice) })).body.volume.status, 'awaiting-transfer');
  assertFault(await offer(), 400, 'badRequest', /Invalid volume: status must be available/);
  assertFault(await call('DELETE', `/volumes/${v.id}`, { as: as(alice) }), 400, 'badRequest');
  const shown = await call('GET', `/os-volume-transfer/${t.id}`, { as: as(alice) });
  schemas.add('transfers', 'show_volume_transfer', shown);
  assert.equal(shown.body.transfer.auth_key, undefined, 'the key is shown once');
  schemas.add('transfers', 'list_volume_transfers_no_detail', await call('GET', '/os-volume-transfer', { as: as(alice) }));
  const detail = await call('GET', '/os-volume-transfer/detail', { as: as(alice) });
  schemas.add('transfers', 'list_volume_transfers_with_detail', detail);
  assert.deepEqual(detail.body.transfers.map((x: { id: string }) => x.id), [t.id]);
  assertFault(await call('GET', `/os-volume-transfer/${t.id}`, { as: as(bob) }), 404, 'itemNotFound', new RegExp(`Transfer ${t.id} could not be found`));
  assert.equal((await call('GET', '/os-volume-transfer', { as: as(bob) })).body.transfers.length, 0);
  // accept: a wrong key, then the right one
  const accept = (key: string, who: Caller = as(bob)) => call('POST', `/os-volume-transfer/${t.id}/accept`, { as: who, body: { accept: { auth_key: key } } });
  assertFault(await accept('0000000000000000'), 400, 'badRequest', new RegExp(`Invalid auth key: Attempt to transfer ${t.id} with invalid auth key`));
  assertFault(await call('POST', `/os-volume-transfer/${t.id}/accept`, { as: as(bob), body: { accept: {} } }), 400, 'badRequest');
  const ok = await accept(t.auth_key);
  assert.equal(ok.status, 202, JSON.stringify(ok.body));
  schemas.add('transfers', 'accept_volume_transfer', ok);
  const moved = (await call('GET', `/volumes/${v.id}`, { as: as(bob) })).body.volume;
  assert.equal(moved.status, 'available');
  assert.equal(moved.user_id, bob.userId);
  assertFault(await call('GET', `/volumes/${v.id}`, { as: as(alice) }), 404, 'itemNotFound');
  assert.equal((await call('GET', `/snapshots/${s.id}`, { as: as(bob) })).status, 200, 'its snapshots follow');
  assertFault(await accept(t.auth_key), 404, 'itemNotFound', /could not be found/);
  const usage = (await call('GET', `/os-quota-sets/${bob.projectId}?usage=true`, { as: as(bob) })).body.quota_set;
  assert.equal(usage.volumes.in_use, 1);
  assert.equal(usage.gigabytes.in_use, 4);
  // withdraw: the volume is available again
  const t2 = (await call('POST', '/os-volume-transfer', { as: as(bob), body: { transfer: { volume_id: v.id } } })).body.transfer;
  schemas.add('transfers', 'delete_volume_transfer', await call('DELETE', `/os-volume-transfer/${t2.id}`, { as: as(bob) }));
  assert.equal((await call('GET', `/volumes/${v.id}`, { as: as(bob) })).body.volume.status, 'available');
  assert.equal((await call('DELETE', `/volumes/${v.id}?cascade=true`, { as: as(bob) })).status, 202);
});

test('the acceptor\'s quota is checked (413), and the offer stays', async () => {
  const me = await tenant(cloud);
  const v = await availableVolume(as(alice), 3);
  const t = (await call('POST', '/os-volume-transfer', { as: as(alice), body: { transfer: { volume_id: v.id } } })).body.transfer;
  await call('PUT', `/os-quota-sets/${me.projectId}`, { body: { quota_set: { gigabytes: 2 } } });
  assertFault(await call('POST', `/os-volume-transfer/${t.id}/accept`, { as: as(me), body: { accept: { auth_key: t.auth_key } } }), 413, 'overLimit', /gigabytes quota/);
  assert.equal((await call('GET', `/os-volume-transfer/${t.id}`, { as: as(alice) })).status, 200);
  assert.equal((await call('GET', `/volumes/${v.id}`, { as: as(alice) })).body.volume.status, 'awaiting-transfer');
  // a forced delete of the volume withdraws its offer
  assert.equal((await call('POST', `/volumes/${v.id}/action`, { body: { 'os-force_delete': {} } })).status, 202);
  assertFault(await call('GET', `/os-volume-transfer/${t.id}`, { as: as(alice) }), 404, 'itemNotFound');
});

test('volume-transfers (3.55+): no_snapshots leaves the snapshots behind; 3.57 fields; 3.59 pagination', async () => {
  assertFault(await call('GET', '/volume-transfers', { as: as(alice), version: '3.54' }), 404, 'itemNotFound');
  const v = await availableVolume(as(alice));
  const s = (await call('POST', '/snapshots', { as: as(alice), body: { snapshot: { volume_id: v.id } } })).body.snapshot;
  const made = await call('POST', '/volume-transfers', { as: as(alice), version: '3.57', body: { transfer: { volume_id: v.id, no_snapshots: true } } });
  assert.equal(made.status, 202, JSON.stringify(made.body));
  schemas.add('v3_57.transfers', 'create_volume_transfer', made);
  const t = made.body.transfer;
  assert.equal(t.no_snapshots, true);
  assert.equal(t.source_project_id, alice.projectId);
  assert.equal(t.accepted, false);
  schemas.add('v3_57.transfers', 'show_volume_transfer', await call('GET', `/volume-transfers/${t.id}`, { as: as(alice), version: '3.57' }));
  schemas.add('v3_57.transfers', 'list_volume_transfers_with_detail', await call('GET', '/volume-transfers/detail', { as: as(alice), version: '3.57' }));
  const v2 = await availableVolume(as(alice));
  await call('POST', '/volume-transfers', { as: as(alice), version: '3.55', body: { transfer: { volume_id: v2.id } } });
  const page = await call('GET', '/volume-transfers?limit=1&sort=name:asc', { as: as(alice), version: '3.59' });
  assert.equal(page.body.transfers.length, 1);
  assert.ok(page.body.transfers_links[0].href.includes('marker='));
  assert.equal((await call('POST', `/volume-transfers/${t.id}/accept`, { as: as(bob), version: '3.55', body: { accept: { auth_key: t.auth_key } } })).status, 202);
  assert.equal((await call('GET', `/volumes/${v.id}`, { as: as(bob) })).status, 200);
  assert.equal((await call('GET', `/snapshots/${s.id}`, { as: as(alice) })).status, 200, 'the snapshot stays with the donor');
  assertFault(await call('GET', `/snapshots/${s.id}`, { as: as(bob) }), 404, 'itemNotFound');
  for (const id of [v.id, v2.id]) await call('POST', `/volumes/${id}/action`, { body: { 'os-force_delete': {} } });
});

test('every collected body matches Tempest\'s volume schemas', () => {
  schemas.check();
});
