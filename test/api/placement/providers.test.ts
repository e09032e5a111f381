// Placement over HTTP: the version document and microversion negotiation,
// resource providers (generations, names, trees), inventories, aggregates,
// traits of a provider, and Placement's error envelope.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { tenant, uniqueName, useCloud } from '../../harness.ts';
import { assertError, makeProvider, placement } from './lib.ts';

const cloud = useCloud();
const call = placement(cloud);

test('root: version document without a token, microversion headers, 406 with the range served', async () => {
  const root = await cloud.call('GET', '/placement/');
  assert.equal(root.status, 200);
  assert.deepEqual(root.body.versions[0], { id: 'v1.0', max_version: '1.29', min_version: '1.0', status: 'CURRENT', links: [{ rel: 'self', href: '' }] });
  assert.equal(root.headers.get('openstack-api-version'), 'placement 1.0');
  const latest = await cloud.call('GET', '/placement', { headers: { 'OpenStack-API-Version': 'placement latest' } });
  assert.equal(latest.headers.get('openstack-api-version'), 'placement 1.29');
  // osc-placement asks for its highest (1.29) and falls back to the max_version of a 406.
  const tooNew = await cloud.call('GET', '/placement/', { headers: { 'OpenStack-API-Version': 'placement 1.39' } });
  assertError(tooNew, 406);
  assert.equal(tooNew.body.errors[0].max_version, '1.29');
  assert.equal(tooNew.body.errors[0].min_version, '1.0');
  assertError(await cloud.call('GET', '/placement/', { headers: { 'OpenStack-API-Version': 'placement one' } }), 400);
});

test('policy: admin only; no token is 401 in the envelope', async () => {
  assertError(await cloud.call('GET', '/placement/resource_providers'), 401);
  const member = await tenant(cloud);
  assertError(await call('GET', '/resource_providers', { token: member.token }), 403);
  assertError(await call('GET', '/resource_classes', { token: member.token }), 403);
});

test('resource providers: create, show, list filters, rename, generation, delete', async () => {
  const name = uniqueName('rp');
  const created = await call('POST', '/resource_providers', { body: { name } });
  assert.equal(created.status, 200);
  const uuid = created.body.uuid;
  assert.equal(created.body.generation, 0);
  assert.equal(created.body.root_provider_uuid, uuid);
  assert.equal(created.body.parent_provider_uuid, null);
  assert.deepEqual(created.body.links.map((l: { rel: string }) => l.rel), ['self', 'inventories', 'usages', 'aggregates', 'traits', 'allocations']);
  // before 1.20: 201, Location, no body
  const old = await call('POST', '/resource_providers', { body: { name: uniqueName('rp-old') }, version: '1.19' });
  assert.equal(old.status, 201);
  assert.match(old.headers.get('location')!, /^\/placement\/resource_providers\/[0-9a-f-]{36}$/);
  assertError(await call('POST', '/resource_providers', { body: { name } }), 409, 'placement.duplicate_name');
  assertError(await call('POST', '/resource_providers', { body: { name: uniqueName('rp'), uuid } }), 409, 'placement.duplicate_name');
  assertError(await call('POST', '/resource_providers', { body: {} }), 400);
  assertError(await call('POST', '/resource_providers', { body: { name: 'x', bogus: 1 } }), 400);

  const shown = await call('GET', `/resource_providers/${uuid}`);
  assert.equal(shown.body.name, name);
  assertError(await call('GET', `/resource_providers/${randomUUID()}`), 404, 'placement.resource_provider.not_found');
  const byName = await call('GET', `/resource_providers?name=${name}`);
  assert.deepEqual(byName.body.resource_providers.map((p: { uuid: string }) => p.uuid), [uuid]);
  assertError(await call('GET', '/resource_providers?bogus=1'), 400);

  const renamed = await call('PUT', `/resource_providers/${uuid}`, { body: { name: `${name}-2` } });
  assert.equal(renamed.status, 200);
  assert.equal(renamed.body.name, `${name}-2`);
  assert.equal(renamed.body.generation, 1);

  const child = await call('POST', '/resource_providers', { body: { name: uniqueName('child'), parent_provider_uuid: uuid } });
  assert.equal(child.body.root_provider_uuid, uuid);
  const tree = await call('GET', `/resource_providers?in_tree=${child.body.uuid}`);
  assert.deepEqual(tree.body.resource_providers.map((p: { uuid: string }) => p.uuid).sort(), [uuid, child.body.uuid].sort());
  assertError(await call('DELETE', `/resource_providers/${uuid}`), 409, 'placement.resource_provider.cannot_delete_parent');
  assert.equal((await call('DELETE', `/resource_providers/${child.body.uuid}`)).status, 204);
  assert.equal((await call('DELETE', `/resource_providers/${uuid}`)).status, 204);
  assertError(await call('DELETE', `/resource_providers/${uuid}`), 404);
});

