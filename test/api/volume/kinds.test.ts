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
