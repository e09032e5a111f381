// Container and account quotas over HTTP, as Tempest's quota tests use them:
// container metadata set by the owner, account quotas only by a reseller
// admin (403 for the owner), 413 "Upload exceeds quota." with nothing stored.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useCloud } from '../../harness.ts';
import { expectStatus, swiftTenant, type Swift } from './middleware-lib.ts';

let s: Swift;
const cloud = useCloud(async (c) => {
  s = await swiftTenant(c);
});

test('container quotas: bytes and count, checked values, 413 before anything is stored', async () => {
  expectStatus(await s.call('PUT', 'qc', { headers: { 'X-Container-Meta-Quota-Bytes': '20', 'X-Container-Meta-Quota-Count': '2' } }), 201);
  let r = await s.call('POST', 'qc', { headers: { 'X-Container-Meta-Quota-Bytes': 'ten' } });
  expectStatus(r, 400);
  assert.equal(r.text, 'Invalid bytes quota.');
  r = await s.call('POST', 'qc', { headers: { 'X-Container-Meta-Quota-Count': '-1' } });
  expectStatus(r, 400);
  assert.equal(r.text, 'Invalid count quota.');
  expectStatus(await s.call('PUT', 'qc/a', { body: 'x'.repeat(20) }), 201);
  r = await s.call('PUT', 'qc/b', { body: 'y' });
  expectStatus(r, 413);
  assert.equal(r.text, 'Upload exceeds quota.');
  expectStatus(await s.call('HEAD', 'qc/b'), 404);
  expectStatus(await s.call('POST', 'qc', { headers: { 'X-Container-Meta-Quota-Bytes': '' } }), 204);
  expectStatus(await s.call('PUT', 'qc/b', { body: 'y' }), 201);
  expectStatus(await s.call('PUT', 'qc/c', { body: '' }), 413);
  const head = await s.call('HEAD', 'qc');
  assert.equal(head.headers.get('x-container-object-count'), '2');
  assert.equal(head.headers.get('x-container-bytes-used'), '21');
});

test('account quotas: set by a reseller admin only, shown back, enforced', async () => {
  const t = await swiftTenant(cloud);
  expectStatus(await t.call('PUT', 'ac'), 201);
  // the account's own operator may not
  let r = await t.call('POST', t.account, { headers: { 'X-Account-Meta-Quota-Bytes': '100' } });
  expectStatus(r, 403);
  r = await t.call('POST', t.account, { headers: { 'X-Account-Quota-Count': '5' } });
  expectStatus(r, 403);
  // a reseller admin (Keystone's admin here) may, on any account
  r = await t.call('POST', t.account, { token: cloud.adminToken, headers: { 'X-Account-Meta-Quota-Bytes': '20', 'X-Account-Quota-Count': '5' } });
  expectStatus(r, 204);
  assert.ok(r.headers.get('content-type'), 'Tempest checks a Content-Type on every answer');
  r = await t.call('POST', t.account, { token: cloud.adminToken, headers: { 'X-Account-Quota-Bytes': 'lots' } });
  expectStatus(r, 400);
  const head = await t.call('HEAD', t.account);
  assert.equal(head.headers.get('x-account-quota-bytes'), '20');
  assert.equal(head.headers.get('x-account-quota-count'), '5');
  expectStatus(await t.call('PUT', 'ac/ok', { body: 'x'.repeat(10) }), 201);
  r = await t.call('PUT', 'ac/over', { body: 'x'.repeat(11) });
  expectStatus(r, 413);
  assert.equal(r.text, 'Upload exceeds quota.');
  assert.equal((await t.call('HEAD', t.account)).headers.get('x-account-bytes-used'), '10');
  // count quota 0: no new object at all
  expectStatus(await t.call('POST', t.account, { token: cloud.adminToken, headers: { 'X-Remove-Account-Meta-Quota-Bytes': 'x', 'X-Account-Quota-Count': '0' } }), 204);
  expectStatus(await t.call('PUT', 'ac/none', { body: '' }), 413);
  expectStatus(await t.call('POST', t.account, { token: cloud.adminToken, headers: { 'X-Remove-Account-Quota-Count': 'x' } }), 204);
  const after = await t.call('HEAD', t.account);
  assert.equal(after.headers.get('x-account-quota-bytes'), null);
  assert.equal(after.headers.get('x-account-quota-count'), null);
  expectStatus(await t.call('PUT', 'ac/fine', { body: 'x'.repeat(100) }), 201);
});

test("a user with Swift's ResellerAdmin role (Tempest's reseller_admin_role) sets another account's quota", async () => {
  const role = await cloud.call('POST', '/identity/v3/roles', { token: cloud.adminToken, body: { role: { name: 'ResellerAdmin' } } });
  assert.ok(role.status === 201 || role.status === 409, JSON.stringify(role.body));
  const reseller = await swiftTenant(cloud, ['ResellerAdmin']);
  const t = await swiftTenant(cloud);
  expectStatus(await t.call('POST', t.account, { token: reseller.t.token, headers: { 'X-Account-Meta-Quota-Bytes': '7' } }), 204);
  assert.equal((await t.call('HEAD', t.account)).headers.get('x-account-quota-bytes'), '7');
  expectStatus(await t.call('PUT', 'rc'), 201);
  expectStatus(await t.call('PUT', 'rc/o', { body: 'x'.repeat(8) }), 413);
  // the reseller's own uploads are not held to the quota
  expectStatus(await t.call('PUT', 'rc/o', { token: reseller.t.token, body: 'x'.repeat(8) }), 201);
});
