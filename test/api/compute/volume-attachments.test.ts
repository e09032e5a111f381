// Volumes attached to servers through Nova's os-volume_attachments, end to
// end on the control plane: no agent runs here, the tests speak for the one
// host (serving servers and volumes) through the agent API as its agent would
// (watch, report). Attach makes Cinder's attachment with the server's host as
// connector: the volume's spec gets a `local` export, the backend's report of
// it puts the volume in the server's spec, the host's report of it attached
// completes the attachment (volume in-use); a detach drops it from the spec
// and the host's report without it finishes it (volume available, export
// gone); a failed attach rolls back with a message; a deleted server's volumes
// are released (and deleted with delete_on_termination). Bodies are checked
// against Tempest's schemas.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { agentCall, dockerArchive, projectUser, TempestSchemas, type Nova } from './lib.ts';
import { volumeHost } from './volume-host.ts';

let admin: Nova;
let bob: Nova;
let diskImage: string;
let containerImage: string;
let flavorId: string;
const schemas = new TempestSchemas();
const { HOST, cloud, db, watch, until, report, volume, vol } = volumeHost('va', (r) => ({ admin, bob, diskImage, containerImage, flavorId } = r));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A server of `who`'s, placed on the host and reported ACTIVE by its agent. */
async function server(who: Nova, imageRef = diskImage): Promise<string> {
  const r = await who.call('POST', '/servers', { version: '2.37', body: { server: { name: 'va', imageRef, flavorRef: flavorId, networks: 'none' } } });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const id = r.body.server.id as string;
  for (let i = 0; i < 400; i++) {
    const s = await db().selectFrom('compute_servers').select(['task_state', 'host']).where('id', '=', id).executeTakeFirstOrThrow();
    if (s.task_state !== 'scheduling') break;
    await sleep(25);
  }
  const h = (await watch()).server.get(id);
  assert.ok(h, 'the server is placed on the host');
  await report('server', id, h.version, { power_state: 1, state: 'active' });
  assert.equal((await who.call('GET', `/servers/${id}`)).body.server.status, 'ACTIVE');
  return id;
}

/** The volume's export for the server's attachment, as its backend reports it; the server's spec then lists it. */
async function exported(volumeId: string, format: 'raw' | 'qcow2' = 'raw'): Promise<{ attachmentId: string; spec: any }> {
  const v = (await watch()).volume.get(volumeId)!;
  assert.equal(v.spec.exports.length, 1, JSON.stringify(v.spec.exports));
  const e = v.spec.exports[0];
  await report('volume', volumeId, v.version, { state: 'present', size_gib: 1, location: `/vols/${volumeId}`, exports: [{ attachment_id: e.attachment_id, location: `/vols/${volumeId}`, format }] });
  return { attachmentId: e.attachment_id, spec: v.spec };
}

async function attach(who: Nova, serverId: string, volumeId: string, extra: Record<string, unknown> = {}, version = '2.1') {
  return who.call('POST', `/servers/${serverId}/os-volume_attachments`, { version, body: { volumeAttachment: { volumeId, ...extra } } });
}

/** Attach, export and the host's report of it attached: the volume in-use. */
async function attached(who: Nova, serverId: string, volumeId: string, extra: Record<string, unknown> = {}, version = '2.1'): Promise<string> {
  const r = await attach(who, serverId, volumeId, extra, version);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const { attachmentId } = await exported(volumeId);
  const h = (await watch()).server.get(serverId)!;
  await report('server', serverId, h.version, { power_state: 1, state: 'active', volumes: [{ attachment_id: attachmentId, state: 'attached' }] });
  assert.equal((await vol(who, volumeId)).status, 'in-use');
  return attachmentId;
}

