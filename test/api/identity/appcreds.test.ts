import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useCloud } from '../../harness.ts';
import { fixtures, type Fixtures, type UserWithToken } from './delegation-fixtures.ts';

let fx: Fixtures;
let projectId: string;
let alice: UserWithToken;
let bob: UserWithToken;

const AC = (userId: string) => `/identity/v3/users/${userId}/application_credentials`;
const AR = (userId: string) => `/identity/v3/users/${userId}/access_rules`;

const cloud = useCloud(async (cloud) => {
  fx = fixtures(cloud);
  projectId = await fx.project();
  alice = await fx.userOn(projectId);
  bob = await fx.userOn(projectId);
});

const create = (body: Record<string, unknown>, token = alice.token, userId = alice.id) =>
  cloud.call('POST', AC(userId), { token, body: { application_credential: { name: `ac-${Math.random().toString(36).slice(2, 10)}`, ...body } } });

const authAppCred = (identity: Record<string, unknown>) =>
  cloud.call('POST', '/identity/v3/auth/tokens', { body: { auth: { identity: { methods: ['application_credential'], application_credential: identity } } } });

test('create, show, list and authenticate with an application credential', async () => {
  const r = await create({ name: 'monitoring', description: 'for the monitor' });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  const ac = r.body.application_credential;
  assert.equal(typeof ac.secret, 'string');
  assert.ok(ac.secret.length >= 32);
  assert.equal(ac.project_id, projectId);
  assert.equal(ac.unrestricted, false);
  assert.equal(ac.expires_at, null);
  assert.equal(ac.description, 'for the monitor');
  assert.deepEqual(ac.roles.map((x: { name: string }) => x.name).sort(), ['member', 'reader']);
  assert.deepEqual(ac.access_rules, []);
  assert.match(ac.links.self, new RegExp(`/v3/users/${alice.id}/application_credentials/${ac.id}$`));

  const got = await cloud.call('GET', `${AC(alice.id)}/${ac.id}`, { token: alice.token });
  assert.equal(got.status, 200);
  assert.equal(got.body.application_credential.secret, undefined, 'the secret is shown only on create');
  assert.equal(got.body.application_credential.name, 'monitoring');
  assert.equal((await cloud.call('GET', `${AC(alice.id)}/${ac.id}`, { token: cloud.adminToken })).status, 200);
  assert.equal((await cloud.call('GET', `${AC(alice.id)}/${ac.id}`, { token: bob.token })).status, 403);
  assert.equal((await cloud.call('GET', `${AC(bob.id)}/${ac.id}`, { token: bob.token })).status, 403, 'the owner decides, not the path');
  assert.equal((await cloud.call('GET', `${AC(alice.id)}/nosuch`, { token: alice.token })).status, 404);

  await create({});
  const list = await cloud.call('GET', AC(alice.id), { token: alice.token });
  assert.equal(list.status, 200);
  assert.equal(list.body.application_credentials.length, 2);
  assert.ok(list.body.application_credentials.every((x: Record<string, unknown>) => x.secret === undefined));
  const named = await cloud.call('GET', `${AC(alice.id)}?name=monitoring`, { token: alice.token });
  assert.deepEqual(named.body.application_credentials.map((x: { id: string }) => x.id), [ac.id]);
  assert.equal((await cloud.call('GET', AC(alice.id), { token: bob.token })).status, 403);

  const tok = await authAppCred({ id: ac.id, secret: ac.secret });
  assert.equal(tok.status, 201, JSON.stringify(tok.body));
  assert.equal(tok.body.token.user.id, alice.id);
  assert.equal(tok.body.token.project.id, projectId);
  assert.deepEqual(tok.body.token.application_credential, { id: ac.id, name: 'monitoring', restricted: true });
  assert.deepEqual(tok.body.token.methods, ['application_credential']);
  const byName = await authAppCred({ name: 'monitoring', secret: ac.secret, user: { name: alice.name, domain: { id: 'default' } } });
  assert.equal(byName.status, 201);
  assert.equal((await authAppCred({ id: ac.id, secret: 'wrong' })).status, 401);

  assert.equal((await create({ name: 'monitoring' })).status, 409, 'names are unique per user');
  assert.equal((await create({ name: 'monitoring' }, bob.token, bob.id)).status, 201, 'another user may use the name');
});

