// Servers through the API: no agent runs here, so these tests check the intent
// the API records (BUILD, task states, version bumps), its state checks (409),
// tenancy, quotas, filters and the bodies per microversion. Where a test needs
// a server the engine would have started, it writes what an agent reports
// (host, vm_state, power_state, launched_at) straight into the row.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useCloud } from '../../harness.ts';
import { adminNova, projectUser, TempestSchemas, type Nova } from './lib.ts';

let admin: Nova;
let alice: Nova;
let bob: Nova;
let imageId: string;
const schemas = new TempestSchemas();
const cloud = useCloud(async (cloud) => {
  admin = await adminNova(cloud);
  alice = await projectUser(cloud, ['member']);
  bob = await projectUser(cloud, ['member']);
  imageId = await makeImage('disk');
  await registerHost('host-1');
  // a zone whose only host is disabled: servers asking for it find no host
  await registerHost('host-b', 'zone-b', 'disabled');
  await registerHost('host-x', 'nova', 'disabled');
  for (const p of [alice.projectId, bob.projectId]) {
    await db().insertInto('compute_quotas').values([{ project_id: p, resource: 'instances', hard_limit: 100 }, { project_id: p, resource: 'cores', hard_limit: 100 },
      { project_id: p, resource: 'ram', hard_limit: 1_000_000 }]).execute();
  }
}, { compute: { consoleTimeoutMs: 300, snapshotTimeoutMs: 500 } });

async function makeImage(name: string, extra: Record<string, unknown> = {}): Promise<string> {
  const c = await cloud.call('POST', '/image/v2/images', {
    token: cloud.adminToken, body: { name, container_format: 'bare', disk_format: 'raw', visibility: 'public', ...extra },
  });
  assert.equal(c.status, 201, JSON.stringify(c.body));
  const r = await fetch(`${cloud.url}/image/v2/images/${c.body.id}/file`, {
    method: 'PUT', headers: { 'X-Auth-Token': cloud.adminToken, 'Content-Type': 'application/octet-stream' }, body: Buffer.alloc(4096, 1),
  });
  assert.equal(r.status, 204, await r.text());
  return c.body.id;
}

const db = () => cloud.server.database.db;

/**
 * Registers a host as an agent would. The scheduler runs in-process, so servers
 * get placed on it (task_state spawning) and wait there for an agent that never
 * comes; its heartbeat is set in the future so it stays up for the whole test.
 */
async function registerHost(hostname: string, az = 'nova', status = 'enabled') {
  const now = new Date().toISOString();
  await db().insertInto('compute_hosts').values({
    id: crypto.randomUUID(), hostname, service_id: crypto.randomUUID(), kinds: '["container","vm"]', vcpus: 64, memory_mb: 262144, disk_gb: 2000,
    cpu_allocation_ratio: 16, ram_allocation_ratio: 1.5, disk_allocation_ratio: 1, availability_zone: az, status,
    disabled_reason: null, forced_down: 0, host_ip: '127.0.0.1', agent_version: 'test', last_seen_at: new Date(Date.now() + 3600_000).toISOString(), created_at: now,
  }).execute();
}

/** Writes what an agent reports once a server runs on `host`. */
async function runOn(serverId: string, host = 'host-1', state: Record<string, unknown> = {}) {
  const now = new Date().toISOString();
  await db().updateTable('compute_servers').set({ host, vm_state: 'active', task_state: null, power_state: 1, launched_at: now, updated_at: now, ...state })
    .where('id', '=', serverId).execute();
}
const row = (id: string) => db().selectFrom('compute_servers').selectAll().where('id', '=', id).executeTakeFirstOrThrow();

/** Waits for the in-process scheduler's decision about a server (placed, or ERROR), so what follows sees one outcome. */
async function scheduled(id: string) {
  for (let i = 0; i < 400; i++) {
    const s = await row(id);
    if (s.task_state !== 'scheduling') return s;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`server ${id} was never scheduled`);
}

async function create(client: Nova, body: Record<string, unknown> = {}, version?: string) {
  const r = await client.call('POST', '/servers', { version, body: { server: { name: 'vm', imageRef: imageId, flavorRef: '1', ...body } } });
  return r;
}

