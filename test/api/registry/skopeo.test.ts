// A real client against the registry: skopeo (Debian's package) copies an OCI
// layout into it through the token flow, reads it back, lists tags, copies
// between repositories and deletes. Skipped where
// skopeo is not installed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { onPath } from '../../../src/agent/exec.ts';
import { buildLayerBlob } from '../../../src/agent/drivers/container/oci.ts';
import { useCloud } from '../../harness.ts';

const skip = onPath('skopeo') ? false : 'skopeo is not installed';
const cloud = useCloud();
const dir = mkdtempSync(join(tmpdir(), 'stratus-skopeo-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** An OCI image layout directory holding one small image tagged `latest`. */
async function ociLayout(path: string): Promise<void> {
  mkdirSync(join(path, 'blobs', 'sha256'), { recursive: true });
  const layerFile = join(dir, 'layer.tar.gz');
  const layer = await buildLayerBlob(layerFile, async (tar) => {
    await tar.add({ name: 'hello.txt', type: 'file' }, Buffer.from('hello from skopeo\n'));
  });
  const layerBytes = readFileSync(layerFile);
  writeFileSync(join(path, 'blobs', 'sha256', layer.digest.slice(7)), layerBytes);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [layer.diffId] } }));
  writeFileSync(join(path, 'blobs', 'sha256', sha(config)), config);
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${sha(config)}`, size: config.length },
    layers: [{ mediaType: layer.mediaType, digest: layer.digest, size: layer.size }],
  }));
  writeFileSync(join(path, 'blobs', 'sha256', sha(manifest)), manifest);
  writeFileSync(join(path, 'index.json'), JSON.stringify({
    schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${sha(manifest)}`, size: manifest.length, annotations: { 'org.opencontainers.image.ref.name': 'latest' } }],
  }));
  writeFileSync(join(path, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
}

const skopeo = async (...args: string[]) => (await promisify(execFile)('skopeo', args, { timeout: 60_000 })).stdout;

test('skopeo copies to and from the registry, lists tags, copies between repositories, deletes', { skip }, async () => {
  const src = join(dir, 'src');
  await ociLayout(src);
  const host = new URL(cloud.url).host;
  const creds = `admin:${cloud.adminPassword}`;
  await skopeo('copy', '--dest-tls-verify=false', '--dest-creds', creds, `oci:${src}:latest`, `docker://${host}/admin/hello:v1`);
  const inspect = JSON.parse(await skopeo('inspect', '--tls-verify=false', '--creds', creds, `docker://${host}/admin/hello:v1`));
  assert.equal(inspect.Digest, `sha256:${sha(readFileSync(join(src, 'blobs', 'sha256', JSON.parse(readFileSync(join(src, 'index.json'), 'utf8')).manifests[0].digest.slice(7))))}`);
  const back = join(dir, 'back');
  await skopeo('copy', '--src-tls-verify=false', '--src-creds', creds, `docker://${host}/admin/hello:v1`, `oci:${back}:latest`);
  assert.deepEqual(readdirSync(join(back, 'blobs', 'sha256')).sort(), readdirSync(join(src, 'blobs', 'sha256')).sort(), 'the same blobs, byte for byte');
  await skopeo('copy', '--src-tls-verify=false', '--dest-tls-verify=false', '--src-creds', creds, '--dest-creds', creds, `docker://${host}/admin/hello:v1`, `docker://${host}/admin/copy:v2`);
  assert.deepEqual(JSON.parse(await skopeo('list-tags', '--tls-verify=false', '--creds', creds, `docker://${host}/admin/copy`)).Tags, ['v2']);
  await skopeo('delete', '--tls-verify=false', '--creds', creds, `docker://${host}/admin/copy:v2`);
  await assert.rejects(skopeo('inspect', '--tls-verify=false', '--creds', creds, `docker://${host}/admin/copy:v2`), /manifest unknown/);
  // a wrong password is refused
  await assert.rejects(skopeo('inspect', '--tls-verify=false', '--creds', 'admin:wrong', `docker://${host}/admin/hello:v1`), /unauthorized|authentication/i);
});
