// Floating IPs over HTTP: allocation on an external network (its
// network:floatingip port), association with a port behind a router with a
// gateway there (404 ExternalGatewayForFloatingIPNotFound otherwise),
// port_details, disassociation, the interface and gateway a floating IP
// needs, one floating IP per fixed address, a deleted port's floating IP
// disassociated, quotas, concurrency (no address twice), and port
// forwardings (their conflicts with port associations and each other).
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
const put = (path: string, body: unknown, token = alice.token) => call('PUT', path, { token, body });

let seq = 0;
async function external(cidr = `172.${40 + seq++}.0.0/24`, pools?: Array<{ start: string; end: string }>) {
  const n = await create(call, 'networks', 'network', { name: uniqueName('ext'), 'router:external': true });
  const s = await create(call, 'subnets', 'subnet', { network_id: n.id, ip_version: 4, cidr, enable_dhcp: false, ...(pools ? { allocation_pools: pools } : {}) });
  return { net: n, subnet: s };
}
/** A tenant network behind a router with a gateway on `ext`. */
async function behindRouter(token: string, extId: string, cidr: string) {
  const n = await create(call, 'networks', 'network', { name: uniqueName('net') }, token);
  const s = await create(call, 'subnets', 'subnet', { network_id: n.id, ip_version: 4, cidr }, token);
  const r = await create(call, 'routers', 'router', { name: uniqueName('r'), external_gateway_info: { network_id: extId } }, token);
  assert.equal((await put(`/routers/${r.id}/add_router_interface`, { subnet_id: s.id }, token)).status, 200);
  return { net: n, subnet: s, router: r };
}

test('floating IPs: allocate, associate through the router, port_details, disassociate, delete', async () => {
  const ext = await external();
  const inside = await behindRouter(alice.token, ext.net.id, '10.80.0.0/24');
  const port = await create(call, 'ports', 'port', { network_id: inside.net.id, name: 'vm-port', device_id: 'vm1', device_owner: 'compute:nova' }, alice.token);
  const fip = await create(call, 'floatingips', 'floatingip', { floating_network_id: ext.net.id, description: 'd' }, alice.token);
  assert.equal(fip.floating_network_id, ext.net.id);
  assert.match(fip.floating_ip_address, /^172\./);
  assert.equal(fip.port_id, null);
  assert.equal(fip.fixed_ip_address, null);
  assert.equal(fip.router_id, null);
  assert.equal(fip.status, 'DOWN');
  assert.equal(fip.port_details, null);
  assert.equal(fip.description, 'd');
  assert.equal(fip.project_id, alice.projectId);
  // its address is held by a network:floatingip port, which the port API will not delete
  const fport = (await call('GET', `/ports?device_id=${fip.id}`)).body.ports;
  assert.equal(fport.length, 1);
  assert.equal(fport[0].device_owner, 'network:floatingip');
  assert.equal(fport[0].fixed_ips[0].ip_address, fip.floating_ip_address);
  assertNeutronError(await call('DELETE', `/ports/${fport[0].id}`), 409, 'L3PortInUse');

  const assoc = await put(`/floatingips/${fip.id}`, { floatingip: { port_id: port.id } });
  assert.equal(assoc.status, 200, JSON.stringify(assoc.body));
  assert.equal(assoc.body.floatingip.port_id, port.id);
  assert.equal(assoc.body.floatingip.fixed_ip_address, port.fixed_ips[0].ip_address);
  assert.equal(assoc.body.floatingip.router_id, inside.router.id);
  assert.deepEqual(assoc.body.floatingip.port_details, {
    name: 'vm-port', network_id: inside.net.id, mac_address: port.mac_address, admin_state_up: true, status: 'DOWN', device_id: 'vm1', device_owner: 'compute:nova',
  });
  assert.equal((await call('GET', `/floatingips?port_id=${port.id}`, { token: alice.token })).body.floatingips.length, 1);
  assert.equal((await call('GET', `/floatingips?router_id=${inside.router.id}`, { token: alice.token })).body.floatingips.length, 1);

  // what the floating IP needs stays: the router's interface on the subnet, its gateway
  assertNeutronError(await put(`/routers/${inside.router.id}/remove_router_interface`, { subnet_id: inside.subnet.id }), 409, 'RouterInterfaceInUseByFloatingIP');
  assertNeutronError(await put(`/routers/${inside.router.id}`, { router: { external_gateway_info: null } }), 409, 'RouterExternalGatewayInUseByFloatingIp');
  // one floating IP per fixed address
  const second = await create(call, 'floatingips', 'floatingip', { floating_network_id: ext.net.id }, alice.token);
  assertNeutronError(await put(`/floatingips/${second.id}`, { floatingip: { port_id: port.id } }), 409, 'FloatingIPPortAlreadyAssociated');
  // another project's port is not found
  const bobs = await create(call, 'floatingips', 'floatingip', { floating_network_id: ext.net.id }, bob.token);
  assertNeutronError(await put(`/floatingips/${bobs.id}`, { floatingip: { port_id: port.id } }, bob.token), 404, 'PortNotFound');
  assertNeutronError(await call('GET', `/floatingips/${fip.id}`, { token: bob.token }), 404, 'FloatingIPNotFound');

  const off = await put(`/floatingips/${fip.id}`, { floatingip: { port_id: null } });
  assert.equal(off.status, 200);
  assert.equal(off.body.floatingip.port_id, null);
  assert.equal(off.body.floatingip.router_id, null);
  assert.equal(off.body.floatingip.port_details, null);
  assert.equal((await put(`/floatingips/${second.id}`, { floatingip: { port_id: port.id, fixed_ip_address: port.fixed_ips[0].ip_address } })).status, 200);

  // a deleted port's floating IP is disassociated
  assert.equal((await call('DELETE', `/ports/${port.id}`, { token: alice.token })).status, 204);
  const after = (await call('GET', `/floatingips/${second.id}`, { token: alice.token })).body.floatingip;
  assert.equal(after.port_id, null);
  assert.equal(after.router_id, null);

  for (const f of [fip, second]) assert.equal((await call('DELETE', `/floatingips/${f.id}`, { token: alice.token })).status, 204);
  assert.equal((await call('GET', `/ports?device_id=${fip.id}`)).body.ports.length, 0, 'the floating IP\'s port went');
  assertNeutronError(await call('GET', `/floatingips/${fip.id}`, { token: alice.token }), 404, 'FloatingIPNotFound');
});

