// Backups (Cinder /backups) with a simulated volume agent on the agent API
// (as images.test.ts): the agent side speaks the real protocol — it reads
// the spec's `backup`, sends zlib-compressed chunks with their sha256 (only
// the changed ones for an incremental backup), fetches and checks them for a
// restore. Full and incremental backups, the objects in the project's
// container, restores into a new and an existing volume, the refusals,
// quotas and limits, export/import, reset and deletes, a failed backup.
// Chunks of 256 MiB: a 1 GiB volume is 4 chunks.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { startCloud, tenant, until, type Cloud, type Tenant } from '../../harness.ts';
import { PROTOCOL_VERSION } from '../../../src/fleet/protocol.ts';
import { adminCaller, assertFault, type Caller, cinder, type VolCall } from './lib.ts';
import { TempestSchemas } from '../compute/lib.ts';

const schemas = new TempestSchemas('volume');
const CHUNK = 256 * 2 ** 20;

let cloud: Cloud;
let call: VolCall;
let agentToken: string;
let alice: Tenant;
let aliceC: Caller;
let adminC: Caller;
const HOST = `vb-${process.pid}`;

before(async () => {
  cloud = await startCloud({ volume: { backupChunkSize: CHUNK } });
  adminC = await adminCaller(cloud);
  call = cinder(cloud, () => adminC);
  agentToken = readFileSync(join(cloud.dataDir, 'agent-token'), 'utf8').trim();
  alice = await tenant(cloud);
  aliceC = { token: alice.token, projectId: alice.projectId };
  await registerHost(true);
});
/** The simulated volume host's registration: one pool of the file backend, reflink (raw files) or not (qcow2 chains). */
const registerHost = (reflink: boolean) => agent('PUT', `hosts/${HOST}`, {
  protocol: PROTOCOL_VERSION, kinds: { volume: ['file'], volume_snapshot: [] }, vcpus: 2, memory_mb: 2048, disk_gb: 10, version: 'test',
  volume_pools: [{
    name: `${HOST}@file#default`, total_capacity_gb: 100, free_capacity_gb: 90, provisioned_capacity_gb: 0, max_over_subscription_ratio: 20,
    thin_provisioning_support: true, reflink, multiattach: true, driver: 'file',
  }],
});
after(async () => {
  await cloud?.close();
});

function agentFetch(method: string, path: string, o: { json?: unknown; body?: Buffer; headers?: Record<string, string> } = {}): Promise<Response> {
  const headers: Record<string, string> = { 'x-stratus-agent-token': agentToken, ...(o.headers ?? {}) };
  if (o.json !== undefined) headers['content-type'] = 'application/json';
  if (o.body) headers['content-type'] = 'application/octet-stream';
  return fetch(`${cloud.url}/agent/v1/${path}`, { method, headers, body: o.json !== undefined ? JSON.stringify(o.json) : o.body ? new Uint8Array(o.body) : undefined });
}
async function agent(method: string, path: string, body: unknown): Promise<any> {
  const r = await agentFetch(method, path, { json: body });
  assert.equal(r.status, 200, await r.clone().text());
  return r.json();
}
const known: Record<string, Record<string, number>> = { volume: {}, volume_snapshot: {} };
async function watch(): Promise<Map<string, { version: number; spec: any }>> {
  const r = await agent('POST', `hosts/${HOST}/watch`, { known, wait: 0 });
  for (const res of r.resources) known[res.kind]![res.id] = res.version;
  for (const g of r.gone) delete known[g.kind]![g.id];
  return new Map(r.resources.filter((x: any) => x.kind === 'volume').map((x: any) => [x.id, { version: x.version, spec: x.spec }]));
}
const report = (id: string, version: number, observed: unknown, error?: unknown) =>
  agent('POST', `hosts/${HOST}/report`, { resources: [{ kind: 'volume', id, version, observed, ...(error ? { error } : {}) }] });
const present = (size = 1) => ({ state: 'present', size_gib: size, location: '/x' });

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
/**
 * The simulated volume's data: a chunk is zeros but for a marker at its start, sent as its first 4 KiB (the
 * rest a hole of the sparse file, as a restore leaves it: the server inflates and hashes what is sent, and
 * 256 MiB per chunk would cost seconds of CPU per backup); its sha256 and zlib stream, made once per marker.
 */
const chunks = new Map<string, { sha: string; z: Buffer }>();
function chunkOf(mark: string): { sha: string; z: Buffer } {
  let c = chunks.get(mark);
  if (!c) {
    const b = Buffer.alloc(4096);
    b.write(mark, 0);
    c = { sha: sha(b), z: deflateSync(b, { level: 1 }) };
    chunks.set(mark, c);
  }
  return c;
}
const putChunk = (backupId: string, i: number, mark: string, hash = chunkOf(mark).sha) =>
  agentFetch('PUT', `backups/${backupId}/chunks/${i}`, { body: chunkOf(mark).z, headers: { 'x-stratus-sha256': hash } });

