// extra_dhcp_opt on ports (Neutron's extension, as Ironic uses it for PXE):
// create, show, update (merge by name and IP version, null removes), list
// filtering by fields, Neutron's 400s for bad options; the extension listed;
// a bare-metal port (vnic_type baremetal) bound to a host hands that host the
// network with DHCP and the port's options in its host entry, but is no
// `port` resource there (nothing to plug).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startCloud, type Cloud } from '../../harness.ts';
import { PROTOCOL_VERSION } from '../../../src/fleet/protocol.ts';
import { assertNeutronError, create, neutron, type NetCall } from './lib.ts';

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

const PXE = [
  { opt_name: 'tag:ipxe,67', opt_value: 'http://172.24.8.1:6385/boot.ipxe' },
  { opt_name: 'tag:!ipxe,67', opt_value: 'undionly.kpxe' },
  { opt_name: 'server-ip-address', opt_value: '10.88.0.2' },
];

test('extra_dhcp_opts: the extension, create/show/update/list, Neutron\'s 400s', async () => {
  const ext = await call('GET', '/extensions/extra_dhcp_opt');
  assert.equal(ext.status, 200);
  assert.equal(ext.body.extension.name, 'Neutron Extra DHCP options');
  const net = await create(call, 'networks', 'network', { name: 'edo' });
  await create(call, 'subnets', 'subnet', { network_id: net.id, cidr: '10.88.0.0/24', ip_version: 4 });
  const plain = await create(call, 'ports', 'port', { network_id: net.id });
  assert.deepEqual(plain.extra_dhcp_opts, []);
  const p = await create(call, 'ports', 'port', { network_id: net.id, extra_dhcp_opts: [...PXE, { opt_name: 'mtu', opt_value: null }, { opt_name: '150', opt_value: '10.88.0.2', ip_version: '4' }] });
  // a null value on create is no option; ip_version defaults to 4 (a string is taken as the number)
  assert.deepEqual(p.extra_dhcp_opts, [...PXE.map((o) => ({ ...o, ip_version: 4 })), { opt_name: '150', opt_value: '10.88.0.2', ip_version: 4 }]);
  assert.deepEqual((await call('GET', `/ports/${p.id}`)).body.port.extra_dhcp_opts, p.extra_dhcp_opts);
  const listed = (await call('GET', `/ports?network_id=${net.id}&fields=id&fields=extra_dhcp_opts`)).body.ports;
  assert.deepEqual(listed.find((x: any) => x.id === p.id), { id: p.id, extra_dhcp_opts: p.extra_dhcp_opts });

  // update: a named option replaced, null removes, a new one added, the rest kept
  const up = await call('PUT', `/ports/${p.id}`, { body: { port: { extra_dhcp_opts: [
    { opt_name: 'tag:ipxe,67', opt_value: 'http://172.24.8.1:6385/other.ipxe' }, { opt_name: '150', opt_value: null }, { opt_name: 'domain-search', opt_value: 'example.org', ip_version: 6 },
  ] } } });
  assert.equal(up.status, 200, JSON.stringify(up.body));
  assert.deepEqual(up.body.port.extra_dhcp_opts, [
    { opt_name: 'tag:ipxe,67', opt_value: 'http://172.24.8.1:6385/other.ipxe', ip_version: 4 }, { ...PXE[1], ip_version: 4 }, { ...PXE[2], ip_version: 4 },
    { opt_name: 'domain-search', opt_value: 'example.org', ip_version: 6 },
  ]);
  // null (or an update not naming them) keeps them
  assert.equal((await call('PUT', `/ports/${p.id}`, { body: { port: { extra_dhcp_opts: null } } })).body.port.extra_dhcp_opts.length, 4);
  assert.equal((await call('PUT', `/ports/${p.id}`, { body: { port: { name: 'x' } } })).body.port.extra_dhcp_opts.length, 4);

  const bad = async (opts: unknown) => {
    assertNeutronError(await call('POST', '/ports', { body: { port: { network_id: net.id, extra_dhcp_opts: opts } } }), 400, 'HTTPBadRequest', /Invalid input for extra_dhcp_opts/);
    assertNeutronError(await call('PUT', `/ports/${p.id}`, { body: { port: { extra_dhcp_opts: opts } } }), 400, 'HTTPBadRequest', /Invalid input for extra_dhcp_opts/);
  };
  await bad([{ opt_name: '67' }]);
  await bad([{ opt_value: 'x' }]);
  await bad(['67']);
  await bad([{ opt_name: '', opt_value: 'x' }]);
  await bad([{ opt_name: 'x'.repeat(65), opt_value: 'x' }]);
  await bad([{ opt_name: '67', opt_value: 'x'.repeat(256) }]);
  await bad([{ opt_name: '67', opt_value: 'a\nb' }]);
  await bad([{ opt_name: '67', opt_value: '  ' }]);
  await bad([{ opt_name: '67', opt_value: 'x', ip_version: 5 }]);
  await bad([{ opt_name: '67', opt_value: 'x', other: 1 }]);
  assertNeutronError(await call('POST', '/ports', { body: { port: { network_id: net.id, extra_dhcp_opts: 'x' } } }), 400);
  // blank allowed for router and classless-static-route only
  const blank = await create(call, 'ports', 'port', { network_id: net.id, extra_dhcp_opts: [{ opt_name: 'router', opt_value: '' }] });
  assert.deepEqual(blank.extra_dhcp_opts, [{ opt_name: 'router', opt_value: '', ip_version: 4 }]);
  assert.equal((await call('GET', `/ports/${p.id}`)).body.port.extra_dhcp_opts.length, 4, 'a refused update changed nothing');
});

