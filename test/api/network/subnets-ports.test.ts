// Subnets and ports over HTTP: defaults and validation of subnets (IPv4 and
// IPv6 modes), IPAM (chosen and allocated addresses, SLAAC EUI-64, taken and
// invalid addresses), MACs, port security and security groups on ports, the
// in-use rules of networks and subnets, and quotas.
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

const net = (token?: string, body: Record<string, unknown> = {}) => create(call, 'networks', 'network', { name: uniqueName('net'), ...body }, token);

test('subnets: IPv4 defaults, validation with Neutron\'s errors, update, in the network view', async () => {
  const n = await net(alice.token);
  const s = await create(call, 'subnets', 'subnet', { network_id: n.id, ip_version: 4, cidr: '10.1.0.0/24', name: 's4' }, alice.token);
  assert.equal(s.gateway_ip, '10.1.0.1');
  assert.deepEqual(s.allocation_pools, [{ start: '10.1.0.2', end: '10.1.0.254' }]);
  assert.equal(s.enable_dhcp, true);
  assert.equal(s.ipv6_ra_mode, null);
  assert.deepEqual(s.dns_nameservers, []);
  assert.deepEqual(s.host_routes, []);
  assert.equal(s.project_id, alice.projectId);
  assert.deepEqual((await call('GET', `/networks/${n.id}`, { token: alice.token })).body.network.subnets, [s.id]);
  const bad = (body: Record<string, unknown>) => call('POST', '/subnets', { token: alice.token, body: { subnet: { network_id: n.id, ip_version: 4, ...body } } });
  assertNeutronError(await bad({ cidr: '10.1.0.0/33' }), 400, 'HTTPBadRequest', /not a valid IP subnet/);
  assertNeutronError(await bad({ cidr: 'banana' }), 400);
  assertNeutronError(await bad({ cidr: '10.1.0.128/25' }), 400, 'InvalidInput', /overlaps with another subnet/);
  assertNeutronError(await bad({ cidr: '10.2.0.0/24', gateway_ip: '10.2.0.5', allocation_pools: [{ start: '10.2.0.2', end: '10.2.0.10' }] }), 409, 'GatewayConflictWithAllocationPools');
  assertNeutronError(await bad({ cidr: '10.2.0.0/24', allocation_pools: [{ start: '10.2.0.2', end: '10.2.1.10' }] }), 400, 'OutOfBoundsAllocationPool');
  assertNeutronError(await bad({ cidr: '10.2.0.0/24', allocation_pools: [{ start: '10.2.0.20', end: '10.2.0.10' }] }), 400, 'InvalidAllocationPool');
  assertNeutronError(await bad({ cidr: '10.2.0.0/24', allocation_pools: [{ start: '10.2.0.2', end: '10.2.0.20' }, { start: '10.2.0.10', end: '10.2.0.30' }] }), 409, 'OverlappingAllocationPools');
  assertNeutronError(await bad({ cidr: 'fd00::/64' }), 400, 'InvalidInput');
  assertNeutronError(await bad({ cidr: '10.2.0.0/24', ipv6_address_mode: 'slaac' }), 400, 'InvalidInput');
  assertNeutronError(await bad({ cidr: '10.2.0.0/24', dns_nameservers: ['8.8.8.8', '8.8.8.8'] }), 400);
  assertNeutronError(await bad({ cidr: '10.2.0.0/24', bogus: 1 }), 400);
  assertNeutronError(await call('POST', '/subnets', { token: bob.token, body: { subnet: { network_id: n.id, ip_version: 4, cidr: '10.3.0.0/24' } } }), 404, 'NetworkNotFound');

  const noGw = await create(call, 'subnets', 'subnet', { network_id: n.id, ip_version: 4, cidr: '10.2.0.0/28', gateway_ip: null, dns_nameservers: ['1.1.1.1'], host_routes: [{ destination: '192.168.0.0/16', nexthop: '10.2.0.3' }] }, alice.token);
  assert.equal(noGw.gateway_ip, null);
  assert.deepEqual(noGw.allocation_pools, [{ start: '10.2.0.1', end: '10.2.0.14' }]);
  const up = await call('PUT', `/subnets/${s.id}`, { token: alice.token, body: { subnet: { name: 'renamed', allocation_pools: [{ start: '10.1.0.100', end: '10.1.0.200' }] } } });
  assert.equal(up.status, 200, JSON.stringify(up.body));
  assert.equal(up.body.subnet.revision_number, 1);
  assert.deepEqual(up.body.subnet.allocation_pools, [{ start: '10.1.0.100', end: '10.1.0.200' }]);
  assertNeutronError(await call('PUT', `/subnets/${s.id}`, { token: alice.token, body: { subnet: { cidr: '10.9.0.0/24' } } }), 400);
  assertNeutronError(await call('PUT', `/subnets/${s.id}`, { token: alice.token, body: { subnet: { gateway_ip: '10.1.0.150' } } }), 409, 'GatewayConflictWithAllocationPools');
  assert.deepEqual((await call('GET', `/subnets?network_id=${n.id}&ip_version=4&sort_key=cidr`, { token: alice.token })).body.subnets.map((x: { id: string }) => x.id), [s.id, noGw.id]);
  assertNeutronError(await call('GET', `/subnets/${s.id}`, { token: bob.token }), 404, 'SubnetNotFound');
  assert.equal((await call('DELETE', `/networks/${n.id}`, { token: alice.token })).status, 204);
  assertNeutronError(await call('GET', `/subnets/${s.id}`, { token: alice.token }), 404, 'SubnetNotFound');
});

