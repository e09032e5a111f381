// Helpers of the registry's API tests: the Docker token flow as a client does
// it, blob pushes (monolithic, chunked), manifests made from blobs.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { Cloud } from '../../harness.ts';

export const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
export const basic = (user: string, secret: string) => `Basic ${Buffer.from(`${user}:${secret}`).toString('base64')}`;

export interface Raw { status: number; headers: Headers; text: string; json: any }

/** An HTTP call whose body may be bytes; the answer's text and JSON (when it is JSON). */
export async function raw(cloud: Cloud, method: string, path: string, o: { headers?: Record<string, string>; body?: Buffer | string } = {}): Promise<Raw> {
  const r = await fetch(`${cloud.url}${path}`, { method, headers: o.headers, body: o.body as BodyInit | undefined });
  const text = await r.text();
  let json: any;
  try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
  return { status: r.status, headers: r.headers, text, json };
}

/** A bearer token from the token endpoint: with a user name and secret, or anonymous. */
export async function token(cloud: Cloud, scopes: string[], login?: { user: string; secret: string }): Promise<string> {
  const q = new URLSearchParams({ service: 'stratus' });
  for (const s of scopes) q.append('scope', s);
  const r = await raw(cloud, 'GET', `/v2/token?${q}`, { headers: login ? { Authorization: basic(login.user, login.secret) } : {} });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.token, r.json.access_token);
  return r.json.token;
}

export const bearer = (t: string) => ({ Authorization: `Bearer ${t}` });

/** The claims of a token (the registry's tokens are base64url JSON, then a signature). */
export const claims = (t: string) => JSON.parse(Buffer.from(t.split('.')[0]!, 'base64url').toString('utf8'));

/** Pushes a blob in one POST ?digest=. */
export async function pushBlob(cloud: Cloud, t: string, name: string, data: Buffer | string): Promise<{ digest: string; size: number }> {
  const digest = sha256(data);
  const r = await raw(cloud, 'POST', `/v2/${name}/blobs/uploads/?digest=${digest}`, { headers: { ...bearer(t), 'Content-Type': 'application/octet-stream' }, body: data });
  assert.equal(r.status, 201, r.text);
  assert.equal(r.headers.get('docker-content-digest'), digest);
  return { digest, size: Buffer.byteLength(data) };
}

/** Pushes a blob in chunks: POST, PATCH each chunk with Content-Range, PUT ?digest=. */
export async function pushChunked(cloud: Cloud, t: string, name: string, data: Buffer, chunk: number): Promise<{ digest: string; size: number }> {
  const digest = sha256(data);
  let r = await raw(cloud, 'POST', `/v2/${name}/blobs/uploads/`, { headers: { ...bearer(t), 'Content-Length': '0' } });
  assert.equal(r.status, 202, r.text);
  let location = r.headers.get('location')!;
  for (let at = 0; at < data.length; at += chunk) {
    const part = data.subarray(at, Math.min(at + chunk, data.length));
    r = await raw(cloud, 'PATCH', location, {
      headers: { ...bearer(t), 'Content-Type': 'application/octet-stream', 'Content-Range': `${at}-${at + part.length - 1}` }, body: part,
    });
    assert.equal(r.status, 202, r.text);
    assert.equal(r.headers.get('range'), `0-${at + part.length - 1}`);
    location = r.headers.get('location')!;
  }
  r = await raw(cloud, 'PUT', `${location}${location.includes('?') ? '&' : '?'}digest=${digest}`, { headers: bearer(t) });
  assert.equal(r.status, 201, r.text);
  return { digest, size: data.length };
}

export interface Image { manifest: Buffer; digest: string; config: { digest: string; size: number }; layers: Array<{ digest: string; size: number }> }

/** An OCI image manifest over pushed blobs. */
export function imageManifest(config: { digest: string; size: number }, layers: Array<{ digest: string; size: number }>, extra: Record<string, unknown> = {}): Image {
  const doc = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...l })),
    ...extra,
  };
  const manifest = Buffer.from(JSON.stringify(doc, null, 2));
  return { manifest, digest: sha256(manifest), config, layers };
}

/** Pushes a small image (a config and one layer) and its manifest under `ref`. */
export async function pushImage(cloud: Cloud, t: string, name: string, ref: string, layer: Buffer | string = `layer of ${name}:${ref}`): Promise<Image> {
  const config = await pushBlob(cloud, t, name, JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, config: {} }));
  const l = await pushBlob(cloud, t, name, layer);
  const img = imageManifest(config, [l]);
  const r = await raw(cloud, 'PUT', `/v2/${name}/manifests/${ref}`, { headers: { ...bearer(t), 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' }, body: img.manifest });
  assert.equal(r.status, 201, r.text);
  assert.equal(r.headers.get('docker-content-digest'), img.digest);
  return img;
}
