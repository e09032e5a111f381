// The engine without a data plane: the agent API (token, register, watch,
// report, requests) and the scheduler (capacity claims under concurrency,
// rescheduling, server groups, down hosts), driven by scripted agents that
// speak the real protocol with the real client. Runs on SQLite, and on
// PostgreSQL when STRATUS_TEST_DATABASE is set.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCloud, type Cloud } from '../harness.ts';
import { AgentClient } from '../../src/agent/client.ts';
import type { DesiredServer, ServerObserved } from '../../src/compute/engine/protocol.ts';
import { PROTOCOL_VERSION, type ResourceError, type WatchResponse } from '../../src/fleet/protocol.ts';
import { busyboxTar, sleep } from './lib.ts';
import { Scheduler } from '../../src/compute/engine/scheduler.ts';

let cloud: Cloud;
let dataDir: string;
let token: string;
let imageId: string;
let projectId: string;
const flavors: Record<string, string> = {};

const api = (method: string, path: string, body?: unknown, mv = '2.79') =>
  cloud.call(method, path, { token: cloud.adminToken, body, headers: { 'X-OpenStack-Nova-API-Version': mv } });

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'stratus-engine-'));
  cloud = await startCloud({ dataDir });
  token = readFileSync(join(dataDir, 'agent-token'), 'utf8').trim();
  const img = await api('POST', '/image/v2/images', { name: 'busybox', container_format: 'docker', disk_format: 'raw', visibility: 'public' });
  imageId = img.body.id;
  const put = await fetch(`${cloud.url}/image/v2/images/${imageId}/file`, {
    method: 'PUT', headers: { 'x-auth-token': cloud.adminToken, 'content-type': 'application/octet-stream' }, body: new Uint8Array(await busyboxTar()),
  });
  assert.equal(put.status, 204);
  projectId = (await cloud.server.database.db.selectFrom('identity_projects').select('id').where('name', '=', 'admin').executeTakeFirstOrThrow()).id;
  await api('PUT', `/compute/v2.1/os-quota-sets/${projectId}`, { quota_set: { instances: -1, cores: -1, ram: -1, server_groups: -1, server_group_members: -1 } });
  for (const [name, vcpus, ram] of [['one', 1, 64], ['two', 2, 64]] as const) {
    const f = await api('POST', '/compute/v2.1/flavors', { flavor: { name: `engine-${name}`, vcpus, ram, disk: 0 } });
    flavors[name] = f.body.flavor.id;
  }
});
after(async () => {
  await cloud?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const db = () => cloud.server.database.db;
let hostSeq = 0;

/** A scripted agent: registers, and answers what the test tells it to. */
async function fakeHost(opts: { vcpus?: number; memory_mb?: number; cpu?: number; az?: string } = {}) {
  const hostname = `fake-${process.pid}-${++hostSeq}`;
  const client = new AgentClient(cloud.url, token, hostname);
  await client.register({
    protocol: PROTOCOL_VERSION, kinds: { server: ['container'] }, vcpus: opts.vcpus ?? 4, memory_mb: opts.memory_mb ?? 4096, disk_gb: 100, version: 'test',
    cpu_allocation_ratio: opts.cpu ?? 1, ram_allocation_ratio: 1, ...(opts.az ? { availability_zone: opts.az } : {}),
  });
  return { hostname, client };
}

/** The servers of a watch answer, as drivers see them. */
const serversOf = (w: WatchResponse): DesiredServer[] =>
  w.resources.filter((r) => r.kind === 'server').map((r) => ({ ...(r.spec as DesiredServer), id: r.id, version: r.version }));
/** One server report. */
const srv = (id: string, version: number, power_state: number, state: ServerObserved['state'], error?: ResourceError) =>
  ({ kind: 'server', id, version, observed: { power_state, state }, ...(error ? { error } : {}) });
const transient = (message: string): ResourceError => ({ class: 'transient', code: 'host_failure', message });

async function disableHost(hostname: string) {
  await db().updateTable('compute_hosts').set({ status: 'disabled' }).where('hostname', '=', hostname).execute();
}

async function create(flavor: string, extra: Record<string, unknown> = {}, hints?: Record<string, unknown>) {
  const r = await api('POST', '/compute/v2.1/servers', {
    server: { name: 'eng', imageRef: imageId, flavorRef: flavor, networks: 'none', ...extra },
    ...(hints ? { 'os:scheduler_hints': hints } : {}),
  });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  return r.body.server.id as string;
}

async function row(id: string) {
  return db().selectFrom('compute_servers').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
}

/** Waits until the scheduler has decided about a server (placed or ERROR). */
async function scheduled(id: string) {
  for (let i = 0; i < 200; i++) {
    const r = await row(id);
    if (r.task_state !== 'scheduling') return r;
    await sleep(25);
  }
  throw new Error(`server ${id} was never scheduled`);
}

test('the agent API wants the agent token', async () => {
  const bad = new AgentClient(cloud.url, 'x'.repeat(43), 'nobody');
  await assert.rejects(bad.register({ protocol: PROTOCOL_VERSION, kinds: { server: ['container'] }, vcpus: 1, memory_mb: 1, disk_gb: 1, version: 't' }), /401/);
  const none = await fetch(`${cloud.url}/agent/v1/hosts/nobody/watch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"known":{}}' });
  assert.equal(none.status, 401);
  assert.doesNotMatch(await none.text(), new RegExp(token));
  const keystone = await fetch(`${cloud.url}/agent/v1/hosts/nobody/watch`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-auth-token': cloud.adminToken }, body: '{"known":{}}' });
  assert.equal(keystone.status, 401, 'a Keystone token is not an agent token');
  const unknown = new AgentClient(cloud.url, token, 'never-registered');
  await assert.rejects(unknown.watch({ known: { server: {} }, wait: 0 }), /404/);
});

test('a registered host appears in os-services and os-hypervisors', async () => {
  const h = await fakeHost({ vcpus: 3 });
  const svc = await api('GET', `/compute/v2.1/os-services?host=${h.hostname}`);
  assert.equal(svc.status, 200);
  assert.equal(svc.body.services[0]?.state, 'up');
  const hyp = await api('GET', '/compute/v2.1/os-hypervisors/detail', undefined, '2.53');
  assert.ok(hyp.body.hypervisors.some((x: any) => x.hypervisor_hostname === h.hostname));
  await disableHost(h.hostname);
});

test('concurrent creates never oversubscribe a host: the claims are transactional', async () => {
  const h = await fakeHost({ vcpus: 3, cpu: 1 });
  const ids = await Promise.all(Array.from({ length: 10 }, () => create(flavors.one!, { availability_zone: `nova:${h.hostname}` })));
  const rows = await Promise.all(ids.map(scheduled));
  const placed = rows.filter((r) => r.host === h.hostname);
  assert.equal(placed.length, 3, 'exactly the host\'s 3 vCPUs are claimed');
  assert.ok(placed.every((r) => r.task_state === 'spawning' && r.schedule_attempts === 1));
  const failed = rows.filter((r) => r.vm_state === 'error');
  assert.equal(failed.length, 7);
  for (const f of failed) assert.equal(JSON.parse(f.fault!).message, 'No valid host was found. There are not enough hosts available.');
  const host = await db().selectFrom('compute_hosts').select('id').where('hostname', '=', h.hostname).executeTakeFirstOrThrow();
  const alloc = await db().selectFrom('placement_allocations').selectAll().where('provider_uuid', '=', host.id).where('resource_class', '=', 'VCPU').execute();
  assert.equal(alloc.reduce((a, r) => a + r.used, 0), 3);
  const shown = await api('GET', `/compute/v2.1/servers/${failed[0]!.id}`);
  assert.equal(shown.body.server.status, 'ERROR');
  assert.equal(shown.body.server.fault.code, 500);
  await disableHost(h.hostname);
});

test('a host that fails a build releases its claim and the server is rescheduled, then ERROR when no host is left', async () => {
  const a = await fakeHost();
  const b = await fakeHost();
  const id = await create(flavors.two!, {}, { same_host: [] });
  const first = await scheduled(id);
  assert.ok([a.hostname, b.hostname].includes(first.host!), `placed on ${first.host}`);
  const [bad, other] = first.host === a.hostname ? [a, b] : [b, a];
  const desired = serversOf(await bad.client.watch({ known: { server: {} }, wait: 0 })).find((s) => s.id === id)!;
  assert.equal(desired.image?.id, imageId);
  assert.equal(desired.flavor.vcpus, 2);
  await bad.client.report({ resources: [srv(id, desired.version, 0, 'absent', transient('disk on fire'))] });
  const second = await scheduled(id);
  assert.equal(second.host, other.hostname, 'rescheduled to the other host');
  assert.deepEqual(JSON.parse(second.failed_hosts), [bad.hostname]);
  const hostRow = await db().selectFrom('compute_hosts').select('id').where('hostname', '=', bad.hostname).executeTakeFirstOrThrow();
  assert.equal((await db().selectFrom('placement_allocations').selectAll().where('provider_uuid', '=', hostRow.id).execute()).length, 0, 'the failed host\'s claim is released');
  // the first host forgets it on its next watch
  const w = await bad.client.watch({ known: { server: { [id]: desired.version } }, wait: 0 });
  assert.deepEqual(w.gone, [{ kind: 'server', id }]);
  const d2 = serversOf(await other.client.watch({ known: { server: {} }, wait: 0 })).find((s) => s.id === id)!;
  await other.client.report({ resources: [srv(id, d2.version, 0, 'absent', transient('also broken'))] });
  const third = await scheduled(id);
  assert.equal(third.vm_state, 'error');
  assert.equal(third.host, null);
  assert.match(JSON.parse(third.fault!).message, /^No valid host was found/);
  assert.equal((await db().selectFrom('placement_allocations').selectAll().where('consumer_uuid', '=', id).execute()).length, 0);
  await disableHost(a.hostname);
  await disableHost(b.hostname);
});

test('server groups: anti-affinity spreads and refuses a third host, affinity packs', async () => {
  const a = await fakeHost();
  const b = await fakeHost();
  const anti = await api('POST', '/compute/v2.1/os-server-groups', { server_group: { name: 'anti', policy: 'anti-affinity' } }, '2.64');
  assert.equal(anti.status, 200, JSON.stringify(anti.body));
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) ids.push(await create(flavors.one!, {}, { group: anti.body.server_group.id }));
  const rows = [];
  for (const id of ids) rows.push(await scheduled(id));
  const hosts = rows.filter((r) => r.host).map((r) => r.host);
  assert.equal(new Set(hosts).size, 2, 'two servers on two hosts');
  assert.equal(rows.filter((r) => r.vm_state === 'error').length, 1, 'no third host for the third');

  const aff = await api('POST', '/compute/v2.1/os-server-groups', { server_group: { name: 'aff', policy: 'affinity' } }, '2.64');
  const packed = [];
  for (let i = 0; i < 3; i++) packed.push(await scheduled(await create(flavors.one!, {}, { group: aff.body.server_group.id })));
  assert.equal(new Set(packed.map((r) => r.host)).size, 1, 'affinity puts them together');
  await disableHost(a.hostname);
  await disableHost(b.hostname);
});

test('a host whose agent stopped reporting is down: not scheduled to, down in os-services', async () => {
  const h = await fakeHost();
  await db().updateTable('compute_hosts').set({ last_seen_at: new Date(Date.now() - 3600_000).toISOString() }).where('hostname', '=', h.hostname).execute();
  const svc = await api('GET', `/compute/v2.1/os-services?host=${h.hostname}`);
  assert.equal(svc.body.services[0]?.state, 'down');
  const id = await create(flavors.one!, { availability_zone: `nova:${h.hostname}` });
  const r = await scheduled(id);
  assert.equal(r.vm_state, 'error');
  await disableHost(h.hostname);
});

test('the watch long-polls: it returns when a server is placed, reports settle states, delete reports release the claim', async () => {
  const h = await fakeHost();
  const first = await h.client.watch({ known: { server: {} }, wait: 0 });
  assert.deepEqual(first.resources, []);
  const t0 = Date.now();
  const waiting = h.client.watch({ known: { server: {} }, wait: 20 });
  await sleep(200);
  const id = await create(flavors.one!, { availability_zone: `nova:${h.hostname}`, metadata: { k: 'v' }, user_data: Buffer.from('#!/bin/sh\n').toString('base64') });
  const w = await waiting;
  assert.ok(Date.now() - t0 < 5000, `woken by the placement after ${Date.now() - t0} ms`);
  const d = serversOf(w).find((s) => s.id === id) as DesiredServer;
  assert.ok(d, 'the new server is in the answer');
  assert.equal(d.power, 'running');
  assert.deepEqual(d.config_drive.meta_data.meta, { k: 'v' });
  assert.equal(d.config_drive.user_data, Buffer.from('#!/bin/sh\n').toString('base64'));
  assert.equal(d.deleted, false);

  await h.client.report({ resources: [srv(id, d.version, 1, 'active')] });
  let s = (await api('GET', `/compute/v2.1/servers/${id}`)).body.server;
  assert.equal(s.status, 'ACTIVE');
  assert.equal(s['OS-EXT-STS:power_state'], 1);
  assert.ok(s['OS-SRV-USG:launched_at']);
  const actions = await api('GET', `/compute/v2.1/servers/${id}/os-instance-actions`);
  assert.equal(actions.body.instanceActions[0].action, 'create');

  // a stale report (an older version) changes the power state only
  assert.equal((await api('POST', `/compute/v2.1/servers/${id}/action`, { 'os-stop': null })).status, 202);
  await h.client.report({ resources: [srv(id, d.version, 1, 'active')] });
  s = (await api('GET', `/compute/v2.1/servers/${id}`)).body.server;
  assert.equal(s['OS-EXT-STS:task_state'], 'powering-off', 'the stop is still pending');
  const w2 = await h.client.watch({ known: { server: { [id]: d.version } }, wait: 5 });
  const d2 = serversOf(w2)[0]!;
  assert.equal(d2.power, 'stopped');
  await h.client.report({ resources: [srv(id, d2.version, 4, 'stopped')] });
  s = (await api('GET', `/compute/v2.1/servers/${id}`)).body.server;
  assert.equal(s.status, 'SHUTOFF');
  assert.equal(s['OS-EXT-STS:task_state'], null);

  // console output goes through a request the agent answers on its report call
  const consoleCall = api('POST', `/compute/v2.1/servers/${id}/action`, { 'os-getConsoleOutput': { length: 2 } });
  const w3 = await h.client.watch({ known: { server: { [id]: d2.version } }, wait: 5 });
  assert.equal(w3.requests[0]?.kind, 'server');
  assert.equal(w3.requests[0]?.action, 'console');
  assert.equal(w3.requests[0]?.resource_id, id);
  await h.client.report({ requests: [{ id: w3.requests[0]!.id, ok: true, result: { output: 'a\nb\nc\n' } }] });
  const out = await consoleCall;
  assert.equal(out.status, 200);
  // Nova's tail: the trailing newline is an empty last line, so 2 lines are 'c' and ''.
  assert.equal(out.body.output, 'c\n');

  // delete: the agent cleans up and says so; the row goes and the claim with it
  assert.equal((await api('DELETE', `/compute/v2.1/servers/${id}`)).status, 204);
  const w4 = await h.client.watch({ known: { server: { [id]: d2.version } }, wait: 5 });
  const d4 = serversOf(w4)[0]!;
  assert.equal(d4.deleted, true);
  await h.client.report({ resources: [srv(id, d4.version, 0, 'deleted')] });
  assert.equal((await api('GET', `/compute/v2.1/servers/${id}`)).status, 404);
  assert.equal((await db().selectFrom('placement_allocations').selectAll().where('consumer_uuid', '=', id).execute()).length, 0);
  const w5 = await h.client.watch({ known: { server: { [id]: d4.version } }, wait: 0 });
  assert.deepEqual(w5.gone, [{ kind: 'server', id }]);
  await disableHost(h.hostname);
});

test('reports from a host about a server it does not hold change nothing', async () => {
  const h = await fakeHost();
  const intruder = await fakeHost();
  const id = await create(flavors.one!, { availability_zone: `nova:${h.hostname}` });
  const placed = await scheduled(id);
  await intruder.client.report({ resources: [srv(id, placed.version, 0, 'deleted'), srv(id, placed.version, 1, 'active')] });
  const after = await row(id);
  assert.equal(after.vm_state, 'building');
  assert.equal(after.deleted_at, null);
  await disableHost(h.hostname);
  await disableHost(intruder.hostname);
});

test('two schedulers racing claims on one host (as two replicas would) never oversubscribe it', async () => {
  const h = await fakeHost({ vcpus: 5, cpu: 1 });
  const host = await db().selectFrom('compute_hosts').selectAll().where('hostname', '=', h.hostname).executeTakeFirstOrThrow();
  const now = new Date().toISOString();
  const ids: string[] = [];
  for (let i = 0; i < 12; i++) {
    const id = crypto.randomUUID();
    ids.push(id);
    // parked on a fake host name so the engine's own scheduler leaves them to this test
    await db().insertInto('compute_servers').values({
      id, name: `race-${i}`, project_id: projectId, user_id: 'u', image_id: imageId, flavor_id: flavors.one!, flavor: JSON.stringify({ vcpus: 1, ram: 64, disk: 0 }),
      kind: 'container', key_name: null, key_data: null, user_data: null, availability_zone: null, hostname: `race-${i}`, description: null,
      host: 'parked', vm_state: 'building', task_state: 'scheduling', power_state: 0, desired_power: 'running', reboot_seq: 0, reboot_type: null,
      rebuild_seq: 0, locked: 0, locked_reason: null, config_drive: '', access_ipv4: '', access_ipv6: '', fault: null, server_group_id: null,
      reservation_id: 'r-race', launch_index: i, schedule_attempts: 0, failed_hosts: '[]', version: 1, launched_at: null, terminated_at: null,
      created_at: now, updated_at: now, deleted_at: null, locked_by: null, trusted_certs: null, scheduler_hints: '{}', security_groups: '[]',
      requested_networks: null, requested_host: null,
    }).execute();
  }
  const rows = await db().selectFrom('compute_servers').selectAll().where('id', 'in', ids).execute();
  const log = { info() {}, warn() {}, error() {}, debug() {}, child() { return this; } } as any;
  const a = new Scheduler(db(), log);
  const b = new Scheduler(db(), log);
  // overlapping batches: both try servers 4..7
  const [na, nb] = await Promise.all([a.claim(host, rows.slice(0, 8)), b.claim(host, rows.slice(4, 12))]);
  const alloc = await db().selectFrom('placement_allocations').selectAll().where('provider_uuid', '=', host.id).where('resource_class', '=', 'VCPU').execute();
  assert.equal(na + nb, 5, `claimed ${na} + ${nb}`);
  assert.equal(alloc.reduce((s, r) => s + r.used, 0), 5);
  const placed = await db().selectFrom('compute_servers').select(['id', 'host', 'version']).where('id', 'in', ids).where('host', '=', h.hostname).execute();
  assert.equal(placed.length, 5);
  assert.ok(placed.every((p) => p.version === 2), 'each placed exactly once');
  await db().deleteFrom('placement_allocations').where('consumer_uuid', 'in', ids).execute();
  await db().deleteFrom('compute_servers').where('id', 'in', ids).execute();
  await disableHost(h.hostname);
});

test('a flavor that asks for another kind of host (stratus:kind) finds none among container hosts', async () => {
  const h = await fakeHost();
  const f = await api('POST', '/compute/v2.1/flavors', { flavor: { name: 'engine-vm-only', vcpus: 1, ram: 64, disk: 0 } });
  const spec = await api('POST', `/compute/v2.1/flavors/${f.body.flavor.id}/os-extra_specs`, { extra_specs: { 'stratus:kind': 'vm' } });
  assert.equal(spec.status, 200, JSON.stringify(spec.body));
  const r = await scheduled(await create(f.body.flavor.id, { availability_zone: `nova:${h.hostname}` }));
  assert.equal(r.vm_state, 'error');
  const ok = await scheduled(await create(flavors.one!, { availability_zone: `nova:${h.hostname}` }));
  assert.equal(ok.host, h.hostname);
  await disableHost(h.hostname);
});

test('deleting a server whose host is down deletes it at once (local delete); the host forgets it when it is back', async () => {
  const h = await fakeHost();
  const id = await create(flavors.one!, { availability_zone: `nova:${h.hostname}` });
  const placed = await scheduled(id);
  assert.equal(placed.host, h.hostname);
  await db().updateTable('compute_hosts').set({ last_seen_at: new Date(Date.now() - 3600_000).toISOString() }).where('hostname', '=', h.hostname).execute();
  assert.equal((await api('DELETE', `/compute/v2.1/servers/${id}`)).status, 204);
  for (let i = 0; i < 100 && (await api('GET', `/compute/v2.1/servers/${id}`)).status !== 404; i++) await sleep(50);
  assert.equal((await api('GET', `/compute/v2.1/servers/${id}`)).status, 404);
  assert.equal((await db().selectFrom('placement_allocations').selectAll().where('consumer_uuid', '=', id).execute()).length, 0);
  // the agent comes back: its watch says the server is gone
  const w = await h.client.watch({ known: { server: { [id]: placed.version } }, wait: 0 });
  assert.deepEqual(w.gone, [{ kind: 'server', id }]);
  await disableHost(h.hostname);
});

test('registration checks the protocol version: another major, a newer minor or none is refused with a 400 that says what is accepted', async () => {
  const hostname = `proto-${process.pid}`;
  const put = (body: Record<string, unknown>) => fetch(`${cloud.url}/agent/v1/hosts/${hostname}`, {
    method: 'PUT', headers: { 'content-type': 'application/json', 'x-stratus-agent-token': token }, body: JSON.stringify(body),
  });
  // an agent of protocol 1 (before typed resources) sent its kinds as a list and no protocol
  const old = await put({ kinds: ['container'], vcpus: 1, memory_mb: 1, disk_gb: 1, version: '0.1.0' });
  assert.equal(old.status, 400);
  // the server accepts its own minor and the one before it
  const [major, minor] = PROTOCOL_VERSION.split('.').map(Number) as [number, number];
  const esc = (v: string) => v.replace('.', '\\.');
  const previous = `${major}.${minor - 1}`, newer = `${major}.${minor + 1}`;
  assert.match((await old.json() as any).error.message, new RegExp(`no known protocol version.*accepts ${esc(previous)} or ${esc(PROTOCOL_VERSION)}.*upgrade the agent`));
  for (const [v, why] of [[`${major - 1}.9`, /different major.*upgrade the agent/], [`${major + 1}.0`, /different major.*upgrade the server first/], [newer, new RegExp(`newer than this server's ${esc(PROTOCOL_VERSION)}.*upgrade the server first`)]] as const) {
    const r = await put({ protocol: v, kinds: { server: ['container'] }, vcpus: 1, memory_mb: 1, disk_gb: 1, version: 't' });
    assert.equal(r.status, 400, v);
    assert.match((await r.json() as any).error.message, why);
  }
  assert.equal((await db().selectFrom('compute_hosts').select('id').where('hostname', '=', hostname).execute()).length, 0, 'nothing registered');
  const ok = await put({ protocol: PROTOCOL_VERSION, kinds: { server: ['container'] }, vcpus: 1, memory_mb: 1, disk_gb: 1, version: 't' });
  assert.equal(ok.status, 200);
  assert.equal((await ok.json() as any).protocol, PROTOCOL_VERSION);
  const bad = await put({ protocol: PROTOCOL_VERSION, kinds: ['container'], vcpus: 1, memory_mb: 1, disk_gb: 1, version: 't' });
  assert.equal(bad.status, 400, 'the rest of the body is checked once the version is');
  await disableHost(hostname);
});

test('a permanent build failure is ERROR at once (no other host tried); a report with a bad observed state or kind is refused', async () => {
  const a = await fakeHost();
  const b = await fakeHost();
  const id = await create(flavors.one!, {}, { same_host: [] });
  const placed = await scheduled(id);
  const host = placed.host === a.hostname ? a : b;
  const d = serversOf(await host.client.watch({ known: { server: {} }, wait: 0 })).find((s) => s.id === id)!;
  await assert.rejects(host.client.report({ resources: [{ kind: 'server', id, version: d.version, observed: { power_state: 1, state: 'build_failed' } }] }), /400/);
  await assert.rejects(host.client.report({ resources: [{ kind: 'gizmo', id, version: d.version, observed: {} }] }), /400.*Unknown resource kind gizmo/);
  await host.client.report({ resources: [srv(id, d.version, 0, 'absent', { class: 'permanent', code: 'image_invalid', message: 'image x: no manifest' })] });
  const r = await row(id);
  assert.equal(r.vm_state, 'error');
  assert.equal(r.task_state, null);
  assert.equal(r.host, null);
  assert.equal(r.schedule_attempts, 1, 'not rescheduled');
  assert.deepEqual(JSON.parse(r.failed_hosts), [host.hostname]);
  const fault = JSON.parse(r.fault!);
  assert.equal(fault.message, `Build of instance ${id} aborted: image x: no manifest`);
  assert.equal((await db().selectFrom('placement_allocations').selectAll().where('consumer_uuid', '=', id).execute()).length, 0, 'the claim is released');
  await disableHost(a.hostname);
  await disableHost(b.hostname);
});
