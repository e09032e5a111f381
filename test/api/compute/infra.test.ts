// Limits, quota sets, availability zones, hypervisors, services, server
// groups, usage, the image proxy and the small read-only routes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useCloud } from '../../harness.ts';
import { quotaKey } from '../../../src/compute/api/quota.ts';
import { adminNova, projectUser, TempestSchemas, type Nova } from './lib.ts';

let admin: Nova;
let alice: Nova;
let imageId: string;
const schemas = new TempestSchemas();
const cloud = useCloud(async (cloud) => {
  admin = await adminNova(cloud);
  alice = await projectUser(cloud, ['member']);
  const c = await cloud.call('POST', '/image/v2/images', { token: cloud.adminToken, body: { name: 'proxy-img', container_format: 'bare', disk_format: 'raw', visibility: 'public', os_distro: 'busybox' } });
  imageId = c.body.id;
  await fetch(`${cloud.url}/image/v2/images/${imageId}/file`, { method: 'PUT', headers: { 'X-Auth-Token': cloud.adminToken, 'Content-Type': 'application/octet-stream' }, body: Buffer.alloc(1024) });
  await registerHost('node-a');
  await registerHost('node-b', 'zone-b', 'disabled');
  await registerHost('node-dead', 'nova', 'enabled', new Date(Date.now() - 3600_000).toISOString());
});
const db = () => cloud.server.database.db;

async function registerHost(hostname: string, az = 'nova', status = 'enabled', lastSeen = new Date(Date.now() + 3600_000).toISOString()) {
  const id = crypto.randomUUID();
  await db().insertInto('compute_hosts').values({
    id, hostname, service_id: crypto.randomUUID(), kinds: '["container"]', vcpus: 4, memory_mb: 8192, disk_gb: 100, cpu_allocation_ratio: 16,
    ram_allocation_ratio: 1.5, disk_allocation_ratio: 1, availability_zone: az, status, disabled_reason: null, forced_down: 0, host_ip: '10.0.0.5',
    agent_version: '0.1.0', last_seen_at: lastSeen, created_at: new Date().toISOString(),
  }).execute();
  return id;
}

test('limits show absolute limits and usage per microversion', async () => {
  const l = await alice.call('GET', '/limits');
  assert.equal(l.status, 200);
  assert.equal(l.body.limits.absolute.maxTotalInstances, 10);
  assert.equal(l.body.limits.absolute.totalInstancesUsed, 0);
  assert.equal(l.body.limits.absolute.maxImageMeta, 128);
  assert.deepEqual(l.body.limits.rate, []);
  schemas.add('v2_1.limits', 'get_limit', l);
  const l36 = await alice.call('GET', '/limits', { version: '2.36' });
  assert.equal(l36.body.limits.absolute.maxTotalFloatingIps, undefined);
  schemas.add('v2_36.limits', 'get_limit', l36);
  const l57 = await alice.call('GET', '/limits', { version: '2.57' });
  assert.equal(l57.body.limits.absolute.maxPersonality, undefined);
  assert.equal(l57.body.limits.absolute.maxImageMeta, undefined);
  schemas.add('v2_57.limits', 'get_limit', l57);
  assert.equal((await alice.call('GET', `/limits?tenant_id=${admin.projectId}`)).status, 403);
  assert.equal((await admin.call('GET', `/limits?tenant_id=${alice.projectId}`)).status, 200);
});

