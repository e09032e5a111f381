// RBAC policies (a network shared with one project) and network IP
// availability, over HTTP.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tenant, uniqueName, useCloud, type Tenant } from '../../harness.ts';
import { assertNeutronError, create, neutron } from './lib.ts';

let alice: Tenant, bob: Tenant, carol: Tenant;
const cloud = useCloud(async (c) => {
  alice = await tenant(c);
  bob = await tenant(c);
  carol = await tenant(c);
});
const call = neutron(cloud);

test('rbac: access_as_shared for one project; in use while its ports need it; only the owner manages it', async () => {
  const n = await create(call, 'networks', 'network', { name: uniqueName('rbac') }, alice.token);
  const s = await create(call, 'subnets', 'subnet', { network_id: n.id, ip_version: 4, cidr: '10.40.0.0/24' }, alice.token);
  assertNeutronError(await call('GET', `/networks/${n.id}`, { token: bob.token }), 404);
  const body = { object_type: 'network', object_id: n.id, action: 'access_as_shared', target_tenant: bob.projectId };
  assertNeutronError(await call('POST', '/rbac-policies', { token: bob.token, body: { rbac_policy: body } }), 404, 'NetworkNotFound');
  const p = await create(call, 'rbac-policies', 'rbac_policy', body, alice.token);
  assert.equal(p.target_tenant, bob.projectId);
  assert.equal(p.project_id, alice.projectId);
  assertNeutronError(await call('POST', '/rbac-policies', { token: alice.token, body: { rbac_policy: body } }), 409, 'DuplicateRbacPolicy');
  assertNeutronError(await call('POST', '/rbac-policies', { token: alice.token, body: { rbac_policy: { ...body, target_tenant: '*' } } }), 403);
  assertNeutronError(await call('POST', '/rbac-policies', { token: alice.token, body: { rbac_policy: { ...body, object_type: 'qos_policy' } } }), 400);
  assertNeutronError(await call('POST', '/rbac-policies', { token: alice.token, body: { rbac_policy: { ...body, action: 'own_it' } } }), 400);

  const seen = (await call('GET', `/networks/${n.id}`, { token: bob.token })).body.network;
  assert.equal(seen.shared, true, 'shared as far as bob is concerned');
  assert.equal((await call('GET', `/subnets/${s.id}`, { token: bob.token })).status, 200);
  assertNeutronError(await call('GET', `/networks/${n.id}`, { token: carol.token }), 404, 'NetworkNotFound');
  assertNeutronError(await call('GET', `/rbac-policies/${p.id}`, { token: bob.token }), 404, 'RbacPolicyNotFound');
  assert.deepEqual((await call('GET', `/rbac-policies?object_id=${n.id}`, { token: alice.token })).body.rbac_policies.map((x: { id: string }) => x.id), [p.id]);

  const port = await create(call, 'ports', 'port', { network_id: n.id }, bob.token);
  assertNeutronError(await call('DELETE', `/rbac-policies/${p.id}`, { token: alice.token }), 409, 'RbacPolicyInUse');
  assertNeutronError(await call('PUT', `/rbac-policies/${p.id}`, { token: alice.token, body: { rbac_policy: { target_tenant: carol.projectId } } }), 409, 'RbacPolicyInUse');
  assert.equal((await call('DELETE', `/ports/${port.id}`, { token: bob.token })).status, 204);
  const moved = await call('PUT', `/rbac-policies/${p.id}`, { token: alice.token, body: { rbac_policy: { target_tenant: carol.projectId } } });
  assert.equal(moved.status, 200, JSON.stringify(moved.body));
  assertNeutronError(await call('GET', `/networks/${n.id}`, { token: bob.token }), 404);
  assert.equal((await call('GET', `/networks/${n.id}`, { token: carol.token })).status, 200);
  assert.equal((await call('DELETE', `/rbac-policies/${p.id}`, { token: alice.token })).status, 204);
  assertNeutronError(await call('GET', `/networks/${n.id}`, { token: carol.token }), 404);
  assert.equal((await call('DELETE', `/networks/${n.id}`, { token: alice.token })).status, 204);
});

test('network IP availability: totals from the pools, used from the allocations; admin only', async () => {
  const n = await create(call, 'networks', 'network', { name: uniqueName('avail') }, alice.token);
  const s4 = await create(call, 'subnets', 'subnet', { network_id: n.id, ip_version: 4, cidr: '10.50.0.0/28' }, alice.token);
  await create(call, 'ports', 'port', { network_id: n.id }, alice.token);
  await create(call, 'ports', 'port', { network_id: n.id }, alice.token);
  const one = await call('GET', `/network-ip-availabilities/${n.id}`);
  assert.equal(one.status, 200, JSON.stringify(one.body));
  const a = one.body.network_ip_availability;
  assert.equal(a.network_name, n.name);
  assert.equal(a.total_ips, 13);
  assert.equal(a.used_ips, 2);
  assert.deepEqual(a.subnet_ip_availability, [{ subnet_id: s4.id, subnet_name: '', cidr: '10.50.0.0/28', ip_version: 4, total_ips: 13, used_ips: 2 }]);
  const listed = await call('GET', `/network-ip-availabilities?network_id=${n.id}&ip_version=4`);
  assert.deepEqual(listed.body.network_ip_availabilities.map((x: { network_id: string }) => x.network_id), [n.id]);
  assert.deepEqual((await call('GET', `/network-ip-availabilities?network_id=${n.id}&ip_version=6`)).body.network_ip_availabilities, []);
  assertNeutronError(await call('GET', `/network-ip-availabilities/${n.id}`, { token: alice.token }), 403);
});