test('IPv6 subnets: ipv6_ra_mode and ipv6_address_mode as Neutron checks them', async () => {
  const n = await net(alice.token);
  const bad = (body: Record<string, unknown>) => call('POST', '/subnets', { token: alice.token, body: { subnet: { network_id: n.id, ip_version: 6, ...body } } });
  assertNeutronError(await bad({ cidr: 'fd61::/64', ipv6_ra_mode: 'slaac', ipv6_address_mode: 'dhcpv6-stateful' }), 400, 'InvalidInput',
    /ipv6_ra_mode set to 'slaac' with ipv6_address_mode set to 'dhcpv6-stateful' is not valid. If both attributes are set, they must be the same value/);
  assertNeutronError(await bad({ cidr: 'fd61::/64', ipv6_ra_mode: 'dhcpv6-stateless', ipv6_address_mode: 'slaac' }), 400, 'InvalidInput', /must be the same value/);
  assertNeutronError(await bad({ cidr: 'fd61::/64', ipv6_address_mode: 'slaac', enable_dhcp: false }), 400, 'InvalidInput',
    /ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is set to False/);
  assertNeutronError(await bad({ cidr: 'fd61::/64', ipv6_ra_mode: 'dhcpv6-stateful', enable_dhcp: false }), 400, 'InvalidInput', /enable_dhcp is set to False/);
  assertNeutronError(await bad({ cidr: 'fd61::/80', ipv6_address_mode: 'dhcpv6-stateless' }), 400, 'InvalidInput', /requires the prefix to be \/64/);
  // one mode alone is Neutron's too: address mode only (RAs from a router outside), RA mode only
  const am = await create(call, 'subnets', 'subnet', { network_id: n.id, ip_version: 6, cidr: 'fd61::/64', ipv6_address_mode: 'dhcpv6-stateful' }, alice.token);
  assert.equal(am.ipv6_ra_mode, null);
  assert.equal(am.ipv6_address_mode, 'dhcpv6-stateful');
  const ra = await create(call, 'subnets', 'subnet', { network_id: n.id, ip_version: 6, cidr: 'fd62::/64', ipv6_ra_mode: 'dhcpv6-stateful' }, alice.token);
  assert.equal(ra.ipv6_address_mode, null);
  // DHCP cannot go off under IPv6 modes
  assertNeutronError(await call('PUT', `/subnets/${am.id}`, { token: alice.token, body: { subnet: { enable_dhcp: false } } }), 400, 'InvalidInput', /Cannot disable enable_dhcp with ipv6 attributes set/);
  const plain = await create(call, 'subnets', 'subnet', { network_id: n.id, ip_version: 6, cidr: 'fd63::/64' }, alice.token);
  assert.equal((await call('PUT', `/subnets/${plain.id}`, { token: alice.token, body: { subnet: { enable_dhcp: false } } })).status, 200);
});

