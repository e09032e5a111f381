// Booting from a volume (Nova's block_device_mapping_v2 with a volume
// destination) end to end on the control plane, the host played through the
// agent API as in volume-attachments.test.ts: the create checks the volumes as
// Nova's _validate_bdm and holds the server in BUILD (task
// block_device_mapping) until the scheduler's host has the root volume's
// export; only then is the server handed to the host, its spec without an
// image and with the volume at boot_index 0; the host's report makes it
// ACTIVE and the volume in-use. The view shows image "" and the volumes. A
// delete deletes the volumes with delete_on_termination and leaves the others
// available. Bad input is Nova's 400.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { agentCall, image, type Nova, projectUser, TempestSchemas } from './lib.ts';
import { volumeHost } from './volume-host.ts';

let bob: Nova;
let diskImage: string;
let containerImage: string;
let flavorId: string;
const schemas = new TempestSchemas();
const { HOST, cloud, db, watch, until, report, volume, vol } = volumeHost('bv', (r) => ({ bob, diskImage, containerImage, flavorId } = r));

/** The volume's export for the server's attachment, as its backend reports it; the server's spec then lists it. */
async function exported(volumeId: string, format: 'raw' | 'qcow2' = 'raw'): Promise<{ attachmentId: string; spec: any }> {
  const v = (await watch()).volume.get(volumeId)!;
  assert.equal(v.spec.exports.length, 1, JSON.stringify(v.spec.exports));
  const e = v.spec.exports[0];
  await report('volume', volumeId, v.version, { state: 'present', size_gib: 1, location: `/vols/${volumeId}`, exports: [{ attachment_id: e.attachment_id, location: `/vols/${volumeId}`, format }] });
  return { attachmentId: e.attachment_id, spec: v.spec };
}


