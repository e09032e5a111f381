import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startCloud, uniqueName, useCloud } from '../../harness.ts';
import { createResource, mustCreateResource, V3 } from './lib.ts';

let admin: string;
const cloud = useCloud(async (cloud) => { admin = cloud.adminToken; });

const createUser = (user: Record<string, unknown>, token?: string) => createResource(cloud, 'user', user, token);
const mustCreateUser = (user?: Record<string, unknown>) => mustCreateResource(cloud, 'user', user);
const mustCreateProject = (body?: Record<string, unknown>) => mustCreateResource(cloud, 'project', body);
async function grant(type: string, actor: string, target: string, role = 'member', inherited = 0) {
  const db = cloud.server.database.db;
  const r = await db.selectFrom('identity_roles').select('id').where('name', '=', role).executeTakeFirstOrThrow();
  await db.insertInto('identity_assignments').values({ type, actor_id: actor, target_id: target, role_id: r.id, inherited }).execute();
}
async function tokenFor(userId: string, password: string, projectId?: string) {
  return cloud.call('POST', `${V3}/auth/tokens`, { body: { auth: {
    identity: { methods: ['password'], password: { user: { id: userId, password } } },
    ...(projectId ? { scope: { project: { id: projectId } } } : {}),
  } } });
}
async function mustToken(userId: string, password: string, projectId?: string): Promise<string> {
  const r = await tokenFor(userId, password, projectId);
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.headers.get('x-subject-token')!;
}
const valid = async (token: string) =>
  (await cloud.call('GET', `${V3}/auth/tokens`, { token: admin, headers: { 'X-Subject-Token': token } })).status === 200;

