// auto-allocated-topology over HTTP: no default external network is Neutron's
// 409 (dry-run too); one default external network at a time; the first GET
// makes a network, subnet (the default pool's or the configured CIDR) and
// router with a gateway and an interface, later and concurrent GETs answer the
// same network; DELETE removes it all. Compute's `networks: auto` puts a
// project without networks on it, and the server's addresses show a floating
// IP after the fixed address.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCloud, tenant, type Cloud, type Tenant } from '../../harness.ts';
import { assertNeutronError, create, neutron, type NetCall } from './lib.ts';

let cloud: Cloud;
let call: NetCall;
let alice: Tenant;

before(async () => {
  cloud = await startCloud();
  call = neutron(cloud);
  alice = await tenant(cloud);
});
after(async () => {
  await cloud?.close();
});

test('auto-allocated topology: requirements, one default external network, made once, deleted', async () => {
  const get = (q = '', token = alice.token, project = alice.projectId) => call('GET', `/auto-allocated-topology/${project}${q}`, { token });
  assertNeutronError(await get(), 409, 'AutoAllocationFailure', /No default router:external network/);
  assertNeutronError(await get('?fields=dry-run'), 409, 'AutoAllocationFailure');
  const bob = await tenant(cloud);
  assertNeutronError(await get('', bob.token), 403);

  const ext = await create(call, 'networks', 'network', { name: 'public', 'router:external': true, is_default: true });
  assert.equal(ext.is_default, true);
  await create(call, 'subnets', 'subnet', { network_id: ext.id, ip_version: 4, cidr: '198.18.0.0/24', enable_dhcp: false });
  assertNeutronError(await call('POST', '/networks', { body: { network: { name: 'public2', 'router:external': true, is_default: true } } }), 409, 'DefaultExternalNetworkExists');
  assertNeutronError(await call('POST', '/networks', { token: alice.token, body: { network: { name: 'x', is_default: true } } }), 403);

  const dry = await get('?fields=dry-run');
  assert.equal(dry.status, 200, JSON.stringify(dry.body));
  assert.equal(dry.body.auto_allocated_topology.id, 'dry-run=pass');
  assert.equal((await call('GET', '/networks', { token: alice.token })).body.networks.filter((n: { external: boolean; 'router:external': boolean }) => !n['router:external']).length, 0, 'dry-run makes nothing');

  const [a, b] = await Promise.all([get(), get()]);
  assert.equal(a.status, 200, JSON.stringify(a.body));
  assert.equal(b.status, 200, JSON.stringify(b.body));
  const id = a.body.auto_allocated_topology.id;
  assert.equal(b.body.auto_allocated_topology.id, id, 'concurrent first GETs answer one topology');
  assert.equal(a.body.auto_allocated_topology.project_id, alice.projectId);
  assert.equal((await get()).body.auto_allocated_topology.id, id);
  const nets = (await call('GET', '/networks?router:external=false', { token: alice.token })).body.networks;
  assert.deepEqual(nets.map((n: { id: string }) => n.id), [id], 'one network, the loser\'s removed');
  assert.equal(nets[0].name, 'auto_allocated_network');
  const subnets = (await call('GET', `/subnets?network_id=${id}`, { token: alice.token })).body.subnets;
  assert.equal(subnets.length, 1);
  assert.equal(subnets[0].cidr, '10.0.0.0/24');
  const routers = (await call('GET', '/routers', { token: alice.token })).body.routers;
  assert.equal(routers.length, 1);
  assert.equal(routers[0].name, 'auto_allocated_router');
  assert.equal(routers[0].external_gateway_info.network_id, ext.id);
  const itf = (await call('GET', `/ports?device_id=${routers[0].id}&device_owner=network:router_interface`)).body.ports;
  assert.equal(itf[0].fixed_ips[0].subnet_id, subnets[0].id);

  assert.equal((await call('DELETE', `/auto-allocated-topology/${alice.projectId}`, { token: alice.token })).status, 204);
  assert.equal((await call('GET', '/routers', { token: alice.token })).body.routers.length, 0);
  assertNeutronError(await call('GET', `/networks/${id}`, { token: alice.token }), 404);
  assert.equal((await call('DELETE', `/auto-allocated-topology/${alice.projectId}`, { token: alice.token })).status, 204, 'nothing left: nothing to do');
});

test('compute: networks auto uses the auto-allocated topology; addresses show a floating IP after the fixed one', async () => {
  const carol = await tenant(cloud);
  const nova = (method: string, path: string, body?: unknown, token = cloud.adminToken) =>
    cloud.call(method, `/compute/v2.1${path}`, { token, body, headers: { 'X-OpenStack-Nova-API-Version': '2.79' } });
  const img = await cloud.call('POST', '/image/v2/images', { token: cloud.adminToken, body: { name: 'i', container_format: 'bare', disk_format: 'raw', visibility: 'public' } });
  const up = await fetch(`${cloud.url}/image/v2/images/${img.body.id}/file`, { method: 'PUT', headers: { 'X-Auth-Token': cloud.adminToken, 'Content-Type': 'application/octet-stream' }, body: Buffer.alloc(1024, 1) });
  assert.equal(up.status, 204);
  const fl = await nova('POST', '/flavors', { flavor: { name: 'auto-test', ram: 64, vcpus: 1, disk: 1, 'os-flavor-access:is_public': true } });
  const s = await nova('POST', '/servers', { server: { name: 'auto', imageRef: img.body.id, flavorRef: fl.body.flavor.id, networks: 'auto' } }, carol.token);
  assert.equal(s.status, 202, JSON.stringify(s.body));
  const topo = (await call('GET', `/auto-allocated-topology/${carol.projectId}`, { token: carol.token })).body.auto_allocated_topology;
  const ports = (await call('GET', `/ports?device_id=${s.body.server.id}`)).body.ports;
  assert.equal(ports.length, 1);
  assert.equal(ports[0].network_id, topo.id);

  const ext = (await call('GET', '/networks?is_default=true')).body.networks[0];
  const fip = await create(call, 'floatingips', 'floatingip', { floating_network_id: ext.id, port_id: ports[0].id }, carol.token);
  const shown = (await nova('GET', `/servers/${s.body.server.id}`, undefined, carol.token)).body.server;
  assert.deepEqual(shown.addresses.auto_allocated_network, [
    { version: 4, addr: ports[0].fixed_ips[0].ip_address, 'OS-EXT-IPS:type': 'fixed', 'OS-EXT-IPS-MAC:mac_addr': ports[0].mac_address },
    { version: 4, addr: fip.floating_ip_address, 'OS-EXT-IPS:type': 'floating', 'OS-EXT-IPS-MAC:mac_addr': ports[0].mac_address },
  ]);
});
