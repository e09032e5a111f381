// Compute's network integration through the compute API (no agent: a host
// registered by hand, so the scheduler places servers and their ports are
// bound there): os-interface attach/detach of made and given ports (bound to
// the server's host and handed to its agent as the lowest free ethN), Nova's errors;
// security groups at create (by name or id), the add/remove actions and
// /servers/{id}/os-security-groups; the deprecated proxies below 2.36
// (os-security-groups, os-security-group-rules, os-networks,
// os-tenant-networks) and their 404 from 2.36. Bodies are checked against
// Tempest's own response schemas.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useCloud, type Cloud } from '../../harness.ts';
import { create, neutron, type NetCall } from '../network/lib.ts';
import { givenPorts } from '../../../src/compute/api/server-ports.ts';
import { adminNova, agentCall, networkedHost, projectUser, TempestSchemas, type Nova } from './lib.ts';

let admin: Nova;
let alice: Nova;
let call: NetCall;
let imageId: string;
let flavorId: string;
const HOST = `iface-host-${process.pid}`;
const schemas = new TempestSchemas();

const cloud: Cloud = useCloud(async (c) => {
  admin = await adminNova(c);
  alice = await projectUser(c);
  call = neutron(c);
  ({ imageId, flavorId } = await networkedHost(c, admin, HOST, 'iface'));
});

const agent = agentCall;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const portsOf = async (serverId: string, token?: string) => (await call('GET', `/ports?device_id=${serverId}`, { token })).body.ports as any[];

/** A server of `who` placed on HOST and made ACTIVE by the admin (no agent builds it here). */
async function activeServer(who: Nova, networks: unknown, extra: Record<string, unknown> = {}): Promise<string> {
  const r = await who.call('POST', '/servers', { version: '2.37', body: { server: { name: 'srv', imageRef: imageId, flavorRef: flavorId, networks, ...extra } } });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const id = r.body.server.id as string;
  for (let i = 0; i < 200; i++) {
    const s = (await admin.call('GET', `/servers/${id}`, { version: '2.37' })).body.server;
    if (s['OS-EXT-SRV-ATTR:host'] === HOST) break;
    await sleep(50);
  }
  assert.equal((await admin.call('POST', `/servers/${id}/action`, { body: { 'os-resetState': { state: 'active' } } })).status, 202);
  return id;
}

