// The metadata service's agent API route (POST /agent/v1/metadata): the
// requester is the compute port holding the relayed source address on the
// relayed network; agent token only; Nova's answers and password rules. Also
// what a host's agent is handed for it: the server's config drive carries
// network_data.json and a container port's routes the metadata host route
// via the network's DHCP port. Runs on SQLite, and on PostgreSQL with
// STRATUS_TEST_DATABASE.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startCloud, type Cloud } from '../harness.ts';
import { PROTOCOL_VERSION } from '../../src/fleet/protocol.ts';
import { optsFile } from '../../src/agent/drivers/network/dhcp.ts';
import { METADATA_ANSWER_HEADER } from '../../src/metadata/protocol.ts';
import { create, neutron, type NetCall } from './network/lib.ts';

let cloud: Cloud;
let call: NetCall;
let imageId: string;
let flavorId: string;
let token: string;

const nova = (method: string, path: string, body?: unknown) =>
  cloud.call(method, `/compute/v2.1${path}`, { token: cloud.adminToken, body, headers: { 'X-OpenStack-Nova-API-Version': '2.79' } });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  cloud = await startCloud();
  call = neutron(cloud);
  token = readFileSync(join(cloud.dataDir, 'agent-token'), 'utf8').trim();
  const img = await cloud.call('POST', '/image/v2/images', { token: cloud.adminToken, body: { name: 'i', container_format: 'bare', disk_format: 'raw', visibility: 'public' } });
  imageId = img.body.id;
  const up = await fetch(`${cloud.url}/image/v2/images/${imageId}/file`, { method: 'PUT', headers: { 'X-Auth-Token': cloud.adminToken, 'Content-Type': 'application/octet-stream' }, body: Buffer.alloc(1024, 1) });
  assert.equal(up.status, 204);
  flavorId = (await nova('POST', '/flavors', { flavor: { name: 'md-test', ram: 64, vcpus: 1, disk: 0 } })).body.flavor.id;
});
after(async () => {
  await cloud?.close();
});

interface Asked { network_id: string; remote_ip: string; method?: string; path: string; body?: string }
const relay = async (a: Asked, headers: Record<string, string> = { 'x-stratus-agent-token': token }) => {
  const r = await fetch(`${cloud.url}/agent/v1/metadata`, {
    method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ method: 'GET', ...a }),
  });
  return { status: r.status, answer: r.headers.get(METADATA_ANSWER_HEADER), type: r.headers.get('content-type'), text: await r.text() };
};

