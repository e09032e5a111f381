// IPv6 in the data plane's files: radvd.conf per router (flags and prefixes
// by ipv6_ra_mode, as Neutron's L3 agent writes them), dnsmasq's DHCPv6
// ranges, hosts and options, and the ports' DHCPv6 rules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { radvdConfig } from '../../src/agent/drivers/network/radvd.ts';
import { dnsmasqArgs, hostsFile, optsFile } from '../../src/agent/drivers/network/dhcp.ts';
import { portPieces } from '../../src/agent/drivers/network/rules.ts';
import { ResourceFailure } from '../../src/agent/errors.ts';
import { dnsmasqServes, type DhcpSpec, type NetworkSpec, type PortSpec, type SubnetSpec } from '../../src/network/protocol.ts';

test('radvd.conf: SLAAC autonomous, stateful managed without autonomy, stateless other-config with autonomy', () => {
  const text = radvdConfig([
    { name: 'qr-bbbb', mtu: 1450, prefixes: [{ cidr: '2001:db8:2::/64', mode: 'dhcpv6-stateful' }], dns_nameservers: ['2001:db8::53', '10.0.0.53'] },
    { name: 'qr-aaaa', mtu: 1450, prefixes: [{ cidr: '2001:db8:1:0::/64', mode: 'slaac' }], dns_nameservers: [] },
    { name: 'qr-cccc', mtu: 1000, prefixes: [{ cidr: '2001:db8:3::/64', mode: 'dhcpv6-stateless' }], dns_nameservers: [] },
    { name: 'qr-dddd', mtu: 1450, prefixes: [], dns_nameservers: [] },
  ]);
  assert.equal(text, [
    'interface qr-aaaa', '{', '    AdvSendAdvert on;', '    MinRtrAdvInterval 30;', '    MaxRtrAdvInterval 100;', '    AdvLinkMTU 1450;',
    '    prefix 2001:db8:1::/64', '    {', '        AdvOnLink on;', '        AdvAutonomous on;', '    };', '};',
    'interface qr-bbbb', '{', '    AdvSendAdvert on;', '    MinRtrAdvInterval 30;', '    MaxRtrAdvInterval 100;', '    AdvLinkMTU 1450;',
    '    AdvManagedFlag on;', '    RDNSS 2001:db8::53 {};',
    '    prefix 2001:db8:2::/64', '    {', '        AdvOnLink on;', '        AdvAutonomous off;', '    };', '};',
    // below IPv6's minimum MTU: not advertised
    'interface qr-cccc', '{', '    AdvSendAdvert on;', '    MinRtrAdvInterval 30;', '    MaxRtrAdvInterval 100;',
    '    AdvOtherConfigFlag on;',
    '    prefix 2001:db8:3::/64', '    {', '        AdvOnLink on;', '        AdvAutonomous on;', '    };', '};',
    '',
  ].join('\n'));
  assert.equal(radvdConfig([]), '');
  assert.equal(radvdConfig([{ name: 'qr-x', mtu: 1450, prefixes: [], dns_nameservers: [] }]), '');
});

test('radvd.conf refuses words that are not a prefix, a mode or a device name', () => {
  const bad = (e: unknown) => e instanceof ResourceFailure && e.code === 'spec_invalid';
  assert.throws(() => radvdConfig([{ name: 'qr-a', mtu: 1450, prefixes: [{ cidr: '10.0.0.0/24', mode: 'slaac' }], dns_nameservers: [] }]), bad);
  assert.throws(() => radvdConfig([{ name: 'qr-a', mtu: 1450, prefixes: [{ cidr: '2001:db8::/64; };', mode: 'slaac' }], dns_nameservers: [] }]), bad);
  assert.throws(() => radvdConfig([{ name: 'qr-a', mtu: 1450, prefixes: [{ cidr: '2001:db8::/64', mode: 'on; }' as 'slaac' }], dns_nameservers: [] }]), bad);
  assert.throws(() => radvdConfig([{ name: 'qr-a {', mtu: 1450, prefixes: [{ cidr: '2001:db8::/64', mode: 'slaac' }], dns_nameservers: [] }]), bad);
});

const subnet = (id: string, cidr: string, mode: SubnetSpec['ipv6_address_mode']): SubnetSpec => ({
  id, name: id, cidr, ip_version: cidr.includes(':') ? 6 : 4, gateway_ip: null, enable_dhcp: true, dns_nameservers: [], host_routes: [], allocation_pools: [],
  ipv6_ra_mode: mode, ipv6_address_mode: mode,
});