test('inventories: replace with generation, one class, in use, custom classes, reserved', async () => {
  const uuid = await makeProvider(call, uniqueName('inv'));
  const put = await call('PUT', `/resource_providers/${uuid}/inventories`, {
    body: { resource_provider_generation: 0, inventories: { VCPU: { total: 8, allocation_ratio: 2 }, MEMORY_MB: { total: 4096, reserved: 512 } } },
  });
  assert.equal(put.status, 200, JSON.stringify(put.body));
  assert.equal(put.body.resource_provider_generation, 1);
  assert.deepEqual(put.body.inventories.VCPU, { total: 8, reserved: 0, min_unit: 1, max_unit: 2147483647, step_size: 1, allocation_ratio: 2 });
  // a stale generation is Placement's concurrent update
  assertError(await call('PUT', `/resource_providers/${uuid}/inventories`, { body: { resource_provider_generation: 0, inventories: {} } }), 409, 'placement.concurrent_update');
  assertError(await call('PUT', `/resource_providers/${uuid}/inventories`, { body: { resource_provider_generation: 1, inventories: { CUSTOM_NOPE: { total: 1 } } } }), 400);
  assertError(await call('PUT', `/resource_providers/${uuid}/inventories`, { body: { resource_provider_generation: 1, inventories: { VCPU: { total: 2, reserved: 3 } } } }), 400);
  assertError(await call('PUT', `/resource_providers/${uuid}/inventories`, { body: { resource_provider_generation: 1, inventories: { VCPU: { total: 0 } } } }), 400);

  assert.equal((await call('PUT', '/resource_classes/CUSTOM_BAREMETAL_LARGE')).status < 300, true);
  const one = await call('PUT', `/resource_providers/${uuid}/inventories/CUSTOM_BAREMETAL_LARGE`, { body: { resource_provider_generation: 1, total: 1 } });
  assert.equal(one.status, 200, JSON.stringify(one.body));
  assert.equal(one.body.resource_provider_generation, 2);
  const shown = await call('GET', `/resource_providers/${uuid}/inventories/CUSTOM_BAREMETAL_LARGE`);
  assert.equal(shown.body.total, 1);
  assertError(await call('GET', `/resource_providers/${uuid}/inventories/DISK_GB`), 404);
  const posted = await call('POST', `/resource_providers/${uuid}/inventories`, { body: { resource_class: 'DISK_GB', total: 100 } });
  assert.equal(posted.status, 201, JSON.stringify(posted.body));
  assertError(await call('POST', `/resource_providers/${uuid}/inventories`, { body: { resource_class: 'DISK_GB', total: 100 } }), 409);

  // an allocated class cannot go
  const consumer = randomUUID();
  const alloc = await call('PUT', `/allocations/${consumer}`, {
    body: { allocations: { [uuid]: { resources: { VCPU: 2 } } }, project_id: 'p1', user_id: 'u1', consumer_generation: null },
  });
  assert.equal(alloc.status, 204, JSON.stringify(alloc.body));
  assertError(await call('DELETE', `/resource_providers/${uuid}/inventories/VCPU`), 409, 'placement.inventory.inuse');
  const gen = (await call('GET', `/resource_providers/${uuid}`)).body.generation;
  assertError(await call('PUT', `/resource_providers/${uuid}/inventories`, { body: { resource_provider_generation: gen, inventories: { DISK_GB: { total: 1 } } } }), 409, 'placement.inventory.inuse');
  assertError(await call('DELETE', `/resource_providers/${uuid}/inventories`), 409, 'placement.inventory.inuse');
  assertError(await call('DELETE', `/resource_providers/${uuid}`), 409, 'placement.resource_provider.inuse');
  assertError(await call('DELETE', '/resource_classes/CUSTOM_BAREMETAL_LARGE'), 409);
  const usages = await call('GET', `/resource_providers/${uuid}/usages`);
  assert.deepEqual(usages.body.usages, { CUSTOM_BAREMETAL_LARGE: 0, DISK_GB: 0, MEMORY_MB: 0, VCPU: 2 });
  assert.equal((await call('DELETE', `/allocations/${consumer}`)).status, 204);
  assert.equal((await call('DELETE', `/resource_providers/${uuid}/inventories`)).status, 204);
  assert.deepEqual((await call('GET', `/resource_providers/${uuid}/inventories`)).body.inventories, {});
  // before 1.5 there is no delete-all
  assertError(await call('DELETE', `/resource_providers/${uuid}/inventories`, { version: '1.4' }), 404);
});

