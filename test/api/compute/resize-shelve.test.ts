// Resize (confirm, revert) and shelve (offload, unshelve) through the API with
// a simulated agent (lib.ts simulatedHost): a host registered through the
// agent API whose watch and reports this test drives by hand, as src/agent
// would (the spec it is handed, the snapshot request it answers). Checked: Nova's state sequence and
// errors, the placement claims (the old flavor held by the migration until
// confirm), os-migrations, instance actions, and Tempest's response schemas.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type Cloud, until, useCloud } from '../../harness.ts';
import { create as createNet, neutron } from '../network/lib.ts';
import { adminNova, agentCall, dockerArchive, image, type Nova, projectUser, type SimulatedHost, simulatedHost, TempestSchemas, uploadImage } from './lib.ts';
import { beforeNextTransaction } from '../volume/lib.ts';

const HOST = `rs-${process.pid}`;
let admin: Nova;
let alice: Nova;
let host: SimulatedHost;
let diskImage: string;
let containerImage: string;
const flavors: Record<string, string> = {};
const schemas = new TempestSchemas();




const cloud: Cloud = useCloud(async (c) => {
  admin = await adminNova(c);
  alice = await projectUser(c);
  host = await simulatedHost(c, HOST);
  diskImage = await image(c, { name: 'rs-disk', container_format: 'bare' }, Buffer.alloc(4096, 1));
  containerImage = await image(c, { name: 'rs-ctr', container_format: 'docker' }, dockerArchive());
  for (const [name, ram, vcpus, disk] of [['rs-small', 64, 1, 1], ['rs-big', 128, 2, 2], ['rs-huge', 20000, 1, 2], ['rs-many', 64, 64, 2]] as const) {
    flavors[name] = (await admin.call('POST', '/flavors', { body: { flavor: { name, ram, vcpus, disk } } })).body.flavor.id as string;
  }
});

const db = () => cloud.server.database.db;
const row = (id: string) => db().selectFrom('compute_servers').selectAll().where('id', '=', id).executeTakeFirstOrThrow();

const watch = () => host.watch();
const report = (id: string, state: 'active' | 'stopped', power: number) => host.report(id, state, power);


/** An ACTIVE server of alice's on HOST (the simulated agent reports it running). */
async function server(flavor: string, imageRef = diskImage, networks: unknown = 'none'): Promise<string> {
  const r = await alice.call('POST', '/servers', { version: '2.37', body: { server: { name: `rs-${flavor}`, imageRef, flavorRef: flavors[flavor], networks } } });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const id = r.body.server.id as string;
  await until('placed', async () => (await row(id)).host === HOST);
  await report(id, 'active', 1);
  assert.equal((await row(id)).vm_state, 'active');
  return id;
}

const act = (id: string, body: unknown, who = alice, version = '2.96') => who.call('POST', `/servers/${id}/action`, { body, version });
const status = async (id: string) => (await admin.call('GET', `/servers/${id}`)).body.server;

async function providerUsage(): Promise<Record<string, number>> {
  const host = await db().selectFrom('compute_hosts').select('id').where('hostname', '=', HOST).executeTakeFirstOrThrow();
  const r = await cloud.call('GET', `/placement/resource_providers/${host.id}/usages`, { token: cloud.adminToken });
  // the scheduler makes the host's provider with its first round
  if (r.status === 404) return { VCPU: 0, MEMORY_MB: 0, DISK_GB: 0 };
  assert.equal(r.status, 200);
  return r.body.usages;
}
const allocations = async (consumer: string) => (await cloud.call('GET', `/placement/allocations/${consumer}`, { token: cloud.adminToken })).body.allocations;

