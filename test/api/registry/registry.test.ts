// The OCI registry over HTTP: the Docker token flow (Keystone passwords and
// application credentials, anonymous pulls of public repositories), pushes
// (monolithic, chunked, mounted) and pulls, manifests by tag and digest,
// indexes, referrers, tags and catalog with pagination, deletes, garbage
// collection, and isolation between projects.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { tenant, useCloud, type Cloud, type Tenant } from '../../harness.ts';
import { basic, bearer, claims, imageManifest, pushBlob, pushChunked, pushImage, raw, sha256, token } from './lib.ts';

interface User extends Tenant { name: string; password: string; project: string }

/** A project and a user with `roles` on it; the user and project share a name. */
async function user(cloud: Cloud, roles = ['member']): Promise<User> {
  const t = await tenant(cloud, roles);
  const p = await cloud.call('GET', `/identity/v3/projects/${t.projectId}`, { token: cloud.adminToken });
  return { ...t, name: p.body.project.name, project: p.body.project.name, password: 'secret-pw-1' };
}

let alice: User, bob: User;
const cloud = useCloud(async (c) => {
  alice = await user(c);
  bob = await user(c);
});

const login = (u: User) => ({ user: u.name, secret: u.password });
const pushToken = (u: User, repo: string) => token(cloud, [`repository:${u.project}/${repo}:pull,push,delete`], login(u));

test('GET /v2/ without credentials: 401 with the token realm; with a token: 200', async () => {
  const r = await raw(cloud, 'GET', '/v2/');
  assert.equal(r.status, 401);
  assert.equal(r.headers.get('docker-distribution-api-version'), 'registry/2.0');
  assert.equal(r.headers.get('www-authenticate'), `Bearer realm="${cloud.url}/v2/token",service="stratus"`);
  assert.equal(r.json.errors[0].code, 'UNAUTHORIZED');
  const t = await token(cloud, [], login(alice));
  const ok = await raw(cloud, 'GET', '/v2/', { headers: bearer(t) });
  assert.equal(ok.status, 200);
  assert.equal(ok.headers.get('docker-distribution-api-version'), 'registry/2.0');
  // a Keystone token works too
  assert.equal((await raw(cloud, 'GET', '/v2/', { headers: { 'X-Auth-Token': alice.token } })).status, 200);
  // a forged or garbled bearer token is a 401
  const bad = await raw(cloud, 'GET', '/v2/', { headers: bearer(`${t.split('.')[0]}.AAAA`) });
  assert.equal(bad.status, 401);
  assert.equal(bad.json.errors[0].code, 'UNAUTHORIZED');
});

test('token endpoint: grants by role, a wrong password is 401, the token holds no secret', async () => {
  const wrong = await raw(cloud, 'GET', `/v2/token?service=stratus&scope=repository:${alice.project}/app:pull`, { headers: { Authorization: basic(alice.name, 'nope') } });
  assert.equal(wrong.status, 401);
  assert.equal(wrong.json.errors[0].code, 'UNAUTHORIZED');
  assert.ok(!wrong.text.includes('nope'));

  const t = await token(cloud, [`repository:${alice.project}/app:pull,push`, `repository:${bob.project}/app:pull,push`], login(alice));
  const c = claims(t);
  assert.equal(c.sub, alice.userId);
  assert.deepEqual(c.access, [{ name: `${alice.project}/app`, projectId: alice.projectId, actions: ['pull', 'push'] }]);
  assert.ok(!t.includes(alice.password) && !JSON.stringify(c).includes(alice.password));
  const r = await raw(cloud, 'GET', `/v2/token?scope=repository:${alice.project}/app:pull`, { headers: { Authorization: basic(alice.name, alice.password) } });
  assert.equal(r.json.expires_in >= 60, true);
  assert.ok(!Number.isNaN(Date.parse(r.json.issued_at)));

  // by project id too
  const byId = claims(await token(cloud, [`repository:${alice.projectId}/app:pull`], login(alice)));
  assert.deepEqual(byId.access, [{ name: `${alice.projectId}/app`, projectId: alice.projectId, actions: ['pull'] }]);

  // a reader pulls, never pushes
  const reader = await user(cloud, ['reader']);
  const rc = claims(await token(cloud, [`repository:${reader.project}/app:pull,push,delete`], login(reader)));
  assert.deepEqual(rc.access[0].actions, ['pull']);

  // the cloud's admin (the admin role on a project) may act on every project's repositories, as with a Keystone token
  const ac = claims(await token(cloud, [`repository:${alice.project}/app:pull,push`], { user: 'admin', secret: cloud.adminPassword }));
  assert.deepEqual(ac.access, [{ name: `${alice.project}/app`, projectId: alice.projectId, actions: ['pull', 'push'] }]);

  // anonymous: nothing of a private repository
  assert.deepEqual(claims(await token(cloud, [`repository:${alice.project}/app:pull`])).access, []);
});