test('quota sets: show, detail, defaults, update (project and user), delete, classes', async () => {
  const p = alice.projectId;
  const show = await alice.call('GET', `/os-quota-sets/${p}`);
  assert.equal(show.status, 200);
  assert.equal(show.body.quota_set.id, p);
  assert.equal(show.body.quota_set.cores, 20);
  schemas.add('v2_1.quotas', 'get_quota_set', show);
  assert.equal((await alice.call('GET', `/os-quota-sets/${admin.projectId}`)).status, 403, 'another project');
  schemas.add('v2_1.quotas', 'get_quota_set_details', await admin.call('GET', `/os-quota-sets/${p}/detail`));
  schemas.add('v2_36.quotas', 'get_quota_set', await admin.call('GET', `/os-quota-sets/${p}`, { version: '2.36' }));
  schemas.add('v2_57.quotas', 'get_quota_set_details', await admin.call('GET', `/os-quota-sets/${p}/detail`, { version: '2.57' }));
  const d = await alice.call('GET', `/os-quota-sets/${p}/defaults`);
  assert.equal(d.body.quota_set.instances, 10);
  schemas.add('v2_1.quotas', 'get_quota_set', d);
  assert.equal((await alice.call('PUT', `/os-quota-sets/${p}`, { body: { quota_set: { ram: 5120 } } })).status, 403);
  const up = await admin.call('PUT', `/os-quota-sets/${p}`, { body: { quota_set: { ram: '5120', instances: 4, force: true } } });
  assert.equal(up.status, 200);
  assert.equal(up.body.quota_set.ram, 5120);
  assert.equal(up.body.quota_set.id, undefined);
  schemas.add('v2_1.quotas', 'update_quota_set', up);
  const detail = await admin.call('GET', `/os-quota-sets/${p}/detail`);
  assert.deepEqual(detail.body.quota_set.ram, { limit: 5120, in_use: 0, reserved: 0 });
  // a user's quota within the project
  const u = await admin.call('PUT', `/os-quota-sets/${p}?user_id=${alice.userId}`, { body: { quota_set: { ram: 2048 } } });
  assert.equal(u.status, 200);
  assert.equal((await admin.call('GET', `/os-quota-sets/${p}?user_id=${alice.userId}`)).body.quota_set.ram, 2048);
  assert.equal((await admin.call('GET', `/os-quota-sets/${p}`)).body.quota_set.ram, 5120);
  assert.equal((await admin.call('PUT', `/os-quota-sets/${p}?user_id=${alice.userId}`, { body: { quota_set: { ram: 9999 } } })).status, 400, 'above the project limit');
  // bad input
  for (const body of [{ quota_set: { ram: -2 } }, { quota_set: { ram: 'lots' } }, { quota_set: { nope: 1 } }, { nope: {} }]) {
    assert.equal((await admin.call('PUT', `/os-quota-sets/${p}`, { body })).status, 400, JSON.stringify(body));
  }
  assert.equal((await admin.call('PUT', `/os-quota-sets/${p}`, { version: '2.36', body: { quota_set: { floating_ips: 1 } } })).status, 400);
  assert.equal((await admin.call('GET', '/os-quota-sets/no-such-project')).status, 400);
  // delete resets to defaults
  assert.equal((await admin.call('DELETE', `/os-quota-sets/${p}`)).status, 202);
  assert.equal((await admin.call('GET', `/os-quota-sets/${p}`)).body.quota_set.ram, 51200);
  // default quota class
  const cls = await admin.call('GET', '/os-quota-class-sets/default');
  assert.equal(cls.body.quota_class_set.id, 'default');
  schemas.add('v2_1.quota_classes', 'get_quota_class_set', cls);
  const cu = await admin.call('PUT', '/os-quota-class-sets/default', { body: { quota_class_set: { key_pairs: 50 } } });
  assert.equal(cu.body.quota_class_set.key_pairs, 50);
  schemas.add('v2_1.quota_classes', 'update_quota_class_set', cu);
  assert.equal((await alice.call('GET', `/os-quota-sets/${p}/defaults`)).body.quota_set.key_pairs, 50);
  await db().deleteFrom('compute_quotas').where('project_id', '=', quotaKey.class('default')).execute();
  assert.equal((await alice.call('GET', `/os-quota-sets/${p}/defaults`)).body.quota_set.key_pairs, 100, 'back to the built-in default');
  // a quota of 0 instances refuses a create with 403
  await admin.call('PUT', `/os-quota-sets/${p}`, { body: { quota_set: { instances: 0 } } });
  const r = await alice.call('POST', '/servers', { body: { server: { name: 'q', imageRef: imageId, flavorRef: '1' } } });
  assert.equal(r.status, 403);
  await admin.call('DELETE', `/os-quota-sets/${p}`);
});

