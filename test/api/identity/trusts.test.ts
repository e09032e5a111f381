import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useCloud } from '../../harness.ts';
import { fixtures, type Fixtures, type User, type UserWithToken } from './delegation-fixtures.ts';

let fx: Fixtures;
let projectId: string;
let trustor: UserWithToken;
let trustee: User;
let stranger: User;
let delegated: string;
let kept: string;

const T = '/identity/v3/OS-TRUST/trusts';

const cloud = useCloud(async (cloud) => {
  fx = fixtures(cloud);
  projectId = await fx.project();
  delegated = await fx.role('delegated-role');
  kept = await fx.role('kept-role');
  trustor = await fx.userOn(projectId, ['delegated-role', 'kept-role', 'member']);
  trustee = await fx.user();
  stranger = await fx.user();
});

const createTrust = (body: Record<string, unknown>, token = trustor.token) =>
  cloud.call('POST', T, { token, body: { trust: { trustor_user_id: trustor.id, trustee_user_id: trustee.id, project_id: projectId, impersonation: true, roles: [{ name: 'delegated-role' }], ...body } } });

const trustToken = async (user: { name: string; password: string }, trustId: string) =>
  cloud.call('POST', '/identity/v3/auth/tokens', {
    body: { auth: { identity: { methods: ['password'], password: { user: { name: user.name, domain: { id: 'default' }, password: user.password } } }, scope: { 'OS-TRUST:trust': { id: trustId } } } },
  });

test('create, show, list roles and delete a trust as Keystone does', async () => {
  const expires = new Date(Date.now() + 3600_000);
  expires.setUTCMilliseconds(0);
  const expiresStr = expires.toISOString().replace('.000Z', 'Z');
  const r = await createTrust({ expires_at: expiresStr, note: 'extra attribute' });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  const t = r.body.trust;
  assert.equal(t.trustor_user_id, trustor.id);
  assert.equal(t.trustee_user_id, trustee.id);
  assert.equal(t.project_id, projectId);
  assert.equal(t.impersonation, true);
  assert.equal(t.expires_at.replace(/\.\d{6}/, ''), expiresStr);
  assert.match(t.expires_at, /\.000000Z$/);
  assert.equal(t.remaining_uses, null);
  assert.equal(t.redelegation_count, 0);
  assert.equal(t.note, 'extra attribute');
  assert.deepEqual(t.roles.map((x: { name: string }) => x.name), ['delegated-role']);
  assert.match(t.roles[0].links.self, new RegExp(`/v3/roles/${delegated}$`));
  assert.match(t.links.self, new RegExp(`/v3/OS-TRUST/trusts/${t.id}$`));

  for (const who of [trustor.token, await fx.token(trustee), cloud.adminToken]) {
    const got = await cloud.call('GET', `${T}/${t.id}`, { token: who });
    assert.equal(got.status, 200);
    assert.equal(got.body.trust.roles[0].id, delegated);
  }
  assert.equal((await cloud.call('GET', `${T}/${t.id}`, { token: await fx.token(stranger) })).status, 403);

  const roles = await cloud.call('GET', `${T}/${t.id}/roles`, { token: trustor.token });
  assert.equal(roles.status, 200);
  assert.deepEqual(roles.body.roles.map((x: { id: string }) => x.id), [delegated]);
  assert.equal((await cloud.call('GET', `${T}/${t.id}/roles/${delegated}`, { token: trustor.token })).body.role.name, 'delegated-role');
  assert.equal((await cloud.call('HEAD', `${T}/${t.id}/roles/${delegated}`, { token: trustor.token })).status, 200);
  assert.equal((await cloud.call('GET', `${T}/${t.id}/roles/${kept}`, { token: trustor.token })).status, 404);
  assert.equal((await cloud.call('HEAD', `${T}/${t.id}/roles/${kept}`, { token: trustor.token })).status, 404);

  const mine = await cloud.call('GET', `${T}?trustor_user_id=${trustor.id}`, { token: trustor.token });
  assert.equal(mine.status, 200);
  assert.ok(mine.body.trusts.some((x: { id: string }) => x.id === t.id));
  assert.equal(mine.body.trusts[0].roles, undefined, 'a listed trust carries no roles');
  assert.equal((await cloud.call('GET', T, { token: trustor.token })).status, 403, 'a non-admin must filter by self');
  assert.equal((await cloud.call('GET', `${T}?trustor_user_id=${trustor.id}`, { token: await fx.token(stranger) })).status, 403);
  const all = await cloud.call('GET', T, { token: cloud.adminToken });
  assert.ok(all.body.trusts.some((x: { id: string }) => x.id === t.id));

  // A trust token, then deletion: only the trustor (or an admin) deletes, and its tokens die with it.
  const tok = await trustToken(trustee, t.id);
  assert.equal(tok.status, 201);
  const trustTok = tok.headers.get('x-subject-token')!;
  assert.equal((await cloud.call('DELETE', `${T}/${t.id}`, { token: await fx.token(trustee) })).status, 403);
  assert.equal((await cloud.call('DELETE', `${T}/${t.id}`, { token: trustor.token })).status, 204);
  assert.equal((await cloud.call('GET', `${T}/${t.id}`, { token: trustor.token })).status, 404);
  assert.equal((await cloud.call('DELETE', `${T}/${t.id}`, { token: trustor.token })).status, 404);
  assert.equal((await cloud.call('GET', '/identity/v3/auth/tokens', { token: cloud.adminToken, headers: { 'X-Subject-Token': trustTok } })).status, 404);
  assert.equal((await trustToken(trustee, t.id)).status, 401);
  const listed = await cloud.call('GET', `${T}?trustor_user_id=${trustor.id}`, { token: trustor.token });
  assert.ok(!listed.body.trusts.some((x: { id: string }) => x.id === t.id));
});