test('resize: Nova\'s errors; RESIZE -> VERIFY_RESIZE with both flavors claimed; confirm keeps the new one; os-migrations and instance actions', async () => {
  const before = await providerUsage();
  const id = await server('rs-small');
  // Nova's refusals
  const same = await act(id, { resize: { flavorRef: flavors['rs-small'] } });
  assert.equal(same.status, 400);
  assert.equal(same.body.badRequest.message, 'When resizing, instances must change flavor!');
  const unknown = await act(id, { resize: { flavorRef: 'no-such-flavor' } });
  assert.equal(unknown.status, 400);
  assert.match(unknown.body.badRequest.message, /Unable to locate requested flavor/);
  const noRef = await act(id, { resize: {} });
  assert.equal(noRef.status, 400);
  const extra = await act(id, { resize: { flavorRef: flavors['rs-big'], what: 1 } });
  assert.equal(extra.status, 400);
  const huge = await act(id, { resize: { flavorRef: flavors['rs-huge'] } });
  assert.equal(huge.status, 400, 'more memory than the host has: NoValidHost');
  assert.match(huge.body.badRequest.message, /No valid host was found/);
  assert.deepEqual(Object.values(await allocations(id)).map((a: any) => a.resources), [{ VCPU: 1, MEMORY_MB: 64, DISK_GB: 1 }], 'a refused resize changes no claim');
  assert.equal((await db().selectFrom('compute_migrations').select('id').where('server_id', '=', id).execute()).length, 0, 'nor leaves a migration');
  const many = await act(id, { resize: { flavorRef: flavors['rs-many'] } });
  assert.equal(many.status, 403, 'over the cores quota');
  assert.match(many.body.forbidden.message, /Quota exceeded for cores/);
  const notResized = await act(id, { confirmResize: null });
  assert.equal(notResized.status, 409);
  assert.match(notResized.body.conflictingRequest.message, /while it is in vm_state active/);

  const r = await act(id, { resize: { flavorRef: flavors['rs-big'], 'OS-DCF:diskConfig': 'AUTO' } });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  let s = await status(id);
  assert.equal(s.status, 'RESIZE');
  assert.equal(s['OS-EXT-STS:task_state'], 'resize_prep');
  // a second resize meanwhile: 409
  assert.equal((await act(id, { resize: { flavorRef: flavors['rs-small'] } })).status, 409);
  // both flavors are claimed on the host: the new one by the server, the old one by the migration
  const during = await providerUsage();
  assert.equal(during.VCPU! - before.VCPU!, 1 + 2);
  assert.equal(during.MEMORY_MB! - before.MEMORY_MB!, 64 + 128);
  const mig = await db().selectFrom('compute_migrations').selectAll().where('server_id', '=', id).executeTakeFirstOrThrow();
  assert.equal(mig.migration_type, 'resize');
  assert.deepEqual(Object.values(await allocations(mig.uuid)).map((a: any) => a.resources), [{ VCPU: 1, MEMORY_MB: 64, DISK_GB: 1 }]);
  assert.deepEqual(Object.values(await allocations(id)).map((a: any) => a.resources), [{ VCPU: 2, MEMORY_MB: 128, DISK_GB: 2 }]);

  // the agent is handed the new flavor, applies it and reports: VERIFY_RESIZE
  const spec = await report(id, 'active', 1);
  assert.equal(spec.flavor.vcpus, 2);
  assert.equal(spec.flavor.ram, 128);
  assert.equal(spec.task_state, 'resize_prep');
  s = await status(id);
  assert.equal(s.status, 'VERIFY_RESIZE');
  assert.equal(s['OS-EXT-STS:vm_state'], 'resized');
  assert.equal(s['OS-DCF:diskConfig'], 'AUTO');
  schemas.add('v2_1.servers', 'get_server', await alice.call('GET', `/servers/${id}`), 'VERIFY_RESIZE');
  // what the resized server reports afterwards keeps it VERIFY_RESIZE
  await report(id, 'active', 1);
  assert.equal((await status(id)).status, 'VERIFY_RESIZE');

  const migs = await admin.call('GET', `/os-migrations?instance_uuid=${id}`);
  assert.equal(migs.status, 200);
  assert.equal(migs.body.migrations.length, 1);
  assert.equal(migs.body.migrations[0].status, 'finished');
  assert.equal(migs.body.migrations[0].source_compute, HOST);
  assert.equal(migs.body.migrations[0].dest_compute, HOST);
  schemas.add('v2_1.migrations', 'list_migrations', migs);
  // (Tempest has no schema of its own for 2.80's user_id and project_id)
  for (const [v, mod] of [['2.23', 'v2_23'], ['2.59', 'v2_59'], ['2.80', null]] as const) {
    const m = await admin.call('GET', '/os-migrations', { version: v });
    assert.equal(m.status, 200);
    if (mod) schemas.add(`${mod}.migrations`, 'list_migrations', m, v);
    else assert.ok(m.body.migrations.every((x: any) => typeof x.user_id === 'string' && typeof x.project_id === 'string'));
    assert.ok(m.body.migrations.some((x: any) => x.instance_uuid === id && x.migration_type === 'resize'));
  }
  assert.equal((await alice.call('GET', '/os-migrations')).status, 403);

  const c = await act(id, { confirmResize: null });
  assert.equal(c.status, 204, JSON.stringify(c.body));
  s = await status(id);
  assert.equal(s.status, 'ACTIVE');
  assert.equal(s.flavor.id, flavors['rs-big']);
  const after = await providerUsage();
  assert.equal(after.VCPU! - before.VCPU!, 2, 'the old flavor\'s claim went with the confirm');
  assert.deepEqual(await allocations(mig.uuid), {});
  assert.equal((await db().selectFrom('compute_migrations').select('status').where('id', '=', mig.id).executeTakeFirstOrThrow()).status, 'confirmed');
  // confirm tells the agent (the VM driver drops the disk kept for a revert)
  const handed = (await watch()).servers.get(id)!;
  assert.equal(handed.spec.vm_state, 'active');

  const actions = await alice.call('GET', `/servers/${id}/os-instance-actions`);
  assert.deepEqual(actions.body.instanceActions.map((a: any) => a.action).slice(0, 2), ['confirmResize', 'resize']);
  const resizeAction = actions.body.instanceActions.find((a: any) => a.action === 'resize');
  const detail = await admin.call('GET', `/servers/${id}/os-instance-actions/${resizeAction.request_id}`);
  assert.equal(detail.body.instanceAction.events[0].event, 'compute_prep_resize');
  assert.equal(detail.body.instanceAction.events[0].result, 'Success');
  assert.equal((await alice.call('DELETE', `/servers/${id}`)).status, 204);
});

