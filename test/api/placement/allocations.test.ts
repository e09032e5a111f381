// Placement over HTTP: allocations per consumer (formats by microversion,
// consumer generations, capacity), POST /allocations, usages of providers and
// projects, and allocation candidates with traits, aggregates, custom classes
// and granular groups.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { tenant, uniqueName, useCloud } from '../../harness.ts';
import { assertError, makeProvider, placement } from './lib.ts';

const cloud = useCloud();
const call = placement(cloud);

const put = (consumer: string, allocations: Record<string, Record<string, number>>, generation: number | null, project = 'proj-a', user = 'user-a') =>
  call('PUT', `/allocations/${consumer}`, {
    body: {
      allocations: Object.fromEntries(Object.entries(allocations).map(([rp, resources]) => [rp, { resources }])),
      project_id: project, user_id: user, consumer_generation: generation,
    },
  });

test('allocations: claim, consumer generations, capacity with allocation ratio, constraints, replace and delete', async () => {
  const rp = await makeProvider(call, uniqueName('alloc'), { VCPU: { total: 2, allocation_ratio: 2 }, MEMORY_MB: { total: 1024, step_size: 256, max_unit: 512 } });
  const c1 = randomUUID();
  assert.equal((await put(c1, { [rp]: { VCPU: 3, MEMORY_MB: 512 } }, null)).status, 204);
  const shown = await call('GET', `/allocations/${c1}`);
  assert.equal(shown.body.consumer_generation, 1);
  assert.equal(shown.body.project_id, 'proj-a');
  assert.deepEqual(shown.body.allocations[rp].resources, { VCPU: 3, MEMORY_MB: 512 });
  assert.equal(typeof shown.body.allocations[rp].generation, 'number');
  // a writer that saw no consumer, or an old generation, loses
  assertError(await put(c1, { [rp]: { VCPU: 1 } }, null), 409, 'placement.concurrent_update');
  assertError(await put(c1, { [rp]: { VCPU: 1 } }, 0), 409, 'placement.concurrent_update');
  // capacity: (2 - 0) * 2 = 4 VCPU
  const c2 = randomUUID();
  assertError(await put(c2, { [rp]: { VCPU: 2 } }, null), 409, 'placement.undefined_code', /exceed the capacity/);
  assert.equal((await put(c2, { [rp]: { VCPU: 1 } }, null)).status, 204);
  // step size and max_unit
  assertError(await put(randomUUID(), { [rp]: { MEMORY_MB: 100 } }, null), 409, undefined, /inventory constraints/);
  assertError(await put(randomUUID(), { [rp]: { DISK_GB: 1 } }, null), 409, undefined, /Inventory for 'DISK_GB'/);
  assertError(await put(randomUUID(), { [randomUUID()]: { VCPU: 1 } }, null), 400, undefined, /does not exist/);
  assertError(await put(randomUUID(), { [rp]: { CUSTOM_UNDEFINED: 1 } }, null), 400);
  assertError(await call('PUT', `/allocations/${randomUUID()}`, { body: { allocations: { [rp]: { resources: { VCPU: 1 } } }, project_id: 'p', user_id: 'u' } }), 400);
  assertError(await call('PUT', `/allocations/${randomUUID()}`, { body: { allocations: { [rp]: { resources: { VCPU: 0 } } }, project_id: 'p', user_id: 'u', consumer_generation: null } }), 400);
  // replacing frees the old amounts first
  assert.equal((await put(c1, { [rp]: { VCPU: 1 } }, 1)).status, 204);
  assert.equal((await put(c2, { [rp]: { VCPU: 3 } }, 1)).status, 204);
  const usages = await call('GET', `/resource_providers/${rp}/usages`);
  assert.deepEqual(usages.body.usages, { MEMORY_MB: 0, VCPU: 4 });
  const byRp = await call('GET', `/resource_providers/${rp}/allocations`);
  assert.deepEqual(byRp.body.allocations, { [c1]: { resources: { VCPU: 1 } }, [c2]: { resources: { VCPU: 3 } } });
  // 1.0-1.11: the list form, no project or user before 1.8
  const c3 = randomUUID();
  const listForm = await call('PUT', `/allocations/${c3}`, { version: '1.7', body: { allocations: [{ resource_provider: { uuid: rp }, resources: { MEMORY_MB: 256 } }] } });
  assert.equal(listForm.status, 204, JSON.stringify(listForm.body));
  assert.deepEqual(Object.keys((await call('GET', `/allocations/${c3}`, { version: '1.11' })).body), ['allocations']);
  // an empty dict (1.28) removes the consumer's allocations
  assert.equal((await put(c3, {}, 1)).status, 204);
  assert.deepEqual((await call('GET', `/allocations/${c3}`)).body, { allocations: {} });
  assert.equal((await call('DELETE', `/allocations/${c1}`)).status, 204);
  assertError(await call('DELETE', `/allocations/${c1}`), 404);
  assert.equal((await call('DELETE', `/allocations/${c2}`)).status, 204);
});