test('application credentials log in to their own project', async () => {
  const ac = await cloud.call('POST', `/identity/v3/users/${alice.userId}/application_credentials`, { token: alice.token, body: { application_credential: { name: `reg-${Date.now()}` } } });
  assert.equal(ac.status, 201, JSON.stringify(ac.body));
  const { id, secret } = ac.body.application_credential;
  const t = await token(cloud, [`repository:${alice.project}/ac:pull,push`, `repository:${bob.project}/ac:pull`], { user: id, secret });
  assert.deepEqual(claims(t).access, [{ name: `${alice.project}/ac`, projectId: alice.projectId, actions: ['pull', 'push'] }]);
  const wrong = await raw(cloud, 'GET', '/v2/token?scope=x', { headers: { Authorization: basic(id, 'wrong-secret') } });
  assert.equal(wrong.status, 401);
});

test("the cloud's administrator is one rule for every way in: an admin's application credential reaches other projects through the token endpoint as its Keystone token does", async () => {
  const users = await cloud.call('GET', '/identity/v3/users?name=admin', { token: cloud.adminToken });
  const adminId = users.body.users[0].id as string;
  const ac = await cloud.call('POST', `/identity/v3/users/${adminId}/application_credentials`, { token: cloud.adminToken, body: { application_credential: { name: `reg-admin-${Date.now()}` } } });
  assert.equal(ac.status, 201, JSON.stringify(ac.body));
  const { id, secret } = ac.body.application_credential;
  const scope = `repository:${bob.project}/adm:pull,push`;
  assert.deepEqual(claims(await token(cloud, [scope], { user: id, secret })).access, [{ name: `${bob.project}/adm`, projectId: bob.projectId, actions: ['pull', 'push'] }]);
  // the same credential's Keystone token, on the registry's routes
  const k = await cloud.call('POST', '/identity/v3/auth/tokens', { body: { auth: { identity: { methods: ['application_credential'], application_credential: { id, secret } } } } });
  assert.equal(k.status, 201);
  const up = await raw(cloud, 'POST', `/v2/${bob.project}/adm/blobs/uploads/`, { headers: { 'X-Auth-Token': k.headers.get('x-subject-token')! } });
  assert.equal(up.status, 202, up.text);
  // a name the routes refuse (longer than 200) is granted nothing
  const long = `${alice.project}/${'a'.repeat(210)}`;
  assert.deepEqual(claims(await token(cloud, [`repository:${long}:pull`], login(alice))).access, []);
});

test('monolithic push, pull with Range, HEAD; a wrong digest stores nothing', async () => {
  const name = `${alice.project}/mono`;
  const t = await pushToken(alice, 'mono');
  const data = randomBytes(70_000);
  const { digest } = await pushBlob(cloud, t, name, data);
  const head = await raw(cloud, 'HEAD', `/v2/${name}/blobs/${digest}`, { headers: bearer(t) });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('content-length'), String(data.length));
  assert.equal(head.headers.get('docker-content-digest'), digest);
  const get = await fetch(`${cloud.url}/v2/${name}/blobs/${digest}`, { headers: bearer(t) });
  assert.equal(get.status, 200);
  assert.deepEqual(Buffer.from(await get.arrayBuffer()), data);
  const part = await fetch(`${cloud.url}/v2/${name}/blobs/${digest}`, { headers: { ...bearer(t), Range: 'bytes=100-199' } });
  assert.equal(part.status, 206);
  assert.equal(part.headers.get('content-range'), `bytes 100-199/${data.length}`);
  assert.deepEqual(Buffer.from(await part.arrayBuffer()), data.subarray(100, 200));
  const beyond = await raw(cloud, 'GET', `/v2/${name}/blobs/${digest}`, { headers: { ...bearer(t), Range: `bytes=${data.length}-` } });
  assert.equal(beyond.status, 416);

  const other = randomBytes(1000);
  const wrongDigest = sha256('something else');
  const r = await raw(cloud, 'POST', `/v2/${name}/blobs/uploads/?digest=${wrongDigest}`, { headers: { ...bearer(t), 'Content-Type': 'application/octet-stream' }, body: other });
  assert.equal(r.status, 400);
  assert.equal(r.json.errors[0].code, 'DIGEST_INVALID');
  assert.equal((await raw(cloud, 'HEAD', `/v2/${name}/blobs/${wrongDigest}`, { headers: bearer(t) })).status, 404);
  assert.equal((await raw(cloud, 'HEAD', `/v2/${name}/blobs/${sha256(other)}`, { headers: bearer(t) })).status, 404);
  const missing = await raw(cloud, 'GET', `/v2/${name}/blobs/${sha256('nothing')}`, { headers: bearer(t) });
  assert.equal(missing.status, 404);
  assert.equal(missing.json.errors[0].code, 'BLOB_UNKNOWN');
  // the bytes are objects of an internal container: Swift does not list it
  const swift = await cloud.call('GET', `/object/v1/AUTH_${alice.projectId}?format=json`, { token: alice.token });
  assert.ok(swift.status === 200 || swift.status === 204, String(swift.status));
  assert.deepEqual((Array.isArray(swift.body) ? swift.body : []).filter((c: { name: string }) => c.name === 'registry'), []);
  assert.equal((await cloud.call('GET', `/object/v1/AUTH_${alice.projectId}/registry`, { token: alice.token })).status, 404);
  const badDigest = await raw(cloud, 'GET', `/v2/${name}/blobs/sha256:xyz`, { headers: bearer(t) });
  assert.equal(badDigest.status, 400);
  assert.equal(badDigest.json.errors[0].code, 'DIGEST_INVALID');
});