/** The agent's side of a backup: each chunk whose hash differs from the parent's sent; returns how many. */
async function agentBackup(volumeId: string, marks: string[], seen?: { version: number; spec: any }): Promise<number> {
  const w = seen ?? (await watch()).get(volumeId)!;
  assert.ok(w?.spec.backup, `a backup in the spec: ${JSON.stringify(w?.spec)}`);
  const job = w.spec.backup;
  assert.equal(job.chunk_size, CHUNK);
  let sent = 0;
  for (let i = 0; i < marks.length; i++) {
    if (job.parent_sha256?.[i] === chunkOf(marks[i]!).sha || job.stored_sha256?.[i] === chunkOf(marks[i]!).sha) continue;
    const r = await putChunk(job.backup_id, i, marks[i]!);
    assert.equal(r.status, 204, await r.text());
    sent++;
  }
  await report(volumeId, w.version, { ...present(), backed_up: job.backup_id });
  return sent;
}

/** The agent's side of a restore: every chunk fetched and checked (the stream and hash of a known marker); returns the chunks' markers. */
async function agentRestore(volumeId: string, size = 1): Promise<string[]> {
  const w = (await watch()).get(volumeId)!;
  assert.ok(w?.spec.restore, `a restore in the spec: ${JSON.stringify(w?.spec)}`);
  const job = w.spec.restore;
  assert.equal(job.size_bytes, size * 2 ** 30);
  const marks: string[] = [];
  for (let i = 0; i < job.sha256.length; i++) {
    const r = await agentFetch('GET', `backups/${job.backup_id}/chunks/${i}`);
    assert.equal(r.status, 200, await r.clone().text());
    const z = Buffer.from(await r.arrayBuffer());
    const mark = [...chunks].find(([, c]) => c.z.equals(z))?.[0];
    assert.ok(mark !== undefined, `chunk ${i} is a stream sent`);
    assert.equal(chunkOf(mark).sha, job.sha256[i], `chunk ${i} checks`);
    marks.push(mark);
  }
  await report(volumeId, w.version, { ...present(w.spec.size_gib), restored: job.backup_id });
  return marks;
}

async function madeVolume(as: Caller, size = 1): Promise<string> {
  const c = await call('POST', '/volumes', { as, body: { volume: { size } } });
  assert.equal(c.status, 202, JSON.stringify(c.body));
  const w = (await watch()).get(c.body.volume.id)!;
  await report(c.body.volume.id, w.version, present(size));
  assert.equal((await call('GET', `/volumes/${c.body.volume.id}`, { as })).body.volume.status, 'available');
  return c.body.volume.id;
}
const backupOf = async (id: string, as = aliceC, version = '3.64') => {
  const r = await call('GET', `/backups/${id}`, { as, version });
  return r.status === 200 ? r.body.backup : null;
};
const volumeStatus = async (id: string) => (await call('GET', `/volumes/${id}`, { as: aliceC })).body.volume.status;
const swiftNames = async (container: string): Promise<string[]> => {
  const r = await cloud.call('GET', `/object/v1/AUTH_${alice.projectId}/${container}?format=json`, { token: alice.token });
  return r.status === 200 ? (r.body as Array<{ name: string }>).map((o) => o.name) : [];
};

let volumeId: string;
let fullId: string;
let incrId: string;

test('a full backup: the volume backing-up, the chunks checked and stored in the project container, available with its object count', async () => {
  volumeId = await madeVolume(aliceC);
  assert.equal((await call('POST', `/volumes/${volumeId}/metadata`, { as: aliceC, body: { metadata: { 'vol-meta1': 'value1' } } })).status, 200);
  const c = await call('POST', '/backups', { as: aliceC, version: '3.51', body: { backup: { volume_id: volumeId, name: 'full', metadata: { k: 'v' }, availability_zone: 'nova' } } });
  assert.equal(c.status, 202, JSON.stringify(c.body));
  schemas.add('backups', 'create_backup', c);
  fullId = c.body.backup.id;
  assert.deepEqual(c.body.backup.metadata, { k: 'v' });
  assert.equal(await volumeStatus(volumeId), 'backing-up');
  const b = await backupOf(fullId);
  assert.equal(b.status, 'creating');
  assert.equal(b.container, 'volumebackups');

  // a second backup while one runs is refused; so is a delete of the volume
  assertFault(await call('POST', '/backups', { as: aliceC, body: { backup: { volume_id: volumeId } } }), 400, 'badRequest', /must be available or in-use|in progress/);
  assertFault(await call('DELETE', `/volumes/${volumeId}`, { as: aliceC }), 400, 'badRequest');

  // the server refuses a chunk without its hash or past the end, and chunks of no backup being made
  const w = (await watch()).get(volumeId)!;
  assert.equal(w.spec.backup.parent_sha256, null);
  assert.equal(w.spec.backup.live, false);
  assert.equal((await putChunk(fullId, 0, 'a0', 'not-a-hash')).status, 400);
  assert.equal((await putChunk(fullId, 4, 'a0')).status, 400);
  assert.equal((await putChunk('f7b1e0b8-0c1e-4d7e-9a4f-6f1f1f1f1f1f', 0, 'a0')).status, 404);
  // the agent token is needed
  const anon = await fetch(`${cloud.url}/agent/v1/backups/${fullId}/chunks/0`, { method: 'PUT', body: 'x' });
  assert.equal(anon.status, 401);

  assert.equal(await agentBackup(volumeId, ['a0', 'a1', 'a2', 'a3'], w), 4);
  const done = await backupOf(fullId);
  assert.equal(done.status, 'available', JSON.stringify(done));
  assert.equal(done.object_count, 4);
  assert.equal(done.is_incremental, false);
  assert.equal(done.size, 1);
  assert.equal(await volumeStatus(volumeId), 'available');
  const names = await swiftNames('volumebackups');
  assert.equal(names.filter((n) => n.includes(fullId)).length, 6, names.join(' '));
  assert.ok(names.some((n) => n.endsWith(`backup_${fullId}_metadata`)));
  assert.ok(names.some((n) => n.endsWith(`backup_${fullId}-00004`)));
  schemas.add('v3_64.backups', 'show_backup', await call('GET', `/backups/${fullId}`, { as: aliceC, version: '3.64' }));
  schemas.add('backups', 'show_backup', await call('GET', `/backups/${fullId}`, { as: aliceC, version: '3.43' }));
  schemas.add('v3_64.backups', 'list_backups_with_detail', await call('GET', '/backups/detail', { as: aliceC, version: '3.64' }));
  schemas.add('backups', 'list_backups_no_detail', await call('GET', '/backups', { as: aliceC }));
});

