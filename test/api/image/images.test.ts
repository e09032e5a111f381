// Glance v2 images over HTTP: discovery, create/upload/download, JSON patch,
// tags, deletion, listing, and the errors Glance gives for bad input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { Readable } from 'node:stream';
import { tenant, useCloud, type Tenant } from '../../harness.ts';
import { PATCH, storedImageData } from './fixtures.ts';

let a: Tenant;
const cloud = useCloud(async (cloud) => { a = await tenant(cloud); });

const img = (method: string, path: string, o: { token?: string; body?: unknown; headers?: Record<string, string>; raw?: string } = {}) =>
  cloud.call(method, `/image/v2${path}`, { token: a.token, ...o });
const patch = (id: string, ops: unknown, token = a.token, type = PATCH['Content-Type']) =>
  cloud.call('PATCH', `/image/v2/images/${id}`, { token, raw: JSON.stringify(ops), headers: { 'Content-Type': type } });
const create = async (body: Record<string, unknown> = {}, token = a.token) => {
  const r = await cloud.call('POST', '/image/v2/images', { token, body: { disk_format: 'raw', container_format: 'bare', ...body } });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body;
};

/** PUT file with a chunked body streamed from `chunks`. */
async function upload(id: string, chunks: Buffer[], token = a.token, path = 'file'): Promise<Response> {
  return fetch(`${cloud.url}/image/v2/images/${id}/${path}`, {
    method: 'PUT',
    headers: { 'X-Auth-Token': token, 'Content-Type': 'application/octet-stream' },
    body: Readable.toWeb(Readable.from(chunks)) as ReadableStream,
    duplex: 'half',
  } as RequestInit);
}

const imageFiles = () => storedImageData(cloud);

test('version documents and schemas', async () => {
  const root = await cloud.call('GET', '/image');
  assert.equal(root.status, 300);
  const current = root.body.versions.find((v: { status: string }) => v.status === 'CURRENT');
  assert.match(current.links[0].href, /\/image\/v2\/$/);
  assert.ok(root.body.versions.some((v: { id: string }) => v.id === 'v2.0'));
  assert.equal((await cloud.call('GET', '/image/versions')).status, 200);
  for (const name of ['image', 'images', 'member', 'members']) {
    const s = await img('GET', `/schemas/${name}`);
    assert.equal(s.status, 200);
    assert.equal(s.body.name, name);
  }
  const schema = (await img('GET', '/schemas/image')).body;
  assert.deepEqual(schema.additionalProperties, { type: 'string' });
  assert.ok(schema.properties.container_format.enum.includes('docker'));
  assert.deepEqual(schema.properties.visibility.enum.sort(), ['community', 'private', 'public', 'shared']);
  assert.equal((await cloud.call('GET', '/image/v2/schemas/image')).status, 401, 'schemas need a token');
  const info = await img('GET', '/info/import');
  assert.deepEqual(info.body['import-methods'].value, ['glance-direct']);
});

