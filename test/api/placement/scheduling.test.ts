// The scheduler on placement: compute hosts appear as resource providers;
// many creates racing several schedulers against a small host never
// oversubscribe it (run on SQLite and, through scripts/test-postgres.sh, on
// PostgreSQL); flavors' resources:* and trait:* extra specs steer placement
// (a bare-metal node consumed whole through a custom class); os-hypervisors
// reads placement's usage; a deleted server's allocations go.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { Scheduler } from '../../../src/compute/engine/scheduler.ts';
import { tenant, useCloud, type Tenant } from '../../harness.ts';
import { placement } from './lib.ts';

let t: Tenant;
let imageId: string;
const cloud = useCloud(async (c) => {
  t = await tenant(c);
  await c.server.database.db.insertInto('compute_quotas').values(['instances', 'cores', 'ram'].map((resource) => ({ project_id: t.projectId, resource, hard_limit: 1_000_000 }))).execute();
  const img = await c.call('POST', '/image/v2/images', { token: c.adminToken, body: { name: 'img', container_format: 'bare', disk_format: 'raw', visibility: 'public' } });
  imageId = img.body.id;
  const up = await fetch(`${c.url}/image/v2/images/${imageId}/file`, { method: 'PUT', headers: { 'X-Auth-Token': c.adminToken, 'Content-Type': 'application/octet-stream' }, body: Buffer.alloc(1024, 1) });
  assert.equal(up.status, 204);
});
const call = placement(cloud);
const db = () => cloud.server.database.db;
const log = pino({ level: 'silent' });
const compute = (method: string, path: string, body?: unknown, token = cloud.adminToken) =>
  cloud.call(method, `/compute/v2.1${path}`, { token, body, headers: { 'OpenStack-API-Version': 'compute 2.87' } });

async function registerHost(hostname: string, az: string, vcpus: number): Promise<string> {
  const id = randomUUID();
  await db().insertInto('compute_hosts').values({
    id, hostname, service_id: randomUUID(), kinds: '["container","vm"]', vcpus, memory_mb: 65536, disk_gb: 1000,
    cpu_allocation_ratio: 1, ram_allocation_ratio: 1, disk_allocation_ratio: 1, availability_zone: az, status: 'enabled',
    disabled_reason: null, forced_down: 0, host_ip: '127.0.0.1', agent_version: 'test', last_seen_at: new Date(Date.now() + 3600_000).toISOString(),
    created_at: new Date().toISOString(),
  }).execute();
  return id;
}

async function flavor(name: string, vcpus: number, specs: Record<string, string> = {}): Promise<string> {
  const f = await compute('POST', '/flavors', { flavor: { name, vcpus, ram: 128, disk: 1 } });
  assert.equal(f.status, 200, JSON.stringify(f.body));
  if (Object.keys(specs).length) {
    const s = await compute('POST', `/flavors/${f.body.flavor.id}/os-extra_specs`, { extra_specs: specs });
    assert.equal(s.status, 200, JSON.stringify(s.body));
  }
  return f.body.flavor.id;
}

async function boot(flavorRef: string, az?: string): Promise<string> {
  const r = await compute('POST', '/servers', { server: { name: 'p', imageRef: imageId, flavorRef, networks: 'none', ...(az ? { availability_zone: az } : {}) } }, t.token);
  assert.equal(r.status, 202, JSON.stringify(r.body));
  return r.body.server.id;
}

/** Runs rounds of several schedulers at once (replicas) until nothing waits. */
async function settle(schedulers = 3): Promise<void> {
  const s = Array.from({ length: schedulers }, () => new Scheduler(db(), log));
  for (let i = 0; i < 50; i++) {
    await Promise.all(s.map((x) => x.round()));
    const waiting = await db().selectFrom('compute_servers').select('id').where('task_state', '=', 'scheduling').where('deleted_at', 'is', null).executeTakeFirst();
    if (!waiting) return;
  }
  assert.fail('servers still waiting for a host');
}