test('create records intent: 202, BUILD/scheduling, Location, adminPass; show per microversion', async () => {
  const r = await create(alice, { name: 'first', metadata: { a: '1' } });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  assert.equal(r.body.server.status, undefined, 'the create answer is the minimal view');
  schemas.add('v2_1.servers', 'create_server_with_admin_pass', r);
  const id = r.body.server.id;
  assert.match(r.headers.get('location') ?? '', new RegExp(`/compute/v2\\.1/servers/${id}$`));
  assert.equal(typeof r.body.server.adminPass, 'string');
  assert.deepEqual(r.body.server.security_groups, [{ name: 'default' }]);
  // the scheduler places it on host-1 (the only enabled host), where it waits for an agent that never comes
  const s = await scheduled(id);
  assert.equal(s.vm_state, 'building');
  assert.equal(s.task_state, 'spawning');
  assert.equal(s.host, 'host-1');
  assert.equal(s.kind, 'vm');
  assert.equal(JSON.parse(s.flavor).ram, 512);

  const show = await alice.call('GET', `/servers/${id}`);
  assert.equal(show.status, 200);
  assert.equal(show.body.server.status, 'BUILD');
  assert.equal(show.body.server['OS-EXT-STS:task_state'], 'spawning');
  assert.equal(show.body.server['OS-EXT-SRV-ATTR:host'], undefined, 'not for non-admins');
  assert.deepEqual(show.body.server.metadata, { a: '1' });
  assert.deepEqual(show.body.server.addresses, {});
  schemas.add('v2_1.servers', 'get_server', show, 'member 2.1');
  const adminShow = await admin.call('GET', `/servers/${id}`);
  assert.equal(adminShow.body.server['OS-EXT-SRV-ATTR:host'], 'host-1');
  schemas.add('v2_1.servers', 'get_server', adminShow, 'admin 2.1');
  for (const [ver, mod] of [['2.3', 'v2_3'], ['2.9', 'v2_9'], ['2.16', 'v2_16'], ['2.19', 'v2_19'], ['2.26', 'v2_26'], ['2.47', 'v2_47'],
    ['2.63', 'v2_63'], ['2.71', 'v2_71'], ['2.73', 'v2_73'], ['2.79', 'v2_79']] as const) {
    for (const who of [alice, admin]) {
      const x = await who.call('GET', `/servers/${id}`, { version: ver });
      assert.equal(x.status, 200);
      schemas.add(`${mod}.servers`, 'get_server', x, `${who === admin ? 'admin' : 'member'} ${ver}`);
    }
  }
  const v247 = await alice.call('GET', `/servers/${id}`, { version: '2.47' });
  assert.deepEqual(v247.body.server.flavor, { vcpus: 1, ram: 512, disk: 1, ephemeral: 0, swap: 0, original_name: 'm1.tiny', extra_specs: {} });
  const latest = await alice.call('GET', `/servers/${id}`, { version: '2.96' });
  assert.equal(latest.body.server['OS-EXT-SRV-ATTR:hostname'], 'first');
  assert.equal(latest.body.server.pinned_availability_zone, null);
  assert.equal(latest.body.server.locked_reason, null);
  assert.deepEqual(latest.body.server.server_groups, []);
  assert.equal((await alice.call('GET', `/servers/${id}`, { version: '2.16' })).body.server.host_status, undefined);
  assert.equal((await admin.call('GET', `/servers/${id}`, { version: '2.16' })).body.server.host_status, 'UP');
  // a server no host took: no host, an empty host_status
  const nowhere = (await create(alice, { name: 'nowhere', availability_zone: 'zone-b' })).body.server.id;
  assert.equal((await scheduled(nowhere)).vm_state, 'error');
  const unplaced = (await admin.call('GET', `/servers/${nowhere}`, { version: '2.16' })).body.server;
  assert.equal(unplaced['OS-EXT-SRV-ATTR:host'], null);
  assert.equal(unplaced.host_status, '');
  assert.equal((await alice.call('DELETE', `/servers/${nowhere}`)).status, 204);

  // other projects do not see it
  assert.equal((await bob.call('GET', `/servers/${id}`)).status, 404);
  assert.equal((await bob.call('DELETE', `/servers/${id}`)).status, 404);
  assert.ok(!(await bob.call('GET', '/servers')).body.servers.some((x: { id: string }) => x.id === id));
});

test('create: bad input is a 400 and nothing is created', async () => {
  const before = (await db().selectFrom('compute_servers').select('id').execute()).length;
  const cases: Array<[Record<string, unknown>, number, string?]> = [
    [{ flavorRef: 'nope' }, 400],
    [{ imageRef: crypto.randomUUID() }, 400],
    [{ imageRef: 'not-a-uuid' }, 400],
    [{ imageRef: undefined }, 400],
    [{ name: '' }, 400],
    [{ name: '  lead' }, 400],
    [{ name: 'x'.repeat(256) }, 400],
    [{ metadata: { 'bad/key': 'v' } }, 400],
    [{ metadata: { k: 'v'.repeat(256) } }, 400],
    [{ user_data: 'not base64!' }, 400],
    [{ key_name: 'nosuchkey' }, 400],
    [{ availability_zone: 'nowhere' }, 400],
    [{ availability_zone: 'nova:host-1' }, 403],
    [{ min_count: 3, max_count: 2 }, 400],
    [{ security_groups: [{ name: 'other' }] }, 400],
    [{ networks: 'auto' }, 400],
    [{ description: 'too early' }, 400],
    [{ block_device_mapping_v2: [{ source_type: 'volume', uuid: crypto.randomUUID(), boot_index: 0, destination_type: 'volume' }] }, 400],
    [{ unknown_field: 1 }, 400],
  ];
  for (const [body, status] of cases) {
    const r = await create(alice, body);
    assert.equal(r.status, status, `${JSON.stringify(body)} -> ${JSON.stringify(r.body)}`);
    assert.ok(r.body.badRequest || r.body.forbidden, JSON.stringify(r.body));
  }
  // networks is required from 2.37; hostname from 2.90 applies to one server only
  assert.equal((await create(alice, {}, '2.37')).status, 400);
  assert.equal((await create(alice, { networks: 'none', hostname: 'h1', max_count: 2 }, '2.90')).status, 400);
  assert.equal((await create(alice, { networks: 'none', hostname: '-bad-' }, '2.90')).status, 400);
  assert.equal((await alice.call('POST', '/servers', { body: { nope: {} } })).status, 400);
  assert.equal((await alice.call('POST', '/servers', { raw: '{bad' } as any)).status, 400);
  const after = (await db().selectFrom('compute_servers').select('id').execute()).length;
  assert.equal(after, before);
});