test('aggregates and traits of a provider: generations, formats by microversion, unknown traits', async () => {
  const uuid = await makeProvider(call, uniqueName('agg'));
  const agg = randomUUID();
  const set = await call('PUT', `/resource_providers/${uuid}/aggregates`, { body: { aggregates: [agg], resource_provider_generation: 0 } });
  assert.equal(set.status, 200, JSON.stringify(set.body));
  assert.deepEqual(set.body, { aggregates: [agg], resource_provider_generation: 1 });
  assertError(await call('PUT', `/resource_providers/${uuid}/aggregates`, { body: { aggregates: [], resource_provider_generation: 0 } }), 409, 'placement.concurrent_update');
  // 1.1-1.18: a bare list in and out
  const old = await call('PUT', `/resource_providers/${uuid}/aggregates`, { body: [agg], version: '1.18' });
  assert.deepEqual(old.body, { aggregates: [agg] });
  assertError(await call('GET', `/resource_providers/${uuid}/aggregates`, { version: '1.0' }), 404);
  const member = await call('GET', `/resource_providers?member_of=in:${agg},${randomUUID()}`);
  assert.deepEqual(member.body.resource_providers.map((p: { uuid: string }) => p.uuid), [uuid]);

  const gen = (await call('GET', `/resource_providers/${uuid}`)).body.generation;
  assert.equal((await call('PUT', '/traits/CUSTOM_FAST_DISK')).status, 201);
  assert.equal((await call('PUT', '/traits/CUSTOM_FAST_DISK')).status, 204);
  const traits = await call('PUT', `/resource_providers/${uuid}/traits`, { body: { traits: ['CUSTOM_FAST_DISK', 'HW_CPU_X86_AVX2'], resource_provider_generation: gen } });
  assert.equal(traits.status, 200, JSON.stringify(traits.body));
  assert.deepEqual(traits.body, { traits: ['CUSTOM_FAST_DISK', 'HW_CPU_X86_AVX2'], resource_provider_generation: gen + 1 });
  assertError(await call('PUT', `/resource_providers/${uuid}/traits`, { body: { traits: ['CUSTOM_NOT_DEFINED'], resource_provider_generation: gen + 1 } }), 400);
  assertError(await call('PUT', `/resource_providers/${uuid}/traits`, { body: { traits: [], resource_provider_generation: gen } }), 409, 'placement.concurrent_update');
  const required = await call('GET', '/resource_providers?required=CUSTOM_FAST_DISK,!HW_CPU_X86_SSE');
  assert.deepEqual(required.body.resource_providers.map((p: { uuid: string }) => p.uuid), [uuid]);
  assert.deepEqual((await call('GET', '/resource_providers?required=!CUSTOM_FAST_DISK&name=' + (await call('GET', `/resource_providers/${uuid}`)).body.name)).body.resource_providers, []);
  assertError(await call('DELETE', '/traits/CUSTOM_FAST_DISK'), 409);
  assert.equal((await call('DELETE', `/resource_providers/${uuid}/traits`)).status, 204);
  assert.deepEqual((await call('GET', `/resource_providers/${uuid}/traits`)).body.traits, []);
});

test('resource classes and traits: standard and custom names', async () => {
  const classes = (await call('GET', '/resource_classes')).body.resource_classes.map((c: { name: string }) => c.name);
  for (const c of ['VCPU', 'MEMORY_MB', 'DISK_GB', 'VGPU']) assert.ok(classes.includes(c), c);
  const created = await call('POST', '/resource_classes', { body: { name: 'CUSTOM_GOLD' } });
  assert.equal(created.status, 201);
  assert.equal(created.headers.get('location'), '/placement/resource_classes/CUSTOM_GOLD');
  assertError(await call('POST', '/resource_classes', { body: { name: 'CUSTOM_GOLD' } }), 409, 'placement.duplicate_name');
  assertError(await call('POST', '/resource_classes', { body: { name: 'GOLD' } }), 400);
  assert.deepEqual((await call('GET', '/resource_classes/CUSTOM_GOLD')).body, { name: 'CUSTOM_GOLD', links: [{ rel: 'self', href: '/placement/resource_classes/CUSTOM_GOLD' }] });
  assert.equal((await call('PUT', '/resource_classes/CUSTOM_GOLD')).status, 204);
  assertError(await call('PUT', '/resource_classes/VCPU'), 400);
  assertError(await call('DELETE', '/resource_classes/VCPU'), 400);
  assert.equal((await call('DELETE', '/resource_classes/CUSTOM_GOLD')).status, 204);
  assertError(await call('GET', '/resource_classes/CUSTOM_GOLD'), 404);
  assertError(await call('GET', '/resource_classes', { version: '1.1' }), 404);

  const traits = (await call('GET', '/traits')).body.traits as string[];
  assert.ok(traits.includes('COMPUTE_NODE') && traits.includes('HW_CPU_X86_AVX2'));
  assert.equal((await call('PUT', '/traits/CUSTOM_BLUE')).status, 201);
  assert.deepEqual((await call('GET', '/traits?name=startswith:CUSTOM_BL')).body.traits, ['CUSTOM_BLUE']);
  assert.deepEqual((await call('GET', '/traits?name=in:CUSTOM_BLUE,STORAGE_DISK_SSD')).body.traits, ['CUSTOM_BLUE', 'STORAGE_DISK_SSD']);
  assert.ok(!(await call('GET', '/traits?associated=true')).body.traits.includes('CUSTOM_BLUE'));
  assert.equal((await call('GET', '/traits/CUSTOM_BLUE')).status, 204);
  assertError(await call('PUT', '/traits/BLUE'), 400);
  assertError(await call('DELETE', '/traits/COMPUTE_NODE'), 400);
  assert.equal((await call('DELETE', '/traits/CUSTOM_BLUE')).status, 204);
  assertError(await call('GET', '/traits/CUSTOM_BLUE'), 404);
  assertError(await call('GET', '/traits', { version: '1.5' }), 404);
});