test('a SLAAC or DHCPv6-stateless subnet gives the ports already on the network their EUI-64 address (not router interfaces)', async () => {
  const n = await net(alice.token);
  const v4 = await create(call, 'subnets', 'subnet', { network_id: n.id, ip_version: 4, cidr: '10.64.0.0/24' }, alice.token);
  const p = await create(call, 'ports', 'port', { network_id: n.id }, alice.token);
  const r = await create(call, 'routers', 'router', { name: 'auto6' }, alice.token);
  const itf = (await call('PUT', `/routers/${r.id}/add_router_interface`, { token: alice.token, body: { subnet_id: v4.id } })).body;
  const rev = (await call('GET', `/ports/${p.id}`, { token: alice.token })).body.port.revision_number;
  const v6 = await create(call, 'subnets', 'subnet', { network_id: n.id, ip_version: 6, cidr: 'fd64::/64', ipv6_ra_mode: 'slaac', ipv6_address_mode: 'slaac' }, alice.token);
  const m = p.mac_address.split(':');
  const after = (await call('GET', `/ports/${p.id}`, { token: alice.token })).body.port;
  assert.deepEqual(after.fixed_ips.find((f: { subnet_id: string }) => f.subnet_id === v6.id)?.ip_address, `fd64::f816:3eff:fe${m[3]}:${m[4]}${m[5]}`.replace(/:0+([0-9a-f])/g, ':$1'));
  assert.ok(after.revision_number > rev);
  const rp = (await call('GET', `/ports/${itf.port_id}`, { token: alice.token })).body.port;
  assert.deepEqual(rp.fixed_ips.map((f: { subnet_id: string }) => f.subnet_id), [v4.id], 'a router interface has exactly the subnets attached to it');
  // the subnet's delete takes those addresses with it
  assert.equal((await call('DELETE', `/subnets/${v6.id}`, { token: alice.token })).status, 204);
  assert.deepEqual((await call('GET', `/ports/${p.id}`, { token: alice.token })).body.port.fixed_ips.map((f: { subnet_id: string }) => f.subnet_id), [v4.id]);
  assert.equal((await call('PUT', `/routers/${r.id}/remove_router_interface`, { token: alice.token, body: { subnet_id: v4.id } })).status, 200);
});