test('an incremental backup sends only the changed chunk; the parent has a dependent and is not deleted', async () => {
  const c = await call('POST', '/backups', { as: aliceC, body: { backup: { volume_id: volumeId, incremental: true } } });
  assert.equal(c.status, 202, JSON.stringify(c.body));
  incrId = c.body.backup.id;
  assert.equal(await agentBackup(volumeId, ['a0', 'a1', 'CHANGED', 'a3']), 1);
  const b = await backupOf(incrId);
  assert.equal(b.status, 'available');
  assert.equal(b.object_count, 1);
  assert.equal(b.is_incremental, true);
  assert.equal((await backupOf(fullId)).has_dependent_backups, true);
  assertFault(await call('DELETE', `/backups/${fullId}`, { as: aliceC }), 400, 'badRequest', /Incremental backups exist/);
  assert.equal((await swiftNames('volumebackups')).filter((n) => n.includes(incrId)).length, 3);
  // a volume with no backup has nothing to increment
  const other = await madeVolume(aliceC);
  assertFault(await call('POST', '/backups', { as: aliceC, body: { backup: { volume_id: other, incremental: true } } }), 400, 'badRequest', /No backups available/);
});

test('restores into a new volume and into an existing one hand the host the chunks, checked; the refusals', async () => {
  const r = await call('POST', `/backups/${incrId}/restore`, { as: aliceC, body: { restore: { name: 'from-incr' } } });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  schemas.add('backups', 'restore_backup', r);
  const newId = r.body.restore.volume_id;
  assert.equal(r.body.restore.volume_name, 'from-incr');
  assert.equal((await backupOf(incrId)).status, 'restoring');
  // the new volume is made first, then the backup goes in
  const w = (await watch()).get(newId)!;
  assert.equal(w.spec.restore, undefined);
  await report(newId, w.version, present());
  assert.equal(await volumeStatus(newId), 'restoring-backup');
  assert.deepEqual(await agentRestore(newId), ['a0', 'a1', 'CHANGED', 'a3']);
  assert.equal(await volumeStatus(newId), 'available');
  assert.equal((await backupOf(incrId)).status, 'available');
  // the backed-up volume's metadata comes with it (Cinder's volume_meta)
  assert.deepEqual((await call('GET', `/volumes/${newId}`, { as: aliceC })).body.volume.metadata, { 'vol-meta1': 'value1' });

  // into an existing volume: the full backup's data
  const target = await madeVolume(aliceC, 2);
  const r2 = await call('POST', `/backups/${fullId}/restore`, { as: aliceC, body: { restore: { volume_id: target } } });
  assert.equal(r2.status, 202, JSON.stringify(r2.body));
  assert.equal(await volumeStatus(target), 'restoring-backup');
  assert.deepEqual(await agentRestore(target), ['a0', 'a1', 'a2', 'a3']);
  assert.equal(await volumeStatus(target), 'available');

  // refusals: a too small volume, one not available, a backup not available, another project's backup
  const small = await madeVolume(aliceC, 1);
  await call('POST', `/volumes/${small}/action`, { body: { 'os-reset_status': { status: 'error' } } });
  assertFault(await call('POST', `/backups/${fullId}/restore`, { as: aliceC, body: { restore: { volume_id: small } } }), 400, 'badRequest', /must be available/);
  assertFault(await call('POST', `/backups/${fullId}/restore`, { as: aliceC, body: {} }), 400, 'badRequest', /restore/);
  const bob = await tenant(cloud);
  assertFault(await call('POST', `/backups/${fullId}/restore`, { as: { token: bob.token, projectId: bob.projectId }, body: { restore: {} } }), 404, 'itemNotFound');
  assertFault(await call('GET', `/backups/${fullId}`, { as: { token: bob.token, projectId: bob.projectId } }), 404, 'itemNotFound');

  // a failed restore: the volume error_restoring, the backup available again
  const t2 = await madeVolume(aliceC, 1);
  await call('POST', `/backups/${fullId}/restore`, { as: aliceC, body: { restore: { volume_id: t2 } } });
  const w2 = (await watch()).get(t2)!;
  await report(t2, w2.version, present(), { class: 'user', code: 'source_unavailable', message: 'chunk 1 does not match its sha256' });
  assert.equal(await volumeStatus(t2), 'error_restoring');
  assert.equal((await backupOf(fullId)).status, 'available');
});

