// Security groups, rules and address groups over HTTP (the default group and
// its rules, protocol and port-range validation, duplicates, groups in use),
// and quotas (show, update, details, defaults, enforcement with OverQuota).
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

test('the default group: made on first use once, with OpenStack\'s default rules; it cannot be deleted', async () => {
  const [a, b] = await Promise.all([call('GET', '/security-groups', { token: alice.token }), call('GET', '/security-groups', { token: alice.token })]);
  assert.equal(a.status, 200);
  const defaults = a.body.security_groups.filter((g: { name: string }) => g.name === 'default');
  assert.equal(defaults.length, 1, 'one default group, made once');
  assert.equal(b.body.security_groups.filter((g: { name: string }) => g.name === 'default')[0].id, defaults[0].id);
  const g = defaults[0];
  assert.equal(g.project_id, alice.projectId);
  assert.equal(g.stateful, true);
  const rules = g.security_group_rules.map((r: Record<string, unknown>) => `${r.direction}/${r.ethertype}/${r.remote_group_id === g.id ? 'self' : r.remote_group_id}/${r.protocol}`).sort();
  assert.deepEqual(rules, ['egress/IPv4/null/null', 'egress/IPv6/null/null', 'ingress/IPv4/self/null', 'ingress/IPv6/self/null']);
  assertNeutronError(await call('DELETE', `/security-groups/${g.id}`, { token: alice.token }), 409, 'SecurityGroupCannotRemoveDefault');
  assertNeutronError(await call('PUT', `/security-groups/${g.id}`, { token: alice.token, body: { security_group: { name: 'other' } } }), 400, 'SecurityGroupCannotUpdateDefault');
  assertNeutronError(await call('GET', `/security-groups/${g.id}`, { token: bob.token }), 404, 'SecurityGroupNotFound');
  assert.ok(!(await call('GET', '/security-groups', { token: bob.token })).body.security_groups.some((x: { id: string }) => x.id === g.id));
});

