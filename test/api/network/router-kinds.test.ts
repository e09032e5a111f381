// The router kind on the agent API: a router is claimed by the first agent
// serving routers that watches, handed to it with its interfaces (prefix
// lengths), gateway (the external subnet's gateway), SNAT, routes, floating
// IPs and port forwardings; its networks go to that host too, whose router
// ports' MACs are FDB entries on the other hosts; reports set the router's
// and its floating IPs' status.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startCloud, type Cloud } from '../../harness.ts';
import { PROTOCOL_VERSION } from '../../../src/fleet/protocol.ts';
import { create, neutron, type NetCall } from './lib.ts';

let cloud: Cloud;
let call: NetCall;
let agentToken: string;

before(async () => {
  cloud = await startCloud();
  call = neutron(cloud);
  agentToken = readFileSync(join(cloud.dataDir, 'agent-token'), 'utf8').trim();
});
after(async () => {
  await cloud?.close();
});

async function agent(method: string, path: string, body: unknown): Promise<any> {
  const r = await fetch(`${cloud.url}/agent/v1/hosts/${path}`, { method, headers: { 'x-stratus-agent-token': agentToken, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal(r.status, 200, await r.clone().text());
  return r.json();
}
const register = (host: string, ip: string, kinds: Record<string, string[]>) => agent('PUT', host, {
  protocol: PROTOCOL_VERSION, kinds: { server: ['container'], ...kinds }, vcpus: 2, memory_mb: 2048, disk_gb: 10, version: 'test', host_ip: ip,
});
type Known = Record<string, Record<string, number>>;
async function watch(host: string, known: Known) {
  const r = await agent('POST', `${host}/watch`, { known, wait: 0 });
  const next: Known = structuredClone(known);
  for (const res of r.resources) next[res.kind]![res.id] = res.version;
  for (const g of r.gone) delete next[g.kind]![g.id];
  const of = (kind: string) => new Map<string, any>(r.resources.filter((x: any) => x.kind === kind).map((x: any) => [x.id, x.spec]));
  return { r, next, networks: of('network'), ports: of('port'), routers: of('router') };
}

test('a router on its host: interfaces, gateway, SNAT, routes, floating IPs, port forwardings; networks and FDB; reports', async () => {
  await register('l3-h1', '198.51.100.11', { network: [], port: [], security_group: [] });
  await register('l3-net', '198.51.100.12', { network: [], port: [], security_group: [], router: [] });
  const ext = await create(call, 'networks', 'network', { name: 'l3-ext', 'router:external': true, 'provider:network_type': 'flat', 'provider:physical_network': 'l3-public' });
  const extSub = await create(call, 'subnets', 'subnet', { network_id: ext.id, cidr: '203.0.113.0/24', ip_version: 4, enable_dhcp: false });
  const net = await create(call, 'networks', 'network', { name: 'l3-tenant' });
  const sub = await create(call, 'subnets', 'subnet', { network_id: net.id, cidr: '10.90.0.0/24', ip_version: 4 });
  const vm = await create(call, 'ports', 'port', { network_id: net.id, device_id: 'srv-l3', device_owner: 'compute:nova', 'binding:host_id': 'l3-h1' });
  const vm2 = await create(call, 'ports', 'port', { network_id: net.id, device_id: 'srv-l3b', device_owner: 'compute:nova', 'binding:host_id': 'l3-h1' });
  const router = await create(call, 'routers', 'router', { name: 'l3-r', external_gateway_info: { network_id: ext.id } });
  const itf = (await call('PUT', `/routers/${router.id}/add_router_interface`, { body: { subnet_id: sub.id } })).body;
  await call('PUT', `/routers/${router.id}`, { body: { router: { routes: [{ destination: '192.168.9.0/24', nexthop: '10.90.0.50' }] } } });
  const fip = await create(call, 'floatingips', 'floatingip', { floating_network_id: ext.id, port_id: vm.id });
  const fip2 = await create(call, 'floatingips', 'floatingip', { floating_network_id: ext.id });
  const pf = await call('POST', `/floatingips/${fip2.id}/port_forwardings`, { body: { port_forwarding: { protocol: 'tcp', external_port: 8080, internal_port: 80, internal_port_id: vm2.id, internal_ip_address: vm2.fixed_ips[0].ip_address } } });
  assert.equal(pf.status, 201, JSON.stringify(pf.body));

  // an agent that does not serve routers is not given one
  const h1 = await watch('l3-h1', { network: {}, port: {}, security_group: {} });
  assert.deepEqual([...h1.ports.keys()].sort(), [vm.id, vm2.id].sort(), 'router ports are not port resources');
  assert.equal((await call('GET', `/ports/${itf.port_id}`)).body.port['binding:host_id'], '', 'no host yet');

  const first = await watch('l3-net', { network: {}, port: {}, security_group: {}, router: {} });
  // claimed during that round: the next one hands it out with its networks
  const h = first.routers.size ? first : await watch('l3-net', first.next);
  const spec = h.routers.get(router.id);
  assert.ok(spec, JSON.stringify(h.r));
  assert.equal((await call('GET', `/ports/${itf.port_id}`)).body.port['binding:host_id'], 'l3-net');
  const gwPort = (await call('GET', `/ports?device_id=${router.id}&device_owner=network:router_gateway`)).body.ports[0];
  const itfPort = (await call('GET', `/ports/${itf.port_id}`)).body.port;
  assert.deepEqual(spec.interfaces, [{ port_id: itf.port_id, network_id: net.id, subnet_id: sub.id, mac_address: itfPort.mac_address, ip_address: '10.90.0.1', prefixlen: 24 }]);
  assert.deepEqual(spec.external_gateway, {
    network_id: ext.id, port_id: gwPort.id, mac_address: gwPort.mac_address, ip_addresses: [{ ip_address: gwPort.fixed_ips[0].ip_address, prefixlen: 24 }],
    gateway_ip: extSub.gateway_ip, enable_snat: true,
  });
  assert.deepEqual(spec.routes, [{ destination: '192.168.9.0/24', nexthop: '10.90.0.50' }]);
  assert.deepEqual(spec.floating_ips, [{ floating_ip: fip.floating_ip_address, fixed_ip: vm.fixed_ips[0].ip_address, port_id: vm.id }]);
  assert.deepEqual(spec.port_forwardings, [{ floating_ip: fip2.floating_ip_address, external_port: 8080, internal_ip: vm2.fixed_ips[0].ip_address, internal_port: 80, protocol: 'tcp' }]);
  assert.equal(spec.admin_state_up, true);
  assert.equal(spec.deleted, false);
  // both networks are on the router's host; the VM's host peers with it and learns the router port's MAC
  const nets = (await watch('l3-net', { network: {}, port: {}, security_group: {}, router: {} })).networks;
  assert.deepEqual([...nets.keys()].sort(), [ext.id, net.id].sort());
  const dhcp = (await call('GET', `/ports?network_id=${net.id}&device_owner=network:dhcp`)).body.ports[0];
  assert.deepEqual(nets.get(net.id).vxlan_peers, [{ underlay_ip: '198.51.100.11', macs: [vm.mac_address, vm2.mac_address, dhcp.mac_address].sort() }]);
  const onH1 = (await watch('l3-h1', { network: {}, port: {}, security_group: {} })).networks.get(net.id);
  assert.deepEqual(onH1.vxlan_peers, [{ underlay_ip: '198.51.100.12', macs: [itfPort.mac_address] }]);

  // reports: the router and its floating IPs become ACTIVE; a report from another host changes nothing
  assert.equal((await call('GET', `/floatingips/${fip.id}`)).body.floatingip.status, 'DOWN');
  await agent('POST', 'l3-h1/report', { resources: [{ kind: 'router', id: router.id, version: 1, observed: { state: 'down' } }] });
  assert.equal((await call('GET', `/routers/${router.id}`)).body.router.status, 'ACTIVE');
  await agent('POST', 'l3-net/report', { resources: [{ kind: 'router', id: router.id, version: 1, observed: { state: 'active' } }] });
  assert.equal((await call('GET', `/floatingips/${fip.id}`)).body.floatingip.status, 'ACTIVE');
  assert.equal((await call('GET', `/floatingips/${fip2.id}`)).body.floatingip.status, 'ACTIVE');
  await agent('POST', 'l3-net/report', { resources: [{ kind: 'router', id: router.id, version: 1, observed: { state: 'down' }, error: { class: 'transient', code: 'router_failed', message: 'boom' } }] });
  assert.equal((await call('GET', `/routers/${router.id}`)).body.router.status, 'DOWN');

  // disassociation changes the spec; the router's removal makes it gone
  const before = h.next;
  await call('PUT', `/floatingips/${fip.id}`, { body: { floatingip: { port_id: null } } });
  const changed = await watch('l3-net', before);
  assert.deepEqual(changed.routers.get(router.id).floating_ips, []);
  for (const f of [fip, fip2]) assert.equal((await call('DELETE', `/floatingips/${f.id}`)).status, 204);
  await call('PUT', `/routers/${router.id}`, { body: { router: { routes: [] } } });
  assert.equal((await call('PUT', `/routers/${router.id}/remove_router_interface`, { body: { subnet_id: sub.id } })).status, 200);
  assert.equal((await call('DELETE', `/routers/${router.id}`)).status, 204);
  const gone = await watch('l3-net', changed.next);
  assert.ok(gone.r.gone.some((g: any) => g.kind === 'router' && g.id === router.id));
  assert.ok(gone.r.gone.some((g: any) => g.kind === 'network' && g.id === ext.id), 'the external network leaves the router host');
});

test('IPv6: router interfaces carry CIDR, ipv6_ra_mode and name servers; the DHCP port has an address on each DHCPv6 subnet, dnsmasq its hosts', async () => {
  await register('v6-h1', '198.51.100.21', { network: [], port: [], security_group: [], router: [] });
  const net = await create(call, 'networks', 'network', { name: 'v6-tenant' });
  const full = await create(call, 'subnets', 'subnet', { network_id: net.id, ip_version: 6, cidr: 'fd70::/64', ipv6_ra_mode: 'dhcpv6-stateful', ipv6_address_mode: 'dhcpv6-stateful', dns_nameservers: ['fd70::53'] });
  const less = await create(call, 'subnets', 'subnet', { network_id: net.id, ip_version: 6, cidr: 'fd71::/64', ipv6_ra_mode: 'dhcpv6-stateless', ipv6_address_mode: 'dhcpv6-stateless' });
  const slaac = await create(call, 'subnets', 'subnet', { network_id: net.id, ip_version: 6, cidr: 'fd72::/64', ipv6_ra_mode: 'slaac', ipv6_address_mode: 'slaac' });
  const router = await create(call, 'routers', 'router', { name: 'v6-r' });
  const itfs = [];
  for (const s of [full, slaac]) {
    const r = await call('PUT', `/routers/${router.id}/add_router_interface`, { body: { subnet_id: s.id } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    itfs.push(r.body);
  }
  const vm = await create(call, 'ports', 'port', { network_id: net.id, device_id: 'srv-v6', device_owner: 'compute:nova', 'binding:host_id': 'v6-h1' });
  const vmIp = (s: { id: string }) => vm.fixed_ips.find((f: { subnet_id: string }) => f.subnet_id === s.id)?.ip_address;
  assert.ok(vmIp(full) && vmIp(less) && vmIp(slaac), JSON.stringify(vm.fixed_ips));

  // the DHCP port: an address on the stateful and the stateless subnet (dnsmasq serves both), SLAAC's as every port's
  const dhcp = (await call('GET', `/ports?network_id=${net.id}&device_owner=network:dhcp`)).body.ports[0];
  assert.ok(dhcp, 'a DHCP port on an IPv6-only network');
  const dhcpSubnets = dhcp.fixed_ips.map((f: { subnet_id: string }) => f.subnet_id);
  assert.ok(dhcpSubnets.includes(full.id) && dhcpSubnets.includes(less.id), JSON.stringify(dhcp.fixed_ips));

  let w = await watch('v6-h1', { network: {}, port: {}, security_group: {}, router: {} });
  if (!w.routers.has(router.id)) w = await watch('v6-h1', w.next);
  const spec = w.routers.get(router.id);
  assert.ok(spec, JSON.stringify(w.r));
  const byPort = new Map(spec.interfaces.map((i: { subnet_id: string }) => [i.subnet_id, i]));
  assert.deepEqual(byPort.get(full.id), {
    port_id: itfs[0].port_id, network_id: net.id, subnet_id: full.id, mac_address: (await call('GET', `/ports/${itfs[0].port_id}`)).body.port.mac_address,
    ip_address: full.gateway_ip, prefixlen: 64, cidr: 'fd70::/64', ipv6_ra_mode: 'dhcpv6-stateful', dns_nameservers: ['fd70::53'],
  });
  assert.deepEqual([(byPort.get(slaac.id) as any).cidr, (byPort.get(slaac.id) as any).ipv6_ra_mode], ['fd72::/64', 'slaac']);

  const n = (await watch('v6-h1', { network: {}, port: {}, security_group: {}, router: {} })).networks.get(net.id);
  assert.ok(n.dhcp, 'the host serves the network\'s DHCP');
  assert.deepEqual(n.dhcp.fixed_ips.map((f: { subnet_id: string }) => f.subnet_id).sort(), [full.id, less.id].sort());
  const hosts = n.dhcp.hosts.filter((h: { port_id: string }) => h.port_id === vm.id).map((h: { subnet_id: string; ip_address: string }) => [h.subnet_id, h.ip_address]);
  assert.deepEqual(hosts.sort(), [[full.id, vmIp(full)], [less.id, vmIp(less)]].sort());

  // a DHCPv6 subnet added later: the DHCP port gets its address at the next bind
  const later = await create(call, 'subnets', 'subnet', { network_id: net.id, ip_version: 6, cidr: 'fd73::/64', ipv6_address_mode: 'dhcpv6-stateful', ipv6_ra_mode: 'dhcpv6-stateful' });
  await create(call, 'ports', 'port', { network_id: net.id, device_id: 'srv-v6b', device_owner: 'compute:nova', 'binding:host_id': 'v6-h1' });
  const dhcp2 = (await call('GET', `/ports/${dhcp.id}`)).body.port;
  assert.ok(dhcp2.fixed_ips.some((f: { subnet_id: string }) => f.subnet_id === later.id), JSON.stringify(dhcp2.fixed_ips));
  // an IPv6 subnet with no mode is dnsmasq's too (as Neutron serves it); one with only an RA mode is not
  const plain = await create(call, 'subnets', 'subnet', { network_id: net.id, ip_version: 6, cidr: 'fd74::/64' });
  const raOnly = await create(call, 'subnets', 'subnet', { network_id: net.id, ip_version: 6, cidr: 'fd75::/64', ipv6_ra_mode: 'dhcpv6-stateful' });
  await create(call, 'ports', 'port', { network_id: net.id, device_id: 'srv-v6c', device_owner: 'compute:nova', 'binding:host_id': 'v6-h1' });
  const dhcp3 = (await call('GET', `/ports/${dhcp.id}`)).body.port.fixed_ips.map((f: { subnet_id: string }) => f.subnet_id);
  assert.ok(dhcp3.includes(plain.id) && !dhcp3.includes(raOnly.id), JSON.stringify(dhcp3));
});

test('a router moves off a host that is down to the next router host that watches; the old host, back, finds it gone', async () => {
  await register('fo-a', '198.51.100.31', { network: [], port: [], security_group: [], router: [] });
  await register('fo-b', '198.51.100.32', { network: [], port: [], security_group: [], router: [] });
  const net = await create(call, 'networks', 'network', { name: 'fo-tenant' });
  const sub = await create(call, 'subnets', 'subnet', { network_id: net.id, cidr: '10.93.0.0/24', ip_version: 4 });
  const router = await create(call, 'routers', 'router', { name: 'fo-r' });
  const itf = (await call('PUT', `/routers/${router.id}/add_router_interface`, { body: { subnet_id: sub.id } })).body;
  const kinds = (): Known => ({ network: {}, port: {}, security_group: {}, router: {} });
  const a1 = await watch('fo-a', kinds());
  const a = a1.routers.has(router.id) ? a1 : await watch('fo-a', a1.next);
  assert.ok(a.routers.has(router.id), 'claimed by the first router host to watch');
  // a host that is up keeps its router
  const b1 = await watch('fo-b', kinds());
  assert.ok(!b1.routers.has(router.id) && !(await watch('fo-b', b1.next)).routers.has(router.id));
  assert.equal((await call('GET', `/ports/${itf.port_id}`)).body.port['binding:host_id'], 'fo-a');

  // fo-a's agent stops: not heard from for longer than the service down time
  const db = cloud.server.database.db;
  await db.updateTable('compute_hosts').set({ last_seen_at: new Date(Date.now() - 600_000).toISOString() }).where('hostname', '=', 'fo-a').execute();
  const b2 = await watch('fo-b', b1.next);
  const b = b2.routers.has(router.id) ? b2 : await watch('fo-b', b2.next);
  assert.ok(b.routers.has(router.id), 'fo-b took the router over');
  assert.deepEqual(b.routers.get(router.id).interfaces.map((i: any) => i.port_id), [itf.port_id]);
  assert.ok(b.networks.has(net.id) || (await watch('fo-b', kinds())).networks.has(net.id), 'the router\'s network follows it');
  assert.equal((await call('GET', `/ports/${itf.port_id}`)).body.port['binding:host_id'], 'fo-b');

  // fo-a comes back: its watch hands the router out as gone, and it does not take it back
  await register('fo-a', '198.51.100.31', { network: [], port: [], security_group: [], router: [] });
  const back = await watch('fo-a', a.next);
  assert.ok(back.r.gone.some((g: any) => g.kind === 'router' && g.id === router.id), JSON.stringify(back.r.gone));
  assert.ok(!(await watch('fo-a', back.next)).routers.has(router.id));
  assert.equal((await call('GET', `/ports/${itf.port_id}`)).body.port['binding:host_id'], 'fo-b');
});
