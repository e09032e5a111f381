// The metadata answers (src/metadata/render.ts) and network_data.json
// (src/network/metadata-network-data.ts), as Nova gives them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EC2_VERSIONS, normalizePath, OPENSTACK_VERSIONS, passwordToStore, renderMetadata, type ServerMetadata } from '../../src/metadata/render.ts';
import { buildNetworkData, netmaskOf, type NetworkDataSubnet } from '../../src/network/metadata-network-data.ts';

const md = (o: Partial<ServerMetadata> = {}): ServerMetadata => ({
  uuid: '6f1b0c9e-1111-4222-8333-444455556666', name: 'web', hostname: 'web', project_id: 'p1', availability_zone: 'nova', launch_index: 0,
  reservation_id: 'r-abc', meta: { role: 'front' }, keys: [{ name: 'k1', type: 'ssh', data: 'ssh-ed25519 AAAA k1' }],
  user_data: Buffer.from('#!/bin/sh\necho hi\n'), flavor_name: 'm1.tiny', ec2_instance_id: 'i-0000000a', ec2_ami_id: 'ami-00000001',
  local_ipv4: '10.0.0.5', mac: 'fa:16:3e:00:00:01', public_ipv4: null, security_groups: ['default', 'web'],
  network_data: { links: [], networks: [], services: [] }, password: '', ...o,
});
const get = (m: ServerMetadata, path: string) => {
  const a = renderMetadata(m, 'GET', path);
  return { status: a.status, type: a.contentType, text: a.body.toString() };
};

test('paths are normalised as Nova does', () => {
  assert.deepEqual(normalizePath('//openstack/./latest/../latest/'), ['openstack', 'latest']);
  assert.deepEqual(normalizePath('/'), []);
});

test('version lists: EC2 at /, OpenStack at /openstack', () => {
  assert.equal(get(md(), '/').text, [...EC2_VERSIONS, 'latest'].join('\n'));
  assert.equal(get(md(), '/openstack').text, [...OPENSTACK_VERSIONS, 'latest'].join('\n'));
  assert.equal(get(md(), '/openstack/').text, get(md(), '/openstack').text);
});

test('OpenStack layout: listing, meta_data.json with uuid first, user_data, network data, vendor data', () => {
  assert.deepEqual(get(md(), '/openstack/latest/').text.split('\n'), ['meta_data.json', 'user_data', 'password', 'vendor_data.json', 'network_data.json', 'vendor_data2.json']);
  assert.deepEqual(get(md({ user_data: null }), '/openstack/latest').text.split('\n'), ['meta_data.json', 'password', 'vendor_data.json', 'network_data.json', 'vendor_data2.json']);
  // an old version lists only what it had
  assert.deepEqual(get(md(), '/openstack/2012-08-10').text.split('\n'), ['meta_data.json', 'user_data']);
  assert.equal(get(md(), '/openstack/2012-08-10/network_data.json').status, 404);
  const m = get(md(), '/openstack/latest/meta_data.json');
  assert.equal(m.type, 'application/json');
  const j = JSON.parse(m.text);
  assert.equal(Object.keys(j)[0], 'uuid');
  assert.equal(j.uuid, md().uuid);
  assert.deepEqual(j.meta, { role: 'front' });
  assert.deepEqual(j.public_keys, { k1: 'ssh-ed25519 AAAA k1' });
  assert.deepEqual(j.keys, [{ name: 'k1', type: 'ssh', data: 'ssh-ed25519 AAAA k1' }]);
  assert.equal(j.name, 'web');
  assert.equal(j.availability_zone, 'nova');
  assert.equal(get(md(), '/openstack/latest/user_data').text, '#!/bin/sh\necho hi\n');
  assert.equal(get(md({ user_data: null }), '/openstack/latest/user_data').status, 404);
  assert.deepEqual(JSON.parse(get(md(), '/openstack/2016-06-30/network_data.json').text), { links: [], networks: [], services: [] });
  assert.equal(get(md(), '/openstack/latest/vendor_data2.json').text, '{}');
  assert.equal(get(md(), '/openstack/latest/vendor_data.json').status, 404);
});