test('dnsmasq: static DHCPv6 ranges for stateful and stateless subnets, none for SLAAC; hosts for stateful addresses only', () => {
  const spec = {
    subnets: [subnet('v4', '10.0.0.0/24', null), subnet('full', '2001:db8:2::/64', 'dhcpv6-stateful'), subnet('less', '2001:db8:3::/64', 'dhcpv6-stateless'), subnet('sl', '2001:db8:1::/64', 'slaac')],
    mtu: 1450,
  } as NetworkSpec;
  const dhcp: DhcpSpec = {
    port_id: 'dhcpport-1', mac_address: 'fa:16:3e:00:00:01', dns_domain: 'openstacklocal.', lease_seconds: 600,
    fixed_ips: [{ subnet_id: 'v4', ip_address: '10.0.0.2' }, { subnet_id: 'full', ip_address: '2001:db8:2::2' }, { subnet_id: 'less', ip_address: '2001:db8:3::f816:3eff:fe00:1' }],
    hosts: [
      { port_id: 'p', mac_address: 'fa:16:3e:00:00:02', ip_address: '2001:db8:2::10', subnet_id: 'full', hostname: 'vm1' },
      { port_id: 'p', mac_address: 'fa:16:3e:00:00:02', ip_address: '2001:db8:3::f816:3eff:fe00:2', subnet_id: 'less', hostname: 'vm1' },
      { port_id: 'p', mac_address: 'fa:16:3e:00:00:02', ip_address: '10.0.0.10', subnet_id: 'v4', hostname: 'vm1' },
    ],
  };
  const ranges = dnsmasqArgs('/d', spec, dhcp).filter((a) => a.startsWith('--dhcp-range='));
  assert.deepEqual(ranges, [
    '--dhcp-range=set:s0,10.0.0.0,static,255.255.255.0,600s',
    '--dhcp-range=set:s1,2001:db8:2::,static,64,600s',
    '--dhcp-range=set:s2,2001:db8:3::,static,64,600s',
  ]);
  assert.equal(hostsFile(spec, dhcp), 'fa:16:3e:00:00:02,set:s0,10.0.0.10,vm1,600\nfa:16:3e:00:00:02,set:s1,[2001:db8:2::10],vm1,600\n');
  const opts = optsFile(spec, dhcp).split('\n');
  assert.ok(opts.includes('tag:s1,option6:dns-server,[2001:db8:2::2]'), opts.join('\n'));
  assert.ok(opts.includes('tag:s2,option6:dns-server,[2001:db8:3::f816:3eff:fe00:1]'));
  assert.ok(opts.includes('tag:s1,option6:domain-search,openstacklocal'));
});

test('a port with port security lets DHCPv6 out to servers and answers in, never a DHCPv6 server out', () => {
  const p = { mac_address: 'fa:16:3e:00:00:02', fixed_ips: [{ subnet_id: 'full', ip_address: '2001:db8:2::10' }], allowed_address_pairs: [], security_group_ids: [] } as unknown as PortSpec;
  const pieces = portPieces('port-1', 'tapport-1', 1, p);
  const egress = pieces.chains.find((c) => c.name.startsWith('e_'))!.rules;
  const ingress = pieces.chains.find((c) => c.name.startsWith('i_'))!.rules;
  assert.ok(egress.includes('meta nfproto ipv6 udp sport 546 udp dport 547 accept'));
  assert.ok(egress.includes('meta nfproto ipv6 udp sport 547 udp dport 546 drop'));
  assert.ok(ingress.includes('meta nfproto ipv6 udp sport 547 udp dport 546 accept'));
  // anti-spoofing: the fixed IPv6 address and the MAC's link-local address
  const from = pieces.chains.find((c) => c.name.startsWith('f_'))!.rules.join('\n');
  assert.match(from, /ip6 saddr \{ [^}]*2001:db8:2::10[^}]*\}/);
  assert.match(from, /ip6 saddr \{ [^}]*fe80::f816:3eff:fe00:2[^}]*\}/);
});

test('dnsmasq serves IPv4 and DHCPv6 subnets and IPv6 ones with no mode, never SLAAC nor RA-only ones (Neutron\'s DHCP agent)', () => {
  const s = (ip_version: number, ra: string | null, am: string | null, enable_dhcp = true) => dnsmasqServes({ ip_version, enable_dhcp, ipv6_ra_mode: ra, ipv6_address_mode: am });
  assert.equal(s(4, null, null), true);
  assert.equal(s(4, null, null, false), false);
  assert.equal(s(6, 'dhcpv6-stateful', 'dhcpv6-stateful'), true);
  assert.equal(s(6, null, 'dhcpv6-stateless'), true);
  assert.equal(s(6, null, null), true);
  assert.equal(s(6, null, null, false), false);
  assert.equal(s(6, 'slaac', 'slaac'), false);
  assert.equal(s(6, 'dhcpv6-stateful', null), false);
});

test('radvd.conf: a router port with several IPv6 subnets advertises each prefix on its one interface', () => {
  const text = radvdConfig([{ name: 'qr-a', mtu: 1450, prefixes: [{ cidr: 'fd81::/64', mode: 'slaac' }, { cidr: 'fd82::/64', mode: 'dhcpv6-stateful' }], dns_nameservers: [] }]);
  assert.equal(text.match(/^interface /gm)?.length, 1);
  assert.match(text, /AdvManagedFlag on;/);
  assert.match(text, /prefix fd81::\/64\n {4}\{\n {8}AdvOnLink on;\n {8}AdvAutonomous on;/);
  assert.match(text, /prefix fd82::\/64\n {4}\{\n {8}AdvOnLink on;\n {8}AdvAutonomous off;/);
});
