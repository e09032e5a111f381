// Routers over HTTP: the gateway on an external network (ext-gw-mode, its
// port and addresses), interfaces by subnet (the gateway_ip) and by port,
// Neutron's refusals (400/404/409), extraroute and extraroute-atomic, the
// router ports the port API will not delete, in-use rules of networks and
// subnets, quotas, and nothing half-applied.
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

let extSeq = 0;
/** An external network (admin's) with one IPv4 subnet. */
async function external(cidr = `172.${24 + extSeq++}.0.0/24`) {
  const n = await create(call, 'networks', 'network', { name: uniqueName('ext'), 'router:external': true });
  const s = await create(call, 'subnets', 'subnet', { network_id: n.id, ip_version: 4, cidr, enable_dhcp: false });
  return { net: n, subnet: s };
}
async function tenantNet(token: string, cidr: string, extra: Record<string, unknown> = {}) {
  const n = await create(call, 'networks', 'network', { name: uniqueName('net') }, token);
  const s = await create(call, 'subnets', 'subnet', { network_id: n.id, ip_version: 4, cidr, ...extra }, token);
  return { net: n, subnet: s };
}
const put = (path: string, body: unknown, token = alice.token) => call('PUT', path, { token, body });

test('routers: create with a gateway, its port and address, the view, update and delete', async () => {
  const ext = await external();
  const r = await create(call, 'routers', 'router', { name: 'r1', external_gateway_info: { network_id: ext.net.id } }, alice.token);
  assert.equal(r.name, 'r1');
  assert.equal(r.status, 'ACTIVE');
  assert.equal(r.admin_state_up, true);
  assert.equal(r.project_id, alice.projectId);
  assert.deepEqual(r.routes, []);
  assert.equal(r.external_gateway_info.network_id, ext.net.id);
  assert.equal(r.external_gateway_info.enable_snat, true);
  assert.equal(r.external_gateway_info.external_fixed_ips.length, 1);
  assert.equal(r.external_gateway_info.external_fixed_ips[0].subnet_id, ext.subnet.id);
  assert.equal(r.distributed, undefined, 'distributed is an admin attribute');
  const gwPorts = (await call('GET', `/ports?device_id=${r.id}&device_owner=network:router_gateway`)).body.ports;
  assert.equal(gwPorts.length, 1);
  assert.deepEqual(gwPorts[0].fixed_ips, r.external_gateway_info.external_fixed_ips);
  // the gateway port is the router's: the port API refuses it
  assertNeutronError(await call('DELETE', `/ports/${gwPorts[0].id}`), 409, 'L3PortInUse');

  // ext-gw-mode and chosen gateway addresses are the admin's
  assertNeutronError(await put(`/routers/${r.id}`, { router: { external_gateway_info: { network_id: ext.net.id, enable_snat: false } } }), 403, 'PolicyNotAuthorized');
  const noSnat = await put(`/routers/${r.id}`, { router: { external_gateway_info: { network_id: ext.net.id, enable_snat: false } } }, cloud.adminToken);
  assert.equal(noSnat.status, 200, JSON.stringify(noSnat.body));
  assert.equal(noSnat.body.router.external_gateway_info.enable_snat, false);
  assert.deepEqual(noSnat.body.router.external_gateway_info.external_fixed_ips, r.external_gateway_info.external_fixed_ips, 'the same address kept');
  assert.equal(noSnat.body.router.distributed, false);
  assert.equal(noSnat.body.router.ha, false);
  const fixed = await put(`/routers/${r.id}`, { router: { external_gateway_info: { network_id: ext.net.id, external_fixed_ips: [{ ip_address: ext.subnet.cidr.replace('0/24', '77') }] } } }, cloud.adminToken);
  assert.equal(fixed.status, 200, JSON.stringify(fixed.body));
  assert.equal(fixed.body.router.external_gateway_info.external_fixed_ips[0].ip_address, ext.subnet.cidr.replace('0/24', '77'));

  const renamed = await put(`/routers/${r.id}`, { router: { name: 'r2', admin_state_up: false } });
  assert.equal(renamed.body.router.name, 'r2');
  assert.equal(renamed.body.router.admin_state_up, false);
  assert.ok(renamed.body.router.revision_number > r.revision_number);
  assertNeutronError(await put(`/routers/${r.id}`, { router: { external_gateway_info: { enable_snat: true } } }, cloud.adminToken), 400);
  const cleared = await put(`/routers/${r.id}`, { router: { external_gateway_info: {} } });
  assert.equal(cleared.status, 200, JSON.stringify(cleared.body));
  assert.equal(cleared.body.router.external_gateway_info, null, '{} clears the gateway');
  assert.equal((await call('GET', `/ports?device_id=${r.id}`)).body.ports.length, 0, 'the gateway port went');
  assert.equal((await put(`/routers/${r.id}`, { router: { external_gateway_info: { network_id: ext.net.id } } })).status, 200);
  const none = await put(`/routers/${r.id}`, { router: { external_gateway_info: null } });
  assert.equal(none.status, 200);
  assert.equal(none.body.router.external_gateway_info, null);

  // another project sees nothing of it
  assertNeutronError(await call('GET', `/routers/${r.id}`, { token: bob.token }), 404, 'RouterNotFound');
  assertNeutronError(await put(`/routers/${r.id}`, { router: { name: 'x' } }, bob.token), 404, 'RouterNotFound');
  assert.ok(!(await call('GET', '/routers', { token: bob.token })).body.routers.some((x: { id: string }) => x.id === r.id));
  assert.equal((await call('GET', `/routers?name=r2`, { token: alice.token })).body.routers.length, 1);
  assert.equal((await call('DELETE', `/routers/${r.id}`, { token: alice.token })).status, 204);
  assertNeutronError(await call('GET', `/routers/${r.id}`, { token: alice.token }), 404, 'RouterNotFound');
});

