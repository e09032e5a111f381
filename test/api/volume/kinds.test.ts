// The volume kinds on the agent API (src/volume/kinds.ts): a new volume is
// placed on the volume host with the most free space in its pools (from the
// hosts' registrations), a volume from a snapshot on its source's host; the
// host is handed its specs (create, extend, delete, snapshots) and its
// reports move the volume through lifecycle.ts; a report from another host
// changes nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startCloud, type Cloud } from '../../harness.ts';
import { PROTOCOL_VERSION } from '../../../src/fleet/protocol.ts';
import { adminCaller, cinder, type VolCall } from './lib.ts';

let cloud: Cloud;
let call: VolCall;
let agentToken: string;

before(async () => {
  cloud = await startCloud();
  const admin = await adminCaller(cloud);
  call = cinder(cloud, () => admin);
  agentToken = readFileSync(join(cloud.dataDir, 'agent-token'), 'utf8').trim();
});
after(async () => {
  await cloud?.close();
});

async function agent(method: string, path: string, body: unknown): Promise<any> {
  const r = await fetch(`${cloud.url}/agent/v1/hosts/${path}`, { method, headers: { 'x-stratus-agent-token': agentToken, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal(r.status, 200, await r.clone().text());
  return r.json();
}

const pool = (host: string, free: number) => ({
  name: `${host}@file#default`, total_capacity_gb: 100, free_capacity_gb: free, provisioned_capacity_gb: 0, max_over_subscription_ratio: 20,
  thin_provisioning_support: true, reflink: true, multiattach: true, driver: 'file',
});
const register = (host: string, free: number) => agent('PUT', host, {
  protocol: PROTOCOL_VERSION, kinds: { server: ['container'], volume: ['file'], volume_snapshot: [] }, vcpus: 2, memory_mb: 2048, disk_gb: 10, version: 'test',
  volume_pools: [pool(host, free)],
});

type Known = Record<string, Record<string, number>>;
const known: Record<string, Known> = {};

/** One watch round of `host`: the volume and snapshot specs handed to it (by id). */
async function watch(host: string) {
  known[host] ??= { volume: {}, volume_snapshot: {} };
  const r = await agent('POST', `${host}/watch`, { known: known[host], wait: 0 });
  for (const res of r.resources) known[host]![res.kind]![res.id] = res.version;
  for (const g of r.gone) delete known[host]![g.kind]![g.id];
  const of = (kind: string) => new Map<string, { version: number; spec: any }>(r.resources.filter((x: any) => x.kind === kind).map((x: any) => [x.id, { version: x.version, spec: x.spec }]));
  return { volumes: of('volume'), snapshots: of('volume_snapshot'), gone: r.gone as Array<{ kind: string; id: string }> };
}

const report = (host: string, kind: string, id: string, version: number, observed: unknown, error?: unknown) =>
  agent('POST', `${host}/report`, { resources: [{ kind, id, version, observed, ...(error ? { error } : {}) }] });

const show = async (id: string) => (await call('GET', `/volumes/${id}`)).body.volume;

test('placement by free space, specs per version, reports through the lifecycle', async () => {
  await register('vk-small', 20);
  await register('vk-big', 80);
  const c = await call('POST', '/volumes', { body: { volume: { size: 1, name: 'vk' } } });
  assert.equal(c.status, 202);
  const id = c.body.volume.id as string;

  // the smaller pool's host does not take it; the larger one's does
  assert.equal((await watch('vk-small')).volumes.size, 0);
  const big = await watch('vk-big');
  const v = big.volumes.get(id)!;
  assert.ok(v, 'the volume is handed to the host with the most free space');
  assert.equal(v.spec.state, 'present');
  assert.equal(v.spec.size_gib, 1);
  assert.equal(v.spec.backend, 'file');
  assert.equal(v.spec.pool, 'default');
  assert.deepEqual(v.spec.source, { type: 'blank' });
  assert.equal((await show(id))['os-vol-host-attr:host'], 'vk-big@file#default');

  // a report from another host, or of an old version, changes nothing
  await report('vk-small', 'volume', id, v.version, { state: 'present', size_gib: 1, location: '/x' });
  await report('vk-big', 'volume', id, v.version - 1, { state: 'present', size_gib: 1, location: '/x' });
  assert.equal((await show(id)).status, 'creating');
  await report('vk-big', 'volume', id, v.version, { state: 'present', size_gib: 1, location: '/x' });
  assert.equal((await show(id)).status, 'available');

  // an admin's reset to creating stays so: the host's next report of the made volume does not make it available again
  // (Tempest's force delete of a creating volume)
  const made = (await watch('vk-big')).volumes.get(id)!;
  assert.equal((await call('POST', `/volumes/${id}/action`, { body: { 'os-reset_status': { status: 'creating' } } })).status, 202);
  await report('vk-big', 'volume', id, made.version, { state: 'present', size_gib: 1, location: '/x' });
  assert.equal((await show(id)).status, 'creating');
  assert.equal((await call('POST', `/volumes/${id}/action`, { body: { 'os-reset_status': { status: 'available' } } })).status, 202);

  // extend: a new version with the size asked
  assert.equal((await call('POST', `/volumes/${id}/action`, { body: { 'os-extend': { new_size: 3 } } })).status, 202);
  const ext = (await watch('vk-big')).volumes.get(id)!;
  assert.equal(ext.spec.size_gib, 3);
  assert.ok(ext.version > v.version);
  await report('vk-big', 'volume', id, ext.version, { state: 'present', size_gib: 3, location: '/x' });
  const grown = await show(id);
  assert.equal(grown.status, 'available');
  assert.equal(grown.size, 3);

  // a snapshot goes to the volume's host; a volume from it is placed there too, whoever watches first
  const s = await call('POST', '/snapshots', { body: { snapshot: { volume_id: id, name: 'vk-snap' } } });
  assert.equal(s.status, 202);
  const snapId = s.body.snapshot.id as string;
  const sw = (await watch('vk-big')).snapshots.get(snapId)!;
  assert.deepEqual({ volume_id: sw.spec.volume_id, state: sw.spec.state, backend: sw.spec.backend }, { volume_id: id, state: 'present', backend: 'file' });
  await report('vk-big', 'volume_snapshot', snapId, sw.version, { state: 'present', location: '/s' });
  assert.equal((await call('GET', `/snapshots/${snapId}`)).body.snapshot.status, 'available');
  await register('vk-small', 99);
  const fs = await call('POST', '/volumes', { body: { volume: { size: 3, snapshot_id: snapId } } });
  assert.equal(fs.status, 202);
  const id2 = fs.body.volume.id as string;
  assert.equal((await watch('vk-small')).volumes.has(id2), false);
  const v2 = (await watch('vk-big')).volumes.get(id2)!;
  assert.deepEqual(v2.spec.source, { type: 'snapshot', snapshot_id: snapId });

  // a failure the backend classifies: error, with a user message
  await report('vk-big', 'volume', id2, v2.version, { state: 'absent', size_gib: 0, location: null }, { class: 'user', code: 'no_space', message: 'full' });
  assert.equal((await show(id2)).status, 'error');
  const msgs = await call('GET', '/messages', { version: '3.3' });
  assert.ok(msgs.body.messages.some((m: any) => m.resource_uuid === id2), JSON.stringify(msgs.body));

  // deletes: absent specs, then the rows go on the host's reports
  assert.equal((await call('DELETE', `/volumes/${id2}`)).status, 202);
  assert.equal((await call('DELETE', `/snapshots/${snapId}`)).status, 202);
  const d = await watch('vk-big');
  assert.equal(d.volumes.get(id2)!.spec.state, 'absent');
  assert.equal(d.snapshots.get(snapId)!.spec.state, 'absent');
  await report('vk-big', 'volume', id2, d.volumes.get(id2)!.version, { state: 'absent', size_gib: 0, location: null });
  await report('vk-big', 'volume_snapshot', snapId, d.snapshots.get(snapId)!.version, { state: 'absent', location: null });
  assert.equal((await call('GET', `/volumes/${id2}`)).status, 404);
  assert.equal((await call('GET', `/snapshots/${snapId}`)).status, 404);
  assert.equal((await call('DELETE', `/volumes/${id}`)).status, 202);
  const d2 = (await watch('vk-big')).volumes.get(id)!;
  await report('vk-big', 'volume', id, d2.version, { state: 'absent', size_gib: 0, location: null });
  assert.equal((await call('GET', `/volumes/${id}`)).status, 404);
  await watch('vk-big');
  // every one of them is in a watch's `gone` by now: the host knows nothing more
  assert.deepEqual(known['vk-big'], { volume: {}, volume_snapshot: {} });
});

test('an observed state that does not match the kind is refused', async () => {
  const r = await fetch(`${cloud.url}/agent/v1/hosts/vk-big/report`, {
    method: 'POST', headers: { 'x-stratus-agent-token': agentToken, 'content-type': 'application/json' },
    body: JSON.stringify({ resources: [{ kind: 'volume', id: 'x', version: 1, observed: { state: 'melted' } }] }),
  });
  assert.equal(r.status, 400);
});

test('a volume\'s status follows its attachment rows: an upload or extend ending after a detach, the legacy flow beside the attachments API, a reset to detached', async () => {
  const HOST = `vk-settle-${process.pid}`;
  await register(HOST, 1000);
  const server = '6d3c8d5c-7f3b-4c2f-9e37-0c7a1a1d1a1a';
  const made = async (body: Record<string, unknown> = {}) => {
    const c = await call('POST', '/volumes', { body: { volume: { size: 1, ...body } } });
    assert.equal(c.status, 202, JSON.stringify(c.body));
    const w = (await watch(HOST)).volumes.get(c.body.volume.id)!;
    assert.ok(w, 'placed on the test host');
    await report(HOST, 'volume', c.body.volume.id, w.version, { state: 'present', size_gib: 1, location: '/x' });
    assert.equal((await show(c.body.volume.id)).status, 'available');
    return c.body.volume.id as string;
  };
  const act = (id: string, body: unknown, version?: string) => call('POST', `/volumes/${id}/action`, { body, ...(version ? { version } : {}) });
  const attach = async (id: string) => {
    assert.equal((await act(id, { 'os-reserve': null })).status, 202);
    assert.equal((await act(id, { 'os-attach': { instance_uuid: server, mountpoint: '/dev/vdb' } })).status, 202);
    const v = await show(id);
    assert.equal(v.status, 'in-use');
    return v.attachments[0].attachment_id as string;
  };

  // a forced upload of an in-use volume, detached while it runs: the upload keeps its status, and ends available
  const up = await made();
  const att = await attach(up);
  const u = await act(up, { 'os-volume_upload_image': { image_name: 'vk-settle', force: true } });
  assert.equal(u.status, 202, JSON.stringify(u.body));
  assert.equal((await call('DELETE', `/attachments/${att}`, { version: '3.27' })).status, 200);
  assert.equal((await show(up)).status, 'uploading', 'a detach leaves an upload\'s status alone');
  const uw = (await watch(HOST)).volumes.get(up)!;
  assert.ok(uw.spec.upload, 'the host is still handed the upload');
  await report(HOST, 'volume', up, uw.version, { state: 'present', size_gib: 1, location: '/x', uploaded: u.body['os-volume_upload_image'].image_id });
  const after = await show(up);
  assert.deepEqual([after.status, after.attachments], ['available', []], 'available: nothing is attached any more');
  // a legacy detach while uploading leaves the status to the upload too
  await attach(up);
  const u2 = await act(up, { 'os-volume_upload_image': { image_name: 'vk-settle-2', force: true } });
  assert.equal((await act(up, { 'os-detach': {} })).status, 202);
  assert.equal((await show(up)).status, 'uploading');
  const uw2 = (await watch(HOST)).volumes.get(up)!;
  await report(HOST, 'volume', up, uw2.version, { state: 'present', size_gib: 1, location: '/x', uploaded: u2.body['os-volume_upload_image'].image_id });
  assert.equal((await show(up)).status, 'available');

  // an in-use volume extended (3.42) and detached meanwhile: available at the end
  const ex = await made();
  const exAtt = await attach(ex);
  assert.equal((await act(ex, { 'os-extend': { new_size: 2 } }, '3.42')).status, 202);
  assert.equal((await call('DELETE', `/attachments/${exAtt}`, { version: '3.27' })).status, 200);
  const ew = (await watch(HOST)).volumes.get(ex)!;
  await report(HOST, 'volume', ex, ew.version, { state: 'present', size_gib: 2, location: '/x' });
  assert.deepEqual([(await show(ex)).status, (await show(ex)).size], ['available', 2]);

  // the legacy flow counts the attachments API's reservations: os-unreserve of a volume an attachment is
  // attaching leaves it attaching; a legacy detach beside a reservation leaves it reserved
  const lv = await made();
  const a = await call('POST', '/attachments', { version: '3.27', body: { attachment: { volume_uuid: lv, instance_uuid: server, connector: { host: HOST } } } });
  assert.equal(a.status, 200, JSON.stringify(a.body));
  assert.equal((await show(lv)).status, 'attaching');
  assert.equal((await act(lv, { 'os-unreserve': null })).status, 202);
  assert.equal((await show(lv)).status, 'attaching', 'the attachment still attaching');
  const type = (await call('POST', '/types', { body: { volume_type: { name: `vk-multi-${process.pid}`, extra_specs: { multiattach: '<is> True' } } } })).body.volume_type;
  const mv = await made({ volume_type: type.name });
  assert.equal((await act(mv, { 'os-attach': { instance_uuid: '7d3c8d5c-7f3b-4c2f-9e37-0c7a1a1d1a1a', mountpoint: '/dev/vdc' } })).status, 202);
  const legacy = (await show(mv)).attachments[0].attachment_id as string;
  const r = await call('POST', '/attachments', { version: '3.27', body: { attachment: { volume_uuid: mv, instance_uuid: server } } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal((await show(mv)).status, 'in-use');
  assert.equal((await act(mv, { 'os-detach': { attachment_id: legacy } })).status, 202);
  assert.equal((await show(mv)).status, 'reserved', 'the reservation is still there');

  // a reset to detached drops the attachments and their exports: a new version for the host, without them
  const before = (await watch(HOST)).volumes.get(lv) ?? { version: known[HOST]!.volume![lv]!, spec: null };
  const withExport = await call('GET', `/volumes/${lv}`);
  assert.equal(withExport.body.volume.status, 'attaching');
  assert.equal((await act(lv, { 'os-reset_status': { status: 'available', attach_status: 'detached' } })).status, 202);
  const reset = (await watch(HOST)).volumes.get(lv);
  assert.ok(reset && reset.version > before.version, 'the host is handed a new version');
  assert.deepEqual(reset.spec.exports, [], 'without the export');
});

test('a volume API write wakes the volume hosts\' watches at once, not at their next recheck', async () => {
  const host = 'vk-wake';
  // the most free space of the hosts heard of: the next volume is placed on it
  await register(host, 10_000);
  await watch(host);
  // the host's long poll, its known state current: it sleeps until something placed on it changes
  known[host] ??= { volume: {}, volume_snapshot: {} };
  let answeredAt = 0;
  const polling = agent('POST', `${host}/watch`, { known: known[host], wait: 25 }).then((r) => { answeredAt = Date.now(); return r; });
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(answeredAt, 0, 'the watch sleeps while nothing changed');
  const sentAt = Date.now();
  const c = await call('POST', '/volumes', { body: { volume: { size: 1, name: 'vk-wake' } } });
  assert.equal(c.status, 202);
  const r = await polling;
  assert.ok(r.resources.some((x: any) => x.kind === 'volume' && x.id === c.body.volume.id), 'the new volume is placed on the host with the most free space and handed to it');
  // the fleet's recheck (3 s) would have answered about 2.8 s after the create
  assert.ok(answeredAt - sentAt < 2000, `the watch answered ${answeredAt - sentAt} ms after the create`);
});
