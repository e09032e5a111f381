// A pushed container image becomes a Glance image per tag, whose data is an
// OCI layout tar assembled from the registry's blobs when read: the archive
// the agents' image store takes (checked with its own reader here). A re-push
// of the tag replaces the image; deleting the tag deletes it; artifacts get none.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tenant, useCloud, type Tenant } from '../../harness.ts';
import { buildLayerBlob, inspectArchive } from '../../../src/agent/drivers/container/oci.ts';
import { AGENT_TOKEN_HEADER } from '../../../src/fleet/protocol.ts';
import { bearer, imageManifest, pushBlob, raw, sha256, token } from './lib.ts';

let alice: Tenant & { project: string };
const cloud = useCloud(async (c) => {
  const t = await tenant(c);
  const p = await c.call('GET', `/identity/v3/projects/${t.projectId}`, { token: c.adminToken });
  alice = { ...t, project: p.body.project.name };
});
const dir = mkdtempSync(join(tmpdir(), 'stratus-registry-images-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

/** Pushes a one-layer image whose /hello holds `text`; its manifest digest. */
async function pushHello(t: string, name: string, tag: string, text: string): Promise<string> {
  const file = join(dir, `layer-${sha256(text).slice(7, 19)}`);
  const layer = await buildLayerBlob(file, async (tar) => {
    await tar.add({ name: 'hello', type: 'file', mode: 0o755 }, Buffer.from(text));
  });
  const config = JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['/hello'] }, rootfs: { type: 'layers', diff_ids: [layer.diffId] } });
  const c = await pushBlob(cloud, t, name, config);
  const l = await pushBlob(cloud, t, name, readFileSync(file));
  assert.equal(l.digest, layer.digest);
  const img = imageManifest(c, [{ ...l }]);
  const doc = JSON.parse(img.manifest.toString());
  doc.layers[0].mediaType = 'application/vnd.oci.image.layer.v1.tar+gzip';
  const bytes = Buffer.from(JSON.stringify(doc));
  const r = await raw(cloud, 'PUT', `/v2/${name}/manifests/${tag}`, { headers: { ...bearer(t), 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' }, body: bytes });
  assert.equal(r.status, 201, r.text);
  return sha256(bytes);
}

const imagesNamed = async (name: string) =>
  (await cloud.call('GET', `/image/v2/images?name=${encodeURIComponent(name)}`, { token: alice.token })).body.images as Array<Record<string, any>>;

test('a pushed tag is a Glance image whose data is the OCI archive of the image', async () => {
  const name = `${alice.project}/hello`;
  const t = await token(cloud, [`repository:${name}:pull,push,delete`], { user: alice.project, secret: 'secret-pw-1' });
  const digest = await pushHello(t, name, 'v1', 'hello one');
  const [img, ...more] = await imagesNamed(`${name}:v1`);
  assert.ok(img, 'an image named after the tag');
  assert.equal(more.length, 0);
  assert.equal(img.status, 'active');
  assert.equal(img.container_format, 'docker');
  assert.equal(img.disk_format, 'raw');
  assert.equal(img.owner, alice.projectId);
  assert.equal(img.visibility, 'private');
  assert.equal(img.stratus_registry_digest, digest);

  const r = await fetch(`${cloud.url}/image/v2/images/${img.id}/file`, { headers: { 'X-Auth-Token': alice.token } });
  assert.equal(r.status, 200);
  const tar = Buffer.from(await r.arrayBuffer());
  assert.equal(tar.length, img.size, 'the size recorded is the archive\'s');
  const file = join(dir, 'download.tar');
  writeFileSync(file, tar);
  const archive = await inspectArchive(file);
  assert.equal(archive.layers.length, 1);
  assert.deepEqual(archive.config.config?.Cmd, ['/hello']);

  // what an agent downloads to boot it (the agent API)
  const agentToken = readFileSync(join(cloud.dataDir, 'agent-token'), 'utf8').trim();
  const a = await fetch(`${cloud.url}/agent/v1/images/${img.id}/file`, { headers: { [AGENT_TOKEN_HEADER]: agentToken } });
  assert.equal(a.status, 200);
  assert.equal(a.headers.get('content-length'), String(img.size));
  assert.ok(Buffer.from(await a.arrayBuffer()).equals(tar));

  // a range of it
  const part = await fetch(`${cloud.url}/image/v2/images/${img.id}/file`, { headers: { 'X-Auth-Token': alice.token, Range: 'bytes=1000-2999' } });
  assert.equal(part.status, 206);
  assert.deepEqual(Buffer.from(await part.arrayBuffer()), tar.subarray(1000, 3000));

  // the same manifest pushed again: the same image
  const again = await raw(cloud, 'GET', `/v2/${name}/manifests/v1`, { headers: bearer(t) });
  const put = await raw(cloud, 'PUT', `/v2/${name}/manifests/v1`, { headers: { ...bearer(t), 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' }, body: again.text });
  assert.equal(put.status, 201);
  assert.deepEqual((await imagesNamed(`${name}:v1`)).map((i) => i.id), [img.id]);

  // a re-push of the tag with other content: a new image, the old one gone
  const digest2 = await pushHello(t, name, 'v1', 'hello two');
  const [img2, ...more2] = await imagesNamed(`${name}:v1`);
  assert.equal(more2.length, 0);
  assert.notEqual(img2!.id, img.id);
  assert.equal(img2!.stratus_registry_digest, digest2);
  assert.equal((await cloud.call('GET', `/image/v2/images/${img.id}`, { token: alice.token })).status, 404);

  // the tag deleted: its image too
  assert.equal((await raw(cloud, 'DELETE', `/v2/${name}/manifests/v1`, { headers: bearer(t) })).status, 202);
  assert.deepEqual(await imagesNamed(`${name}:v1`), []);
});

test('artifacts (no image config) get no Glance image', async () => {
  const name = `${alice.project}/artifact`;
  const t = await token(cloud, [`repository:${name}:pull,push`], { user: alice.project, secret: 'secret-pw-1' });
  const c = await pushBlob(cloud, t, name, '{}');
  const l = await pushBlob(cloud, t, name, 'some sbom');
  const doc = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: 'application/vnd.example.sbom', config: { mediaType: 'application/vnd.oci.empty.v1+json', ...c }, layers: [{ mediaType: 'application/json', ...l }] };
  const r = await raw(cloud, 'PUT', `/v2/${name}/manifests/sbom`, { headers: { ...bearer(t), 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' }, body: JSON.stringify(doc) });
  assert.equal(r.status, 201, r.text);
  assert.deepEqual(await imagesNamed(`${name}:sbom`), []);
});
