// The network API's foundation over HTTP: discovery, extensions, Neutron's
// error envelope, the list machinery (filters, fields, sorting, pagination),
// standard attributes (revision_number and If-Match, timestamps, tags), the
// project boundary, and networks with their provider attributes and VNIs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { tenant, uniqueName, useCloud, type Tenant } from '../../harness.ts';
import { assertNeutronError, create, neutron } from './lib.ts';

let alice: Tenant, bob: Tenant, reader: Tenant;
const cloud = useCloud(async (c) => {
  alice = await tenant(c);
  bob = await tenant(c);
  reader = await tenant(c, ['reader']);
}, { network: { vniRange: [100, 104] } });
const call = neutron(cloud);

test('discovery: version document, v2.0 resources, extensions', async () => {
  const root = await cloud.call('GET', '/network/');
  assert.equal(root.status, 200);
  assert.equal(root.body.versions[0].id, 'v2.0');
  assert.equal(root.body.versions[0].status, 'CURRENT');
  assert.match(root.body.versions[0].links[0].href, /\/network\/v2\.0\/$/);
  const v2 = await cloud.call('GET', '/network/v2.0');
  assert.ok(v2.body.resources.some((r: { collection: string }) => r.collection === 'networks'));
  const ext = await call('GET', '/extensions');
  assert.equal(ext.status, 200);
  const aliases = ext.body.extensions.map((e: { alias: string }) => e.alias);
  for (const a of ['provider', 'external-net', 'standard-attr-tag', 'revision-if-match', 'quotas', 'filter-validation']) assert.ok(aliases.includes(a), a);
  for (const a of ['router', 'ext-gw-mode', 'extraroute', 'extraroute-atomic', 'fip-port-details', 'floating-ip-port-forwarding', 'auto-allocated-topology']) assert.ok(aliases.includes(a), a);
  assert.ok(!aliases.includes('l3-ha'), 'HA routers are not implemented');
  const one = await call('GET', '/extensions/provider');
  assert.equal(one.body.extension.alias, 'provider');
  assertNeutronError(await call('GET', '/extensions/l3-ha'), 404);
  assertNeutronError(await cloud.call('GET', '/network/v2.0/networks'), 401);
  assertNeutronError(await call('GET', '/nothing-here'), 404, 'HTTPNotFound');
});