test('os-interface: list, attach made and given ports on a live server, show, detach; the agent is handed the lowest free ethN', async () => {
  const net = await create(call, 'networks', 'network', { name: 'iface-a' }, alice.token);
  const subnet = await create(call, 'subnets', 'subnet', { network_id: net.id, cidr: '10.91.0.0/24', ip_version: 4 }, alice.token);
  const id = await activeServer(alice, [{ uuid: net.id }]);

  const list = await alice.call('GET', `/servers/${id}/os-interface`);
  assert.equal(list.status, 200);
  schemas.add('v2_1.interfaces', 'list_interfaces', list);
  assert.equal(list.body.interfaceAttachments.length, 1);
  const first = list.body.interfaceAttachments[0];
  assert.equal(first.net_id, net.id);

  // attach a new port on the network with a fixed IP: bound to the server's host, device_id the server
  const att = await alice.call('POST', `/servers/${id}/os-interface`, { body: { interfaceAttachment: { net_id: net.id, fixed_ips: [{ ip_address: '10.91.0.77' }] } } });
  assert.equal(att.status, 200, JSON.stringify(att.body));
  schemas.add('v2_1.interfaces', 'get_create_interfaces', att);
  const made = att.body.interfaceAttachment;
  assert.deepEqual(made.fixed_ips, [{ subnet_id: subnet.id, ip_address: '10.91.0.77' }]);
  const port = (await call('GET', `/ports/${made.port_id}`)).body.port;
  assert.equal(port.device_id, id);
  assert.equal(port['binding:host_id'], HOST);
  assert.equal(port.device_owner, 'compute:nova');
  // the host's agent is handed it as the server's second interface
  const w = await (await agent(cloud, 'POST', `${HOST}/watch`, { known: { server: {}, network: {}, port: {}, security_group: {} }, wait: 0 })).json() as any;
  const handed = w.resources.find((x: any) => x.kind === 'port' && x.id === made.port_id);
  assert.equal(handed?.spec.vif.ifname, 'eth1');
  assert.equal(handed.spec.device_id, id);
  // the server's addresses show it
  const addrs = (await alice.call('GET', `/servers/${id}`)).body.server.addresses['iface-a'] as any[];
  assert.ok(addrs.some((a) => a.addr === '10.91.0.77'));
  const ips = await alice.call('GET', `/servers/${id}/ips/iface-a`);
  assert.ok(ips.body['iface-a'].some((a: any) => a.addr === '10.91.0.77' && a.version === 4));

  // the ip filter matches the server's fixed addresses (a regex); update's view has the plain addresses before 2.75
  assert.deepEqual((await alice.call('GET', '/servers?ip=10.91.0.77')).body.servers.map((x: any) => x.id), [id]);
  assert.deepEqual((await alice.call('GET', `/servers?ip=${encodeURIComponent('^10\\.91\\.0\\.7')}`)).body.servers.map((x: any) => x.id), [id]);
  assert.deepEqual((await alice.call('GET', '/servers?ip=10.99.0.1')).body.servers, []);
  const upd = await alice.call('PUT', `/servers/${id}`, { body: { server: { name: 'srv2' } } });
  schemas.add('v2_1.servers', 'update_server', upd);
  assert.ok(upd.body.server.addresses['iface-a'].every((a: any) => Object.keys(a).sort().join() === 'addr,version'));

  // show, with the tag from 2.70
  const shown = await alice.call('GET', `/servers/${id}/os-interface/${made.port_id}`);
  assert.equal(shown.status, 200);
  schemas.add('v2_1.interfaces', 'get_create_interfaces', shown);
  assert.equal((await alice.call('GET', `/servers/${id}/os-interface/${made.port_id}`, { version: '2.70' })).body.interfaceAttachment.tag, null);
  assert.equal((await alice.call('GET', `/servers/${id}/os-interface/${crypto.randomUUID()}`)).status, 404);

  // a port the user made: taken, tagged (2.49), then detached and kept
  const given = await create(call, 'ports', 'port', { network_id: net.id, name: 'given' }, alice.token);
  assert.equal((await alice.call('POST', `/servers/${id}/os-interface`, { body: { interfaceAttachment: { port_id: given.id, tag: 't' } } })).status, 400, 'tag before 2.49');
  const tg = await alice.call('POST', `/servers/${id}/os-interface`, { version: '2.70', body: { interfaceAttachment: { port_id: given.id, tag: 'data' } } });
  assert.equal(tg.status, 200, JSON.stringify(tg.body));
  assert.equal(tg.body.interfaceAttachment.tag, 'data');
  assert.equal((await portsOf(id)).length, 3);
  assert.equal((await alice.call('DELETE', `/servers/${id}/os-interface/${given.id}`)).status, 202);
  const kept = (await call('GET', `/ports/${given.id}`)).body.port;
  assert.equal(kept.device_id, '');
  assert.equal(kept['binding:host_id'], '');
  // the made one: deleted
  assert.equal((await alice.call('DELETE', `/servers/${id}/os-interface/${made.port_id}`)).status, 202);
  assert.equal((await call('GET', `/ports/${made.port_id}`)).status, 404);
  assert.equal((await alice.call('DELETE', `/servers/${id}/os-interface/${made.port_id}`)).status, 404);
  assert.deepEqual((await alice.call('GET', `/servers/${id}/os-interface`)).body.interfaceAttachments.map((i: any) => i.port_id), [first.port_id]);

  // a given port attached is one the server keeps when it goes (recorded as given)
  assert.equal((await alice.call('POST', `/servers/${id}/os-interface`, { body: { interfaceAttachment: { port_id: given.id } } })).status, 200);
  const row = await cloud.server.database.db.selectFrom('compute_servers').select('requested_networks').where('id', '=', id).executeTakeFirstOrThrow();
  assert.deepEqual(givenPorts(row.requested_networks), [given.id]);
  schemas.check();
});