test('attach: a local export, the server spec lists the volume once exported, the host reports it attached: in-use', async () => {
  const alice = await projectUser(cloud);
  const sid = await server(alice);
  const vid = await volume(alice);
  const r = await attach(alice, sid, vid);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  schemas.add('v2_1.servers', 'attach_volume', r);
  assert.deepEqual(r.body.volumeAttachment, { id: vid, serverId: sid, volumeId: vid, device: '/dev/vdb' });
  assert.equal((await vol(alice, vid)).status, 'attaching');

  // the volume's host is handed an export for the server's host (the same: local)
  let h = await watch();
  const before = h.server.get(sid)!;
  assert.deepEqual(before.spec.volumes, [], 'not in the server spec before the export exists');
  const v = h.volume.get(vid)!;
  assert.equal(v.spec.exports.length, 1);
  assert.deepEqual({ ...v.spec.exports[0], attachment_id: undefined }, { attachment_id: undefined, host: HOST, protocol: 'local', read_only: false });
  const attachmentId = v.spec.exports[0].attachment_id as string;

  // the backend's export: the server's spec lists the volume, with a new version
  await report('volume', vid, v.version, { state: 'present', size_gib: 1, location: `/vols/${vid}`, exports: [{ attachment_id: attachmentId, location: `/vols/${vid}`, format: 'qcow2' }] });
  h = await watch();
  const after = h.server.get(sid)!;
  assert.ok(after.version > before.version, 'the server spec changed');
  assert.deepEqual(after.spec.volumes, [{ attachment_id: attachmentId, volume_id: vid, device: '/dev/vdb', location: `/vols/${vid}`, format: 'qcow2', read_only: false, boot_index: null }]);
  // Cinder's view of the attachment: the connection through the export
  const ca = await cloud.call('GET', `/volume/v3/${alice.projectId}/attachments/${attachmentId}`, { token: alice.token, headers: { 'OpenStack-API-Version': 'volume 3.27' } });
  assert.equal(ca.status, 200, JSON.stringify(ca.body));
  assert.equal(ca.body.attachment.status, 'attaching');
  assert.equal(ca.body.attachment.instance, sid);
  assert.deepEqual(ca.body.attachment.connection_info.driver_volume_type, 'stratus_local');
  assert.equal(ca.body.attachment.connection_info.data.location, `/vols/${vid}`);

  // the host attached it
  await report('server', sid, after.version, { power_state: 1, state: 'active', volumes: [{ attachment_id: attachmentId, state: 'attached' }] });
  const shown = await vol(alice, vid);
  assert.equal(shown.status, 'in-use');
  assert.equal(shown.attachments.length, 1);
  assert.equal(shown.attachments[0].server_id, sid);
  assert.equal(shown.attachments[0].device, '/dev/vdb');

  // the server's views
  const list = await alice.call('GET', `/servers/${sid}/os-volume_attachments`);
  assert.equal(list.status, 200);
  schemas.add('v2_1.servers', 'list_volume_attachments', list);
  assert.deepEqual(list.body.volumeAttachments, [{ id: vid, serverId: sid, volumeId: vid, device: '/dev/vdb' }]);
  const show = await alice.call('GET', `/servers/${sid}/os-volume_attachments/${vid}`, { version: '2.79' });
  schemas.add('v2_79.servers', 'show_volume_attachment', show);
  assert.equal(show.body.volumeAttachment.delete_on_termination, false);
  assert.equal(show.body.volumeAttachment.tag, null);
  const at89 = await alice.call('GET', `/servers/${sid}/os-volume_attachments/${vid}`, { version: '2.89' });
  assert.equal(at89.body.volumeAttachment.attachment_id, attachmentId);
  assert.equal(typeof at89.body.volumeAttachment.bdm_uuid, 'string');
  assert.equal(at89.body.volumeAttachment.id, undefined, '2.89 drops id');
  const s = await alice.call('GET', `/servers/${sid}`);
  schemas.add('v2_1.servers', 'get_server', s);
  assert.deepEqual(s.body.server['os-extended-volumes:volumes_attached'], [{ id: vid }]);
  const s3 = await alice.call('GET', `/servers/${sid}`, { version: '2.3' });
  assert.deepEqual(s3.body.server['os-extended-volumes:volumes_attached'], [{ id: vid, delete_on_termination: false }]);
  const acts = await alice.call('GET', `/servers/${sid}/os-instance-actions`);
  assert.ok(acts.body.instanceActions.some((a: any) => a.action === 'attach_volume'));

  // detach: the spec drops it; the host's report of the new version without it finishes it
  const d = await alice.call('DELETE', `/servers/${sid}/os-volume_attachments/${vid}`);
  assert.equal(d.status, 202, JSON.stringify(d.body));
  schemas.add('v2_1.servers', 'detach_volume', d);
  assert.equal((await vol(alice, vid)).status, 'detaching');
  const det = (await watch()).server.get(sid)!;
  assert.deepEqual(det.spec.volumes, []);
  // an older report (the volume still there) changes nothing
  await report('server', sid, after.version, { power_state: 1, state: 'active', volumes: [{ attachment_id: attachmentId, state: 'attached' }] });
  await report('server', sid, after.version, { power_state: 1, state: 'active', volumes: [] });
  assert.equal((await vol(alice, vid)).status, 'detaching', 'a report of an older version does not finish the detach');
  await report('server', sid, det.version, { power_state: 1, state: 'active', volumes: [] });
  const gone = await vol(alice, vid);
  assert.equal(gone.status, 'available');
  assert.deepEqual(gone.attachments, []);
  assert.deepEqual((await watch()).volume.get(vid)!.spec.exports, [], 'the export goes with the attachment');
  assert.deepEqual((await alice.call('GET', `/servers/${sid}/os-volume_attachments`)).body.volumeAttachments, []);
  assert.equal((await alice.call('GET', `/servers/${sid}/os-volume_attachments/${vid}`)).status, 404);
});