const row = (id: string) => db().selectFrom('compute_servers').selectAll().where('id', '=', id).executeTakeFirstOrThrow();

test('a registered host is a resource provider with inventories from its totals and ratios', async () => {
  const id = await registerHost('sync-host', 'sync-az', 6);
  await db().updateTable('compute_hosts').set({ cpu_allocation_ratio: 4 }).where('id', '=', id).execute();
  await new Scheduler(db(), log).round();
  const rp = await call('GET', `/resource_providers/${id}`);
  assert.equal(rp.status, 200, JSON.stringify(rp.body));
  assert.equal(rp.body.name, 'sync-host');
  const inv = (await call('GET', `/resource_providers/${id}/inventories`)).body.inventories;
  assert.deepEqual(inv.VCPU, { total: 6, reserved: 0, min_unit: 1, max_unit: 6, step_size: 1, allocation_ratio: 4 });
  assert.equal(inv.MEMORY_MB.total, 65536);
  assert.equal(inv.DISK_GB.total, 1000);
  assert.deepEqual((await call('GET', `/resource_providers/${id}/traits`)).body.traits, ['COMPUTE_NODE']);
  // a disabled service carries COMPUTE_STATUS_DISABLED, as Nova reports it
  await db().updateTable('compute_hosts').set({ status: 'disabled' }).where('id', '=', id).execute();
  const gen = rp.body.generation;
  await new Scheduler(db(), log).round();
  assert.deepEqual((await call('GET', `/resource_providers/${id}/traits`)).body.traits, ['COMPUTE_NODE', 'COMPUTE_STATUS_DISABLED']);
  assert.ok((await call('GET', `/resource_providers/${id}`)).body.generation > gen);
  // nothing changed: no write, the generation stays
  const still = (await call('GET', `/resource_providers/${id}`)).body.generation;
  await new Scheduler(db(), log).round();
  assert.equal((await call('GET', `/resource_providers/${id}`)).body.generation, still);
});

test('many creates racing three schedulers never oversubscribe a small host', async () => {
  const host = await registerHost('small-host', 'race-az', 3);
  const one = await flavor('race-1', 1);
  const ids = await Promise.all(Array.from({ length: 12 }, () => boot(one, 'race-az')));
  await settle();
  const rows = await Promise.all(ids.map(row));
  const placed = rows.filter((r) => r.host === 'small-host');
  assert.equal(placed.length, 3, 'exactly the host\'s 3 vCPUs are claimed');
  assert.ok(placed.every((r) => r.task_state === 'spawning' && r.schedule_attempts === 1));
  const refused = rows.filter((r) => r.vm_state === 'error');
  assert.equal(refused.length, 9);
  for (const r of refused) assert.match(JSON.parse(r.fault!).message, /^No valid host was found/);
  const usage = (await call('GET', `/resource_providers/${host}/usages`)).body.usages;
  assert.deepEqual(usage, { DISK_GB: 3, MEMORY_MB: 384, VCPU: 3 });
  const consumers = (await call('GET', `/resource_providers/${host}/allocations`)).body.allocations;
  assert.deepEqual(Object.keys(consumers).sort(), placed.map((r) => r.id).sort());
  const alloc = await call('GET', `/allocations/${placed[0]!.id}`);
  assert.equal(alloc.body.project_id, t.projectId);
  assert.equal(alloc.body.user_id, t.userId);
  const projectUsage = (await call('GET', `/usages?project_id=${t.projectId}`)).body.usages;
  assert.ok(projectUsage.VCPU >= 3);
  // os-hypervisors shows placement's usage
  const hv = (await compute('GET', '/os-hypervisors/detail')).body.hypervisors.find((h: { hypervisor_hostname: string }) => h.hypervisor_hostname === 'small-host');
  assert.equal(hv.vcpus_used, 3);
  assert.equal(hv.memory_mb_used, 384);
  assert.equal(hv.local_gb_used, 3);
});