test('create, show, list, update and delete a user; no password in any answer', async () => {
  const u = await mustCreateUser({ password: 'secret-pw-1', email: 'a@example.com', description: 'desc', project_id: 'p1', enabled: false });
  assert.equal(u.domain_id, 'default');
  assert.equal(u.enabled, false);
  assert.equal(u.email, 'a@example.com');
  assert.equal(u.description, 'desc');
  assert.equal(u.project_id, 'p1');
  assert.equal(u.password_expires_at, null);
  assert.deepEqual(u.options, {});
  assert.equal(u.default_project_id, undefined);
  assert.match(u.links.self, new RegExp(`/identity/v3/users/${u.id}$`));
  assert.doesNotMatch(JSON.stringify(u), /secret-pw-1|argon2|password"/);

  const shown = await cloud.call('GET', `${V3}/users/${u.id}`, { token: admin });
  assert.deepEqual(shown.body.user, u);
  const listed = await cloud.call('GET', `${V3}/users`, { token: admin });
  assert.deepEqual(listed.body.users.find((x: { id: string }) => x.id === u.id), u);
  assert.doesNotMatch(JSON.stringify(listed.body), /argon2/);

  const p = await mustCreateProject();
  const upd = await cloud.call('PATCH', `${V3}/users/${u.id}`, { token: admin, body: { user: { name: 'x' + u.name, email: 'b@example.com', default_project_id: p.id, enabled: true } } });
  assert.equal(upd.status, 200);
  assert.equal(upd.body.user.email, 'b@example.com');
  assert.equal(upd.body.user.description, 'desc');
  assert.equal(upd.body.user.default_project_id, p.id);
  assert.equal((await cloud.call('GET', `${V3}/users/${u.id}`, { token: admin })).body.user.name, 'x' + u.name);

  assert.equal((await cloud.call('DELETE', `${V3}/users/${u.id}`, { token: admin })).status, 204);
  const gone = await cloud.call('GET', `${V3}/users/${u.id}`, { token: admin });
  assert.equal(gone.status, 404);
  assert.equal(gone.body.error.message, `Could not find user: ${u.id}.`);
  assert.equal((await cloud.call('DELETE', `${V3}/users/${u.id}`, { token: admin })).status, 404);
});

test('bad input: names, domains, options, duplicates, immutable fields', async () => {
  for (const name of ['', 'a'.repeat(256), '  ']) assert.equal((await createUser({ name })).status, 400, JSON.stringify(name));
  const noDomain = await createUser({ domain_id: 'nope' });
  assert.equal(noDomain.status, 404);
  assert.equal(noDomain.body.error.message, 'Could not find domain: nope.');
  assert.equal((await createUser({ options: { bogus: true } })).status, 400);
  assert.equal((await createUser({ options: { lock_password: 'yes' } })).status, 400);
  assert.equal((await createUser({ options: { multi_factor_auth_rules: [[]] } })).status, 400);
  assert.equal((await createUser({ options: { multi_factor_auth_rules: [['password', 'password']] } })).status, 400);
  assert.equal((await createUser({ password: 12 })).status, 400);
  assert.equal((await createUser({ default_project_id: 'default' })).status, 400, 'a domain is no default project');
  const ok = await mustCreateUser({ options: { multi_factor_auth_rules: [['password', 'totp']], lock_password: true, ignore_password_expiry: false } });
  assert.deepEqual(ok.options, { multi_factor_auth_rules: [['password', 'totp']], lock_password: true, ignore_password_expiry: false });
  const unset = await cloud.call('PATCH', `${V3}/users/${ok.id}`, { token: admin, body: { user: { options: { lock_password: null } } } });
  assert.deepEqual(unset.body.user.options, { multi_factor_auth_rules: [['password', 'totp']], ignore_password_expiry: false });

  const dup = await createUser({ name: ok.name });
  assert.equal(dup.status, 409);
  const other = await cloud.call('POST', `${V3}/domains`, { token: admin, body: { domain: { name: uniqueName('d') } } });
  assert.equal((await createUser({ name: ok.name, domain_id: other.body.domain.id })).status, 201);
  const second = await mustCreateUser();
  assert.equal((await cloud.call('PATCH', `${V3}/users/${second.id}`, { token: admin, body: { user: { name: ok.name } } })).status, 409);
  assert.equal((await cloud.call('PATCH', `${V3}/users/${second.id}`, { token: admin, body: { user: { domain_id: other.body.domain.id } } })).status, 400);
  assert.equal((await cloud.call('PATCH', `${V3}/users/${second.id}`, { token: admin, body: { user: {} } })).status, 400);
  assert.equal((await cloud.call('PATCH', `${V3}/users/nope`, { token: admin, body: { user: { name: 'x' } } })).status, 404);
});

test('list filters: name, domain_id, enabled', async () => {
  const other = (await cloud.call('POST', `${V3}/domains`, { token: admin, body: { domain: { name: uniqueName('d') } } })).body.domain;
  const a = await mustCreateUser({ domain_id: other.id });
  const b = await mustCreateUser({ enabled: false });
  const ids = async (qs: string) => (await cloud.call('GET', `${V3}/users?${qs}`, { token: admin })).body.users.map((x: { id: string }) => x.id);
  assert.deepEqual(await ids(`domain_id=${other.id}`), [a.id]);
  assert.deepEqual(await ids(`name=${a.name}`), [a.id]);
  assert.ok((await ids('enabled=false')).includes(b.id));
  assert.ok(!(await ids('enabled=false')).includes(a.id));
  assert.equal((await cloud.call('GET', `${V3}/users?password_expires_at=bogus:2020-01-01T00:00:00Z`, { token: admin })).status, 400);
  assert.equal((await cloud.call('GET', `${V3}/users?password_expires_at=lt:notatime`, { token: admin })).status, 400);
});

test('an admin password reset revokes the tokens; the old password stops working', async () => {
  const p = await mustCreateProject();
  const u = await mustCreateUser({ password: 'first-pw-1' });
  await grant('UserProject', u.id, p.id);
  const before = await mustToken(u.id, 'first-pw-1', p.id);
  const r = await cloud.call('PATCH', `${V3}/users/${u.id}`, { token: admin, body: { user: { password: 'second-pw-2' } } });
  assert.equal(r.status, 200);
  assert.doesNotMatch(JSON.stringify(r.body), /second-pw-2/);
  assert.equal(await valid(before), false);
  assert.equal((await tokenFor(u.id, 'first-pw-1')).status, 401);
  assert.ok(await valid(await mustToken(u.id, 'second-pw-2', p.id)));
  // Updating something else leaves tokens alone.
  const keep = await mustToken(u.id, 'second-pw-2', p.id);
  await cloud.call('PATCH', `${V3}/users/${u.id}`, { token: admin, body: { user: { email: 'x@example.com' } } });
  assert.ok(await valid(keep));
});

test('self-service password change', async () => {
  const p = await mustCreateProject();
  const u = await mustCreateUser({ password: 'own-pw-1' });
  await grant('UserProject', u.id, p.id);
  const tok = await mustToken(u.id, 'own-pw-1', p.id);
  const url = `${V3}/users/${u.id}/password`;
  const wrong = await cloud.call('POST', url, { token: tok, body: { user: { original_password: 'nope', password: 'own-pw-2' } } });
  assert.equal(wrong.status, 401);
  assert.doesNotMatch(JSON.stringify(wrong.body), /nope|own-pw/);
  assert.equal((await cloud.call('POST', url, { token: tok, body: { user: { password: 'own-pw-2' } } })).status, 400);
  assert.equal((await cloud.call('POST', url, { token: tok, body: { user: { original_password: 'own-pw-1', password: 'own-pw-2', extra: 1 } } })).status, 400);
  assert.equal((await cloud.call('POST', `${V3}/users/nobody/password`, { body: { user: { original_password: 'a', password: 'b' } } })).status, 401);
  assert.ok(await valid(tok));

  const ok = await cloud.call('POST', url, { token: tok, body: { user: { original_password: 'own-pw-1', password: 'own-pw-2' } } });
  assert.equal(ok.status, 204);
  assert.equal(await valid(tok), false, 'the old token is revoked');
  assert.equal((await tokenFor(u.id, 'own-pw-1')).status, 401);
  await mustToken(u.id, 'own-pw-2');
  // Without a token too (a user whose password expired has none), and by an admin knowing it.
  assert.equal((await cloud.call('POST', url, { body: { user: { original_password: 'own-pw-2', password: 'own-pw-3' } } })).status, 204);
  assert.equal((await cloud.call('POST', url, { token: admin, body: { user: { original_password: 'own-pw-3', password: 'own-pw-4' } } })).status, 204);

  // lock_password forbids the self-service change, not the admin reset.
  await cloud.call('PATCH', `${V3}/users/${u.id}`, { token: admin, body: { user: { options: { lock_password: true } } } });
  const locked = await cloud.call('POST', url, { body: { user: { original_password: 'own-pw-4', password: 'own-pw-5' } } });
  assert.equal(locked.status, 403);
  assert.equal((await cloud.call('PATCH', `${V3}/users/${u.id}`, { token: admin, body: { user: { password: 'own-pw-5' } } })).status, 200);
  await mustToken(u.id, 'own-pw-5');
});

test('disabling a user revokes their tokens; delete removes what is theirs', async () => {
  const p = await mustCreateProject();
  const u = await mustCreateUser({ password: 'pw-abc-1' });
  await grant('UserProject', u.id, p.id);
  const tok = await mustToken(u.id, 'pw-abc-1', p.id);
  assert.equal((await cloud.call('PATCH', `${V3}/users/${u.id}`, { token: admin, body: { user: { enabled: false } } })).status, 200);
  assert.equal(await valid(tok), false);
  assert.equal((await tokenFor(u.id, 'pw-abc-1')).status, 401);
  await cloud.call('PATCH', `${V3}/users/${u.id}`, { token: admin, body: { user: { enabled: true } } });
  const again = await mustToken(u.id, 'pw-abc-1', p.id);

  const db = cloud.server.database.db;
  const g = await cloud.call('POST', `${V3}/groups`, { token: admin, body: { group: { name: uniqueName('g') } } });
  await db.insertInto('identity_group_members').values({ group_id: g.body.group.id, user_id: u.id }).execute();
  await db.insertInto('identity_trusts').values({
    id: 'trust-' + u.id, trustor_user_id: u.id, trustee_user_id: 'someone', project_id: p.id, impersonation: 0, expires_at: null,
    remaining_uses: null, roles: '[]', redelegated_trust_id: null, redelegation_count: 0, deleted_at: null, extra: '{}', created_at: new Date().toISOString(),
  }).execute();
  assert.equal((await cloud.call('DELETE', `${V3}/users/${u.id}`, { token: admin })).status, 204);
  assert.equal(await valid(again), false);
  assert.equal((await db.selectFrom('identity_assignments').select('role_id').where('actor_id', '=', u.id).execute()).length, 0);
  assert.equal((await db.selectFrom('identity_group_members').select('user_id').where('user_id', '=', u.id).execute()).length, 0);
  assert.equal((await db.selectFrom('identity_password_history').select('id').where('user_id', '=', u.id).execute()).length, 0);
  const trust = await db.selectFrom('identity_trusts').select('deleted_at').where('id', '=', 'trust-' + u.id).executeTakeFirstOrThrow();
  assert.ok(trust.deleted_at);
});

test("a user's projects: direct, through a group, inherited", async () => {
  const dom = (await cloud.call('POST', `${V3}/domains`, { token: admin, body: { domain: { name: uniqueName('d') } } })).body.domain;
  const direct = await mustCreateProject();
  const viaGroup = await mustCreateProject({ enabled: false });
  const parent = await mustCreateProject();
  const child = await mustCreateProject({ parent_id: parent.id });
  const inDomain = await mustCreateProject({ domain_id: dom.id });
  await mustCreateProject();
  const u = await mustCreateUser({ password: 'pw-proj-1' });
  const g = (await cloud.call('POST', `${V3}/groups`, { token: admin, body: { group: { name: uniqueName('g') } } })).body.group;
  await cloud.server.database.db.insertInto('identity_group_members').values({ group_id: g.id, user_id: u.id }).execute();
  await grant('UserProject', u.id, direct.id);
  await grant('GroupProject', g.id, viaGroup.id);
  await grant('UserProject', u.id, parent.id, 'member', 1);
  await grant('GroupDomain', g.id, dom.id, 'reader', 1);
  const r = await cloud.call('GET', `${V3}/users/${u.id}/projects`, { token: admin });
  assert.equal(r.status, 200);
  assert.deepEqual(r.body.projects.map((p: { id: string }) => p.id).sort(), [direct.id, viaGroup.id, child.id, inDomain.id].sort());
  const enabledOnly = await cloud.call('GET', `${V3}/users/${u.id}/projects?enabled=true`, { token: admin });
  assert.ok(!enabledOnly.body.projects.some((p: { id: string }) => p.id === viaGroup.id));

  // The user may list their own projects, not another's; nor list or change users.
  const tok = await mustToken(u.id, 'pw-proj-1', direct.id);
  assert.equal((await cloud.call('GET', `${V3}/users/${u.id}/projects`, { token: tok })).status, 200);
  assert.equal((await cloud.call('GET', `${V3}/users/${u.id}`, { token: tok })).status, 200);
  const other = await mustCreateUser();
  assert.equal((await cloud.call('GET', `${V3}/users/${other.id}/projects`, { token: tok })).status, 403);
  assert.equal((await cloud.call('GET', `${V3}/users/${other.id}`, { token: tok })).status, 403);
  assert.equal((await cloud.call('GET', `${V3}/users`, { token: tok })).status, 403);
  assert.equal((await createUser({}, tok)).status, 403);
  assert.equal((await cloud.call('PATCH', `${V3}/users/${u.id}`, { token: tok, body: { user: { enabled: true } } })).status, 403);
  assert.equal((await cloud.call('DELETE', `${V3}/users/${other.id}`, { token: tok })).status, 403);
  assert.equal((await cloud.call('GET', `${V3}/users/nope/projects`, { token: admin })).status, 404);
});

test('password expiry and lockout follow the configuration', async () => {
  const c2 = await startCloud({ identity: { passwordExpiresDays: 10, lockoutFailureAttempts: 2, lockoutDuration: 600 } });
  try {
    const mk = await c2.call('POST', `${V3}/users`, { token: c2.adminToken, body: { user: { name: 'exp', password: 'pw-exp-1' } } });
    assert.equal(mk.status, 201);
    const u = mk.body.user;
    const exp = Date.parse(u.password_expires_at);
    assert.ok(Math.abs(exp - (Date.now() + 10 * 86400_000)) < 60_000, u.password_expires_at);
    assert.match(u.password_expires_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000000Z$/);
    const exempt = await c2.call('POST', `${V3}/users`, { token: c2.adminToken, body: { user: { name: 'exempt', password: 'pw', options: { ignore_password_expiry: true } } } });
    assert.equal(exempt.body.user.password_expires_at, null);
    const q = (s: string) => c2.call('GET', `${V3}/users?password_expires_at=${s}`, { token: c2.adminToken });
    const soon = new Date(Date.now() + 86400_000).toISOString().replace(/\.\d+Z$/, 'Z');
    assert.deepEqual((await q(`gt:${soon}`)).body.users.map((x: { name: string }) => x.name), ['exp']);
    assert.deepEqual((await q(`lt:${soon}`)).body.users, []);

    // Two failures lock the account; an admin password reset unlocks it.
    const login = (password: string) => c2.call('POST', `${V3}/auth/tokens`, { body: { auth: { identity: { methods: ['password'], password: { user: { id: u.id, password } } } } } });
    assert.equal((await login('bad')).status, 401);
    assert.equal((await c2.call('POST', `${V3}/users/${u.id}/password`, { body: { user: { original_password: 'bad', password: 'x' } } })).status, 401);
    assert.equal((await login('pw-exp-1')).status, 401, 'locked');
    assert.equal((await c2.call('POST', `${V3}/users/${u.id}/password`, { body: { user: { original_password: 'pw-exp-1', password: 'x' } } })).status, 401, 'locked');
    assert.equal((await c2.call('PATCH', `${V3}/users/${u.id}`, { token: c2.adminToken, body: { user: { password: 'pw-exp-2' } } })).status, 200);
    assert.equal((await login('pw-exp-2')).status, 201);
    // Re-enabling a disabled user clears a lockout too.
    await login('bad');
    await login('bad');
    assert.equal((await login('pw-exp-2')).status, 401);
    await c2.call('PATCH', `${V3}/users/${u.id}`, { token: c2.adminToken, body: { user: { enabled: false } } });
    await c2.call('PATCH', `${V3}/users/${u.id}`, { token: c2.adminToken, body: { user: { enabled: true } } });
    assert.equal((await login('pw-exp-2')).status, 201);
  } finally {
    await c2.close();
  }
});
