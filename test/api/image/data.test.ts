// Container image archives, the glance-direct import, the in-process interface
// the compute service uses, and recovery of interrupted work after a restart.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { tenant, useCloud, type Tenant } from '../../harness.ts';
import { filesUnder, objectImageStore, storedImageData } from './fixtures.ts';

const work = mkdtempSync(join(tmpdir(), 'stratus-image-work-'));
after(() => rmSync(work, { recursive: true, force: true }));
let a: Tenant;
const cloud = useCloud(async (cloud) => { a = await tenant(cloud); });

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** An OCI image layout (one empty layer) as a tar file; gzip-compressed when asked. */
function ociArchive(name: string, gzip = false): Buffer {
  const dir = join(work, name);
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  const layer = Buffer.alloc(1024);
  const config = JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/sh'] }, rootfs: { type: 'layers', diff_ids: [`sha256:${sha256(layer)}`] } });
  const manifest = JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${sha256(config)}`, size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: `sha256:${sha256(layer)}`, size: layer.length }],
  });
  for (const blob of [layer, config, manifest]) writeFileSync(join(dir, 'blobs', 'sha256', sha256(blob)), blob);
  writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(join(dir, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${sha256(manifest)}`, size: manifest.length, annotations: { 'org.opencontainers.image.ref.name': 'latest' } }],
  }));
  const out = join(work, `${name}.tar${gzip ? '.gz' : ''}`);
  execFileSync('tar', [gzip ? '-czf' : '-cf', out, '-C', dir, '.']);
  return readFileSync(out);
}

/** A `docker save` style archive: manifest.json, a config and a layer. */
function dockerArchive(name: string): Buffer {
  const dir = join(work, name);
  mkdirSync(join(dir, 'abc'), { recursive: true });
  writeFileSync(join(dir, 'abc', 'layer.tar'), Buffer.alloc(1024));
  writeFileSync(join(dir, 'cfg.json'), JSON.stringify({ os: 'linux' }));
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify([{ Config: 'cfg.json', RepoTags: ['busybox:latest'], Layers: ['abc/layer.tar'] }]));
  const out = join(work, `${name}.tar`);
  execFileSync('tar', ['-cf', out, '-C', dir, 'manifest.json', 'cfg.json', 'abc']);
  return readFileSync(out);
}

const create = async (body: Record<string, unknown>) => {
  const r = await cloud.call('POST', '/image/v2/images', { token: a.token, body });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body.id as string;
};
const put = (id: string, data: Buffer, path = 'file') =>
  fetch(`${cloud.url}/image/v2/images/${id}/${path}`, {
    method: 'PUT', headers: { 'X-Auth-Token': a.token, 'Content-Type': 'application/octet-stream' }, body: new Uint8Array(data),
  });
const show = async (id: string) => (await cloud.call('GET', `/image/v2/images/${id}`, { token: a.token })).body;

test('container images: OCI layout and docker-save archives are accepted, anything else refused', async () => {
  for (const [label, archive] of [['oci', ociArchive('oci1')], ['oci-gz', ociArchive('oci2', true)], ['docker', dockerArchive('d1')]] as const) {
    const id = await create({ name: label, disk_format: 'raw', container_format: 'docker' });
    const r = await put(id, archive);
    assert.equal(r.status, 204, `${label}: ${await r.text()}`);
    const image = await show(id);
    assert.equal(image.status, 'active', label);
    assert.equal(image.size, archive.length);
    assert.equal(image.virtual_size, null);
  }
  for (const [label, data] of [['garbage', Buffer.from('this is not a tar archive at all'.repeat(40))],
    ['plain tar', (() => {
      const dir = join(work, 'plain');
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'hello.txt'), 'hi');
      execFileSync('tar', ['-cf', join(work, 'plain.tar'), '-C', dir, '.']);
      return readFileSync(join(work, 'plain.tar'));
    })()],
    ['bad gzip', Buffer.concat([Buffer.from([0x1f, 0x8b]), Buffer.alloc(100, 7)])]] as const) {
    const id = await create({ name: label, disk_format: 'raw', container_format: 'docker' });
    const r = await put(id, data);
    assert.equal(r.status, 415, label);
    assert.match((await r.json()).message, /not a container image archive/);
    const image = await show(id);
    assert.equal(image.status, 'queued', label);
    assert.equal(image.size, null);
    assert.ok(!(await storedImageData(cloud)).some((f) => f.includes(id)), `${label}: no data kept`);
  }
  // The same bytes are fine as a bare disk image.
  const bare = await create({ disk_format: 'raw', container_format: 'bare' });
  assert.equal((await put(bare, Buffer.from('not a tar'))).status, 204);
});