test('a volume created from a backup (3.47): creating, then restoring-backup with the backup restoring, then available with its data; the refusals', async () => {
  // room for the volumes the tests below make
  assert.equal((await call('PUT', `/os-quota-sets/${alice.projectId}`, { body: { quota_set: { volumes: 100 } } })).status, 200);
  const c = await call('POST', '/volumes', { as: aliceC, version: '3.47', body: { volume: { backup_id: fullId, name: 'from-backup' } } });
  assert.equal(c.status, 202, JSON.stringify(c.body));
  const id = c.body.volume.id as string;
  assert.equal(c.body.volume.size, 1, 'the backup\'s size');
  assert.equal(c.body.volume.status, 'creating');
  assert.equal((await backupOf(fullId)).status, 'restoring');
  // the backup is taken: another volume from it waits
  assertFault(await call('POST', '/volumes', { as: aliceC, version: '3.47', body: { volume: { backup_id: fullId } } }), 400, 'badRequest', /Backup status must be available/);
  // made first (blank), then the backup goes in
  const w = (await watch()).get(id)!;
  assert.equal(w.spec.restore, undefined);
  assert.equal(w.spec.source.type, 'blank');
  await report(id, w.version, present());
  assert.equal(await volumeStatus(id), 'restoring-backup');
  assert.deepEqual(await agentRestore(id), ['a0', 'a1', 'a2', 'a3']);
  assert.equal(await volumeStatus(id), 'available');
  assert.equal((await backupOf(fullId)).status, 'available');
  assert.deepEqual((await call('GET', `/volumes/${id}`, { as: aliceC })).body.volume.metadata, { 'vol-meta1': 'value1' });

  // larger than the backup: the backup restored into its first GiB
  const big = await call('POST', '/volumes', { as: aliceC, version: '3.47', body: { volume: { backup_id: fullId, size: 2 } } });
  assert.equal(big.status, 202, JSON.stringify(big.body));
  const wb = (await watch()).get(big.body.volume.id)!;
  await report(big.body.volume.id, wb.version, present(2));
  assert.deepEqual(await agentRestore(big.body.volume.id, 1), ['a0', 'a1', 'a2', 'a3']);
  assert.equal(await volumeStatus(big.body.volume.id), 'available');
  assert.equal((await call('GET', `/volumes/${big.body.volume.id}`, { as: aliceC })).body.volume.size, 2);

  // a 2 GiB backup (an imported record listing the full backup's chunks twice) does not fit in 1 GiB
  const e = await call('GET', `/backups/${fullId}/export_record`);
  const rec = JSON.parse(Buffer.from(e.body['backup-record'].backup_url, 'base64').toString());
  rec.id = '6b2e6f4f-9b6c-4d2f-8a4f-2e3d4c5b6a7f';
  rec.size = 2;
  rec.project_id = alice.projectId;
  rec.chunks = [...rec.chunks, ...rec.chunks.map((x: any) => ({ ...x, idx: x.idx + 4 }))];
  const imp = await call('POST', '/backups/import_record', { body: { 'backup-record': { backup_service: e.body['backup-record'].backup_service, backup_url: Buffer.from(JSON.stringify(rec)).toString('base64') } } });
  assert.equal(imp.status, 201, JSON.stringify(imp.body));
  assertFault(await call('POST', '/volumes', { version: '3.47', body: { volume: { backup_id: rec.id, size: 1 } } }), 400, 'badRequest', /cannot be smaller than the backup size 2GB/);
  assert.equal((await backupOf(rec.id, adminC)).status, 'available', 'the refused create took nothing');
  // (its delete keeps the full backup's objects, which the full backup lists too)
  await dropBackup(rec.id, adminC);

  // an unknown backup, another project's, one not available, two sources at once
  assertFault(await call('POST', '/volumes', { as: aliceC, version: '3.47', body: { volume: { backup_id: 'f7b1e0b8-0c1e-4d7e-9a4f-6f1f1f1f1f1f' } } }), 404, 'itemNotFound', /Backup f7b1e0b8-0c1e-4d7e-9a4f-6f1f1f1f1f1f could not be found/);
  const bob = await tenant(cloud);
  assertFault(await call('POST', '/volumes', { as: { token: bob.token, projectId: bob.projectId }, version: '3.47', body: { volume: { backup_id: fullId } } }), 404, 'itemNotFound');
  const failed = await startBackup(volumeId, { name: 'to-fail' });
  const wf = (await watch()).get(volumeId)!;
  await report(volumeId, wf.version, present(), { class: 'user', code: 'refused', message: 'no' });
  assertFault(await call('POST', '/volumes', { as: aliceC, version: '3.47', body: { volume: { backup_id: failed } } }), 400, 'badRequest', /Backup status must be available, but it is error/);
  await dropBackup(failed);
  assertFault(await call('POST', '/volumes', { as: aliceC, version: '3.47', body: { volume: { backup_id: fullId, snapshot_id: 'f7b1e0b8-0c1e-4d7e-9a4f-6f1f1f1f1f1f' } } }), 400, 'badRequest', /Only one of/);
  // before 3.47 backup_id is not read (Cinder ignores it): a volume from nothing needs its size
  assertFault(await call('POST', '/volumes', { as: aliceC, version: '3.46', body: { volume: { backup_id: fullId } } }), 400, 'badRequest', /size is required/);

  // a volume from a backup no pool takes: error, the backup available again, the volume deletable
  const nowhere = await call('POST', '/types', { body: { volume_type: { name: `vb-nowhere-${process.pid}`, extra_specs: { volume_backend_name: 'nope' } } } });
  assert.equal(nowhere.status, 200, JSON.stringify(nowhere.body));
  const unplaced = await call('POST', '/volumes', { as: aliceC, version: '3.47', body: { volume: { backup_id: fullId, volume_type: nowhere.body.volume_type.name } } });
  assert.equal(unplaced.status, 202, JSON.stringify(unplaced.body));
  await watch();
  await until('the unplaced volume error', async () => (await volumeStatus(unplaced.body.volume.id)) === 'error', 10_000, 20);
  assert.equal((await backupOf(fullId)).status, 'available');
  assert.equal((await call('DELETE', `/volumes/${unplaced.body.volume.id}`, { as: aliceC })).status, 202);

  // a volume from a backup force-deleted before it was made: the backup available again
  const gone = await call('POST', '/volumes', { as: aliceC, version: '3.47', body: { volume: { backup_id: fullId } } });
  assert.equal(gone.status, 202, JSON.stringify(gone.body));
  assert.equal((await call('POST', `/volumes/${gone.body.volume.id}/action`, { body: { 'os-force_delete': {} } })).status, 202);
  assert.equal((await backupOf(fullId)).status, 'available');
  const wg = (await watch()).get(gone.body.volume.id);
  if (wg) await report(gone.body.volume.id, wg.version, { state: 'absent', size_gib: 0, location: null });
  for (const v of [id, big.body.volume.id]) assert.equal((await call('DELETE', `/volumes/${v}`, { as: aliceC })).status, 202);
});

