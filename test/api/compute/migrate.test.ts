// Cold migration (the migrate action) through the API with two simulated
// agents (lib.ts simulatedHost): Nova's refusals with nothing left behind,
// the claims (the source's held by the migration, the flavor claimed on the
// destination), the disk copied through a hidden image by the source's
// snapshot request, the server handed to the destination and kept stopped on
// the source until confirm or revert, its ports rebound with their addresses,
// os-migrations, and a failed copy undone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type Cloud, until } from '../../harness.ts';
import { networkWithSubnet, neutron } from '../network/lib.ts';
import { agentCall, dockerArchive, type Nova, type SimulatedHost, simulatedHost, whileDisabled, uploadImage } from './lib.ts';
import { movesCloud } from './moves-lib.ts';
import { PROTOCOL_VERSION } from '../../../src/fleet/protocol.ts';

const A = `mg-a-${process.pid}`;
const B = `mg-b-${process.pid}`;
let admin: Nova;
let alice: Nova;
let hostA: SimulatedHost;
let hostB: SimulatedHost;
let diskImage: string;
let containerImage: string;
const flavors: Record<string, string> = {};

/** Host B (re-)registered with this much memory: a full destination, then a roomy one. */
async function registerB(c: Cloud, memoryMb: number): Promise<void> {
  const r = await agentCall(c, 'PUT', B, {
    protocol: PROTOCOL_VERSION, kinds: { server: ['container', 'vm'], network: [], port: [], security_group: [] }, vcpus: 8, memory_mb: memoryMb, disk_gb: 100,
    version: 't', host_ip: '127.0.0.2',
  });
  assert.equal(r.status, 200, await r.text());
}