test('floating IPs: Neutron\'s refusals', async () => {
  const ext = await external();
  const priv = await create(call, 'networks', 'network', { name: uniqueName('p') }, alice.token);
  await create(call, 'subnets', 'subnet', { network_id: priv.id, ip_version: 4, cidr: '10.81.0.0/24' }, alice.token);
  assertNeutronError(await call('POST', '/floatingips', { token: alice.token, body: { floatingip: { floating_network_id: priv.id } } }), 400, 'BadRequest', /is not a valid external network/);
  assertNeutronError(await call('POST', '/floatingips', { token: alice.token, body: { floatingip: { floating_network_id: 'nope' } } }), 404, 'NetworkNotFound');
  assertNeutronError(await call('POST', '/floatingips', { token: alice.token, body: { floatingip: { floating_network_id: ext.net.id, floating_ip_address: '172.1.0.5' } } }), 403);
  // a port on a subnet no router joins to the external network
  const port = await create(call, 'ports', 'port', { network_id: priv.id }, alice.token);
  assertNeutronError(await call('POST', '/floatingips', { token: alice.token, body: { floatingip: { floating_network_id: ext.net.id, port_id: port.id } } }), 404, 'ExternalGatewayForFloatingIPNotFound');
  assert.equal((await call('GET', '/floatingips', { token: alice.token })).body.floatingips.filter((f: { floating_network_id: string }) => f.floating_network_id === ext.net.id).length, 0, 'nothing half-made');
  assert.equal((await call('GET', `/ports?network_id=${ext.net.id}`)).body.ports.length, 0, 'no address kept');
  // the admin chooses the address; it is then taken
  const chosen = ext.subnet.cidr.replace('0/24', '50');
  const f = await create(call, 'floatingips', 'floatingip', { floating_network_id: ext.net.id, floating_ip_address: chosen, project_id: alice.projectId });
  assert.equal(f.floating_ip_address, chosen);
  assert.equal(f.project_id, alice.projectId);
  assertNeutronError(await call('POST', '/floatingips', { body: { floatingip: { floating_network_id: ext.net.id, floating_ip_address: chosen } } }), 409, 'IpAddressAlreadyAllocated');
  // an associated floating IP keeps its external network; unassociated ones go with it
  const inside = await behindRouter(alice.token, ext.net.id, '10.83.0.0/24');
  const vm = await create(call, 'ports', 'port', { network_id: inside.net.id }, alice.token);
  const bound = await create(call, 'floatingips', 'floatingip', { floating_network_id: ext.net.id, port_id: vm.id }, alice.token);
  assertNeutronError(await call('DELETE', `/networks/${ext.net.id}`), 409, 'NetworkInUse');
  assert.equal((await call('DELETE', `/floatingips/${bound.id}`, { token: alice.token })).status, 204);
  assertNeutronError(await call('DELETE', `/networks/${ext.net.id}`), 409, 'NetworkInUse', undefined);
  assert.equal((await put(`/routers/${inside.router.id}`, { router: { external_gateway_info: null } })).status, 200);
  assert.equal((await call('DELETE', `/networks/${ext.net.id}`)).status, 204, 'the router gateway gone, the idle floating IP goes with the network');
  assertNeutronError(await call('GET', `/floatingips/${f.id}`), 404, 'FloatingIPNotFound');
});