test('the server checks each chunk against its sha256: one that does not match is refused, never stored, and the backup fails with its objects removed', async () => {
  const v = await madeVolume(aliceC);
  const id = await startBackup(v, { name: 'damaged' });
  assert.equal((await putChunk(id, 0, 'a0')).status, 204);
  assert.equal((await swiftNames('volumebackups')).filter((n) => n.includes(id)).length, 1);
  // chunk 1's bytes sent with another chunk's hash
  const r = await putChunk(id, 1, 'a1', chunkOf('a2').sha);
  assert.equal(r.status, 400, await r.clone().text());
  assert.match(await r.text(), /does not match its sha256/);
  const b = await backupOf(id);
  assert.equal(b.status, 'error');
  assert.match(b.fail_reason, /Chunk 1 as sent does not match its sha256/);
  assert.equal(await volumeStatus(v), 'available');
  assert.deepEqual((await swiftNames('volumebackups')).filter((n) => n.includes(id)), [], 'nothing of it stays');
  // the backup stopped: later chunks are refused
  assert.equal((await putChunk(id, 2, 'a2')).status, 409);

  // a stream that does not inflate
  const id2 = await startBackup(v);
  const r2 = await agentFetch('PUT', `backups/${id2}/chunks/0`, { body: Buffer.from('not zlib at all'), headers: { 'x-stratus-sha256': chunkOf('a0').sha } });
  assert.equal(r2.status, 400);
  assert.match((await backupOf(id2)).fail_reason, /damaged/);
  for (const x of [id, id2]) await dropBackup(x);
});

test('a volume force-deleted mid-backup: the backup error with its reason and its partial objects removed; mid-restore: the backup available again', async () => {
  const v = await madeVolume(aliceC);
  const id = await startBackup(v);
  assert.equal((await putChunk(id, 0, 'a0')).status, 204);
  assert.equal((await putChunk(id, 1, 'a1')).status, 204);
  assert.equal((await call('POST', `/volumes/${v}/action`, { body: { 'os-force_delete': {} } })).status, 202);
  const b = await backupOf(id);
  assert.equal(b.status, 'error');
  assert.match(b.fail_reason, new RegExp(`Volume ${v} was deleted during the backup`));
  assert.deepEqual((await swiftNames('volumebackups')).filter((n) => n.includes(id)), []);
  // the agent, still sending: refused
  assert.equal((await putChunk(id, 2, 'a2')).status, 409);
  const w = (await watch()).get(v)!;
  assert.equal(w.spec.state, 'absent');
  assert.equal(w.spec.backup, undefined);
  await report(v, w.version, { state: 'absent', size_gib: 0, location: null });
  await until('the volume gone', async () => (await call('GET', `/volumes/${v}`, { as: aliceC })).status === 404, 10_000, 20);
  assert.equal((await backupOf(id)).status, 'error');
  await dropBackup(id);

  // a restore into a volume force-deleted: the backup available again
  const t = await madeVolume(aliceC);
  assert.equal((await call('POST', `/backups/${fullId}/restore`, { as: aliceC, body: { restore: { volume_id: t } } })).status, 202);
  assert.equal((await backupOf(fullId)).status, 'restoring');
  assert.equal((await call('POST', `/volumes/${t}/action`, { body: { 'os-force_delete': {} } })).status, 202);
  assert.equal((await backupOf(fullId)).status, 'available');
  const wt = (await watch()).get(t)!;
  assert.equal(wt.spec.restore, undefined);
  await report(t, wt.version, { state: 'absent', size_gib: 0, location: null });
});

