// Names in dnsmasq's files: the agent writes none that could end or split a
// line or field (a row stored before the API validated dns_name and dns_domain,
// or written around it); the host keeps its lease under its default name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addnHostsFile, dnsmasqArgs, dnsmasqSafeName, hostsFile, optsFile, saneDhcp } from '../../src/agent/drivers/network/dhcp.ts';
import type { DhcpSpec, NetworkSpec, SubnetSpec } from '../../src/network/protocol.ts';

const subnet: SubnetSpec = {
  id: 'v4', name: 'v4', cidr: '10.0.0.0/24', ip_version: 4, gateway_ip: '10.0.0.1', enable_dhcp: true, dns_nameservers: [], host_routes: [], allocation_pools: [],
  ipv6_ra_mode: null, ipv6_address_mode: null,
};
const v6: SubnetSpec = { ...subnet, id: 'v6', name: 'v6', cidr: 'fd00::/64', ip_version: 6, gateway_ip: null, ipv6_ra_mode: 'dhcpv6-stateful', ipv6_address_mode: 'dhcpv6-stateful' };
const spec = { subnets: [subnet, v6], mtu: 1450 } as NetworkSpec;

const dhcp = (hostname: string, domain = 'example.org.'): DhcpSpec => ({
  port_id: 'dhcp', mac_address: 'fa:16:3e:00:00:01', dns_domain: domain, lease_seconds: 600,
  fixed_ips: [{ subnet_id: 'v4', ip_address: '10.0.0.2' }, { subnet_id: 'v6', ip_address: 'fd00::2' }],
  hosts: [
    { port_id: 'good', mac_address: 'fa:16:3e:00:00:02', ip_address: '10.0.0.10', subnet_id: 'v4', hostname: 'web-1' },
    { port_id: 'evil', mac_address: 'fa:16:3e:00:00:03', ip_address: '10.0.0.11', subnet_id: 'v4', hostname },
  ],
});

const BAD = [
  'x\nfa:16:3e:99:99:99,10.0.0.1,gw', 'x,set:s0', 'a b', 'a\tb', 'x#y', 'x\r', 'x\u0000', 'x\u0085y', 'a\u2028b', 'a/b', '',
];

test('dnsmasqSafeName: DNS names pass; whitespace, commas, #, / and control characters do not', () => {
  for (const ok of ['web-1', 'host-10-0-0-11', 'a.b.c', 'openstacklocal.', 'UPPER']) assert.ok(dnsmasqSafeName(ok), ok);
  for (const bad of BAD) assert.ok(!dnsmasqSafeName(bad), JSON.stringify(bad));
});

test('a bad hostname never reaches the hosts, addn-hosts or options files: the host keeps its lease under its default name', () => {
  for (const bad of BAD) {
    const given = dhcp(bad);
    const { dhcp: sane, refused } = saneDhcp(given);
    assert.deepEqual(refused, [`port evil hostname ${JSON.stringify(bad)}`]);
    assert.equal(sane.hosts[1]!.hostname, 'host-10-0-0-11');
    const hosts = hostsFile(spec, given);
    assert.equal(hosts, ['fa:16:3e:00:00:02,set:s0,10.0.0.10,web-1,600', 'fa:16:3e:00:00:03,set:s0,10.0.0.11,host-10-0-0-11,600', ''].join('\n'));
    const addn = addnHostsFile(given);
    assert.equal(addn, ['10.0.0.10\tweb-1.example.org web-1', '10.0.0.11\thost-10-0-0-11.example.org host-10-0-0-11', ''].join('\n'));
    // the given spec is not changed
    assert.equal(given.hosts[1]!.hostname, bad);
  }
  assert.deepEqual(saneDhcp(dhcp('web-2')).refused, [], 'good names pass as they are');
});

test('a bad dns_domain is replaced by openstacklocal. on the command line and in the options', () => {
  for (const bad of ['evil.org,10.0.0.0/8', 'a\nb.', 'x/y.', 'a #b.']) {
    const given = dhcp('web-2', bad);
    assert.deepEqual(saneDhcp(given).refused, [`dns_domain ${JSON.stringify(bad)}`]);
    const args = dnsmasqArgs('/tmp/x', spec, given);
    assert.ok(args.includes('--domain=openstacklocal'), args.join(' '));
    assert.ok(args.includes('--local=/openstacklocal/'), args.join(' '));
    assert.ok(!args.some((a) => a.includes('evil') || a.includes('\n') || a.includes('#')), args.join(' '));
    const opts = optsFile(spec, given);
    assert.ok(opts.includes('tag:s1,option6:domain-search,openstacklocal\n'), opts);
    assert.ok(!opts.includes('evil') && !opts.includes('#'), opts);
    assert.ok(addnHostsFile(given).includes('web-2.openstacklocal web-2'));
  }
});