const { cloud, db, row, migrations, allocations, providerOf, server } = movesCloud('mg', A, (m) => {
  ({ admin, alice, hostA, diskImage, containerImage } = m);
  flavors.small = m.flavor;
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const act = (id: string, body: unknown, who = admin, version = '2.96') => who.call('POST', `/servers/${id}/action`, { body, version });
const status = async (id: string) => (await admin.call('GET', `/servers/${id}`)).body.server;

/** The source answers the copy request: the disk uploaded into the hidden image. */
async function copyOn(host: SimulatedHost, id: string, data: Buffer, ok = true): Promise<string> {
  const req = await until('the copy request', async () => (await host.watch()).requests.find((q) => q.resource_id === id && q.action === 'snapshot'));
  if (ok) await uploadImage(cloud, req.args.image_id, data);
  if (ok) {
    const r = await agentCall(cloud, 'POST', `${host.hostname}/report`, { requests: [{ id: req.id, ok: true, result: { image_id: req.args.image_id } }] });
    assert.equal(r.status, 200);
  } else await host.answer(req.id, false, 'no space left');
  return req.args.image_id as string;
}

test('migrate: Nova\'s refusals leave nothing; a VM moves to the other host (VERIFY_RESIZE), kept stopped on the source until confirm', async () => {
  const id = await server(diskImage);
  // no other host: NoValidHost, nothing claimed or recorded
  let r = await act(id, { migrate: null });
  assert.equal(r.status, 400, JSON.stringify(r.body));
  assert.match(r.body.badRequest.message, /No valid host was found/);
  // a full destination: the same
  await registerB(cloud, 256);
  r = await act(id, { migrate: null });
  assert.equal(r.status, 400);
  assert.match(r.body.badRequest.message, /No valid host was found/);
  r = await act(id, { migrate: { host: B } }, admin, '2.56');
  assert.equal(r.status, 400, 'a named full host too');
  assert.deepEqual(Object.values(await allocations(id)), [{ VCPU: 1, MEMORY_MB: 512, DISK_GB: 1 }], 'the claim unchanged');
  assert.equal((await migrations(id)).length, 0, 'no migration left');
  assert.equal((await row(id)).task_state, null);
  // the server's own host, an unknown one, a bad body; a member's request
  r = await act(id, { migrate: { host: A } }, admin, '2.56');
  assert.equal(r.status, 400);
  assert.equal(r.body.badRequest.message, 'Cannot migrate to the host where the server exists.');
  r = await act(id, { migrate: { host: 'no-such-host' } }, admin, '2.56');
  assert.equal(r.status, 400);
  assert.equal(r.body.badRequest.message, 'Compute host no-such-host could not be found.');
  assert.equal((await act(id, { migrate: { host: B, what: 1 } }, admin, '2.56')).status, 400);
  assert.equal((await act(id, { migrate: null }, alice)).status, 403);

  await registerB(cloud, 8192);
  hostB = await simulatedHost(cloud, B);
  r = await act(id, { migrate: { host: null } }, admin, '2.56');
  assert.equal(r.status, 202, JSON.stringify(r.body));
  let s = await status(id);
  assert.equal(s.status, 'RESIZE');
  assert.equal(s['OS-EXT-STS:task_state'], 'resize_migrating');
  assert.equal((await act(id, { migrate: null })).status, 409, 'a second migrate meanwhile');
  let [m] = await migrations(id);
  assert.equal(m!.migration_type, 'migration');
  assert.equal(m!.status, 'migrating');
  assert.equal(m!.source_compute, A);
  assert.equal(m!.dest_compute, B);
  // the source's claim is the migration's, the destination's the server's
  assert.deepEqual(Object.keys(await allocations(m!.uuid)), [await providerOf(A)]);
  assert.deepEqual(Object.keys(await allocations(id)), [await providerOf(B)]);
  // the source stops it for the copy (its report ends nothing, the vm_state stays); the copy is asked for once it has
  assert.equal((await hostA.watch()).servers.get(id)?.spec.power, 'stopped');
  await sleep(600);
  assert.ok(!(await hostA.watch()).requests.some((q) => q.resource_id === id), 'no copy of a running server');
  await hostA.report(id, 'stopped', 4);
  assert.equal((await row(id)).task_state, 'resize_migrating');
  assert.equal((await row(id)).vm_state, 'active');
  const copy = await copyOn(hostA, id, Buffer.alloc(4096, 2));
  const hidden = await cloud.call('GET', `/image/v2/images/${copy}`, { token: cloud.adminToken });
  assert.equal(hidden.body.os_hidden, true, 'the copy is hidden from image lists');
  await until('moved', async () => (await row(id)).host === B);
  assert.equal((await row(id)).task_state, 'resize_finish');
  // the destination builds it from the copy; the source keeps it, stopped, on its own image
  const there = (await hostB.watch()).servers.get(id);
  assert.equal(there?.spec.image.id, copy);
  const kept = (await hostA.watch()).servers.get(id);
  assert.equal(kept?.spec.power, 'stopped');
  assert.equal(kept?.spec.image.id, diskImage);
  assert.deepEqual(kept?.spec.ports, []);
  await hostB.report(id, 'active', 1);
  s = await status(id);
  assert.equal(s.status, 'VERIFY_RESIZE');
  assert.equal(s['OS-EXT-SRV-ATTR:host'], B);
  [m] = await migrations(id);
  assert.equal(m!.status, 'finished');
  const listed = await admin.call('GET', `/os-migrations?instance_uuid=${id}`, { version: '2.80' });
  assert.equal(listed.body.migrations[0].migration_type, 'migration');
  assert.equal(listed.body.migrations[0].dest_compute, B);

  // confirm: the source's claim released, the server gone from it, the copy deleted
  r = await act(id, { confirmResize: null }, alice);
  assert.equal(r.status, 204, JSON.stringify(r.body));
  s = await status(id);
  assert.equal(s.status, 'ACTIVE');
  assert.deepEqual(await allocations(m!.uuid), {});
  assert.deepEqual(Object.keys(await allocations(id)), [await providerOf(B)]);
  assert.ok(!(await hostA.watch()).servers.has(id), 'gone from the source');
  assert.equal((await cloud.call('GET', `/image/v2/images/${copy}`, { token: cloud.adminToken })).status, 404);
  assert.equal((await migrations(id))[0]!.status, 'confirmed');
  assert.equal((await alice.call('DELETE', `/servers/${id}`)).status, 204);
});

test('migrate a container with a port: rebound to the destination with its address; revert brings it back; a failed copy is undone', async () => {
  const call = neutron(cloud);
  const net = await networkWithSubnet(call, 'mg-net', '10.95.1.0/24', alice.token);
  // B gets nothing new while A is the only fit: fill it with a disabled state instead
  const id = await whileDisabled(admin, B, () => server(containerImage, [{ uuid: net.id }]));
  const portOf = async () => ((await call('GET', `/ports?device_id=${id}`)).body.ports as any[])[0];
  const before = await portOf();
  assert.equal(before['binding:host_id'], A);

  // a copy that fails: everything back as it was
  let r = await act(id, { migrate: null });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  await hostA.report(id, 'stopped', 4);
  await copyOn(hostA, id, Buffer.alloc(0), false);
  await until('undone', async () => (await row(id)).task_state === null);
  assert.equal((await row(id)).host, A);
  assert.equal((await migrations(id))[0]!.status, 'error');
  assert.deepEqual(Object.keys(await allocations(id)), [await providerOf(A)]);
  assert.deepEqual(Object.values(await allocations(id)), [{ VCPU: 1, MEMORY_MB: 512, DISK_GB: 1 }]);
  assert.deepEqual(await allocations((await migrations(id))[0]!.uuid), {});
  assert.equal((await portOf())['binding:host_id'], A);

  // running again where it was (the undo's spec), then moved
  assert.equal((await hostA.watch()).servers.get(id)?.spec.power, 'running');
  await hostA.report(id, 'active', 1);
  r = await act(id, { migrate: null });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  await hostA.report(id, 'stopped', 4);
  const copy = await copyOn(hostA, id, dockerArchive());
  await until('moved', async () => (await row(id)).host === B);
  const moved = await portOf();
  assert.equal(moved['binding:host_id'], B, 'the port is bound on the destination');
  assert.deepEqual(moved.fixed_ips, before.fixed_ips, 'with its address');
  assert.equal(moved.mac_address, before.mac_address);
  await hostB.report(id, 'active', 1);
  assert.equal((await status(id)).status, 'VERIFY_RESIZE');

  // revert: back on the source, which kept it; the destination's claim released
  r = await act(id, { revertResize: null }, alice);
  assert.equal(r.status, 202, JSON.stringify(r.body));
  assert.equal((await row(id)).host, A);
  assert.equal((await row(id)).task_state, 'resize_reverting');
  assert.equal((await portOf())['binding:host_id'], A);
  assert.ok(!(await hostB.watch()).servers.has(id), 'gone from the destination');
  const back = (await hostA.watch()).servers.get(id);
  assert.equal(back?.spec.image.id, containerImage, 'its own image again');
  assert.equal(back?.spec.power, 'running');
  await hostA.report(id, 'active', 1);
  const s = await status(id);
  assert.equal(s.status, 'ACTIVE');
  assert.equal(s['OS-EXT-SRV-ATTR:host'], A);
  assert.equal((await migrations(id)).at(-1)!.status, 'reverted');
  assert.deepEqual(Object.keys(await allocations(id)), [await providerOf(A)]);
  assert.deepEqual(await allocations((await migrations(id)).at(-1)!.uuid), {});
  assert.equal((await cloud.call('GET', `/image/v2/images/${copy}`, { token: cloud.adminToken })).status, 404);
  assert.equal((await alice.call('DELETE', `/servers/${id}`)).status, 204);
});

test('resize with no room left on the server\'s host: resized on the other one by the same path (the source keeps the old flavor), revert brings it back', async () => {
  hostB ??= await simulatedHost(cloud, B);
  await registerB(cloud, 16384);
  const large = (await admin.call('POST', '/flavors', { body: { flavor: { name: 'mg-large', ram: 9000, vcpus: 1, disk: 2 } } })).body.flavor.id as string;
  const id = await whileDisabled(admin, B, () => server(diskImage));
  // 9000 MB is more than host A has at all (8192): only B fits
  let r = await act(id, { resize: { flavorRef: large } }, alice);
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const [m] = await migrations(id);
  assert.equal(m!.migration_type, 'resize');
  assert.equal(m!.source_compute, A);
  assert.equal(m!.dest_compute, B);
  assert.equal((await row(id)).task_state, 'resize_migrating');
  assert.deepEqual(Object.values(await allocations(m!.uuid)), [{ VCPU: 1, MEMORY_MB: 512, DISK_GB: 1 }]);
  assert.deepEqual(Object.values(await allocations(id)), [{ VCPU: 1, MEMORY_MB: 9000, DISK_GB: 2 }]);
  assert.deepEqual(Object.keys(await allocations(id)), [await providerOf(B)]);
  // the source stops it with its old flavor (nothing to resize there) and copies its disk
  const onA = (await hostA.watch()).servers.get(id);
  assert.equal(onA?.spec.flavor.ram, 512);
  assert.equal(onA?.spec.power, 'stopped');
  await hostA.report(id, 'stopped', 4);
  await copyOn(hostA, id, Buffer.alloc(4096, 3));
  await until('moved', async () => (await row(id)).host === B);
  assert.equal((await hostB.watch()).servers.get(id)?.spec.flavor.ram, 9000, 'the destination builds it with the new flavor');
  assert.equal((await hostA.watch()).servers.get(id)?.spec.flavor.ram, 512, 'the source keeps the old one');
  await hostB.report(id, 'active', 1);
  let s = await status(id);
  assert.equal(s.status, 'VERIFY_RESIZE');
  assert.equal((await row(id)).memory_mb, 9000);

  r = await act(id, { revertResize: null }, alice);
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const back = (await hostA.watch()).servers.get(id);
  assert.equal(back?.spec.flavor.ram, 512);
  assert.equal(back?.spec.task_state, 'resize_reverting');
  await hostA.report(id, 'active', 1);
  s = await status(id);
  assert.equal(s.status, 'ACTIVE');
  assert.equal((await row(id)).memory_mb, 512);
  assert.equal(s['OS-EXT-SRV-ATTR:host'], A);
  assert.deepEqual(Object.keys(await allocations(id)), [await providerOf(A)]);
  assert.deepEqual(Object.values(await allocations(id)), [{ VCPU: 1, MEMORY_MB: 512, DISK_GB: 1 }]);
  assert.equal((await alice.call('DELETE', `/servers/${id}`)).status, 204);
});

test('evacuate: refused while the host is up; from a host forced down, rebuilt on the other one (ports rebound), the dead host\'s claim released once done', async () => {
  hostB ??= await simulatedHost(cloud, B);
  const call = neutron(cloud);
  const net = await networkWithSubnet(call, 'mg-ev', '10.95.2.0/24', alice.token);
  const id = await whileDisabled(admin, B, () => server(diskImage, [{ uuid: net.id }]));
  const portBefore = ((await call('GET', `/ports?device_id=${id}`)).body.ports as any[])[0];

  let r = await act(id, { evacuate: {} });
  assert.equal(r.status, 400, JSON.stringify(r.body));
  assert.equal(r.body.badRequest.message, `Compute service of ${A} is still in use.`);
  assert.equal((await act(id, { evacuate: {} }, alice)).status, 403, 'the admin\'s');
  const down = await admin.call('PUT', '/os-services/force-down', { version: '2.11', body: { host: A, binary: 'nova-compute', forced_down: true } });
  assert.equal(down.status, 200, JSON.stringify(down.body));
  try {
    r = await act(id, { evacuate: { host: 'no-such-host' } });
    assert.equal(r.status, 404);
    assert.equal(r.body.itemNotFound.message, 'Compute host no-such-host not found.');
    r = await act(id, { evacuate: { host: A } });
    assert.equal(r.status, 400);
    assert.equal((await act(id, { evacuate: { onSharedStorage: false } })).status, 400, 'onSharedStorage is gone from 2.14');
    assert.equal((await migrations(id)).length, 0, 'nothing recorded by a refusal');

    // as a confirmed move leaves it: its disk image the move's copy, deleted since
    await db().updateTable('compute_servers').set({ disk_image: JSON.stringify({ id: 'gone-copy', name: null, status: 'active', container_format: 'bare', disk_format: 'qcow2', size: 1, checksum: null }) }).where('id', '=', id).execute();
    r = await act(id, { evacuate: {} });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const s = await status(id);
    assert.equal(s.status, 'REBUILD');
    assert.equal(s['OS-EXT-SRV-ATTR:host'], B);
    const [m] = await migrations(id);
    assert.equal(m!.migration_type, 'evacuation');
    assert.equal(m!.status, 'accepted');
    assert.deepEqual(Object.keys(await allocations(m!.uuid)), [await providerOf(A)]);
    assert.deepEqual(Object.keys(await allocations(id)), [await providerOf(B)]);
    const port = ((await call('GET', `/ports?device_id=${id}`)).body.ports as any[])[0];
    assert.equal(port['binding:host_id'], B);
    assert.deepEqual(port.fixed_ips, portBefore.fixed_ips);
    assert.ok(!(await hostA.watch()).servers.has(id), 'the dead host no longer holds it (its agent removes it when it is back)');
    const spec = await hostB.report(id, 'active', 1);
    assert.equal(spec.image.id, diskImage, 'rebuilt from its image, not a disk image left on the row');
    assert.equal((await status(id)).status, 'ACTIVE');
    assert.equal((await migrations(id))[0]!.status, 'done');
    assert.deepEqual(await allocations(m!.uuid), {});
    const listed = await admin.call('GET', `/os-migrations?migration_type=evacuation`, { version: '2.59' });
    assert.ok(listed.body.migrations.some((x: any) => x.uuid === m!.uuid && x.status === 'done'));
  } finally {
    await admin.call('PUT', '/os-services/force-down', { version: '2.11', body: { host: A, binary: 'nova-compute', forced_down: false } });
  }
  assert.equal((await alice.call('DELETE', `/servers/${id}`)).status, 204);
});

test('a server deleted while VERIFY_RESIZE after a move: both hosts\' claims released, the copy of its disk deleted', async () => {
  hostB ??= await simulatedHost(cloud, B);
  await registerB(cloud, 8192);
  const id = await whileDisabled(admin, B, () => server(diskImage));
  assert.equal((await act(id, { migrate: null })).status, 202);
  await hostA.report(id, 'stopped', 4);
  const copy = await copyOn(hostA, id, Buffer.alloc(4096, 4));
  await until('moved', async () => (await row(id)).host === B);
  await hostB.report(id, 'active', 1);
  assert.equal((await status(id)).status, 'VERIFY_RESIZE');
  const [m] = await migrations(id);
  assert.equal((await alice.call('DELETE', `/servers/${id}`)).status, 204);
  // the destination tears it down and says so
  const spec = (await hostB.watch()).servers.get(id)!;
  assert.equal(spec.spec.deleted, true);
  const r = await agentCall(cloud, 'POST', `${B}/report`, { resources: [{ kind: 'server', id, version: spec.version, observed: { state: 'deleted', power_state: 0 } }] });
  assert.equal(r.status, 200);
  await until('deleted', async () => (await row(id)).deleted_at !== null);
  assert.deepEqual(await allocations(id), {});
  assert.deepEqual(await allocations(m!.uuid), {});
  assert.equal((await migrations(id))[0]!.status, 'error');
  assert.ok(!(await hostA.watch()).servers.has(id), 'gone from the source');
  await until('the copy deleted', async () => (await cloud.call('GET', `/image/v2/images/${copy}`, { token: cloud.adminToken })).status === 404);
});

test('an admin\'s resetState during an evacuation ends its migration (error) and releases the dead host\'s claim; the new host keeps the server\'s', async () => {
  hostB ??= await simulatedHost(cloud, B);
  await registerB(cloud, 8192);
  const id = await whileDisabled(admin, B, () => server(diskImage));
  const down = await admin.call('PUT', '/os-services/force-down', { version: '2.11', body: { host: A, binary: 'nova-compute', forced_down: true } });
  assert.equal(down.status, 200, JSON.stringify(down.body));
  try {
    assert.equal((await act(id, { evacuate: {} })).status, 200);
    const [m] = await migrations(id);
    assert.equal(m!.status, 'accepted');
    assert.deepEqual(Object.keys(await allocations(m!.uuid)), [await providerOf(A)]);
    // the rebuild never reports; the admin resets the server
    assert.equal((await act(id, { 'os-resetState': { state: 'error' } })).status, 202);
    assert.equal((await migrations(id))[0]!.status, 'error');
    assert.deepEqual(await allocations(m!.uuid), {}, 'the dead host\'s claim released');
    assert.deepEqual(Object.keys(await allocations(id)), [await providerOf(B)]);
    const s = await status(id);
    assert.equal(s.status, 'ERROR');
    assert.equal(s['OS-EXT-SRV-ATTR:host'], B);
  } finally {
    await admin.call('PUT', '/os-services/force-down', { version: '2.11', body: { host: A, binary: 'nova-compute', forced_down: false } });
  }
  assert.equal((await alice.call('DELETE', `/servers/${id}`)).status, 204);
});