test('chunked push: Content-Range in order, 416 out of order, status by GET, cancel by DELETE; POST then PUT', async () => {
  const name = `${alice.project}/chunks`;
  const t = await pushToken(alice, 'chunks');
  const data = randomBytes(300_000);
  const { digest } = await pushChunked(cloud, t, name, data, 64 * 1024);
  const get = await fetch(`${cloud.url}/v2/${name}/blobs/${digest}`, { headers: bearer(t) });
  assert.deepEqual(Buffer.from(await get.arrayBuffer()), data);

  let r = await raw(cloud, 'POST', `/v2/${name}/blobs/uploads/`, { headers: bearer(t) });
  assert.equal(r.status, 202);
  const location = r.headers.get('location')!;
  assert.match(location, new RegExp(`^/v2/${name}/blobs/uploads/[0-9a-f-]{36}$`));
  assert.ok(r.headers.get('docker-upload-uuid'));
  r = await raw(cloud, 'PATCH', location, { headers: { ...bearer(t), 'Content-Type': 'application/octet-stream', 'Content-Range': '0-9' }, body: Buffer.alloc(10, 1) });
  assert.equal(r.status, 202);
  r = await raw(cloud, 'PATCH', location, { headers: { ...bearer(t), 'Content-Type': 'application/octet-stream', 'Content-Range': '20-29' }, body: Buffer.alloc(10, 2) });
  assert.equal(r.status, 416);
  assert.equal(r.json.errors[0].code, 'BLOB_UPLOAD_INVALID');
  r = await raw(cloud, 'GET', location, { headers: bearer(t) });
  assert.equal(r.status, 204);
  assert.equal(r.headers.get('range'), '0-9');
  // the last chunk in the closing PUT
  const whole = Buffer.concat([Buffer.alloc(10, 1), Buffer.alloc(5, 3)]);
  r = await raw(cloud, 'PUT', `${location}?digest=${sha256(whole)}`, { headers: { ...bearer(t), 'Content-Type': 'application/octet-stream', 'Content-Range': '10-14' }, body: Buffer.alloc(5, 3) });
  assert.equal(r.status, 201, r.text);
  assert.equal(r.headers.get('location'), `/v2/${name}/blobs/${sha256(whole)}`);
  // the session is gone
  r = await raw(cloud, 'GET', location, { headers: bearer(t) });
  assert.equal(r.status, 404);
  assert.equal(r.json.errors[0].code, 'BLOB_UPLOAD_UNKNOWN');

  // streamed PATCH without Content-Range (Docker's), then cancel
  r = await raw(cloud, 'POST', `/v2/${name}/blobs/uploads/`, { headers: bearer(t) });
  const loc2 = r.headers.get('location')!;
  r = await raw(cloud, 'PATCH', loc2, { headers: { ...bearer(t), 'Content-Type': 'application/octet-stream' }, body: Buffer.alloc(7) });
  assert.equal(r.status, 202);
  assert.equal(r.headers.get('range'), '0-6');
  assert.equal((await raw(cloud, 'DELETE', loc2, { headers: bearer(t) })).status, 204);
  assert.equal((await raw(cloud, 'PATCH', loc2, { headers: { ...bearer(t), 'Content-Type': 'application/octet-stream' }, body: 'x' })).status, 404);

  // two chunks for the same offset at once: one is taken, the other is out of order
  r = await raw(cloud, 'POST', `/v2/${name}/blobs/uploads/`, { headers: bearer(t) });
  const racy = r.headers.get('location')!;
  const both = await Promise.all([1, 2].map((n) => raw(cloud, 'PATCH', racy, { headers: { ...bearer(t), 'Content-Type': 'application/octet-stream', 'Content-Range': '0-99999' }, body: Buffer.alloc(100_000, n) })));
  assert.deepEqual(both.map((x) => x.status).sort(), [202, 416]);
  const won = both[0]!.status === 202 ? 1 : 2;
  r = await raw(cloud, 'PUT', `${racy}?digest=${sha256(Buffer.alloc(100_000, won))}`, { headers: bearer(t) });
  assert.equal(r.status, 201, r.text);

  // POST then PUT with the whole blob; a wrong digest at the end is DIGEST_INVALID
  r = await raw(cloud, 'POST', `/v2/${name}/blobs/uploads/`, { headers: bearer(t) });
  const loc3 = r.headers.get('location')!;
  r = await raw(cloud, 'PUT', `${loc3}?digest=${sha256('not it')}`, { headers: { ...bearer(t), 'Content-Type': 'application/octet-stream' }, body: 'the blob' });
  assert.equal(r.status, 400);
  assert.equal(r.json.errors[0].code, 'DIGEST_INVALID');
});