test('create, upload a few MB streamed, download with checksums', async () => {
  const image = await create({ name: 'big', tags: ['t1', 't1', 't2'], os_distro: 'debian', min_ram: 64 });
  assert.equal(image.status, 'queued');
  assert.equal(image.visibility, 'shared');
  assert.equal(image.owner, a.projectId);
  assert.deepEqual(image.tags, ['t1', 't2']);
  assert.equal(image.os_distro, 'debian');
  assert.equal(image.self, `/v2/images/${image.id}`);
  assert.equal(image.file, `/v2/images/${image.id}/file`);
  assert.equal(image.schema, '/v2/schemas/image');
  assert.match(image.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  for (const k of ['checksum', 'size', 'virtual_size', 'os_hash_algo', 'os_hash_value']) assert.equal(image[k], null, k);

  const empty = await img('GET', `/images/${image.id}/file`);
  assert.equal(empty.status, 204);

  const chunks = Array.from({ length: 64 }, () => randomBytes(64 * 1024));
  const whole = Buffer.concat(chunks);
  const put = await upload(image.id, chunks);
  assert.equal(put.status, 204, await put.text());

  const shown = (await img('GET', `/images/${image.id}`)).body;
  assert.equal(shown.status, 'active');
  assert.equal(shown.size, whole.length);
  assert.equal(shown.virtual_size, whole.length);
  assert.equal(shown.checksum, createHash('md5').update(whole).digest('hex'));
  assert.equal(shown.os_hash_algo, 'sha512');
  assert.equal(shown.os_hash_value, createHash('sha512').update(whole).digest('hex'));

  const got = await fetch(`${cloud.url}/image/v2/images/${image.id}/file`, { headers: { 'X-Auth-Token': a.token } });
  assert.equal(got.status, 200);
  assert.equal(got.headers.get('content-type'), 'application/octet-stream');
  assert.equal(got.headers.get('content-md5'), shown.checksum);
  assert.equal(Number(got.headers.get('content-length')), whole.length);
  assert.ok(Buffer.from(await got.arrayBuffer()).equals(whole));

  const part = await fetch(`${cloud.url}/image/v2/images/${image.id}/file`, { headers: { 'X-Auth-Token': a.token, Range: 'bytes=10-19' } });
  assert.equal(part.status, 206);
  assert.equal(part.headers.get('content-range'), `bytes 10-19/${whole.length}`);
  assert.ok(Buffer.from(await part.arrayBuffer()).equals(whole.subarray(10, 20)));

  const again = await upload(image.id, [Buffer.from('x')]);
  assert.equal(again.status, 409, 'uploading to an active image');
  assert.equal((await again.json()).code, '409 Conflict');

  // A raw qcow2 header gives the virtual size.
  const q = await create({ disk_format: 'qcow2' });
  const header = Buffer.alloc(512);
  header.writeUInt32BE(0x514649fb, 0);
  header.writeUInt32BE(3, 4);
  header.writeBigUInt64BE(1n << 30n, 24);
  assert.equal((await upload(q.id, [header])).status, 204);
  assert.equal((await img('GET', `/images/${q.id}`)).body.virtual_size, 1 << 30);
});

test('uploads need formats, octet-stream and a size under the cap', async () => {
  const noFormat = (await cloud.call('POST', '/image/v2/images', { token: a.token, body: { name: 'nf' } })).body;
  const r = await upload(noFormat.id, [Buffer.from('data')]);
  assert.equal(r.status, 400);
  assert.match((await r.json()).message, /disk_format, container_format must be set prior to saving data/);
  assert.equal((await img('GET', `/images/${noFormat.id}`)).body.status, 'queued');

  const image = await create();
  const wrongType = await img('PUT', `/images/${image.id}/file`, { raw: 'abc', headers: { 'Content-Type': 'application/json' } });
  assert.equal(wrongType.status, 415);
  const tooBig = await img('PUT', `/images/${image.id}/file`, {
    raw: 'abc', headers: { 'Content-Type': 'application/octet-stream', 'X-Openstack-Image-Size': String(2 * 1024 ** 4) },
  });
  assert.equal(tooBig.status, 413);
  assert.equal((await img('GET', `/images/${image.id}`)).body.status, 'queued');
  // An empty upload makes an active image of size 0.
  const zero = await img('PUT', `/images/${image.id}/file`, { headers: { 'Content-Type': 'application/octet-stream' } });
  assert.equal(zero.status, 204);
  const shown = (await img('GET', `/images/${image.id}`)).body;
  assert.equal(shown.status, 'active');
  assert.equal(shown.size, 0);
  assert.equal(shown.checksum, createHash('md5').digest('hex'));
});

test('an aborted upload leaves the image queued and no data behind', async () => {
  const image = await create({ name: 'aborted' });
  const before = (await imageFiles()).length;
  await new Promise<void>((resolve) => {
    const req = request(`${cloud.url}/image/v2/images/${image.id}/file`, {
      method: 'PUT', headers: { 'X-Auth-Token': a.token, 'Content-Type': 'application/octet-stream', 'Transfer-Encoding': 'chunked' },
    });
    req.on('error', () => resolve());
    req.write(randomBytes(256 * 1024));
    setTimeout(() => { req.destroy(); resolve(); }, 300);
  });
  let status = '';
  for (let i = 0; i < 50; i++) {
    status = (await img('GET', `/images/${image.id}`)).body.status;
    if (status === 'queued') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(status, 'queued');
  const shown = (await img('GET', `/images/${image.id}`)).body;
  assert.equal(shown.size, null);
  assert.equal(shown.checksum, null);
  assert.deepEqual((await imageFiles()).filter((f) => f.includes(image.id)), []);
  assert.equal((await imageFiles()).length, before);
  // ... and can be uploaded again.
  assert.equal((await upload(image.id, [Buffer.from('second try')])).status, 204);
});

test('JSON patch: add, replace, remove and their errors', async () => {
  const image = await create({ name: 'p', extra: 'one' });
  let r = await patch(image.id, [
    { op: 'replace', path: '/name', value: 'renamed' },
    { op: 'add', path: '/hw_cpu_cores', value: '5' },
    { op: 'replace', path: '/extra', value: 'two' },
    { op: 'add', path: '/trait:STORAGE_DISK_SSD', value: 'required' },
    { op: 'replace', path: '/tags', value: ['x', 'y', 'x'] },
    { op: 'replace', path: '/min_disk', value: 3 },
    { op: 'replace', path: '/protected', value: true },
  ]);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.name, 'renamed');
  assert.equal(r.body.hw_cpu_cores, '5');
  assert.equal(r.body.extra, 'two');
  assert.equal(r.body['trait:STORAGE_DISK_SSD'], 'required');
  assert.deepEqual(r.body.tags, ['x', 'y']);
  assert.equal(r.body.min_disk, 3);
  assert.equal(r.body.protected, true);
  r = await patch(image.id, [{ op: 'remove', path: '/extra' }, { op: 'replace', path: '/protected', value: false }]);
  assert.equal(r.status, 200);
  assert.equal(r.body.extra, undefined);

  // The older draft-4 form that Tempest sends.
  r = await patch(image.id, [{ replace: '/name', value: 'draft4' }], a.token, 'application/openstack-images-v2.0-json-patch');
  assert.equal(r.status, 200);
  assert.equal(r.body.name, 'draft4');
  r = await patch(image.id, [{ add: '/name', value: 'x' }], a.token, 'application/openstack-images-v2.0-json-patch');
  assert.equal(r.status, 409, 'draft-4 add of a present property');

  const cases: Array<[unknown, number, RegExp]> = [
    [[{ op: 'replace', path: '/status', value: 'active' }], 403, /read-only/],
    [[{ op: 'replace', path: '/id', value: 'x' }], 403, /read-only/],
    [[{ op: 'add', path: '/os_glance_foo', value: 'x' }], 403, /reserved/],
    [[{ op: 'add', path: '/deleted', value: 'x' }], 403, /reserved/],
    [[{ op: 'remove', path: '/name' }], 403, /may not be removed/],
    [[{ op: 'remove', path: '/nope' }], 409, /does not exist/],
    [[{ op: 'replace', path: '/nope', value: 'x' }], 409, /does not exist/],
    [[{ op: 'replace', path: '/owner', value: 'someone' }], 403, /Owner can't be updated by non admin/],
    [[{ op: 'replace', path: '/visibility', value: 'public' }], 403, /not authorized/],
    [[{ op: 'replace', path: '/visibility', value: 'bogus' }], 400, /is not one of/],
    [[{ op: 'replace', path: '/min_ram', value: -1 }], 400, /negative/],
    [[{ op: 'replace', path: '/min_ram', value: 'x' }], 400, /is not of type 'integer'/],
    [[{ op: 'add', path: '/prop', value: 5 }], 400, /is not of type 'string'/],
    [[{ op: 'move', path: '/name', value: 'x' }], 400, /Invalid operation/],
    [[{ op: 'replace', path: 'name', value: 'x' }], 400, /does not start with/],
    [[{ op: 'replace', path: '/name/x', value: 'x' }], 400, /Invalid JSON pointer/],
    [[{ op: 'replace', path: '/name' }], 400, /requires a member named "value"/],
    [[{ op: 'add', path: '/locations/-', value: { url: 'http://x', metadata: {} } }], 403, /locations/],
    [{ op: 'replace' }, 400, /JSON array/],
    [['x'], 400, /must be JSON objects/],
  ];
  for (const [ops, status, message] of cases) {
    const res = await patch(image.id, ops);
    assert.equal(res.status, status, JSON.stringify(ops));
    assert.match(res.body.message, message, JSON.stringify(ops));
    assert.equal(res.body.code, `${status} ${res.body.title}`);
  }
  const json = await patch(image.id, [], a.token, 'application/json');
  assert.equal(json.status, 415);
  assert.match(json.headers.get('accept-patch') ?? '', /openstack-images-v2.1-json-patch/);
  const bad = await cloud.call('PATCH', `/image/v2/images/${image.id}`, { token: a.token, raw: '[{', headers: PATCH });
  assert.equal(bad.status, 400);

  // Formats can change only while queued.
  const active = await create();
  assert.equal((await upload(active.id, [Buffer.from('x')])).status, 204);
  const fmt = await patch(active.id, [{ op: 'replace', path: '/disk_format', value: 'qcow2' }]);
  assert.equal(fmt.status, 403);
});

test('tags', async () => {
  const image = await create();
  assert.equal((await img('PUT', `/images/${image.id}/tags/blue`)).status, 204);
  assert.equal((await img('PUT', `/images/${image.id}/tags/blue`)).status, 204, 'idempotent');
  assert.equal((await img('PUT', `/images/${image.id}/tags/green`)).status, 204);
  assert.deepEqual((await img('GET', `/images/${image.id}`)).body.tags, ['blue', 'green']);
  assert.equal((await img('DELETE', `/images/${image.id}/tags/blue`)).status, 204);
  assert.equal((await img('DELETE', `/images/${image.id}/tags/blue`)).status, 404);
  assert.equal((await img('PUT', `/images/${image.id}/tags/${'t'.repeat(256)}`)).status, 400);
  assert.equal((await img('PUT', `/images/00000000-0000-0000-0000-000000000000/tags/x`)).status, 404);
  assert.deepEqual((await img('GET', `/images/${image.id}`)).body.tags, ['green']);
});

test('create: bad input gets Glance errors', async () => {
  const cases: Array<[unknown, number, RegExp]> = [
    [{ container_format: 'wrong', disk_format: 'raw' }, 400, /is not one of/],
    [{ container_format: 'bare', disk_format: 'wrong' }, 400, /is not one of/],
    [{ name: 'x'.repeat(256) }, 400, /too long/],
    [{ id: 'not-a-uuid' }, 400, /does not match/],
    [{ min_ram: -5 }, 400, /negative/],
    [{ visibility: 'nope' }, 400, /is not one of/],
    [{ protected: 'yes' }, 400, /is not of type 'boolean'/],
    [{ tags: 'a' }, 400, /is not of type 'array'/],
    [{ custom: 3 }, 400, /is not of type 'string'/],
    [{ status: 'active' }, 403, /read-only/],
    [{ size: 5 }, 403, /read-only/],
    [{ self: '/x' }, 403, /read-only/],
    [{ os_glance_foo: 'bar' }, 403, /reserved/],
    [{ deleted: 'x' }, 403, /reserved/],
    [{ ['k'.repeat(256)]: 'v' }, 400, /255/],
    [{ visibility: 'public' }, 403, /not authorized/],
    [{ owner: 'someone-else' }, 403, /not authorized/],
  ];
  for (const [body, status, message] of cases) {
    const r = await cloud.call('POST', '/image/v2/images', { token: a.token, body });
    assert.equal(r.status, status, JSON.stringify(body));
    assert.match(r.body.message, message, JSON.stringify(body));
  }
  const raw = await cloud.call('POST', '/image/v2/images', { token: a.token, raw: '{oops', headers: { 'Content-Type': 'application/json' } });
  assert.equal(raw.status, 400);
  for (const bad of ['"string"', '[]', JSON.stringify({ name: 'a\u0000b' }), JSON.stringify({ ['k\u0000']: 'v' })]) {
    const r = await cloud.call('POST', '/image/v2/images', { token: a.token, raw: bad, headers: { 'Content-Type': 'application/json' } });
    assert.equal(r.status, 400, bad);
  }
  assert.equal((await img('GET', '/images?name=%00')).status, 400, 'NUL characters are refused, never stored');
  const many: Record<string, string> = {};
  for (let i = 0; i < 129; i++) many[`p${i}`] = 'v';
  assert.equal((await cloud.call('POST', '/image/v2/images', { token: a.token, body: many })).status, 413);
  assert.equal((await cloud.call('POST', '/image/v2/images', { body: {} })).status, 401);

  // An id may be chosen, but never reused (not even after deletion).
  const id = '7a1b3b8e-1f5f-4c1e-9d43-0c0ad0e3c001';
  assert.equal((await create({ id })).id, id);
  assert.equal((await cloud.call('POST', '/image/v2/images', { token: a.token, body: { id } })).status, 409);
  assert.equal((await img('DELETE', `/images/${id}`)).status, 204);
  assert.equal((await cloud.call('POST', '/image/v2/images', { token: a.token, body: { id } })).status, 409);
});

test('delete: protected images stay; deleted ones are gone with their data', async () => {
  const image = await create({ protected: true });
  assert.equal((await upload(image.id, [Buffer.from('payload')])).status, 204);
  const refused = await img('DELETE', `/images/${image.id}`);
  assert.equal(refused.status, 403);
  assert.match(refused.body.message, /is protected and cannot be deleted/);
  assert.equal((await patch(image.id, [{ op: 'replace', path: '/protected', value: false }])).status, 200);
  assert.ok((await imageFiles()).some((f) => f.endsWith(image.id)));
  assert.equal((await img('DELETE', `/images/${image.id}`)).status, 204);
  assert.equal((await img('GET', `/images/${image.id}`)).status, 404);
  assert.equal((await img('DELETE', `/images/${image.id}`)).status, 404);
  assert.equal((await img('GET', `/images/${image.id}/file`)).status, 404);
  assert.ok(!(await imageFiles()).some((f) => f.endsWith(image.id)));
  assert.equal((await img('GET', '/images/00000000-0000-0000-0000-000000000000')).status, 404);
  assert.equal((await img('GET', '/images/')).status, 404, 'show of an empty id');
});

test('deactivate and reactivate', async () => {
  const image = await create();
  assert.equal((await img('POST', `/images/${image.id}/actions/deactivate`)).status, 403, 'queued image');
  assert.equal((await upload(image.id, [Buffer.from('bytes')])).status, 204);
  assert.equal((await img('POST', `/images/${image.id}/actions/deactivate`)).status, 204);
  assert.equal((await img('GET', `/images/${image.id}`)).body.status, 'deactivated');
  assert.equal((await img('GET', `/images/${image.id}/file`)).status, 403);
  const asAdmin = await cloud.call('GET', `/image/v2/images/${image.id}/file`, { token: cloud.adminToken });
  assert.equal(asAdmin.status, 200);
  assert.equal((await img('POST', `/images/${image.id}/actions/reactivate`)).status, 204);
  assert.equal((await img('GET', `/images/${image.id}/file`)).body, 'bytes');
});

test('list: filters, sorting, pagination', async () => {
  const t = await tenant(cloud);
  const mk = async (name: string, size: number, extra: Record<string, unknown> = {}) => {
    const i = await create({ name, ...extra }, t.token);
    if (size >= 0) assert.equal((await upload(i.id, [randomBytes(size)], t.token)).status, 204);
    return i.id as string;
  };
  const small = await mk('small', 100, { tags: ['red'], color: 'red' });
  const mid = await mk('mid', 2000, { disk_format: 'qcow2', tags: ['red', 'blue'] });
  const big = await mk('big', 5000, { container_format: 'ova' });
  const queued = await mk('empty', -1);
  const hidden = await mk('hidden', 10, { os_hidden: true });
  const list = async (q: string) => {
    const r = await cloud.call('GET', `/image/v2/images${q}`, { token: t.token });
    assert.equal(r.status, 200, `${q}: ${JSON.stringify(r.body)}`);
    return r.body;
  };
  const ids = async (q: string) => (await list(q)).images.map((i: { id: string }) => i.id);

  const all = await list('');
  assert.equal(all.first, '/v2/images');
  assert.equal(all.schema, '/v2/schemas/images');
  assert.deepEqual(all.images.map((i: { id: string }) => i.id), [queued, big, mid, small], 'newest first, hidden left out');
  assert.deepEqual(await ids('?os_hidden=true'), [hidden]);
  assert.deepEqual(await ids('?name=mid'), [mid]);
  assert.deepEqual(await ids('?name=in:small,big'), [big, small]);
  assert.deepEqual(await ids('?status=queued'), [queued]);
  assert.deepEqual(await ids('?disk_format=qcow2'), [mid]);
  assert.deepEqual(await ids('?container_format=ova'), [big]);
  assert.deepEqual(await ids('?tag=red'), [mid, small]);
  assert.deepEqual(await ids('?tag=red&tag=blue'), [mid]);
  assert.deepEqual(await ids('?color=red'), [small], 'extra property filter');
  assert.deepEqual(await ids('?size_min=1000&size_max=3000'), [mid]);
  assert.deepEqual(await ids('?size=5000'), [big]);
  assert.deepEqual(await ids(`?owner=${t.projectId}&visibility=shared&protected=false`), [queued, big, mid, small]);
  assert.deepEqual(await ids('?sort=size:asc'), [queued, small, mid, big]);
  assert.deepEqual(await ids('?sort_key=size&sort_dir=desc'), [big, mid, small, queued]);
  assert.deepEqual(await ids('?sort=name:asc'), [big, queued, mid, small]);
  assert.deepEqual(await ids('?created_at=gte:2000-01-01T00:00:00Z&sort=name:asc'), [big, queued, mid, small]);
  assert.deepEqual(await ids('?updated_at=lt:2000-01-01T00:00:00Z'), []);

  const p1 = await list('?limit=2&sort=name:asc');
  assert.deepEqual(p1.images.map((i: { id: string }) => i.id), [big, queued]);
  assert.equal(p1.first, '/v2/images?limit=2&sort=name%3Aasc');
  assert.match(p1.next, new RegExp(`^/v2/images\\?limit=2&sort=name%3Aasc&marker=${queued}$`));
  const p2 = await list(p1.next.slice('/v2/images'.length));
  assert.deepEqual(p2.images.map((i: { id: string }) => i.id), [mid, small]);
  const p3 = await list(p2.next.slice('/v2/images'.length));
  assert.deepEqual(p3.images, []);
  assert.equal(p3.next, undefined);

  for (const q of ['?limit=x', '?limit=-1', '?sort_key=bogus', '?sort_dir=up', '?sort=name:up', '?sort=name&sort_key=size',
    '?visibility=bogus', '?member_status=bogus', '?os_hidden=maybe', '?protected=1', '?size_min=x', '?marker=nope',
    '?created_at=gt:yesterday', '?name=gt:x', '?changes-since=2020-01-01']) {
    const r = await cloud.call('GET', `/image/v2/images${q}`, { token: t.token });
    assert.equal(r.status, 400, q);
    assert.equal(r.body.code, '400 Bad Request');
  }
});