test('POST /allocations moves consumers atomically; a failure writes nothing', async () => {
  const a = await makeProvider(call, uniqueName('post-a'), { VCPU: 4 });
  const b = await makeProvider(call, uniqueName('post-b'), { VCPU: 1 });
  const c1 = randomUUID();
  const c2 = randomUUID();
  const body = (rp1: string, n1: number, rp2: string, n2: number, g1: number | null, g2: number | null) => ({
    [c1]: { allocations: { [rp1]: { resources: { VCPU: n1 } } }, project_id: 'p', user_id: 'u', consumer_generation: g1 },
    [c2]: { allocations: { [rp2]: { resources: { VCPU: n2 } } }, project_id: 'p', user_id: 'u', consumer_generation: g2 },
  });
  assert.equal((await call('POST', '/allocations', { body: body(a, 1, a, 1, null, null) })).status, 204);
  // the second move does not fit on b: neither moves
  assertError(await call('POST', '/allocations', { body: body(b, 1, b, 1, 1, 1) }), 409);
  assert.deepEqual(Object.keys((await call('GET', `/allocations/${c1}`)).body.allocations), [a]);
  assertError(await call('POST', '/allocations', { body: body(b, 1, a, 1, 1, 1), version: '1.12' }), 404);
  assert.equal((await call('POST', '/allocations', { body: body(b, 1, a, 2, 1, 1) })).status, 204);
  assert.deepEqual((await call('GET', `/allocations/${c1}`)).body.allocations, { [b]: { generation: (await call('GET', `/resource_providers/${b}`)).body.generation, resources: { VCPU: 1 } } });
  await call('DELETE', `/allocations/${c1}`);
  await call('DELETE', `/allocations/${c2}`);
});

test('usages of a project and user; a project reader sees its own', async () => {
  const rp = await makeProvider(call, uniqueName('usage'), { VCPU: 8, MEMORY_MB: 8192 });
  const t = await tenant(cloud, ['reader']);
  const c1 = randomUUID();
  const c2 = randomUUID();
  assert.equal((await put(c1, { [rp]: { VCPU: 2, MEMORY_MB: 512 } }, null, t.projectId, 'u1')).status, 204);
  assert.equal((await put(c2, { [rp]: { VCPU: 1 } }, null, t.projectId, 'u2')).status, 204);
  assert.deepEqual((await call('GET', `/usages?project_id=${t.projectId}`)).body, { usages: { MEMORY_MB: 512, VCPU: 3 } });
  assert.deepEqual((await call('GET', `/usages?project_id=${t.projectId}&user_id=u2`)).body, { usages: { VCPU: 1 } });
  assert.deepEqual((await call('GET', `/usages?project_id=${t.projectId}`, { token: t.token })).body.usages.VCPU, 3);
  assertError(await call('GET', '/usages?project_id=someone-else', { token: t.token }), 403);
  assertError(await call('GET', '/usages'), 400);
  assertError(await call('GET', `/usages?project_id=${t.projectId}`, { version: '1.8' }), 404);
  await call('DELETE', `/allocations/${c1}`);
  await call('DELETE', `/allocations/${c2}`);
});

