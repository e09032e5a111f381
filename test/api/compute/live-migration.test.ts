// Live migration (os-migrateLive) through the API with two simulated agents
// (lib.ts simulatedHost) answering the live_migration_* requests: Nova's
// refusals per microversion (400 below 2.34, a migration in error from 2.34)
// with nothing left behind; a migration through its statuses (queued,
// preparing, running with progress, post-migrating, completed) with the
// claims moved as cold migration moves them, the ports pre-plugged on the
// destination then bound there, /servers/{id}/migrations and os-migrations;
// an abort (cancelled, the server on its source, the destination's claim
// released); force_complete's and abort's refusals; a failed finish undone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { until } from '../../harness.ts';
import { networkWithSubnet, neutron } from '../network/lib.ts';
import { agentCall, type Nova, type SimulatedHost, simulatedHost, whileDisabled } from './lib.ts';
import { movesCloud } from './moves-lib.ts';

const A = `lm-a-${process.pid}`;
const B = `lm-b-${process.pid}`;
let admin: Nova;
let alice: Nova;
let hostA: SimulatedHost;
let hostB: SimulatedHost | null = null;
let diskImage: string;
let containerImage: string;

const { cloud, row, migrations, allocations, providerOf, server } = movesCloud('lm', A, (m) => ({ admin, alice, hostA, diskImage, containerImage } = m));
const live = (id: string, body: Record<string, unknown>, version = '2.30', who = admin) => who.call('POST', `/servers/${id}/action`, { body: { 'os-migrateLive': body }, version });
const status = async (id: string) => (await admin.call('GET', `/servers/${id}`)).body.server;

/** The live_migration_* request `action` for `id` on `host`, once asked. */
const asked = (host: SimulatedHost, id: string, action: string) =>
  until(`${action} on ${host.hostname}`, async () => (await host.watch()).requests.find((q) => q.resource_id === id && q.action === `live_migration_${action}`));

/** Answers a request with a result. */
async function answer(host: SimulatedHost, reqId: string, result: Record<string, unknown>): Promise<void> {
  const r = await agentCall(cloud, 'POST', `${host.hostname}/report`, { requests: [{ id: reqId, ok: true, result }] });
  assert.equal(r.status, 200);
}

const TARGET = { migrate_uri: 'tcp:127.0.0.1:49200', nbd: { host: '127.0.0.1', port: 49201, exports: ['drive-root'] } };
const progress = (memory: number, disk: number) => ({
  status: 'active', memory_total: 1000, memory_processed: memory, memory_remaining: 1000 - memory, disk_total: 400, disk_processed: disk, disk_remaining: 400 - disk,
});