test('create: networks none/auto at 2.37, tags at 2.52, hostname at 2.90, multiple create, reservation id', async () => {
  const r = await create(alice, { name: 'tagged', networks: 'none', tags: ['a', 'b'], description: 'd' }, '2.52');
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const s = await row(r.body.server.id);
  assert.equal(s.requested_networks, '"none"');
  const shown = await alice.call('GET', `/servers/${s.id}`, { version: '2.52' });
  assert.deepEqual(shown.body.server.tags, ['a', 'b']);
  assert.equal(shown.body.server.description, 'd');
  const h = await create(alice, { name: 'Named Server!', networks: 'auto', hostname: 'custom-host' }, '2.90');
  assert.equal((await row(h.body.server.id)).hostname, 'custom-host');
  const derived = await create(alice, { name: 'My_Server.01' });
  assert.equal((await row(derived.body.server.id)).hostname, 'my-server-01');
  const multi = await create(alice, { name: 'many', min_count: 2, max_count: 3, return_reservation_id: true });
  assert.equal(multi.status, 202);
  assert.match(multi.body.reservation_id, /^r-/);
  const same = await db().selectFrom('compute_servers').select(['name', 'launch_index']).where('reservation_id', '=', multi.body.reservation_id).orderBy('launch_index').execute();
  assert.deepEqual(same.map((x) => x.name), ['many-1', 'many-2', 'many-3']);
  const byResv = await alice.call('GET', `/servers?reservation_id=${multi.body.reservation_id}`);
  assert.equal(byResv.body.servers.length, 3);
  schemas.add('v2_1.servers', 'list_servers', byResv);
});

test('list and detail: filters, sorting, pagination, all_tenants', async () => {
  const mark = new Date(Date.now() - 1000).toISOString();
  const ids: string[] = [];
  for (const name of ['alpha-1', 'alpha-2', 'beta-1']) ids.push((await create(bob, { name })).body.server.id);
  await runOn(ids[0]!, 'host-x');
  const detail = await bob.call('GET', '/servers/detail');
  assert.equal(detail.status, 200);
  assert.equal(detail.body.servers.length, 3);
  schemas.add('v2_1.servers', 'list_servers_detail', detail);
  for (const [ver, mod] of [['2.3', 'v2_3'], ['2.26', 'v2_26'], ['2.47', 'v2_47'], ['2.73', 'v2_73'], ['2.79', 'v2_79']] as const) {
    schemas.add(`${mod}.servers`, 'list_servers_detail', await bob.call('GET', '/servers/detail', { version: ver }), ver);
    schemas.add(`${mod}.servers`, 'list_servers_detail', await admin.call('GET', '/servers/detail?all_tenants=1', { version: ver }), `admin ${ver}`);
  }
  const names = async (qs: string, who = bob, version?: string) => (await who.call('GET', `/servers${qs}`, { version })).body.servers.map((x: { name: string }) => x.name).sort();
  assert.deepEqual(await names('?name=alpha'), ['alpha-1', 'alpha-2']);
  assert.deepEqual(await names('?name=^beta'), ['beta-1']);
  assert.deepEqual(await names('?status=ACTIVE'), ['alpha-1']);
  assert.deepEqual(await names('?status=BUILD'), ['alpha-2', 'beta-1']);
  assert.equal((await bob.call('GET', '/servers?status=NOPE', { version: '2.38' })).status, 400);
  assert.deepEqual(await names('?status=NOPE'), []);
  assert.deepEqual(await names(`?image=${imageId}&flavor=1`), ['alpha-1', 'alpha-2', 'beta-1']);
  assert.deepEqual(await names('?flavor=2'), []);
  assert.deepEqual(await names('?host=host-x'), ['alpha-1', 'alpha-2', 'beta-1'], 'host is an admin filter: ignored for members');
  assert.deepEqual((await admin.call('GET', '/servers?all_tenants=1&host=host-x')).body.servers.map((x: { id: string }) => x.id), [ids[0]]);
  assert.equal((await bob.call('GET', '/servers?all_tenants=1')).status, 403);
  const allT = await admin.call('GET', `/servers?all_tenants=1&project_id=${bob.projectId}`);
  assert.equal(allT.body.servers.length, 3);
  assert.equal((await bob.call('GET', '/servers?sort_key=host')).status, 403);
  const sorted = await bob.call('GET', '/servers?sort_key=display_name&sort_dir=asc');
  assert.deepEqual(sorted.body.servers.map((x: { name: string }) => x.name), ['alpha-1', 'alpha-2', 'beta-1']);
  const page1 = await bob.call('GET', '/servers?sort_key=display_name&sort_dir=asc&limit=2');
  assert.equal(page1.body.servers.length, 2);
  const next = new URL(page1.body.servers_links[0].href);
  assert.equal(next.searchParams.get('marker'), page1.body.servers[1].id);
  const page2 = await bob.call('GET', `/servers?${next.searchParams.toString()}`);
  assert.deepEqual(page2.body.servers.map((x: { name: string }) => x.name), ['beta-1']);
  assert.equal((await bob.call('GET', `/servers?marker=${crypto.randomUUID()}`)).status, 400);
  // changes-since and changes-before
  assert.equal((await bob.call('GET', `/servers?changes-since=${mark}`)).body.servers.length, 3);
  assert.equal((await bob.call('GET', `/servers?changes-since=${new Date(Date.now() + 60_000).toISOString()}`)).body.servers.length, 0);
  assert.equal((await bob.call('GET', `/servers?changes-before=${mark}`, { version: '2.66' })).body.servers.length, 0);
  assert.equal((await bob.call('GET', '/servers?changes-since=garbage')).status, 400);
  // unknown parameters: ignored before 2.75, refused from 2.75
  assert.equal((await bob.call('GET', '/servers?bogus=1')).status, 200);
  assert.equal((await bob.call('GET', '/servers?bogus=1', { version: '2.75' })).status, 400);
});