test("quotas read Keystone's unified limits, which Nova's quota sets and classes cannot override", async () => {
  const identity = (method: string, path: string, body?: unknown) => cloud.call(method, `/identity/v3${path}`, { token: cloud.adminToken, body });
  const computeService = (await identity('GET', '/services?type=compute')).body.services[0].id;
  const bob = await projectUser(cloud, ['member']);
  const p = bob.projectId;
  await identity('POST', '/regions', { region: { id: 'RegionTwo' } });
  const registered = await identity('POST', '/registered_limits', {
    registered_limits: [
      { service_id: computeService, resource_name: 'servers', default_limit: 3 },
      { service_id: computeService, resource_name: 'class:VCPU', default_limit: 7 },
      { service_id: computeService, resource_name: 'server_key_pairs', default_limit: 2 },
      // Another region's limit does not apply here (RegionOne).
      { service_id: computeService, region_id: 'RegionTwo', resource_name: 'class:MEMORY_MB', default_limit: 1 },
    ],
  });
  assert.equal(registered.status, 201, JSON.stringify(registered.body));
  try {
    // Registered limits are every project's defaults.
    const defaults = (await bob.call('GET', `/os-quota-sets/${p}/defaults`)).body.quota_set;
    assert.equal(defaults.instances, 3);
    assert.equal(defaults.cores, 7);
    assert.equal(defaults.key_pairs, 2);
    assert.equal(defaults.ram, 51200, 'resources without a limit in this region keep the built-in default');
    assert.equal((await alice.call('GET', '/limits')).body.limits.absolute.maxTotalCores, 7);
    // Nova's class and quota set cannot override a resource Keystone governs (the update is a no-op
    // for it, as under Nova's unified-limits driver); they still set the others.
    await admin.call('PUT', '/os-quota-class-sets/default', { body: { quota_class_set: { instances: 9, ram: 4096 } } });
    const cls = (await admin.call('GET', '/os-quota-class-sets/default')).body.quota_class_set;
    assert.deepEqual([cls.instances, cls.ram], [3, 4096]);
    const put = await admin.call('PUT', `/os-quota-sets/${p}`, { body: { quota_set: { instances: 6 } } });
    assert.equal(put.status, 200);
    assert.equal(put.body.quota_set.instances, 3);

    // A project limit in Keystone (only for a registered resource) replaces the default for that project only.
    const own = await identity('POST', '/limits', {
      limits: [
        { service_id: computeService, project_id: p, resource_name: 'servers', resource_limit: 0 },
        { service_id: computeService, project_id: p, resource_name: 'server_key_pairs', resource_limit: 1 },
      ],
    });
    assert.equal(own.status, 201, JSON.stringify(own.body));
    assert.equal((await bob.call('GET', `/os-quota-sets/${p}`)).body.quota_set.instances, 0);
    assert.equal((await bob.call('GET', `/os-quota-sets/${p}/defaults`)).body.quota_set.instances, 3);
    assert.equal((await alice.call('GET', `/os-quota-sets/${alice.projectId}`)).body.quota_set.instances, 3);
    const refused = await bob.call('POST', '/servers', { body: { server: { name: 'q', imageRef: imageId, flavorRef: '1' } } });
    assert.equal(refused.status, 403);
    assert.match(refused.body.forbidden.message, /Quota exceeded for instances/);
    assert.equal((await bob.call('POST', '/os-keypairs', { body: { keypair: { name: 'one' } } })).status, 200);
    assert.equal((await bob.call('POST', '/os-keypairs', { body: { keypair: { name: 'two' } } })).status, 403);

    // Without Keystone's limits, nothing those updates sent for its resources comes back: the built-in
    // default, not the 9 or 6 written while Keystone governed instances; Nova's own ram still holds.
    await deleteKeystoneLimits();
    const after = (await bob.call('GET', `/os-quota-sets/${p}`)).body.quota_set;
    assert.deepEqual([after.instances, after.ram], [10, 4096]);
  } finally {
    await deleteKeystoneLimits();
    await admin.call('DELETE', `/os-quota-sets/${p}`);
    await db().deleteFrom('compute_quotas').where('project_id', '=', quotaKey.class('default')).execute();
  }
  assert.equal((await bob.call('GET', `/os-quota-sets/${p}`)).body.quota_set.ram, 51200, 'back to the built-in default');

  async function deleteKeystoneLimits() {
    for (const l of (await identity('GET', `/limits?project_id=${p}`)).body.limits) await identity('DELETE', `/limits/${l.id}`);
    for (const r of (await identity('GET', `/registered_limits?service_id=${computeService}`)).body.registered_limits) await identity('DELETE', `/registered_limits/${r.id}`);
  }
});

test('availability zones', async () => {
  const list = await alice.call('GET', '/os-availability-zone');
  assert.deepEqual(list.body.availabilityZoneInfo, [
    { zoneName: 'nova', zoneState: { available: true }, hosts: null },
    { zoneName: 'zone-b', zoneState: { available: false }, hosts: null },
  ]);
  schemas.add('v2_1.availability_zone', 'list_availability_zone_list', list);
  assert.equal((await alice.call('GET', '/os-availability-zone/detail')).status, 403);
  const detail = await admin.call('GET', '/os-availability-zone/detail');
  schemas.add('v2_1.availability_zone', 'list_availability_zone_list_detail', detail);
  const nova = detail.body.availabilityZoneInfo.find((z: { zoneName: string }) => z.zoneName === 'nova');
  assert.equal(nova.hosts['node-a']['nova-compute'].available, true);
  assert.equal(nova.hosts['node-dead']['nova-compute'].available, false);
  assert.ok(detail.body.availabilityZoneInfo.some((z: { zoneName: string }) => z.zoneName === 'internal'));
});