test('flavor extra specs: resources:* consume a host\'s custom class whole; trait:* required and forbidden', async () => {
  const metal = await registerHost('metal-1', 'spec-az', 8);
  const plain = await registerHost('plain-1', 'spec-az', 8);
  await new Scheduler(db(), log).round();
  assert.equal((await call('PUT', '/resource_classes/CUSTOM_BAREMETAL_LARGE')).status, 201);
  let gen = (await call('GET', `/resource_providers/${metal}`)).body.generation;
  const inv = await call('PUT', `/resource_providers/${metal}/inventories/CUSTOM_BAREMETAL_LARGE`, { body: { resource_provider_generation: gen, total: 1 } });
  assert.equal(inv.status, 200, JSON.stringify(inv.body));
  assert.equal((await call('PUT', '/traits/CUSTOM_FAST_NIC')).status, 201);
  gen = (await call('GET', `/resource_providers/${plain}`)).body.generation;
  const tr = await call('PUT', `/resource_providers/${plain}/traits`, { body: { traits: ['COMPUTE_NODE', 'CUSTOM_FAST_NIC'], resource_provider_generation: gen } });
  assert.equal(tr.status, 200, JSON.stringify(tr.body));

  // a custom class with VCPU/MEMORY_MB/DISK_GB zeroed would be a bare-metal flavor (a node's, test/api/compute/baremetal.test.ts):
  // stratus:kind names the host's kind instead
  const bm = await flavor('bm-large', 8, {
    'resources:CUSTOM_BAREMETAL_LARGE': '1', 'resources:VCPU': '0', 'resources:MEMORY_MB': '0', 'resources:DISK_GB': '0', 'stratus:kind': 'vm',
  });
  const first = await boot(bm, 'spec-az');
  const second = await boot(bm, 'spec-az');
  await settle(1);
  assert.equal((await row(first)).host, 'metal-1');
  assert.deepEqual((await call('GET', `/allocations/${first}`)).body.allocations[metal].resources, { CUSTOM_BAREMETAL_LARGE: 1 }, 'the node whole, no vCPU or RAM');
  const again = await row(second);
  assert.equal(again.vm_state, 'error', 'one node, taken');
  assert.equal(again.host, null);

  const fast = await flavor('fast-nic', 1, { 'trait:CUSTOM_FAST_NIC': 'required' });
  const notFast = await flavor('no-fast-nic', 1, { 'trait:CUSTOM_FAST_NIC': 'forbidden' });
  const a = await boot(fast, 'spec-az');
  const b = await boot(notFast, 'spec-az');
  await settle(1);
  assert.equal((await row(a)).host, 'plain-1');
  assert.equal((await row(b)).host, 'metal-1');
});

test('deleting a placed server releases its allocations', async () => {
  const host = await registerHost('release-host', 'release-az', 2);
  const f = await flavor('release-1', 1);
  const id = await boot(f, 'release-az');
  await settle(1);
  const placed = await row(id);
  assert.equal(placed.host, 'release-host', `not placed: vm_state ${placed.vm_state}, task_state ${placed.task_state}, fault ${placed.fault}`);
  assert.equal((await call('GET', `/resource_providers/${host}/usages`)).body.usages.VCPU, 1);
  // the host goes down: the engine deletes locally (Nova's local delete) and releases the claim
  await db().updateTable('compute_hosts').set({ last_seen_at: new Date(Date.now() - 3600_000).toISOString() }).where('id', '=', host).execute();
  assert.equal((await compute('DELETE', `/servers/${id}`, undefined, t.token)).status, 204);
  for (let i = 0; i < 100 && (await compute('GET', `/servers/${id}`, undefined, t.token)).status !== 404; i++) await sleep(50);
  assert.equal((await compute('GET', `/servers/${id}`, undefined, t.token)).status, 404);
  assert.deepEqual((await call('GET', `/allocations/${id}`)).body, { allocations: {} });
  assert.equal((await call('GET', `/resource_providers/${host}/usages`)).body.usages.VCPU, 0);
});