test('actions record intent and follow Nova state checks', async () => {
  const id = (await create(alice, { name: 'acts' })).body.server.id;
  const act = (body: unknown, version?: string, who = alice) => who.call('POST', `/servers/${id}/action`, { body, version });
  // still building: nothing may be done to it
  for (const body of [{ 'os-stop': null }, { 'os-start': null }, { reboot: { type: 'SOFT' } }, { pause: null }, { suspend: null }]) {
    const r = await act(body);
    assert.equal(r.status, 409, JSON.stringify(body));
    assert.equal(r.body.conflictingRequest.code, 409);
  }
  await runOn(id);
  let s = await row(id);
  const v0 = s.version;

  assert.equal((await act({ 'os-start': null })).status, 409, 'already running');
  const stop = await act({ 'os-stop': null });
  assert.equal(stop.status, 202);
  s = await row(id);
  assert.deepEqual([s.task_state, s.desired_power, s.version], ['powering-off', 'stopped', v0 + 1]);
  assert.equal((await act({ 'os-stop': null })).status, 409, 'task in progress');
  assert.equal((await alice.call('GET', `/servers/${id}`)).body.server.status, 'ACTIVE');
  // the agent reports it stopped
  await runOn(id, 'host-1', { vm_state: 'stopped', power_state: 4, task_state: null });
  assert.equal((await alice.call('GET', `/servers/${id}`)).body.server.status, 'SHUTOFF');
  assert.equal((await act({ 'os-stop': null })).status, 409, 'stop on SHUTOFF');
  assert.equal((await act({ reboot: { type: 'SOFT' } })).status, 409, 'soft reboot needs ACTIVE');
  const hard = await act({ reboot: { type: 'HARD' } });
  assert.equal(hard.status, 202);
  s = await row(id);
  assert.deepEqual([s.task_state, s.reboot_type, s.reboot_seq, s.desired_power], ['rebooting_hard', 'HARD', 1, 'running']);
  assert.equal((await alice.call('GET', `/servers/${id}`)).body.server.status, 'SHUTOFF', 'a stopped server shows SHUTOFF while it reboots');
  await runOn(id);
  assert.equal((await act({ reboot: { type: 'HARD' } })).status, 202);
  assert.equal((await alice.call('GET', `/servers/${id}`)).body.server.status, 'HARD_REBOOT');
  await runOn(id);
  assert.equal((await act({ reboot: { type: 'sideways' } })).status, 400);
  const soft = await act({ reboot: { type: 'soft' } });
  assert.equal(soft.status, 202);
  assert.equal((await alice.call('GET', `/servers/${id}`)).body.server.status, 'REBOOT');
  await runOn(id);
  assert.equal((await act({ pause: null })).status, 202);
  assert.deepEqual([(await row(id)).task_state, (await row(id)).desired_power], ['pausing', 'paused']);
  await runOn(id, 'host-1', { vm_state: 'paused', power_state: 3 });
  assert.equal((await alice.call('GET', `/servers/${id}`)).body.server.status, 'PAUSED');
  assert.equal((await act({ suspend: null })).status, 409);
  assert.equal((await act({ unpause: null })).status, 202);
  await runOn(id);
  assert.equal((await act({ suspend: null })).status, 202);
  await runOn(id, 'host-1', { vm_state: 'suspended', power_state: 7 });
  assert.equal((await alice.call('GET', `/servers/${id}`)).body.server.status, 'SUSPENDED');
  assert.equal((await act({ resume: null })).status, 202);
  assert.equal((await row(id)).desired_power, 'running');
  await runOn(id);
  assert.equal((await act({ 'no-such-action': null })).status, 400);

  // lock: members get 409 on a locked server, admins do not
  assert.equal((await act({ lock: { locked_reason: 'maintenance' } })).status, 400, 'reason from 2.73');
  assert.equal((await act({ lock: { locked_reason: 'maintenance' } }, '2.73')).status, 202);
  const lockedView = await alice.call('GET', `/servers/${id}`, { version: '2.73' });
  assert.deepEqual([lockedView.body.server.locked, lockedView.body.server.locked_reason], [true, 'maintenance']);
  assert.equal((await act({ 'os-stop': null })).status, 409);
  assert.equal((await alice.call('DELETE', `/servers/${id}`)).status, 409);
  assert.equal((await alice.call('GET', `/servers?locked=true`, { version: '2.73' })).body.servers.length, 1);
  assert.equal((await act({ unlock: null })).status, 202);
  assert.equal((await act({ lock: null }, undefined, admin)).status, 202);
  assert.equal((await act({ unlock: null })).status, 403, 'locked by an admin of another project');
  assert.equal((await act({ unlock: null }, undefined, admin)).status, 202);

  // rebuild: new image, name, metadata; user_data from 2.57, key_name from 2.54
  const other = await makeImage('disk-2');
  const rb = await act({ rebuild: { imageRef: other, name: 'rebuilt', metadata: { x: 'y' }, user_data: Buffer.from('#!/bin/sh\necho hi').toString('base64') } }, '2.57');
  assert.equal(rb.status, 202, JSON.stringify(rb.body));
  schemas.add('v2_57.servers', 'rebuild_server_with_admin_pass', rb);
  s = await row(id);
  assert.deepEqual([s.task_state, s.rebuild_seq, s.image_id, s.name], ['rebuilding', 1, other, 'rebuilt']);
  assert.equal(rb.body.server.status, 'REBUILD');
  assert.deepEqual(rb.body.server.metadata, { x: 'y' });
  assert.ok(rb.body.server.user_data);
  await runOn(id);
  const rb75 = await act({ rebuild: { imageRef: imageId } }, '2.75');
  schemas.add('v2_75.servers', 'rebuild_server_with_admin_pass', rb75);
  await runOn(id);
  assert.equal((await act({ rebuild: { imageRef: crypto.randomUUID() } })).status, 400);
  assert.equal((await act({ rebuild: { imageRef: imageId, key_name: null } })).status, 400, 'key_name from 2.54');

  // console output goes to the agent; none runs here
  const con = await act({ 'os-getConsoleOutput': { length: 10 } });
  assert.equal(con.status, 409);
  assert.equal((await act({ 'os-getConsoleOutput': { length: -2 } })).status, 400);

  // admin resetState
  assert.equal((await act({ 'os-resetState': { state: 'error' } })).status, 403);
  assert.equal((await act({ 'os-resetState': { state: 'error' } }, undefined, admin)).status, 202);
  assert.equal((await alice.call('GET', `/servers/${id}`)).body.server.status, 'ERROR');
  assert.equal((await act({ 'os-stop': null })).status, 202, 'stop is allowed from ERROR');

  // instance actions
  const list = await alice.call('GET', `/servers/${id}/os-instance-actions`);
  assert.equal(list.status, 200);
  schemas.add('v2_1.servers', 'list_instance_actions', list);
  const kinds = list.body.instanceActions.map((a: { action: string }) => a.action);
  for (const k of ['create', 'stop', 'reboot', 'pause', 'unpause', 'suspend', 'resume', 'lock', 'unlock', 'rebuild', 'resetState']) assert.ok(kinds.includes(k), k);
  const createAct = list.body.instanceActions.find((a: { action: string }) => a.action === 'create');
  const one = await alice.call('GET', `/servers/${id}/os-instance-actions/${createAct.request_id}`, { version: '2.51' });
  assert.equal(one.body.instanceAction.events[0].event, 'compute__do_build_and_run_instance');
  assert.equal(one.body.instanceAction.events[0].result, 'Success', 'finished once the server left BUILD');
  schemas.add('v2_51.servers', 'show_instance_action', one);
  const adm = await admin.call('GET', `/servers/${id}/os-instance-actions/${createAct.request_id}`, { version: '2.62' });
  assert.equal(adm.body.instanceAction.events[0].host, 'host-1');
  schemas.add('v2_62.servers', 'show_instance_action', adm);
  const v258 = await alice.call('GET', `/servers/${id}/os-instance-actions/${createAct.request_id}`, { version: '2.58' });
  schemas.add('v2_58.servers', 'show_instance_action', v258);
  assert.equal((await alice.call('GET', `/servers/${id}/os-instance-actions/req-nope`)).status, 404);
  const page = await alice.call('GET', `/servers/${id}/os-instance-actions?limit=2`, { version: '2.58' });
  assert.equal(page.body.instanceActions.length, 2);
});

