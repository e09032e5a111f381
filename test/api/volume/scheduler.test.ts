// The volume hosts' pools through the API (src/volume/pools.ts): Cinder's
// /scheduler-stats/get_pools and /capabilities/{host} (admins only), the
// capabilities filter of the scheduler (a type's extra specs against a
// pool's capabilities: a fitting pool is chosen, a volume no pool fits is
// `error` with Cinder's user message), and the retype of a volume a backend
// holds (within its backend: the type changes; to another backend: refused);
// /os-services and /os-hosts (services.ts).
// With Tempest's schemas.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tenant, uniqueName, useCloud, type Tenant } from '../../harness.ts';
import { agentCall, TempestSchemas } from '../compute/lib.ts';
import { PROTOCOL_VERSION } from '../../../src/fleet/protocol.ts';
import { specMatches } from '../../../src/volume/pools.ts';
import { adminCaller, assertFault, type Caller, cinder } from './lib.ts';

let alice: Tenant, admin: Caller;
const cloud = useCloud(async (c) => {
  alice = await tenant(c);
  admin = await adminCaller(c);
});
const call = cinder(cloud, () => admin);
const schemas = new TempestSchemas('volume');
const as = (t: Tenant): Caller => ({ token: t.token, projectId: t.projectId });

const HOST = uniqueName('vsched');
async function agent(method: string, path: string, body: unknown): Promise<any> {
  const r = await agentCall(cloud, method, path, body);
  assert.equal(r.status, 200, await r.clone().text());
  return r.json();
}
const register = () => agent('PUT', HOST, {
  protocol: PROTOCOL_VERSION, kinds: { volume: ['file'], volume_snapshot: [] }, vcpus: 2, memory_mb: 2048, disk_gb: 10, version: 'test',
  volume_pools: [{
    name: `${HOST}@file#default`, total_capacity_gb: 100, free_capacity_gb: 60, provisioned_capacity_gb: 3, max_over_subscription_ratio: 20,
    thin_provisioning_support: true, reflink: true, multiattach: true, driver: 'file',
  }],
});
/** One watch round of the host: the scheduler runs, the volumes handed to it. */
async function watch(): Promise<Map<string, { version: number; spec: any }>> {
  const r = await agent('POST', `${HOST}/watch`, { known: { volume: {}, volume_snapshot: {} }, wait: 0 });
  return new Map(r.resources.filter((x: any) => x.kind === 'volume').map((x: any) => [x.id, { version: x.version, spec: x.spec }]));
}
async function makeType(extra_specs: Record<string, string>): Promise<any> {
  const r = await call('POST', '/types', { body: { volume_type: { name: uniqueName('vt'), extra_specs } } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.volume_type;
}
const show = async (id: string) => (await call('GET', `/volumes/${id}`)).body.volume;

test('get_pools and capabilities: the pools the hosts report, with Cinder\'s capabilities; admins only', async () => {
  await register();
  const plain = await call('GET', '/scheduler-stats/get_pools');
  assert.equal(plain.status, 200);
  schemas.add('scheduler_stats', 'get_pools_no_detail', plain);
  assert.ok(plain.body.pools.some((p: { name: string }) => p.name === `${HOST}@file#default`));
  const detail = await call('GET', `/scheduler-stats/get_pools?detail=true&name=${encodeURIComponent(`${HOST}@file#default`)}`);
  schemas.add('scheduler_stats', 'get_pools_with_detail', detail);
  assert.equal(detail.body.pools.length, 1);
  const caps = detail.body.pools[0].capabilities;
  assert.equal(caps.volume_backend_name, 'file');
  assert.equal(caps.vendor_name, 'Stratus');
  assert.equal(caps.storage_protocol, 'file');
  assert.equal(caps.total_capacity_gb, 100);
  assert.equal(caps.free_capacity_gb, 60);
  for (const host of [`${HOST}@file`, `${HOST}@file#default`]) {
    const c = await call('GET', `/capabilities/${encodeURIComponent(host)}`);
    assert.equal(c.status, 200, JSON.stringify(c.body));
    schemas.add('capabilities', 'show_backend_capabilities', c);
    assert.equal(c.body.volume_backend_name, 'file');
    assert.equal(c.body.namespace, `OS::Storage::Capabilities::${HOST}@file`);
  }
  assertFault(await call('GET', `/capabilities/${encodeURIComponent('nohost@file')}`), 404, 'itemNotFound');
  assertFault(await call('GET', '/scheduler-stats/get_pools', { as: as(alice) }), 403, 'forbidden');
  assertFault(await call('GET', `/capabilities/${encodeURIComponent(`${HOST}@file`)}`, { as: as(alice) }), 403, 'forbidden');
  const ext = await call('GET', '/extensions', { as: as(alice) });
  for (const alias of ['scheduler-stats', 'capabilities', 'os-snapshot-actions']) assert.ok(ext.body.extensions.some((e: { alias: string }) => e.alias === alias), alias);
});

test('the capabilities filter: a type whose specs the pool fits is placed; one it does not fit is error with a user message', async () => {
  await register();
  const fits = await makeType({ storage_protocol: 'file', vendor_name: 'Stratus', 'capabilities:multiattach': '<is> True', 'RESKEY:availability_zones': 'nova' });
  const misfit = await makeType({ storage_protocol: uniqueName('proto'), vendor_name: uniqueName('vendor') });
  const unknownCap = await makeType({ spec1: 'val1' });
  const okr = await call('POST', '/volumes', { as: as(alice), body: { volume: { size: 1, volume_type: fits.name } } });
  assert.equal(okr.status, 202, JSON.stringify(okr.body));
  const ok = okr.body.volume;
  const bad = (await call('POST', '/volumes', { as: as(alice), body: { volume: { size: 1, volume_type: misfit.id } } })).body.volume;
  const odd = (await call('POST', '/volumes', { as: as(alice), body: { volume: { size: 1, volume_type: unknownCap.id } } })).body.volume;
  const handed = await watch();
  assert.ok(handed.has(ok.id), 'the fitting volume is placed on the pool');
  assert.equal((await show(ok.id))['os-vol-host-attr:host'], `${HOST}@file#default`);
  for (const v of [bad, odd]) {
    assert.ok(!handed.has(v.id));
    const s = await show(v.id);
    assert.equal(s.status, 'error');
    assert.equal(s['os-vol-host-attr:host'], null);
  }
  const msgs = await call('GET', `/messages?resource_uuid=${bad.id}`, { as: as(alice), version: '3.3' });
  assert.equal(msgs.status, 200);
  schemas.add('messages', 'list_messages', msgs);
  assert.equal(msgs.body.messages.length, 1);
  assert.equal(msgs.body.messages[0].event_id, 'VOLUME_VOLUME_001_003');
  assert.equal(msgs.body.messages[0].user_message, 'schedule allocate volume:Could not find any available weighted backend.');
  // a volume in error goes at once (no host holds anything)
  assert.equal((await call('DELETE', `/volumes/${bad.id}`, { as: as(alice) })).status, 202);
  assertFault(await call('GET', `/volumes/${bad.id}`), 404, 'itemNotFound');
});

test('Cinder\'s extra spec operators', () => {
  assert.ok(specMatches(true, '<is> True'));
  assert.ok(!specMatches(false, '<is> True'));
  assert.ok(specMatches('file', 'file'));
  assert.ok(!specMatches('file', 'iSCSI'));
  assert.ok(specMatches('file', '<or> iSCSI <or> file'));
  assert.ok(specMatches('Stratus', '<in> Strat'));
  assert.ok(specMatches(100, '>= 50'));
  assert.ok(specMatches(100, '= 100'));
  assert.ok(!specMatches(10, '>= 50'));
  assert.ok(specMatches('abc', 's== abc'));
});

test('retype of a volume a backend holds: within its backend the type changes at once; to another backend refused', async () => {
  await register();
  const v = (await call('POST', '/volumes', { as: as(alice), body: { volume: { size: 1 } } })).body.volume;
  assert.ok((await watch()).has(v.id));
  await call('POST', `/volumes/${v.id}/action`, { body: { 'os-reset_status': { status: 'available' } } });
  const same = await makeType({ volume_backend_name: 'file' });
  const other = await makeType({ volume_backend_name: 'lvm' });
  const retype = (t: string) => call('POST', `/volumes/${v.id}/action`, { as: as(alice), body: { 'os-retype': { new_type: t, migration_policy: 'never' } } });
  assertFault(await retype(other.name), 400, 'badRequest', /another backend/);
  assert.equal((await retype(same.name)).status, 202);
  const s = await show(v.id);
  assert.equal(s.volume_type, same.name);
  assert.equal(s['os-vol-host-attr:host'], `${HOST}@file#default`);
  assert.equal(s.status, 'available');
});

test('os-services and os-hosts: the scheduler and a cinder-volume per host@backend; enable/disable/freeze checked, then refused; admins only', async () => {
  await register();
  const all = await call('GET', '/os-services');
  schemas.add('services', 'list_services', all);
  const mine = all.body.services.find((s: { host: string }) => s.host === `${HOST}@file`);
  assert.ok(mine, JSON.stringify(all.body));
  assert.equal(mine.binary, 'cinder-volume');
  assert.equal(mine.state, 'up');
  assert.equal(mine.status, 'enabled');
  assert.ok(all.body.services.some((s: { binary: string }) => s.binary === 'cinder-scheduler'));
  const v37 = await call('GET', `/os-services?host=${HOST}&binary=cinder-volume`, { version: '3.7' });
  schemas.add('v3_7.services', 'list_services', v37);
  assert.deepEqual(v37.body.services.map((s: { host: string }) => s.host), [`${HOST}@file`]);
  assert.equal(v37.body.services[0].cluster, null);
  assert.equal((await call('GET', '/os-services?binary=nothing')).body.services.length, 0);
  assertFault(await call('PUT', '/os-services/enable', { body: { host: 'invalid_host', binary: 'cinder-volume' } }), 404, 'itemNotFound');
  assertFault(await call('PUT', '/os-services/disable', { body: { host: `${HOST}@file`, binary: 'invalid_binary' } }), 404, 'itemNotFound');
  assertFault(await call('PUT', '/os-services/disable-log-reason', { body: { host: `${HOST}@file`, binary: 'cinder-volume', disabled_reason: null } }), 400, 'badRequest');
  assertFault(await call('PUT', '/os-services/freeze', { body: { host: 'invalid_host' } }), 400, 'badRequest');
  assertFault(await call('PUT', '/os-services/thaw', { body: { host: 'invalid_host' } }), 400, 'badRequest');
  assertFault(await call('PUT', '/os-services/disable', { body: { host: `${HOST}@file`, binary: 'cinder-volume' } }), 400, 'badRequest', /not supported/);
  assertFault(await call('GET', '/os-services', { as: as(alice) }), 403, 'forbidden');
  // os-hosts: the same services; a volume host's usage per project
  const hosts = await call('GET', '/os-hosts');
  schemas.add('hosts', 'list_hosts', hosts);
  assert.ok(hosts.body.hosts.some((h: { host_name: string; service: string }) => h.host_name === `${HOST}@file` && h.service === 'cinder-volume'));
  const v = (await call('POST', '/volumes', { as: as(alice), body: { volume: { size: 2 } } })).body.volume;
  assert.ok((await watch()).has(v.id));
  const shown = await call('GET', `/os-hosts/${encodeURIComponent(`${HOST}@file`)}`);
  schemas.add('hosts', 'show_host', shown);
  const total = shown.body.host.find((x: any) => x.resource.project === '(total)').resource;
  const theirs = shown.body.host.find((x: any) => x.resource.project === alice.projectId).resource;
  assert.ok(Number(total.volume_count) >= 1);
  assert.ok(Number(theirs.total_volume_gb) >= 2);
  assertFault(await call('GET', '/os-hosts/nohost@file'), 404, 'itemNotFound');
  assertFault(await call('GET', '/os-hosts', { as: as(alice) }), 403, 'forbidden');
});

test('every collected body matches Tempest\'s volume schemas', () => {
  schemas.check();
});