test('resize of a stopped server, reverted: VERIFY_RESIZE shut down, REVERT_RESIZE, back to SHUTOFF on the old flavor and claim', async () => {
  const before = await providerUsage();
  const id = await server('rs-small', containerImage);
  assert.equal((await act(id, { 'os-stop': null })).status, 202);
  await report(id, 'stopped', 4);
  assert.equal((await status(id)).status, 'SHUTOFF');
  assert.equal((await act(id, { resize: { flavorRef: flavors['rs-big'] } })).status, 202);
  const spec = await report(id, 'stopped', 4);
  assert.equal(spec.power, 'stopped', 'a stopped server stays stopped through its resize');
  assert.equal((await status(id)).status, 'VERIFY_RESIZE');
  // Tempest's negative: a resized server cannot be resized again before confirm or revert
  assert.equal((await act(id, { resize: { flavorRef: flavors['rs-small'] } })).status, 409);

  assert.equal((await act(id, { revertResize: null })).status, 202);
  let s = await status(id);
  assert.equal(s.status, 'REVERT_RESIZE');
  assert.equal(s['OS-EXT-STS:task_state'], 'resize_reverting');
  const reverted = await report(id, 'stopped', 4);
  assert.equal(reverted.flavor.ram, 64, 'the agent is handed the old flavor back');
  s = await status(id);
  assert.equal(s.status, 'SHUTOFF');
  assert.equal(s.flavor.id, flavors['rs-small']);
  const after = await providerUsage();
  assert.equal(after.VCPU! - before.VCPU!, 1);
  assert.equal(after.MEMORY_MB! - before.MEMORY_MB!, 64);
  const mig = await db().selectFrom('compute_migrations').selectAll().where('server_id', '=', id).executeTakeFirstOrThrow();
  assert.equal(mig.status, 'reverted');
  assert.deepEqual(await allocations(mig.uuid), {});
  const actions = await alice.call('GET', `/servers/${id}/os-instance-actions`);
  assert.equal(actions.body.instanceActions[0].action, 'revertResize');
  // a flavor for VMs only: no host this container can stay on
  const vmOnly = (await admin.call('POST', '/flavors', { body: { flavor: { name: 'rs-vm-only', ram: 128, vcpus: 1, disk: 2 } } })).body.flavor.id;
  assert.equal((await admin.call('POST', `/flavors/${vmOnly}/os-extra_specs`, { body: { extra_specs: { 'stratus:kind': 'vm' } } })).status, 200);
  const otherKind = await act(id, { resize: { flavorRef: vmOnly } });
  assert.equal(otherKind.status, 400);
  assert.match(otherKind.body.badRequest.message, /No valid host/);
  // a smaller disk: Nova's 400 (from the big flavor)
  assert.equal((await act(id, { resize: { flavorRef: flavors['rs-big'] } })).status, 202);
  await report(id, 'stopped', 4);
  assert.equal((await act(id, { confirmResize: null })).status, 204);
  assert.equal((await status(id)).status, 'SHUTOFF');
  const down = await act(id, { resize: { flavorRef: flavors['rs-small'] } });
  assert.equal(down.status, 400);
  assert.match(down.body.badRequest.message, /Unable to resize disk down/);
  // a deleted server in VERIFY_RESIZE releases the migration's claim too
  assert.equal((await alice.call('DELETE', `/servers/${id}`)).status, 204);
});