test('a failed attach rolls back: the volume available, a Cinder message, the instance action event in Error', async () => {
  const alice = await projectUser(cloud);
  const sid = await server(alice);
  const vid = await volume(alice);
  assert.equal((await attach(alice, sid, vid)).status, 200);
  const { attachmentId } = await exported(vid);
  const h = (await watch()).server.get(sid)!;
  assert.equal(h.spec.volumes.length, 1);
  await report('server', sid, h.version, { power_state: 1, state: 'active', volumes: [{ attachment_id: attachmentId, state: 'failed', message: 'no free PCIe root port' }] });
  const v = await vol(alice, vid);
  assert.equal(v.status, 'available');
  assert.equal((await db().selectFrom('volume_volumes').select('attach_status').where('id', '=', vid).executeTakeFirstOrThrow()).attach_status, 'detached');
  assert.deepEqual((await alice.call('GET', `/servers/${sid}/os-volume_attachments`)).body.volumeAttachments, []);
  const again = (await watch()).server.get(sid)!;
  assert.ok(again.version > h.version);
  assert.deepEqual(again.spec.volumes, []);
  const msgs = await cloud.call('GET', `/volume/v3/${alice.projectId}/messages`, { token: alice.token, headers: { 'OpenStack-API-Version': 'volume 3.3' } });
  assert.ok(msgs.body.messages.some((m: any) => m.resource_uuid === vid && m.user_message.startsWith('attach volume')), JSON.stringify(msgs.body));
  const acts = await alice.call('GET', `/servers/${sid}/os-instance-actions`);
  const act = acts.body.instanceActions.find((a: any) => a.action === 'attach_volume');
  const one = await admin.call('GET', `/servers/${sid}/os-instance-actions/${act.request_id}`, { version: '2.84' });
  const ev = one.body.instanceAction.events.find((e: any) => e.event === 'compute_attach_volume');
  assert.equal(ev.result, 'Error');
  assert.match(ev.details, /no free PCIe root port/);
});