test('another write to the volume row mid-backup: the report of the version the agent worked on still finishes the backup and gives the volume back', async () => {
  const v = await madeVolume(aliceC);
  const id = await startBackup(v);
  const w = (await watch()).get(v)!;
  // the row's version moves on while the agent sends (an attachment's export, a reset: any write)
  await cloud.server.database.db.updateTable('volume_volumes' as never).set({ version: w.version + 1 } as never).where('id' as never, '=', v as never).execute();
  assert.equal(await agentBackup(v, ['a0', 'a1', 'a2', 'a3'], w), 4);
  const b = await backupOf(id);
  assert.equal(b.status, 'available', JSON.stringify(b));
  assert.equal(b.object_count, 4);
  assert.equal(await volumeStatus(v), 'available');
  const again = (await watch()).get(v)!;
  assert.equal(again.spec.backup, undefined, 'nothing to send again');
  await dropBackup(b.id);
});

test('an agent that restarts mid-backup is handed the chunks stored already and sends only the rest', async () => {
  const v = await madeVolume(aliceC);
  const id = await startBackup(v);
  const w = (await watch()).get(v)!;
  assert.equal(w.spec.backup.stored_sha256, undefined);
  assert.equal((await putChunk(id, 0, 'a0')).status, 204);
  assert.equal((await putChunk(id, 1, 'a1')).status, 204);
  // the agent restarts: it knows nothing and is handed the volume again
  delete known.volume![v];
  const again = (await watch()).get(v)!;
  assert.deepEqual(again.spec.backup.stored_sha256, [chunkOf('a0').sha, chunkOf('a1').sha, null, null]);
  // chunk 1 changed meanwhile (a live volume read through a new snapshot): sent again
  assert.equal(await agentBackup(v, ['a0', 'CHANGED', 'a2', 'a3'], again), 3);
  const b = await backupOf(id);
  assert.equal(b.status, 'available');
  assert.equal(b.object_count, 4);
  const t = await madeVolume(aliceC);
  assert.equal((await call('POST', `/backups/${id}/restore`, { as: aliceC, body: { restore: { volume_id: t } } })).status, 202);
  assert.deepEqual(await agentRestore(t), ['a0', 'CHANGED', 'a2', 'a3']);
  await dropBackup(id);
});

test('a forced backup of an in-use volume on a pool of qcow2 chains is refused before it starts, saying why', async () => {
  const v = await madeVolume(aliceC);
  await call('POST', `/volumes/${v}/action`, { body: { 'os-reset_status': { status: 'in-use' } } });
  await registerHost(false);
  try {
    assertFault(await call('POST', '/backups', { as: aliceC, body: { backup: { volume_id: v, force: true } } }), 400, 'badRequest', /is in-use on pool .*qcow2 chains.*cannot take a point-in-time copy of an attached volume: detach it/);
    assert.equal(await volumeStatus(v), 'in-use', 'nothing started');
    // detached, it backs up
    await call('POST', `/volumes/${v}/action`, { body: { 'os-reset_status': { status: 'available' } } });
    const id = await startBackup(v);
    assert.equal((await call('POST', `/backups/${id}/action`, { body: { 'os-reset_status': { status: 'error' } } })).status, 202);
    await dropBackup(id);
  } finally {
    await registerHost(true);
  }
});

test('backup refusals: an in-use volume needs force, a bad body, an unknown volume; a failed backup is error with its reason', async () => {
  assertFault(await call('POST', '/backups', { as: aliceC, body: {} }), 400, 'badRequest', /backup/);
  assertFault(await call('POST', '/backups', { as: aliceC, body: { backup: { volume_id: 'f7b1e0b8-0c1e-4d7e-9a4f-6f1f1f1f1f1f' } } }), 404, 'itemNotFound');
  assertFault(await call('POST', '/backups', { as: aliceC, body: { backup: { volume_id: volumeId, incremental: 'maybe' } } }), 400, 'badRequest');
  const v = await madeVolume(aliceC);
  await call('POST', `/volumes/${v}/action`, { body: { 'os-reset_status': { status: 'in-use' } } });
  assertFault(await call('POST', '/backups', { as: aliceC, body: { backup: { volume_id: v } } }), 400, 'badRequest', /force/);
  const f = await call('POST', '/backups', { as: aliceC, body: { backup: { volume_id: v, force: true } } });
  assert.equal(f.status, 202, JSON.stringify(f.body));
  const w = (await watch()).get(v)!;
  assert.equal(w.spec.backup.live, true, 'an attached volume is read through a snapshot');
  await report(v, w.version, present(), { class: 'user', code: 'refused', message: 'this backend snapshots a volume only while it is detached' });
  const b = await backupOf(f.body.backup.id);
  assert.equal(b.status, 'error');
  assert.match(b.fail_reason, /detached/);
  // back to what its attachments say (none: the in-use above was a reset)
  assert.equal(await volumeStatus(v), 'available');
  // an error backup goes
  assert.equal((await call('DELETE', `/backups/${b.id}`, { as: aliceC })).status, 202);
  await waitGone(b.id);
});

