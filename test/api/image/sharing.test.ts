// Visibility between projects and the members API: private, shared (with
// member_status), public (admin only) and community images.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tenant, useCloud, type Tenant } from '../../harness.ts';
import { PATCH } from './fixtures.ts';

let owner: Tenant;
let other: Tenant;
let third: Tenant;

const cloud = useCloud(async (cloud) => {
  owner = await tenant(cloud);
  other = await tenant(cloud);
  third = await tenant(cloud);
});

const call = (t: Tenant | string, method: string, path: string, body?: unknown) =>
  cloud.call(method, `/image/v2${path}`, { token: typeof t === 'string' ? t : t.token, body });
const create = async (t: Tenant | string, body: Record<string, unknown> = {}) => {
  const r = await call(t, 'POST', '/images', { disk_format: 'raw', container_format: 'bare', ...body });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body.id as string;
};
const listIds = async (t: Tenant | string, q = '') => {
  const r = await call(t, 'GET', `/images${q}`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.images.map((i: { id: string }) => i.id) as string[];
};

test('a private image is invisible to other projects', async () => {
  const id = await create(owner, { visibility: 'private' });
  assert.ok((await listIds(owner)).includes(id));
  assert.ok(!(await listIds(other)).includes(id));
  assert.ok(!(await listIds(other, '?visibility=all')).includes(id));
  for (const [m, p, body] of [
    ['GET', `/images/${id}`], ['GET', `/images/${id}/file`], ['DELETE', `/images/${id}`], ['PUT', `/images/${id}/tags/x`],
    ['POST', `/images/${id}/members`, { member: other.projectId }], ['GET', `/images/${id}/members`],
  ] as Array<[string, string, unknown?]>) {
    const r = await call(other, m, p, body);
    assert.equal(r.status, 404, `${m} ${p}`);
  }
  const upd = await cloud.call('PATCH', `/image/v2/images/${id}`, { token: other.token, raw: '[]', headers: PATCH });
  assert.equal(upd.status, 404);
  // The admin sees every image.
  assert.equal((await call(cloud.adminToken, 'GET', `/images/${id}`)).status, 200);
  assert.ok((await listIds(cloud.adminToken, '?limit=1000')).includes(id));
});

test('sharing: pending, accepted, rejected, removed', async () => {
  const id = await create(owner, { name: 'shared-one' });
  // Members only for shared images.
  const priv = await create(owner, { visibility: 'private' });
  assert.equal((await call(owner, 'POST', `/images/${priv}/members`, { member: other.projectId })).status, 403);
  assert.equal((await call(owner, 'GET', `/images/${priv}/members`)).status, 403);

  const add = await call(owner, 'POST', `/images/${id}/members`, { member: other.projectId });
  assert.equal(add.status, 200);
  assert.deepEqual(Object.keys(add.body).sort(), ['created_at', 'image_id', 'member_id', 'schema', 'status', 'updated_at']);
  assert.equal(add.body.status, 'pending');
  assert.equal(add.body.schema, '/v2/schemas/member');
  assert.equal((await call(owner, 'POST', `/images/${id}/members`, { member: other.projectId })).status, 409);
  for (const body of [undefined, {}, { member: '' }, ['x']]) {
    assert.equal((await call(owner, 'POST', `/images/${id}/members`, body)).status, 400, JSON.stringify(body));
  }

  // Pending: visible by id and with member_status, not in the default list.
  assert.ok(!(await listIds(other)).includes(id));
  assert.equal((await call(other, 'GET', `/images/${id}`)).status, 200);
  assert.deepEqual(await listIds(other, '?visibility=shared&member_status=pending'), [id]);
  assert.ok((await listIds(other, '?member_status=all')).includes(id));

  // Only the member decides; the owner cannot accept for it, nor can the member add others.
  const ownerAccepts = await call(owner, 'PUT', `/images/${id}/members/${other.projectId}`, { status: 'accepted' });
  assert.equal(ownerAccepts.status, 403);
  assert.equal((await call(other, 'POST', `/images/${id}/members`, { member: third.projectId })).status, 403);
  assert.equal((await call(other, 'PUT', `/images/${id}/members/${other.projectId}`, { status: 'bogus' })).status, 400);
  assert.equal((await call(other, 'PUT', `/images/${id}/members/${other.projectId}`, {})).status, 400);

  const accept = await call(other, 'PUT', `/images/${id}/members/${other.projectId}`, { status: 'accepted' });
  assert.equal(accept.status, 200);
  assert.equal(accept.body.status, 'accepted');
  assert.ok((await listIds(other)).includes(id));
  assert.deepEqual((await call(owner, 'GET', `/images/${id}/members`)).body.members.map((m: { status: string }) => m.status), ['accepted']);
  assert.equal((await call(other, 'GET', `/images/${id}/members/${other.projectId}`)).body.status, 'accepted');
  // A member may read but not change the image, nor delete members.
  const upd = await cloud.call('PATCH', `/image/v2/images/${id}`, {
    token: other.token, raw: JSON.stringify([{ op: 'replace', path: '/name', value: 'mine' }]), headers: PATCH,
  });
  assert.equal(upd.status, 403);
  assert.equal((await call(other, 'DELETE', `/images/${id}`)).status, 403);
  assert.equal((await call(other, 'DELETE', `/images/${id}/members/${other.projectId}`)).status, 403);

  // A third project sees nothing of it.
  assert.equal((await call(third, 'GET', `/images/${id}`)).status, 404);
  assert.equal((await call(third, 'GET', `/images/${id}/members/${other.projectId}`)).status, 404);

  // The owner sees every member; a member only itself.
  assert.equal((await call(owner, 'POST', `/images/${id}/members`, { member: third.projectId })).status, 200);
  assert.equal((await call(owner, 'GET', `/images/${id}/members`)).body.members.length, 2);
  assert.deepEqual((await call(other, 'GET', `/images/${id}/members`)).body.members.map((m: { member_id: string }) => m.member_id), [other.projectId]);

  const reject = await call(other, 'PUT', `/images/${id}/members/${other.projectId}`, { status: 'rejected' });
  assert.equal(reject.status, 200);
  assert.ok(!(await listIds(other)).includes(id));
  assert.deepEqual(await listIds(other, '?member_status=rejected&visibility=shared'), [id]);

  assert.equal((await call(owner, 'DELETE', `/images/${id}/members/${other.projectId}`)).status, 204);
  assert.equal((await call(owner, 'DELETE', `/images/${id}/members/${other.projectId}`)).status, 404);
  assert.equal((await call(other, 'GET', `/images/${id}`)).status, 404);
  assert.equal((await call(owner, 'GET', `/images/${id}/members/nobody`)).status, 404);
});

test('public images: only admins publish; everyone sees them', async () => {
  assert.equal((await call(owner, 'POST', '/images', { visibility: 'public' })).status, 403);
  const id = await create(cloud.adminToken, { visibility: 'public', name: 'pub' });
  assert.ok((await listIds(other)).includes(id));
  assert.ok((await listIds(other, '?visibility=public')).includes(id));
  assert.ok(!(await listIds(other, '?visibility=private')).includes(id));
  assert.equal((await call(other, 'GET', `/images/${id}`)).status, 200);
  // Readable by all, changeable by none but admins.
  assert.equal((await call(other, 'DELETE', `/images/${id}`)).status, 403);
  const own = await create(owner);
  const pub = await cloud.call('PATCH', `/image/v2/images/${own}`, {
    token: owner.token, raw: JSON.stringify([{ op: 'replace', path: '/visibility', value: 'public' }]), headers: PATCH,
  });
  assert.equal(pub.status, 403);
  const byAdmin = await cloud.call('PATCH', `/image/v2/images/${own}`, {
    token: cloud.adminToken, raw: JSON.stringify([{ op: 'replace', path: '/visibility', value: 'public' }]), headers: PATCH,
  });
  assert.equal(byAdmin.status, 200);
  assert.equal((await call(other, 'GET', `/images/${own}`)).body.visibility, 'public');
});

test('community images: listed only when asked for, or by their owner', async () => {
  const id = await create(owner, { visibility: 'community' });
  assert.ok((await listIds(owner)).includes(id), 'the owner lists its community images');
  assert.ok(!(await listIds(other)).includes(id));
  assert.ok((await listIds(other, '?visibility=community')).includes(id));
  assert.equal((await call(other, 'GET', `/images/${id}`)).status, 200);
  assert.equal((await call(other, 'GET', `/images/${id}/file`)).status, 204);
});

test('admin creates images for another project; owner changes only by admin', async () => {
  const id = await create(cloud.adminToken, { owner: owner.projectId, visibility: 'private' });
  assert.ok((await listIds(owner)).includes(id));
  const r = await cloud.call('PATCH', `/image/v2/images/${id}`, {
    token: cloud.adminToken, raw: JSON.stringify([{ op: 'replace', path: '/owner', value: other.projectId }]), headers: PATCH,
  });
  assert.equal(r.status, 200);
  assert.equal(r.body.owner, other.projectId);
  assert.ok(!(await listIds(owner)).includes(id));
  assert.ok((await listIds(other)).includes(id));
});

test('a reader may look but not create', async () => {
  const reader = await tenant(cloud, ['reader']);
  assert.equal((await call(reader, 'GET', '/images')).status, 200);
  assert.equal((await call(reader, 'POST', '/images', { name: 'x' })).status, 403);
});