test('update: name, description (2.19), hostname (2.90); body per microversion', async () => {
  const id = (await create(alice, { name: 'before' })).body.server.id;
  const up = await alice.call('PUT', `/servers/${id}`, { body: { server: { name: 'after' } } });
  assert.equal(up.status, 200);
  assert.equal(up.body.server.name, 'after');
  assert.equal(up.body.server['OS-EXT-STS:vm_state'], undefined, 'a partial body before 2.75');
  schemas.add('v2_1.servers', 'update_server', up);
  assert.equal((await alice.call('PUT', `/servers/${id}`, { body: { server: { description: 'x' } } })).status, 400);
  const d = await alice.call('PUT', `/servers/${id}`, { version: '2.19', body: { server: { description: 'about' } } });
  assert.equal(d.body.server.description, 'about');
  schemas.add('v2_19.servers', 'update_server', d);
  const full = await alice.call('PUT', `/servers/${id}`, { version: '2.75', body: { server: { name: 'full' } } });
  assert.equal(full.body.server['OS-EXT-STS:vm_state'], 'building');
  schemas.add('v2_75.servers', 'update_server', full);
  const h = await alice.call('PUT', `/servers/${id}`, { version: '2.90', body: { server: { hostname: 'new-host' } } });
  assert.equal(h.body.server['OS-EXT-SRV-ATTR:hostname'], 'new-host');
  assert.equal((await alice.call('PUT', `/servers/${id}`, { version: '2.90', body: { server: { hostname: 'a.b' } } })).status, 400);
  assert.equal((await alice.call('PUT', `/servers/${id}`, { version: '2.94', body: { server: { hostname: 'a.b' } } })).status, 200);
  assert.equal((await alice.call('PUT', `/servers/${id}`, { body: { server: { name: '' } } })).status, 400);
});