test('an export the volume\'s backend fails rolls the attach back the same way', async () => {
  const alice = await projectUser(cloud);
  const sid = await server(alice);
  const vid = await volume(alice);
  assert.equal((await attach(alice, sid, vid)).status, 200);
  const v = (await watch()).volume.get(vid)!;
  assert.equal(v.spec.exports.length, 1);
  const r = await agentCall(cloud, 'POST', `${HOST}/report`, { resources: [{
    kind: 'volume', id: vid, version: v.version, observed: { state: 'absent', size_gib: 0, location: null },
    error: { class: 'user', code: 'refused', message: 'The nbd export is not served yet.' },
  }] });
  assert.equal(r.status, 200);
  const shown = await vol(alice, vid);
  assert.equal(shown.status, 'available', 'the volume itself is untouched by a failed export');
  assert.deepEqual((await watch()).volume.get(vid)!.spec.exports, []);
  assert.deepEqual((await alice.call('GET', `/servers/${sid}/os-volume_attachments`)).body.volumeAttachments, []);
  const acts = await alice.call('GET', `/servers/${sid}/os-instance-actions`);
  const act = acts.body.instanceActions.find((a: any) => a.action === 'attach_volume');
  const ev = (await admin.call('GET', `/servers/${sid}/os-instance-actions/${act.request_id}`, { version: '2.84' })).body.instanceAction.events[0];
  assert.equal(ev.result, 'Error');
  assert.match(ev.details, /nbd export is not served/);
  const msgs = await cloud.call('GET', `/volume/v3/${alice.projectId}/messages`, { token: alice.token, headers: { 'OpenStack-API-Version': 'volume 3.3' } });
  assert.equal(msgs.body.messages.filter((m: any) => m.resource_uuid === vid).length, 1);
  // it attaches again afterwards
  assert.equal((await attach(alice, sid, vid)).status, 200);
});

test('microversions: tag 2.49/2.70, delete_on_termination 2.79 and its update 2.85, multiattach 2.60; swap is refused', async () => {
  const alice = await projectUser(cloud);
  const sid = await server(alice);
  const v1 = await volume(alice);
  assert.equal((await attach(alice, sid, v1, { tag: 'data' }, '2.48')).status, 400);
  assert.equal((await attach(alice, sid, v1, { delete_on_termination: true }, '2.78')).status, 400);
  const r = await attach(alice, sid, v1, { tag: 'data', delete_on_termination: true, device: '/dev/vdd' }, '2.79');
  assert.equal(r.status, 200, JSON.stringify(r.body));
  schemas.add('v2_79.servers', 'attach_volume', r);
  assert.deepEqual(r.body.volumeAttachment, { id: v1, serverId: sid, volumeId: v1, device: '/dev/vdd', tag: 'data', delete_on_termination: true });
  const l70 = await alice.call('GET', `/servers/${sid}/os-volume_attachments`, { version: '2.70' });
  schemas.add('v2_70.servers', 'list_volume_attachments', l70);
  assert.equal(l70.body.volumeAttachments[0].tag, 'data');
  // the next free name skips the taken one
  const v2 = await volume(alice);
  const r2 = await attach(alice, sid, v2);
  assert.equal(r2.body.volumeAttachment.device, '/dev/vdb');
  // two attaches at once: two devices
  const [c1, c2] = [await volume(alice), await volume(alice)];
  const both = await Promise.all([attach(alice, sid, c1), attach(alice, sid, c2)]);
  assert.deepEqual(both.map((x) => x.status), [200, 200], JSON.stringify(both.map((x) => x.body)));
  assert.deepEqual(both.map((x) => x.body.volumeAttachment.device).sort(), ['/dev/vdc', '/dev/vde']);
  // a taken device, a bad one
  const v3 = await volume(alice);
  assert.equal((await attach(alice, sid, v3, { device: '/dev/vdd' })).status, 400);
  assert.equal((await attach(alice, sid, v3, { device: 'vdz!' })).status, 400);

  // 2.85: delete_on_termination updated; other fields must not change
  const up = await alice.call('PUT', `/servers/${sid}/os-volume_attachments/${v1}`, { version: '2.85', body: { volumeAttachment: { volumeId: v1, delete_on_termination: false } } });
  assert.equal(up.status, 202, JSON.stringify(up.body));
  schemas.add('v2_1.servers', 'update_attached_volume', up);
  assert.equal((await alice.call('GET', `/servers/${sid}/os-volume_attachments/${v1}`, { version: '2.79' })).body.volumeAttachment.delete_on_termination, false);
  assert.equal((await alice.call('PUT', `/servers/${sid}/os-volume_attachments/${v1}`, { version: '2.85', body: { volumeAttachment: { volumeId: v1, device: '/dev/vdq' } } })).status, 400);
  // swap: the admin's, and no driver swaps (409); a member may not (403)
  assert.equal((await alice.call('PUT', `/servers/${sid}/os-volume_attachments/${v1}`, { body: { volumeAttachment: { volumeId: v3 } } })).status, 403);
  const swap = await admin.call('PUT', `/servers/${sid}/os-volume_attachments/${v1}`, { body: { volumeAttachment: { volumeId: v3 } } });
  assert.equal(swap.status, 409, JSON.stringify(swap.body));
  assert.match(swap.body.conflictingRequest.message, /swap_volume/);

  // a multiattach volume: from 2.60
  const typ = await cloud.call('POST', '/volume/v3/types', { token: cloud.adminToken, body: { volume_type: { name: `multi-${process.pid}`, extra_specs: { multiattach: '<is> True' } } } });
  assert.equal(typ.status, 200, JSON.stringify(typ.body));
  const mv = await volume(alice, { volume_type: `multi-${process.pid}` });
  assert.equal((await vol(alice, mv)).multiattach, true);
  const early = await attach(alice, sid, mv, {}, '2.59');
  assert.equal(early.status, 400);
  assert.match(early.body.badRequest.message, /2\.60/);
  const other = await server(alice);
  await attached(alice, sid, mv, {}, '2.60');
  const second = await attach(alice, other, mv, {}, '2.60');
  assert.equal(second.status, 200, 'a multiattach volume in use attaches to a second server');
});