test('a backup of a snapshot: the snapshot backing-up, the volume left as it is (and not deleted meanwhile), the job naming the snapshot', async () => {
  const v = await madeVolume(aliceC);
  const sc = await call('POST', '/snapshots', { as: aliceC, body: { snapshot: { volume_id: v } } });
  assert.equal(sc.status, 202, JSON.stringify(sc.body));
  const snapId = sc.body.snapshot.id;
  const r = await agent('POST', `hosts/${HOST}/watch`, { known, wait: 0 });
  const res = r.resources.find((x: any) => x.kind === 'volume_snapshot' && x.id === snapId);
  known.volume_snapshot![snapId] = res.version;
  await agent('POST', `hosts/${HOST}/report`, { resources: [{ kind: 'volume_snapshot', id: snapId, version: res.version, observed: { state: 'present', location: '/s' } }] });
  const c = await call('POST', '/backups', { as: aliceC, body: { backup: { volume_id: v, snapshot_id: snapId } } });
  assert.equal(c.status, 202, JSON.stringify(c.body));
  assert.equal(await volumeStatus(v), 'available');
  assert.equal((await call('GET', `/snapshots/${snapId}`, { as: aliceC })).body.snapshot.status, 'backing-up');
  assertFault(await call('DELETE', `/volumes/${v}?cascade=true`, { as: aliceC }), 400, 'badRequest');
  const w = (await watch()).get(v)!;
  assert.equal(w.spec.backup.snapshot_id, snapId);
  assert.equal(w.spec.backup.live, false);
  assert.equal(await agentBackup(v, ['s0', 's1', 's2', 's3'], w), 4);
  const b = await backupOf(c.body.backup.id);
  assert.equal(b.status, 'available');
  assert.equal(b.snapshot_id, snapId);
  assert.equal((await call('GET', `/snapshots/${snapId}`, { as: aliceC })).body.snapshot.status, 'available');
  // a snapshot of another volume is not found
  assertFault(await call('POST', '/backups', { as: aliceC, body: { backup: { volume_id: volumeId, snapshot_id: snapId } } }), 404, 'itemNotFound');
  assert.equal((await call('DELETE', `/backups/${b.id}`, { as: aliceC })).status, 202);
  await waitGone(b.id);
});

async function waitGone(id: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (!(await backupOf(id, adminC))) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`backup ${id} still there`);
}
/** A backup's delete asked (202) and done. */
async function dropBackup(id: string, as = aliceC): Promise<void> {
  assert.equal((await call('DELETE', `/backups/${id}`, { as })).status, 202);
  await waitGone(id);
}
/** A backup of `volumeId` asked (202); its id. */
async function startBackup(volumeId: string, extra: Record<string, unknown> = {}): Promise<string> {
  const c = await call('POST', '/backups', { as: aliceC, body: { backup: { volume_id: volumeId, ...extra } } });
  assert.equal(c.status, 202, JSON.stringify(c.body));
  return c.body.backup.id as string;
}

test('quotas: backups and backup_gigabytes are counted and enforced; limits show them', async () => {
  const lim = await call('GET', '/limits', { as: aliceC });
  assert.equal(lim.body.limits.absolute.totalBackupsUsed, 2);
  assert.equal(lim.body.limits.absolute.totalBackupGigabytesUsed, 2);
  const q = await call('PUT', `/os-quota-sets/${alice.projectId}`, { body: { quota_set: { backups: 2 } } });
  assert.equal(q.status, 200, JSON.stringify(q.body));
  assertFault(await call('POST', '/backups', { as: aliceC, body: { backup: { volume_id: volumeId } } }), 413, 'overLimit', /Maximum number of backups allowed \(2\) exceeded/);
  await call('PUT', `/os-quota-sets/${alice.projectId}`, { body: { quota_set: { backups: 10, backup_gigabytes: 2 } } });
  assertFault(await call('POST', '/backups', { as: aliceC, body: { backup: { volume_id: volumeId } } }), 413, 'overLimit', /Backup gigabytes quota/);
  await call('PUT', `/os-quota-sets/${alice.projectId}`, { body: { quota_set: { backup_gigabytes: 1000 } } });
  const usage = await call('GET', `/os-quota-sets/${alice.projectId}?usage=true`);
  assert.equal(usage.body.quota_set.backups.in_use, 2);
});