async function agent(method: string, path: string, body: unknown): Promise<any> {
  const r = await fetch(`${cloud.url}/agent/v1/hosts/${path}`, { method, headers: { 'x-stratus-agent-token': agentToken, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal(r.status, 200, await r.clone().text());
  return r.json();
}

test('a bare-metal port bound to a host: the host holds the network with DHCP and the port\'s options, and plugs nothing', async () => {
  await agent('PUT', 'edo-h1', { protocol: PROTOCOL_VERSION, kinds: { network: [], port: [], security_group: [] }, vcpus: 1, memory_mb: 1024, disk_gb: 1, version: 'test', host_ip: '198.51.100.9' });
  const net = await create(call, 'networks', 'network', { name: 'edo-bm', 'provider:network_type': 'flat', 'provider:physical_network': 'edo-bm' });
  const sub = await create(call, 'subnets', 'subnet', { network_id: net.id, cidr: '10.89.0.0/24', ip_version: 4, gateway_ip: null });
  const p = await create(call, 'ports', 'port', {
    network_id: net.id, mac_address: '52:54:00:aa:bb:01', device_id: 'node-1', device_owner: 'baremetal:none', 'binding:host_id': 'edo-h1', 'binding:vnic_type': 'baremetal', extra_dhcp_opts: PXE,
  });
  const r = await agent('POST', 'edo-h1/watch', { known: { network: {}, port: {}, security_group: {} }, wait: 0 });
  assert.deepEqual(r.resources.filter((x: any) => x.kind === 'port').map((x: any) => x.id), [], 'no port to plug');
  const spec = r.resources.find((x: any) => x.kind === 'network' && x.id === net.id)?.spec;
  assert.ok(spec?.dhcp, JSON.stringify(r.resources.map((x: any) => [x.kind, x.id])));
  const host = spec.dhcp.hosts.find((h: any) => h.port_id === p.id);
  assert.deepEqual(host, {
    port_id: p.id, mac_address: '52:54:00:aa:bb:01', ip_address: p.fixed_ips[0].ip_address, subnet_id: sub.id, hostname: host.hostname,
    extra_dhcp_opts: PXE.map((o) => ({ ...o, ip_version: 4 })),
  });
  // options removed: the entry has none, and the network's version moves
  const v1 = r.resources.find((x: any) => x.id === net.id).version;
  await call('PUT', `/ports/${p.id}`, { body: { port: { extra_dhcp_opts: PXE.map((o) => ({ opt_name: o.opt_name, opt_value: null })) } } });
  const r2 = await agent('POST', 'edo-h1/watch', { known: { network: { [net.id]: v1 }, port: {}, security_group: {} }, wait: 0 });
  const h2 = r2.resources.find((x: any) => x.id === net.id)?.spec.dhcp.hosts.find((h: any) => h.port_id === p.id);
  assert.ok(h2 && !('extra_dhcp_opts' in h2), JSON.stringify(h2));
});

test('the bare-metal service\'s in-process ports: bound to the conductor\'s host with the PXE options; a MAC taken is a 409; removed', async () => {
  const { createNetworkService } = await import('../../../src/network/service.ts');
  const { pino } = await import('pino');
  const ports = createNetworkService({ db: cloud.server.database.db, log: pino({ level: 'silent' }) }).baremetalPorts;
  await agent('PUT', 'edo-h2', { protocol: PROTOCOL_VERSION, kinds: { network: [], port: [], security_group: [] }, vcpus: 1, memory_mb: 1024, disk_gb: 1, version: 'test', host_ip: '198.51.100.10' });
  const net = await create(call, 'networks', 'network', { name: 'edo-prov', shared: true, 'provider:network_type': 'flat', 'provider:physical_network': 'edo-prov' });
  await create(call, 'subnets', 'subnet', { network_id: net.id, cidr: '10.90.0.0/24', ip_version: 4, gateway_ip: null });
  const made = await ports.create({ network: 'edo-prov', mac: '52:54:00:AA:BB:02', nodeUuid: 'node-2', operation: 'op-2', dhcpOptions: PXE, host: 'edo-h2' });
  assert.equal(made.networkId, net.id);
  const p = (await call('GET', `/ports/${made.portId}`)).body.port;
  assert.equal(p.mac_address, '52:54:00:aa:bb:02');
  assert.equal(p['binding:vnic_type'], 'baremetal');
  assert.equal(p['binding:host_id'], 'edo-h2');
  assert.equal(p.device_id, 'node-2');
  assert.equal(p.device_owner, 'baremetal:none');
  assert.deepEqual(p.security_groups, []);
  assert.deepEqual(p.extra_dhcp_opts, PXE.map((o) => ({ ...o, ip_version: 4 })));
  assert.equal(p.fixed_ips.length, 1);
  const r = await agent('POST', 'edo-h2/watch', { known: { network: {}, port: {}, security_group: {} }, wait: 0 });
  const spec = r.resources.find((x: any) => x.kind === 'network' && x.id === net.id)?.spec;
  assert.ok(spec?.dhcp?.hosts.some((h: any) => h.port_id === made.portId && h.extra_dhcp_opts?.length === 3), 'the conductor\'s host serves its DHCP');
  await assert.rejects(ports.create({ network: net.id, mac: '52:54:00:aa:bb:02', nodeUuid: 'node-3', operation: 'op-3', dhcpOptions: [], host: 'edo-h2' }), (e: any) => e.status === 409 || /MacAddressInUse|in use/i.test(e.message));
  await assert.rejects(ports.create({ network: 'no-such-net', mac: '52:54:00:aa:bb:03', nodeUuid: 'node-3', operation: 'op-3', dhcpOptions: [] }), /not be found|NotFound/i);
  await ports.remove(made.portId, 'op-2');
  assert.equal((await call('GET', `/ports/${made.portId}`)).status, 404);
});