test('os-migrateLive: Nova\'s refusals per microversion leave nothing behind', async () => {
  const ctr = await server(containerImage);
  let r = await live(ctr, { host: null, block_migration: 'auto' });
  assert.equal(r.status, 409, 'a container does not live-migrate');
  const id = await server(diskImage);
  const before = await allocations(id);
  // no other host: NoValidHost (below 2.34 at once)
  r = await live(id, { host: null, block_migration: 'auto' });
  assert.equal(r.status, 400, JSON.stringify(r.body));
  assert.match(r.body.badRequest.message, /No valid host was found/);
  r = await live(id, { host: A, block_migration: 'auto' });
  assert.equal(r.status, 400);
  assert.equal(r.body.badRequest.message, `Unable to migrate instance (${id}) to current host (${A}).`);
  r = await live(id, { host: 'no-such-host', block_migration: 'auto' }, '2.68');
  assert.equal(r.status, 400);
  assert.equal(r.body.badRequest.message, 'Compute host no-such-host could not be found.');
  r = await live(id, { host: null, block_migration: false });
  assert.equal(r.status, 400, 'no shared storage');
  assert.match(r.body.badRequest.message, /not on shared storage/);
  // the bodies of each microversion
  assert.equal((await live(id, { host: null, block_migration: true }, '2.1')).status, 400, 'disk_over_commit required below 2.25');
  assert.equal((await live(id, { host: null, block_migration: 'auto', disk_over_commit: false }, '2.1')).status, 400, 'no auto below 2.25');
  assert.equal((await live(id, { host: null, block_migration: 'auto', disk_over_commit: false }, '2.25')).status, 400, 'no disk_over_commit from 2.25');
  assert.equal((await live(id, { host: null, block_migration: 'auto', force: false }, '2.29')).status, 400, 'no force before 2.30');
  assert.equal((await live(id, { host: null, block_migration: 'auto', force: false }, '2.68')).status, 400, 'no force from 2.68');
  assert.equal((await live(id, { block_migration: 'auto' })).status, 400, 'host is required');
  assert.equal((await live(id, { host: null, block_migration: 'maybe' })).status, 400);
  r = await live(id, { host: null, block_migration: 'auto', force: true });
  assert.equal(r.status, 400);
  assert.equal(r.body.badRequest.message, 'Can\'t force to a non-provided destination');
  assert.equal((await live(id, { host: null, block_migration: 'auto' }, '2.30', alice)).status, 403, 'the admin\'s');
  assert.equal((await migrations(id)).length, 0, 'nothing recorded below 2.34');
  // from 2.34 the conductor's checks are asynchronous: 202, the migration in error, the server as it was
  r = await live(id, { host: null, block_migration: 'auto' }, '2.34');
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const [m] = await migrations(id);
  assert.equal(m!.migration_type, 'live-migration');
  assert.equal(m!.status, 'error');
  assert.equal((await status(id)).status, 'ACTIVE');
  assert.deepEqual(await allocations(id), before, 'the claim unchanged');
  const listed = await admin.call('GET', `/os-migrations?migration_type=live-migration&instance_uuid=${id}`, { version: '2.23' });
  assert.equal(listed.body.migrations.length, 1);
  assert.equal(listed.body.migrations[0].links, undefined, 'no links to a migration that is over');
  // a stopped server is the wrong state
  assert.equal((await alice.call('POST', `/servers/${id}/action`, { body: { 'os-stop': null } })).status, 202);
  await hostA.report(id, 'stopped', 4);
  r = await live(id, { host: null, block_migration: 'auto' });
  assert.equal(r.status, 409);
  assert.match(r.body.conflictingRequest.message, /Cannot 'os-migrateLive' instance .* while it is in vm_state stopped/);
  for (const s of [id, ctr]) assert.equal((await alice.call('DELETE', `/servers/${s}`)).status, 204);
});

