import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { useCloud } from '../../harness.ts';
import { findEc2Credential } from '../../../src/identity/routes/credentials.ts';
import { fixtures, type Fixtures, type UserWithToken } from './delegation-fixtures.ts';

let fx: Fixtures;
let p1: string;
let p2: string;
let alice: UserWithToken;
let bob: UserWithToken;

const C = '/identity/v3/credentials';
const EC2 = (userId: string) => `/identity/v3/users/${userId}/credentials/OS-EC2`;
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

const cloud = useCloud(async (cloud) => {
  fx = fixtures(cloud);
  p1 = await fx.project();
  p2 = await fx.project();
  alice = await fx.userOn(p1);
  bob = await fx.userOn(p1);
});

test('ec2 credentials through /v3/credentials: id from the access key, update, show, delete', async () => {
  const blob = JSON.stringify({ access: 'AKIA-one', secret: 'sekrit-one' });
  const r = await cloud.call('POST', C, { token: cloud.adminToken, body: { credential: { user_id: alice.id, project_id: p1, type: 'ec2', blob } } });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  const c = r.body.credential;
  assert.equal(c.id, sha256('AKIA-one'));
  assert.equal(c.blob, blob);
  assert.equal(c.user_id, alice.id);
  assert.equal(c.project_id, p1);
  assert.match(c.links.self, new RegExp(`/v3/credentials/${c.id}$`));
  const dup = await cloud.call('POST', C, { token: cloud.adminToken, body: { credential: { user_id: alice.id, project_id: p1, type: 'ec2', blob } } });
  assert.equal(dup.status, 409);

  const newBlob = JSON.stringify({ access: 'AKIA-two', secret: 'sekrit-two' });
  const u = await cloud.call('PATCH', `${C}/${c.id}`, { token: cloud.adminToken, body: { credential: { blob: newBlob, project_id: p2, type: 'ec2' } } });
  assert.equal(u.status, 200, JSON.stringify(u.body));
  assert.equal(u.body.credential.id, c.id);
  assert.equal(u.body.credential.project_id, p2);
  assert.deepEqual(JSON.parse(u.body.credential.blob), { access: 'AKIA-two', secret: 'sekrit-two' });
  const g = await cloud.call('GET', `${C}/${c.id}`, { token: alice.token });
  assert.equal(g.status, 200);
  assert.equal(g.body.credential.blob, newBlob);
  assert.equal((await cloud.call('GET', `${C}/${c.id}`, { token: bob.token })).status, 403);
  assert.equal((await cloud.call('PATCH', `${C}/${c.id}`, { token: bob.token, body: { credential: { blob: '{}' } } })).status, 403);

  assert.equal((await cloud.call('DELETE', `${C}/${c.id}`, { token: bob.token })).status, 403);
  assert.equal((await cloud.call('DELETE', `${C}/${c.id}`, { token: alice.token })).status, 204);
  assert.equal((await cloud.call('GET', `${C}/${c.id}`, { token: alice.token })).status, 403, 'a missing credential has no owner to match');
  assert.equal((await cloud.call('GET', `${C}/${c.id}`, { token: cloud.adminToken })).status, 404);
});

test('owners create and list only their own; bad input is refused', async () => {
  const mine = await cloud.call('POST', C, { token: alice.token, body: { credential: { user_id: alice.id, type: 'cert', blob: 'PEM...', color: 'blue' } } });
  assert.equal(mine.status, 201);
  assert.match(mine.body.credential.id, /^[0-9a-f]{32}$/);
  assert.equal(mine.body.credential.project_id, null);
  assert.equal(mine.body.credential.color, 'blue', 'extra attributes are kept');
  const theirs = await cloud.call('POST', C, { token: bob.token, body: { credential: { user_id: bob.id, type: 'cert', blob: 'bob' } } });
  assert.equal(theirs.status, 201);
  assert.equal((await cloud.call('POST', C, { token: alice.token, body: { credential: { user_id: bob.id, type: 'cert', blob: 'x' } } })).status, 403);
  assert.equal((await cloud.call('PATCH', `${C}/${mine.body.credential.id}`, { token: alice.token, body: { credential: { user_id: bob.id } } })).status, 403, 'cannot give it away');

  const aliceList = await cloud.call('GET', C, { token: alice.token });
  assert.equal(aliceList.status, 200);
  assert.ok(aliceList.body.credentials.length >= 1);
  assert.ok(aliceList.body.credentials.every((x: { user_id: string }) => x.user_id === alice.id));
  assert.equal((await cloud.call('GET', `${C}?user_id=${bob.id}`, { token: alice.token })).body.credentials.length, 0);
  const adminList = await cloud.call('GET', `${C}?user_id=${bob.id}&type=cert`, { token: cloud.adminToken });
  assert.deepEqual(adminList.body.credentials.map((x: { id: string }) => x.id), [theirs.body.credential.id]);

  const bad: Array<Record<string, unknown>> = [
    { user_id: alice.id, type: 'ec2', blob: JSON.stringify({ access: 'a', secret: 'b' }) }, // no project
    { user_id: alice.id, project_id: p1, type: 'ec2', blob: 'not json' },
    { user_id: alice.id, project_id: p1, type: 'ec2', blob: JSON.stringify({ secret: 'b' }) },
    { user_id: alice.id, project_id: p1, type: 'ec2', blob: '[1]' },
    { user_id: alice.id, type: 'cert' },
    { user_id: alice.id, blob: 'x' },
    { user_id: alice.id, type: 'cert', blob: { not: 'a string' } },
  ];
  for (const credential of bad) {
    const r = await cloud.call('POST', C, { token: alice.token, body: { credential } });
    assert.equal(r.status, 400, JSON.stringify(credential));
    assert.equal(r.body.error.code, 400);
  }
  const id = mine.body.credential.id;
  assert.equal((await cloud.call('PATCH', `${C}/${id}`, { token: alice.token, body: { credential: {} } })).status, 400);
  assert.equal((await cloud.call('PATCH', `${C}/${id}`, { token: alice.token, body: { credential: { type: 'ec2' } } })).status, 400, 'an ec2 credential needs a project');
});