test('unknown paths and versions: webob\'s plain 404', () => {
  for (const p of ['/openstack/latest/nothing', '/openstack/1999-01-01/meta_data.json', '/latest/meta-data/nothing', '/2099-01-01/meta-data/', '/latest/meta-data/hostname/x', '/latest/meta-data/public-keys/0/_name']) {
    const a = get(md(), p);
    assert.equal(a.status, 404, p);
    assert.match(a.text, /^404 Not Found\n\nThe resource could not be found\./);
  }
});

test('EC2 layout: meta-data listing and items, public keys, user-data', () => {
  const list = get(md(), '/latest/meta-data/').text.split('\n');
  for (const k of ['ami-id', 'instance-id', 'instance-type', 'hostname', 'local-hostname', 'local-ipv4', 'public-hostname', 'placement/',
    'public-keys/', 'security-groups', 'mac', 'reservation-id', 'block-device-mapping/']) assert.ok(list.includes(k), k);
  assert.deepEqual(list, [...list].sort());
  assert.equal(get(md(), '/latest/meta-data/instance-id').text, 'i-0000000a');
  assert.equal(get(md(), '/2009-04-04/meta-data/ami-id').text, 'ami-00000001');
  assert.equal(get(md(), '/ec2/latest/meta-data/local-ipv4').text, '10.0.0.5');
  assert.equal(get(md(), '/latest/meta-data/placement/availability-zone').text, 'nova');
  assert.equal(get(md(), '/latest/meta-data/security-groups').text, 'default\nweb');
  assert.equal(get(md(), '/latest/meta-data/public-keys/').text, '0=k1');
  assert.equal(get(md(), '/latest/meta-data/public-keys/0/').text, 'openssh-key');
  assert.equal(get(md(), '/latest/meta-data/public-keys/0/openssh-key').text, 'ssh-ed25519 AAAA k1');
  assert.equal(get(md({ keys: [] }), '/latest/meta-data/public-keys/').status, 404);
  assert.equal(get(md(), '/latest/meta-data/public-ipv4').status, 404, 'no floating IP: no public-ipv4');
  assert.ok(!list.includes('public-ipv4'));
  assert.ok(get(md({ public_ipv4: '203.0.113.7' }), '/latest/meta-data/').text.split('\n').includes('public-ipv4'));
  assert.equal(get(md({ public_ipv4: '203.0.113.7' }), '/latest/meta-data/public-ipv4').text, '203.0.113.7');
  assert.equal(get(md(), '/latest/meta-data/block-device-mapping/').text, 'ami\nroot');
  assert.equal(get(md(), '/latest/user-data').text, '#!/bin/sh\necho hi\n');
  assert.equal(get(md({ user_data: null }), '/latest/user-data').status, 404);
  assert.deepEqual(get(md(), '/latest').text.split('\n'), ['meta-data/', 'user-data']);
});

test('password: empty until posted, stored once, 409 after, too large refused', () => {
  assert.equal(get(md(), '/openstack/latest/password').text, '');
  const body = Buffer.from('encrypted');
  assert.equal(renderMetadata(md(), 'POST', '/openstack/latest/password', body).status, 200);
  assert.equal(passwordToStore(md(), 'POST', '/openstack/latest/password', body), true);
  assert.equal(get(md({ password: 'x' }), '/openstack/latest/password').text, 'x');
  assert.equal(renderMetadata(md({ password: 'x' }), 'POST', '/openstack/latest/password', body).status, 409);
  assert.equal(passwordToStore(md({ password: 'x' }), 'POST', '/openstack/latest/password', body), false);
  assert.equal(renderMetadata(md(), 'POST', '/openstack/latest/password', Buffer.alloc(1021, 97)).status, 400);
  assert.equal(passwordToStore(md(), 'POST', '/openstack/latest/password', Buffer.alloc(1021, 97)), false);
  assert.equal(renderMetadata(md(), 'POST', '/openstack/latest/meta_data.json', body).status, 405);
  assert.equal(renderMetadata(md(), 'DELETE', '/openstack/latest/password').status, 405);
});

