// The network kinds on the agent API: what each host's agent is handed for
// the ports bound to it (ports, their networks with the other hosts as VXLAN
// peers and DHCP on one of them, their security groups), versions that move
// only when that host's state changes, and reports setting port status.
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

const KINDS = ['network', 'port', 'security_group'];

async function agent(method: string, path: string, body: unknown): Promise<any> {
  const r = await fetch(`${cloud.url}/agent/v1/hosts/${path}`, { method, headers: { 'x-stratus-agent-token': agentToken, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal(r.status, 200, await r.clone().text());
  return r.json();
}

const register = (host: string, ip: string) => agent('PUT', host, {
  protocol: PROTOCOL_VERSION, kinds: { server: ['container'], network: [], port: [], security_group: [] }, vcpus: 2, memory_mb: 2048, disk_gb: 10, version: 'test', host_ip: ip,
});

type Known = Record<string, Record<string, number>>;
const empty = (): Known => Object.fromEntries(KINDS.map((k) => [k, {}]));

/** One watch round: what changed since `known`, and `known` brought up to date. */
async function watch(host: string, known: Known) {
  const r = await agent('POST', `${host}/watch`, { known, wait: 0 });
  const next: Known = structuredClone(known);
  for (const res of r.resources) next[res.kind]![res.id] = res.version;
  for (const g of r.gone) delete next[g.kind]![g.id];
  const of = (kind: string) => new Map<string, any>(r.resources.filter((x: any) => x.kind === kind).map((x: any) => [x.id, x.spec]));
  return { r, next, networks: of('network'), ports: of('port'), groups: of('security_group') };
}

test('ports bound to hosts reach their agents with networks, peers, DHCP and groups; reports set status', async () => {
  await register('wire-h1', '198.51.100.1');
  await register('wire-h2', '198.51.100.2');
  const net = await create(call, 'networks', 'network', { name: 'wire' });
  const sub = await create(call, 'subnets', 'subnet', { network_id: net.id, cidr: '10.77.0.0/24', ip_version: 4, dns_nameservers: [] });
  const dhcp = await create(call, 'ports', 'port', { network_id: net.id, device_owner: 'network:dhcp', device_id: `dhcp-${net.id}` });
  const sg = await create(call, 'security-groups', 'security_group', { name: 'wire-sg' });
  await create(call, 'security-group-rules', 'security_group_rule', { security_group_id: sg.id, direction: 'ingress', remote_group_id: sg.id });
  const p1 = await create(call, 'ports', 'port', { network_id: net.id, device_id: 'srv-a', device_owner: 'compute:nova', 'binding:host_id': 'wire-h1', security_groups: [sg.id] });
  const p2 = await create(call, 'ports', 'port', { network_id: net.id, device_id: 'srv-a', device_owner: 'compute:nova', 'binding:host_id': 'wire-h1', security_groups: [sg.id] });
  const p3 = await create(call, 'ports', 'port', { network_id: net.id, device_id: 'srv-b', device_owner: 'compute:nova', 'binding:host_id': 'wire-h2', security_groups: [sg.id] });
  // an unbound port is nowhere
  await create(call, 'ports', 'port', { network_id: net.id, device_id: 'srv-c', device_owner: 'compute:nova' });

  let h1 = await watch('wire-h1', empty());
  assert.deepEqual([...h1.ports.keys()].sort(), [p1.id, p2.id].sort());
  assert.deepEqual([...h1.networks.keys()], [net.id]);
  assert.deepEqual([...h1.groups.keys()], [sg.id]);
  const s1 = h1.ports.get(p1.id), s2 = h1.ports.get(p2.id);
  assert.equal(s1.mac_address, p1.mac_address);
  assert.equal(s1.device_id, 'srv-a');
  assert.deepEqual([s1.vif.ifname, s2.vif.ifname], ['eth0', 'eth1'], 'interfaces in the order the ports were made');
  assert.deepEqual(s1.ip_config.addresses, [{ subnet_id: sub.id, ip_address: p1.fixed_ips[0].ip_address, prefixlen: 24, ip_version: 4 }]);
  assert.equal(s1.ip_config.gateway4, sub.gateway_ip);
  assert.deepEqual(s1.ip_config.dns_nameservers, [dhcp.fixed_ips[0].ip_address], 'no name servers on the subnet: the DHCP port answers DNS');
  assert.deepEqual(s1.security_group_ids, [sg.id]);
  const n1 = h1.networks.get(net.id);
  assert.equal(n1.segmentation.type, 'vxlan');
  assert.equal(n1.segmentation.vni, net['provider:segmentation_id']);
  assert.deepEqual(n1.vxlan_peers, [{ underlay_ip: '198.51.100.2', macs: [p3.mac_address] }]);
  // DHCP on the first host by name, with a static entry per port of the network
  assert.equal(n1.dhcp.port_id, dhcp.id);
  assert.deepEqual(n1.dhcp.fixed_ips, dhcp.fixed_ips);
  assert.equal(n1.dhcp.hosts.length, 4);
  const g1 = h1.groups.get(sg.id);
  assert.deepEqual(g1.remote_groups[sg.id], [p1, p2, p3].map((p) => p.fixed_ips[0].ip_address).sort());

  const h2 = await watch('wire-h2', empty());
  assert.deepEqual([...h2.ports.keys()], [p3.id]);
  const n2 = h2.networks.get(net.id);
  assert.equal(n2.dhcp, null, 'DHCP runs on one host');
  assert.deepEqual(n2.vxlan_peers, [{ underlay_ip: '198.51.100.1', macs: [dhcp.mac_address, p1.mac_address, p2.mac_address].sort() }]);

  // nothing changed: nothing handed out again
  const again = await watch('wire-h1', h1.next);
  assert.equal(again.r.resources.length, 0);
  assert.equal(again.r.gone.length, 0);

  // a report sets the port's status
  await agent('POST', 'wire-h1/report', { resources: [{ kind: 'port', id: p1.id, version: h1.next.port![p1.id], observed: { state: 'active', device: 'tapx' } }] });
  assert.equal((await call('GET', `/ports/${p1.id}`)).body.port.status, 'ACTIVE');
  // a report from a host the port is not on changes nothing
  await agent('POST', 'wire-h2/report', { resources: [{ kind: 'port', id: p2.id, version: 1, observed: { state: 'active', device: 'tapx' } }] });
  assert.equal((await call('GET', `/ports/${p2.id}`)).body.port.status, 'DOWN');
  // a bad observed state is refused
  const bad = await fetch(`${cloud.url}/agent/v1/hosts/wire-h1/report`, { method: 'POST', headers: { 'x-stratus-agent-token': agentToken, 'content-type': 'application/json' }, body: JSON.stringify({ resources: [{ kind: 'port', id: p1.id, version: 1, observed: { state: 'up' } }] }) });
  assert.equal(bad.status, 400);

  // a DHCP subnet's network gets its DHCP port with the first bound device port (not before), once
  const net2 = await create(call, 'networks', 'network', { name: 'wire-2' });
  const sub2 = await create(call, 'subnets', 'subnet', { network_id: net2.id, cidr: '10.78.0.0/24', ip_version: 4 });
  const dhcpOf = async (id: string) => (await call('GET', `/ports?network_id=${id}&device_owner=network:dhcp`)).body.ports;
  const unbound = await create(call, 'ports', 'port', { network_id: net2.id, device_id: 'srv-d', device_owner: 'compute:nova' });
  assert.deepEqual(await dhcpOf(net2.id), []);
  assert.equal((await call('PUT', `/ports/${unbound.id}`, { body: { port: { 'binding:host_id': 'wire-h2' } } })).status, 200);
  await create(call, 'ports', 'port', { network_id: net2.id, device_id: 'srv-e', device_owner: 'compute:nova', 'binding:host_id': 'wire-h2' });
  const auto = await dhcpOf(net2.id);
  assert.equal(auto.length, 1);
  assert.equal(auto[0].fixed_ips[0].subnet_id, sub2.id);
  assert.equal((await watch('wire-h2', empty())).networks.get(net2.id).dhcp.port_id, auto[0].id);
  // deleting the subnet takes the DHCP port's address (and the port, left with none) along; the network goes with its DHCP port
  for (const p of (await call('GET', `/ports?network_id=${net2.id}`)).body.ports.filter((x: any) => x.device_owner !== 'network:dhcp')) {
    assert.equal((await call('DELETE', `/ports/${p.id}`)).status, 204);
  }
  assert.equal((await call('DELETE', `/subnets/${sub2.id}`)).status, 204);
  assert.deepEqual(await dhcpOf(net2.id), []);
  assert.equal((await call('DELETE', `/networks/${net2.id}`)).status, 204);

  // the port on h2 goes: h1's network loses its peer (new version), h2 drops everything
  h1 = await watch('wire-h1', h1.next);
  assert.equal((await call('DELETE', `/ports/${p3.id}`)).status, 204);
  const after1 = await watch('wire-h1', h1.next);
  assert.deepEqual([...after1.networks.keys()], [net.id], 'the network changed on h1');
  assert.deepEqual(after1.networks.get(net.id).vxlan_peers, []);
  assert.deepEqual([...after1.groups.keys()], [sg.id], 'the group lost a member');
  assert.equal(after1.ports.size, 0, 'the ports of h1 did not change');
  const after2 = await watch('wire-h2', h2.next);
  assert.deepEqual(after2.r.gone.map((g: any) => g.kind).sort(), ['network', 'port', 'security_group']);
});