test('hypervisors', async () => {
  assert.equal((await alice.call('GET', '/os-hypervisors')).status, 403);
  const list = await admin.call('GET', '/os-hypervisors');
  assert.deepEqual(list.body.hypervisors.map((h: any) => [h.hypervisor_hostname, h.state, h.status]), [['node-a', 'up', 'enabled'], ['node-b', 'up', 'disabled'], ['node-dead', 'down', 'enabled']]);
  assert.equal(typeof list.body.hypervisors[0].id, 'number');
  schemas.add('v2_1.hypervisors', 'list_search_hypervisors', list);
  const detail = await admin.call('GET', '/os-hypervisors/detail');
  assert.equal(detail.body.hypervisors[0].vcpus, 4);
  assert.equal(typeof detail.body.hypervisors[0].cpu_info, 'string');
  schemas.add('v2_1.hypervisors', 'list_hypervisors_detail', detail);
  const id = list.body.hypervisors[0].id;
  const show = await admin.call('GET', `/os-hypervisors/${id}`);
  schemas.add('v2_1.hypervisors', 'get_hypervisor', show);
  schemas.add('v2_28.hypervisors', 'get_hypervisor', await admin.call('GET', `/os-hypervisors/${id}`, { version: '2.28' }));
  const stats = await admin.call('GET', '/os-hypervisors/statistics');
  assert.equal(stats.body.hypervisor_statistics.count, 3);
  schemas.add('v2_1.hypervisors', 'get_hypervisor_statistics', stats);
  const up = await admin.call('GET', `/os-hypervisors/${id}/uptime`);
  assert.match(up.body.hypervisor.uptime, / up /);
  schemas.add('v2_1.hypervisors', 'get_hypervisor_uptime', up);
  schemas.add('v2_1.hypervisors', 'list_search_hypervisors', await admin.call('GET', '/os-hypervisors/node/search'));
  assert.equal((await admin.call('GET', '/os-hypervisors/nothing-like-it/search')).status, 404);
  schemas.add('v2_1.hypervisors', 'get_hypervisors_servers', await admin.call('GET', '/os-hypervisors/node-a/servers'));
  assert.equal((await admin.call('GET', `/os-hypervisors/${crypto.randomUUID()}`, { version: '2.28' })).status, 404);
  assert.equal((await admin.call('GET', `/os-hypervisors/${crypto.randomUUID()}/uptime`)).status, 404);
  // 2.33 paging, 2.53 uuids and query parameters, 2.88 without statistics
  const page = await admin.call('GET', '/os-hypervisors?limit=1', { version: '2.33' });
  assert.equal(page.body.hypervisors.length, 1);
  assert.ok(page.body.hypervisors_links);
  const v253 = await admin.call('GET', '/os-hypervisors/detail?hypervisor_hostname_pattern=node-a&with_servers=true', { version: '2.53' });
  assert.match(v253.body.hypervisors[0].id, /^[0-9a-f-]{36}$/);
  schemas.add('v2_53.hypervisors', 'list_hypervisors_detail', v253);
  assert.equal((await admin.call('GET', '/os-hypervisors/node/search', { version: '2.53' })).status, 404);
  const v288 = await admin.call('GET', `/os-hypervisors/${v253.body.hypervisors[0].id}`, { version: '2.88' });
  assert.equal(v288.body.hypervisor.vcpus, undefined);
  assert.ok('uptime' in v288.body.hypervisor);
  assert.equal((await admin.call('GET', '/os-hypervisors/statistics', { version: '2.88' })).status, 404);
});