test('a confirm and a revert of one resize racing: the one that comes second is Nova\'s 409 and changes nothing', async () => {
  const id = await server('rs-small', containerImage);
  assert.equal((await act(id, { resize: { flavorRef: flavors['rs-big'] } })).status, 202);
  await report(id, 'active', 1);
  assert.equal((await status(id)).status, 'VERIFY_RESIZE');
  // the confirm commits between the revert's checks and its write
  const restore = beforeNextTransaction(db(), async () => assert.equal((await act(id, { confirmResize: null })).status, 204));
  try {
    const rev = await act(id, { revertResize: null });
    assert.equal(rev.status, 409, JSON.stringify(rev.body));
  } finally {
    restore();
  }
  const s = await status(id);
  assert.deepEqual([s.status, s.flavor.id], ['ACTIVE', flavors['rs-big']], 'confirmed on the new flavor');
  const mig = await db().selectFrom('compute_migrations').selectAll().where('server_id', '=', id).executeTakeFirstOrThrow();
  assert.equal(mig.status, 'confirmed');
  const held = Object.values(await allocations(id)) as Array<{ resources: Record<string, number> }>;
  assert.deepEqual(held.map((a) => a.resources.MEMORY_MB), [128], 'the server holds the new flavor\'s claim');
  assert.deepEqual(await allocations(mig.uuid), {});
  const actions = await alice.call('GET', `/servers/${id}/os-instance-actions`);
  assert.deepEqual(actions.body.instanceActions.map((a: any) => a.action).slice(0, 2), ['confirmResize', 'resize']);
  // and a revert whose resize a confirm overtook never reached the database: a confirm once more is refused by state
  assert.equal((await act(id, { confirmResize: null })).status, 409);
  assert.equal((await alice.call('DELETE', `/servers/${id}`)).status, 204);
});

