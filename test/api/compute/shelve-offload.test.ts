// Shelve with shelvedOffloadTime -1 (a cloud that never offloads by itself,
// as devstack's gate can be configured): the server stays SHELVED on its host,
// stopped, its claim kept; unshelve starts it there (an availability zone is
// refused: only an offloaded server may move, Nova's 409); shelveOffload is
// the admin's and frees the host. A simulated agent answers (lib.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type Cloud, until, useCloud } from '../../harness.ts';
import { adminNova, dockerArchive, type Nova, projectUser, simulatedHost, type SimulatedHost } from './lib.ts';
import { beforeNextTransaction } from '../volume/lib.ts';

let admin: Nova;
let alice: Nova;
let host: SimulatedHost;
let imageId: string;
let flavorId: string;


async function upload(c: Cloud, id: string, data: Buffer): Promise<void> {
  const up = await fetch(`${c.url}/image/v2/images/${id}/file`, {
    method: 'PUT', headers: { 'X-Auth-Token': c.adminToken, 'Content-Type': 'application/octet-stream' }, body: new Uint8Array(data),
  });
  assert.equal(up.status, 204, await up.text());
}

const cloud: Cloud = useCloud(async (c) => {
  admin = await adminNova(c);
  alice = await projectUser(c);
  host = await simulatedHost(c, `so-${process.pid}`);
  const img = await c.call('POST', '/image/v2/images', { token: c.adminToken, body: { name: 'so-ctr', container_format: 'docker', disk_format: 'raw', visibility: 'public' } });
  imageId = img.body.id;
  await upload(c, imageId, dockerArchive());
  flavorId = (await admin.call('POST', '/flavors', { body: { flavor: { name: 'so', ram: 64, vcpus: 1, disk: 1 } } })).body.flavor.id;
}, { compute: { shelvedOffloadTime: -1 } });

const row = (id: string) => cloud.server.database.db.selectFrom('compute_servers').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
const act = (id: string, body: unknown, who = alice, version = '2.96') => who.call('POST', `/servers/${id}/action`, { body, version });
const status = async (id: string) => (await admin.call('GET', `/servers/${id}`)).body.server;
const allocations = async (id: string) => (await cloud.call('GET', `/placement/allocations/${id}`, { token: cloud.adminToken })).body.allocations;

async function shelve(id: string): Promise<string> {
  assert.equal((await act(id, { shelve: null })).status, 202);
  const req = await until('the snapshot request', async () => (await host.watch()).requests.find((q) => q.resource_id === id && q.action === 'snapshot'));
  await upload(cloud, req.args.image_id, dockerArchive());
  await host.answer(req.id, true);
  await until('shelved', async () => (await row(id)).vm_state === 'shelved');
  return req.args.image_id as string;
}

test('shelvedOffloadTime -1: SHELVED stays on its host, stopped; unshelve starts it there; shelveOffload (admin) frees the host', async () => {
  const r = await alice.call('POST', '/servers', { version: '2.37', body: { server: { name: 'so-one', imageRef: imageId, flavorRef: flavorId, networks: 'none' } } });
  assert.equal(r.status, 202);
  const id = r.body.server.id as string;
  await until('placed', async () => (await row(id)).host === host.hostname);
  await host.report(id, 'active', 1);

  const snap = await shelve(id);
  let s = await status(id);
  assert.equal(s.status, 'SHELVED');
  assert.equal(s['OS-EXT-SRV-ATTR:host'], host.hostname, 'still on its host');
  const spec = await host.report(id, 'stopped', 4);
  assert.equal(spec.power, 'stopped', 'its host is asked to stop it');
  assert.equal((await status(id)).status, 'SHELVED', 'a shelved server that stopped stays SHELVED');
  assert.equal(Object.keys(await allocations(id)).length, 1, 'its claim is kept while it is on its host');

  // an availability zone only for an offloaded server (Nova's 409)
  const az = await act(id, { unshelve: { availability_zone: 'nova' } }, alice, '2.77');
  assert.equal(az.status, 409, JSON.stringify(az.body));
  assert.equal((await act(id, { unshelve: null })).status, 202);
  assert.equal((await status(id))['OS-EXT-STS:task_state'], 'unshelving');
  const started = await host.report(id, 'active', 1);
  assert.equal(started.power, 'running');
  assert.equal(started.image.id, imageId, 'started where it is, on its own disk');
  s = await status(id);
  assert.equal(s.status, 'ACTIVE');
  await until('the snapshot deleted', async () => (await cloud.call('GET', `/image/v2/images/${snap}`, { token: cloud.adminToken })).status === 404);

  await shelve(id);
  const denied = await act(id, { shelveOffload: null });
  assert.equal(denied.status, 403);
  assert.match(denied.body.forbidden.message, /os_compute_api:os-shelve:shelve_offload/);
  assert.equal((await act(id, { shelveOffload: null }, admin)).status, 202);
  s = await status(id);
  assert.equal(s.status, 'SHELVED_OFFLOADED');
  assert.equal(s['OS-EXT-SRV-ATTR:host'], null);
  assert.deepEqual(await allocations(id), {});
  assert.ok(!(await host.watch()).servers.has(id));
  const actions = await alice.call('GET', `/servers/${id}/os-instance-actions`);
  assert.deepEqual(actions.body.instanceActions.map((a: any) => a.action).slice(0, 2), ['shelveOffload', 'shelve']);
  // deleting an offloaded server deletes its shelve snapshot too
  const snapNow = (await row(id)).shelved_image_id!;
  assert.ok(snapNow);
  assert.equal((await alice.call('DELETE', `/servers/${id}`)).status, 204);
  assert.equal((await cloud.call('GET', `/image/v2/images/${snapNow}`, { token: cloud.adminToken })).status, 404);
});

test('a shelveOffload that an unshelve overtakes between its checks and its write: Nova\'s 409, no instance action, the server unshelving', async () => {
  const r = await alice.call('POST', '/servers', { version: '2.37', body: { server: { name: 'so-race', imageRef: imageId, flavorRef: flavorId, networks: 'none' } } });
  assert.equal(r.status, 202);
  const id = r.body.server.id as string;
  await until('placed', async () => (await row(id)).host === host.hostname);
  await host.report(id, 'active', 1);
  await shelve(id);
  const restore = beforeNextTransaction(cloud.server.database.db, async () => assert.equal((await act(id, { unshelve: null })).status, 202));
  try {
    const off = await act(id, { shelveOffload: null }, admin);
    assert.equal(off.status, 409, JSON.stringify(off.body));
  } finally {
    restore();
  }
  const s = await status(id);
  assert.deepEqual([s.status, s['OS-EXT-STS:task_state'], s['OS-EXT-SRV-ATTR:host']], ['SHELVED', 'unshelving', host.hostname]);
  const actions = await alice.call('GET', `/servers/${id}/os-instance-actions`);
  assert.deepEqual(actions.body.instanceActions.map((a: any) => a.action).slice(0, 2), ['unshelve', 'shelve'], 'the refused offload recorded nothing');
  assert.equal(Object.keys(await allocations(id)).length, 1, 'its claim is kept');
  assert.equal((await alice.call('DELETE', `/servers/${id}`)).status, 204);
});