test('services: list, filter, enable/disable (legacy and 2.53), force down, delete', async () => {
  assert.equal((await alice.call('GET', '/os-services')).status, 403);
  const list = await admin.call('GET', '/os-services');
  schemas.add('v2_1.services', 'list_services', list);
  const binaries = list.body.services.map((s: { binary: string }) => s.binary);
  assert.ok(binaries.includes('nova-scheduler') && binaries.includes('nova-conductor'));
  const computes = list.body.services.filter((s: { binary: string }) => s.binary === 'nova-compute');
  assert.deepEqual(computes.map((s: any) => [s.host, s.state, s.status, s.zone]), [['node-a', 'up', 'enabled', 'nova'], ['node-b', 'up', 'disabled', 'zone-b'], ['node-dead', 'down', 'enabled', 'nova']]);
  assert.equal((await admin.call('GET', '/os-services?binary=nova-compute&host=node-a')).body.services.length, 1);
  assert.equal((await admin.call('GET', '/os-services?binary=xxx')).body.services.length, 0);
  const dis = await admin.call('PUT', '/os-services/disable-log-reason', { body: { host: 'node-a', binary: 'nova-compute', disabled_reason: 'maintenance' } });
  assert.equal(dis.status, 200);
  schemas.add('v2_1.services', 'disable_log_reason', dis);
  const en = await admin.call('PUT', '/os-services/enable', { body: { host: 'node-a', binary: 'nova-compute' } });
  schemas.add('v2_1.services', 'enable_disable_service', en);
  const fd = await admin.call('PUT', '/os-services/force-down', { version: '2.11', body: { host: 'node-a', binary: 'nova-compute', forced_down: true } });
  assert.equal(fd.status, 200);
  schemas.add('v2_11.services', 'update_forced_down', fd);
  const l11 = await admin.call('GET', '/os-services?host=node-a', { version: '2.11' });
  assert.deepEqual([l11.body.services[0].state, l11.body.services[0].forced_down], ['down', true]);
  schemas.add('v2_11.services', 'list_services', l11);
  // 2.53: by uuid
  const l53 = await admin.call('GET', '/os-services?host=node-a', { version: '2.53' });
  schemas.add('v2_53.services', 'list_services', l53);
  const sid = l53.body.services[0].id;
  const upd = await admin.call('PUT', `/os-services/${sid}`, { version: '2.53', body: { status: 'disabled', disabled_reason: 'why not', forced_down: false } });
  assert.equal(upd.status, 200);
  assert.deepEqual([upd.body.service.status, upd.body.service.disabled_reason, upd.body.service.forced_down, upd.body.service.state], ['disabled', 'why not', false, 'up']);
  schemas.add('v2_53.services', 'update_service', upd);
  assert.equal((await db().selectFrom('compute_hosts').select('status').where('hostname', '=', 'node-a').executeTakeFirstOrThrow()).status, 'disabled');
  assert.equal((await admin.call('PUT', `/os-services/${crypto.randomUUID()}`, { version: '2.53', body: { status: 'enabled' } })).status, 404);
  assert.equal((await admin.call('PUT', `/os-services/${sid}`, { version: '2.53', body: {} })).status, 400);
  assert.equal((await admin.call('PUT', `/os-services/${sid}`, { version: '2.53', body: { status: 'enabled', disabled_reason: 'x' } })).status, 400);
  await admin.call('PUT', `/os-services/${sid}`, { version: '2.53', body: { status: 'enabled' } });
  // delete: a host with no servers
  const dead = (await admin.call('GET', '/os-services?host=node-dead', { version: '2.53' })).body.services[0].id;
  assert.equal((await admin.call('DELETE', `/os-services/${dead}`, { version: '2.53' })).status, 204);
  assert.equal((await admin.call('GET', '/os-services?host=node-dead')).body.services.length, 0);
});