test('os-interface errors: Nova\'s statuses', async () => {
  const net = await create(call, 'networks', 'network', { name: 'iface-b' }, alice.token);
  await create(call, 'subnets', 'subnet', { network_id: net.id, cidr: '10.92.0.0/24', ip_version: 4 }, alice.token);
  const id = await activeServer(alice, [{ uuid: net.id, fixed_ip: '10.92.0.10' }]);
  const attach = (body: unknown, who = alice) => who.call('POST', `/servers/${id}/os-interface`, { body: { interfaceAttachment: body } });
  const port = await create(call, 'ports', 'port', { network_id: net.id }, alice.token);
  assert.equal((await attach({ net_id: net.id, port_id: port.id })).status, 400, 'both');
  assert.equal((await attach({ fixed_ips: [{ ip_address: '10.92.0.5' }] })).status, 400, 'an address without a network');
  assert.equal((await attach({ net_id: crypto.randomUUID() })).status, 404, 'unknown network');
  assert.equal((await attach({ port_id: crypto.randomUUID() })).status, 404, 'unknown port');
  assert.equal((await attach({ net_id: 'not-a-uuid' })).status, 400);
  assert.equal((await attach({ net_id: net.id, fixed_ips: [{ ip_address: '10.99.0.5' }] })).status, 400, 'an address off the network');
  assert.equal((await attach({ net_id: net.id, fixed_ips: [{ ip_address: '10.92.0.10' }] })).status, 409, 'an address in use');
  // a port in use by another server
  const other = await activeServer(alice, [{ port: port.id }]);
  assert.equal((await attach({ port_id: port.id })).status, 409);
  // no network named: the project's one network; alice has two (iface-a, iface-b)
  assert.equal((await attach(undefined)).status, 400, 'several networks: ambiguous');
  const carol = await projectUser(cloud);
  const cnet = await create(call, 'networks', 'network', { name: 'only' }, carol.token);
  await create(call, 'subnets', 'subnet', { network_id: cnet.id, cidr: '10.94.0.0/24', ip_version: 4 }, carol.token);
  const cs = await activeServer(carol, 'none');
  const auto = await carol.call('POST', `/servers/${cs}/os-interface`, { body: {} });
  assert.equal(auto.status, 200, JSON.stringify(auto.body));
  assert.equal(auto.body.interfaceAttachment.net_id, cnet.id);
  // another project's server and port
  const bob = await projectUser(cloud);
  assert.equal((await bob.call('GET', `/servers/${id}/os-interface`)).status, 404);
  // a server not in a state that allows it
  assert.equal((await admin.call('POST', `/servers/${other}/action`, { body: { 'os-resetState': { state: 'error' } } })).status, 202);
  assert.equal((await alice.call('POST', `/servers/${other}/os-interface`, { body: { interfaceAttachment: { net_id: net.id } } })).status, 409);
  assert.equal((await alice.call('DELETE', `/servers/${other}/os-interface/${port.id}`)).status, 409);
});

test('security groups on servers: at create by name or id, add and remove, the server\'s groups', async () => {
  const net = await create(call, 'networks', 'network', { name: 'sg-net' }, alice.token);
  await create(call, 'subnets', 'subnet', { network_id: net.id, cidr: '10.93.0.0/24', ip_version: 4 }, alice.token);
  const web = await create(call, 'security-groups', 'security_group', { name: 'web' }, alice.token);
  const db = await create(call, 'security-groups', 'security_group', { name: 'db' }, alice.token);

  const bad = await alice.call('POST', '/servers', { version: '2.37', body: { server: { name: 'x', imageRef: imageId, flavorRef: flavorId, networks: [{ uuid: net.id }], security_groups: [{ name: 'nope' }] } } });
  assert.equal(bad.status, 400);
  const created = await alice.call('POST', '/servers', { version: '2.37', body: { server: { name: 'sg', imageRef: imageId, flavorRef: flavorId, networks: [{ uuid: net.id }], security_groups: [{ name: 'web' }, { name: db.id }] } } });
  assert.equal(created.status, 202, JSON.stringify(created.body));
  const id = created.body.server.id as string;
  const port = (await portsOf(id))[0];
  assert.deepEqual([...port.security_groups].sort(), [web.id, db.id].sort(), 'the ports Nova makes get the groups');
  const names = (s: any) => (s.security_groups ?? []).map((g: any) => g.name).sort();
  assert.deepEqual(names((await alice.call('GET', `/servers/${id}`)).body.server), ['db', 'web']);

  const groups = await alice.call('GET', `/servers/${id}/os-security-groups`);
  assert.equal(groups.status, 200);
  schemas.add('v2_1.security_groups', 'list_security_groups', groups);
  assert.deepEqual(groups.body.security_groups.map((g: any) => g.name).sort(), ['db', 'web']);

  const act = (body: unknown) => alice.call('POST', `/servers/${id}/action`, { body });
  assert.equal((await act({ addSecurityGroup: { name: 'default' } })).status, 202);
  assert.equal((await portsOf(id))[0].security_groups.length, 3);
  assert.equal((await act({ removeSecurityGroup: { name: 'web' } })).status, 202);
  assert.deepEqual(names((await alice.call('GET', `/servers/${id}`)).body.server), ['db', 'default']);
  assert.equal((await act({ removeSecurityGroup: { name: 'web' } })).status, 400, 'not on the server');
  assert.equal((await act({ addSecurityGroup: { name: 'missing' } })).status, 404);
  assert.equal((await act({ addSecurityGroup: { name: '' } })).status, 400);
  const groups2 = (await alice.call('GET', `/servers/${id}/os-security-groups`)).body.security_groups;
  const defaultOf = (gs: any[]) => gs.find((g) => g.name === 'default').id;
  // a port attached later gets the server's groups
  const att0 = await alice.call('POST', `/servers/${id}/os-interface`, { body: { interfaceAttachment: { net_id: net.id } } });
  assert.equal(att0.status, 409, 'the server is still building');
  assert.equal((await admin.call('POST', `/servers/${id}/action`, { body: { 'os-resetState': { state: 'active' } } })).status, 202);
  const att = await alice.call('POST', `/servers/${id}/os-interface`, { body: { interfaceAttachment: { net_id: net.id } } });
  assert.equal(att.status, 200, JSON.stringify(att.body));
  const attached = (await call('GET', `/ports/${att.body.interfaceAttachment.port_id}`)).body.port;
  assert.deepEqual([...attached.security_groups].sort(), [db.id, defaultOf(groups2)].sort());
  schemas.check();
});