test('a live migration through its statuses: prepared on the destination (ports pre-plugged), copied with progress, finished there; the source\'s claim released', async () => {
  hostB ??= await simulatedHost(cloud, B);
  const call = neutron(cloud);
  const net = await networkWithSubnet(call, 'lm-net', '10.95.7.0/24', alice.token);
  const id = await whileDisabled(admin, B, () => server(diskImage, [{ uuid: net.id }]));
  const portBefore = ((await call('GET', `/ports?device_id=${id}`)).body.ports as any[])[0];

  const r = await live(id, { host: B, block_migration: 'auto' }, '2.25');
  assert.equal(r.status, 202, JSON.stringify(r.body));
  let s = await status(id);
  assert.equal(s.status, 'MIGRATING');
  assert.equal(s['OS-EXT-STS:task_state'], 'migrating');
  assert.equal((await live(id, { host: B, block_migration: 'auto' })).status, 409, 'a second one meanwhile');
  let [m] = await migrations(id);
  assert.equal(m!.migration_type, 'live-migration');
  assert.deepEqual(Object.keys(await allocations(m!.uuid)), [await providerOf(A)], 'the source\'s claim is the migration\'s');
  assert.deepEqual(Object.keys(await allocations(id)), [await providerOf(B)], 'the destination\'s the server\'s');

  // preparing: B holds the server for the migration and is asked to prepare it; the port is plugged there too
  const prep = await asked(hostB!, id, 'prepare');
  assert.equal((await migrations(id))[0]!.status, 'preparing');
  assert.equal(prep.args.listen, '127.0.0.1');
  assert.equal(prep.args.spec.ports.length, 1);
  assert.deepEqual((await hostB!.watch()).servers.get(id)?.spec.incoming, { migration: m!.uuid });
  assert.equal((await hostA.watch()).servers.get(id)?.spec.incoming, undefined, 'the source runs it as before');
  const plugged = (await call('GET', `/ports/${portBefore.id}`)).body.port;
  assert.equal(plugged['binding:host_id'], A);
  assert.equal(plugged['binding:profile'].migrating_to, B);
  await answer(hostB!, prep.id, TARGET);

  // running: A copies to B's target; its progress shows in the server's migration
  const run = await asked(hostA, id, 'run');
  assert.deepEqual(run.args.target, TARGET);
  const prog = await asked(hostA, id, 'progress');
  await answer(hostA, prog.id, progress(600, 400));
  await until('progress', async () => {
    const list = await admin.call('GET', `/servers/${id}/migrations`, { version: '2.80' });
    return list.body.migrations[0]?.memory_processed_bytes === 600 ? list : undefined;
  });
  const list = await admin.call('GET', `/servers/${id}/migrations`, { version: '2.80' });
  assert.equal(list.status, 200);
  const sm = list.body.migrations[0];
  assert.equal(sm.status, 'running');
  assert.equal(sm.server_uuid, id);
  assert.equal(sm.source_compute, A);
  assert.equal(sm.dest_compute, B);
  assert.equal(sm.memory_total_bytes, 1000);
  assert.equal(sm.memory_remaining_bytes, 400);
  assert.equal(sm.disk_total_bytes, 400);
  assert.equal(sm.uuid, m!.uuid);
  assert.equal(sm.project_id, (await row(id)).project_id);
  const one = await admin.call('GET', `/servers/${id}/migrations/${sm.id}`, { version: '2.23' });
  assert.equal(one.status, 200);
  assert.equal(one.body.migration.id, sm.id);
  assert.equal(one.body.migration.uuid, undefined, 'uuid from 2.59');
  assert.equal((await admin.call('GET', `/servers/${id}/migrations`, { version: '2.22' })).status, 404, 'from 2.23');
  assert.equal((await alice.call('GET', `/servers/${id}/migrations`, { version: '2.23' })).status, 403, 'the admin\'s');
  const os = await admin.call('GET', `/os-migrations?instance_uuid=${id}`, { version: '2.23' });
  assert.equal(os.body.migrations[0].migration_type, 'live-migration');
  assert.match(os.body.migrations[0].links[0].href, new RegExp(`/servers/${id}/migrations/${sm.id}$`));
  // force_complete: asked of the source
  assert.equal((await admin.call('POST', `/servers/${id}/migrations/${sm.id}/action`, { body: { force_complete: null }, version: '2.22' })).status, 202);
  const fc = await asked(hostA, id, 'force_complete');
  await answer(hostA, fc.id, {});

  // the copy ends; post-migrating: B finishes it
  await answer(hostA, run.id, { ...progress(1000, 400), status: 'completed', memory_remaining: 0, disk_remaining: 0 });
  const fin = await asked(hostB!, id, 'finish');
  assert.equal((await migrations(id))[0]!.status, 'post-migrating');
  await answer(hostB!, fin.id, {});
  await until('completed', async () => (await row(id)).host === B);
  s = await status(id);
  assert.equal(s.status, 'ACTIVE');
  assert.equal(s['OS-EXT-STS:task_state'], null);
  [m] = await migrations(id);
  assert.equal(m!.status, 'completed');
  assert.deepEqual(await allocations(m!.uuid), {}, 'the source\'s claim released: no confirm');
  assert.deepEqual(Object.keys(await allocations(id)), [await providerOf(B)]);
  const bound = (await call('GET', `/ports/${portBefore.id}`)).body.port;
  assert.equal(bound['binding:host_id'], B);
  assert.equal(bound['binding:profile'].migrating_to, undefined);
  assert.deepEqual(bound.fixed_ips, portBefore.fixed_ips);
  assert.equal(bound.mac_address, portBefore.mac_address);
  assert.ok(!(await hostA.watch()).servers.has(id), 'the source no longer holds it');
  assert.equal((await hostB!.watch()).servers.get(id)?.spec.incoming, undefined, 'the destination runs it');
  assert.deepEqual((await admin.call('GET', `/servers/${id}/migrations`, { version: '2.23' })).body.migrations, []);
  assert.equal((await admin.call('GET', `/servers/${id}/migrations/${sm.id}`, { version: '2.23' })).status, 404);
  assert.equal((await alice.call('DELETE', `/servers/${id}`)).status, 204);
});