test('routers: a gateway only on an external network; distributed and HA are refused', async () => {
  const t = await tenantNet(alice.token, '10.50.0.0/24');
  const r = await call('POST', '/routers', { token: alice.token, body: { router: { external_gateway_info: { network_id: t.net.id } } } });
  assertNeutronError(r, 400, 'BadRequest', /is not an external network/);
  assert.equal((await call('GET', '/routers', { token: alice.token })).body.routers.length, 0, 'nothing half-made');
  assertNeutronError(await call('POST', '/routers', { token: alice.token, body: { router: { external_gateway_info: { network_id: 'nope' } } } }), 404, 'NetworkNotFound');
  assertNeutronError(await call('POST', '/routers', { token: alice.token, body: { router: { distributed: true } } }), 403);
  assertNeutronError(await call('POST', '/routers', { body: { router: { ha: true } } }), 400);
});

test('router interfaces: by subnet (the gateway_ip) and by port, Neutron\'s refusals, in-use rules', async () => {
  const a = await tenantNet(alice.token, '10.60.0.0/24');
  const b = await tenantNet(alice.token, '10.61.0.0/24');
  const overlapping = await tenantNet(alice.token, '10.60.0.0/25');
  const noGw = await tenantNet(alice.token, '10.62.0.0/24', { gateway_ip: null });
  const r = await create(call, 'routers', 'router', { name: 'ri' }, alice.token);
  const add = (body: unknown, token = alice.token) => put(`/routers/${r.id}/add_router_interface`, body, token);
  const remove = (body: unknown, token = alice.token) => put(`/routers/${r.id}/remove_router_interface`, body, token);

  const i1 = await add({ subnet_id: a.subnet.id });
  assert.equal(i1.status, 200, JSON.stringify(i1.body));
  assert.equal(i1.body.id, r.id);
  assert.equal(i1.body.subnet_id, a.subnet.id);
  assert.deepEqual(i1.body.subnet_ids, [a.subnet.id]);
  assert.equal(i1.body.network_id, a.net.id);
  assert.equal(i1.body.project_id, alice.projectId);
  const p1 = (await call('GET', `/ports/${i1.body.port_id}`, { token: alice.token })).body.port;
  assert.equal(p1.device_owner, 'network:router_interface');
  assert.equal(p1.device_id, r.id);
  assert.deepEqual(p1.fixed_ips, [{ subnet_id: a.subnet.id, ip_address: '10.60.0.1' }]);

  assertNeutronError(await add({ subnet_id: a.subnet.id }), 400, 'BadRequest', /already has a port on subnet/);
  assertNeutronError(await add({ subnet_id: overlapping.subnet.id }), 400, 'BadRequest', /overlaps with cidr/);
  assertNeutronError(await add({ subnet_id: noGw.subnet.id }), 400, 'BadRequest', /must have a gateway IP/);
  assertNeutronError(await add({}), 400, 'BadRequest', /Either subnet_id or port_id/);
  assertNeutronError(await add({ subnet_id: b.subnet.id, port_id: p1.id }), 400, 'BadRequest', /Cannot specify both/);
  assertNeutronError(await add({ subnet_id: b.subnet.id }, bob.token), 404, 'RouterNotFound');
  assertNeutronError(await add({ subnet_id: 'nope' }), 404, 'SubnetNotFound');

  // by port: the port's own address; a port owned by a device is in use
  const port = await create(call, 'ports', 'port', { network_id: b.net.id, fixed_ips: [{ subnet_id: b.subnet.id, ip_address: '10.61.0.9' }] }, alice.token);
  const busy = await create(call, 'ports', 'port', { network_id: b.net.id, device_id: 'vm', device_owner: 'compute:nova' }, alice.token);
  assertNeutronError(await add({ port_id: busy.id }), 409, 'PortInUse');
  const i2 = await add({ port_id: port.id });
  assert.equal(i2.status, 200, JSON.stringify(i2.body));
  assert.equal(i2.body.port_id, port.id);
  assert.equal(i2.body.subnet_id, b.subnet.id);
  const p2 = (await call('GET', `/ports/${port.id}`, { token: alice.token })).body.port;
  assert.equal(p2.device_owner, 'network:router_interface');
  assert.deepEqual(p2.security_groups, []);

  // router ports keep the router, the network and the subnet
  assertNeutronError(await call('DELETE', `/ports/${p1.id}`, { token: alice.token }), 409, 'L3PortInUse');
  assertNeutronError(await call('DELETE', `/routers/${r.id}`, { token: alice.token }), 409, 'RouterInUse');
  assertNeutronError(await call('DELETE', `/subnets/${a.subnet.id}`, { token: alice.token }), 409, 'SubnetInUse');
  assertNeutronError(await call('DELETE', `/networks/${a.net.id}`, { token: alice.token }), 409, 'NetworkInUse');

  assertNeutronError(await remove({ subnet_id: noGw.subnet.id }), 404, 'RouterInterfaceNotFoundForSubnet');
  assertNeutronError(await remove({ port_id: busy.id }), 404, 'RouterInterfaceNotFound');
  const out1 = await remove({ subnet_id: a.subnet.id });
  assert.equal(out1.status, 200, JSON.stringify(out1.body));
  assert.equal(out1.body.port_id, p1.id);
  assertNeutronError(await call('GET', `/ports/${p1.id}`, { token: alice.token }), 404);
  assert.equal((await remove({ port_id: port.id })).status, 200);
  assert.equal((await call('DELETE', `/routers/${r.id}`, { token: alice.token })).status, 204);
  assert.equal((await call('DELETE', `/subnets/${a.subnet.id}`, { token: alice.token })).status, 204);
});