test('roles are a subset of the token\'s, by id or by name', async () => {
  const r = await create({ roles: [{ name: 'reader' }] });
  assert.equal(r.status, 201);
  assert.deepEqual(r.body.application_credential.roles.map((x: { name: string }) => x.name), ['reader']);
  const tok = await authAppCred({ id: r.body.application_credential.id, secret: r.body.application_credential.secret });
  assert.deepEqual(tok.body.token.roles.map((x: { name: string }) => x.name), ['reader']);

  const member = await fx.roleId('member');
  const withImplied = await create({ roles: [{ id: member }] });
  assert.deepEqual(withImplied.body.application_credential.roles.map((x: { name: string }) => x.name).sort(), ['member', 'reader']);

  assert.equal((await create({ roles: [{ name: 'admin' }] })).status, 400, 'a role the user does not hold');
  // As with Keystone's tokens, the token's roles are the user's roles now, not when it was issued.
  const later = await fx.role();
  await fx.grant(alice.id, projectId, later);
  const granted = await create({ roles: [{ id: later }] });
  assert.equal(granted.status, 201, JSON.stringify(granted.body));
  await fx.revokeGrant(alice.id, projectId, later);
  assert.equal((await create({ roles: [{ id: later }] })).status, 400, 'a role no longer held');
  assert.equal((await create({ roles: [{ name: 'no-such-role' }] })).status, 404);
  assert.equal((await create({ roles: [{ id: member, name: 'member' }] })).status, 400);
  assert.equal((await create({ roles: 'member' })).status, 400);

  // A given secret is kept; the token can't outlive the credential.
  const expires = new Date(Date.now() + 1800_000).toISOString().replace('Z', '').replace(/\.(\d{3})$/, '.$1456');
  const e = await create({ secret: 'my-own-secret', expires_at: expires });
  assert.equal(e.status, 201);
  assert.equal(e.body.application_credential.secret, 'my-own-secret');
  assert.equal(e.body.application_credential.expires_at, expires, 'Keystone echoes the expiry to the microsecond, without a Z');
  const etok = await authAppCred({ id: e.body.application_credential.id, secret: 'my-own-secret' });
  assert.equal(etok.status, 201);
  assert.ok(Date.parse(etok.body.token.expires_at) <= Date.parse(`${expires}Z`));

  for (const bad of [{ expires_at: '2001-01-01T00:00:00' }, { expires_at: 'tomorrow' }, { name: '' }, { unknown_field: 1 }, { access_rules: [{ service: 'compute', path: 'no-slash', method: 'GET' }] }]) {
    const b = await create(bad);
    assert.equal(b.status, 400, JSON.stringify(bad));
  }
  const unscoped = await fx.token(alice);
  assert.equal((await create({}, unscoped)).status, 400, 'needs a project-scoped token');
  assert.equal((await create({}, bob.token)).status, 403, 'only for oneself');
  assert.equal((await create({}, cloud.adminToken)).status, 403, 'not even an admin makes one for someone else');
});

test('restricted credentials cannot make or delete others; deleting revokes its tokens', async () => {
  const restricted = (await create({})).body.application_credential;
  const rtok = (await authAppCred({ id: restricted.id, secret: restricted.secret })).headers.get('x-subject-token')!;
  assert.equal((await create({}, rtok)).status, 403);
  assert.equal((await cloud.call('DELETE', `${AC(alice.id)}/${restricted.id}`, { token: rtok })).status, 403);
  assert.equal((await cloud.call('GET', `${AC(alice.id)}/${restricted.id}`, { token: rtok })).status, 200);

  const unrestricted = (await create({ unrestricted: true })).body.application_credential;
  assert.equal(unrestricted.unrestricted, true);
  const utok = (await authAppCred({ id: unrestricted.id, secret: unrestricted.secret })).headers.get('x-subject-token')!;
  assert.equal((await create({}, utok)).status, 201);

  assert.equal((await cloud.call('DELETE', `${AC(alice.id)}/${restricted.id}`, { token: bob.token })).status, 403);
  assert.equal((await cloud.call('DELETE', `${AC(alice.id)}/${restricted.id}`, { token: alice.token })).status, 204);
  assert.equal((await cloud.call('GET', `${AC(alice.id)}/${restricted.id}`, { token: alice.token })).status, 404);
  assert.equal((await cloud.call('GET', '/identity/v3/auth/tokens', { token: cloud.adminToken, headers: { 'X-Subject-Token': rtok } })).status, 404);
  assert.equal((await authAppCred({ id: restricted.id, secret: restricted.secret })).status, 401);
  assert.equal((await cloud.call('DELETE', `${AC(alice.id)}/${restricted.id}`, { token: alice.token })).status, 404);
});