test('shelve a container: <name>-shelved snapshot, SHELVED_OFFLOADED off its host with no claim; unshelve: scheduled again, built from the snapshot, ACTIVE, snapshot deleted', async () => {
  const id = await server('rs-small', containerImage);
  const name = 'rs-rs-small';
  assert.equal((await act(id, { shelveOffload: null })).status, 403, 'shelveOffload is the admin\'s');
  assert.equal((await act(id, { unshelve: null })).status, 409, 'not shelved');
  const r = await act(id, { shelve: null });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  assert.equal((await status(id))['OS-EXT-STS:task_state'], 'shelving');
  assert.equal((await act(id, { shelve: null })).status, 409, 'already shelving');
  // the agent is asked for a snapshot into the image `<name>-shelved`; it uploads it and answers
  const req = await until('the snapshot request', async () => (await watch()).requests.find((q) => q.resource_id === id && q.action === 'snapshot'));
  const img = await cloud.call('GET', `/image/v2/images/${req.args.image_id}`, { token: alice.token });
  assert.equal(img.body.name, `${name}-shelved`);
  assert.equal(img.body.container_format, 'docker');
  const listed = await alice.call('GET', `/images?name=${name}-shelved`);
  assert.equal(listed.body.images.length, 1, 'Tempest finds the shelve image by its name');
  await uploadImage(cloud, req.args.image_id, dockerArchive());
  const ans = await agentCall(cloud, 'POST', `${HOST}/report`, { requests: [{ id: req.id, ok: true, result: { image_id: req.args.image_id } }] });
  assert.equal(ans.status, 200);
  // shelved_offload_time 0 (Nova's default): offloaded at once, off the host, nothing claimed
  await until('offloaded', async () => (await row(id)).vm_state === 'shelved_offloaded');
  const s = await status(id);
  assert.equal(s.status, 'SHELVED_OFFLOADED');
  assert.equal(s['OS-EXT-SRV-ATTR:host'], null);
  schemas.add('v2_1.servers', 'get_server', await alice.call('GET', `/servers/${id}`), 'SHELVED_OFFLOADED');
  assert.deepEqual(await allocations(id), {});
  const w = await watch();
  assert.ok(!w.servers.has(id), 'the host no longer holds it (its agent removes what is left)');
  assert.equal((await act(id, { shelve: null })).status, 409, 'Tempest: shelving a shelved server is a 409');
  assert.equal((await act(id, { shelveOffload: null }, admin)).status, 409, 'offloaded already');
  // without a usable snapshot its disk is gone: unshelve is refused, never rebuilt from the original image
  const glanceAct = (action: string) => cloud.call('POST', `/image/v2/images/${req.args.image_id}/actions/${action}`, { token: cloud.adminToken });
  assert.equal((await glanceAct('deactivate')).status, 204);
  const refused = await act(id, { unshelve: null });
  assert.equal(refused.status, 409, JSON.stringify(refused.body));
  assert.equal((await row(id)).vm_state, 'shelved_offloaded');
  assert.equal((await glanceAct('reactivate')).status, 204);
  // availability_zone (2.77) names a zone that exists; other fields are refused
  assert.equal((await act(id, { unshelve: { availability_zone: 'no-such-zone' } }, alice, '2.77')).status, 400);
  assert.equal((await act(id, { unshelve: { what: 1 } }, alice, '2.77')).status, 400);

  const u = await act(id, { unshelve: { availability_zone: 'nova' } }, alice, '2.77');
  assert.equal(u.status, 202, JSON.stringify(u.body));
  await until('placed again', async () => (await row(id)).host === HOST);
  assert.equal((await status(id)).status, 'SHELVED_OFFLOADED', 'until its host runs it');
  const spec = await report(id, 'active', 1);
  assert.equal(spec.image.id, req.args.image_id, 'the disk comes from the shelve snapshot');
  assert.equal((await status(id)).status, 'ACTIVE');
  assert.equal((await status(id)).image.id, containerImage, 'the server still shows the image it was booted from');
  assert.deepEqual(Object.values(await allocations(id)).map((a: any) => a.resources), [{ VCPU: 1, MEMORY_MB: 64, DISK_GB: 1 }]);
  await until('the snapshot deleted', async () => (await cloud.call('GET', `/image/v2/images/${req.args.image_id}`, { token: cloud.adminToken })).status === 404);
  // the spec keeps naming the disk's image (the agent keeps its copy)
  assert.equal((await watch()).servers.get(id)!.spec.image.id, req.args.image_id);
  const actions = await alice.call('GET', `/servers/${id}/os-instance-actions`);
  assert.deepEqual(actions.body.instanceActions.map((a: any) => a.action).slice(0, 2), ['unshelve', 'shelve']);
  for (const a of actions.body.instanceActions.slice(0, 2)) {
    const d = await admin.call('GET', `/servers/${id}/os-instance-actions/${a.request_id}`);
    assert.equal(d.body.instanceAction.events[0].result, 'Success', a.action);
  }
  // a rebuild makes the disk from the server's image again
  assert.equal((await act(id, { rebuild: { imageRef: containerImage } })).status, 202);
  assert.equal((await watch()).servers.get(id)!.spec.image.id, containerImage);
  assert.equal((await alice.call('DELETE', `/servers/${id}`)).status, 204);
});