test('router interfaces on a dual-stack network: one per subnet, the IPv6 gateway on a SLAAC subnet, no address on a subnet not attached', async () => {
  const n = await create(call, 'networks', 'network', { name: uniqueName('ds') }, alice.token);
  const v4 = await create(call, 'subnets', 'subnet', { network_id: n.id, ip_version: 4, cidr: '10.65.0.0/24' }, alice.token);
  const v6 = await create(call, 'subnets', 'subnet', { network_id: n.id, ip_version: 6, cidr: 'fd65::/64', ipv6_ra_mode: 'slaac', ipv6_address_mode: 'slaac' }, alice.token);
  const r = await create(call, 'routers', 'router', { name: 'ds' }, alice.token);
  const i4 = await put(`/routers/${r.id}/add_router_interface`, { subnet_id: v4.id });
  assert.deepEqual(i4.body.subnet_ids, [v4.id], 'no SLAAC address on the IPv6 subnet');
  const i6 = await put(`/routers/${r.id}/add_router_interface`, { subnet_id: v6.id });
  assert.equal(i6.status, 200, JSON.stringify(i6.body));
  const p6 = (await call('GET', `/ports/${i6.body.port_id}`, { token: alice.token })).body.port;
  assert.deepEqual(p6.fixed_ips, [{ subnet_id: v6.id, ip_address: v6.gateway_ip }]);
  for (const s of [v4, v6]) assert.equal((await put(`/routers/${r.id}/remove_router_interface`, { subnet_id: s.id })).status, 200);
});