test('metadata relay: each address is its own server; unknown requesters, other networks, pairs and user tokens are refused', async () => {
  const net = await create(call, 'networks', 'network', { name: 'md' });
  await create(call, 'subnets', 'subnet', { network_id: net.id, cidr: '10.77.0.0/24', ip_version: 4, dns_nameservers: ['10.77.0.53'] });
  const other = await create(call, 'networks', 'network', { name: 'other' });
  await create(call, 'subnets', 'subnet', { network_id: other.id, cidr: '10.77.0.0/24', ip_version: 4 });
  const mk = async (name: string, ip: string, extra: Record<string, unknown> = {}) => {
    const r = await nova('POST', '/servers', { server: { name, imageRef: imageId, flavorRef: flavorId, networks: [{ uuid: net.id, fixed_ip: ip }], ...extra } });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    return r.body.server.id as string;
  };
  const a = await mk('alpha', '10.77.0.10', { user_data: Buffer.from('hello alpha').toString('base64'), metadata: { k: 'v' } });
  const b = await mk('beta', '10.77.0.11');

  const mdA = await relay({ network_id: net.id, remote_ip: '10.77.0.10', path: '/openstack/latest/meta_data.json' });
  assert.equal(mdA.status, 200, mdA.text);
  assert.equal(mdA.answer, '1');
  assert.equal(mdA.type, 'application/json');
  const j = JSON.parse(mdA.text);
  assert.equal(Object.keys(j)[0], 'uuid');
  assert.equal(j.uuid, a);
  assert.equal(j.name, 'alpha');
  assert.deepEqual(j.meta, { k: 'v' });
  assert.equal(JSON.parse((await relay({ network_id: net.id, remote_ip: '10.77.0.11', path: '/openstack/latest/meta_data.json' })).text).uuid, b);
  assert.equal((await relay({ network_id: net.id, remote_ip: '10.77.0.10', path: '/openstack/latest/user_data' })).text, 'hello alpha');
  assert.equal((await relay({ network_id: net.id, remote_ip: '10.77.0.11', path: '/openstack/latest/user_data' })).status, 404);
  const idA = (await relay({ network_id: net.id, remote_ip: '10.77.0.10', path: '/latest/meta-data/instance-id' })).text;
  const idB = (await relay({ network_id: net.id, remote_ip: '10.77.0.11', path: '/latest/meta-data/instance-id' })).text;
  assert.match(idA, /^i-[0-9a-f]{8}$/);
  assert.notEqual(idA, idB);
  assert.equal((await relay({ network_id: net.id, remote_ip: '10.77.0.10', path: '/latest/meta-data/instance-id' })).text, idA, 'the EC2 id stays');
  assert.equal((await relay({ network_id: net.id, remote_ip: '10.77.0.10', path: '/latest/meta-data/local-ipv4' })).text, '10.77.0.10');
  assert.equal((await relay({ network_id: net.id, remote_ip: '10.77.0.10', path: '/latest/meta-data/security-groups' })).text, 'default');
  const nd = JSON.parse((await relay({ network_id: net.id, remote_ip: '10.77.0.10', path: '/openstack/latest/network_data.json' })).text);
  assert.equal(nd.links.length, 1);
  assert.deepEqual(nd.networks[0], { id: 'network0', type: 'ipv4_dhcp', link: nd.links[0].id, network_id: net.id });
  assert.deepEqual(nd.services, [{ type: 'dns', address: '10.77.0.53' }]);

  // the same address on another network, an address nobody holds, an allowed address pair: nobody
  const port = (await call('GET', `/ports?device_id=${a}`)).body.ports[0];
  assert.equal((await call('PUT', `/ports/${port.id}`, { body: { port: { allowed_address_pairs: [{ ip_address: '10.77.0.99' }] } } })).status, 200);
  for (const asked of [
    { network_id: other.id, remote_ip: '10.77.0.10' }, { network_id: net.id, remote_ip: '10.77.0.12' }, { network_id: net.id, remote_ip: '10.77.0.99' },
    { network_id: net.id, remote_ip: 'not an address' },
  ]) {
    const r = await relay({ ...asked, path: '/openstack/latest/meta_data.json' });
    assert.equal(r.status, 404, JSON.stringify(asked));
    assert.equal(r.answer, '1');
    assert.match(r.text, /^404 Not Found/);
  }

  // only the agent: a user token, no token, a wrong token
  for (const h of [{ 'x-auth-token': cloud.adminToken }, {}, { 'x-stratus-agent-token': 'x'.repeat(43) }] as Array<Record<string, string>>) {
    const r = await relay({ network_id: net.id, remote_ip: '10.77.0.10', path: '/openstack/latest/meta_data.json' }, h);
    assert.ok(r.status === 401 || r.status === 403, `${JSON.stringify(Object.keys(h))}: ${r.status}`);
    assert.equal(r.answer, null);
    assert.doesNotMatch(r.text, /alpha/);
  }
  // a malformed relay: the agent API's 400
  const bad = await relay({ network_id: net.id, remote_ip: '10.77.0.10', path: '/x', method: 'PUT' });
  assert.equal(bad.status, 400);
  assert.equal(bad.answer, null);

  // the password: stored once, per server
  const pw = (ip: string, method = 'GET', body?: string) => relay({ network_id: net.id, remote_ip: ip, method, path: '/openstack/latest/password', ...(body !== undefined ? { body: Buffer.from(body).toString('base64') } : {}) });
  assert.equal((await pw('10.77.0.10')).text, '');
  assert.equal((await pw('10.77.0.10', 'POST', 'Zm9vYmFy')).status, 200);
  assert.equal((await pw('10.77.0.10')).text, 'Zm9vYmFy');
  assert.equal((await pw('10.77.0.10', 'POST', 'again')).status, 409);
  assert.equal((await pw('10.77.0.10')).text, 'Zm9vYmFy');
  assert.equal((await pw('10.77.0.11')).text, '');
  assert.equal((await pw('10.77.0.11', 'POST', 'x'.repeat(1021))).status, 400);
  assert.equal((await pw('10.77.0.11')).text, '');
  // the compute API's os-server-password shows what the guest posted; its DELETE clears it, and the guest may post again
  assert.deepEqual((await nova('GET', `/servers/${a}/os-server-password`)).body, { password: 'Zm9vYmFy' });
  assert.deepEqual((await nova('GET', `/servers/${b}/os-server-password`)).body, { password: '' });
  assert.equal((await nova('DELETE', `/servers/${a}/os-server-password`)).status, 204);
  assert.deepEqual((await nova('GET', `/servers/${a}/os-server-password`)).body, { password: '' });
  assert.equal((await pw('10.77.0.10')).text, '');
  assert.equal((await pw('10.77.0.10', 'POST', 'bmV3')).status, 200);
  assert.deepEqual((await nova('GET', `/servers/${a}/os-server-password`)).body, { password: 'bmV3' });

  // a floating IP on its port is EC2's public-ipv4
  assert.equal((await relay({ network_id: net.id, remote_ip: '10.77.0.10', path: '/latest/meta-data/public-ipv4' })).status, 404);
  const ext = await create(call, 'networks', 'network', { name: 'md-ext', 'router:external': true, 'provider:network_type': 'flat', 'provider:physical_network': 'public' });
  await create(call, 'subnets', 'subnet', { network_id: ext.id, cidr: '172.30.9.0/24', ip_version: 4, enable_dhcp: false });
  const router = await create(call, 'routers', 'router', { name: 'md-r', external_gateway_info: { network_id: ext.id } });
  const mdSubnet = (await call('GET', `/subnets?network_id=${net.id}`)).body.subnets[0];
  assert.equal((await call('PUT', `/routers/${router.id}/add_router_interface`, { body: { subnet_id: mdSubnet.id } })).status, 200);
  const fip = await create(call, 'floatingips', 'floatingip', { floating_network_id: ext.id, port_id: port.id });
  const pub = await relay({ network_id: net.id, remote_ip: '10.77.0.10', path: '/latest/meta-data/public-ipv4' });
  assert.equal(pub.status, 200, pub.text);
  assert.equal(pub.text, fip.floating_ip_address);
  assert.equal((await relay({ network_id: net.id, remote_ip: '10.77.0.11', path: '/latest/meta-data/public-ipv4' })).status, 404, 'not the other server\'s');

  // a deleted server is nobody
  assert.equal((await nova('DELETE', `/servers/${b}`)).status, 204);
  assert.equal((await relay({ network_id: net.id, remote_ip: '10.77.0.11', path: '/latest/meta-data/instance-id' })).status, 404);
});