/** A bootable volume of `who`'s (Cinder's os-set_bootable). */
async function bootable(who: Nova): Promise<string> {
  const id = await volume(who);
  const r = await cloud.call('POST', `/volume/v3/${who.projectId}/volumes/${id}/action`, { token: who.token, body: { 'os-set_bootable': { bootable: true } } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return id;
}

const bdmBoot = (uuid: string, extra: Record<string, unknown> = {}) => ({ uuid, source_type: 'volume', destination_type: 'volume', boot_index: 0, ...extra });

async function create(who: Nova, bdms: unknown[], extra: Record<string, unknown> = {}, version = '2.37') {
  return who.call('POST', '/servers', { version, body: { server: { name: 'bv', flavorRef: flavorId, networks: 'none', block_device_mapping_v2: bdms, ...extra } } });
}

const row = (id: string) => db().selectFrom('compute_servers').selectAll().where('id', '=', id).executeTakeFirstOrThrow();

/** A server booted from `vid` (and data volumes), placed, exported, reported ACTIVE with its volumes attached. */
async function booted(who: Nova, bdms: unknown[], volumeIds: string[]): Promise<string> {
  const r = await create(who, bdms, { imageRef: '' });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const sid = r.body.server.id as string;
  await until('placed', async () => (await row(sid)).host === HOST);
  const s = await row(sid);
  assert.equal(s.task_state, 'block_device_mapping');
  assert.equal(s.vm_state, 'building');
  assert.equal((await who.call('GET', `/servers/${sid}`)).body.server.status, 'BUILD');
  // not handed to the host before its root volume is exported there
  assert.equal((await watch()).server.get(sid), undefined);
  const attachments: string[] = [];
  for (const vid of volumeIds) attachments.push((await exported(vid)).attachmentId);
  const h = await until('handed to the host', async () => (await watch()).server.get(sid));
  assert.equal(h.spec.image, null);
  assert.equal(h.spec.kind, 'vm');
  assert.equal(h.spec.volumes.find((v: any) => v.boot_index === 0)?.device, '/dev/vda');
  assert.equal(h.spec.volumes.length, volumeIds.length);
  assert.equal((await row(sid)).task_state, 'spawning');
  await report('server', sid, h.version, { power_state: 1, state: 'active', volumes: attachments.map((a) => ({ attachment_id: a, state: 'attached' })) });
  assert.equal((await who.call('GET', `/servers/${sid}`)).body.server.status, 'ACTIVE');
  for (const vid of volumeIds) assert.equal((await vol(who, vid)).status, 'in-use');
  return sid;
}

test('boot from an existing volume: held in block_device_mapping until exported, no image, ACTIVE, the volume in-use; delete_on_termination deletes it', async () => {
  const alice = await projectUser(cloud);
  const vid = await bootable(alice);
  // the boot index as a string, as some clients send it
  const sid = await booted(alice, [bdmBoot(vid, { delete_on_termination: true, boot_index: '0' })], [vid]);
  const s = await alice.call('GET', `/servers/${sid}`, { version: '2.3' });
  schemas.add('v2_1.servers', 'get_server', await alice.call('GET', `/servers/${sid}`));
  assert.equal(s.body.server.image, '');
  assert.deepEqual(s.body.server['os-extended-volumes:volumes_attached'], [{ id: vid, delete_on_termination: true }]);
  // no root disk on the host: the flavor's disk is not claimed
  const claimed = await db().selectFrom('placement_allocations').select(['resource_class', 'used']).where('consumer_uuid', '=', sid).execute();
  assert.deepEqual(Object.fromEntries(claimed.map((c) => [c.resource_class, c.used])), { VCPU: 1, MEMORY_MB: 64 });
  const att = await alice.call('GET', `/servers/${sid}/os-volume_attachments`);
  assert.deepEqual(att.body.volumeAttachments, [{ id: vid, serverId: sid, volumeId: vid, device: '/dev/vda' }]);
  assert.equal((await vol(alice, vid)).attachments[0].server_id, sid);
  // the root volume is not detached
  assert.equal((await alice.call('DELETE', `/servers/${sid}/os-volume_attachments/${vid}`)).status, 400);
  // rescue: a volume-backed server is refused, as Nova's
  assert.equal((await alice.call('POST', `/servers/${sid}/action`, { body: { rescue: {} } })).status, 400);
  // what is not served for a volume-backed server yet: 400s that say so (Nova's for backup and rebuild)
  for (const [action, body, re] of [
    ['createImage', { name: 'x' }, /volume-backed/], ['createBackup', { name: 'x', backup_type: 'daily', rotation: 1 }, /backup volume backed instance/],
    ['rebuild', { imageRef: diskImage }, /volume-backed server/], ['shelve', null, /volume-backed/],
  ] as const) {
    const r = await alice.call('POST', `/servers/${sid}/action`, { body: { [action]: body } });
    assert.equal(r.status, 400, `${action}: ${JSON.stringify(r.body)}`);
    assert.match(r.body.badRequest.message, re);
  }

  assert.equal((await alice.call('DELETE', `/servers/${sid}`)).status, 204);
  const h = (await watch()).server.get(sid)!;
  assert.equal(h.spec.deleted, true);
  await report('server', sid, h.version, { power_state: 0, state: 'deleted' });
  const d = await until('volume deleting', async () => ((await vol(alice, vid)).status === 'deleting' ? true : undefined));
  assert.ok(d);
  assert.equal((await watch()).volume.get(vid)!.spec.state, 'absent');
});

test('boot from a volume with a data volume (boot_index 1, no delete_on_termination): delete leaves the volumes available', async () => {
  const alice = await projectUser(cloud);
  const root = await bootable(alice);
  const data = await volume(alice);
  const sid = await booted(alice, [bdmBoot(root), { uuid: data, source_type: 'volume', destination_type: 'volume', boot_index: 1, device_name: 'vdc' }], [root, data]);
  const att = await alice.call('GET', `/servers/${sid}/os-volume_attachments`);
  assert.deepEqual(att.body.volumeAttachments.map((a: any) => [a.volumeId, a.device]).sort(), [[data, '/dev/vdc'], [root, '/dev/vda']].sort());
  assert.equal((await alice.call('DELETE', `/servers/${sid}`)).status, 204);
  const h = (await watch()).server.get(sid)!;
  await report('server', sid, h.version, { power_state: 0, state: 'deleted' });
  for (const v of [root, data]) {
    await until('available', async () => ((await vol(alice, v)).status === 'available' ? true : undefined));
    assert.deepEqual((await vol(alice, v)).attachments, []);
  }
});

test('an image server with a data volume at create: attached once exported, the image boots', async () => {
  const alice = await projectUser(cloud);
  const data = await volume(alice);
  const r = await create(alice, [{ uuid: data, source_type: 'volume', destination_type: 'volume', delete_on_termination: true }], { imageRef: diskImage });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const sid = r.body.server.id as string;
  const h = await until('handed', async () => (await watch()).server.get(sid));
  assert.equal(h.spec.image.id, diskImage);
  const { attachmentId } = await exported(data);
  const h2 = (await watch()).server.get(sid)!;
  assert.equal(h2.spec.volumes[0].device, '/dev/vdb');
  assert.equal(h2.spec.volumes[0].boot_index, null);
  await report('server', sid, h2.version, { power_state: 1, state: 'active', volumes: [{ attachment_id: attachmentId, state: 'attached' }] });
  assert.equal((await vol(alice, data)).status, 'in-use');
  const s = await alice.call('GET', `/servers/${sid}`, { version: '2.3' });
  assert.equal(s.body.server.image.id, diskImage);
  assert.deepEqual(s.body.server['os-extended-volumes:volumes_attached'], [{ id: data, delete_on_termination: true }]);
});

test('the root volume\'s export failing: the server is ERROR, its claim released, the volume available', async () => {
  const alice = await projectUser(cloud);
  const vid = await bootable(alice);
  const r = await create(alice, [bdmBoot(vid)], { imageRef: '' });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const sid = r.body.server.id as string;
  await until('placed', async () => (await row(sid)).host === HOST);
  const v = (await watch()).volume.get(vid)!;
  const rep = await agentCall(cloud, 'POST', `${HOST}/report`, { resources: [{
    kind: 'volume', id: vid, version: v.version, observed: { state: 'present', size_gib: 1, location: `/vols/${vid}` },
    error: { class: 'user', code: 'refused', message: 'The nbd export is not served yet.' },
  }] });
  assert.equal(rep.status, 200, await rep.text());
  await until('error', async () => (await row(sid)).vm_state === 'error');
  const s = await alice.call('GET', `/servers/${sid}`);
  assert.equal(s.body.server.status, 'ERROR');
  assert.match(s.body.server.fault.message, /Failure prepping block device/);
  assert.equal((await row(sid)).host, null);
  assert.equal((await vol(alice, vid)).status, 'available');
  assert.equal((await alice.call('DELETE', `/servers/${sid}`)).status, 204);
});

test('bad input: Nova\'s 400s, nothing left behind', async () => {
  const alice = await projectUser(cloud);
  const vid = await bootable(alice);
  const plain = await volume(alice);
  const bobs = await bootable(bob);
  const bad = async (bdms: unknown[], re: RegExp, extra: Record<string, unknown> = {}, version = '2.37') => {
    const r = await create(alice, bdms, extra, version);
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.match(r.body.badRequest.message, re);
  };
  await bad([bdmBoot('8b1b2a3c-1111-4222-8333-944455556666')], /Volume 8b1b2a3c-1111-4222-8333-944455556666 could not be found/);
  await bad([bdmBoot(bobs)], /could not be found/);
  await bad([bdmBoot(plain)], /is not bootable/);
  await bad([bdmBoot(vid, { boot_index: 1 })], /Boot sequence/);
  await bad([bdmBoot(vid), { uuid: plain, source_type: 'volume', destination_type: 'volume', boot_index: 2 }], /Boot sequence/);
  await bad([bdmBoot(vid), bdmBoot(vid)], /Boot sequence|already attached/);
  await bad([bdmBoot(vid), { uuid: vid, source_type: 'volume', destination_type: 'volume', boot_index: 1 }], /already attached/);
  await bad([bdmBoot(vid)], /container/, { imageRef: containerImage });
  await bad([{ uuid: plain, source_type: 'volume', destination_type: 'volume' }], /container/, { imageRef: containerImage });
  await bad([bdmBoot(vid)], /multiple instances/, { min_count: 2 });
  await bad([bdmBoot(vid, { device_name: 'sda!' })], /device_name/);
  // volumes made at create: Nova's checks
  await bad([{ source_type: 'blank', destination_type: 'volume', boot_index: -1 }], /Blank volumes .* need to have non-zero size/, { imageRef: diskImage });
  await bad([{ uuid: containerImage, source_type: 'image', destination_type: 'volume', boot_index: 0, volume_size: 1 }], /container/);
  await bad([{ uuid: '8b1b2a3c-1111-4222-8333-944455556666', source_type: 'image', destination_type: 'volume', boot_index: 0, volume_size: 1 }], /could not be found/);
  await bad([{ uuid: diskImage, source_type: 'image', destination_type: 'volume', boot_index: 0, volume_size: 'x' }], /Invalid volume_size/);
  await bad([{ uuid: '8b1b2a3c-1111-4222-8333-944455556666', source_type: 'snapshot', destination_type: 'volume', boot_index: 0 }], /could not be found/);
  await bad([{ source_type: 'blank', destination_type: 'local', boot_index: -1, volume_size: 1 }], /not supported yet/, { imageRef: diskImage });
  // an image without a size and no volume_size
  const sizeless = await image(cloud, { name: 'bv-sizeless', container_format: 'bare' }, Buffer.alloc(512, 2));
  await db().updateTable('image_images').set({ size: null }).where('id', '=', sizeless).execute();
  await bad([{ uuid: sizeless, source_type: 'image', destination_type: 'volume', boot_index: 0 }], /Images with destination_type 'volume' need to have a non-zero size specified/);
  // an in-use volume
  const sid = await booted(alice, [bdmBoot(vid)], [vid]);
  assert.ok(sid);
  await bad([bdmBoot(vid)], /status must be 'available'/);
  // bad boot_index: the schema's 400
  const r = await create(alice, [bdmBoot(plain, { boot_index: 'x' })], { imageRef: diskImage });
  assert.equal(r.status, 400);
  // nothing was made: no other server of alice's, no other volume, the volumes untouched
  const list = await alice.call('GET', '/servers');
  assert.deepEqual(list.body.servers.map((s: any) => s.id), [sid]);
  const vl = await cloud.call('GET', `/volume/v3/${alice.projectId}/volumes`, { token: alice.token });
  assert.deepEqual(vl.body.volumes.map((v: any) => v.id).sort(), [vid, plain].sort());
  assert.equal((await vol(alice, plain)).status, 'available');
  assert.equal((await vol(bob, bobs)).status, 'available');
});

/** The volume Cinder is making for a server's mapping: placed on the host, reported made (or failed). */
async function made(who: Nova, sid: string, fail = false): Promise<string> {
  const vl = await until('a volume made for the server', async () => {
    const l = await cloud.call('GET', `/volume/v3/${who.projectId}/volumes/detail`, { token: who.token });
    const bdms = await db().selectFrom('compute_block_device_mappings').select('volume_id').where('server_id', '=', sid).execute();
    return l.body.volumes.find((v: any) => bdms.some((b) => b.volume_id === v.id) && v.status === 'creating');
  });
  const v = await until('placed', async () => (await watch()).volume.get(vl.id));
  if (fail) {
    const r = await agentCall(cloud, 'POST', `${HOST}/report`, { resources: [{ kind: 'volume', id: vl.id, version: v.version, observed: { state: 'absent', size_gib: 0, location: null }, error: { class: 'permanent', code: 'no_space', message: 'no space left' } }] });
    assert.equal(r.status, 200, await r.text());
  } else {
    await report('volume', vl.id, v.version, { state: 'present', size_gib: v.spec.size_gib ?? 1, location: `/vols/${vl.id}` });
  }
  return vl.id as string;
}

test('image to volume (--boot-from-volume): Cinder makes the volume from the image, then the server is scheduled and boots from it', async () => {
  const alice = await projectUser(cloud);
  const r = await create(alice, [{ uuid: diskImage, source_type: 'image', destination_type: 'volume', boot_index: 0, delete_on_termination: true }], { imageRef: '' });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const sid = r.body.server.id as string;
  const s0 = await row(sid);
  assert.equal(s0.task_state, 'block_device_mapping');
  assert.equal(s0.host, null, 'not scheduled before its volume is made');
  assert.equal((await alice.call('GET', `/servers/${sid}`)).body.server.status, 'BUILD');
  const vid = await made(alice, sid);
  const v = await vol(alice, vid);
  assert.equal(v.bootable, 'true');
  assert.equal(v.size, 1, 'the image\'s size rounded up to GiB');
  assert.equal(v.volume_image_metadata.image_id, diskImage);
  await until('placed', async () => (await row(sid)).host === HOST);
  assert.equal((await row(sid)).task_state, 'block_device_mapping');
  const { attachmentId } = await exported(vid);
  const h = await until('handed', async () => (await watch()).server.get(sid));
  assert.equal(h.spec.image, null);
  assert.deepEqual(h.spec.volumes.map((x: any) => [x.volume_id, x.boot_index, x.device]), [[vid, 0, '/dev/vda']]);
  await report('server', sid, h.version, { power_state: 1, state: 'active', volumes: [{ attachment_id: attachmentId, state: 'attached' }] });
  const shown = await alice.call('GET', `/servers/${sid}`, { version: '2.3' });
  assert.equal(shown.body.server.status, 'ACTIVE');
  assert.equal(shown.body.server.image, '');
  assert.deepEqual(shown.body.server['os-extended-volumes:volumes_attached'], [{ id: vid, delete_on_termination: true }]);
  assert.equal((await vol(alice, vid)).status, 'in-use');
  assert.equal((await alice.call('DELETE', `/servers/${sid}`)).status, 204);
  const d = (await watch()).server.get(sid)!;
  await report('server', sid, d.version, { power_state: 0, state: 'deleted' });
  await until('volume deleting', async () => ((await vol(alice, vid)).status === 'deleting' ? true : undefined));
});

test('blank to volume beside an image; snapshot to volume as the root', async () => {
  const alice = await projectUser(cloud);
  const r = await create(alice, [{ source_type: 'blank', destination_type: 'volume', volume_size: 2, boot_index: -1 }], { imageRef: diskImage });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const sid = r.body.server.id as string;
  const blank = await made(alice, sid);
  const bv = await vol(alice, blank);
  assert.equal(bv.name, `${sid}-blank-vol`);
  assert.equal(bv.size, 2);
  const h = await until('handed', async () => (await watch()).server.get(sid));
  assert.equal(h.spec.image.id, diskImage);
  const { attachmentId } = await exported(blank);
  const h2 = (await watch()).server.get(sid)!;
  assert.equal(h2.spec.volumes[0].device, '/dev/vdb');
  await report('server', sid, h2.version, { power_state: 1, state: 'active', volumes: [{ attachment_id: attachmentId, state: 'attached' }] });
  assert.equal((await vol(alice, blank)).status, 'in-use');

  // a snapshot of a bootable volume, a new server's root made from it
  const src = await bootable(alice);
  const sn = await cloud.call('POST', `/volume/v3/${alice.projectId}/snapshots`, { token: alice.token, body: { snapshot: { volume_id: src } } });
  assert.equal(sn.status, 202, JSON.stringify(sn.body));
  const snapId = sn.body.snapshot.id as string;
  const sh = await until('snapshot placed', async () => (await watch()).volume_snapshot.get(snapId));
  const rep = await agentCall(cloud, 'POST', `${HOST}/report`, { resources: [{ kind: 'volume_snapshot', id: snapId, version: sh.version, observed: { state: 'present', location: `/vols/snap-${snapId}` } }] });
  assert.equal(rep.status, 200, await rep.text());
  await until('snapshot available', async () => ((await cloud.call('GET', `/volume/v3/${alice.projectId}/snapshots/${snapId}`, { token: alice.token })).body.snapshot.status === 'available' ? true : undefined));
  const r2 = await create(alice, [{ uuid: snapId, source_type: 'snapshot', destination_type: 'volume', boot_index: 0 }], { imageRef: '' });
  assert.equal(r2.status, 202, JSON.stringify(r2.body));
  const sid2 = r2.body.server.id as string;
  const root = await made(alice, sid2);
  assert.equal((await vol(alice, root)).snapshot_id, snapId);
  await until('placed', async () => (await row(sid2)).host === HOST);
  await exported(root);
  const h3 = await until('handed', async () => (await watch()).server.get(sid2));
  assert.equal(h3.spec.volumes[0].boot_index, 0);
});

test('a volume Cinder fails to make: the build is aborted, ERROR with the fault; delete removes the server', async () => {
  const alice = await projectUser(cloud);
  const r = await create(alice, [{ uuid: diskImage, source_type: 'image', destination_type: 'volume', boot_index: 0, volume_size: '1', delete_on_termination: true }], { imageRef: '' });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const sid = r.body.server.id as string;
  const vid = await made(alice, sid, true);
  await until('error', async () => (await row(sid)).vm_state === 'error');
  const s = await alice.call('GET', `/servers/${sid}`);
  assert.equal(s.body.server.status, 'ERROR');
  assert.match(s.body.server.fault.message, /did not finish being created/);
  assert.equal((await alice.call('DELETE', `/servers/${sid}`)).status, 204);
  assert.equal((await alice.call('GET', `/servers/${sid}`)).status, 404);
  // the failed volume went with it (delete_on_termination)
  const v = await cloud.call('GET', `/volume/v3/${alice.projectId}/volumes/${vid}`, { token: alice.token });
  assert.ok(v.status === 404 || v.body.volume.status === 'deleting', JSON.stringify(v.body));
});

test('response bodies match Tempest\'s schemas', () => {
  schemas.check();
});