test('networks: create, show, defaults, update with revisions, delete', async () => {
  const n = await create(call, 'networks', 'network', { name: uniqueName('net') }, alice.token);
  assert.equal(n.project_id, alice.projectId);
  assert.equal(n.tenant_id, alice.projectId);
  assert.equal(n.mtu, 1450);
  assert.equal(n.status, 'ACTIVE');
  assert.equal(n.admin_state_up, true);
  assert.equal(n.shared, false);
  assert.equal(n['router:external'], false);
  assert.equal(n.port_security_enabled, true);
  assert.deepEqual(n.subnets, []);
  assert.deepEqual(n.tags, []);
  assert.equal(n.revision_number, 0);
  assert.match(n.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.equal(n['provider:network_type'], undefined, 'provider attributes are for admins');
  const asAdmin = (await call('GET', `/networks/${n.id}`)).body.network;
  assert.equal(asAdmin['provider:network_type'], 'vxlan');
  assert.ok(asAdmin['provider:segmentation_id'] >= 100 && asAdmin['provider:segmentation_id'] <= 104);

  const up = await call('PUT', `/networks/${n.id}`, { token: alice.token, body: { network: { name: 'renamed', description: 'd' } } });
  assert.equal(up.status, 200, JSON.stringify(up.body));
  assert.equal(up.body.network.name, 'renamed');
  assert.equal(up.body.network.revision_number, 1);
  assertNeutronError(await call('PUT', `/networks/${n.id}`, { token: alice.token, headers: { 'If-Match': 'revision_number=0' }, body: { network: { name: 'x' } } }),
    412, 'RevisionNumberConstraintFailed');
  const ok = await call('PUT', `/networks/${n.id}`, { token: alice.token, headers: { 'If-Match': 'revision_number=1' }, body: { network: { admin_state_up: false } } });
  assert.equal(ok.body.network.revision_number, 2);
  assertNeutronError(await call('PUT', `/networks/${n.id}`, { token: alice.token, body: { network: { bogus: 1 } } }), 400);
  assertNeutronError(await call('PUT', `/networks/${n.id}`, { token: alice.token, body: { network: { mtu: 9000 } } }), 400, 'InvalidInput');
  assertNeutronError(await call('PUT', `/networks/${n.id}`, { token: alice.token, body: { network: { shared: true } } }), 403, 'PolicyNotAuthorized');
  assertNeutronError(await call('DELETE', `/networks/${n.id}`, { token: alice.token, headers: { 'If-Match': 'revision_number=1' } }), 412);
  assert.equal((await call('DELETE', `/networks/${n.id}`, { token: alice.token })).status, 204);
  assertNeutronError(await call('GET', `/networks/${n.id}`, { token: alice.token }), 404, 'NetworkNotFound', new RegExp(n.id));
  assertNeutronError(await call('POST', '/networks', { token: alice.token, body: { network: { name: 'x', 'provider:network_type': 'flat' } } }), 403, 'PolicyNotAuthorized');
  assertNeutronError(await call('POST', '/networks', { token: alice.token, body: { network: { unknown_attr: 1 } } }), 400);
  assertNeutronError(await call('POST', '/networks', { token: alice.token, body: { network: { admin_state_up: 'yes' } } }), 400);
  assertNeutronError(await call('POST', '/networks', { token: reader.token, body: { network: {} } }), 403);
  // PostgreSQL's text holds no NUL: refused on either database
  assertNeutronError(await call('POST', '/networks', { token: alice.token, body: { network: { name: 'a\u0000b' } } }), 400);
  assertNeutronError(await call('GET', '/networks?name=a%00b', { token: alice.token }), 400);
  assertNeutronError(await call('GET', '/networks/a%00b', { token: alice.token }), 400);
});

test('projects: another project\'s network is a 404; shared and external ones are visible', async () => {
  const priv = await create(call, 'networks', 'network', { name: uniqueName('priv') }, alice.token);
  const shared = await create(call, 'networks', 'network', { name: uniqueName('shared'), shared: true, project_id: alice.projectId });
  assertNeutronError(await call('GET', `/networks/${priv.id}`, { token: bob.token }), 404, 'NetworkNotFound');
  assertNeutronError(await call('PUT', `/networks/${priv.id}`, { token: bob.token, body: { network: { name: 'x' } } }), 404);
  assertNeutronError(await call('DELETE', `/networks/${priv.id}`, { token: bob.token }), 404);
  const seen = (await call('GET', '/networks', { token: bob.token })).body.networks.map((x: { id: string }) => x.id);
  assert.ok(seen.includes(shared.id));
  assert.ok(!seen.includes(priv.id));
  assertNeutronError(await call('DELETE', `/networks/${shared.id}`, { token: bob.token }), 403, 'PolicyNotAuthorized');
  assertNeutronError(await call('POST', '/networks', { token: bob.token, body: { network: { project_id: alice.projectId } } }), 403);
  for (const id of [priv.id, shared.id]) assert.equal((await call('DELETE', `/networks/${id}`)).status, 204);
});

test('lists: filters (OR on repeats), fields, sorting, pagination with links', async () => {
  const tag = uniqueName('page');
  const made = [];
  for (const name of ['c', 'a', 'e', 'b', 'd']) {
    const n = await create(call, 'networks', 'network', { name: `${tag}-${name}`, admin_state_up: name !== 'e' }, bob.token);
    assert.equal((await call('PUT', `/networks/${n.id}/tags/${tag}`, { token: bob.token })).status, 201);
    made.push(n);
  }
  const q = `/networks?tags=${tag}`;
  const names = (r: { body: { networks: Array<{ name: string }> } }) => r.body.networks.map((n) => n.name.slice(-1));
  assert.deepEqual(names(await call('GET', `${q}&sort_key=name&sort_dir=desc`, { token: bob.token })), ['e', 'd', 'c', 'b', 'a']);
  assert.deepEqual(names(await call('GET', `${q}&name=${tag}-a&name=${tag}-b&sort_key=name`, { token: bob.token })), ['a', 'b']);
  assert.deepEqual(names(await call('GET', `${q}&admin_state_up=false`, { token: bob.token })), ['e']);
  const fields = await call('GET', `${q}&fields=id&fields=name`, { token: bob.token });
  assert.deepEqual(Object.keys(fields.body.networks[0]).sort(), ['id', 'name']);
  assertNeutronError(await call('GET', `${q}&bogus=1`, { token: bob.token }), 400);
  assertNeutronError(await call('GET', `${q}&sort_key=subnets`, { token: bob.token }), 400);
  assertNeutronError(await call('GET', `${q}&limit=x`, { token: bob.token }), 400);
  assertNeutronError(await call('GET', `${q}&admin_state_up=maybe`, { token: bob.token }), 400);

  const p1 = await call('GET', `${q}&sort_key=name&limit=2`, { token: bob.token });
  assert.deepEqual(names(p1), ['a', 'b']);
  const next = p1.body.networks_links.find((l: { rel: string }) => l.rel === 'next');
  assert.ok(next, JSON.stringify(p1.body));
  assert.ok(!p1.body.networks_links.some((l: { rel: string }) => l.rel === 'previous'));
  const p2 = await cloud.call('GET', new URL(next.href).pathname + new URL(next.href).search, { token: bob.token });
  assert.deepEqual(names(p2), ['c', 'd']);
  const prev = p2.body.networks_links.find((l: { rel: string }) => l.rel === 'previous');
  const back = await cloud.call('GET', new URL(prev.href).pathname + new URL(prev.href).search, { token: bob.token });
  assert.deepEqual(names(back), ['a', 'b']);
  const next2 = p2.body.networks_links.find((l: { rel: string }) => l.rel === 'next');
  const p3 = await cloud.call('GET', new URL(next2.href).pathname + new URL(next2.href).search, { token: bob.token });
  assert.deepEqual(names(p3), ['e']);
  assert.ok(!(p3.body.networks_links ?? []).some((l: { rel: string }) => l.rel === 'next'));
  assertNeutronError(await call('GET', `${q}&limit=2&marker=${randomUUID()}`, { token: bob.token }), 404, 'NetworkNotFound');
  for (const n of made) await call('DELETE', `/networks/${n.id}`, { token: bob.token });
});

test('tags: replace, add, check, remove, filters tags-any / not-tags / not-tags-any', async () => {
  const a = await create(call, 'networks', 'network', { name: uniqueName('tag-a') }, alice.token);
  const b = await create(call, 'networks', 'network', { name: uniqueName('tag-b') }, alice.token);
  const put = await call('PUT', `/networks/${a.id}/tags`, { token: alice.token, body: { tags: ['red', 'blue'] } });
  assert.equal(put.status, 200);
  assert.deepEqual(put.body.tags.sort(), ['blue', 'red']);
  assert.equal((await call('PUT', `/networks/${b.id}/tags/red`, { token: alice.token })).status, 201);
  assert.equal((await call('GET', `/networks/${a.id}/tags/blue`, { token: alice.token })).status, 204);
  assertNeutronError(await call('GET', `/networks/${b.id}/tags/blue`, { token: alice.token }), 404, 'TagNotFound');
  const ids = async (q: string) => (await call('GET', `/networks?${q}`, { token: alice.token })).body.networks.map((n: { id: string }) => n.id).filter((id: string) => id === a.id || id === b.id).sort();
  assert.deepEqual(await ids('tags=red,blue'), [a.id]);
  assert.deepEqual(await ids('tags-any=red,blue'), [a.id, b.id].sort());
  assert.deepEqual(await ids('not-tags=red,blue'), [b.id]);
  assert.deepEqual(await ids('not-tags-any=blue'), [b.id]);
  const shown = (await call('GET', `/networks/${a.id}`, { token: alice.token })).body.network;
  assert.equal(shown.revision_number, 1, 'a tag change is a revision');
  assert.equal((await call('DELETE', `/networks/${a.id}/tags/red`, { token: alice.token })).status, 204);
  assertNeutronError(await call('DELETE', `/networks/${a.id}/tags/red`, { token: alice.token }), 404, 'TagNotFound');
  assert.equal((await call('DELETE', `/networks/${a.id}/tags`, { token: alice.token })).status, 204);
  assert.deepEqual((await call('GET', `/networks/${a.id}/tags`, { token: alice.token })).body.tags, []);
  assertNeutronError(await call('PUT', `/networks/${a.id}/tags/x`, { token: bob.token }), 404);
  for (const n of [a, b]) await call('DELETE', `/networks/${n.id}`, { token: alice.token });
});

test('provider attributes and the VNI allocator: range, explicit ids, flat physnets, exhaustion', async () => {
  const explicit = await create(call, 'networks', 'network', { 'provider:network_type': 'vxlan', 'provider:segmentation_id': 5000 });
  assert.equal(explicit['provider:segmentation_id'], 5000);
  assertNeutronError(await call('POST', '/networks', { body: { network: { 'provider:segmentation_id': 5000 } } }), 409, 'TunnelIdInUse');
  const flat = await create(call, 'networks', 'network', { 'provider:network_type': 'flat', 'provider:physical_network': 'physnet1' });
  assert.equal(flat.mtu, 1500);
  assert.equal(flat['provider:segmentation_id'], null);
  assertNeutronError(await call('POST', '/networks', { body: { network: { 'provider:network_type': 'flat', 'provider:physical_network': 'physnet1' } } }), 409, 'FlatNetworkInUse');
  assertNeutronError(await call('POST', '/networks', { body: { network: { 'provider:network_type': 'flat' } } }), 400, 'InvalidInput');
  assertNeutronError(await call('POST', '/networks', { body: { network: { 'provider:network_type': 'vlan' } } }), 400, 'InvalidInput');
  assertNeutronError(await call('PUT', `/networks/${flat.id}`, { body: { network: { 'provider:segmentation_id': 7 } } }), 400);
  // the range 100..104 in parallel: five networks get five different VNIs, the sixth finds none
  const results = await Promise.all(Array.from({ length: 6 }, () => call('POST', '/networks', { body: { network: {} } })));
  const made = results.filter((r) => r.status === 201).map((r) => r.body.network);
  assert.equal(made.length, 5, JSON.stringify(results.map((r) => r.status)));
  assert.deepEqual(made.map((n) => n['provider:segmentation_id']).sort(), [100, 101, 102, 103, 104]);
  assertNeutronError(results.find((r) => r.status !== 201)!, 503, 'NoNetworkAvailable');
  assert.equal((await call('DELETE', `/networks/${made[2].id}`)).status, 204);
  const again = await create(call, 'networks', 'network', {});
  assert.equal(again['provider:segmentation_id'], made[2]['provider:segmentation_id'], 'a freed VNI is given again');
  for (const n of [...made.filter((_, i) => i !== 2), again, explicit, flat]) assert.equal((await call('DELETE', `/networks/${n.id}`)).status, 204);
});