test('server groups', async () => {
  const make = (body: unknown, version?: string, who = alice) => who.call('POST', '/os-server-groups', { version, body });
  const g = await make({ server_group: { name: 'g1', policies: ['anti-affinity'] } });
  assert.equal(g.status, 200, JSON.stringify(g.body));
  assert.deepEqual([g.body.server_group.policies, g.body.server_group.members, g.body.server_group.metadata], [['anti-affinity'], [], {}]);
  schemas.add('v2_1.server_groups', 'create_show_server_group', g);
  assert.equal((await make({ server_group: { name: 'g', policies: ['soft-affinity'] } })).status, 400, 'soft policies from 2.15');
  const soft = await make({ server_group: { name: 'g2', policies: ['soft-affinity'] } }, '2.15');
  assert.equal(soft.status, 200);
  schemas.add('v2_13.server_groups', 'create_show_server_group', await alice.call('GET', `/os-server-groups/${soft.body.server_group.id}`, { version: '2.13' }));
  const g64 = await make({ server_group: { name: 'g3', policy: 'anti-affinity', rules: { max_server_per_host: 2 } } }, '2.64');
  assert.equal(g64.status, 200);
  assert.deepEqual([g64.body.server_group.policy, g64.body.server_group.rules], ['anti-affinity', { max_server_per_host: 2 }]);
  schemas.add('v2_64.server_groups', 'create_show_server_group', g64);
  assert.equal((await make({ server_group: { name: 'g', policy: 'affinity', rules: { max_server_per_host: 2 } } }, '2.64')).status, 400);
  assert.equal((await make({ server_group: { name: 'g', policies: ['anti-affinity'] } }, '2.64')).status, 400);
  assert.equal((await make({ server_group: { name: '', policies: ['affinity'] } })).status, 400);
  assert.equal((await make({ server_group: { name: 'x', policies: ['affinity', 'anti-affinity'] } })).status, 400);
  // membership through the scheduler hint
  const s = await alice.call('POST', '/servers', { body: { server: { name: 'member', imageRef: imageId, flavorRef: '1' }, 'os:scheduler_hints': { group: g.body.server_group.id } } });
  assert.equal(s.status, 202, JSON.stringify(s.body));
  const shown = await alice.call('GET', `/os-server-groups/${g.body.server_group.id}`);
  assert.deepEqual(shown.body.server_group.members, [s.body.server.id]);
  assert.deepEqual((await alice.call('GET', `/servers/${s.body.server.id}`, { version: '2.71' })).body.server.server_groups, [g.body.server_group.id]);
  assert.equal((await alice.call('POST', '/servers', { body: { server: { name: 'x', imageRef: imageId, flavorRef: '1' }, 'os:scheduler_hints': { group: crypto.randomUUID() } } })).status, 400);
  const list = await alice.call('GET', '/os-server-groups');
  assert.equal(list.body.server_groups.length, 3);
  schemas.add('v2_1.server_groups', 'list_server_groups', list);
  schemas.add('v2_64.server_groups', 'list_server_groups', await alice.call('GET', '/os-server-groups', { version: '2.64' }));
  assert.equal((await alice.call('GET', '/os-server-groups?limit=1&offset=1')).body.server_groups.length, 1);
  const bob = await projectUser(cloud, ['member']);
  assert.equal((await bob.call('GET', `/os-server-groups/${g.body.server_group.id}`)).status, 404);
  assert.equal((await admin.call('GET', '/os-server-groups?all_projects=1')).body.server_groups.length >= 3, true);
  // quota
  await db().insertInto('compute_quotas').values({ project_id: bob.projectId, resource: 'server_groups', hard_limit: 1 }).execute();
  assert.equal((await make({ server_group: { name: 'b1', policies: ['affinity'] } }, undefined, bob)).status, 200);
  const over = await make({ server_group: { name: 'b2', policies: ['affinity'] } }, undefined, bob);
  assert.equal(over.status, 403);
  assert.match(over.body.forbidden.message, /server groups/);
  assert.equal((await alice.call('DELETE', `/os-server-groups/${soft.body.server_group.id}`)).status, 204);
  assert.equal((await alice.call('DELETE', `/os-server-groups/${soft.body.server_group.id}`)).status, 404);
});

test('simple tenant usage', async () => {
  const s = await alice.call('POST', '/servers', { body: { server: { name: 'billed', imageRef: imageId, flavorRef: '2' } } });
  const launched = new Date(Date.now() - 2 * 3600_000).toISOString();
  await db().updateTable('compute_servers').set({ launched_at: launched, vm_state: 'active', task_state: null, host: 'node-a' }).where('id', '=', s.body.server.id).execute();
  const start = new Date(Date.now() - 24 * 3600_000).toISOString().slice(0, 19);
  const end = new Date(Date.now() + 3600_000).toISOString().slice(0, 19);
  assert.equal((await alice.call('GET', `/os-simple-tenant-usage?start=${start}&end=${end}`)).status, 403);
  const all = await admin.call('GET', `/os-simple-tenant-usage?start=${start}&end=${end}&detailed=1`);
  assert.equal(all.status, 200);
  schemas.add('v2_1.tenant_usages', 'list_tenant_usage', all);
  const mine = await alice.call('GET', `/os-simple-tenant-usage/${alice.projectId}?start=${start}&end=${end}`);
  assert.equal(mine.status, 200);
  schemas.add('v2_1.tenant_usages', 'get_tenant_usage', mine);
  const u = mine.body.tenant_usage.server_usages.find((x: { instance_id: string }) => x.instance_id === s.body.server.id);
  assert.ok(Math.abs(u.hours - 2) < 0.05, String(u.hours));
  assert.equal(u.vcpus, 1);
  assert.equal(u.memory_mb, 2048);
  assert.ok(Math.abs(mine.body.tenant_usage.total_memory_mb_usage - 4096) < 100);
  assert.equal((await alice.call('GET', `/os-simple-tenant-usage/${alice.projectId}?start=${end}&end=${start}`)).status, 400);
  assert.equal((await alice.call('GET', `/os-simple-tenant-usage/${alice.projectId}?start=yesterday`)).status, 400);
  assert.equal((await admin.call('GET', `/os-simple-tenant-usage?start=${start}&end=${end}&limit=1`, { version: '2.40' })).status, 200);
});

