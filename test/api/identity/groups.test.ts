import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useCloud } from '../../harness.ts';
import { mustCreateResource, V3, type Resource } from './lib.ts';

let admin: string;
const cloud = useCloud(async (cloud) => { admin = cloud.adminToken; });

const mustCreate = (kind: Resource, body?: Record<string, unknown>) => mustCreateResource(cloud, kind, body);
async function grantGroup(groupId: string, projectId: string) {
  const db = cloud.server.database.db;
  const role = await db.selectFrom('identity_roles').select('id').where('name', '=', 'member').executeTakeFirstOrThrow();
  await db.insertInto('identity_assignments').values({ type: 'GroupProject', actor_id: groupId, target_id: projectId, role_id: role.id, inherited: 0 }).execute();
}
const valid = async (token: string) =>
  (await cloud.call('GET', `${V3}/auth/tokens`, { token: admin, headers: { 'X-Subject-Token': token } })).status === 200;

test('create, show, list, update and delete a group', async () => {
  const dom = await mustCreate('domain');
  const g = await mustCreate('group', { domain_id: dom.id, description: 'desc', kind: 'ops' });
  assert.equal(g.domain_id, dom.id);
  assert.equal(g.description, 'desc');
  assert.equal(g.kind, 'ops');
  assert.match(g.links.self, new RegExp(`/identity/v3/groups/${g.id}$`));
  assert.deepEqual((await cloud.call('GET', `${V3}/groups/${g.id}`, { token: admin })).body.group, g);
  const d = await mustCreate('group');
  assert.equal(d.domain_id, 'default');

  const ids = async (qs: string) => (await cloud.call('GET', `${V3}/groups?${qs}`, { token: admin })).body.groups.map((x: { id: string }) => x.id);
  assert.deepEqual(await ids(`domain_id=${dom.id}`), [g.id]);
  assert.deepEqual(await ids(`name=${d.name}`), [d.id]);
  assert.ok((await ids('')).includes(g.id));

  const upd = await cloud.call('PATCH', `${V3}/groups/${g.id}`, { token: admin, body: { group: { name: 'x' + g.name } } });
  assert.equal(upd.status, 200);
  assert.equal(upd.body.group.description, 'desc', 'untouched fields stay');
  assert.equal(upd.body.group.domain_id, dom.id);
  assert.equal((await cloud.call('DELETE', `${V3}/groups/${g.id}`, { token: admin })).status, 204);
  assert.equal((await cloud.call('GET', `${V3}/groups/${g.id}`, { token: admin })).status, 404);
  assert.equal((await cloud.call('DELETE', `${V3}/groups/${g.id}`, { token: admin })).status, 404);
});

test('bad input and non-admin callers', async () => {
  for (const name of ['', ' ', 'a'.repeat(256)]) {
    const r = await cloud.call('POST', `${V3}/groups`, { token: admin, body: { group: { name } } });
    assert.equal(r.status, 400, JSON.stringify(name));
  }
  const missingDomain = await cloud.call('POST', `${V3}/groups`, { token: admin, body: { group: { name: 'x', domain_id: 'nope' } } });
  assert.equal(missingDomain.status, 404);
  const g = await mustCreate('group');
  assert.equal((await cloud.call('POST', `${V3}/groups`, { token: admin, body: { group: { name: g.name } } })).status, 409);
  const h = await mustCreate('group');
  assert.equal((await cloud.call('PATCH', `${V3}/groups/${h.id}`, { token: admin, body: { group: { name: g.name } } })).status, 409);
  assert.equal((await cloud.call('PATCH', `${V3}/groups/${h.id}`, { token: admin, body: { group: { domain_id: 'other' } } })).status, 400);
  assert.equal((await cloud.call('PATCH', `${V3}/groups/${h.id}`, { token: admin, body: { group: {} } })).status, 400);

  const p = await mustCreate('project');
  const u = await mustCreate('user', { password: 'pw-grp-1' });
  await cloud.server.database.db.insertInto('identity_group_members').values({ group_id: h.id, user_id: u.id }).execute();
  await grantGroup(h.id, p.id);
  const tok = await cloud.login(u.name, 'pw-grp-1', p.id);
  assert.equal((await cloud.call('GET', `${V3}/groups`, { token: tok })).status, 403);
  assert.equal((await cloud.call('POST', `${V3}/groups`, { token: tok, body: { group: { name: 'mine' } } })).status, 403);
  assert.equal((await cloud.call('PUT', `${V3}/groups/${h.id}/users/${u.id}`, { token: tok })).status, 403);
  assert.equal((await cloud.call('DELETE', `${V3}/groups/${h.id}`, { token: tok })).status, 403);
  // A user may list their own groups.
  const mine = await cloud.call('GET', `${V3}/users/${u.id}/groups`, { token: tok });
  assert.equal(mine.status, 200);
  assert.deepEqual(mine.body.groups.map((x: { id: string }) => x.id), [h.id]);
});