test('the OS-EC2 API and findEc2Credential', async () => {
  const r = await cloud.call('POST', EC2(alice.id), { token: alice.token, body: { tenant_id: p1 } });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  const c = r.body.credential;
  assert.ok(c.access && c.secret);
  assert.equal(c.user_id, alice.id);
  assert.equal(c.tenant_id, p1);
  assert.equal(c.trust_id, null);
  assert.match(c.links.self, new RegExp(`/v3/users/${alice.id}/credentials/OS-EC2/${c.access}$`));

  const found = await findEc2Credential(cloud.server.identity.context.credentials, c.access);
  assert.deepEqual(found, { access: c.access, secret: c.secret, userId: alice.id, projectId: p1, trustId: null, appCredId: null });
  assert.equal(await findEc2Credential(cloud.server.identity.context.credentials, 'nope'), undefined);

  const shown = await cloud.call('GET', `${EC2(alice.id)}/${c.access}`, { token: alice.token });
  assert.equal(shown.status, 200);
  for (const k of ['access', 'secret', 'user_id', 'tenant_id']) assert.equal(shown.body.credential[k], c[k]);
  const list = await cloud.call('GET', EC2(alice.id), { token: alice.token });
  assert.ok(list.body.credentials.some((x: { access: string }) => x.access === c.access));
  // It is also a v3 credential.
  const v3 = await cloud.call('GET', `${C}/${sha256(c.access)}`, { token: alice.token });
  assert.equal(v3.body.credential.type, 'ec2');

  assert.equal((await cloud.call('GET', `${EC2(alice.id)}/${c.access}`, { token: bob.token })).status, 403);
  assert.equal((await cloud.call('GET', `${EC2(bob.id)}/${c.access}`, { token: bob.token })).status, 404, 'not bob\'s');
  assert.equal((await cloud.call('GET', EC2(alice.id), { token: bob.token })).status, 403);
  assert.equal((await cloud.call('POST', EC2(alice.id), { token: bob.token, body: { tenant_id: p1 } })).status, 403);
  assert.equal((await cloud.call('POST', EC2(alice.id), { token: alice.token, body: { tenant_id: 'nosuch' } })).status, 404);
  assert.equal((await cloud.call('POST', EC2(alice.id), { token: alice.token, body: {} })).status, 400);
  assert.equal((await cloud.call('POST', EC2('nosuchuser'), { token: cloud.adminToken, body: { tenant_id: p1 } })).status, 404);

  assert.equal((await cloud.call('DELETE', `${EC2(alice.id)}/${c.access}`, { token: bob.token })).status, 403);
  assert.equal((await cloud.call('DELETE', `${EC2(alice.id)}/${c.access}`, { token: alice.token })).status, 204);
  assert.equal((await cloud.call('GET', `${EC2(alice.id)}/${c.access}`, { token: alice.token })).status, 404);
  assert.equal(await findEc2Credential(cloud.server.identity.context.credentials, c.access), undefined);
});

test('delegated tokens: restricted application credentials and project bounds', async () => {
  const ac = (await cloud.call('POST', `/identity/v3/users/${alice.id}/application_credentials`, { token: alice.token, body: { application_credential: { name: 'ec2-maker' } } })).body.application_credential;
  const auth = async (id: string, secret: string) => (await cloud.call('POST', '/identity/v3/auth/tokens', {
    body: { auth: { identity: { methods: ['application_credential'], application_credential: { id, secret } } } },
  })).headers.get('x-subject-token')!;
  const restricted = await auth(ac.id, ac.secret);
  assert.equal((await cloud.call('POST', EC2(alice.id), { token: restricted, body: { tenant_id: p1 } })).status, 403);
  const blob = JSON.stringify({ access: 'AKIA-restricted', secret: 's' });
  assert.equal((await cloud.call('POST', C, { token: restricted, body: { credential: { user_id: alice.id, project_id: p1, type: 'ec2', blob } } })).status, 403);

  const uac = (await cloud.call('POST', `/identity/v3/users/${alice.id}/application_credentials`, { token: alice.token, body: { application_credential: { name: 'ec2-maker-2', unrestricted: true } } })).body.application_credential;
  const unrestricted = await auth(uac.id, uac.secret);
  const made = await cloud.call('POST', EC2(alice.id), { token: unrestricted, body: { tenant_id: p1 } });
  assert.equal(made.status, 201);
  assert.equal((await findEc2Credential(cloud.server.identity.context.credentials, made.body.credential.access))?.appCredId, uac.id);
  assert.equal((await cloud.call('POST', EC2(alice.id), { token: unrestricted, body: { tenant_id: p2 } })).status, 403, 'outside the token\'s project');
  const other = await cloud.call('POST', C, { token: alice.token, body: { credential: { user_id: alice.id, type: 'cert', blob: 'no project' } } });
  assert.equal((await cloud.call('GET', `${C}/${other.body.credential.id}`, { token: unrestricted })).status, 403);
  const listed = await cloud.call('GET', C, { token: unrestricted });
  assert.ok(listed.body.credentials.every((x: { project_id: string }) => x.project_id === p1));
});
