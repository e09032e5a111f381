// Swift's access rules over HTTP: the owner, another project (403), the
// anonymous (401), container ACLs (.r:* reads, .rlistings, project:user
// entries, write ACLs), account ACLs (read-only, read-write, admin), a reader,
// and the admin as reseller admin.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tenant, uniqueName, useCloud, type Tenant } from '../../harness.ts';
import { swift } from './lib.ts';

let alice: Tenant, bob: Tenant, reader: Tenant, adminProject: string;
const cloud = useCloud(async (c) => {
  alice = await tenant(c);
  bob = await tenant(c);
  reader = await tenant(c, ['reader']);
  adminProject = (await c.server.database.db.selectFrom('identity_projects').select('id').where('name', '=', 'admin').executeTakeFirstOrThrow()).id;
});
const call = swift(cloud, () => alice);

test('another project\'s caller gets 403, the anonymous 401, on a private container', async () => {
  const c = uniqueName('priv');
  assert.equal((await call('PUT', `/${c}`)).status, 201);
  assert.equal((await call('PUT', `/${c}/o`, { body: 'secret' })).status, 201);
  assert.equal((await call('GET', `/${c}/o`, { as: bob, account: `AUTH_${alice.projectId}` })).status, 403);
  assert.equal((await call('GET', `/${c}`, { as: bob, account: `AUTH_${alice.projectId}` })).status, 403);
  assert.equal((await call('GET', '', { as: bob, account: `AUTH_${alice.projectId}` })).status, 403);
  assert.equal((await call('GET', `/${c}/o`, { as: null, account: `AUTH_${alice.projectId}` })).status, 401);
  assert.equal((await call('GET', `/nonexistent/o`, { as: null, account: `AUTH_${alice.projectId}` })).status, 401);
  assert.equal((await call('PUT', `/${c}/o`, { as: bob, account: `AUTH_${alice.projectId}`, body: 'x' })).status, 403);
  assert.equal((await call('DELETE', `/${c}/o`, { as: null, account: `AUTH_${alice.projectId}` })).status, 401);
  assert.equal((await call('GET', '/x', { account: 'SOMEONE' })).status, 403);
});

test('.r:* lets anyone read objects, not list; .rlistings lets them list; a write ACL names writers', async () => {
  const c = uniqueName('pub');
  assert.equal((await call('PUT', `/${c}`, { headers: { 'X-Container-Read': '.r:*' } })).status, 201);
  assert.equal((await call('PUT', `/${c}/o`, { body: 'public' })).status, 201);
  const anon = { as: null, account: `AUTH_${alice.projectId}` } as const;
  let r = await call('GET', `/${c}/o`, anon);
  assert.equal(r.status, 200);
  assert.equal(r.text, 'public');
  assert.equal((await call('GET', `/${c}`, anon)).status, 401);
  assert.equal((await call('PUT', `/${c}/o`, { ...anon, body: 'x' })).status, 401);
  assert.equal((await call('POST', `/${c}`, { headers: { 'X-Container-Read': '.r:*,.rlistings' } })).status, 204);
  r = await call('GET', `/${c}`, anon);
  assert.equal(r.status, 200);
  assert.equal(r.text, 'o\n');
  // the ACL is shown to the owner only
  assert.equal((await call('HEAD', `/${c}`)).headers.get('x-container-read'), '.r:*,.rlistings');
  assert.equal((await call('HEAD', `/${c}`, anon)).headers.get('x-container-read'), null);
  // write ACL
  assert.equal((await call('PUT', `/${c}/b`, { as: bob, account: `AUTH_${alice.projectId}`, body: 'bob' })).status, 403);
  assert.equal((await call('POST', `/${c}`, { headers: { 'X-Container-Write': `${bob.projectId}:${bob.userId}` } })).status, 204);
  assert.equal((await call('PUT', `/${c}/b`, { as: bob, account: `AUTH_${alice.projectId}`, body: 'bob' })).status, 201);
  assert.equal((await call('DELETE', `/${c}`, { as: bob, account: `AUTH_${alice.projectId}` })).status, 403, 'a write ACL is for objects only');
  // bad ACLs
  assert.equal((await call('POST', `/${c}`, { headers: { 'X-Container-Write': '.r:*' } })).status, 400);
  assert.equal((await call('POST', `/${c}`, { headers: { 'X-Container-Read': '.unknown:x' } })).status, 400);
  // a referrer rule
  assert.equal((await call('POST', `/${c}`, { headers: { 'X-Container-Read': '.r:.example.com' } })).status, 204);
  assert.equal((await call('GET', `/${c}/o`, { ...anon, headers: { Referer: 'http://www.example.com/page' } })).status, 200);
  assert.equal((await call('GET', `/${c}/o`, { ...anon, headers: { Referer: 'http://evil.test/' } })).status, 401);
});