test('ports: allocated and chosen addresses, MACs, SLAAC, errors, in-use networks and subnets', async () => {
  const n = await net(alice.token);
  const v4 = await create(call, 'subnets', 'subnet', { network_id: n.id, ip_version: 4, cidr: '10.10.0.0/24' }, alice.token);
  const v6 = await create(call, 'subnets', 'subnet', { network_id: n.id, ip_version: 6, cidr: 'fd00:10::/64', ipv6_ra_mode: 'slaac', ipv6_address_mode: 'slaac' }, alice.token);
  assert.equal(v6.gateway_ip, 'fd00:10::1');
  const p = await create(call, 'ports', 'port', { network_id: n.id, name: 'p1' }, alice.token);
  assert.match(p.mac_address, /^fa:16:3e(:[0-9a-f]{2}){3}$/);
  assert.equal(p.status, 'DOWN');
  assert.equal(p.admin_state_up, true);
  assert.equal(p.port_security_enabled, true);
  assert.equal(p.security_groups.length, 1);
  assert.equal(p['binding:vnic_type'], 'normal');
  assert.equal(p['binding:host_id'], undefined, 'binding details are for admins');
  const byIp = Object.fromEntries(p.fixed_ips.map((f: { subnet_id: string; ip_address: string }) => [f.subnet_id, f.ip_address]));
  assert.equal(byIp[v4.id], '10.10.0.2');
  // EUI-64: fa:16:3e:aa:bb:cc -> f816:3eff:feaa:bbcc
  const m = p.mac_address.split(':');
  assert.equal(byIp[v6.id], `fd00:10::f816:3eff:fe${m[3]}:${m[4]}${m[5]}`.replace(/:0+([0-9a-f])/g, ':$1'));
  const asAdmin = (await call('GET', `/ports/${p.id}`)).body.port;
  assert.equal(asAdmin['binding:vif_type'], 'unbound');
  assert.deepEqual(asAdmin['binding:profile'], {});

  const chosen = await create(call, 'ports', 'port', { network_id: n.id, fixed_ips: [{ ip_address: '10.10.0.50' }] }, alice.token);
  assert.ok(chosen.fixed_ips.some((f: { ip_address: string }) => f.ip_address === '10.10.0.50'));
  const bySubnet = await create(call, 'ports', 'port', { network_id: n.id, fixed_ips: [{ subnet_id: v4.id }] }, alice.token);
  assert.ok(bySubnet.fixed_ips.some((f: { ip_address: string }) => f.ip_address === '10.10.0.3'));
  const post = (body: Record<string, unknown>, token = alice.token) => call('POST', '/ports', { token, body: { port: { network_id: n.id, ...body } } });
  assertNeutronError(await post({ fixed_ips: [{ ip_address: '10.10.0.50' }] }), 409, 'IpAddressAlreadyAllocated');
  assertNeutronError(await post({ fixed_ips: [{ ip_address: '10.99.0.5' }] }), 400, 'InvalidIpForNetwork');
  assertNeutronError(await post({ fixed_ips: [{ subnet_id: v4.id, ip_address: '10.11.0.5' }] }), 400, 'InvalidIpForSubnet');
  assertNeutronError(await post({ fixed_ips: [{ ip_address: '10.10.0.255' }] }), 400, 'InvalidIpForSubnet');
  assertNeutronError(await post({ fixed_ips: [{ ip_address: 'nope' }] }), 400);
  assertNeutronError(await post({ fixed_ips: [{ subnet_id: 'no-such-subnet' }] }), 400, 'InvalidInput');
  assertNeutronError(await post({ mac_address: p.mac_address }), 409, 'MacAddressInUse');
  assertNeutronError(await post({ mac_address: 'zz:zz' }), 400);
  assertNeutronError(await post({ 'binding:host_id': 'h1' }), 403, 'PolicyNotAuthorized');
  assertNeutronError(await post({ port_security_enabled: false, security_groups: [p.security_groups[0]] }), 400, 'PortSecurityAndIPRequiredForSecurityGroups');
  assertNeutronError(await post({ port_security_enabled: false, allowed_address_pairs: [{ ip_address: '10.0.0.9' }] }), 409, 'AddressPairAndPortSecurityRequired');
  assertNeutronError(await post({ dns_name: '-bad-' }), 400);
  assertNeutronError(await post({}, bob.token), 404, 'NetworkNotFound');

  // an admin binds a port; updates move addresses; revision and If-Match hold for ports too
  const bound = await call('PUT', `/ports/${p.id}`, { body: { port: { 'binding:host_id': 'host-1', 'binding:profile': { a: 1 }, device_id: 'vm-1', device_owner: 'compute:nova' } } });
  assert.equal(bound.status, 200, JSON.stringify(bound.body));
  assert.equal(bound.body.port['binding:host_id'], 'host-1');
  const moved = await call('PUT', `/ports/${chosen.id}`, { token: alice.token, headers: { 'If-Match': `revision_number=${chosen.revision_number}` }, body: { port: { fixed_ips: [{ ip_address: '10.10.0.60' }], dns_name: 'web-1', allowed_address_pairs: [{ ip_address: '10.10.0.200' }] } } });
  assert.equal(moved.status, 200, JSON.stringify(moved.body));
  const ips = moved.body.port.fixed_ips.map((f: { ip_address: string }) => f.ip_address);
  assert.ok(ips.includes('10.10.0.60') && !ips.includes('10.10.0.50'), JSON.stringify(ips));
  assert.equal(ips.length, 2, 'the SLAAC address stays');
  assert.equal(moved.body.port.dns_name, 'web-1');
  assert.deepEqual(moved.body.port.allowed_address_pairs, [{ ip_address: '10.10.0.200', mac_address: chosen.mac_address }]);
  assert.equal(moved.body.port.dns_assignment[0].hostname, 'web-1');
  // the released address is free again
  const reuse = await create(call, 'ports', 'port', { network_id: n.id, fixed_ips: [{ ip_address: '10.10.0.50' }] }, alice.token);
  const filtered = await call('GET', `/ports?fixed_ips=ip_address=10.10.0.50&network_id=${n.id}`, { token: alice.token });
  assert.deepEqual(filtered.body.ports.map((x: { id: string }) => x.id), [reuse.id]);
  assertNeutronError(await call('PUT', `/ports/${p.id}`, { token: alice.token, body: { port: { port_security_enabled: false } } }), 409, 'PortSecurityPortHasSecurityGroup');
  const insecure = await call('PUT', `/ports/${p.id}`, { token: alice.token, body: { port: { port_security_enabled: false, security_groups: [] } } });
  assert.equal(insecure.status, 200, JSON.stringify(insecure.body));
  assert.deepEqual(insecure.body.port.security_groups, []);

  // a SLAAC subnet goes with its ports' derived addresses; the ports stay
  const slaacOnly = await create(call, 'ports', 'port', { network_id: n.id, fixed_ips: [{ subnet_id: v6.id }] }, alice.token);
  assert.equal(slaacOnly.fixed_ips.length, 1);
  // in use: nothing of the network goes while a port holds an address
  assertNeutronError(await call('DELETE', `/networks/${n.id}`, { token: alice.token }), 409, 'NetworkInUse');
  assertNeutronError(await call('DELETE', `/subnets/${v4.id}`, { token: alice.token }), 409, 'SubnetInUse');
  assert.equal((await call('GET', `/subnets/${v4.id}`, { token: alice.token })).status, 200, 'the subnet is still there');
  assert.equal((await call('DELETE', `/subnets/${v6.id}`, { token: alice.token })).status, 204);
  assert.deepEqual((await call('GET', `/ports/${slaacOnly.id}`, { token: alice.token })).body.port.fixed_ips, []);
  assert.ok((await call('GET', `/ports/${p.id}`, { token: alice.token })).body.port.fixed_ips.every((f: { subnet_id: string }) => f.subnet_id === v4.id));
  for (const x of [p, chosen, bySubnet, reuse, slaacOnly]) assert.equal((await call('DELETE', `/ports/${x.id}`, { token: alice.token })).status, 204);
  assertNeutronError(await call('GET', `/ports/${p.id}`, { token: alice.token }), 404, 'PortNotFound');
  assert.equal((await call('DELETE', `/subnets/${v4.id}`, { token: alice.token })).status, 204);
  assert.equal((await call('DELETE', `/networks/${n.id}`, { token: alice.token })).status, 204);
});