test('allocation candidates: capacity, required and forbidden traits, member_of, custom classes, limit, granular groups', async () => {
  await call('PUT', '/traits/CUSTOM_CAND_SSD');
  await call('PUT', '/resource_classes/CUSTOM_CAND_BAREMETAL');
  const small = await makeProvider(call, uniqueName('cand-small'), { VCPU: 2, MEMORY_MB: 1024 });
  const big = await makeProvider(call, uniqueName('cand-big'), { VCPU: 16, MEMORY_MB: 65536, DISK_GB: 100 });
  const metal = await makeProvider(call, uniqueName('cand-metal'), { CUSTOM_CAND_BAREMETAL: 1 });
  const gen = (await call('GET', `/resource_providers/${big}`)).body.generation;
  assert.equal((await call('PUT', `/resource_providers/${big}/traits`, { body: { traits: ['CUSTOM_CAND_SSD'], resource_provider_generation: gen } })).status, 200);
  const mine = (r: { body: { allocation_requests: Array<{ allocations: Record<string, unknown> }> } }) =>
    r.body.allocation_requests.map((a) => Object.keys(a.allocations)).flat().filter((u) => [small, big, metal].includes(u)).sort();

  const any = await call('GET', '/allocation_candidates?resources=VCPU:1,MEMORY_MB:512');
  assert.equal(any.status, 200, JSON.stringify(any.body));
  assert.deepEqual(mine(any), [big, small].sort());
  const req = any.body.allocation_requests.find((a: { allocations: Record<string, unknown> }) => a.allocations[small]);
  assert.deepEqual(req.allocations[small], { resources: { VCPU: 1, MEMORY_MB: 512 } });
  const sum = any.body.provider_summaries[big];
  assert.deepEqual(sum.resources.VCPU, { capacity: 16, used: 0 });
  assert.deepEqual(sum.resources.DISK_GB, { capacity: 100, used: 0 }, 'every class of the provider from 1.27');
  assert.deepEqual(sum.traits, ['CUSTOM_CAND_SSD']);
  assert.equal(sum.root_provider_uuid, big);
  assert.equal(sum.parent_provider_uuid, null);

  assert.deepEqual(mine(await call('GET', '/allocation_candidates?resources=VCPU:4')), [big]);
  assert.deepEqual(mine(await call('GET', '/allocation_candidates?resources=VCPU:1&required=CUSTOM_CAND_SSD')), [big]);
  assert.deepEqual(mine(await call('GET', '/allocation_candidates?resources=VCPU:1&required=!CUSTOM_CAND_SSD')), [small]);
  assert.deepEqual(mine(await call('GET', '/allocation_candidates?resources=CUSTOM_CAND_BAREMETAL:1')), [metal]);
  // the node consumed whole is no candidate any more
  const consumer = randomUUID();
  assert.equal((await put(consumer, { [metal]: { CUSTOM_CAND_BAREMETAL: 1 } }, null)).status, 204);
  assert.deepEqual(mine(await call('GET', '/allocation_candidates?resources=CUSTOM_CAND_BAREMETAL:1')), []);
  await call('DELETE', `/allocations/${consumer}`);

  const agg = randomUUID();
  assert.equal((await call('PUT', `/resource_providers/${small}/aggregates`, { body: { aggregates: [agg], resource_provider_generation: 1 } })).status, 200);
  assert.deepEqual(mine(await call('GET', `/allocation_candidates?resources=VCPU:1&member_of=${agg}`)), [small]);
  assert.equal((await call('GET', '/allocation_candidates?resources=VCPU:1&limit=1')).body.allocation_requests.length, 1);
  // granular: two groups from one provider, summed
  const both = await call('GET', `/allocation_candidates?resources1=VCPU:1&resources2=VCPU:1&group_policy=none&in_tree=${small}`);
  assert.deepEqual(both.body.allocation_requests, [{ allocations: { [small]: { resources: { VCPU: 2 } } } }]);
  assert.deepEqual((await call('GET', `/allocation_candidates?resources1=VCPU:1&resources2=VCPU:1&group_policy=isolate&in_tree=${small}`)).body.allocation_requests, []);
  // before 1.12: the list form
  const old = await call('GET', '/allocation_candidates?resources=VCPU:1', { version: '1.11' });
  const oldSmall = old.body.allocation_requests.find((a: { allocations: Array<{ resource_provider: { uuid: string } }> }) => a.allocations[0]!.resource_provider.uuid === small);
  assert.deepEqual(oldSmall.allocations, [{ resource_provider: { uuid: small }, resources: { VCPU: 1 } }]);
  assert.deepEqual(old.body.provider_summaries[small], { resources: { VCPU: { capacity: 2, used: 0 } } }, 'only the requested classes, no traits');

  assertError(await call('GET', '/allocation_candidates'), 400);
  assertError(await call('GET', '/allocation_candidates?resources=VCPU'), 400, 'placement.query.bad_value');
  assertError(await call('GET', '/allocation_candidates?resources=CUSTOM_NO_SUCH:1'), 400);
  assertError(await call('GET', '/allocation_candidates?resources=VCPU:1&required=CUSTOM_NO_SUCH'), 400);
  assertError(await call('GET', '/allocation_candidates?resources1=VCPU:1&resources2=VCPU:1'), 400, 'placement.query.missing_value');
  assertError(await call('GET', '/allocation_candidates?resources=VCPU:1&required=!CUSTOM_CAND_SSD', { version: '1.21' }), 400);
  assertError(await call('GET', '/allocation_candidates?resources=VCPU:1', { version: '1.9' }), 404);
});
