// Volumes from images (imageRef) and to images (os-volume_upload_image),
// with a simulated volume agent on the agent API (as kinds.test.ts): the
// image checks of Cinder's create flow, the image metadata a volume keeps,
// the source handed to the host, a failed copy's user message; an upload's
// queued image, its spec, the agent's PUT of the bytes (taken only for an
// image a volume is uploading to), and the volume back to available.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startCloud, tenant, type Cloud, type Tenant } from '../../harness.ts';
import { PROTOCOL_VERSION } from '../../../src/fleet/protocol.ts';
import { adminCaller, assertFault, type Caller, cinder, type VolCall } from './lib.ts';
import { TempestSchemas } from '../compute/lib.ts';

const schemas = new TempestSchemas('volume');

let cloud: Cloud;
let call: VolCall;
let agentToken: string;
let alice: Tenant;
let aliceC: Caller;
const HOST = `vi-${process.pid}`;

before(async () => {
  cloud = await startCloud();
  const admin = await adminCaller(cloud);
  call = cinder(cloud, () => admin);
  agentToken = readFileSync(join(cloud.dataDir, 'agent-token'), 'utf8').trim();
  alice = await tenant(cloud);
  aliceC = { token: alice.token, projectId: alice.projectId };
  await agent('PUT', HOST, {
    protocol: PROTOCOL_VERSION, kinds: { volume: ['file'], volume_snapshot: [] }, vcpus: 2, memory_mb: 2048, disk_gb: 10, version: 'test',
    volume_pools: [{
      name: `${HOST}@file#default`, total_capacity_gb: 100, free_capacity_gb: 90, provisioned_capacity_gb: 0, max_over_subscription_ratio: 20,
      thin_provisioning_support: true, reflink: true, multiattach: true, driver: 'file',
    }],
  });
});
after(async () => {
  await cloud?.close();
});