test('bad input: unknown or another project\'s volume 404, a volume in use 400, already attached 400, a server being deleted 409, no mapping 404', async () => {
  const alice = await projectUser(cloud);
  const sid = await server(alice);
  const vid = await volume(alice);
  const unknown = await attach(alice, sid, '6d8c8e45-56b2-4c6e-9d1c-1d2f0e0a9b11');
  assert.equal(unknown.status, 404);
  assert.match(unknown.body.itemNotFound.message, /Volume .* could not be found/);
  const bobs = await volume(bob);
  assert.equal((await attach(alice, sid, bobs)).status, 404, 'another project\'s volume is not found');
  assert.equal((await attach(alice, sid, 'not-a-uuid')).status, 400);
  assert.equal((await alice.call('POST', `/servers/${sid}/os-volume_attachments`, { body: { volumeAttachment: { volumeId: vid, bogus: 1 } } })).status, 400);
  assert.equal((await bob.call('POST', `/servers/${sid}/os-volume_attachments`, { body: { volumeAttachment: { volumeId: bobs } } })).status, 404, 'another project\'s server');

  await attached(alice, sid, vid);
  const twice = await attach(alice, sid, vid);
  assert.equal(twice.status, 400);
  assert.match(twice.body.badRequest.message, /already attached/);
  const sid2 = await server(alice);
  const inUse = await attach(alice, sid2, vid);
  assert.equal(inUse.status, 400, JSON.stringify(inUse.body));
  assert.match(inUse.body.badRequest.message, /in-use/);
  assert.equal((await vol(alice, vid)).status, 'in-use', 'a refused attach changes nothing');
  assert.deepEqual((await alice.call('GET', `/servers/${sid2}/os-volume_attachments`)).body.volumeAttachments, [], 'and leaves no mapping');
  // Cinder: an attached volume is not deleted
  assert.equal((await cloud.call('DELETE', `/volume/v3/${alice.projectId}/volumes/${vid}`, { token: alice.token })).status, 400);

  assert.equal((await alice.call('DELETE', `/servers/${sid2}/os-volume_attachments/${vid}`)).status, 404, 'not attached to that server');
  assert.equal((await alice.call('GET', `/servers/${sid2}/os-volume_attachments/${vid}`)).status, 404);
  // a detach while still attaching is Cinder's 400
  const v2 = await volume(alice);
  assert.equal((await attach(alice, sid2, v2)).status, 200);
  assert.equal((await alice.call('DELETE', `/servers/${sid2}/os-volume_attachments/${v2}`)).status, 400);

  // a server being deleted
  assert.equal((await alice.call('DELETE', `/servers/${sid2}`)).status, 204);
  const v3 = await volume(alice);
  const late = await attach(alice, sid2, v3);
  assert.equal(late.status, 409, JSON.stringify(late.body));
  assert.match(late.body.conflictingRequest.message, /Cannot 'attach_volume' instance .* task_state deleting/);
  // a locked server: 409
  assert.equal((await alice.call('POST', `/servers/${sid}/action`, { body: { lock: null } })).status, 202);
  assert.equal((await alice.call('DELETE', `/servers/${sid}/os-volume_attachments/${vid}`)).status, 409);
});