test('network_data.json: links, static and DHCP networks, routes, services', () => {
  const subnets = new Map<string, NetworkDataSubnet>([
    ['s4', { id: 's4', cidr: '10.1.0.0/24', ip_version: 4, gateway_ip: '10.1.0.1', enable_dhcp: false, dns_nameservers: ['9.9.9.9'], host_routes: [{ destination: '192.168.0.0/16', nexthop: '10.1.0.254' }], ipv6_address_mode: null }],
    ['s6', { id: 's6', cidr: 'fd00::/64', ip_version: 6, gateway_ip: 'fd00::1', enable_dhcp: true, dns_nameservers: ['9.9.9.9'], host_routes: [], ipv6_address_mode: 'slaac' }],
    ['d4', { id: 'd4', cidr: '10.2.0.0/24', ip_version: 4, gateway_ip: '10.2.0.1', enable_dhcp: true, dns_nameservers: [], host_routes: [], ipv6_address_mode: null }],
  ]);
  const nd = buildNetworkData([
    { id: 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee', network_id: 'n1', mac_address: 'fa:16:3e:00:00:01', mtu: 1450, vif_type: 'bridge', fixed_ips: [{ subnet_id: 's4', ip_address: '10.1.0.5' }, { subnet_id: 's6', ip_address: 'fd00::5' }] },
    { id: 'bbbbbbbb-bbbb-cccc-dddd-eeeeeeeeeeee', network_id: 'n2', mac_address: 'fa:16:3e:00:00:02', mtu: 1500, vif_type: 'unbound', fixed_ips: [{ subnet_id: 'd4', ip_address: '10.2.0.5' }] },
    { id: 'cccccccc-bbbb-cccc-dddd-eeeeeeeeeeee', network_id: 'n3', mac_address: 'fa:16:3e:00:00:03', mtu: 1500, vif_type: 'bridge', fixed_ips: [] },
  ], subnets);
  assert.deepEqual(nd.links, [
    { id: 'tapaaaaaaaa-bb', vif_id: 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee', type: 'bridge', mtu: 1450, ethernet_mac_address: 'fa:16:3e:00:00:01' },
    { id: 'tapbbbbbbbb-bb', vif_id: 'bbbbbbbb-bbbb-cccc-dddd-eeeeeeeeeeee', type: 'phy', mtu: 1500, ethernet_mac_address: 'fa:16:3e:00:00:02' },
  ]);
  assert.deepEqual(nd.networks[0], {
    id: 'network0', type: 'ipv4', link: 'tapaaaaaaaa-bb', ip_address: '10.1.0.5', netmask: '255.255.255.0', network_id: 'n1',
    routes: [{ network: '0.0.0.0', netmask: '0.0.0.0', gateway: '10.1.0.1' }, { network: '192.168.0.0', netmask: '255.255.0.0', gateway: '10.1.0.254' }],
    services: [{ type: 'dns', address: '9.9.9.9' }],
  });
  assert.equal(nd.networks[1]!.type, 'ipv6_slaac');
  assert.equal(nd.networks[1]!.netmask, 'ffff:ffff:ffff:ffff::');
  assert.deepEqual(nd.networks[1]!.routes, [{ network: '::', netmask: '::', gateway: 'fd00::1' }]);
  assert.deepEqual(nd.networks[2], { id: 'network2', type: 'ipv4_dhcp', link: 'tapbbbbbbbb-bb', network_id: 'n2' });
  assert.deepEqual(nd.services, [{ type: 'dns', address: '9.9.9.9' }]);
  assert.equal(netmaskOf(4, 0), '0.0.0.0');
  assert.equal(netmaskOf(4, 32), '255.255.255.255');
});