test('a read ACL naming project:user lets that user list and read', async () => {
  const c = uniqueName('shared');
  assert.equal((await call('PUT', `/${c}`, { headers: { 'X-Container-Read': `${bob.projectId}:*` } })).status, 201);
  assert.equal((await call('PUT', `/${c}/o`, { body: 'for bob' })).status, 201);
  const asBob = { as: bob, account: `AUTH_${alice.projectId}` };
  assert.equal((await call('GET', `/${c}`, asBob)).text, 'o\n');
  assert.equal((await call('GET', `/${c}/o`, asBob)).text, 'for bob');
  assert.equal((await call('DELETE', `/${c}/o`, asBob)).status, 403);
});

test('account ACLs: read-only, read-write and admin levels; only owners set them; bad JSON 400', async () => {
  const acct = { account: `AUTH_${alice.projectId}` };
  assert.equal((await call('POST', '', { headers: { 'X-Account-Access-Control': 'not json' } })).status, 400);
  assert.equal((await call('POST', '', { headers: { 'X-Account-Access-Control': JSON.stringify({ bogus: ['x'] }) } })).status, 400);
  assert.equal((await call('POST', '', { headers: { 'X-Account-Access-Control': JSON.stringify({ 'read-only': [bob.userId] }) } })).status, 204);
  assert.equal((await call('GET', '', { as: bob, ...acct })).status < 300, true);
  assert.equal((await call('PUT', `/${uniqueName('bobs')}`, { as: bob, ...acct })).status, 403);
  assert.equal((await call('POST', '', { headers: { 'X-Account-Access-Control': JSON.stringify({ 'read-write': [bob.userId] }) } })).status, 204);
  const bc = uniqueName('bobs');
  assert.equal((await call('PUT', `/${bc}`, { as: bob, ...acct })).status, 201);
  assert.equal((await call('POST', '', { as: bob, ...acct, headers: { 'X-Account-Meta-X': '1' } })).status, 403);
  assert.equal((await call('POST', '', { headers: { 'X-Account-Access-Control': JSON.stringify({ admin: [`${bob.projectId}:${bob.userId}`] }) } })).status, 204);
  assert.equal((await call('POST', '', { as: bob, ...acct, headers: { 'X-Account-Meta-X': '1' } })).status, 204);
  assert.ok((await call('HEAD', '')).headers.get('x-account-access-control'));
  assert.equal((await call('POST', '', { headers: { 'X-Account-Access-Control': '{}' } })).status, 204);
  assert.equal((await call('GET', '', { as: bob, ...acct })).status, 403);
});

test('a reader of the project reads but does not write; the admin reaches any account', async () => {
  const c = uniqueName('rd');
  const acct = { account: `AUTH_${reader.projectId}` };
  const admin = { token: cloud.adminToken, projectId: adminProject };
  assert.equal((await call('PUT', `/${c}`, { as: admin, ...acct })).status, 201, 'the admin creates in the reader\'s account');
  assert.equal((await call('PUT', `/${c}/o`, { as: admin, ...acct, body: 'r' })).status, 201);
  assert.equal((await call('GET', `/${c}/o`, { as: reader })).text, 'r');
  assert.equal((await call('PUT', `/${c}/o`, { as: reader, body: 'w' })).status, 403);
  assert.equal((await call('GET', '', { as: admin, account: `AUTH_${alice.projectId}` })).status < 300, true);
});