test('glance-direct: stage, then import', async () => {
  const id = await create({ disk_format: 'raw', container_format: 'bare' });
  const payload = Buffer.from('staged bytes '.repeat(1000));
  const notStaged = await cloud.call('POST', `/image/v2/images/${id}/import`, { token: a.token, body: { method: { name: 'glance-direct' } } });
  assert.equal(notStaged.status, 409);
  assert.equal((await put(id, payload, 'stage')).status, 204);
  const staged = await show(id);
  assert.equal(staged.status, 'uploading');
  assert.equal(staged.size, payload.length);
  assert.equal((await put(id, payload, 'file')).status, 409, 'no upload while staged');
  for (const body of [{}, { method: {} }, { method: { name: 'web-download' } }, { method: { name: 'glance-direct' }, all_stores: 'yes' }]) {
    const r = await cloud.call('POST', `/image/v2/images/${id}/import`, { token: a.token, body });
    assert.equal(r.status, 400, JSON.stringify(body));
  }
  const r = await cloud.call('POST', `/image/v2/images/${id}/import`, { token: a.token, body: { method: { name: 'glance-direct' } } });
  assert.equal(r.status, 202);
  let image = await show(id);
  for (let i = 0; i < 50 && image.status !== 'active'; i++) {
    await new Promise((res) => setTimeout(res, 50));
    image = await show(id);
  }
  assert.equal(image.status, 'active');
  assert.equal(image.checksum, createHash('md5').update(payload).digest('hex'));
  const data = await cloud.call('GET', `/image/v2/images/${id}/file`, { token: a.token });
  assert.equal(data.body, payload.toString());
  assert.ok(!(await storedImageData(cloud, 'staging/')).length, 'staging area emptied');
  const again = await cloud.call('POST', `/image/v2/images/${id}/import`, { token: a.token, body: { method: { name: 'glance-direct' } } });
  assert.equal(again.status, 409);
});

test('in-process interface: create, upload, open, list, update, delete', async () => {
  const images = cloud.server.images;
  const snap = await images.createImage({
    name: 'snapshot-1', owner: a.projectId, disk_format: 'raw', container_format: 'docker', visibility: 'private',
    properties: { image_type: 'snapshot', instance_uuid: '7a1b3b8e-1f5f-4c1e-9d43-0c0ad0e3c0ff' },
  });
  assert.equal(snap.status, 'queued');
  assert.equal(snap.owner, a.projectId);
  const archive = ociArchive('snap');
  const done = await images.uploadImageData(snap.id, Readable.from([archive]));
  assert.equal(done.status, 'active');
  assert.equal(done.size, archive.length);
  assert.equal(done.os_hash_value, createHash('sha512').update(archive).digest('hex'));
  const parts: Buffer[] = [];
  for await (const chunk of images.openImageData(snap.id)) parts.push(chunk as Buffer);
  const back = Buffer.concat(parts);
  assert.ok(back.equals(archive));
  const path = await images.imageDataPath(snap.id);
  if (objectImageStore) assert.equal(path, undefined, 'no local file: the data is an object');
  else assert.ok(path && readFileSync(path).equals(archive), 'the local file of the data');

  const got = await images.getImage(snap.id);
  assert.equal(got?.properties.image_type, 'snapshot');
  assert.equal(got?.container_format, 'docker');
  const cred = { userId: a.userId, userName: 'x', userDomainId: 'default', projectId: a.projectId, projectDomainId: 'default', domainId: null, system: false, roles: new Set(['member', 'reader']), roleIds: [], token: null };
  assert.ok(images.canSee(cred, got!));
  assert.ok(!images.canSee({ ...cred, projectId: 'another' }, got!));
  const listed = await images.listImages(cred, { image_type: 'snapshot' });
  assert.deepEqual(listed.map((i) => i.id), [snap.id]);

  const updated = await images.updateImage(snap.id, { name: 'renamed', properties: { image_type: null, extra: 'v' } });
  assert.equal(updated.name, 'renamed');
  assert.equal(updated.properties.image_type, undefined);
  assert.equal(updated.properties.extra, 'v');

  await assert.rejects(images.uploadImageData(snap.id, Readable.from([Buffer.from('x')])), { status: 409 });
  await assert.rejects(images.createImage({ owner: a.projectId, disk_format: 'nope' }), { status: 400 });
  const missing = images.openImageData('00000000-0000-0000-0000-000000000000');
  await assert.rejects(text(missing), { status: 404 });

  await images.deleteImage(snap.id);
  assert.equal(await images.getImage(snap.id), undefined);
  assert.ok(!(await storedImageData(cloud)).some((f) => f.includes(snap.id)));
});

test('on start, interrupted uploads go back to queued and partial data is removed', async () => {
  const id = await create({ disk_format: 'raw', container_format: 'bare' });
  const staged = await create({ disk_format: 'raw', container_format: 'bare' });
  const db = cloud.server.database.db;
  // As a crash would leave them: one image mid-upload, one staged whose staging data is lost.
  await db.updateTable('image_images').set({ status: 'saving' }).where('id', '=', id).execute();
  await db.updateTable('image_images').set({ status: 'uploading', size: 10 }).where('id', '=', staged).execute();
  // (the file store's temporary files; the object store recovers its own writes, tested in test/api/object)
  if (!objectImageStore) {
    mkdirSync(join(cloud.dataDir, 'images', '.tmp'), { recursive: true });
    writeFileSync(join(cloud.dataDir, 'images', '.tmp', `${id}.partial`), 'half an upload');
  }
  // What startStratus runs once the database is migrated.
  await cloud.server.images.start();
  assert.equal((await show(id)).status, 'queued');
  assert.equal((await show(staged)).status, 'queued');
  assert.equal((await show(staged)).size, null);
  if (!objectImageStore) assert.deepEqual(filesUnder(join(cloud.dataDir, 'images', '.tmp')), []);
  assert.equal((await put(id, Buffer.from('retry'))).status, 204);
});