test('ports on a shared network: another project gets addresses but cannot choose them; the owner sees its ports', async () => {
  const n = await net(undefined, { shared: true, project_id: alice.projectId });
  await create(call, 'subnets', 'subnet', { network_id: n.id, ip_version: 4, cidr: '10.20.0.0/24' });
  const p = await create(call, 'ports', 'port', { network_id: n.id }, bob.token);
  assert.equal(p.project_id, bob.projectId);
  assert.equal(p.fixed_ips.length, 1);
  assertNeutronError(await call('POST', '/ports', { token: bob.token, body: { port: { network_id: n.id, fixed_ips: [{ ip_address: '10.20.0.77' }] } } }), 403, 'PolicyNotAuthorized');
  assert.ok((await call('GET', `/ports?network_id=${n.id}`, { token: alice.token })).body.ports.some((x: { id: string }) => x.id === p.id));
  assert.equal((await call('DELETE', `/ports/${p.id}`, { token: bob.token })).status, 204);
  assert.equal((await call('DELETE', `/networks/${n.id}`)).status, 204);
});

test('dns_name and dns_domain: DNS names only, refused with Neutron\'s messages (they end up in dnsmasq\'s files)', async () => {
  const bodyOf = (r: { status: number; body: any }) => ({ status: r.status, ...r.body });
  const refused = (attr: string, reason: string) => ({
    status: 400, NeutronError: { type: 'HTTPBadRequest', message: `Invalid input for ${attr}. Reason: ${reason}.`, detail: '' },
  });
  // a network's dns_domain: an FQDN with room for a label
  const badDomains: Array<[string, string]> = [
    ['example.org', "'example.org' is not a FQDN"],
    ['a\nb.', "'a\nb.' not a valid PQDN or FQDN. Reason: Name 'a\nb' must be 1-63 characters long, each of which can only be alphanumeric or a hyphen"],
    ['evil.org,10.0.0.0/8.', "'evil.org,10.0.0.0/8.' not a valid PQDN or FQDN. Reason: Name 'org,10' must be 1-63 characters long, each of which can only be alphanumeric or a hyphen"],
    ['a..b.', "'a..b.' not a valid PQDN or FQDN. Reason: Encountered an empty component"],
    [`${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(62)}.`, `'${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(62)}.' contains 255 characters. Adding a sub-domain will cause it to exceed the maximum length of a FQDN of '255'`],
  ];
  for (const [domain, reason] of badDomains) {
    assert.deepEqual(bodyOf(await call('POST', '/networks', { token: alice.token, body: { network: { name: 'dns', dns_domain: domain } } })), refused('dns_domain', reason), domain);
  }
  const n = await net(alice.token, { dns_domain: 'corp.example.org.' });
  assert.equal(n.dns_domain, 'corp.example.org.');
  assert.deepEqual(bodyOf(await call('PUT', `/networks/${n.id}`, { token: alice.token, body: { network: { dns_domain: 'x #y.' } } })),
    refused('dns_domain', "'x #y.' not a valid PQDN or FQDN. Reason: Name 'x #y' must be 1-63 characters long, each of which can only be alphanumeric or a hyphen"));
  const cleared = await call('PUT', `/networks/${n.id}`, { token: alice.token, body: { network: { dns_domain: '' } } });
  assert.equal(cleared.status, 200, JSON.stringify(cleared.body));
  assert.equal(cleared.body.network.dns_domain, '');
  await create(call, 'subnets', 'subnet', { network_id: n.id, ip_version: 4, cidr: '10.53.0.0/24' }, alice.token);

  // a port's dns_name: a PQDN or FQDN of RFC 1123 labels
  const badNames: Array<[string, string]> = [
    ['x\nfa:16:3e:99:99:99,10.53.0.1,gw', "Name 'x\nfa:16:3e:99:99:99,10' must be 1-63 characters long, each of which can only be alphanumeric or a hyphen"],
    ['a b', "Name 'a b' must be 1-63 characters long, each of which can only be alphanumeric or a hyphen"],
    ['web#1', "Name 'web#1' must be 1-63 characters long, each of which can only be alphanumeric or a hyphen"],
    ['-web', "Name '-web' must not start or end with a hyphen"],
    ['web.123', "TLD '123' must not be all numeric"],
    ['x'.repeat(64), `Name '${'x'.repeat(64)}' must be 1-63 characters long, each of which can only be alphanumeric or a hyphen`],
    ['a.'.repeat(128) + 'b', `'${'a.'.repeat(128)}b' exceeds the 255 character FQDN limit`],
  ];
  for (const [name, reason] of badNames) {
    const r = await call('POST', '/ports', { token: alice.token, body: { port: { network_id: n.id, dns_name: name } } });
    assert.deepEqual(bodyOf(r), refused('dns_name', `'${name}' not a valid PQDN or FQDN. Reason: ${reason}`), name);
  }
  for (const name of ['web-1', 'WEB1', 'web.example.org.', 'web.example.org', 'web.', '']) {
    const p = await create(call, 'ports', 'port', { network_id: n.id, dns_name: name }, alice.token);
    assert.equal(p.dns_name, name);
    const bad = await call('PUT', `/ports/${p.id}`, { token: alice.token, body: { port: { dns_name: 'a,b' } } });
    assert.deepEqual(bodyOf(bad), refused('dns_name', "'a,b' not a valid PQDN or FQDN. Reason: Name 'a,b' must be 1-63 characters long, each of which can only be alphanumeric or a hyphen"));
    assert.equal((await call('GET', `/ports/${p.id}`, { token: alice.token })).body.port.dns_name, name, 'unchanged');
    assert.equal((await call('DELETE', `/ports/${p.id}`, { token: alice.token })).status, 204);
  }
});

