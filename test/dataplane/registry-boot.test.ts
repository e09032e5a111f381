// A container image pushed to the registry boots: the busybox OCI image is
// pushed blob by blob through the registry API (the Docker token flow, as the
// admin), the Glance image `admin/busybox:latest` the push made is booted
// with the compute API, and a real agent runs it with runc from the archive
// the image service assembles from the registry's blobs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { readTar } from '../../src/common/tar.ts';
import { busyboxTar, processAlive, runcState, skipUnlessRoot, startPlane, waitConsole, type Plane } from './lib.ts';

let plane: Plane;
before(async () => {
  if (skipUnlessRoot) return;
  plane = await startPlane({ agent: 'inproc' });
});
after(async () => {
  await plane?.cleanup();
});

const basic = (user: string, secret: string) => `Basic ${Buffer.from(`${user}:${secret}`).toString('base64')}`;

/** Pushes an OCI layout tar's image (its index's first manifest) as `name:tag`. */
async function pushArchive(archive: Buffer, name: string, tag: string): Promise<string> {
  const url = plane.cloud.url;
  const t = await fetch(`${url}/v2/token?service=stratus&scope=repository:${name}:pull,push`, { headers: { Authorization: basic('admin', plane.cloud.adminPassword) } });
  assert.equal(t.status, 200);
  const auth = { Authorization: `Bearer ${((await t.json()) as { token: string }).token}` };
  const files = new Map<string, Buffer>();
  for await (const e of readTar(Readable.from([archive]))) {
    if (e.type !== 'file') continue;
    const parts: Buffer[] = [];
    for await (const c of e.body()) parts.push(Buffer.from(c));
    files.set(e.name.replace(/^\.\//, ''), Buffer.concat(parts));
  }
  const index = JSON.parse(files.get('index.json')!.toString()) as { manifests: Array<{ digest: string; mediaType: string }> };
  const md = index.manifests[0]!;
  const manifest = files.get(`blobs/sha256/${md.digest.slice(7)}`)!;
  const doc = JSON.parse(manifest.toString()) as { config: { digest: string }; layers: Array<{ digest: string }> };
  for (const d of [doc.config.digest, ...doc.layers.map((l) => l.digest)]) {
    const blob = files.get(`blobs/sha256/${d.slice(7)}`)!;
    assert.equal(`sha256:${createHash('sha256').update(blob).digest('hex')}`, d);
    const r = await fetch(`${url}/v2/${name}/blobs/uploads/?digest=${d}`, { method: 'POST', headers: { ...auth, 'Content-Type': 'application/octet-stream' }, body: new Uint8Array(blob) });
    assert.equal(r.status, 201, await r.text());
  }
  const r = await fetch(`${url}/v2/${name}/manifests/${tag}`, { method: 'PUT', headers: { ...auth, 'Content-Type': md.mediaType }, body: new Uint8Array(manifest) });
  assert.equal(r.status, 201, await r.text());
  return md.digest;
}

test('the pushed image boots with runc through the Glance image of its tag', { skip: skipUnlessRoot }, async () => {
  const digest = await pushArchive(await busyboxTar(), 'admin/busybox', 'latest');
  const list = await plane.api('GET', `/image/v2/images?name=${encodeURIComponent('admin/busybox:latest')}`);
  assert.equal(list.body.images.length, 1);
  const image = list.body.images[0];
  assert.equal(image.container_format, 'docker');
  assert.equal(image.stratus_registry_digest, digest);

  const id = await plane.createServer({ name: 'from-registry', imageRef: image.id });
  const s = await plane.waitStatus(id, ['ACTIVE']);
  assert.equal(s.image.id, image.id);
  const st = runcState(plane.stateDir, id);
  assert.ok(st && processAlive(st.pid), 'the container runs');
  await waitConsole(plane, id, /is up/);
  assert.equal((await plane.api('DELETE', `/compute/v2.1/servers/${id}`)).status, 204);
  await plane.waitGone(id);
});