async function agent(method: string, path: string, body: unknown): Promise<any> {
  const r = await fetch(`${cloud.url}/agent/v1/hosts/${path}`, { method, headers: { 'x-stratus-agent-token': agentToken, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal(r.status, 200, await r.clone().text());
  return r.json();
}
const known: Record<string, Record<string, number>> = { volume: {}, volume_snapshot: {} };
async function watch(): Promise<Map<string, { version: number; spec: any }>> {
  const r = await agent('POST', `${HOST}/watch`, { known, wait: 0 });
  for (const res of r.resources) known[res.kind]![res.id] = res.version;
  for (const g of r.gone) delete known[g.kind]![g.id];
  return new Map(r.resources.filter((x: any) => x.kind === 'volume').map((x: any) => [x.id, { version: x.version, spec: x.spec }]));
}
const report = (id: string, version: number, observed: unknown, error?: unknown) =>
  agent('POST', `${HOST}/report`, { resources: [{ kind: 'volume', id, version, observed, ...(error ? { error } : {}) }] });

/** A Glance image as `token`'s project (the admin's by default), with `data` uploaded when given. */
async function image(body: Record<string, unknown>, data?: Buffer, token = cloud.adminToken): Promise<string> {
  const r = await cloud.call('POST', '/image/v2/images', { token, body: { container_format: 'bare', disk_format: 'raw', ...body } });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  if (data) {
    const up = await fetch(`${cloud.url}/image/v2/images/${r.body.id}/file`, { method: 'PUT', headers: { 'X-Auth-Token': token, 'Content-Type': 'application/octet-stream' }, body: new Uint8Array(data) });
    assert.equal(up.status, 204, await up.text());
  }
  return r.body.id as string;
}

const show = async (id: string) => (await call('GET', `/volumes/${id}`, { as: aliceC })).body.volume;

/** Creates a volume as alice and has the simulated host make it. */
async function madeVolume(body: Record<string, unknown>): Promise<any> {
  const c = await call('POST', '/volumes', { as: aliceC, body: { volume: body } });
  assert.equal(c.status, 202, JSON.stringify(c.body));
  const w = (await watch()).get(c.body.volume.id)!;
  assert.ok(w, 'the volume is handed to the host');
  await report(c.body.volume.id, w.version, { state: 'present', size_gib: w.spec.size_gib, location: '/x' });
  const v = await show(c.body.volume.id);
  assert.equal(v.status, 'available');
  return { ...v, spec: w.spec };
}

test('a volume from an image: Cinder checks, the image metadata kept, the source handed to the host, a failed copy in error with its message', async () => {
  const data = Buffer.alloc(4096, 7);
  const raw = await image({ name: 'vi-raw', visibility: 'public', min_ram: 64, hw_disk_bus: 'virtio' }, data);
  const create = (volume: Record<string, unknown>) => call('POST', '/volumes', { as: aliceC, body: { volume } });

  // refusals: unknown or invisible image, not active, unsupported formats, too small a volume, two sources
  assertFault(await create({ size: 1, imageRef: '6d3c8d5c-7f3b-4c2f-9e37-0c7a1a1d1a1a' }), 400, 'badRequest', /Invalid image identifier or unable to access requested image/);
  const hidden = await image({ name: 'vi-private', visibility: 'private' }, data);
  assertFault(await create({ size: 1, imageRef: hidden }), 400, 'badRequest', /Invalid image identifier/);
  const queued = await image({ name: 'vi-queued', visibility: 'public' });
  assertFault(await create({ size: 1, imageRef: queued }), 400, 'badRequest', /Image .* is not active/);
  const iso = await image({ name: 'vi-iso', visibility: 'public', disk_format: 'iso' }, data);
  assertFault(await create({ size: 1, imageRef: iso }), 400, 'badRequest', /disk_format iso/);
  const big = await image({ name: 'vi-big', visibility: 'public', min_disk: 5 }, data);
  assertFault(await create({ size: 2, imageRef: big }), 400, 'badRequest', /Volume size 2GB cannot be smaller than the image minDisk size 5GB/);
  const snapless = await create({ size: 1, imageRef: raw, snapshot_id: '6d3c8d5c-7f3b-4c2f-9e37-0c7a1a1d1a1a' });
  assertFault(snapless, 400, 'badRequest', /Only one of snapshot_id, source_volid, imageRef and backup_id/);
  const before = (await call('GET', '/volumes', { as: aliceC })).body.volumes.length;
  assert.equal(before, 0, 'nothing half-made');

  // min_disk sizes the volume when no size is given
  const sized = await create({ imageRef: big });
  assert.equal(sized.status, 202, JSON.stringify(sized.body));
  schemas.add('volumes', 'create_volume', sized);
  assert.equal(sized.body.volume.size, 5);

  const v = await madeVolume({ imageRef: raw, name: 'from-image' });
  assert.equal(v.size, 1);
  assert.equal(v.bootable, 'true');
  assert.deepEqual(v.spec.source, { type: 'image', image_id: raw, disk_format: 'raw' });
  const meta = v.volume_image_metadata;
  assert.equal(meta.image_id, raw);
  assert.equal(meta.image_name, 'vi-raw');
  assert.equal(meta.checksum, createHash('md5').update(data).digest('hex'));
  assert.equal(meta.disk_format, 'raw');
  assert.equal(meta.container_format, 'bare');
  assert.equal(meta.size, '4096');
  assert.equal(meta.min_ram, '64');
  assert.equal(meta.min_disk, '0');
  assert.equal(meta.hw_disk_bus, 'virtio');
  schemas.add('volumes', 'show_volume', await call('GET', `/volumes/${v.id}`, { as: aliceC }));
  schemas.add('v3_64.volumes', 'show_volume', await call('GET', `/volumes/${v.id}`, { as: aliceC, version: '3.64' }));
  schemas.add('volumes', 'list_volumes_with_detail', await call('GET', '/volumes/detail', { as: aliceC }));
  schemas.add('volumes', 'show_volume_image_metadata', await call('POST', `/volumes/${v.id}/action`, { as: aliceC, body: { 'os-show_image_metadata': {} } }));
  schemas.check();
  // image_id is accepted too (the older name)
  const older = await create({ size: 1, image_id: raw });
  assert.equal(older.status, 202, JSON.stringify(older.body));

  // the backend cannot read the image: error, with Cinder's copy image to volume message
  const bad = await create({ size: 1, imageRef: raw });
  const w = (await watch()).get(bad.body.volume.id)!;
  await report(bad.body.volume.id, w.version, { state: 'absent', size_gib: 0, location: null }, { class: 'user', code: 'source_unavailable', message: 'not a raw image' });
  assert.equal((await show(bad.body.volume.id)).status, 'error');
  const msgs = await call('GET', `/messages?resource_uuid=${bad.body.volume.id}`, { as: aliceC, version: '3.3' });
  assert.equal(msgs.body.messages.length, 1, JSON.stringify(msgs.body));
  assert.equal(msgs.body.messages[0].event_id, 'VOLUME_VOLUME_005_001');
  assert.match(msgs.body.messages[0].user_message, /copy image to volume/);
});

test('os-volume_upload_image: a queued image, the volume uploading until the agent has put the data, then available; a failure kills the image', async () => {
  const v = await madeVolume({ size: 1, name: 'to-image' });
  const act = (body: unknown, version?: string) => call('POST', `/volumes/${v.id}/action`, { as: aliceC, body, ...(version ? { version } : {}) });
  assertFault(await act({ 'os-volume_upload_image': {} }), 400, 'badRequest', /image_name/);
  assertFault(await act({ 'os-volume_upload_image': { image_name: 'x', disk_format: 'vmdk' } }), 400, 'badRequest', /Invalid disk-format 'vmdk'/);
  assertFault(await act({ 'os-volume_upload_image': { image_name: 'x', container_format: 'ovf' } }), 400, 'badRequest', /container-format/);
  assertFault(await act({ 'os-volume_upload_image': { image_name: 'x', visibility: 'public' } }, '3.1'), 403, 'forbidden');

  const r = await act({ 'os-volume_upload_image': { image_name: 'vi-upload', disk_format: 'qcow2', visibility: 'shared', protected: false } }, '3.1');
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const u = r.body['os-volume_upload_image'];
  for (const k of ['id', 'updated_at', 'status', 'display_description', 'size', 'volume_type', 'image_id', 'container_format', 'disk_format', 'image_name']) assert.ok(k in u, `${k} in ${JSON.stringify(u)}`);
  assert.equal(u.id, v.id);
  assert.equal(u.status, 'uploading');
  assert.equal(u.disk_format, 'qcow2');
  assert.equal(u.container_format, 'bare');
  assert.equal(u.image_name, 'vi-upload');
  assert.equal(u.visibility, 'shared');
  assert.equal(u.protected, false);
  assert.equal(u.volume_type.name, '__DEFAULT__');
  const img = await cloud.call('GET', `/image/v2/images/${u.image_id}`, { token: alice.token });
  assert.equal(img.body.status, 'queued');
  assert.equal(img.body.owner, alice.projectId);
  assert.equal(img.body.disk_format, 'qcow2');
  assert.equal((await show(v.id)).status, 'uploading');
  assertFault(await act({ 'os-volume_upload_image': { image_name: 'again' } }), 400, 'badRequest', /must be available/);
  assertFault(await call('DELETE', `/volumes/${v.id}`, { as: aliceC }), 400, 'badRequest');

  // the host is handed the upload
  const w = (await watch()).get(v.id)!;
  assert.deepEqual(w.spec.upload, { image_id: u.image_id, disk_format: 'qcow2' });
  // the agent's PUT is taken for this image, and for no other
  const other = await image({ name: 'vi-other', visibility: 'public' });
  const put = (id: string, body: Buffer) => fetch(`${cloud.url}/agent/v1/images/${id}/file`, { method: 'PUT', headers: { 'x-stratus-agent-token': agentToken, 'content-type': 'application/octet-stream' }, body: new Uint8Array(body) });
  assert.equal((await put(other, Buffer.alloc(10))).status, 403);
  const bytes = Buffer.alloc(8192, 3);
  assert.equal((await put(u.image_id, bytes)).status, 204);
  await report(v.id, w.version, { state: 'present', size_gib: 1, location: '/x', uploaded: u.image_id });
  const after = await show(v.id);
  assert.equal(after.status, 'available');
  assert.equal((await watch()).get(v.id)?.spec.upload, undefined, 'the upload is done: no longer in the spec');
  const done = await cloud.call('GET', `/image/v2/images/${u.image_id}`, { token: alice.token });
  assert.equal(done.body.status, 'active');
  assert.equal(done.body.checksum, createHash('md5').update(bytes).digest('hex'));
  assert.equal((await put(u.image_id, bytes)).status, 403, 'no upload is pending any more');

  // a failed upload: the volume back to available with a message, the image gone
  const r2 = await act({ 'os-volume_upload_image': { image_name: 'vi-fail' } });
  assert.equal(r2.status, 202);
  assert.equal(r2.body['os-volume_upload_image'].disk_format, 'raw');
  assert.equal('visibility' in r2.body['os-volume_upload_image'], false, 'visibility from 3.1');
  const w2 = (await watch()).get(v.id)!;
  await report(v.id, w2.version, { state: 'absent', size_gib: 0, location: null }, { class: 'user', code: 'refused', message: 'image gone' });
  assert.equal((await show(v.id)).status, 'available');
  assert.equal((await cloud.call('GET', `/image/v2/images/${r2.body['os-volume_upload_image'].image_id}`, { token: alice.token })).status, 404);
  const msgs = await call('GET', `/messages?resource_uuid=${v.id}`, { as: aliceC, version: '3.3' });
  assert.ok(msgs.body.messages.some((m: any) => m.event_id === 'VOLUME_VOLUME_003_004'), JSON.stringify(msgs.body));

  // in-use: only with force, and back to in-use
  const server = '6d3c8d5c-7f3b-4c2f-9e37-0c7a1a1d1a1a';
  assert.equal((await act({ 'os-reserve': null })).status, 202);
  assert.equal((await act({ 'os-attach': { instance_uuid: server, mountpoint: '/dev/vdb' } })).status, 202);
  assertFault(await act({ 'os-volume_upload_image': { image_name: 'vi-inuse' } }), 400, 'badRequest', /in-use with force/);
  const r3 = await act({ 'os-volume_upload_image': { image_name: 'vi-inuse', force: true } });
  assert.equal(r3.status, 202, JSON.stringify(r3.body));
  const w3 = (await watch()).get(v.id)!;
  assert.equal((await put(r3.body['os-volume_upload_image'].image_id, bytes)).status, 204);
  await report(v.id, w3.version, { state: 'present', size_gib: 1, location: '/x', uploaded: r3.body['os-volume_upload_image'].image_id });
  assert.equal((await show(v.id)).status, 'in-use');

  // the data reached the image but the agent's report is an error (a retry after a crash found it filled): the image stays
  const r4 = await act({ 'os-volume_upload_image': { image_name: 'vi-kept', force: true } });
  const w4 = (await watch()).get(v.id)!;
  const kept = r4.body['os-volume_upload_image'].image_id as string;
  assert.equal((await put(kept, bytes)).status, 204);
  await report(v.id, w4.version, { state: 'absent', size_gib: 0, location: null }, { class: 'user', code: 'refused', message: 'image not queued' });
  assert.equal((await show(v.id)).status, 'in-use');
  assert.equal((await cloud.call('GET', `/image/v2/images/${kept}`, { token: alice.token })).body.status, 'active');
});