test('manifests by tag and digest, tags with n/last and Link; a missing blob and a bad manifest are refused', async () => {
  const name = `${alice.project}/img`;
  const t = await pushToken(alice, 'img');
  const img = await pushImage(cloud, t, name, 'v1');
  for (const ref of ['v1', img.digest]) {
    const r = await raw(cloud, 'GET', `/v2/${name}/manifests/${ref}`, { headers: { ...bearer(t), Accept: 'application/vnd.oci.image.manifest.v1+json' } });
    assert.equal(r.status, 200);
    assert.equal(r.text, img.manifest.toString());
    assert.equal(r.headers.get('content-type'), 'application/vnd.oci.image.manifest.v1+json');
    assert.equal(r.headers.get('docker-content-digest'), img.digest);
  }
  const head = await raw(cloud, 'HEAD', `/v2/${name}/manifests/v1`, { headers: bearer(t) });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('content-length'), String(img.manifest.length));
  // more tags: by digest with ?tag=
  let r = await raw(cloud, 'PUT', `/v2/${name}/manifests/${img.digest}?tag=b&tag=a&tag=c`, { headers: { ...bearer(t), 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' }, body: img.manifest });
  assert.equal(r.status, 201);
  assert.equal(r.headers.get('oci-tag'), 'b, a, c');
  r = await raw(cloud, 'GET', `/v2/${name}/tags/list`, { headers: bearer(t) });
  assert.deepEqual(r.json, { name, tags: ['a', 'b', 'c', 'v1'] });
  r = await raw(cloud, 'GET', `/v2/${name}/tags/list?n=2`, { headers: bearer(t) });
  assert.deepEqual(r.json.tags, ['a', 'b']);
  assert.equal(r.headers.get('link'), `</v2/${name}/tags/list?n=2&last=b>; rel="next"`);
  r = await raw(cloud, 'GET', `/v2/${name}/tags/list?n=2&last=b`, { headers: bearer(t) });
  assert.deepEqual(r.json.tags, ['c', 'v1']);
  r = await raw(cloud, 'GET', `/v2/${name}/tags/list?n=0`, { headers: bearer(t) });
  assert.deepEqual(r.json.tags, []);
  assert.equal(r.headers.get('link'), null);

  // a digest that is not the manifest's
  r = await raw(cloud, 'PUT', `/v2/${name}/manifests/${sha256('x')}`, { headers: { ...bearer(t), 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' }, body: img.manifest });
  assert.equal(r.status, 400);
  assert.equal(r.json.errors[0].code, 'DIGEST_INVALID');
  // a layer nobody pushed
  const ghost = imageManifest(img.config, [{ digest: sha256('never pushed'), size: 12 }]);
  r = await raw(cloud, 'PUT', `/v2/${name}/manifests/ghost`, { headers: { ...bearer(t), 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' }, body: ghost.manifest });
  assert.equal(r.status, 400);
  assert.equal(r.json.errors[0].code, 'MANIFEST_BLOB_UNKNOWN');
  assert.deepEqual(r.json.errors[0].detail, [{ digest: sha256('never pushed') }]);
  assert.equal((await raw(cloud, 'GET', `/v2/${name}/manifests/ghost`, { headers: bearer(t) })).status, 404);
  // not JSON, not a manifest, a bad tag
  for (const body of ['{not json', JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', layers: [] }), JSON.stringify({ schemaVersion: 1, name: 'x' })]) {
    r = await raw(cloud, 'PUT', `/v2/${name}/manifests/bad`, { headers: { ...bearer(t), 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' }, body });
    assert.equal(r.status, 400, body);
    assert.equal(r.json.errors[0].code, 'MANIFEST_INVALID');
  }
  r = await raw(cloud, 'PUT', `/v2/${name}/manifests/huge`, { headers: { ...bearer(t), 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' }, body: Buffer.alloc(4 * 1024 * 1024 + 1, 32) });
  assert.equal(r.status, 413);
  assert.equal(r.json.errors[0].code, 'SIZE_INVALID');
  r = await raw(cloud, 'PUT', `/v2/${name}/manifests/.bad`, { headers: { ...bearer(t), 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' }, body: img.manifest });
  assert.equal(r.status, 400);
  r = await raw(cloud, 'GET', `/v2/${name}/manifests/nosuchtag`, { headers: bearer(t) });
  assert.equal(r.status, 404);
  assert.equal(r.json.errors[0].code, 'MANIFEST_UNKNOWN');
  // invalid names
  r = await raw(cloud, 'GET', `/v2/${alice.project}/Upper/tags/list`, { headers: bearer(t) });
  assert.equal(r.status, 400);
  assert.equal(r.json.errors[0].code, 'NAME_INVALID');
});

test('Docker schema 2 manifests and an image index; an index naming a missing manifest is refused', async () => {
  const name = `${alice.project}/multi`;
  const t = await pushToken(alice, 'multi');
  const a = await pushImage(cloud, t, name, 'amd64', 'amd64 layer');
  const config = await pushBlob(cloud, t, name, '{"os":"linux","architecture":"arm64"}');
  const layer = await pushBlob(cloud, t, name, 'arm64 layer');
  const docker = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
    config: { mediaType: 'application/vnd.docker.container.image.v1+json', ...config },
    layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', ...layer }],
  }));
  let r = await raw(cloud, 'PUT', `/v2/${name}/manifests/arm64`, { headers: { ...bearer(t), 'Content-Type': 'application/vnd.docker.distribution.manifest.v2+json' }, body: docker });
  assert.equal(r.status, 201, r.text);
  const index = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: a.digest, size: a.manifest.length, platform: { os: 'linux', architecture: 'amd64' } },
      { mediaType: 'application/vnd.docker.distribution.manifest.v2+json', digest: sha256(docker), size: docker.length, platform: { os: 'linux', architecture: 'arm64' } },
    ],
  }));
  r = await raw(cloud, 'PUT', `/v2/${name}/manifests/latest`, { headers: { ...bearer(t), 'Content-Type': 'application/vnd.oci.image.index.v1+json' }, body: index });
  assert.equal(r.status, 201, r.text);
  r = await raw(cloud, 'GET', `/v2/${name}/manifests/latest`, { headers: bearer(t) });
  assert.equal(r.headers.get('content-type'), 'application/vnd.oci.image.index.v1+json');
  assert.equal(r.text, index.toString());
  r = await raw(cloud, 'GET', `/v2/${name}/manifests/arm64`, { headers: bearer(t) });
  assert.equal(r.headers.get('content-type'), 'application/vnd.docker.distribution.manifest.v2+json');

  const list = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json',
    manifests: [{ mediaType: 'application/vnd.docker.distribution.manifest.v2+json', digest: sha256('no such manifest'), size: 10, platform: { os: 'linux', architecture: 'arm64' } }],
  }));
  r = await raw(cloud, 'PUT', `/v2/${name}/manifests/broken`, { headers: { ...bearer(t), 'Content-Type': 'application/vnd.docker.distribution.manifest.list.v2+json' }, body: list });
  assert.equal(r.status, 400);
  assert.equal(r.json.errors[0].code, 'MANIFEST_BLOB_UNKNOWN');
});

test('referrers: manifests with a subject, filtered by artifactType, in pages', async () => {
  const name = `${alice.project}/signed`;
  const t = await pushToken(alice, 'signed');
  const img = await pushImage(cloud, t, name, 'v1');
  const empty = await pushBlob(cloud, t, name, '{}');
  const sigLayer = await pushBlob(cloud, t, name, 'signature bytes');
  const subject = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: img.digest, size: img.manifest.length };
  const artifact = (type: string, layer: { digest: string; size: number }) => Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: type,
    config: { mediaType: 'application/vnd.oci.empty.v1+json', ...empty },
    layers: [{ mediaType: 'application/octet-stream', ...layer }], subject, annotations: { 'org.example.kind': type },
  }));
  const sig = artifact('application/vnd.example.signature', sigLayer);
  const sbom = artifact('application/vnd.example.sbom', sigLayer);
  for (const m of [sig, sbom]) {
    const r = await raw(cloud, 'PUT', `/v2/${name}/manifests/${sha256(m)}`, { headers: { ...bearer(t), 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' }, body: m });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.headers.get('oci-subject'), img.digest);
  }
  let r = await raw(cloud, 'GET', `/v2/${name}/referrers/${img.digest}`, { headers: bearer(t) });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'application/vnd.oci.image.index.v1+json');
  assert.equal(r.json.manifests.length, 2);
  assert.deepEqual(new Set(r.json.manifests.map((m: any) => m.digest)), new Set([sha256(sig), sha256(sbom)]));
  r = await raw(cloud, 'GET', `/v2/${name}/referrers/${img.digest}?artifactType=application/vnd.example.sbom`, { headers: bearer(t) });
  assert.equal(r.headers.get('oci-filters-applied'), 'artifactType');
  assert.deepEqual(r.json.manifests, [{
    mediaType: 'application/vnd.oci.image.manifest.v1+json', size: sbom.length, digest: sha256(sbom),
    artifactType: 'application/vnd.example.sbom', annotations: { 'org.example.kind': 'application/vnd.example.sbom' },
  }]);
  // pages: n per page, the next one in a Link (the artifactType filter kept)
  const both = [sha256(sig), sha256(sbom)].sort();
  r = await raw(cloud, 'GET', `/v2/${name}/referrers/${img.digest}?n=1`, { headers: bearer(t) });
  assert.deepEqual(r.json.manifests.map((m: any) => m.digest), [both[0]]);
  const next = /^<([^>]+)>; rel="next"$/.exec(r.headers.get('link') ?? '');
  assert.ok(next, r.headers.get('link') ?? 'no Link');
  assert.equal(next[1], `/v2/${name}/referrers/${img.digest}?n=1&last=${encodeURIComponent(both[0]!)}`);
  r = await raw(cloud, 'GET', next[1]!, { headers: bearer(t) });
  assert.deepEqual(r.json.manifests.map((m: any) => m.digest), [both[1]]);
  assert.equal(r.headers.get('link'), null);
  r = await raw(cloud, 'GET', `/v2/${name}/referrers/${img.digest}?n=x`, { headers: bearer(t) });
  assert.equal(r.status, 400);
  r = await raw(cloud, 'GET', `/v2/${name}/referrers/${sha256('nothing refers')}`, { headers: bearer(t) });
  assert.equal(r.status, 200);
  assert.deepEqual(r.json.manifests, []);
  r = await raw(cloud, 'GET', `/v2/${name}/referrers/notadigest`, { headers: bearer(t) });
  assert.equal(r.status, 400);
});

test('mount: from a repository the caller may pull (201), else a new session (202)', async () => {
  const t = await token(cloud, [`repository:${alice.project}/src:pull,push`, `repository:${alice.project}/dst:pull,push`], login(alice));
  const blob = await pushBlob(cloud, t, `${alice.project}/src`, randomBytes(5000));
  let r = await raw(cloud, 'POST', `/v2/${alice.project}/dst/blobs/uploads/?mount=${blob.digest}&from=${alice.project}/src`, { headers: bearer(t) });
  assert.equal(r.status, 201, r.text);
  assert.equal(r.headers.get('location'), `/v2/${alice.project}/dst/blobs/${blob.digest}`);
  assert.equal((await raw(cloud, 'HEAD', `/v2/${alice.project}/dst/blobs/${blob.digest}`, { headers: bearer(t) })).status, 200);

  // bob cannot mount alice's blob: he gets an upload session
  const bt = await token(cloud, [`repository:${bob.project}/dst:pull,push`, `repository:${alice.project}/src:pull`], login(bob));
  r = await raw(cloud, 'POST', `/v2/${bob.project}/dst/blobs/uploads/?mount=${blob.digest}&from=${alice.project}/src`, { headers: bearer(bt) });
  assert.equal(r.status, 202);
  assert.match(r.headers.get('location')!, /\/blobs\/uploads\//);
  assert.equal((await raw(cloud, 'HEAD', `/v2/${bob.project}/dst/blobs/${blob.digest}`, { headers: bearer(bt) })).status, 404);
});

test("another project's repository: refused alike whether it exists or not", async () => {
  const t = await pushToken(alice, 'secret');
  await pushImage(cloud, t, `${alice.project}/secret`, 'v1');
  const bt = await token(cloud, [`repository:${alice.project}/secret:pull,push`, `repository:${alice.project}/nothing:pull`], login(bob));
  assert.deepEqual(claims(bt).access, []);
  const answers = [];
  for (const path of [`${alice.project}/secret/manifests/v1`, `${alice.project}/nothing/manifests/v1`, `${alice.project}/secret/tags/list`]) {
    const r = await raw(cloud, 'GET', `/v2/${path}`, { headers: bearer(bt) });
    assert.equal(r.status, 401);
    assert.equal(r.json.errors[0].code, 'UNAUTHORIZED');
    assert.match(r.headers.get('www-authenticate')!, /error="insufficient_scope"/);
    answers.push(r.json.errors[0].message);
    // a Keystone token of bob's project: DENIED
    const k = await raw(cloud, 'GET', `/v2/${path}`, { headers: { 'X-Auth-Token': bob.token } });
    assert.equal(k.status, 403);
    assert.equal(k.json.errors[0].code, 'DENIED');
  }
  assert.equal(new Set(answers).size, 1);
  const push = await raw(cloud, 'POST', `/v2/${alice.project}/secret/blobs/uploads/`, { headers: { 'X-Auth-Token': bob.token } });
  assert.equal(push.status, 403);
  // without credentials: 401 naming the scope to ask for
  const anon = await raw(cloud, 'GET', `/v2/${alice.project}/secret/manifests/v1`);
  assert.equal(anon.status, 401);
  assert.equal(anon.headers.get('www-authenticate'), `Bearer realm="${cloud.url}/v2/token",service="stratus",scope="repository:${alice.project}/secret:pull"`);
});

test('public repositories: anyone pulls, nobody else pushes; the catalog lists what the caller can see', async () => {
  const t = await pushToken(alice, 'open');
  const img = await pushImage(cloud, t, `${alice.project}/open`, 'v1');
  const ct = await pushToken(alice, 'closed');
  await pushImage(cloud, ct, `${alice.project}/closed`, 'v1');
  // only a member sets visibility
  let r = await raw(cloud, 'PUT', `/v2/_stratus/repositories/${alice.project}/open`, { headers: { 'X-Auth-Token': bob.token, 'Content-Type': 'application/json' }, body: '{"public": true}' });
  assert.equal(r.status, 403);
  for (const bad of ['{not json', '{"public": "yes"}', '']) {
    r = await raw(cloud, 'PUT', `/v2/_stratus/repositories/${alice.project}/open`, { headers: { 'X-Auth-Token': alice.token, 'Content-Type': 'application/json' }, body: bad });
    assert.equal(r.status, 400, bad);
  }
  r = await raw(cloud, 'PUT', `/v2/_stratus/repositories/${alice.project}/open`, { headers: { 'X-Auth-Token': alice.token, 'Content-Type': 'application/json' }, body: '{"public": true}' });
  assert.equal(r.status, 200, r.text);
  r = await raw(cloud, 'GET', `/v2/_stratus/repositories/${alice.project}/open`, { headers: { 'X-Auth-Token': alice.token } });
  assert.deepEqual(r.json, { name: `${alice.project}/open`, public: true });
  assert.deepEqual(r.json, { name: `${alice.project}/open`, public: true });

  // anonymous: without a token, and with an anonymous token
  r = await raw(cloud, 'GET', `/v2/${alice.project}/open/manifests/v1`);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers.get('docker-content-digest'), img.digest);
  const anon = await token(cloud, [`repository:${alice.project}/open:pull,push`]);
  assert.deepEqual(claims(anon).access, [{ name: `${alice.project}/open`, projectId: alice.projectId, actions: ['pull'] }]);
  r = await raw(cloud, 'GET', `/v2/${alice.project}/open/blobs/${img.layers[0]!.digest}`, { headers: bearer(anon) });
  assert.equal(r.status, 200);
  r = await raw(cloud, 'POST', `/v2/${alice.project}/open/blobs/uploads/`, { headers: bearer(anon) });
  assert.equal(r.status, 401);
  // bob pulls it too, but pushes nothing
  const bt = await token(cloud, [`repository:${alice.project}/open:pull,push`], login(bob));
  assert.deepEqual(claims(bt).access[0].actions, ['pull']);

  // the catalog
  const cat = await token(cloud, ['registry:catalog:*'], login(alice));
  r = await raw(cloud, 'GET', '/v2/_catalog', { headers: bearer(cat) });
  assert.equal(r.status, 200);
  assert.ok(r.json.repositories.includes(`${alice.project}/open`));
  assert.ok(r.json.repositories.includes(`${alice.project}/closed`));
  const bcat = await token(cloud, ['registry:catalog:*'], login(bob));
  r = await raw(cloud, 'GET', '/v2/_catalog', { headers: bearer(bcat) });
  assert.ok(r.json.repositories.includes(`${alice.project}/open`));
  assert.ok(!r.json.repositories.some((n: string) => n === `${alice.project}/closed`));
  r = await raw(cloud, 'GET', '/v2/_catalog?n=1', { headers: bearer(cat) });
  assert.equal(r.json.repositories.length, 1);
  assert.match(r.headers.get('link')!, /^<\/v2\/_catalog\?n=1&last=.+>; rel="next"$/);
});

test('deletes: a tag, a manifest by digest, a blob', async () => {
  const name = `${alice.project}/del`;
  const t = await pushToken(alice, 'del');
  const img = await pushImage(cloud, t, name, 'v1');
  let r = await raw(cloud, 'PUT', `/v2/${name}/manifests/v2`, { headers: { ...bearer(t), 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' }, body: img.manifest });
  assert.equal(r.status, 201);
  r = await raw(cloud, 'DELETE', `/v2/${name}/manifests/v2`, { headers: bearer(t) });
  assert.equal(r.status, 202);
  assert.equal((await raw(cloud, 'GET', `/v2/${name}/manifests/v2`, { headers: bearer(t) })).status, 404);
  assert.equal((await raw(cloud, 'GET', `/v2/${name}/manifests/v1`, { headers: bearer(t) })).status, 200);
  r = await raw(cloud, 'DELETE', `/v2/${name}/manifests/${img.digest}`, { headers: bearer(t) });
  assert.equal(r.status, 202);
  assert.equal((await raw(cloud, 'GET', `/v2/${name}/manifests/v1`, { headers: bearer(t) })).status, 404);
  assert.equal((await raw(cloud, 'GET', `/v2/${name}/manifests/${img.digest}`, { headers: bearer(t) })).status, 404);
  r = await raw(cloud, 'DELETE', `/v2/${name}/manifests/${img.digest}`, { headers: bearer(t) });
  assert.equal(r.status, 404);
  assert.equal(r.json.errors[0].code, 'MANIFEST_UNKNOWN');
  r = await raw(cloud, 'DELETE', `/v2/${name}/blobs/${img.layers[0]!.digest}`, { headers: bearer(t) });
  assert.equal(r.status, 202);
  assert.equal((await raw(cloud, 'HEAD', `/v2/${name}/blobs/${img.layers[0]!.digest}`, { headers: bearer(t) })).status, 404);
  // a pull-only token deletes nothing
  const reader = await token(cloud, [`repository:${name}:pull`], login(alice));
  r = await raw(cloud, 'DELETE', `/v2/${name}/blobs/${img.config.digest}`, { headers: bearer(reader) });
  assert.equal(r.status, 401);
});

test('garbage collection removes blobs no manifest references, and old upload sessions', async () => {
  const name = `${alice.project}/gc`;
  const t = await pushToken(alice, 'gc');
  const img = await pushImage(cloud, t, name, 'v1');
  const loose = await pushBlob(cloud, t, name, randomBytes(2000));
  const r = await raw(cloud, 'POST', `/v2/${name}/blobs/uploads/`, { headers: bearer(t) });
  const session = r.headers.get('location')!;
  await raw(cloud, 'PATCH', session, { headers: { ...bearer(t), 'Content-Type': 'application/octet-stream' }, body: 'partial' });

  // within the grace period nothing goes
  await cloud.server.registry.gc();
  assert.equal((await raw(cloud, 'HEAD', `/v2/${name}/blobs/${loose.digest}`, { headers: bearer(t) })).status, 200);

  const result = await cloud.server.registry.gc({ graceMs: 0, uploadMaxAgeMs: 0 });
  assert.ok(result.blobs >= 1 && result.uploads >= 1, JSON.stringify(result));
  assert.equal((await raw(cloud, 'HEAD', `/v2/${name}/blobs/${loose.digest}`, { headers: bearer(t) })).status, 404);
  assert.equal((await raw(cloud, 'GET', session, { headers: bearer(t) })).status, 404);
  for (const d of [img.config.digest, img.layers[0]!.digest]) {
    assert.equal((await raw(cloud, 'HEAD', `/v2/${name}/blobs/${d}`, { headers: bearer(t) })).status, 200);
  }
  const pulled = await raw(cloud, 'GET', `/v2/${name}/manifests/v1`, { headers: bearer(t) });
  assert.equal(pulled.text, img.manifest.toString());

  // once the manifest is deleted, its layer and bytes go too; its config stays while other repositories of the project use it
  assert.equal((await raw(cloud, 'DELETE', `/v2/${name}/manifests/${img.digest}`, { headers: bearer(t) })).status, 202);
  const after = await cloud.server.registry.gc({ graceMs: 0 });
  assert.ok(after.blobs >= 1 && after.manifests >= 1, JSON.stringify(after));
  assert.equal((await raw(cloud, 'HEAD', `/v2/${name}/blobs/${img.layers[0]!.digest}`, { headers: bearer(t) })).status, 404);
  const other = await token(cloud, [`repository:${alice.project}/img:pull`], login(alice));
  assert.equal((await raw(cloud, 'HEAD', `/v2/${alice.project}/img/blobs/${img.config.digest}`, { headers: bearer(other) })).status, 200);
});

test('stratus registry gc: one collection from the command line, on the server\'s database and object store', { skip: process.env.STRATUS_TEST_DATABASE ? 'the CLI is given the SQLite database of the test cloud' : false }, async () => {
  const name = `${alice.project}/cli-gc`;
  const t = await pushToken(alice, 'cli-gc');
  const loose = await pushBlob(cloud, t, name, randomBytes(3000));
  const cli = new URL('../../../src/cli/main.ts', import.meta.url).pathname;
  const { stdout } = await promisify(execFile)(process.execPath, ['--disable-warning=ExperimentalWarning', cli, 'registry', 'gc', '--data-dir', cloud.dataDir, '--grace', '0'], { timeout: 60_000 });
  assert.match(stdout, /^removed [1-9]\d* blobs, \d+ manifests, \d+ upload sessions, \d+ stray chunks\n$/);
  assert.equal((await raw(cloud, 'HEAD', `/v2/${name}/blobs/${loose.digest}`, { headers: bearer(t) })).status, 404);
});

test('token endpoint, OAuth2: POST grant_type=password and refresh_token (access_type=offline), GET offline_token', async () => {
  const form = (fields: Record<string, string>) => ({ headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString() });
  const scope = `repository:${alice.project}/oauth:pull,push`;
  let r = await raw(cloud, 'POST', '/v2/token', form({ grant_type: 'password', username: alice.name, password: alice.password, service: 'stratus', client_id: 'test', access_type: 'offline', scope }));
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.scope, scope);
  assert.equal(r.json.expires_in, 300);
  assert.ok(r.json.refresh_token);
  assert.deepEqual(claims(r.json.access_token).access.map((a: any) => [a.name, [...a.actions].sort()]), [[`${alice.project}/oauth`, ['pull', 'push']]]);
  const refresh = r.json.refresh_token as string;
  const pushed = await pushBlob(cloud, r.json.access_token, `${alice.project}/oauth`, 'via oauth');
  // the refresh token gives new access tokens, with the scopes asked then
  r = await raw(cloud, 'POST', '/v2/token', form({ grant_type: 'refresh_token', refresh_token: refresh, service: 'stratus', client_id: 'test', scope: `repository:${alice.project}/oauth:pull` }));
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.scope, `repository:${alice.project}/oauth:pull`);
  assert.equal(r.json.refresh_token, refresh);
  assert.equal((await raw(cloud, 'GET', `/v2/${alice.project}/oauth/blobs/${pushed.digest}`, { headers: bearer(r.json.access_token) })).status, 200);
  // without access_type=offline: no refresh token
  r = await raw(cloud, 'POST', '/v2/token', form({ grant_type: 'password', username: alice.name, password: alice.password, service: 'stratus', client_id: 'test' }));
  assert.equal(r.status, 200);
  assert.equal(r.json.refresh_token, undefined);
  // refusals: a wrong password, a forged refresh token, another grant, a scoped Keystone token as a refresh token
  r = await raw(cloud, 'POST', '/v2/token', form({ grant_type: 'password', username: alice.name, password: 'wrong', service: 'stratus', client_id: 'test' }));
  assert.equal(r.status, 401);
  assert.equal(r.json.errors[0].code, 'UNAUTHORIZED');
  r = await raw(cloud, 'POST', '/v2/token', form({ grant_type: 'refresh_token', refresh_token: `${refresh}x`, service: 'stratus', client_id: 'test' }));
  assert.equal(r.status, 401);
  r = await raw(cloud, 'POST', '/v2/token', form({ grant_type: 'refresh_token', refresh_token: alice.token, service: 'stratus', client_id: 'test' }));
  assert.equal(r.status, 401);
  r = await raw(cloud, 'POST', '/v2/token', form({ grant_type: 'client_credentials', service: 'stratus', client_id: 'test' }));
  assert.equal(r.status, 400);
  // GET with offline_token=true (docker login) gives one too, only to a logged-in client
  r = await raw(cloud, 'GET', `/v2/token?service=stratus&offline_token=true&client_id=docker`, { headers: { Authorization: basic(alice.name, alice.password) } });
  assert.equal(r.status, 200);
  assert.ok(r.json.refresh_token);
  r = await raw(cloud, 'GET', `/v2/token?service=stratus&offline_token=true`);
  assert.equal(r.json.refresh_token, undefined);
  // a refresh token is revoked with the Keystone token it is
  const revoke = await cloud.call('DELETE', '/identity/v3/auth/tokens', { token: cloud.adminToken, headers: { 'X-Subject-Token': refresh } });
  assert.equal(revoke.status, 204);
  r = await raw(cloud, 'POST', '/v2/token', form({ grant_type: 'refresh_token', refresh_token: refresh, service: 'stratus', client_id: 'test' }));
  assert.equal(r.status, 401);
});