test('IPAM under concurrency: 50 ports at once on a /27 get distinct addresses and MACs; the rest is IpAddressGenerationFailure', async () => {
  const n = await net(alice.token);
  const s = await create(call, 'subnets', 'subnet', { network_id: n.id, ip_version: 4, cidr: '10.30.0.0/27' }, alice.token);
  const results = await Promise.all(Array.from({ length: 50 }, () => call('POST', '/ports', { token: alice.token, body: { port: { network_id: n.id } } })));
  const made = results.filter((r) => r.status === 201).map((r) => r.body.port);
  const refused = results.filter((r) => r.status !== 201);
  // a /27 has 30 hosts, less the gateway: 29 addresses
  assert.equal(made.length, 29, JSON.stringify(refused.map((r) => r.body)));
  for (const r of refused) assertNeutronError(r, 409, 'IpAddressGenerationFailure');
  const ips = made.map((p) => p.fixed_ips[0].ip_address);
  assert.equal(new Set(ips).size, 29);
  assert.equal(new Set(made.map((p) => p.mac_address)).size, 29);
  assert.ok(!ips.includes('10.30.0.1') && !ips.includes('10.30.0.0') && !ips.includes('10.30.0.31'));
  const listed = await call('GET', `/ports?network_id=${n.id}`, { token: alice.token });
  assert.equal(listed.body.ports.length, 29, 'no port without its address was left behind');
  void s;
  await Promise.all(made.map((p) => call('DELETE', `/ports/${p.id}`, { token: alice.token })));
  assert.equal((await call('DELETE', `/networks/${n.id}`, { token: alice.token })).status, 204);
});