test('image proxy below 2.36, image metadata below 2.39', async () => {
  const list = await alice.call('GET', '/images');
  assert.equal(list.status, 200);
  assert.ok(list.body.images.some((i: { id: string }) => i.id === imageId));
  schemas.add('v2_1.images', 'list_images', list);
  const detail = await alice.call('GET', '/images/detail?name=proxy-img');
  assert.equal(detail.body.images.length, 1);
  assert.equal(detail.body.images[0].status, 'ACTIVE');
  assert.equal(detail.body.images[0].progress, 100);
  assert.equal(detail.body.images[0].metadata.os_distro, 'busybox');
  schemas.add('v2_1.images', 'list_images_details', detail);
  const one = await alice.call('GET', `/images/${imageId}`);
  schemas.add('v2_1.images', 'get_image', one);
  assert.equal((await alice.call('GET', `/images/${imageId}`, { version: '2.36' })).status, 404);
  assert.equal((await alice.call('GET', '/images', { version: '2.36' })).status, 404);
  assert.equal((await alice.call('GET', `/images/${crypto.randomUUID()}`)).status, 404);
  // metadata (admin owns the image)
  const md = await admin.call('GET', `/images/${imageId}/metadata`);
  assert.equal(md.body.metadata.os_distro, 'busybox');
  schemas.add('v2_1.images', 'image_metadata', md);
  const set = await admin.call('POST', `/images/${imageId}/metadata`, { body: { metadata: { color: 'red' } } });
  assert.equal(set.status, 200, JSON.stringify(set.body));
  assert.equal(set.body.metadata.color, 'red');
  const item = await admin.call('PUT', `/images/${imageId}/metadata/shape`, { body: { meta: { shape: 'big' } } });
  assert.deepEqual(item.body, { meta: { shape: 'big' } });
  schemas.add('v2_1.images', 'image_meta_item', item);
  assert.deepEqual((await admin.call('GET', `/images/${imageId}/metadata/shape`)).body, { meta: { shape: 'big' } });
  assert.equal((await admin.call('DELETE', `/images/${imageId}/metadata/shape`)).status, 204);
  assert.equal((await admin.call('GET', `/images/${imageId}/metadata/shape`)).status, 404);
  assert.equal((await admin.call('GET', `/images/${imageId}/metadata`, { version: '2.39' })).status, 404);
  assert.equal((await alice.call('DELETE', `/images/${imageId}`)).status, 403, 'not the owner');
  const mine = await cloud.call('POST', '/image/v2/images', { token: admin.token, body: { name: 'doomed', container_format: 'bare', disk_format: 'raw' } });
  assert.equal((await admin.call('DELETE', `/images/${mine.body.id}`)).status, 204);
  assert.equal((await admin.call('GET', `/images/${mine.body.id}`)).status, 404);
});

test('extensions, ips, topology', async () => {
  const ext = await alice.call('GET', '/extensions');
  assert.ok(ext.body.extensions.some((e: { name: string }) => e.name === 'Hosts'));
  schemas.add('v2_1.extensions', 'list_extensions', ext);
  assert.equal((await alice.call('GET', '/extensions/os-consoles')).body.extension.alias, 'os-consoles');
  const s = await alice.call('POST', '/servers', { body: { server: { name: 'ips', imageRef: imageId, flavorRef: '1' } } });
  const id = s.body.server.id;
  const ips = await alice.call('GET', `/servers/${id}/ips`);
  assert.deepEqual(ips.body, { addresses: {} });
  schemas.add('v2_1.servers', 'list_addresses', ips);
  assert.equal((await alice.call('GET', `/servers/${id}/ips/private`)).status, 404);
  assert.equal((await alice.call('GET', `/servers/${id}/topology`)).status, 404);
  assert.deepEqual((await alice.call('GET', `/servers/${id}/topology`, { version: '2.78' })).body, { nodes: [], pagesize_kb: null });
});