test('deprecated proxies below 2.36: os-security-groups, rules, os-networks, os-tenant-networks', async () => {
  const sg = await alice.call('POST', '/os-security-groups', { version: '2.1', body: { security_group: { name: 'proxied', description: 'through nova' } } });
  assert.equal(sg.status, 200, JSON.stringify(sg.body));
  schemas.add('v2_1.security_groups', 'create_security_group', sg);
  const gid = sg.body.security_group.id;
  assert.ok((await call('GET', `/security-groups/${gid}`, { token: alice.token })).body.security_group, 'made in the network service');
  assert.equal((await alice.call('POST', '/os-security-groups', { body: { security_group: { name: '  ', description: 'x' } } })).status, 400);
  assert.equal((await alice.call('POST', '/os-security-groups', { body: { security_group: { name: 'x' } } })).status, 400);
  assert.equal((await alice.call('GET', '/os-security-groups/not-a-uuid')).status, 400);
  assert.equal((await alice.call('GET', `/os-security-groups/${crypto.randomUUID()}`)).status, 404);
  const list = await alice.call('GET', '/os-security-groups');
  schemas.add('v2_1.security_groups', 'list_security_groups', list);
  assert.ok(list.body.security_groups.some((g: any) => g.name === 'default'));
  const upd = await alice.call('PUT', `/os-security-groups/${gid}`, { body: { security_group: { name: 'renamed', description: 'd2' } } });
  assert.equal(upd.status, 200);
  schemas.add('v2_1.security_groups', 'update_security_group', upd);
  assert.equal(upd.body.security_group.name, 'renamed');

  const rule = await alice.call('POST', '/os-security-group-rules', { body: { security_group_rule: { parent_group_id: gid, ip_protocol: 'tcp', from_port: 22, to_port: 22, cidr: '10.0.0.0/8' } } });
  assert.equal(rule.status, 200, JSON.stringify(rule.body));
  schemas.add('v2_1.security_groups', 'create_security_group_rule', rule);
  assert.deepEqual(rule.body.security_group_rule.ip_range, { cidr: '10.0.0.0/8' });
  const icmp = await alice.call('POST', '/os-security-group-rules', { body: { security_group_rule: { parent_group_id: gid, ip_protocol: 'icmp', from_port: -1, to_port: -1, group_id: gid } } });
  assert.equal(icmp.status, 200, JSON.stringify(icmp.body));
  schemas.add('v2_1.security_groups', 'create_security_group_rule', icmp);
  assert.equal(icmp.body.security_group_rule.group.name, 'renamed');
  const rules = (await call('GET', `/security-group-rules?security_group_id=${gid}&direction=ingress`, { token: alice.token })).body.security_group_rules;
  assert.equal(rules.length, 2);
  for (const [body, status] of [
    [{ parent_group_id: gid, ip_protocol: 'tcp', from_port: 22, to_port: 22, cidr: '10.0.0.0/8' }, 400], // a duplicate
    [{ parent_group_id: gid, ip_protocol: 'tcp', from_port: 30, to_port: 20 }, 400],
    [{ parent_group_id: gid, ip_protocol: 'gre', from_port: 1, to_port: 2 }, 400],
    [{ parent_group_id: gid, ip_protocol: 'tcp', from_port: 'a', to_port: 2 }, 400],
    [{ parent_group_id: gid, ip_protocol: 'tcp', from_port: 1, to_port: 2, cidr: 'bad' }, 400],
    [{ parent_group_id: crypto.randomUUID(), ip_protocol: 'tcp', from_port: 1, to_port: 2 }, 404],
    [{ parent_group_id: gid, ip_protocol: 'tcp', from_port: 1, to_port: 2, group_id: crypto.randomUUID() }, 404],
  ] as const) {
    assert.equal((await alice.call('POST', '/os-security-group-rules', { body: { security_group_rule: body } })).status, status, JSON.stringify(body));
  }
  const shown = await alice.call('GET', `/os-security-groups/${gid}`);
  schemas.add('v2_1.security_groups', 'get_security_group', shown);
  assert.equal(shown.body.security_group.rules.length, 2, 'ingress rules only');
  assert.equal((await alice.call('DELETE', `/os-security-group-rules/${rule.body.security_group_rule.id}`)).status, 202);
  assert.equal((await alice.call('DELETE', `/os-security-group-rules/${rule.body.security_group_rule.id}`)).status, 404);
  const def = list.body.security_groups.find((g: any) => g.name === 'default');
  assert.equal((await alice.call('DELETE', `/os-security-groups/${def.id}`)).status, 400, 'the default group stays');
  assert.equal((await alice.call('DELETE', `/os-security-groups/${gid}`)).status, 202);
  assert.equal((await call('GET', `/security-groups/${gid}`, { token: alice.token })).status, 404);
  // from 2.36: gone
  assert.equal((await alice.call('GET', '/os-security-groups', { version: '2.36' })).status, 404);
  assert.equal((await alice.call('POST', '/os-security-group-rules', { version: '2.36', body: {} })).status, 404);

  const net = await create(call, 'networks', 'network', { name: 'proxy-net' }, alice.token);
  const nets = await alice.call('GET', '/os-networks');
  assert.equal(nets.status, 200);
  const mine = nets.body.networks.find((n: any) => n.id === net.id);
  assert.equal(mine.label, 'proxy-net');
  assert.equal(mine.cidr, null);
  assert.equal((await alice.call('GET', `/os-networks/${net.id}`)).body.network.label, 'proxy-net');
  assert.equal((await alice.call('GET', `/os-networks/${crypto.randomUUID()}`)).status, 404);
  assert.equal((await admin.call('POST', '/os-networks', { body: { network: { label: 'x' } } })).status, 410);
  assert.equal((await alice.call('GET', '/os-networks', { version: '2.36' })).status, 404);
  const tn = await alice.call('GET', '/os-tenant-networks');
  schemas.add('v2_1.tenant_networks', 'list_tenant_networks', tn);
  assert.deepEqual(tn.body.networks.find((n: any) => n.id === net.id), { id: net.id, cidr: 'None', label: 'proxy-net' });
  const one = await alice.call('GET', `/os-tenant-networks/${net.id}`);
  schemas.add('v2_1.tenant_networks', 'get_tenant_network', one);
  assert.equal((await alice.call('GET', `/os-tenant-networks/${crypto.randomUUID()}`)).status, 404);
  assert.equal((await alice.call('POST', '/os-tenant-networks', { body: { network: { label: 'x', cidr: '10.0.0.0/24' } } })).status, 410);
  assert.equal((await alice.call('GET', '/os-tenant-networks', { version: '2.36' })).status, 404);
  // another project's network is not shown
  const bob = await projectUser(cloud);
  assert.equal((await bob.call('GET', `/os-tenant-networks/${net.id}`)).status, 404);
  schemas.check();
});