test('a server\'s ports and addresses are kept across shelve and unshelve: unbound while offloaded, bound to its new host after', async () => {
  const call = neutron(cloud);
  const net = await createNet(call, 'networks', 'network', { name: 'rs-net' }, alice.token);
  await createNet(call, 'subnets', 'subnet', { network_id: net.id, cidr: '10.94.1.0/24', ip_version: 4 }, alice.token);
  const id = await server('rs-small', containerImage, [{ uuid: net.id }]);
  const portsOf = async () => (await call('GET', `/ports?device_id=${id}`)).body.ports as any[];
  const [before] = await portsOf();
  assert.equal(before['binding:host_id'], HOST);
  const ip = before.fixed_ips[0].ip_address;
  assert.equal((await act(id, { shelve: null })).status, 202);
  const req = await until('the snapshot request', async () => (await watch()).requests.find((q) => q.resource_id === id && q.action === 'snapshot'));
  await uploadImage(cloud, req.args.image_id, dockerArchive());
  assert.equal((await agentCall(cloud, 'POST', `${HOST}/report`, { requests: [{ id: req.id, ok: true, result: {} }] })).status, 200);
  await until('offloaded', async () => (await row(id)).vm_state === 'shelved_offloaded');
  let ports = await portsOf();
  assert.equal(ports.length, 1);
  assert.equal(ports[0].id, before.id, 'the same port');
  assert.equal(ports[0].fixed_ips[0].ip_address, ip, 'the same address');
  assert.equal(ports[0]['binding:host_id'], '', 'unbound while the server has no host');
  assert.ok(Object.keys((await alice.call('GET', `/servers/${id}`)).body.server.addresses).length, 'the server still shows its address');
  assert.equal((await act(id, { unshelve: null })).status, 202);
  await until('placed again', async () => (await row(id)).host === HOST);
  ports = await portsOf();
  assert.equal(ports[0]['binding:host_id'], HOST, 'bound to the host it runs on again');
  assert.equal(ports[0].fixed_ips[0].ip_address, ip);
  await report(id, 'active', 1);
  assert.equal((await status(id)).status, 'ACTIVE');
  // Nova's server migrations (2.23): live migrations in progress only, none here
  const sm = await admin.call('GET', `/servers/${id}/migrations`, { version: '2.23' });
  assert.equal(sm.status, 200);
  assert.deepEqual(sm.body, { migrations: [] });
  assert.equal((await admin.call('GET', `/servers/${id}/migrations/1`, { version: '2.23' })).status, 404);
  assert.equal((await admin.call('GET', `/servers/${id}/migrations`, { version: '2.22' })).status, 404);
  assert.equal((await alice.call('DELETE', `/servers/${id}`)).status, 204);
});

test('a failed shelve snapshot: the server stays where it was, the image is gone', async () => {
  const id = await server('rs-small', diskImage);
  assert.equal((await act(id, { shelve: null })).status, 202);
  const req = await until('the snapshot request', async () => (await watch()).requests.find((q) => q.resource_id === id && q.action === 'snapshot'));
  const ans = await agentCall(cloud, 'POST', `${HOST}/report`, { requests: [{ id: req.id, ok: false, error: { class: 'transient', code: 'host_failure', message: 'disk full' } }] });
  assert.equal(ans.status, 200);
  await until('the task cleared', async () => (await row(id)).task_state === null);
  const s = await status(id);
  assert.equal(s.status, 'ACTIVE');
  assert.equal((await cloud.call('GET', `/image/v2/images/${req.args.image_id}`, { token: cloud.adminToken })).status, 404);
  assert.equal((await alice.call('DELETE', `/servers/${id}`)).status, 204);
});