test('rules: protocols by name and number, port ranges, remotes, duplicates, delete', async () => {
  const g = await create(call, 'security-groups', 'security_group', { name: uniqueName('web'), description: 'web' }, alice.token);
  assert.equal(g.security_group_rules.length, 2, 'a new group lets everything out');
  const rule = (body: Record<string, unknown>) => call('POST', '/security-group-rules', { token: alice.token, body: { security_group_rule: { security_group_id: g.id, direction: 'ingress', ...body } } });
  const ssh = await rule({ protocol: 'tcp', port_range_min: 22, port_range_max: 22, remote_ip_prefix: '10.0.0.1/8' });
  assert.equal(ssh.status, 201, JSON.stringify(ssh.body));
  assert.equal(ssh.body.security_group_rule.ethertype, 'IPv4');
  assert.equal(ssh.body.security_group_rule.remote_ip_prefix, '10.0.0.0/8');
  assertNeutronError(await rule({ protocol: 'tcp', port_range_min: 22, port_range_max: 22, remote_ip_prefix: '10.0.0.0/8' }), 409, 'SecurityGroupRuleExists', new RegExp(ssh.body.security_group_rule.id));
  assert.equal((await rule({ protocol: '17', port_range_min: 53, port_range_max: 53 })).body.security_group_rule.protocol, '17');
  assert.equal((await rule({ protocol: 'icmp', port_range_min: 8, port_range_max: 0 })).status, 201);
  assert.equal((await rule({ protocol: 'ipv6-icmp', ethertype: 'IPv6' })).status, 201);
  assertNeutronError(await rule({ protocol: 'ipv6-icmp', ethertype: 'IPv4' }), 400, 'SecurityGroupEthertypeConflictWithProtocol');
  assertNeutronError(await rule({ protocol: 'bogus' }), 400, 'SecurityGroupRuleInvalidProtocol');
  assertNeutronError(await rule({ protocol: 300 }), 400, 'SecurityGroupRuleInvalidProtocol');
  assertNeutronError(await rule({ protocol: 'tcp', port_range_min: 90, port_range_max: 80 }), 400, 'SecurityGroupInvalidPortRange');
  assertNeutronError(await rule({ protocol: 'tcp', port_range_min: 70000, port_range_max: 70000 }), 400, 'SecurityGroupInvalidPortValue', /Invalid value for port 70000/);
  assertNeutronError(await rule({ protocol: 'tcp', port_range_min: -16, port_range_max: 80 }), 400, 'SecurityGroupInvalidPortValue', /Invalid value for port -16/);
  assertNeutronError(await rule({ protocol: 'tcp', port_range_max: 6 }), 400, 'SecurityGroupInvalidPortRange', /port_range_min must be <= port_range_max/);
  assertNeutronError(await rule({ protocol: 'icmp', port_range_min: 1, port_range_max: 256 }), 400, 'SecurityGroupInvalidIcmpValue', /Invalid value for ICMP code/);
  assertNeutronError(await call('PUT', `/security-groups/${g.id}`, { token: alice.token, body: { security_group: { name: 'default' } } }), 409, 'SecurityGroupDefaultAlreadyExists');
  assertNeutronError(await call('POST', '/security-groups', { body: { security_group: { name: 'default' } } }), 409, 'SecurityGroupDefaultAlreadyExists');
  assertNeutronError(await rule({ port_range_min: 80, port_range_max: 80 }), 400, 'SecurityGroupProtocolRequiredWithPorts');
  assertNeutronError(await rule({ protocol: 'gre', port_range_min: 80, port_range_max: 80 }), 400, 'SecurityGroupInvalidProtocolForPort');
  assertNeutronError(await rule({ protocol: 'icmp', port_range_max: 3 }), 400, 'SecurityGroupMissingIcmpType');
  assertNeutronError(await rule({ remote_ip_prefix: '::/0' }), 400, 'SecurityGroupRuleParameterConflict');
  assertNeutronError(await rule({ remote_ip_prefix: '10.0.0.0/8', remote_group_id: g.id }), 400, 'SecurityGroupMultipleRemoteEntites');
  assertNeutronError(await rule({ direction: 'sideways' }), 400);
  assertNeutronError(await call('POST', '/security-group-rules', { token: bob.token, body: { security_group_rule: { security_group_id: g.id, direction: 'ingress' } } }), 404, 'SecurityGroupNotFound');

  const ag = await create(call, 'address-groups', 'address_group', { name: uniqueName('ag'), addresses: ['192.168.1.5', '10.1.0.0/16'] }, alice.token);
  assert.deepEqual(ag.addresses.sort(), ['10.1.0.0/16', '192.168.1.5/32']);
  const added = await call('PUT', `/address-groups/${ag.id}/add_addresses`, { token: alice.token, body: { addresses: ['172.16.0.0/12'] } });
  assert.equal(added.body.address_group.addresses.length, 3);
  assertNeutronError(await call('PUT', `/address-groups/${ag.id}/remove_addresses`, { token: alice.token, body: { addresses: ['8.8.8.8/32'] } }), 404, 'AddressesNotFound');
  const byGroup = await rule({ protocol: 'tcp', port_range_min: 443, port_range_max: 443, remote_address_group_id: ag.id });
  assert.equal(byGroup.status, 201, JSON.stringify(byGroup.body));
  assertNeutronError(await call('DELETE', `/address-groups/${ag.id}`, { token: alice.token }), 409, 'AddressGroupInUse');

  const bulk = await call('POST', '/security-group-rules', { token: alice.token, body: { security_group_rules: [
    { security_group_id: g.id, direction: 'ingress', protocol: 'udp', port_range_min: 1000, port_range_max: 2000 },
    { security_group_id: g.id, direction: 'ingress', protocol: 'udp', port_range_min: 1000, port_range_max: 2000 },
  ] } });
  assertNeutronError(bulk, 409, 'SecurityGroupRuleExists');
  assert.ok(!(await call('GET', `/security-group-rules?security_group_id=${g.id}&port_range_min=1000`, { token: alice.token })).body.security_group_rules.length, 'all or nothing');
  const listed = await call('GET', `/security-group-rules?security_group_id=${g.id}&protocol=tcp&sort_key=port_range_min`, { token: alice.token });
  assert.deepEqual(listed.body.security_group_rules.map((r: { port_range_min: number }) => r.port_range_min), [22, 443]);
  assert.equal((await call('DELETE', `/security-group-rules/${byGroup.body.security_group_rule.id}`, { token: alice.token })).status, 204);
  assertNeutronError(await call('GET', `/security-group-rules/${byGroup.body.security_group_rule.id}`, { token: alice.token }), 404, 'SecurityGroupRuleNotFound');
  assert.equal((await call('DELETE', `/address-groups/${ag.id}`, { token: alice.token })).status, 204);

  // a group on a port is in use
  const n = await create(call, 'networks', 'network', { name: uniqueName('sg-net') }, alice.token);
  const p = await create(call, 'ports', 'port', { network_id: n.id, security_groups: [g.id] }, alice.token);
  assert.deepEqual(p.security_groups, [g.id]);
  assertNeutronError(await call('DELETE', `/security-groups/${g.id}`, { token: alice.token }), 409, 'SecurityGroupInUse');
  const other = await create(call, 'security-groups', 'security_group', { name: uniqueName('b') }, bob.token);
  assertNeutronError(await call('POST', '/ports', { token: alice.token, body: { port: { network_id: n.id, security_groups: [other.id] } } }), 404, 'SecurityGroupNotFound');
  assert.equal((await call('DELETE', `/ports/${p.id}`, { token: alice.token })).status, 204);
  assert.equal((await call('DELETE', `/security-groups/${g.id}`, { token: alice.token })).status, 204);
  assert.equal((await call('DELETE', `/networks/${n.id}`, { token: alice.token })).status, 204);
});