test('access rules: stored with the credential, shared, and deletable once unused', async () => {
  const carol = await fx.userOn(projectId);
  const rules = [{ path: '/v2.1/servers/*/ips', method: 'GET', service: 'compute' }];
  const a = await create({ access_rules: rules }, carol.token, carol.id);
  assert.equal(a.status, 201, JSON.stringify(a.body));
  const rule = a.body.application_credential.access_rules[0];
  const { id: ruleId, ...rest } = rule;
  assert.deepEqual(rest, rules[0]);
  const b = await create({ access_rules: rules }, carol.token, carol.id);
  assert.equal(b.body.application_credential.access_rules[0].id, ruleId, 'an identical rule is reused');

  const list = await cloud.call('GET', AR(carol.id), { token: carol.token });
  assert.equal(list.status, 200);
  assert.equal(list.body.access_rules.length, 1);
  assert.equal((await cloud.call('GET', `${AR(carol.id)}?service=image`, { token: carol.token })).body.access_rules.length, 0);
  const shown = await cloud.call('GET', `${AR(carol.id)}/${ruleId}`, { token: carol.token });
  assert.equal(shown.status, 200);
  assert.equal(shown.body.access_rule.path, '/v2.1/servers/*/ips');
  assert.equal((await cloud.call('GET', `${AR(carol.id)}/${ruleId}`, { token: alice.token })).status, 403);
  assert.equal((await cloud.call('GET', `${AR(alice.id)}/${ruleId}`, { token: alice.token })).status, 404);

  assert.equal((await cloud.call('DELETE', `${AR(carol.id)}/${ruleId}`, { token: carol.token })).status, 403, 'in use');
  await cloud.call('DELETE', `${AC(carol.id)}/${a.body.application_credential.id}`, { token: carol.token });
  assert.equal((await cloud.call('DELETE', `${AR(carol.id)}/${ruleId}`, { token: carol.token })).status, 403, 'still in use by the second');
  await cloud.call('DELETE', `${AC(carol.id)}/${b.body.application_credential.id}`, { token: carol.token });
  assert.equal((await cloud.call('GET', AR(carol.id), { token: carol.token })).body.access_rules.length, 1, 'rules outlive their credentials');
  assert.equal((await cloud.call('DELETE', `${AR(carol.id)}/${ruleId}`, { token: carol.token })).status, 204);
  assert.equal((await cloud.call('GET', AR(carol.id), { token: carol.token })).body.access_rules.length, 0);
});

test('trust-scoped tokens are kept away from application credentials', async () => {
  const t = await cloud.call('POST', '/identity/v3/OS-TRUST/trusts', {
    token: alice.token,
    body: { trust: { trustor_user_id: alice.id, trustee_user_id: bob.id, project_id: projectId, impersonation: true, roles: [{ name: 'member' }] } },
  });
  assert.equal(t.status, 201);
  const tok = await cloud.call('POST', '/identity/v3/auth/tokens', {
    body: { auth: { identity: { methods: ['password'], password: { user: { id: bob.id, password: bob.password } } }, scope: { 'OS-TRUST:trust': { id: t.body.trust.id } } } },
  });
  assert.equal(tok.status, 201);
  const trustTok = tok.headers.get('x-subject-token')!;
  assert.equal((await create({}, trustTok)).status, 403);
  assert.equal((await cloud.call('GET', AC(alice.id), { token: trustTok })).status, 403);
});