test('rescue and unrescue a container: Nova\'s 200 with adminPass, RESCUE once the host runs it from the rescue image, its errors; unrescue: ACTIVE on its own root', async () => {
  const id = await server('rs-small', containerImage);
  // Nova's refusals: body, image, state
  const extra = await act(id, { rescue: { what: 1 } });
  assert.equal(extra.status, 400);
  const badRef = await act(id, { rescue: { rescue_image_ref: 'not-a-uuid' } });
  assert.equal(badRef.status, 400);
  assert.equal(badRef.body.badRequest.message, 'Invalid rescue_image_ref provided.');
  const noImage = await act(id, { rescue: { rescue_image_ref: '7d1e3c2a-0000-4000-8000-000000000000' } });
  assert.equal(noImage.status, 400);
  assert.match(noImage.body.badRequest.message, /^Requested rescue image '7d1e3c2a-0000-4000-8000-000000000000' is not supported/);
  const otherKind = await act(id, { rescue: { rescue_image_ref: diskImage } });
  assert.equal(otherKind.status, 400, 'a disk image does not rescue a container');
  const notRescued = await act(id, { unrescue: null });
  assert.equal(notRescued.status, 409);
  assert.equal(notRescued.body.conflictingRequest.message, `Cannot 'unrescue' instance ${id} while it is in vm_state active`);
  // a paused server is not rescued (Tempest's test_rescue_paused_instance)
  assert.equal((await act(id, { pause: null })).status, 202);
  await report(id, 'active', 1);
  await host.report(id, 'paused' as any, 3);
  assert.equal((await status(id)).status, 'PAUSED');
  const paused = await act(id, { rescue: null });
  assert.equal(paused.status, 409);
  assert.equal(paused.body.conflictingRequest.message, `Cannot 'rescue' instance ${id} while it is in vm_state paused`);
  assert.equal((await act(id, { unpause: null })).status, 202);
  await report(id, 'active', 1);
  assert.equal((await status(id)).status, 'ACTIVE');
  assert.equal((await watch()).servers.get(id)!.spec.rescue, undefined, 'not rescued: no rescue in the spec');

  const r = await act(id, { rescue: { adminPass: 'Secret-1' } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(r.body, { adminPass: 'Secret-1' });
  schemas.add('v2_1.servers', 'rescue_server_with_admin_pass', r);
  let s = await status(id);
  assert.equal(s['OS-EXT-STS:task_state'], 'rescuing');
  // a second rescue meanwhile: 409
  assert.equal((await act(id, { rescue: null })).status, 409);
  // the agent is handed the rescue image (the server's own by default) and reports it running: RESCUE
  const spec = await report(id, 'active', 1);
  assert.equal(spec.rescue.image.id, containerImage);
  assert.equal(spec.image.id, containerImage, 'its own image stays the root the rescue mounts');
  s = await status(id);
  assert.equal(s.status, 'RESCUE');
  assert.equal(s['OS-EXT-STS:vm_state'], 'rescued');
  assert.equal(s['OS-EXT-STS:task_state'], null);
  schemas.add('v2_1.servers', 'get_server', await alice.call('GET', `/servers/${id}`), 'RESCUE');
  // what a rescued server reports keeps it RESCUE, with the rescue in its spec
  assert.equal((await report(id, 'active', 1)).rescue.image.id, containerImage);
  assert.equal((await status(id)).status, 'RESCUE');
  // what Nova refuses in RESCUE (Tempest's negative rescue tests): reboot, rebuild, pause, stop, a second rescue, attach a volume
  for (const [name, body] of [['reboot', { reboot: { type: 'HARD' } }], ['rebuild', { rebuild: { imageRef: containerImage } }], ['pause', { pause: null }],
    ['stop', { 'os-stop': null }], ['rescue', { rescue: null }], ['shelve', { shelve: null }], ['resize', { resize: { flavorRef: flavors['rs-big'] } }]] as const) {
    const x = await act(id, body);
    assert.equal(x.status, 409, `${name}: ${JSON.stringify(x.body)}`);
    assert.match(x.body.conflictingRequest.message, /while it is in vm_state rescued/);
  }

  const u = await act(id, { unrescue: null });
  assert.equal(u.status, 202, JSON.stringify(u.body));
  s = await status(id);
  assert.equal(s.status, 'RESCUE', 'RESCUE while unrescuing');
  assert.equal(s['OS-EXT-STS:task_state'], 'unrescuing');
  const back = await report(id, 'active', 1);
  assert.equal(back.rescue, undefined, 'unrescued: the spec has no rescue');
  s = await status(id);
  assert.equal(s.status, 'ACTIVE');
  assert.equal(s['OS-EXT-STS:vm_state'], 'active');

  // a stopped server is rescued too, and runs rescued; with instance passwords a generated adminPass
  assert.equal((await act(id, { 'os-stop': null })).status, 202);
  await report(id, 'stopped', 4);
  assert.equal((await status(id)).status, 'SHUTOFF');
  const again = await act(id, { rescue: { rescue_image_ref: `http://glance/images/${containerImage}` } }, alice, '2.1');
  assert.equal(again.status, 200, JSON.stringify(again.body));
  assert.equal(typeof again.body.adminPass, 'string');
  const running = await report(id, 'active', 1);
  assert.equal(running.power, 'running');
  assert.equal((await status(id)).status, 'RESCUE');

  const actions = await alice.call('GET', `/servers/${id}/os-instance-actions`);
  assert.equal(actions.body.instanceActions[0].action, 'rescue');
  assert.ok(actions.body.instanceActions.some((a: any) => a.action === 'unrescue'));
  const detail = await admin.call('GET', `/servers/${id}/os-instance-actions/${actions.body.instanceActions[0].request_id}`);
  assert.equal(detail.body.instanceAction.events[0].event, 'compute_rescue_instance');
  assert.equal(detail.body.instanceAction.events[0].result, 'Success');
  // a locked server: 409 (unrescue too)
  assert.equal((await act(id, { lock: null })).status, 202);
  const locked = await act(id, { unrescue: null }, admin);
  assert.equal(locked.status, 202, 'the admin passes the owner\'s lock');
  await report(id, 'active', 1);
  assert.equal((await status(id)).status, 'ACTIVE');
  const lockedRescue = await act(id, { rescue: null });
  assert.equal(lockedRescue.status, 409);
  assert.match(lockedRescue.body.conflictingRequest.message, /is locked/);
  assert.equal((await act(id, { unlock: null })).status, 202);
  // a rescued server is deleted as any other
  assert.equal((await act(id, { rescue: null })).status, 200);
  await report(id, 'active', 1);
  assert.equal((await alice.call('DELETE', `/servers/${id}`)).status, 204);
});

test('rescue a VM: its own image by default or rescue_image_ref (a disk image), in the spec until unrescue', async () => {
  const id = await server('rs-small');
  const other = await act(id, { rescue: { rescue_image_ref: containerImage } });
  assert.equal(other.status, 400, 'a container image does not rescue a VM');
  assert.equal(other.body.badRequest.message, `Requested rescue image '${containerImage}' is not supported`);
  const second = await image(cloud, { name: 'rs-rescue-disk', container_format: 'bare' }, Buffer.alloc(4096, 2));
  const r = await act(id, { rescue: { rescue_image_ref: second } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const spec = await report(id, 'active', 1);
  assert.equal(spec.rescue.image.id, second);
  assert.equal(spec.rescue.image.container_format, 'bare');
  assert.equal(spec.image.id, diskImage, 'the root disk stays the server\'s');
  assert.equal((await status(id)).status, 'RESCUE');
  assert.equal((await act(id, { unrescue: {} })).status, 202);
  assert.equal((await report(id, 'active', 1)).rescue, undefined);
  assert.equal((await status(id)).status, 'ACTIVE');
  assert.equal((await row(id)).rescue_image, null);
  assert.equal((await alice.call('DELETE', `/servers/${id}`)).status, 204);
});

test('response bodies match Tempest\'s schemas', () => schemas.check());