test('quotas: defaults, update, details, enforcement (OverQuota), reset; projects see only their own', async () => {
  const mine = await call('GET', `/quotas/${bob.projectId}`, { token: bob.token });
  assert.equal(mine.status, 200);
  assert.equal(mine.body.quota.network, 100);
  assert.equal(mine.body.quota.port, 500);
  assertNeutronError(await call('GET', `/quotas/${alice.projectId}`, { token: bob.token }), 403);
  assertNeutronError(await call('PUT', `/quotas/${bob.projectId}`, { token: bob.token, body: { quota: { network: 1 } } }), 403);
  const set = await call('PUT', `/quotas/${bob.projectId}`, { body: { quota: { network: 2, security_group: 1 } } });
  assert.equal(set.status, 200, JSON.stringify(set.body));
  assert.equal(set.body.quota.network, 2);
  assertNeutronError(await call('PUT', `/quotas/${bob.projectId}`, { body: { quota: { bogus: 1 } } }), 400);
  assertNeutronError(await call('PUT', `/quotas/${bob.projectId}`, { body: { quota: { network: -5 } } }), 400);
  const existing = (await call('GET', `/networks?project_id=${bob.projectId}`)).body.networks.length;
  const results = await Promise.all(Array.from({ length: 4 }, () => call('POST', '/networks', { token: bob.token, body: { network: {} } })));
  const made = results.filter((r) => r.status === 201);
  assert.equal(made.length, Math.max(0, 2 - existing));
  for (const r of results.filter((x) => x.status !== 201)) assertNeutronError(r, 409, 'OverQuota', /\['network'\]/);
  const details = await call('GET', `/quotas/${bob.projectId}/details.json`, { token: bob.token });
  assert.deepEqual(details.body.quota.network, { limit: 2, used: 2, reserved: 0 });
  assert.equal((await call('GET', `/quotas/${bob.projectId}/default`, { token: bob.token })).body.quota.network, 100);
  assert.ok((await call('GET', '/quotas')).body.quotas.some((q: { project_id: string }) => q.project_id === bob.projectId));
  assert.equal((await call('DELETE', `/quotas/${bob.projectId}`)).status, 204);
  assert.equal((await call('GET', `/quotas/${bob.projectId}`, { token: bob.token })).body.quota.network, 100);
  for (const r of made) await call('DELETE', `/networks/${r.body.network.id}`, { token: bob.token });
});