test('what the agent is handed: network_data.json in the config drive, the metadata route via the DHCP port', async () => {
  const net = await create(call, 'networks', 'network', { name: 'md2' });
  await create(call, 'subnets', 'subnet', { network_id: net.id, cidr: '10.78.0.0/24', ip_version: 4 });
  const agent = (method: string, path: string, body: unknown) =>
    fetch(`${cloud.url}/agent/v1/hosts/${path}`, { method, headers: { 'x-stratus-agent-token': token, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const reg = await agent('PUT', 'md-host', { protocol: PROTOCOL_VERSION, kinds: { server: ['container', 'vm'], network: [], port: [], security_group: [] }, vcpus: 8, memory_mb: 8192, disk_gb: 100, version: 't', host_ip: '127.0.0.1' });
  assert.equal(reg.status, 200);
  const r = await nova('POST', '/servers', { server: { name: 'placed', imageRef: imageId, flavorRef: flavorId, networks: [{ uuid: net.id }] } });
  assert.equal(r.status, 202);
  const id = r.body.server.id as string;
  let port: any;
  for (let i = 0; i < 200; i++) {
    port = (await call('GET', `/ports?device_id=${id}`)).body.ports[0];
    if (port?.['binding:host_id'] === 'md-host') break;
    await sleep(50);
  }
  assert.equal(port['binding:host_id'], 'md-host');
  const dhcp = (await call('GET', `/ports?network_id=${net.id}&device_owner=network:dhcp`)).body.ports[0];
  const w = await (await agent('POST', 'md-host/watch', { known: { server: {}, network: {}, port: {}, security_group: {} }, wait: 0 })).json() as any;
  const srv = w.resources.find((x: any) => x.kind === 'server' && x.id === id);
  const nd = srv.spec.config_drive.network_data;
  // a disk image: a VM, whose port is a tap (binding:vif_type), the link type Nova shows
  assert.deepEqual(nd.links, [{ id: `tap${port.id.slice(0, 11)}`, vif_id: port.id, type: 'tap', mtu: 1450, ethernet_mac_address: port.mac_address }]);
  assert.deepEqual(nd.networks, [{ id: 'network0', type: 'ipv4_dhcp', link: nd.links[0].id, network_id: net.id }]);
  const ps = w.resources.find((x: any) => x.kind === 'port' && x.id === port.id);
  assert.deepEqual(ps.spec.ip_config.routes, [{ destination: '169.254.169.254/32', nexthop: dhcp.fixed_ips[0].ip_address }]);
  // DHCP clients get the same route by option 121, with the default route beside it
  const ns = w.resources.find((x: any) => x.kind === 'network' && x.id === net.id);
  const opts = optsFile(ns.spec, ns.spec.dhcp, true);
  assert.match(opts, new RegExp(`option:classless-static-route,169\\.254\\.169\\.254/32,${dhcp.fixed_ips[0].ip_address.replaceAll('.', '\\.')},0\\.0\\.0\\.0/0,10\\.78\\.0\\.1\\n`));
  assert.doesNotMatch(optsFile(ns.spec, ns.spec.dhcp, false), /classless/);
});
