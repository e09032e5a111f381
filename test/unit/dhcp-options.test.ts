// Ports' extra DHCP options in dnsmasq's files (Neutron's dnsmasq driver): a
// tag per port set by its host entry, `tag:x,` ahead of the option as one
// more tag (Ironic's `tag:ipxe`/`tag:!ipxe`), numbers as they are and names
// as option:/option6:, iPXE matched by option 175, TFTP only when a port's
// boot file is fetched by TFTP; nothing that would split a line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dnsmasqArgs, formatDhcpOption, hostsFile, optsFile, wantsTftp } from '../../src/agent/drivers/network/dhcp.ts';
import type { DhcpSpec, NetworkSpec, SubnetSpec } from '../../src/network/protocol.ts';

const v4: SubnetSpec = {
  id: 'v4', name: 'v4', cidr: '10.0.0.0/24', ip_version: 4, gateway_ip: null, enable_dhcp: true, dns_nameservers: [], host_routes: [], allocation_pools: [],
  ipv6_ra_mode: null, ipv6_address_mode: null,
};
const v6: SubnetSpec = { ...v4, id: 'v6', name: 'v6', cidr: 'fd00::/64', ip_version: 6, ipv6_ra_mode: 'dhcpv6-stateful', ipv6_address_mode: 'dhcpv6-stateful' };
const spec = { subnets: [v4, v6], mtu: 1500 } as NetworkSpec;
const PXE = [
  { opt_name: 'tag:ipxe,67', opt_value: 'http://10.0.0.1:6385/boot.ipxe', ip_version: 4 as const },
  { opt_name: 'tag:!ipxe,67', opt_value: 'undionly.kpxe', ip_version: 4 as const },
  { opt_name: 'server-ip-address', opt_value: '10.0.0.2', ip_version: 4 as const },
  { opt_name: 'bootfile-url', opt_value: 'http://[fd00::1]/boot.ipxe', ip_version: 6 as const },
];
const dhcp = (opts = PXE): DhcpSpec => ({
  port_id: 'dhcp', mac_address: 'fa:16:3e:00:00:01', dns_domain: 'openstacklocal.', lease_seconds: 600,
  fixed_ips: [{ subnet_id: 'v4', ip_address: '10.0.0.2' }],
  hosts: [
    { port_id: 'bm', mac_address: '52:54:00:00:00:01', ip_address: '10.0.0.10', subnet_id: 'v4', hostname: 'bm', extra_dhcp_opts: opts },
    { port_id: 'bm', mac_address: '52:54:00:00:00:01', ip_address: 'fd00::10', subnet_id: 'v6', hostname: 'bm', extra_dhcp_opts: opts },
    { port_id: 'vm', mac_address: '52:54:00:00:00:02', ip_address: '10.0.0.11', subnet_id: 'v4', hostname: 'vm' },
  ],
});

test('formatDhcpOption: Neutron\'s forms', () => {
  assert.equal(formatDhcpOption('port-a', { opt_name: '67', opt_value: 'pxelinux.0', ip_version: 4 }), 'tag:port-a,67,pxelinux.0');
  assert.equal(formatDhcpOption('port-a', { opt_name: 'tag:!ipxe,67', opt_value: 'undionly.kpxe', ip_version: 4 }), 'tag:port-a,tag:!ipxe,67,undionly.kpxe');
  assert.equal(formatDhcpOption('port-a', { opt_name: 'tftp-server', opt_value: '10.0.0.2', ip_version: 4 }), 'tag:port-a,option:tftp-server,10.0.0.2');
  assert.equal(formatDhcpOption('port-a', { opt_name: 'bootfile-url', opt_value: 'http://x/', ip_version: 6 }), 'tag:port-a,option6:bootfile-url,http://x/');
  assert.equal(formatDhcpOption('port-a', { opt_name: 'router', opt_value: '', ip_version: 4 }), 'tag:port-a,option:router');
  for (const bad of [{ opt_name: '67', opt_value: 'a\nb' }, { opt_name: 'a\rb', opt_value: 'x' }, { opt_name: 'tag:,67', opt_value: 'x' }, { opt_name: 'tag:a,b,c', opt_value: 'x' }]) {
    assert.equal(formatDhcpOption('p', { ...bad, ip_version: 4 }), null, JSON.stringify(bad));
  }
});

test('the files: the port tagged by its host entries, its options per IP version; iPXE matched; TFTP when asked', () => {
  const d = dhcp();
  const hosts = hostsFile(spec, d).split('\n');
  assert.ok(hosts.includes('52:54:00:00:00:01,set:s0,set:port-bm,10.0.0.10,bm,600'), hosts.join('\n'));
  assert.ok(hosts.includes('52:54:00:00:00:01,set:s1,set:port-bm,[fd00::10],bm,600'));
  assert.ok(hosts.includes('52:54:00:00:00:02,set:s0,10.0.0.11,vm,600'), 'a port with no options has no tag of its own');
  const opts = optsFile(spec, d).split('\n').filter((l) => l.startsWith('tag:port-'));
  assert.deepEqual(opts, [
    'tag:port-bm,tag:ipxe,67,http://10.0.0.1:6385/boot.ipxe',
    'tag:port-bm,tag:!ipxe,67,undionly.kpxe',
    'tag:port-bm,option:server-ip-address,10.0.0.2',
    'tag:port-bm,option6:bootfile-url,http://[fd00::1]/boot.ipxe',
  ]);
  const args = dnsmasqArgs('/d', spec, d);
  assert.ok(args.includes('--dhcp-match=set:ipxe,175'));
  assert.ok(args.includes('--enable-tftp') && args.includes('--tftp-root=/d/tftp'));
  assert.ok(wantsTftp(d));
  // only HTTP boot files: no TFTP
  const http = dhcp([PXE[0]!]);
  assert.ok(!wantsTftp(http));
  assert.ok(!dnsmasqArgs('/d', spec, http).includes('--enable-tftp'));
  assert.ok(!dnsmasqArgs('/d', spec, dhcp([])).includes('--enable-tftp'));
});