test('floating IPs under concurrency: 20 at once on 8 addresses get distinct ones, the rest IpAddressGenerationFailure; quota', async () => {
  const ext = await external('172.60.0.0/24', [{ start: '172.60.0.10', end: '172.60.0.17' }]);
  const results = await Promise.all(Array.from({ length: 20 }, () => call('POST', '/floatingips', { token: alice.token, body: { floatingip: { floating_network_id: ext.net.id } } })));
  const made = results.filter((r) => r.status === 201).map((r) => r.body.floatingip);
  assert.equal(made.length, 8, JSON.stringify(results.filter((r) => r.status !== 201).map((r) => r.body)[0]));
  assert.equal(new Set(made.map((f) => f.floating_ip_address)).size, 8, 'no address twice');
  for (const r of results.filter((x) => x.status !== 201)) assertNeutronError(r, 409, 'IpAddressGenerationFailure');
  await Promise.all(made.map((f) => call('DELETE', `/floatingips/${f.id}`, { token: alice.token })));

  const carol = await tenant(cloud);
  assert.equal((await call('PUT', `/quotas/${carol.projectId}`, { body: { quota: { floatingip: 2 } } })).status, 200);
  const q = await Promise.all(Array.from({ length: 5 }, () => call('POST', '/floatingips', { token: carol.token, body: { floatingip: { floating_network_id: ext.net.id } } })));
  assert.equal(q.filter((r) => r.status === 201).length, 2);
  for (const r of q.filter((x) => x.status !== 201)) assertNeutronError(r, 409, 'OverQuota');
  assert.deepEqual((await call('GET', `/quotas/${carol.projectId}/details`)).body.quota.floatingip, { limit: 2, used: 2, reserved: 0 });
});

test('port forwardings: CRUD, unique external port per protocol, never with a port association', async () => {
  const ext = await external();
  const inside = await behindRouter(alice.token, ext.net.id, '10.82.0.0/24');
  const port = await create(call, 'ports', 'port', { network_id: inside.net.id }, alice.token);
  const ip = port.fixed_ips[0].ip_address;
  const fip = await create(call, 'floatingips', 'floatingip', { floating_network_id: ext.net.id }, alice.token);
  const base = `/floatingips/${fip.id}/port_forwardings`;
  const pf = (body: Record<string, unknown>) => call('POST', base, { token: alice.token, body: { port_forwarding: { protocol: 'tcp', internal_port_id: port.id, internal_ip_address: ip, ...body } } });
  const a = await pf({ external_port: 2222, internal_port: 22, description: 'ssh' });
  assert.equal(a.status, 201, JSON.stringify(a.body));
  assert.deepEqual({ ...a.body.port_forwarding, id: undefined }, {
    id: undefined, external_port: 2222, internal_port: 22, internal_ip_address: ip, internal_port_id: port.id, protocol: 'tcp', description: 'ssh',
  });
  assert.equal((await call('GET', `/floatingips/${fip.id}`, { token: alice.token })).body.floatingip.router_id, inside.router.id);
  assertNeutronError(await pf({ external_port: 2222, internal_port: 23 }), 409);
  assert.equal((await pf({ external_port: 2222, internal_port: 24, protocol: 'udp' })).status, 201, 'another protocol');
  assertNeutronError(await pf({ external_port: 0, internal_port: 22 }), 400);
  assertNeutronError(await pf({ external_port: 80, internal_port: 22, internal_ip_address: '10.82.0.250' }), 400);
  assert.equal((await call('GET', base, { token: alice.token })).body.port_forwardings.length, 2);
  assert.equal((await call('GET', `${base}?protocol=udp`, { token: alice.token })).body.port_forwardings.length, 1);
  const up = await call('PUT', `${base}/${a.body.port_forwarding.id}`, { token: alice.token, body: { port_forwarding: { external_port: 2223 } } });
  assert.equal(up.status, 200, JSON.stringify(up.body));
  assert.equal(up.body.port_forwarding.external_port, 2223);
  assertNeutronError(await call('GET', base, { token: bob.token }), 404, 'FloatingIPNotFound');
  // a floating IP with port forwardings takes no port, and the other way round
  assertNeutronError(await put(`/floatingips/${fip.id}`, { floatingip: { port_id: port.id } }), 409, 'FipInUseByPortForwarding');
  const other = await create(call, 'floatingips', 'floatingip', { floating_network_id: ext.net.id, port_id: port.id }, alice.token);
  assertNeutronError(await call('POST', `/floatingips/${other.id}/port_forwardings`, { token: alice.token, body: { port_forwarding: { protocol: 'tcp', internal_port_id: port.id, internal_ip_address: ip, external_port: 1, internal_port: 1 } } }), 409);
  assertNeutronError(await put(`/routers/${inside.router.id}/remove_router_interface`, { subnet_id: inside.subnet.id }), 409, 'RouterInterfaceInUseByFloatingIP');
  for (const p of (await call('GET', base, { token: alice.token })).body.port_forwardings) {
    assert.equal((await call('DELETE', `${base}/${p.id}`, { token: alice.token })).status, 204);
  }
  assertNeutronError(await call('GET', `${base}/${a.body.port_forwarding.id}`, { token: alice.token }), 404, 'PortForwardingNotFound');
  assert.equal((await call('GET', `/floatingips/${fip.id}`, { token: alice.token })).body.floatingip.router_id, null);
});