test('a deleted server releases its volumes, and deletes those with delete_on_termination', async () => {
  const alice = await projectUser(cloud);
  const sid = await server(alice);
  const keep = await volume(alice);
  const drop = await volume(alice);
  await attached(alice, sid, keep);
  await attached(alice, sid, drop, { delete_on_termination: true }, '2.79');
  assert.equal((await alice.call('DELETE', `/servers/${sid}`)).status, 204);
  const h = (await watch()).server.get(sid)!;
  assert.equal(h.spec.deleted, true);
  await report('server', sid, h.version, { power_state: 0, state: 'deleted' });
  for (let i = 0; i < 100 && (await vol(alice, keep)).status !== 'available'; i++) await sleep(20);
  const k = await vol(alice, keep);
  assert.equal(k.status, 'available');
  assert.deepEqual(k.attachments, []);
  const d = await vol(alice, drop);
  assert.equal(d.status, 'deleting', 'its backend is told to delete it');
  assert.equal((await watch()).volume.get(drop)!.spec.state, 'absent');
});

test('a container: the mount path from the server metadata volume_mount:<volume id>', async () => {
  const alice = await projectUser(cloud);
  const sid = await server(alice, containerImage);
  const vid = await volume(alice);
  assert.equal((await alice.call('PUT', `/servers/${sid}/metadata/volume_mount:${vid}`, { body: { meta: { [`volume_mount:${vid}`]: '/data' } } })).status, 200);
  assert.equal((await attach(alice, sid, vid)).status, 200);
  await exported(vid);
  const spec = (await watch()).server.get(sid)!.spec;
  assert.equal(spec.kind, 'container');
  assert.equal(spec.volumes[0].mount_path, '/data');
  assert.equal(spec.volumes[0].device, '/dev/vdb');
});