test('aggregates: zones of their hosts, add/remove host, metadata', async () => {
  assert.equal((await alice.call('GET', '/os-aggregates')).status, 403);
  const c = await admin.call('POST', '/os-aggregates', { body: { aggregate: { name: 'rack-1', availability_zone: 'zone-r1' } } });
  assert.equal(c.status, 200, JSON.stringify(c.body));
  schemas.add('v2_1.aggregates', 'create_aggregate', c);
  const id = c.body.aggregate.id;
  assert.equal((await admin.call('POST', '/os-aggregates', { body: { aggregate: { name: 'rack-1' } } })).status, 409);
  assert.equal((await admin.call('POST', '/os-aggregates', { body: { aggregate: { name: '' } } })).status, 400);
  const added = await admin.call('POST', `/os-aggregates/${id}/action`, { body: { add_host: { host: 'node-a' } } });
  assert.deepEqual(added.body.aggregate.hosts, ['node-a']);
  schemas.add('v2_1.aggregates', 'aggregate_add_remove_host', added);
  assert.equal((await db().selectFrom('compute_hosts').select('availability_zone').where('hostname', '=', 'node-a').executeTakeFirstOrThrow()).availability_zone, 'zone-r1');
  assert.ok((await alice.call('GET', '/os-availability-zone')).body.availabilityZoneInfo.some((z: { zoneName: string }) => z.zoneName === 'zone-r1'));
  assert.equal((await admin.call('POST', `/os-aggregates/${id}/action`, { body: { add_host: { host: 'node-a' } } })).status, 409);
  assert.equal((await admin.call('POST', `/os-aggregates/${id}/action`, { body: { add_host: { host: 'no-such' } } })).status, 404);
  const other = await admin.call('POST', '/os-aggregates', { body: { aggregate: { name: 'rack-2', availability_zone: 'zone-r2' } } });
  assert.equal((await admin.call('POST', `/os-aggregates/${other.body.aggregate.id}/action`, { body: { add_host: { host: 'node-a' } } })).status, 409, 'zone conflict');
  const md = await admin.call('POST', `/os-aggregates/${id}/action`, { body: { set_metadata: { metadata: { ssd: 'true' } } } });
  assert.deepEqual(md.body.aggregate.metadata, { availability_zone: 'zone-r1', ssd: 'true' });
  schemas.add('v2_1.aggregates', 'aggregate_set_metadata', md);
  const up = await admin.call('PUT', `/os-aggregates/${id}`, { body: { aggregate: { name: 'rack-one', availability_zone: 'zone-x' } } });
  assert.equal(up.body.aggregate.availability_zone, 'zone-x');
  schemas.add('v2_1.aggregates', 'update_aggregate', up);
  assert.equal((await db().selectFrom('compute_hosts').select('availability_zone').where('hostname', '=', 'node-a').executeTakeFirstOrThrow()).availability_zone, 'zone-x');
  schemas.add('v2_1.aggregates', 'list_aggregates', await admin.call('GET', '/os-aggregates'));
  assert.match((await admin.call('GET', `/os-aggregates/${id}`, { version: '2.41' })).body.aggregate.uuid, /^[0-9a-f-]{36}$/);
  assert.equal((await admin.call('DELETE', `/os-aggregates/${id}`)).status, 400, 'not empty');
  await admin.call('POST', `/os-aggregates/${id}/action`, { body: { remove_host: { host: 'node-a' } } });
  assert.equal((await db().selectFrom('compute_hosts').select('availability_zone').where('hostname', '=', 'node-a').executeTakeFirstOrThrow()).availability_zone, 'nova');
  assert.equal((await admin.call('POST', `/os-aggregates/${id}/action`, { body: { remove_host: { host: 'node-a' } } })).status, 404);
  assert.equal((await admin.call('DELETE', `/os-aggregates/${id}`)).status, 200);
  assert.equal((await admin.call('GET', `/os-aggregates/${id}`)).status, 404);
  assert.equal((await admin.call('GET', '/os-aggregates/abc')).status, 400);
});

test('os-hosts (below 2.43), the instance usage audit log, os-migrations', async () => {
  const hosts = await admin.call('GET', '/os-hosts');
  assert.ok(hosts.body.hosts.some((h: any) => h.host_name === 'node-a' && h.service === 'compute'));
  schemas.add('v2_1.hosts', 'list_hosts', hosts);
  assert.equal((await admin.call('GET', '/os-hosts?zone=xxx')).body.hosts.length, 0);
  const one = await admin.call('GET', '/os-hosts/node-a');
  assert.equal(one.body.host[0].resource.host, 'node-a');
  schemas.add('v2_1.hosts', 'get_host_detail', one);
  assert.equal((await admin.call('GET', '/os-hosts/nope')).status, 404);
  assert.equal((await alice.call('GET', '/os-hosts')).status, 403);
  assert.equal((await admin.call('GET', '/os-hosts', { version: '2.43' })).status, 404);
  const log = await admin.call('GET', '/os-instance_usage_audit_log');
  schemas.add('v2_1.instance_usage_audit_logs', 'list_instance_usage_audit_log', log);
  const at = await admin.call('GET', `/os-instance_usage_audit_log/${encodeURIComponent('2012-12-12 10:10:10')}`);
  assert.equal(at.body.instance_usage_audit_log.period_beginning, '2012-11-01 00:00:00');
  schemas.add('v2_1.instance_usage_audit_logs', 'get_instance_usage_audit_log', at);
  assert.equal((await admin.call('GET', '/os-instance_usage_audit_log/bad-date')).status, 400);
  const mig = await admin.call('GET', '/os-migrations');
  assert.deepEqual(mig.body, { migrations: [] });
  schemas.add('v2_1.migrations', 'list_migrations', mig);
});

test('response bodies match Tempest schemas', () => {
  schemas.check();
});