test('membership: add, check, list, remove; removal revokes the member tokens', async () => {
  const dom = await mustCreate('domain');
  const g = await mustCreate('group', { domain_id: dom.id });
  const users = [await mustCreate('user', { email: 'a@x' }), await mustCreate('user', { password: 'pw-mem-1' })];
  for (const u of users) {
    const r = await cloud.call('PUT', `${V3}/groups/${g.id}/users/${u.id}`, { token: admin });
    assert.equal(r.status, 204, 'a user of another domain may join');
  }
  assert.equal((await cloud.call('PUT', `${V3}/groups/${g.id}/users/${users[0].id}`, { token: admin })).status, 204, 'idempotent');
  assert.equal((await cloud.call('PUT', `${V3}/groups/${g.id}/users/nope`, { token: admin })).status, 404);
  assert.equal((await cloud.call('PUT', `${V3}/groups/nope/users/${users[0].id}`, { token: admin })).status, 404);

  const listed = await cloud.call('GET', `${V3}/groups/${g.id}/users`, { token: admin });
  assert.equal(listed.status, 200);
  const byName = (a: { name: string }, b: { name: string }) => a.name.localeCompare(b.name);
  assert.deepEqual([...listed.body.users].sort(byName), [...users].sort(byName), 'members render as users do');
  assert.equal((await cloud.call('HEAD', `${V3}/groups/${g.id}/users/${users[0].id}`, { token: admin })).status, 204);
  assert.equal((await cloud.call('GET', `${V3}/groups/${g.id}/users/${users[0].id}`, { token: admin })).status, 204);
  const outsider = await mustCreate('user');
  assert.equal((await cloud.call('HEAD', `${V3}/groups/${g.id}/users/${outsider.id}`, { token: admin })).status, 404);
  assert.equal((await cloud.call('GET', `${V3}/groups/${g.id}/users/${outsider.id}`, { token: admin })).status, 404);
  assert.equal((await cloud.call('DELETE', `${V3}/groups/${g.id}/users/${outsider.id}`, { token: admin })).status, 404);

  const ug = await cloud.call('GET', `${V3}/users/${users[0].id}/groups`, { token: admin });
  assert.equal(ug.status, 200);
  assert.deepEqual(ug.body.groups, [{ ...g, membership_expires_at: null }]);

  // A role through the group: removing the member revokes their token.
  const p = await mustCreate('project', { domain_id: dom.id });
  await grantGroup(g.id, p.id);
  const tok = (await cloud.call('POST', `${V3}/auth/tokens`, { body: { auth: {
    identity: { methods: ['password'], password: { user: { id: users[1].id, password: 'pw-mem-1' } } }, scope: { project: { id: p.id } } } } }));
  assert.equal(tok.status, 201);
  const token = tok.headers.get('x-subject-token')!;
  assert.ok(await valid(token));
  assert.equal((await cloud.call('DELETE', `${V3}/groups/${g.id}/users/${users[1].id}`, { token: admin })).status, 204);
  assert.equal(await valid(token), false);
  const left = await cloud.call('GET', `${V3}/groups/${g.id}/users`, { token: admin });
  assert.deepEqual(left.body.users.map((x: { id: string }) => x.id), [users[0].id]);
});

test('deleting a group removes its memberships and roles and revokes its members', async () => {
  const g = await mustCreate('group');
  const u = await mustCreate('user', { password: 'pw-del-1' });
  const p = await mustCreate('project');
  assert.equal((await cloud.call('PUT', `${V3}/groups/${g.id}/users/${u.id}`, { token: admin })).status, 204);
  await grantGroup(g.id, p.id);
  const token = await cloud.login(u.name, 'pw-del-1', p.id);
  assert.equal((await cloud.call('DELETE', `${V3}/groups/${g.id}`, { token: admin })).status, 204);
  assert.equal(await valid(token), false);
  const db = cloud.server.database.db;
  assert.equal((await db.selectFrom('identity_assignments').select('role_id').where('actor_id', '=', g.id).execute()).length, 0);
  assert.equal((await db.selectFrom('identity_group_members').select('user_id').where('group_id', '=', g.id).execute()).length, 0);
  const relogin = await cloud.call('POST', `${V3}/auth/tokens`, { body: { auth: {
    identity: { methods: ['password'], password: { user: { id: u.id, password: 'pw-del-1' } } }, scope: { project: { id: p.id } } } } });
  assert.equal(relogin.status, 401, 'the role came from the group only');
  assert.deepEqual((await cloud.call('GET', `${V3}/users/${u.id}/groups`, { token: admin })).body.groups, []);
});