test('bad trust requests get Keystone statuses', async () => {
  const cases: Array<[Record<string, unknown>, number]> = [
    [{ trustor_user_id: stranger.id }, 403],
    [{ trustee_user_id: 'nosuchuser' }, 404],
    [{ roles: [{ name: 'kept-role' }, { name: 'no-such-role' }] }, 404],
    [{ roles: [{ id: await fx.role() }] }, 404], // a role the trustor does not hold
    [{ roles: [] }, 403],
    [{ roles: [{ id: delegated, name: 'delegated-role' }] }, 400],
    [{ expires_at: 'bad.123Z' }, 400],
    [{ expires_at: '2001-01-01T00:00:00Z' }, 400],
    [{ remaining_uses: 0 }, 400],
    [{ remaining_uses: 'many' }, 400],
    [{ impersonation: 'yes' }, 400],
    [{ project_id: 'nosuchproject' }, 404],
  ];
  for (const [body, status] of cases) {
    const r = await createTrust(body);
    assert.equal(r.status, status, `${JSON.stringify(body)} -> ${JSON.stringify(r.body)}`);
    assert.equal(r.body.error.code, status);
  }
  assert.equal((await cloud.call('POST', T, { token: trustor.token, body: { nottrust: {} } })).status, 400);
  assert.equal((await cloud.call('POST', T, { token: trustor.token, raw: '{', headers: { 'Content-Type': 'application/json' } })).status, 400);
  assert.equal((await cloud.call('GET', `${T}/nosuchtrust`, { token: trustor.token })).status, 404);
});

