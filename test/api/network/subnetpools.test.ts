// Subnet pools over HTTP: bounds and prefixes validated, subnets taking their
// CIDR from a pool by prefix length (concurrently, never overlapping), a given
// CIDR checked against the pool, the default pool, and a pool in use.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tenant, uniqueName, useCloud, type Tenant } from '../../harness.ts';
import { assertNeutronError, create, neutron } from './lib.ts';

let alice: Tenant, bob: Tenant;
const cloud = useCloud(async (c) => {
  alice = await tenant(c);
  bob = await tenant(c);
});
const call = neutron(cloud);

test('subnet pools: create with defaults, validation, update grows prefixes only', async () => {
  const p = await create(call, 'subnetpools', 'subnetpool', { name: uniqueName('pool'), prefixes: ['10.100.0.0/16'], default_prefixlen: 24 }, alice.token);
  assert.equal(p.ip_version, 4);
  assert.deepEqual(p.prefixes, ['10.100.0.0/16']);
  assert.equal(p.min_prefixlen, 8);
  assert.equal(p.max_prefixlen, 32);
  assert.equal(p.default_prefixlen, 24);
  assert.equal(p.shared, false);
  assert.equal(p.is_default, false);
  const bad = (body: Record<string, unknown>) => call('POST', '/subnetpools', { token: alice.token, body: { subnetpool: { name: 'x', prefixes: ['10.0.0.0/8'], ...body } } });
  assertNeutronError(await bad({ prefixes: ['10.0.0.0/8', 'fd00::/48'] }), 400, 'PrefixVersionMismatch');
  assertNeutronError(await bad({ prefixes: ['nope'] }), 400);
  assertNeutronError(await bad({ min_prefixlen: 24, max_prefixlen: 16 }), 400, 'IllegalSubnetPoolPrefixBounds');
  assertNeutronError(await bad({ default_prefixlen: 4 }), 400, 'IllegalSubnetPoolPrefixBounds');
  assertNeutronError(await bad({ shared: true }), 403, 'PolicyNotAuthorized');
  assertNeutronError(await call('GET', `/subnetpools/${p.id}`, { token: bob.token }), 404, 'SubnetPoolNotFound');
  assertNeutronError(await call('PUT', `/subnetpools/${p.id}`, { token: alice.token, body: { subnetpool: { prefixes: ['10.200.0.0/16'] } } }), 400, 'IllegalSubnetPoolPrefixUpdate');
  const grown = await call('PUT', `/subnetpools/${p.id}`, { token: alice.token, body: { subnetpool: { prefixes: ['10.100.0.0/16', '10.101.0.0/16'] } } });
  assert.equal(grown.status, 200, JSON.stringify(grown.body));
  assert.deepEqual(grown.body.subnetpool.prefixes, ['10.100.0.0/16', '10.101.0.0/16']);
  assert.equal(grown.body.subnetpool.revision_number, 1);
  assert.equal((await call('DELETE', `/subnetpools/${p.id}`, { token: alice.token })).status, 204);
});

test('subnets from a pool: by prefix length, in parallel without overlap; a given CIDR checked; exhaustion; in use', async () => {
  const p = await create(call, 'subnetpools', 'subnetpool', { name: uniqueName('pool'), prefixes: ['10.110.0.0/22'], default_prefixlen: 26, min_prefixlen: 22, max_prefixlen: 28 }, alice.token);
  const n = await create(call, 'networks', 'network', { name: uniqueName('pooled') }, alice.token);
  const first = await create(call, 'subnets', 'subnet', { network_id: n.id, ip_version: 4, subnetpool_id: p.id, prefixlen: 24 }, alice.token);
  assert.equal(first.cidr, '10.110.0.0/24');
  assert.equal(first.subnetpool_id, p.id);
  assert.equal(first.gateway_ip, '10.110.0.1');
  // several networks take /26 blocks at once: all different
  const nets = await Promise.all(Array.from({ length: 6 }, () => create(call, 'networks', 'network', {}, alice.token)));
  const made = await Promise.all(nets.map((x) => call('POST', '/subnets', { token: alice.token, body: { subnet: { network_id: x.id, ip_version: 4, subnetpool_id: p.id } } })));
  for (const r of made) assert.equal(r.status, 201, JSON.stringify(r.body));
  const cidrs = made.map((r) => r.body.subnet.cidr);
  assert.equal(new Set(cidrs).size, 6);
  assert.ok(cidrs.every((c) => c.endsWith('/26') && !c.startsWith('10.110.0.')), JSON.stringify(cidrs));
  const post = (body: Record<string, unknown>) => call('POST', '/subnets', { token: alice.token, body: { subnet: { network_id: n.id, ip_version: 4, subnetpool_id: p.id, ...body } } });
  assertNeutronError(await post({ cidr: '10.110.0.128/25' }), 409, 'SubnetAllocationError');
  assertNeutronError(await post({ cidr: '10.9.0.0/24' }), 409, 'SubnetAllocationError');
  assertNeutronError(await post({ prefixlen: 30 }), 400, 'MaxPrefixSubnetAllocationError');
  assertNeutronError(await post({ prefixlen: 16 }), 400, 'MinPrefixSubnetAllocationError');
  assertNeutronError(await post({ ip_version: 6 }), 400);
  const given = await post({ cidr: '10.110.3.0/28' });
  assert.equal(given.status, 201, JSON.stringify(given.body));
  assertNeutronError(await post({ prefixlen: 23 }), 409, 'SubnetAllocationError', /Insufficient prefix space/);
  assertNeutronError(await call('POST', '/subnets', { token: alice.token, body: { subnet: { network_id: n.id, ip_version: 4 } } }), 400);
  assertNeutronError(await call('DELETE', `/subnetpools/${p.id}`, { token: alice.token }), 409, 'SubnetPoolInUse');
  for (const x of [...nets, n]) assert.equal((await call('DELETE', `/networks/${x.id}`, { token: alice.token })).status, 204);
  assert.equal((await call('DELETE', `/subnetpools/${p.id}`, { token: alice.token })).status, 204);
});

test('the default pool: one per IP version, used with use_default_subnetpool; shared pools are visible to all', async () => {
  const p = await create(call, 'subnetpools', 'subnetpool', { name: uniqueName('default6'), prefixes: ['fd00:abcd::/48'], default_prefixlen: 64, is_default: true, shared: true });
  assertNeutronError(await call('POST', '/subnetpools', { body: { subnetpool: { name: 'x', prefixes: ['fd01::/48'], is_default: true } } }), 409, 'DefaultSubnetPoolExists');
  assert.equal((await call('GET', `/subnetpools/${p.id}`, { token: bob.token })).status, 200);
  const n = await create(call, 'networks', 'network', {}, bob.token);
  const s = await create(call, 'subnets', 'subnet', { network_id: n.id, ip_version: 6, use_default_subnetpool: true, ipv6_address_mode: 'slaac', ipv6_ra_mode: 'slaac' }, bob.token);
  assert.equal(s.cidr, 'fd00:abcd::/64');
  assert.equal(s.subnetpool_id, p.id);
  assert.equal((await call('DELETE', `/networks/${n.id}`, { token: bob.token })).status, 204);
  assert.equal((await call('DELETE', `/subnetpools/${p.id}`)).status, 204);
});