test('an IPv6 subnet whose addresses come from an outside router\'s RAs (address mode, no RA mode) is refused as a router interface', async () => {
  const n = await create(call, 'networks', 'network', { name: uniqueName('ext-ra') }, alice.token);
  const v6 = await create(call, 'subnets', 'subnet', { network_id: n.id, ip_version: 6, cidr: 'fd66::/64', ipv6_address_mode: 'slaac' }, alice.token);
  const r = await create(call, 'routers', 'router', { name: 'ext-ra' }, alice.token);
  assertNeutronError(await put(`/routers/${r.id}/add_router_interface`, { subnet_id: v6.id }), 400, 'BadRequest',
    new RegExp(`IPv6 subnet ${v6.id} configured to receive RAs from an external router cannot be added to Neutron Router`));
  assert.deepEqual((await call('GET', `/ports?device_id=${r.id}`, { token: alice.token })).body.ports, [], 'no port left behind');
  // with both modes (equal) it is the router's to advertise
  const ok = await create(call, 'subnets', 'subnet', { network_id: n.id, ip_version: 6, cidr: 'fd67::/64', ipv6_ra_mode: 'dhcpv6-stateful', ipv6_address_mode: 'dhcpv6-stateful' }, alice.token);
  const i = await put(`/routers/${r.id}/add_router_interface`, { subnet_id: ok.id });
  assert.equal(i.status, 200, JSON.stringify(i.body));
  assert.equal((await put(`/routers/${r.id}/remove_router_interface`, { subnet_id: ok.id })).status, 200);
});

test('IPv6 subnets of one network share one router port (Neutron\'s multi-prefix port); a second IPv6 port on that network is refused', async () => {
  const n = await create(call, 'networks', 'network', { name: uniqueName('mp') }, alice.token);
  const a = await create(call, 'subnets', 'subnet', { network_id: n.id, ip_version: 6, cidr: 'fd81::/64', ipv6_ra_mode: 'slaac', ipv6_address_mode: 'slaac' }, alice.token);
  const b = await create(call, 'subnets', 'subnet', { network_id: n.id, ip_version: 6, cidr: 'fd82::/64', ipv6_ra_mode: 'dhcpv6-stateful', ipv6_address_mode: 'dhcpv6-stateful' }, alice.token);
  const v4 = await create(call, 'subnets', 'subnet', { network_id: n.id, ip_version: 4, cidr: '10.81.0.0/24' }, alice.token);
  const r = await create(call, 'routers', 'router', { name: 'mp' }, alice.token);
  const ia = await put(`/routers/${r.id}/add_router_interface`, { subnet_id: a.id });
  const ib = await put(`/routers/${r.id}/add_router_interface`, { subnet_id: b.id });
  assert.equal(ib.status, 200, JSON.stringify(ib.body));
  assert.equal(ib.body.port_id, ia.body.port_id, 'the same port');
  assert.deepEqual(ib.body.subnet_ids, [b.id]);
  const port = (await call('GET', `/ports/${ia.body.port_id}`, { token: alice.token })).body.port;
  assert.deepEqual(port.fixed_ips.map((f: { ip_address: string }) => f.ip_address).sort(), [a.gateway_ip, b.gateway_ip].sort());
  // IPv4 gets its own port
  const i4 = await put(`/routers/${r.id}/add_router_interface`, { subnet_id: v4.id });
  assert.notEqual(i4.body.port_id, ia.body.port_id);
  // a user's port with an IPv6 address on that network cannot be a second one
  const p6 = await create(call, 'ports', 'port', { network_id: n.id, fixed_ips: [{ subnet_id: b.id }] }, alice.token);
  assertNeutronError(await put(`/routers/${r.id}/add_router_interface`, { port_id: p6.id }), 400, 'BadRequest',
    /Cannot have multiple router ports with the same network id if both contain IPv6 subnets/);
  // by subnet: only that address leaves the shared port; the last one takes the port
  const ra = await put(`/routers/${r.id}/remove_router_interface`, { subnet_id: a.id });
  assert.equal(ra.status, 200, JSON.stringify(ra.body));
  assert.deepEqual([ra.body.port_id, ra.body.subnet_ids], [ia.body.port_id, [a.id]]);
  const left = (await call('GET', `/ports/${ia.body.port_id}`, { token: alice.token })).body.port;
  assert.deepEqual(left.fixed_ips, [{ subnet_id: b.id, ip_address: b.gateway_ip }]);
  assert.equal((await put(`/routers/${r.id}/remove_router_interface`, { subnet_id: b.id })).status, 200);
  assert.equal((await call('GET', `/ports/${ia.body.port_id}`, { token: alice.token })).status, 404);
  assert.equal((await put(`/routers/${r.id}/remove_router_interface`, { subnet_id: v4.id })).status, 200);
});