test('shelve offload keeps the volumes (reserved, no export), an offloaded server attaches at 2.20, unshelve takes them to its new host', async () => {
  const alice = await projectUser(cloud);
  const sid = await server(alice, containerImage);
  const vid = await volume(alice);
  await attached(alice, sid, vid);
  assert.equal((await alice.call('POST', `/servers/${sid}/action`, { body: { shelve: null } })).status, 202);
  const req = await until('the shelve snapshot request', async () => (await watch()).requests.find((q) => q.resource_id === sid && q.action === 'snapshot'));
  const up = await fetch(`${cloud.url}/image/v2/images/${req.args.image_id}/file`, {
    method: 'PUT', headers: { 'X-Auth-Token': cloud.adminToken, 'Content-Type': 'application/octet-stream' }, body: new Uint8Array(dockerArchive()),
  });
  assert.equal(up.status, 204, await up.text());
  assert.equal((await agentCall(cloud, 'POST', `${HOST}/report`, { requests: [{ id: req.id, ok: true, result: { image_id: req.args.image_id } }] })).status, 200);
  await until('offloaded', async () => (await alice.call('GET', `/servers/${sid}`)).body.server.status === 'SHELVED_OFFLOADED');
  // the volume stays the server's, reserved, with no export
  assert.equal((await vol(alice, vid)).status, 'reserved');
  assert.deepEqual((await watch()).volume.get(vid)!.spec.exports, []);
  assert.equal((await alice.call('GET', `/servers/${sid}/os-volume_attachments`)).body.volumeAttachments.length, 1);
  // attached while offloaded: from 2.20, only reserved
  const v2 = await volume(alice);
  assert.equal((await attach(alice, sid, v2, {}, '2.19')).status, 409);
  assert.equal((await attach(alice, sid, v2, {}, '2.20')).status, 200);
  assert.equal((await vol(alice, v2)).status, 'reserved');
  // a third, attached and detached while offloaded: gone at once
  const v3 = await volume(alice);
  assert.equal((await attach(alice, sid, v3, {}, '2.20')).status, 200);
  assert.equal((await alice.call('DELETE', `/servers/${sid}/os-volume_attachments/${v3}`, { version: '2.20' })).status, 202);
  assert.equal((await vol(alice, v3)).status, 'available');

  // unshelve: placed on the host again, both volumes exported there and attached by its report
  assert.equal((await alice.call('POST', `/servers/${sid}/action`, { body: { unshelve: null } })).status, 202);
  await until('placed again', async () => (await db().selectFrom('compute_servers').select('host').where('id', '=', sid).executeTakeFirstOrThrow()).host === HOST);
  const ids: string[] = [];
  for (const v of [vid, v2]) {
    // the attachments follow once the scheduler's placement is done (after the host is written)
    await until('the attachment on the new host', async () => (await vol(alice, v)).status === 'attaching');
    ids.push((await exported(v)).attachmentId);
  }
  const h = (await watch()).server.get(sid)!;
  assert.deepEqual(h.spec.volumes.map((x: any) => x.volume_id), [vid, v2]);
  await report('server', sid, h.version, { power_state: 1, state: 'active', volumes: ids.map((id) => ({ attachment_id: id, state: 'attached' })) });
  for (const v of [vid, v2]) assert.equal((await vol(alice, v)).status, 'in-use');
});