test('metadata and tags', async () => {
  const id = (await create(alice, { name: 'meta', metadata: { a: '1' } })).body.server.id;
  assert.equal((await alice.call('POST', `/servers/${id}/metadata`, { body: { metadata: { b: '2' } } })).status, 409, 'not launched yet');
  await runOn(id);
  const v0 = (await row(id)).version;
  const add = await alice.call('POST', `/servers/${id}/metadata`, { body: { metadata: { b: '2' } } });
  assert.deepEqual(add.body.metadata, { a: '1', b: '2' });
  schemas.add('v2_1.servers', 'update_server_metadata', add);
  assert.equal((await row(id)).version, v0 + 1);
  const put = await alice.call('PUT', `/servers/${id}/metadata`, { body: { metadata: { c: '3' } } });
  assert.deepEqual(put.body.metadata, { c: '3' });
  const item = await alice.call('PUT', `/servers/${id}/metadata/d`, { body: { meta: { d: '4' } } });
  assert.deepEqual(item.body, { meta: { d: '4' } });
  schemas.add('v2_1.servers', 'set_show_server_metadata_item', item);
  assert.equal((await alice.call('PUT', `/servers/${id}/metadata/d`, { body: { meta: { e: '4' } } })).status, 400);
  assert.equal((await alice.call('PUT', `/servers/${id}/metadata/d`, { body: { meta: { d: '4', e: '5' } } })).status, 400);
  assert.deepEqual((await alice.call('GET', `/servers/${id}/metadata/c`)).body, { meta: { c: '3' } });
  assert.equal((await alice.call('DELETE', `/servers/${id}/metadata/c`)).status, 204);
  assert.equal((await alice.call('GET', `/servers/${id}/metadata/c`)).status, 404);
  assert.deepEqual((await alice.call('GET', `/servers/${id}/metadata`)).body, { metadata: { d: '4' } });
  assert.equal((await bob.call('GET', `/servers/${id}/metadata`)).status, 404);

  // tags (2.26)
  assert.equal((await alice.call('GET', `/servers/${id}/tags`)).status, 404, 'tags from 2.26');
  const v = '2.26';
  const t = await alice.call('PUT', `/servers/${id}/tags/one`, { version: v });
  assert.equal(t.status, 201);
  assert.match(t.headers.get('location') ?? '', /\/tags\/one$/);
  assert.equal((await alice.call('PUT', `/servers/${id}/tags/one`, { version: v })).status, 204);
  assert.equal((await alice.call('GET', `/servers/${id}/tags/one`, { version: v })).status, 204);
  assert.equal((await alice.call('GET', `/servers/${id}/tags/two`, { version: v })).status, 404);
  const all = await alice.call('PUT', `/servers/${id}/tags`, { version: v, body: { tags: ['x', 'y'] } });
  assert.deepEqual(all.body.tags, ['x', 'y']);
  schemas.add('v2_26.servers', 'update_all_tags', all);
  assert.deepEqual((await alice.call('GET', '/servers?tags=x,y', { version: v })).body.servers.map((s: { id: string }) => s.id), [id]);
  assert.deepEqual((await alice.call('GET', '/servers?not-tags-any=x', { version: v })).body.servers.filter((s: { id: string }) => s.id === id), []);
  assert.equal((await alice.call('PUT', `/servers/${id}/tags`, { version: v, body: { tags: ['bad,tag'] } })).status, 400);
  assert.equal((await alice.call('PUT', `/servers/${id}/tags`, { version: v, body: { tags: Array.from({ length: 51 }, (_, i) => `t${i}`) } })).status, 400);
  assert.equal((await alice.call('DELETE', `/servers/${id}/tags/x`, { version: v })).status, 204);
  assert.equal((await alice.call('DELETE', `/servers/${id}/tags/x`, { version: v })).status, 404);
  assert.equal((await alice.call('DELETE', `/servers/${id}/tags`, { version: v })).status, 204);
  assert.deepEqual((await alice.call('GET', `/servers/${id}/tags`, { version: v })).body, { tags: [] });
});