test('bulk create: networks, subnets and ports several at once; all or nothing', async () => {
  const nets = await call('POST', '/networks', { token: alice.token, body: { networks: [{ name: uniqueName('bulk') }, { name: uniqueName('bulk') }] } });
  assert.equal(nets.status, 201, JSON.stringify(nets.body));
  assert.equal(nets.body.networks.length, 2);
  const [a, b] = nets.body.networks;
  const subnets = await call('POST', '/subnets', { token: alice.token, body: { subnets: [
    { network_id: a.id, ip_version: 4, cidr: '10.60.0.0/24' }, { network_id: b.id, ip_version: 4, cidr: '10.61.0.0/24' },
  ] } });
  assert.equal(subnets.status, 201, JSON.stringify(subnets.body));
  const ports = await call('POST', '/ports', { token: alice.token, body: { ports: [{ network_id: a.id }, { network_id: b.id }] } });
  assert.equal(ports.status, 201, JSON.stringify(ports.body));
  assert.deepEqual(ports.body.ports.map((p: { fixed_ips: Array<{ ip_address: string }> }) => p.fixed_ips[0]!.ip_address), ['10.60.0.2', '10.61.0.2']);
  // the second item fails: the first is not left behind
  const before = (await call('GET', `/ports?network_id=${a.id}`, { token: alice.token })).body.ports.length;
  const failed = await call('POST', '/ports', { token: alice.token, body: { ports: [{ network_id: a.id }, { network_id: a.id, fixed_ips: [{ ip_address: '10.60.0.2' }] }] } });
  assertNeutronError(failed, 409, 'IpAddressAlreadyAllocated');
  assert.equal((await call('GET', `/ports?network_id=${a.id}`, { token: alice.token })).body.ports.length, before);
  assertNeutronError(await call('POST', '/networks', { token: alice.token, body: { networks: [] } }), 400);
  for (const p of ports.body.ports) assert.equal((await call('DELETE', `/ports/${p.id}`, { token: alice.token })).status, 204);
  for (const n of [a, b]) assert.equal((await call('DELETE', `/networks/${n.id}`, { token: alice.token })).status, 204);
});
