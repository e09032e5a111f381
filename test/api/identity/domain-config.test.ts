import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useCloud } from '../../harness.ts';

const cloud = useCloud();

test('domain config: create, read by group and option, update, delete; sensitive options hidden', async () => {
  const t = cloud.adminToken;
  const d = await cloud.call('POST', '/identity/v3/domains', { token: t, body: { domain: { name: 'ldap-domain' } } });
  const id = d.body.domain.id;
  const base = `/identity/v3/domains/${id}/config`;
  assert.equal((await cloud.call('GET', base, { token: t })).status, 404);
  const config = { identity: { driver: 'ldap' }, ldap: { url: 'ldap://x:389/', user_tree_dn: 'ou=Users', password: 'bind-secret' } };
  const created = await cloud.call('PUT', base, { token: t, body: { config } });
  assert.equal(created.status, 201);
  assert.equal(created.body.config.ldap.password, undefined, 'a sensitive option is never returned');
  assert.doesNotMatch(JSON.stringify(created.body), /bind-secret/);
  assert.equal((await cloud.call('PUT', base, { token: t, body: { config } })).status, 200, 'replacing answers 200');
  assert.deepEqual((await cloud.call('GET', `${base}/ldap/url`, { token: t })).body, { config: { url: 'ldap://x:389/' } });
  const upd = await cloud.call('PATCH', `${base}/identity`, { token: t, body: { config: { identity: { driver: 'sql', list_limit: 5 } } } });
  assert.equal(upd.status, 200);
  assert.deepEqual(upd.body.config.identity, { driver: 'sql', list_limit: 5 });
  const opt = await cloud.call('PATCH', `${base}/identity/driver`, { token: t, body: { config: { driver: 'ldap' } } });
  assert.equal(opt.body.config.identity.driver, 'ldap');
  assert.equal((await cloud.call('DELETE', `${base}/identity/list_limit`, { token: t })).status, 204);
  assert.equal((await cloud.call('GET', `${base}/identity/list_limit`, { token: t })).status, 404);
  assert.equal((await cloud.call('PUT', base, { token: t, body: { config: { nosuch: { a: 1 } } } })).status, 403);
  assert.equal((await cloud.call('PUT', base, { token: t, body: { config: { ldap: { not_an_option: 1 } } } })).status, 403);
  assert.equal((await cloud.call('DELETE', `${base}/identity`, { token: t })).status, 204);
  assert.equal((await cloud.call('GET', `${base}/identity`, { token: t })).status, 404);
  assert.equal((await cloud.call('DELETE', base, { token: t })).status, 204);
  assert.equal((await cloud.call('GET', base, { token: t })).status, 404);
});

test('domain config defaults', async () => {
  const t = cloud.adminToken;
  const all = await cloud.call('GET', '/identity/v3/domains/config/default', { token: t });
  assert.ok('driver' in all.body.config.identity && 'list_limit' in all.body.config.identity);
  assert.ok('url' in all.body.config.ldap);
  assert.deepEqual(Object.keys((await cloud.call('GET', '/identity/v3/domains/config/ldap/default', { token: t })).body.config), ['ldap']);
  assert.ok('user_tree_dn' in (await cloud.call('GET', '/identity/v3/domains/config/ldap/user_tree_dn/default', { token: t })).body.config);
  assert.equal((await cloud.call('GET', '/identity/v3/domains/config/nosuch/default', { token: t })).status, 403);
});

test('rescoping a token adds the token method; a revoked token cannot be rescoped', async () => {
  const unscoped = await cloud.login('admin', cloud.adminPassword);
  const project = (await cloud.call('GET', '/identity/v3/projects?name=admin', { token: cloud.adminToken })).body.projects[0].id;
  const scoped = await cloud.call('POST', '/identity/v3/auth/tokens', { body: { auth: { identity: { methods: ['token'], token: { id: unscoped } }, scope: { project: { id: project } } } } });
  assert.equal(scoped.status, 201);
  assert.deepEqual([...scoped.body.token.methods].sort(), ['password', 'token']);
  await cloud.call('DELETE', '/identity/v3/auth/tokens', { token: cloud.adminToken, headers: { 'X-Subject-Token': unscoped } });
  const again = await cloud.call('POST', '/identity/v3/auth/tokens', { body: { auth: { identity: { methods: ['token'], token: { id: unscoped } }, scope: { project: { id: project } } } } });
  assert.equal(again.status, 404);
});