test('delete: gone at once without a host; deleting (and a version bump) on a host', async () => {
  const unplaced = (await create(alice, { name: 'gone', availability_zone: 'zone-b' })).body.server.id;
  assert.equal((await alice.call('DELETE', `/servers/${unplaced}`)).status, 204);
  assert.equal((await alice.call('GET', `/servers/${unplaced}`)).status, 404);
  const deleted = await row(unplaced);
  assert.equal(deleted.vm_state, 'deleted');
  assert.ok(deleted.deleted_at);
  const asAdmin = await admin.call('GET', `/servers/detail?all_tenants=1&deleted=true&uuid=${unplaced}`);
  assert.equal(asAdmin.body.servers[0].status, 'DELETED');
  assert.equal((await alice.call('GET', `/servers?changes-since=${new Date(Date.now() - 60_000).toISOString()}`)).body.servers.some((s: { id: string }) => s.id === unplaced), true);

  const placed = (await create(alice, { name: 'placed' })).body.server.id;
  await runOn(placed);
  const v0 = (await row(placed)).version;
  assert.equal((await alice.call('DELETE', `/servers/${placed}`)).status, 204);
  const s = await row(placed);
  assert.deepEqual([s.task_state, s.version, s.deleted_at], ['deleting', v0 + 1, null]);
  assert.equal((await alice.call('GET', `/servers/${placed}`)).body.server['OS-EXT-STS:task_state'], 'deleting');
  assert.equal((await alice.call('DELETE', `/servers/${placed}`)).status, 204, 'deleting again is harmless');
  assert.equal((await row(placed)).version, v0 + 1);
  // forceDelete
  const f = (await create(alice, { name: 'forced' })).body.server.id;
  await runOn(f);
  assert.equal((await alice.call('POST', `/servers/${f}/action`, { body: { forceDelete: null } })).status, 202);
  assert.equal((await row(f)).task_state, 'deleting');
  // readers may look, not touch
  const reader = await projectUser(cloud, ['reader']);
  assert.equal((await reader.call('POST', '/servers', { body: { server: { name: 'r', imageRef: imageId, flavorRef: '1' } } })).status, 403);
});

test('quotas: instances, cores and ram are enforced on create (403)', async () => {
  const carol = await projectUser(cloud, ['member']);
  const set = await admin.call('PUT', `/os-quota-sets/${carol.projectId}`, { body: { quota_set: { instances: 2, cores: 3 } } });
  if (set.status !== 200) {
    await db().insertInto('compute_quotas').values([{ project_id: carol.projectId, resource: 'instances', hard_limit: 2 }, { project_id: carol.projectId, resource: 'cores', hard_limit: 3 }]).execute();
  }
  assert.equal((await create(carol, { name: 'q1' })).status, 202);
  const big = await create(carol, { name: 'q-big', flavorRef: '4' });
  assert.equal(big.status, 403);
  assert.match(big.body.forbidden.message, /Quota exceeded for cores/);
  const two = await create(carol, { name: 'q2', min_count: 2 });
  assert.equal(two.status, 403);
  assert.match(two.body.forbidden.message, /instances/);
  // max_count beyond quota creates as many as fit
  const fit = await create(carol, { name: 'q3', min_count: 1, max_count: 5, return_reservation_id: true });
  assert.equal(fit.status, 202);
  assert.equal((await carol.call('GET', `/servers?reservation_id=${fit.body.reservation_id}`)).body.servers.length, 1);
  assert.equal((await create(carol, { name: 'q4' })).status, 403);
});