test('abort (DELETE of the migration) and its refusals; a failed finish undone: the server stays ACTIVE on its source, the destination\'s claim released', async () => {
  hostB ??= await simulatedHost(cloud, B);
  const id = await whileDisabled(admin, B, () => server(diskImage));
  const claim = await allocations(id);
  assert.equal((await live(id, { host: B, block_migration: true })).status, 202);
  const prep = await asked(hostB!, id, 'prepare');
  let [m] = await migrations(id);
  // preparing: not abortable before 2.65; force_complete only while running
  let r = await admin.call('DELETE', `/servers/${id}/migrations/${m!.id}`, { version: '2.24' });
  assert.equal(r.status, 400);
  assert.match(r.body.badRequest.message, /state of instance .* is preparing/);
  r = await admin.call('POST', `/servers/${id}/migrations/${m!.id}/action`, { body: { force_complete: null }, version: '2.22' });
  assert.equal(r.status, 400);
  assert.equal((await admin.call('DELETE', `/servers/${id}/migrations/999999`, { version: '2.24' })).status, 404);
  assert.equal((await admin.call('DELETE', `/servers/${id}/migrations/${m!.id}`, { version: '2.23' })).status, 404, 'from 2.24');
  await answer(hostB!, prep.id, TARGET);
  const run = await asked(hostA, id, 'run');
  r = await admin.call('DELETE', `/servers/${id}/migrations/${m!.id}`, { version: '2.24' });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  assert.equal((await migrations(id))[0]!.status, 'cancelling');
  const abort = await asked(hostA, id, 'abort');
  await answer(hostA, abort.id, {});
  await hostA.answer(run.id, false, 'the live migration was cancelled');
  const recover = await asked(hostA, id, 'recover');
  await answer(hostA, recover.id, {});
  await until('cancelled', async () => (await migrations(id))[0]!.status === 'cancelled');
  let s = await status(id);
  assert.equal(s.status, 'ACTIVE');
  assert.equal(s['OS-EXT-SRV-ATTR:host'], A);
  assert.deepEqual(await allocations(id), claim, 'the claim back on the source');
  assert.deepEqual(await allocations(m!.uuid), {});
  assert.ok(!(await hostB!.watch()).servers.has(id), 'the destination no longer holds it');
  assert.equal((await admin.call('DELETE', `/servers/${id}/migrations/${m!.id}`, { version: '2.24' })).status, 409, 'over: the server migrates no more (Nova checks its task first)');

  // a finish that fails after the hand-over: the source takes it back
  assert.equal((await live(id, { host: null, block_migration: 'auto' }, '2.65')).status, 202);
  await answer(hostB!, (await asked(hostB!, id, 'prepare')).id, TARGET);
  await answer(hostA, (await asked(hostA, id, 'run')).id, progress(1000, 400));
  await hostB!.answer((await asked(hostB!, id, 'finish')).id, false, 'the incoming state did not load');
  await answer(hostA, (await asked(hostA, id, 'recover')).id, {});
  await until('error', async () => (await migrations(id))[1]?.status === 'error');
  s = await status(id);
  assert.equal(s.status, 'ACTIVE');
  assert.equal(s['OS-EXT-SRV-ATTR:host'], A);
  assert.deepEqual(await allocations(id), claim);
  m = (await migrations(id))[1];
  assert.deepEqual(await allocations(m!.uuid), {});

  // queued or preparing is abortable from 2.65
  assert.equal((await live(id, { host: null, block_migration: 'auto' }, '2.65')).status, 202);
  const p3 = await asked(hostB!, id, 'prepare');
  m = (await migrations(id))[2];
  assert.equal((await admin.call('DELETE', `/servers/${id}/migrations/${m!.id}`, { version: '2.65' })).status, 202);
  await answer(hostB!, p3.id, TARGET);
  await until('cancelled before the copy', async () => (await migrations(id))[2]?.status === 'cancelled');
  await answer(hostA, (await asked(hostA, id, 'recover')).id, {});
  assert.ok(!(await hostA.watch()).requests.some((q) => q.resource_id === id && q.action === 'live_migration_run'), 'never copied');
  assert.equal((await status(id)).status, 'ACTIVE');
  assert.deepEqual(await allocations(id), claim);
  assert.equal((await alice.call('DELETE', `/servers/${id}`)).status, 204);
});