test('Cinder\'s attachments API: reserve, connector, complete, list, delete; its refusals', async () => {
  const alice = await projectUser(cloud);
  const cv = (method: string, path: string, body?: unknown, version = '3.54', who: Nova = alice) =>
    cloud.call(method, `/volume/v3/${who.projectId}${path}`, { token: who.token, body, headers: { 'OpenStack-API-Version': `volume ${version}` } });
  const vid = await volume(alice);
  const instance = '0a5e4f2c-2b57-4f7c-8e44-1f8ad3c2d0aa';
  assert.equal((await cv('POST', '/attachments', { attachment: { volume_uuid: vid, instance_uuid: instance } }, '3.26')).status, 404, 'before 3.27');
  const c = await cv('POST', '/attachments', { attachment: { volume_uuid: vid, instance_uuid: instance } });
  assert.equal(c.status, 200, JSON.stringify(c.body));
  const id = c.body.attachment.id as string;
  assert.equal(c.body.attachment.status, 'reserved');
  assert.equal(c.body.attachment.connection_info, null);
  assert.equal((await vol(alice, vid)).status, 'reserved');
  assert.deepEqual((await watch()).volume.get(vid)!.spec.exports, [], 'no connector: no export');

  // another host's connector: an NBD export
  const u = await cv('PUT', `/attachments/${id}`, { attachment: { connector: { host: 'elsewhere', initiator: 'x' } } });
  assert.equal(u.status, 200, JSON.stringify(u.body));
  assert.equal(u.body.attachment.status, 'attaching');
  assert.equal(u.body.attachment.connection_info.driver_volume_type, 'nbd');
  assert.equal(u.body.attachment.connection_info.data.location, null);
  const v = (await watch()).volume.get(vid)!;
  assert.deepEqual(v.spec.exports, [{ attachment_id: id, host: 'elsewhere', protocol: 'nbd', read_only: false }]);
  await report('volume', vid, v.version, { state: 'present', size_gib: 1, location: `/vols/${vid}`, exports: [{ attachment_id: id, location: 'nbd://127.0.0.1:10809/x', format: 'raw' }] });
  assert.equal((await cv('GET', `/attachments/${id}`)).body.attachment.connection_info.data.location, 'nbd://127.0.0.1:10809/x');
  assert.equal((await cv('PUT', `/attachments/${id}`, { attachment: { connector: { initiator: 'x' } } })).status, 400, 'a connector without a host');

  assert.equal((await cv('POST', `/attachments/${id}/action`, { 'os-complete': null }, '3.43')).status, 404, 'os-complete from 3.44');
  assert.equal((await cv('POST', `/attachments/${id}/action`, { 'os-complete': null })).status, 204);
  const shown = await vol(alice, vid);
  assert.equal(shown.status, 'in-use');
  assert.equal(shown.attachments[0].attachment_id, id);

  const list = await cv('GET', `/attachments?volume_id=${vid}`);
  assert.deepEqual(list.body.attachments, [{ id, status: 'attached', instance, volume_id: vid }]);
  const detail = await cv('GET', '/attachments/detail');
  const mine = detail.body.attachments.find((a: any) => a.id === id);
  assert.equal(mine.attach_mode, 'rw');
  assert.equal(typeof mine.attached_at, 'string');
  assert.equal((await cv('GET', `/attachments/${id}`, undefined, '3.54', bob)).status, 404, 'another project\'s attachment');
  assert.ok(!(await cv('GET', '/attachments', undefined, '3.54', bob)).body.attachments.some((a: any) => a.id === id));
  assert.equal((await cv('GET', '/attachments?bogus=1')).status, 400);

  // refusals: in use (not multiattach), another project's volume, a bad mode, mode before 3.54
  const refused = await cv('POST', '/attachments', { attachment: { volume_uuid: vid, instance_uuid: '1a5e4f2c-2b57-4f7c-8e44-1f8ad3c2d0aa' } });
  assert.equal(refused.status, 400);
  assert.match(refused.body.badRequest.message, /Invalid volume: .*in-use/);
  const bobs = await volume(bob);
  assert.equal((await cv('POST', '/attachments', { attachment: { volume_uuid: bobs, instance_uuid: instance } })).status, 404);
  assert.equal((await cv('POST', '/attachments', { attachment: { volume_uuid: bobs, instance_uuid: instance, mode: 'rx' } }, '3.54', bob)).status, 400);
  assert.equal((await cv('POST', '/attachments', { attachment: { volume_uuid: bobs, instance_uuid: instance, mode: 'ro' } }, '3.53', bob)).status, 400);
  const ro = await cv('POST', '/attachments', { attachment: { volume_uuid: bobs, instance_uuid: instance, mode: 'ro', connector: { host: HOST } } }, '3.54', bob);
  assert.equal(ro.status, 200, JSON.stringify(ro.body));
  assert.equal(ro.body.attachment.attach_mode, 'ro');
  assert.equal(ro.body.attachment.connection_info.driver_volume_type, 'stratus_local');
  assert.equal((await watch()).volume.get(bobs)!.spec.exports[0].read_only, true);

  // delete: the volume's attachments left; the volume available again and its export gone
  const del = await cv('DELETE', `/attachments/${id}`);
  assert.equal(del.status, 200, JSON.stringify(del.body));
  assert.deepEqual(del.body.attachments, []);
  assert.equal((await vol(alice, vid)).status, 'available');
  assert.deepEqual((await watch()).volume.get(vid)!.spec.exports, []);
  assert.equal((await cv('GET', `/attachments/${id}`)).status, 404);
});

test('response bodies match Tempest\'s schemas', () => {
  schemas.check();
});