test('disk config, access IPs, security groups, diagnostics, password, external events, limit=0', async () => {
  const r = await create(alice, { name: 'extras', 'OS-DCF:diskConfig': 'AUTO', accessIPv6: '0000:0000:0000:0000:0000:babe:220.12.22.2', accessIPv4: '1.2.3.4' });
  assert.equal(r.body.server['OS-DCF:diskConfig'], 'AUTO');
  const id = r.body.server.id;
  let shown = (await alice.call('GET', `/servers/${id}`)).body.server;
  assert.deepEqual([shown['OS-DCF:diskConfig'], shown.accessIPv6, shown.accessIPv4], ['AUTO', '::babe:dc0c:1602', '1.2.3.4']);
  assert.equal((await create(alice, { accessIPv4: '1.2.3' })).status, 400);
  assert.equal((await create(alice, { accessIPv6: 'zz::1' })).status, 400);
  await alice.call('PUT', `/servers/${id}`, { body: { server: { 'OS-DCF:diskConfig': 'MANUAL' } } });
  assert.equal((await alice.call('GET', `/servers/${id}`)).body.server['OS-DCF:diskConfig'], 'MANUAL');
  await runOn(id);
  const act = (body: unknown) => alice.call('POST', `/servers/${id}/action`, { body });
  assert.equal((await act({ removeSecurityGroup: { name: 'default' } })).status, 202);
  shown = (await alice.call('GET', `/servers/${id}`)).body.server;
  assert.equal(shown.security_groups, undefined);
  assert.equal((await act({ removeSecurityGroup: { name: 'default' } })).status, 400);
  assert.equal((await act({ addSecurityGroup: { name: 'default' } })).status, 202);
  assert.equal((await act({ addSecurityGroup: { name: 'nope' } })).status, 404);
  // diagnostics (admin), password, external events
  assert.equal((await alice.call('GET', `/servers/${id}/diagnostics`)).status, 403);
  const diag = await admin.call('GET', `/servers/${id}/diagnostics`, { version: '2.48' });
  assert.equal(diag.body.state, 'running');
  schemas.add('v2_48.servers', 'show_server_diagnostics', diag);
  assert.deepEqual((await alice.call('GET', `/servers/${id}/os-server-password`)).body, { password: '' });
  assert.equal((await alice.call('DELETE', `/servers/${id}/os-server-password`)).status, 204);
  const ev = await admin.call('POST', '/os-server-external-events', { body: { events: [{ name: 'network-changed', server_uuid: id }, { name: 'network-changed', server_uuid: crypto.randomUUID() }] } });
  assert.equal(ev.status, 207);
  assert.deepEqual(ev.body.events.map((e: { code: number }) => e.code), [200, 404]);
  assert.equal((await alice.call('POST', '/os-server-external-events', { body: { events: [{ name: 'network-changed', server_uuid: id }] } })).status, 403);
  assert.equal((await admin.call('POST', '/os-server-external-events', { body: { events: [{ name: 'bogus', server_uuid: id }] } })).status, 400);
  // limit=0 is an empty page; changes-since must be ISO 8601
  assert.deepEqual((await alice.call('GET', '/servers?limit=0')).body.servers, []);
  assert.equal((await alice.call('GET', '/servers?changes-since=2011/01/01')).status, 400);
  assert.equal((await alice.call('GET', '/servers?changes-since=2011-01-01')).status, 200);
  assert.equal((await alice.call('GET', '/servers?changes-since=2011-01-01T00:00:00%2B02:00')).status, 200);
  assert.equal((await admin.call('GET', '/os-simple-tenant-usage/')).status, 404);
  // createBackup checks
  assert.equal((await act({ createBackup: { name: 'b', backup_type: 'daily' } })).status, 400, 'rotation is required');
  assert.equal((await act({ createBackup: { name: 'b', backup_type: 'daily', rotation: -1 } })).status, 400);
});

test('createImage: a queued image and a task state; a host that never answers leaves nothing behind', async () => {
  const id = (await create(alice, { name: 'snap' })).body.server.id;
  assert.equal((await alice.call('POST', `/servers/${id}/action`, { body: { createImage: { name: 'too-early' } } })).status, 409);
  await runOn(id);
  const old = await alice.call('POST', `/servers/${id}/action`, { body: { createImage: { name: 's1', metadata: { image_type: 'mine' } } } });
  assert.equal(old.status, 202);
  assert.match(old.headers.get('location') ?? '', /\/image\/v2\/images\/[0-9a-f-]{36}$/);
  const imageId = old.headers.get('location')!.split('/').at(-1)!;
  const img = await cloud.call('GET', `/image/v2/images/${imageId}`, { token: alice.token });
  assert.equal(img.body.status, 'queued');
  assert.equal(img.body.instance_uuid, id);
  assert.equal(img.body.image_type, 'mine', 'what the caller gives wins');
  assert.equal((await row(id)).task_state, 'image_snapshot_pending');
  assert.equal((await alice.call('POST', `/servers/${id}/action`, { body: { createImage: { name: 's2' } } })).status, 409, 'one at a time');
  // no agent answers: after the snapshot timeout the image is removed and the task state cleared
  for (let i = 0; i < 50 && (await row(id)).task_state !== null; i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal((await row(id)).task_state, null);
  assert.equal((await cloud.call('GET', `/image/v2/images/${imageId}`, { token: alice.token })).status, 404);
  const v245 = await alice.call('POST', `/servers/${id}/action`, { version: '2.45', body: { createImage: { name: 's3' } } });
  assert.match(v245.body.image_id, /^[0-9a-f-]{36}$/);
  schemas.add('v2_45.servers', 'create_backup', await alice.call('POST', `/servers/${id}/action`, { version: '2.45', body: { createBackup: { name: 'b', backup_type: 'daily', rotation: 1 } } }).then(async (r) => {
    assert.equal(r.status, 409, 'the snapshot is still going');
    for (let i = 0; i < 50 && (await row(id)).task_state !== null; i++) await new Promise((res) => setTimeout(res, 100));
    const b = await alice.call('POST', `/servers/${id}/action`, { version: '2.45', body: { createBackup: { name: 'b', backup_type: 'daily', rotation: 1 } } });
    assert.equal(b.status, 202);
    assert.equal((await row(id)).task_state, 'image_backup');
    return b;
  }));
});

test('response bodies match Tempest schemas', () => {
  schemas.check();
});