test('export and import of a record (admin only), reset status, update, deletes that remove the objects', async () => {
  assertFault(await call('GET', `/backups/${fullId}/export_record`, { as: aliceC }), 403, 'forbidden');
  const e = await call('GET', `/backups/${fullId}/export_record`);
  assert.equal(e.status, 200, JSON.stringify(e.body));
  schemas.add('backups', 'export_backup', e);
  const rec = JSON.parse(Buffer.from(e.body['backup-record'].backup_url, 'base64').toString());
  rec.id = '5a1d5f3e-8a5b-4c1e-9f3e-1d2c3b4a5f6e';
  const url = Buffer.from(JSON.stringify(rec)).toString('base64');
  assertFault(await call('POST', '/backups/import_record', { body: { 'backup-record': { backup_service: e.body['backup-record'].backup_service, backup_url: 'bm90IGpzb24=' } } }), 400, 'badRequest');
  const i = await call('POST', '/backups/import_record', { body: { 'backup-record': { backup_service: e.body['backup-record'].backup_service, backup_url: url } } });
  assert.equal(i.status, 201, JSON.stringify(i.body));
  schemas.add('backups', 'import_backup', i);
  assert.equal(i.body.backup.id, rec.id);
  assert.equal((await backupOf(rec.id, adminC)).status, 'available');
  // the importer's (Cinder's import_record): in the admin's own list
  assert.ok((await call('GET', '/backups')).body.backups.some((x: any) => x.id === rec.id));
  assertFault(await call('POST', '/backups/import_record', { body: { 'backup-record': { backup_service: e.body['backup-record'].backup_service, backup_url: url } } }), 400, 'badRequest', /already exists/);
  // the imported record restores: its chunks are the same objects
  const r = await call('POST', `/backups/${rec.id}/restore`, { body: { restore: {} } });
  assert.equal(r.status, 202);
  const w = (await watch()).get(r.body.restore.volume_id)!;
  await report(r.body.restore.volume_id, w.version, present());
  const w2 = (await watch()).get(r.body.restore.volume_id)!;
  assert.deepEqual(w2.spec.restore.sha256.length, 4);
  await report(r.body.restore.volume_id, w2.version, { ...present(), restored: rec.id });
  await until('the imported backup available again', async () => (await backupOf(rec.id, adminC))?.status === 'available', 10_000, 20);

  const u = await call('PUT', `/backups/${incrId}`, { as: aliceC, version: '3.43', body: { backup: { name: 'renamed', metadata: { a: 'b' } } } });
  assert.equal(u.status, 200, JSON.stringify(u.body));
  schemas.add('backups', 'update_backup', u);
  assert.equal(u.body.backup.name, 'renamed');
  assertFault(await call('POST', `/backups/${incrId}/action`, { as: aliceC, body: { 'os-reset_status': { status: 'error' } } }), 403, 'forbidden');
  const rs = await call('POST', `/backups/${incrId}/action`, { body: { 'os-reset_status': { status: 'error' } } });
  assert.equal(rs.status, 202);
  assert.equal((await backupOf(incrId)).status, 'error');

  // deletes: the imported record first: the full backup's objects, which it lists too, stay and still restore
  const before = (await swiftNames('volumebackups')).filter((n) => n.includes(fullId)).length;
  assert.ok(before > 0);
  assert.equal((await call('DELETE', `/backups/${rec.id}`)).status, 202);
  await waitGone(rec.id);
  assert.equal((await swiftNames('volumebackups')).filter((n) => n.includes(fullId)).length, before, 'the original keeps its objects');
  const again = await call('POST', `/backups/${fullId}/restore`, { body: { restore: {} } });
  assert.equal(again.status, 202, JSON.stringify(again.body));
  const wa = (await watch()).get(again.body.restore.volume_id)!;
  await report(again.body.restore.volume_id, wa.version, present());
  const wb = (await watch()).get(again.body.restore.volume_id)!;
  assert.equal(wb.spec.restore.sha256.length, 4);
  await report(again.body.restore.volume_id, wb.version, { ...present(), restored: fullId });
  await until('the full backup available again', async () => (await backupOf(fullId, adminC))?.status === 'available', 10_000, 20);
  // then the incremental, then the full one; their objects go
  assert.equal((await call('DELETE', `/backups/${incrId}`, { as: aliceC })).status, 202);
  await waitGone(incrId);
  assert.equal((await swiftNames('volumebackups')).filter((n) => n.includes(incrId)).length, 0);
  assert.equal((await call('POST', `/backups/${fullId}/action`, { body: { 'os-force_delete': {} } })).status, 202);
  await waitGone(fullId);
  assert.equal((await swiftNames('volumebackups')).filter((n) => n.includes(fullId)).length, 0);
  assertFault(await call('GET', `/backups/${fullId}`, { as: aliceC }), 404, 'itemNotFound');
  schemas.check();
});

test('a backup an admin reset to available before its chunks were all written is refused a restore, never restored short', async () => {
  const b = await call('POST', '/backups', { as: aliceC, body: { backup: { volume_id: volumeId, name: 'short' } } });
  assert.equal(b.status, 202, JSON.stringify(b.body));
  const id = b.body.backup.id as string;
  assert.equal((await call('POST', `/backups/${id}/action`, { body: { 'os-reset_status': { status: 'available' } } })).status, 202);
  assert.equal((await backupOf(id, adminC)).status, 'available');
  assertFault(await call('POST', `/backups/${id}/restore`, { as: aliceC, body: { restore: {} } }), 400, 'badRequest', /is incomplete \(0 of \d+ chunks\)/);
  assert.equal((await backupOf(id, adminC)).status, 'available', 'nothing changed');
});