test('trust tokens: impersonation, delegated roles only, remaining uses, trustee only', async () => {
  const imp = (await createTrust({ roles: [{ name: 'member' }] })).body.trust;
  const r = await trustToken(trustee, imp.id);
  assert.equal(r.status, 201, JSON.stringify(r.body));
  const tok = r.body.token;
  assert.equal(tok.user.id, trustor.id, 'an impersonating trust token is the trustor\'s');
  assert.equal(tok.project.id, projectId);
  assert.deepEqual(tok.roles.map((x: { name: string }) => x.name).sort(), ['member', 'reader'], 'delegated roles and what they imply');
  assert.deepEqual(tok['OS-TRUST:trust'], { id: imp.id, impersonation: true, trustee_user: { id: trustee.id }, trustor_user: { id: trustor.id } });
  assert.equal((await trustToken(stranger, imp.id)).status, 403);
  // A trust token cannot be rescoped.
  const rescoped = await cloud.call('POST', '/identity/v3/auth/tokens', {
    body: { auth: { identity: { methods: ['token'], token: { id: r.headers.get('x-subject-token') } }, scope: { project: { id: projectId } } } },
  });
  assert.equal(rescoped.status, 403);

  const plain = (await createTrust({ impersonation: false, remaining_uses: 2 })).body.trust;
  assert.equal(plain.remaining_uses, 2);
  const first = await trustToken(trustee, plain.id);
  assert.equal(first.status, 201);
  assert.equal(first.body.token.user.id, trustee.id, 'without impersonation the token is the trustee\'s');
  assert.deepEqual(first.body.token.roles.map((x: { id: string }) => x.id), [delegated]);
  assert.equal((await cloud.call('GET', `${T}/${plain.id}`, { token: trustor.token })).body.trust.remaining_uses, 1);
  assert.equal((await trustToken(trustee, plain.id)).status, 201);
  assert.equal((await trustToken(trustee, plain.id)).status, 401, 'uses are spent');
  assert.equal((await cloud.call('GET', `${T}/${plain.id}`, { token: trustor.token })).status, 404, 'a spent trust is gone');

  // When the trustor loses a delegated role the trust no longer yields tokens.
  const p2 = await fx.project();
  const r2 = await fx.role();
  await fx.grant(trustor.id, p2, r2);
  const t2 = (await cloud.call('POST', T, { token: trustor.token, body: { trust: { trustor_user_id: trustor.id, trustee_user_id: trustee.id, project_id: p2, impersonation: false, roles: [{ id: r2 }] } } })).body.trust;
  assert.equal((await trustToken(trustee, t2.id)).status, 201);
  await fx.revokeGrant(trustor.id, p2, r2);
  assert.equal((await trustToken(trustee, t2.id)).status, 403);

  // An expired trust is not found and yields no token.
  const t3 = (await createTrust({ impersonation: false, expires_at: new Date(Date.now() + 60_000).toISOString() })).body.trust;
  await cloud.server.database.db.updateTable('identity_trusts').set({ expires_at: new Date(Date.now() - 1000).toISOString() }).where('id', '=', t3.id).execute();
  assert.equal((await cloud.call('GET', `${T}/${t3.id}`, { token: trustor.token })).status, 404);
  assert.equal((await trustToken(trustee, t3.id)).status, 401);
});

test('a trust token creates a trust only when redelegation is allowed', async () => {
  const third = await fx.user();
  const plain = (await createTrust({})).body.trust;
  const tok = (await trustToken(trustee, plain.id)).headers.get('x-subject-token')!;
  const denied = await createTrust({ trustee_user_id: third.id }, tok);
  assert.equal(denied.status, 403, JSON.stringify(denied.body));

  const redel = await createTrust({ allow_redelegation: true });
  assert.equal(redel.status, 201);
  assert.equal(redel.body.trust.redelegation_count, 3);
  assert.equal((await createTrust({ allow_redelegation: true, remaining_uses: 1 })).status, 400);
  const rtok = (await trustToken(trustee, redel.body.trust.id)).headers.get('x-subject-token')!;
  const child = await createTrust({ trustee_user_id: third.id }, rtok);
  assert.equal(child.status, 201, JSON.stringify(child.body));
  assert.equal(child.body.trust.redelegated_trust_id, redel.body.trust.id);
  assert.equal(child.body.trust.redelegation_count, 0);
  assert.equal((await createTrust({ trustee_user_id: third.id, roles: [{ name: 'kept-role' }] }, rtok)).status, 403, 'roles beyond the parent trust');
  const childTok = await trustToken(third, child.body.trust.id);
  assert.equal(childTok.status, 201);
  assert.equal(childTok.body.token.user.id, trustor.id);
  // Deleting the parent removes the redelegated trust too.
  assert.equal((await cloud.call('DELETE', `${T}/${redel.body.trust.id}`, { token: trustor.token })).status, 204);
  assert.equal((await trustToken(third, child.body.trust.id)).status, 401);
});

test('application credential tokens may not manage trusts', async () => {
  const ac = await cloud.call('POST', `/identity/v3/users/${trustor.id}/application_credentials`, { token: trustor.token, body: { application_credential: { name: `ac-${Date.now()}` } } });
  assert.equal(ac.status, 201);
  const acTok = await cloud.call('POST', '/identity/v3/auth/tokens', {
    body: { auth: { identity: { methods: ['application_credential'], application_credential: { id: ac.body.application_credential.id, secret: ac.body.application_credential.secret } } } },
  });
  assert.equal(acTok.status, 201);
  const r = await createTrust({}, acTok.headers.get('x-subject-token')!);
  assert.equal(r.status, 403);
});