test('extraroute and extraroute-atomic: the nexthop on a connected subnet; an interface a route needs stays', async () => {
  const a = await tenantNet(alice.token, '10.70.0.0/24');
  const r = await create(call, 'routers', 'router', { name: 'rr' }, alice.token);
  const routes = (rs: unknown) => put(`/routers/${r.id}`, { router: { routes: rs } });
  assertNeutronError(await routes([{ destination: '192.168.0.0/24', nexthop: '10.70.0.5' }]), 400, 'InvalidRoutes', /not connected/);
  assert.equal((await put(`/routers/${r.id}/add_router_interface`, { subnet_id: a.subnet.id })).status, 200);
  assertNeutronError(await routes([{ destination: '192.168.0.0/24', nexthop: '10.70.0.1' }]), 400, 'InvalidRoutes', /used by router/);
  assertNeutronError(await routes([{ destination: 'banana', nexthop: '10.70.0.5' }]), 400, 'InvalidRoutes');
  const set = await routes([{ destination: '192.168.0.0/24', nexthop: '10.70.0.5' }]);
  assert.equal(set.status, 200, JSON.stringify(set.body));
  assert.deepEqual(set.body.router.routes, [{ destination: '192.168.0.0/24', nexthop: '10.70.0.5' }]);
  const added = await put(`/routers/${r.id}/add_extraroutes`, { router: { routes: [{ destination: '192.168.1.0/24', nexthop: '10.70.0.6' }, { destination: '192.168.0.0/24', nexthop: '10.70.0.5' }] } });
  assert.equal(added.status, 200, JSON.stringify(added.body));
  assert.deepEqual(added.body.router.routes.map((x: { destination: string }) => x.destination).sort(), ['192.168.0.0/24', '192.168.1.0/24']);
  assertNeutronError(await put(`/routers/${r.id}/add_extraroutes`, { router: { routes: [{ destination: '192.168.2.0/24', nexthop: '10.99.0.1' }] } }), 400, 'InvalidRoutes');
  assertNeutronError(await put(`/routers/${r.id}/remove_router_interface`, { subnet_id: a.subnet.id }), 409, 'RouterInterfaceInUseByRoute');
  const removed = await put(`/routers/${r.id}/remove_extraroutes`, { router: { routes: [{ destination: '192.168.0.0/24', nexthop: '10.70.0.5' }] } });
  assert.deepEqual(removed.body.router.routes, [{ destination: '192.168.1.0/24', nexthop: '10.70.0.6' }]);
  assert.equal((await routes(null)).body.router.routes.length, 0);
  assert.equal((await put(`/routers/${r.id}/remove_router_interface`, { subnet_id: a.subnet.id })).status, 200);
});

test('router quota: OverQuota once the limit is reached; usage in quota details', async () => {
  const carol = await tenant(cloud);
  assert.equal((await call('PUT', `/quotas/${carol.projectId}`, { body: { quota: { router: 1 } } })).status, 200);
  await create(call, 'routers', 'router', { name: 'q1' }, carol.token);
  assertNeutronError(await call('POST', '/routers', { token: carol.token, body: { router: { name: 'q2' } } }), 409, 'OverQuota');
  const d = await call('GET', `/quotas/${carol.projectId}/details`);
  assert.deepEqual(d.body.quota.router, { limit: 1, used: 1, reserved: 0 });
});
