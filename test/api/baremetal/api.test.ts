// The bare-metal API's frame (src/baremetal): version discovery, microversion
// negotiation with Ironic's headers and 406s, Ironic's error body, fields
// that appear with their microversion, routes gated by version, and the
// catalog entry.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useCloud } from '../../harness.ts';
import { assertIronicError, ironic, TestConductor } from './lib.ts';

const cloud = useCloud(async (c) => {
  await new TestConductor(c, 'bm-api-cond').register();
});
const bm = () => ironic(cloud);

test('version discovery: the root and /v1 name the range', async () => {
  const r = await bm()('GET', '/', { version: null });
  assert.equal(r.status, 200);
  assert.equal(r.body.name, 'OpenStack Ironic API');
  assert.equal(r.body.default_version.id, 'v1');
  assert.equal(r.body.default_version.min_version, '1.1');
  assert.equal(r.body.default_version.version, '1.78');
  assert.equal(r.body.versions[0].status, 'CURRENT');
  assert.equal(r.headers.get('x-openstack-ironic-api-minimum-version'), '1.1');
  assert.equal(r.headers.get('x-openstack-ironic-api-maximum-version'), '1.78');
  const v1 = await bm()('GET', '/v1', { version: 'latest' });
  assert.equal(v1.status, 200);
  assert.equal(v1.body.id, 'v1');
  assert.deepEqual(v1.body.media_types, { base: 'application/json', type: 'application/vnd.openstack.ironic.v1+json' });
  for (const k of ['nodes', 'ports', 'drivers', 'chassis', 'portgroups', 'conductors', 'allocations']) assert.ok(v1.body[k], k);
  assert.equal(v1.headers.get('x-openstack-ironic-api-version'), '1.78');
  const old = await bm()('GET', '/v1', { version: '1.1' });
  assert.equal(old.body.allocations, undefined);
});

test('microversions: default 1.1, latest, both headers, 406 outside the range or malformed', async () => {
  const none = await bm()('GET', '/v1/nodes', { version: null });
  assert.equal(none.status, 200);
  assert.equal(none.headers.get('x-openstack-ironic-api-version'), '1.1');
  assert.equal(none.headers.get('openstack-api-version'), 'baremetal 1.1');
  const latest = await bm()('GET', '/v1/nodes', { version: 'latest' });
  assert.equal(latest.headers.get('x-openstack-ironic-api-version'), '1.78');
  const generic = await cloud.call('GET', '/baremetal/v1/nodes', { token: cloud.adminToken, headers: { 'OpenStack-API-Version': 'baremetal 1.50' } });
  assert.equal(generic.headers.get('x-openstack-ironic-api-version'), '1.50');
  const high = await bm()('GET', '/v1/nodes', { version: '1.79' });
  assertIronicError(high, 406, /Version 1\.79 was requested but the minor version is not supported by this service\. The supported version range is: \[1\.1, 1\.78\]\./);
  assert.equal(high.headers.get('x-openstack-ironic-api-maximum-version'), '1.78');
  assertIronicError(await bm()('GET', '/v1/nodes', { version: '2.0' }), 406, /Mutually exclusive versions requested/);
  assertIronicError(await bm()('GET', '/v1/nodes', { version: '1.0' }), 406);
  assertIronicError(await bm()('GET', '/v1/nodes', { version: 'one' }), 406, /Invalid value for X-OpenStack-Ironic-API-Version header/);
});

test("Ironic's error body, 401 without a token, 404 for unknown routes", async () => {
  const r = await cloud.call('GET', '/baremetal/v1/nodes');
  assertIronicError(r, 401);
  assertIronicError(await bm()('GET', '/v1/nodes/no-such-node'), 404, /Node no-such-node could not be found\./);
  assertIronicError(await bm()('GET', '/v1/no-such-thing'), 404);
});

test('routes and fields appear with their microversion', async () => {
  assertIronicError(await bm()('GET', '/v1/allocations', { version: '1.51' }), 404);
  assert.equal((await bm()('GET', '/v1/allocations', { version: '1.52' })).status, 200);
  assertIronicError(await bm()('GET', '/v1/conductors', { version: '1.48' }), 404);
  assert.equal((await bm()('GET', '/v1/conductors', { version: '1.49' })).status, 200);
  const c = await bm()('POST', '/v1/nodes', { body: { driver: 'ipmi', name: 'mv-node', driver_info: { ipmi_address: '192.0.2.1' } } });
  assert.equal(c.status, 201, JSON.stringify(c.body));
  const at = async (v: string) => (await bm()('GET', '/v1/nodes/mv-node', { version: v })).body;
  const v164 = await at('1.64');
  assert.ok('owner' in v164 && !('lessee' in v164));
  const v165 = await at('1.65');
  assert.ok('lessee' in v165 && !('boot_mode' in v165));
  assert.ok('boot_mode' in (await at('1.75')));
  const v149 = await at('1.49');
  assert.ok('conductor' in v149 && !('owner' in v149));
  const v136 = await at('1.36');
  assert.ok(!('traits' in v136));
  assert.ok('traits' in (await at('1.37')));
  // a name is addressable from 1.5: the uuid works at every version
  assert.equal((await bm()('GET', `/v1/nodes/${c.body.uuid}`, { version: '1.1' })).body.uuid, c.body.uuid);
  // history appears at 1.78
  assertIronicError(await bm()('GET', '/v1/nodes/mv-node/history', { version: '1.77' }), 404);
  assert.equal((await bm()('GET', '/v1/nodes/mv-node/history', { version: '1.78' })).status, 200);
  // a field of a newer version in a create or patch is a 406
  assertIronicError(await bm()('POST', '/v1/nodes', { version: '1.64', body: { driver: 'ipmi', lessee: 'p' } }), 406);
  assertIronicError(await bm()('PATCH', '/v1/nodes/mv-node', { version: '1.50', body: [{ op: 'add', path: '/description', value: 'x' }] }), 406);
  // nodes created before 1.11 start available, later ones in enroll
  const old = await bm()('POST', '/v1/nodes', { version: '1.10', body: { driver: 'ipmi', driver_info: { ipmi_address: '192.0.2.2' } } });
  assert.equal(old.body.provision_state, 'available');
  assert.equal(c.body.provision_state, 'enroll');
  // `fields` needs 1.8
  assertIronicError(await bm()('GET', '/v1/nodes/mv-node?fields=uuid', { version: '1.7' }), 406);
});

test('the catalog names the service baremetal / ironic', async () => {
  const r = await cloud.call('GET', '/identity/v3/auth/catalog', { token: cloud.adminToken });
  const entry = r.body.catalog.find((e: any) => e.type === 'baremetal');
  assert.ok(entry, JSON.stringify(r.body.catalog.map((e: any) => e.type)));
  assert.equal(entry.name, 'ironic');
  assert.ok(entry.endpoints.some((e: any) => e.url.endsWith('/baremetal')));
});
